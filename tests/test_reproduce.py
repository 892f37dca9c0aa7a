"""launch.py reproduce: a table's jobs run once, spread over workers, skipped
when finished, and the expected time printed first."""

import json
import os
import subprocess
import sys

import pytest

from orchestration import reproduce

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_expected_time_is_the_busiest_worker_of_a_longest_first_plan():
  jobs = [reproduce.Job(n, 'x', minutes=m) for n, m in (('a', 10), ('b', 30), ('c', 20),
                                                          ('d', 10))]
  # by hand: 30 -> w0, 20 -> w1, 10 -> w1 (30, 30), 10 -> w0: (40, 30)
  assert sorted(reproduce._plan(jobs, 2)) == [30, 40]
  assert reproduce._plan(jobs, 1) == [70]


def test_every_target_names_configs_that_exist_and_build():
  from ml_collections import config_flags  # noqa: F401  (the loader launch.py uses)
  import importlib.util
  for target in reproduce.TARGETS.values():
    for job in target.jobs:
      path, _, arg = job.config.partition(':')
      spec = importlib.util.spec_from_file_location('cfg', os.path.join(ROOT, path))
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      config = module.get_config(arg)
      if job.command == 'sweep':
        assert config.sweep.grid or config.sweep.random, job


def test_bengio_table1_has_each_of_the_papers_rows_on_each_dataset():
  """The paper's Table 1 puts its RNN-NADE rows beside the RNN rows for every
  dataset (the NADE rows once ran on JSB and Nottingham only)."""
  rows = ('RNN (SGD)', 'RNN (SGD+C)', 'RNN (SGD+CL)', 'RNN (SGD+CLR)', 'RNN (SGD+CRM)',
          'RNN-NADE (SGD)', 'RNN-NADE (SGD+CR)', 'RNN-NADE (SGD+CRM)')
  methods = ('sgd', 'c', 'cl', 'clr', 'crm', 'nade-sgd', 'nade-cr', 'nade-crm')
  jobs = {job.name for job in reproduce.TARGETS['bengio2013.table1'].jobs}
  for dataset in ('jsb', 'nottingham', 'piano', 'musedata'):
    for row, method in zip(rows, methods):
      assert f'{dataset}_{method}' in jobs, (dataset, row)
  assert len(jobs) == 4 * len(rows)


def test_unknown_target_is_one_line():
  out = subprocess.run([sys.executable, 'launch.py', 'reproduce', 'pascanu2013.tabel1'],
                       cwd=ROOT, capture_output=True, text=True)
  assert out.returncode != 0
  assert "unknown target 'pascanu2013.tabel1'" in out.stderr
  assert 'Traceback' not in out.stderr


@pytest.mark.slow
def test_jobs_run_on_two_workers_and_are_skipped_once_finished(tmp_path, monkeypatch, capsys):
  target = reproduce.Target('toy.table', 'two smoke runs', (
      reproduce.Job('a', 'experiments/temporal_order.py:smoke', minutes=1.0),
      reproduce.Job('b', 'experiments/temporal_order.py:smoke,method=sgd-c', minutes=1.0)))
  monkeypatch.setitem(reproduce.TARGETS, target.key, target)
  reproduce.run(target.key, str(tmp_path), workers=2)
  out = capsys.readouterr().out
  assert 'Expected: about 1 min' in out
  folder = tmp_path / 'toy_table'
  for name, job in zip('ab', target.jobs):
    assert (folder / name / 'result.json').exists()
    origin = json.loads((folder / name / 'config.json').read_text())['origin']
    assert origin['experiment'] == job.config
  sizes = {n: (folder / n / 'log.txt').stat().st_size for n in 'ab'}
  reproduce.run(target.key, str(tmp_path), workers=2)
  out = capsys.readouterr().out
  assert [line.strip() for line in out.splitlines()].count('done') == 2 and 'started' not in out
  assert sizes == {n: (folder / n / 'log.txt').stat().st_size for n in 'ab'}


@pytest.mark.slow
def test_a_table_sent_to_an_engine_runs_its_jobs_as_parts(tmp_path, monkeypatch):
  """--executor=ray|slurm: the training jobs become parts of orchestration/executors.py (a
  fake engine here, which runs them in this process), each with the config
  its experiment file gives; finished ones are not sent again."""
  from orchestration import executors
  import ml_collections
  from training import train
  from experiments import common
  sent = []

  def fake_engine(parts, options, workdir, env):
    sent.extend(p.name for p in parts)
    for p in parts:
      train.train_and_evaluate(ml_collections.ConfigDict(json.loads(p.config_json)), p.workdir)
    return {}

  monkeypatch.setitem(executors.REGISTRY, 'ray', fake_engine)
  target = reproduce.Target('toy.engine', 'one smoke run', (
      reproduce.Job('a', 'experiments/temporal_order.py:smoke'),))
  monkeypatch.setitem(reproduce.TARGETS, target.key, target)
  options = common.base_config().sweep
  options.executor = 'ray'
  reproduce.run(target.key, str(tmp_path), options=options)
  folder = tmp_path / 'toy_engine' / 'a'
  written = json.loads((folder / 'config.json').read_text())
  expected = json.loads(reproduce.load_config('experiments/temporal_order.py:smoke'
                                              ).to_json_best_effort())
  assert written['train'] == expected['train'] and written['task'] == expected['task']
  assert sent == ['a'] and (folder / 'result.json').exists()
  reproduce.run(target.key, str(tmp_path), options=options)
  assert sent == ['a']


_INTERRUPTED = r'''
import signal
import sys
if sys.argv[2] == 'terminal':   # Ctrl-C in a terminal (pytest-xdist workers start children ignoring it)
  signal.signal(signal.SIGINT, signal.default_int_handler)
else:                           # `nohup ... &`: a background job ignores SIGINT; `kill` sends TERM
  signal.signal(signal.SIGINT, signal.SIG_IGN)
from orchestration import reproduce
from training.errors import RunError
target = reproduce.Target('toy.long', 'one long run', (
    # plain SGD never solves T = 200 (the paper's Fig. 7), so the job is still training
    reproduce.Job('a', 'experiments/temporal_order.py:method=sgd,length=200,steps=10000000'),))
reproduce.TARGETS[target.key] = target
try:
  reproduce.run(target.key, sys.argv[1], workers=1)
except RunError as e:
  sys.exit(f'error: {e}')
'''


def wait_until_training(proc, log):
  """Waits until the job's ``log`` shows a progress line: printed from inside
  its training loop, so the job's signal handlers are in place. Nothing
  carries on after a deadline (a signal sent before would test the start-up,
  not the stop): the command ending first fails at once with its output, and
  a job that never gets there fails after 10 minutes, a net for a hang."""
  import time
  deadline = time.time() + 600
  while not (log.exists() and '%]' in log.read_text()):
    if proc.poll() is not None or time.time() > deadline:
      proc.kill()
      out, err = proc.communicate()
      text = log.read_text() if log.exists() else '(no log.txt)'
      pytest.fail(f'the job never trained (return code {proc.returncode}):\n{out}\n{err}\n{text}')
    time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize('how', ['terminal', 'background'])
def test_ctrl_c_or_kill_stops_the_jobs_at_a_checkpoint_in_one_line(tmp_path, how):
  import signal
  proc = subprocess.Popen([sys.executable, '-c', _INTERRUPTED, str(tmp_path), how], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  log = tmp_path / 'toy_long' / 'a' / 'log.txt'
  wait_until_training(proc, log)
  proc.send_signal(signal.SIGINT if how == 'terminal' else signal.SIGTERM)
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 1
  assert err.strip().splitlines() == [
      'error: toy.long: interrupted; a saved a checkpoint; rerun the same command to resume']
  steps = [int(p.name) for p in (tmp_path / 'toy_long' / 'a' / 'checkpoints').iterdir()
           if p.name.isdigit()]
  # the job stopped at a checkpoint of the step it had reached: its last progress line's
  progress = [l for l in log.read_text().splitlines() if '%]' in l]
  assert steps and max(steps) == int(progress[-1].split('/')[0].strip('[ ')) > 0, progress[-1]


def test_the_plan_marks_finished_and_started_jobs(tmp_path):
  target = reproduce.Target('toy.table', 'four runs', (
      reproduce.Job('fresh', 'experiments/temporal_order.py:smoke', minutes=3.0),
      reproduce.Job('half', 'experiments/temporal_order.py:smoke'),
      reproduce.Job('lost', 'experiments/temporal_order.py:smoke', minutes=4.0),
      reproduce.Job('locked', 'experiments/temporal_order.py:smoke', minutes=2.0)))
  (tmp_path / 'half' / 'checkpoints' / '1200').mkdir(parents=True)
  (tmp_path / 'half' / 'checkpoints' / '800').mkdir()
  (tmp_path / 'lost').mkdir()      # records, but its checkpoint is gone: it starts again
  (tmp_path / 'lost' / 'metrics.jsonl').write_text(
      '{"step": 500, "split": "train", "loss": 1.0}\n{"step": 900, "split": "valid"}\n')
  (tmp_path / 'locked').mkdir()
  (tmp_path / 'locked' / 'lock').write_text('123\n')     # a lock alone is not a start
  lines = reproduce.describe(target, str(tmp_path), 1).splitlines()
  status = {name: lines[2 + 2 * i].strip() for i, name in enumerate(('fresh', 'half', 'lost',
                                                                        'locked'))}
  assert status == {'fresh': '3 min', 'half': 'not measured yet, resumes at step 1,200',
                    'lost': '4 min, restarts from step 0 (records to step 900, no checkpoint)',
                    'locked': '2 min'}
  assert lines[-1] == 'Started by an earlier run: half, lost'
  assert 'Expected: about 9 min' in '\n'.join(lines)


def test_a_job_another_process_is_running_is_named_and_left_to_it(tmp_path, monkeypatch, capsys):
  """A job whose workdir's lock a live process holds (a sweep started by hand,
  or a second reproduce) is shown as running there, not as one to resume,
  and reproduce does not start it a second time (it would fail on the lock)."""
  target = reproduce.Target('toy.table', 'two runs', (
      reproduce.Job('mine', 'experiments/temporal_order.py:smoke', minutes=3.0),
      reproduce.Job('theirs', 'experiments/temporal_order.py:smoke', minutes=5.0)))
  monkeypatch.setitem(reproduce.TARGETS, target.key, target)
  folder = tmp_path / 'toy_table'
  (folder / 'theirs' / 'checkpoints' / '400').mkdir(parents=True)
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from training import records; '
       'records.WorkdirLock(sys.argv[1]); print("held", flush=True); time.sleep(60)',
       str(folder / 'theirs')], cwd=ROOT, stdout=subprocess.PIPE, text=True)
  started = []
  monkeypatch.setattr(reproduce, '_start', lambda job, workdir, core: started.append(job.name)
                      or subprocess.Popen([sys.executable, '-c', '']))
  monkeypatch.setattr(reproduce, '_finish', lambda target, folder, failed: '')
  try:
    assert holder.stdout.readline().strip() == 'held'
    lines = reproduce.describe(target, str(folder), 1).splitlines()
    assert lines[4].strip() == (f'in process {holder.pid}: 5 min, '
                                'running (latest checkpoint: step 400)')
    assert lines[-1] == f'Running now in another process (left to it): theirs (process {holder.pid})'
    assert not any(line.startswith('Started by an earlier run') for line in lines)
    reproduce.run(target.key, str(tmp_path), workers=1)
    assert started == ['mine']
  finally:
    holder.kill()
    holder.wait()
    holder.stdout.close()
  text = reproduce.describe(target, str(folder), 1)     # the holder ended: a run to resume
  assert '5 min, resumes at step 400' in text and 'Started by an earlier run: theirs' in text


def test_jobs_whose_data_is_missing_are_refused_before_any_starts(tmp_path, monkeypatch):
  """Without the corpora, reproduce says so once and starts nothing (each
  job used to start, compile and fail on its own); with the files there
  (their content is the loaders' business), every job starts."""
  music_job = reproduce.TARGETS['bengio2013.table1'].jobs[0]
  ptb_job = reproduce.TARGETS['pascanu2013.table2'].jobs[0]
  target = reproduce.Target('toy.table', 'three runs', (
      reproduce.Job('pathological', 'experiments/temporal_order.py:smoke', minutes=1.0),
      reproduce.Job('music', music_job.config, minutes=2.0),
      reproduce.Job('ptb', ptb_job.config, minutes=3.0)))
  monkeypatch.setitem(reproduce.TARGETS, target.key, target)
  data = tmp_path / 'data'
  monkeypatch.setenv('RNNOPT_DATA', str(data))
  started = []
  monkeypatch.setattr(reproduce, '_start', lambda job, workdir, core: started.append(job.name)
                      or subprocess.Popen([sys.executable, '-c', '']))
  monkeypatch.setattr(reproduce, '_finish', lambda target, folder, failed: '')
  with pytest.raises(reproduce.RunError) as e:
    reproduce.run(target.key, str(tmp_path / 'runs'), workers=1)
  message = str(e.value)
  assert message.startswith('toy.table: nothing started; ') and '\n' not in message
  assert 'python -m datasets.download music' in message and '1 job(s) (music)' in message
  assert 'python -m datasets.download ptb' in message and '1 job(s) (ptb)' in message
  assert started == []
  import tasks
  for job in target.jobs[1:]:
    config = reproduce.load_config(job.config)
    for path, _ in tasks.DATA_FILES[config.task.name](config):
      (data / path).parent.mkdir(parents=True, exist_ok=True)
      (data / path).write_text('')
  reproduce.run(target.key, str(tmp_path / 'runs'), workers=1)
  assert sorted(started) == ['music', 'pathological', 'ptb']


def test_a_job_signalled_as_it_ended_counts_as_done(tmp_path, monkeypatch, capsys):
  """A run that got a SIGTERM during its final test writes result.json and
  exits 1: reproduce counts it done; one that exits 1 without it, failed,
  with its log's last line (its error) shown."""
  target = reproduce.Target('toy.table', 'two runs', (
      reproduce.Job('ended', 'experiments/temporal_order.py:smoke', minutes=3.0),
      reproduce.Job('broke', 'experiments/temporal_order.py:smoke', minutes=2.0)))
  monkeypatch.setitem(reproduce.TARGETS, target.key, target)

  def start(job, workdir, core):
    os.makedirs(workdir, exist_ok=True)
    if job.name == 'ended':
      with open(os.path.join(workdir, 'result.json'), 'w') as f:
        json.dump({'members': []}, f)
    else:                      # its one-line error ends its log
      with open(os.path.join(workdir, 'log.txt'), 'w') as f:
        f.write('Loading JSB...\nerror: no file music/JSB.pickle; fetch it: python -m '
                'datasets.download music\n\n')
    return subprocess.Popen([sys.executable, '-c', 'raise SystemExit(1)'])

  failed = []
  monkeypatch.setattr(reproduce, '_start', start)
  monkeypatch.setattr(reproduce, '_finish', lambda target, folder, f: failed.extend(f) or '')
  reproduce.run(target.key, str(tmp_path), workers=1)
  out = capsys.readouterr().out
  assert 'ended: done after' in out and 'broke: FAILED (exit 1)' in out
  assert ('\n    error: no file music/JSB.pickle; fetch it: python -m datasets.download music\n'
          in out)        # why it failed, on the terminal
  assert failed == ['broke']


def test_the_plan_counts_a_sweeps_finished_trials_and_the_time_left(tmp_path):
  """temporal_order_sweep.py:smoke is 2 initialisations (groups) x 2 drawn
  trials: 4 trials, a unit of 2 per group with one worker."""
  target = reproduce.Target('toy.search', 'a search', (
      reproduce.Job('search', 'experiments/temporal_order_sweep.py:smoke', command='sweep',
                    minutes=10.0),))
  folder = tmp_path / 'toy_search' / 'search'
  (folder / 'g00_init_scheme-smart_tanh' / 'part0').mkdir(parents=True)
  (folder / 'g00_init_scheme-smart_tanh' / 'part0' / 'result.json').write_text('{"members": []}')
  (folder / 'g01_init_scheme-basic_tanh' / 'part0' / 'checkpoints' / '300').mkdir(parents=True)
  text = reproduce.describe(target, str(folder.parent), 1)
  assert ('10 min in all, about 5 left, 2 of 4 trials done; '
          'g01_init_scheme-basic_tanh/part0 resumes at step 300') in text
  assert 'Expected: about 5 min' in text


def _half_done_search(tmp_path):
  """A search of 4 trials in 2 units, not timed whole; its first unit (2
  trials) finished in 600 s of recorded wall time. (target, its folder)"""
  target = reproduce.Target('toy.search', 'a search', (
      reproduce.Job('search', 'experiments/temporal_order_sweep.py:smoke', command='sweep'),))
  folder = tmp_path / 'toy_search' / 'search'
  (folder / 'g00_init_scheme-smart_tanh' / 'part0').mkdir(parents=True)
  (folder / 'g00_init_scheme-smart_tanh' / 'part0' / 'result.json').write_text(
      json.dumps({'members': [], 'wall_time_s': 600.0}))
  return target, folder


def test_a_search_not_timed_whole_is_timed_by_its_finished_trials(tmp_path):
  """No minutes for the job: its finished unit (2 trials, 600 s of recorded
  wall time) gives 5 min a trial, so the other 2 trials about 10 min."""
  target, folder = _half_done_search(tmp_path)
  (folder / 'g01_init_scheme-basic_tanh' / 'part0' / 'checkpoints' / '300').mkdir(parents=True)
  text = reproduce.describe(target, str(folder.parent), 1)
  assert ("not measured whole, about 10 min left at its trials' pace so far, 2 of 4 trials "
          'done (5 min a trial); g01_init_scheme-basic_tanh/part0 resumes at step 300') in text
  assert 'Expected: about 10 min' in text
  assert 'Not measured yet' not in text


def test_a_started_unit_counts_toward_the_pace_with_what_it_has_spent(tmp_path):
  """The finished unit: 2 trials in 600 s, 5 min a trial. The started one
  (2 trials) had spent 1,800 s at its checkpoint (the ``meta`` item orbax
  writes as ``meta/metadata``), already 15 min a trial: that is the pace,
  and the rest is 2 trials x 15 min less the 30 min spent: about 0 left
  (the pace is never below a started unit's, so this is never negative). With 120 s spent the
  finished unit's 5 min a trial stand: 2 x 5 - 2 = 8 min left."""
  target, folder = _half_done_search(tmp_path)
  meta = folder / 'g01_init_scheme-basic_tanh' / 'part0' / 'checkpoints' / '300' / 'meta'
  meta.mkdir(parents=True)
  for spent, per_trial, rest in ((1800.0, 15, 0), (120.0, 5, 8)):
    (meta / 'metadata').write_text(json.dumps({'elapsed': spent, 'solved_at': [None, None]}))
    text = reproduce.describe(target, str(folder.parent), 1)
    assert (f"about {rest} min left at its trials' pace so far, 2 of 4 trials done "
            f'({per_trial} min a trial); g01_init_scheme-basic_tanh/part0 resumes at step 300 '
            f'({spent / 60:.0f} min in)') in text, text
  (meta / 'metadata').write_text('not json')     # unreadable: the finished units alone
  text = reproduce.describe(target, str(folder.parent), 1)
  assert ("about 10 min left at its trials' pace so far, 2 of 4 trials done (5 min a trial); "
          'g01_init_scheme-basic_tanh/part0 resumes at step 300\n') in text, text


def test_the_plan_says_when_a_finished_sweeps_trials_diverged(tmp_path):
  target = reproduce.Target('toy.search', 'three searches', tuple(
      reproduce.Job(name, 'experiments/temporal_order_sweep.py:smoke', command='sweep')
      for name in ('fine', 'some', 'all')))
  for name, diverged in (('fine', 0), ('some', 1), ('all', 4)):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'sweep.json').write_text(json.dumps(
        {'trials': [{}] * 4, 'diverged': diverged, 'units': 2, 'finished_units': 2}))
  lines = reproduce.describe(target, str(tmp_path), 1).splitlines()
  assert [lines[2 + 2 * i].strip() for i in range(3)] == [
      'done', 'done; 1 of 4 trials diverged', 'done; 4 of 4 trials diverged, so it has no result']


def test_a_sweep_whose_ranking_lists_failed_units_is_not_done(tmp_path):
  """sweep.json is written even when units failed (they are listed); the job
  is then unfinished, so `reproduce` runs the sweep again, which retries them."""
  job = reproduce.Job('search', 'experiments/temporal_order_sweep.py:smoke', command='sweep')
  (tmp_path / 'sweep.json').write_text(json.dumps({'trials': [{}] * 4, 'failed_units': []}))
  assert job.finished(str(tmp_path))
  (tmp_path / 'sweep.json').write_text(json.dumps(
      {'trials': [{}] * 4, 'failed_units': ['g01_init_scheme-basic_tanh/part0']}))
  assert not job.finished(str(tmp_path))
  (tmp_path / 'sweep.json').write_text('{"trials": [')        # torn
  assert not job.finished(str(tmp_path))


def test_status_runs_nothing_and_names_a_bad_target_in_one_line(tmp_path):
  out = subprocess.run([sys.executable, 'launch.py', 'reproduce', '--status',
                        f'--workdir={tmp_path}', 'pascanu2013.table2'],
                       cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  assert out.stdout.startswith('Pascanu et al. (2013) Table 2')
  lines = [l.split(None, 1)[1] for l in out.stdout.splitlines() if 'launch.py' in l]
  # as one would type each job's command (README's form, with its folder)
  assert lines == [f'launch.py --config={job.config} --workdir={tmp_path}/pascanu2013_table2/{job.name}'
                   for job in reproduce.TARGETS['pascanu2013.table2'].jobs]
  assert len(lines) == 3 and all('experiments/ptb_char.py' in line for line in lines)
  assert os.listdir(tmp_path) == []
  out = subprocess.run([sys.executable, 'launch.py', 'reproduce', '--status', 'table9'],
                       cwd=ROOT, capture_output=True, text=True)
  assert out.returncode != 0 and "unknown target 'table9'" in out.stderr
  assert 'Traceback' not in out.stderr


def test_sweep_status_ranks_the_finished_trials_and_times_the_rest(tmp_path):
  """``launch.py sweep --status`` between sessions: the 4-trial smoke search
  with its first unit (2 trials, 600 s) finished and its second started:
  5 min a trial, 10 min left, and the two finished trials ranked on
  validation (the lower one first and named best); nothing is written. An
  empty folder: not started."""
  config = reproduce.load_config('experiments/temporal_order_sweep.py:smoke')
  _, folder = _half_done_search(tmp_path)
  unit = folder / 'g00_init_scheme-smart_tanh' / 'part0'
  members = [dict(hparams={'seed': 0, 'optim.learning_rate': lr}, best_valid_loss=v,
                  test_loss=v + 0.1, test_error=0.0, test_loss_at_best_valid=v + 0.1,
                  test_error_at_best_valid=0.0) for lr, v in ((0.01, 0.4), (0.02, 0.3))]
  (unit / 'result.json').write_text(json.dumps({'members': members, 'wall_time_s': 600.0}))
  (folder / 'g01_init_scheme-basic_tanh' / 'part0' / 'checkpoints' / '300').mkdir(parents=True)
  before = sorted(str(p) for p in tmp_path.rglob('*'))
  text = reproduce.sweep_status(config, str(folder))
  assert text.startswith(f'{folder}: 2 of 4 trials done (5 min a trial); '
                         'g01_init_scheme-basic_tanh/part0 resumes at step 300\n'
                         "About 10 min of one worker left at its trials' pace so far."), text
  ranked = [l for l in text.splitlines() if l.startswith('| 1 ') or l.startswith('| 2 ')]
  assert 'optim.learning_rate=0.02' in ranked[0] and 'optim.learning_rate=0.01' in ranked[1]
  assert "Best: g00_init_scheme-smart_tanh/part0 {'optim.learning_rate': 0.02}: valid 0.3" in text
  assert sorted(str(p) for p in tmp_path.rglob('*')) == before
  assert reproduce.sweep_status(config, str(tmp_path / 'none')) == (
      f'{tmp_path / "none"}: not started (the same command without --status starts it)')


def test_launch_sweep_status_runs_nothing(tmp_path):
  out = subprocess.run([sys.executable, 'launch.py', 'sweep', '--status',
                        '--config=experiments/temporal_order_sweep.py:smoke', f'--workdir={tmp_path}'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  assert out.stdout == f'{tmp_path}: not started (the same command without --status starts it)\n'
  assert os.listdir(tmp_path) == []
  out = subprocess.run([sys.executable, 'launch.py', '--status', '--workdir=x',
                        '--config=experiments/temporal_order.py'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode != 0 and '--status is for reproduce and sweep, not train' in out.stderr


def test_fig7_more_runs_each_point_at_the_figures_settings_with_more_updates():
  """Each longer run is the figure's own member (same model, data, rate, clip
  and Omega as experiments/temporal_order_fig7.py at that point), only longer."""
  from experiments import temporal_order_fig7
  from reporting.figures import fig7
  points = {}
  for job in reproduce.TARGETS['pascanu2013.fig7_more'].jobs:
    config = reproduce.load_config(job.config)
    init, length = config.model.init_scheme, config.task.min_length
    figure = temporal_order_fig7.get_config(f'init={init},length={length}')
    assert config.model == figure.model and config.task == figure.task, job.name
    assert config.reg.omega_schedule == figure.reg.omega_schedule
    assert config.optim.learning_rate == figure.optim.learning_rate
    assert config.optim.name == figure.optim.name
    assert config.train.solved_error == figure.train.solved_error
    assert config.train.num_steps > figure.train.num_steps
    method = fig7.method_of({'optim.clip_norm': config.optim.clip_norm,
                             'reg.omega_alpha': config.reg.omega_alpha})
    points.setdefault((init, length, method), []).extend(config.population.seeds)
    assert job.name.startswith(f'{init}_T{length}_{method.replace("-", "")}_')
  # Every point has seeds 0-4 exactly once, however its runs split them.
  assert all(sorted(s) == [0, 1, 2, 3, 4] for s in points.values()), points
  assert len(points) == 11


def test_fig7_more_draws_beside_the_figures_runs(tmp_path, monkeypatch):
  """_finish of the target: its finished runs drawn and tabulated against the
  pascanu2013.fig7 runs beside it."""
  def write(run, init, length, members, clip=1.0, alpha=4.0, steps=50_000):
    os.makedirs(run)
    with open(os.path.join(run, 'config.json'), 'w') as f:
      json.dump({'model': {'init_scheme': init}, 'task': {'min_length': length},
                 'optim': {'clip_norm': clip}, 'reg': {'omega_alpha': alpha},
                 'train': {'num_steps': steps, 'solved_error': 0.01}}, f)
    with open(os.path.join(run, 'result.json'), 'w') as f:
      json.dump({'success': 'paper', 'members': members}, f)

  from reporting.figures import fig7
  figure = [{'hparams': {'optim.clip_norm': c, 'reg.omega_alpha': a}, 'solved': False}
            for _, c, a in fig7.METHOD_ROWS for _ in range(5)]
  write(str(tmp_path / 'pascanu2013_fig7' / 'basic_tanh_T200'), 'basic_tanh', 200, figure)
  target = reproduce.Target('pascanu2013.fig7_more', 't', (
      reproduce.Job('a', 'x'), reproduce.Job('b', 'x'), reproduce.Job('c', 'x')),
      figure='fig7_more')
  folder = tmp_path / 'pascanu2013_fig7_more'
  write(str(folder / 'a'), 'basic_tanh', 200, [{'hparams': {'seed': i}, 'solved': i < 2}
                                             for i in range(3)], steps=600_000)
  write(str(folder / 'b'), 'basic_tanh', 200, [{'hparams': {'seed': i}, 'solved': i == 3}
                                             for i in (3, 4)], steps=600_000)
  text = reproduce._finish(target, str(folder), [])          # job c has not run
  assert '| basic_tanh | SGD-CR | 200 | 0/5 [0.00, 0.43] | 3/5 [0.23, 0.88] | 600,000 |' in text
  assert (folder / 'fig7_more.png').exists()


def test_table1_tuned_searches_each_cells_step_and_joins_nottingham(tmp_path):
  """pascanu2013.table1_tuned: every Piano-midi.de and MuseData cell over 3
  seeds, each a population over the learning rate (every method) or the
  threshold (the clipped ones), the other at the paper's value; its table
  takes Nottingham from pascanu2013.table1's folder beside it."""
  from experiments import music
  target = reproduce.TARGETS['pascanu2013.table1_tuned']
  cells = {}
  for job in target.jobs:
    c = reproduce.load_config(job.config)
    (field,) = c.population.hparams
    paper = music.get_config(f'dataset={c.task.kwargs["dataset"]},method={c.paper.methods[0]}')
    assert field in ('optim.learning_rate', 'optim.clip_norm')
    assert (c.optim.learning_rate, c.optim.clip_norm) == (
        paper.optim.learning_rate, paper.optim.clip_norm)     # the other knob at the paper's
    if field == 'optim.learning_rate':                        # the paper's setting is a trial
      assert paper.optim.learning_rate in {r[0] for r in c.population.rows}
    cells.setdefault((c.task.kwargs['dataset'], c.paper.methods[0], field), set()).add(c.seed)
  assert all(seeds == {0, 1, 2} for seeds in cells.values())
  assert sorted(cells) == sorted(
      (d, m, f) for d in ('piano', 'musedata') for m in ('sgd', 'sgd-c', 'sgd-cr')
      for f in ('optim.learning_rate', 'optim.clip_norm') if (m, f) != ('sgd', 'optim.clip_norm'))

  nottingham = tmp_path / 'pascanu2013_table1' / 'nottingham'
  os.makedirs(nottingham)
  config = music.get_config('dataset=nottingham,method=all').to_dict()
  (nottingham / 'config.json').write_text(json.dumps(config))
  members = [dict(hparams={'seed': 0, 'optim.clip_norm': cl, 'reg.omega_alpha': al},
                  test_loss=t) for (cl, al), t in zip(config['population']['rows'], (3.7, 3.5, 3.3))]
  (nottingham / 'result.json').write_text(json.dumps(dict(step=9, wall_time_s=1.0, members=members)))
  (nottingham / 'metrics.jsonl').write_text('')
  text = reproduce._finish(target, str(tmp_path / 'pascanu2013_table1_tuned'), [])
  assert '| Nottingham | SGD+CR | 3.46 | 3.36 | 3.30 |' in text


@pytest.mark.parametrize('job', reproduce.TARGETS['bai2018.ablation'].jobs, ids=lambda j: j.name)
def test_each_ablation_job_is_timed_by_its_committed_record(job):
  """``reproduce --status bai2018.ablation`` on an empty workdir gives each
  job the minutes of its record (``reporting.walltimes``, which the README's
  targets table quotes), not 'not measured yet'."""
  from reporting import walltimes
  record = walltimes.job_time(os.path.join(ROOT, 'results', 'bai2018_ablation', job.name))
  assert job.minutes is not None and abs(job.minutes - record['minutes']) <= 0.5, (
      job.minutes, record)


def test_every_job_with_a_committed_record_has_its_minutes():
  """``reproduce --status`` and the plan time a job by ``Job.minutes``; a
  job whose record is committed under results/ has been measured, so it must
  have them (pascanu2013.table2's three jobs and addition_50_200 said 'not
  measured yet' beside their records)."""
  root = os.path.join(reproduce.ROOT, 'results')
  missing = [f'{key}/{job.name}' for key, target in reproduce.TARGETS.items()
             for job in target.jobs
             if job.minutes is None and job.finished(os.path.join(root, key.replace('.', '_'),
                                                                   job.name))]
  assert not missing
