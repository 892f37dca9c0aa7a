"""Faults injected into runs: each ends in one line saying what to do, or in
the intact run, and nothing recorded is lost.

kill -9 at random instants (checkpoint and record writing included), Ctrl-C,
two processes on one workdir, a killed sweep parent, each kind of corrupted
data file, a torn record, a rerun under another config. The subprocess ones
(``slow``) start Python and JAX several times.
"""

import glob
import json
import math
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import ml_collections
import numpy as np

from training import records
from orchestration import sweep
from training import train
from training import workdir as workdir_lib
from datasets import _files, music, ptb
from training.errors import RunError
from experiments import pathological, temporal_order, temporal_order_sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A tiny run that checkpoints after every chunk of 10 steps, so that most of
# its time after compiling goes to writing checkpoints and records.
TINY = ['--config=experiments/temporal_order.py:smoke', '--config.model.hidden_size=8',
        '--config.train.num_steps=120', '--config.train.log_every=10',
        '--config.train.eval_every=40', '--config.train.eval_sequences=100',
        '--config.train.test_sequences=100', '--config.train.checkpoint_every_s=0']


def tiny_config(**train_fields):
  c = temporal_order.get_config('smoke')
  c.model.hidden_size = 8
  c.train.eval_sequences = c.train.test_sequences = 100
  for k, v in train_fields.items():
    c.train[k] = v
  return c


def one_line(stderr: str) -> str:
  lines = [l for l in stderr.splitlines() if l.strip()]
  assert 'Traceback' not in stderr and len(lines) == 1, stderr
  return lines[0]


def launch(*args, **kwargs):
  return subprocess.Popen([sys.executable, 'launch.py', *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def comparable(workdir):
  """The records of a run that do not depend on timing."""
  result = json.loads((workdir / 'result.json').read_text())
  metrics = [{k: v for k, v in r.items() if k != 'steps_per_s'}
             for r in records.read_jsonl(str(workdir / 'metrics.jsonl'))]
  return [m['test_loss'] for m in result['members']], result['step'], metrics


@pytest.fixture(scope='module')
def run40(tmp_path_factory):
  """A finished in-process run of 40 steps (copied by the tests that change it)."""
  workdir = tmp_path_factory.mktemp('run40') / 'run'
  train.train_and_evaluate(tiny_config(num_steps=40), str(workdir))
  return workdir


def copy_of(run, tmp_path):
  shutil.copytree(run, tmp_path / 'run')
  return tmp_path / 'run'


# --- reruns ------------------------------------------------------------------

@pytest.mark.parametrize('field,value', [('optim.learning_rate', 0.05),
                                         ('model.hidden_size', 7)])
def test_a_rerun_under_another_config_is_refused_and_config_json_kept(run40, tmp_path, field,
                                                                      value):
  workdir = copy_of(run40, tmp_path)
  before = (workdir / 'config.json').read_bytes()
  config = tiny_config(num_steps=60)
  group, name = field.split('.')
  config[group][name] = value
  with pytest.raises(RunError, match=f'another config .*{field}'):
    train.train_and_evaluate(config, str(workdir))
  assert (workdir / 'config.json').read_bytes() == before
  assert workdir_lib.config_changes(json.loads(before), json.loads(config.to_json())) == [field]


def test_the_wall_time_a_checkpoint_records_is_read_back(run40, tmp_path):
  """``reproduce --status`` times a started sweep unit by its checkpoint's
  recorded wall time: read from the trainer's own checkpoint, it is positive
  and no more than the finished run's total; without checkpoints, None."""
  result = json.loads((run40 / 'result.json').read_text())
  elapsed = workdir_lib.checkpoint_elapsed(str(run40))
  assert elapsed is not None and 0 < elapsed <= result['wall_time_s']
  assert workdir_lib.checkpoint_elapsed(str(tmp_path)) is None


@pytest.mark.slow   # two short runs and a crashed one
def test_a_resume_after_a_member_stopped_gives_the_uninterrupted_records(tmp_path, monkeypatch):
  """Two members, one with a zero learning rate: its validation never falls,
  so patience stops it at the third validation (step 30) while the other
  trains on. A crash at step 50 and a rerun from the last checkpoint must
  write exactly the uninterrupted run's records: the stopped member is
  not scored again, nor its line written, after the resume."""
  def config():           # addition: the output's bias alone lowers the MSE for a while
    c = pathological.get_config('problem=addition,smoke')
    c.model.hidden_size = 8
    c.train.update(num_steps=90, log_every=10, eval_every=10, patience=2, eval_sequences=100,
                   test_sequences=100, checkpoint_every_s=0.0)
    c.population.hparams = ('optim.learning_rate',)
    c.population.rows = ((0.0,), (0.005,))
    return c
  train.train_and_evaluate(config(), str(tmp_path / 'straight'))
  stops = [m['step'] for m in records.read_jsonl(str(tmp_path / 'straight' / 'metrics.jsonl'))
           if m.get('member') == 0 and m.get('stopped')]
  assert stops and stops[0] <= 40, stops          # the setting: member 0 stops early ...
  valid1 = [m['step'] for m in records.read_jsonl(str(tmp_path / 'straight' / 'metrics.jsonl'))
            if m.get('member') == 1 and m.get('split') == 'valid']
  assert max(valid1) == 90                          # ... and member 1 trains to the end
  # the step each member stopped at is kept (the guard's verdict counts updates to it)
  last = workdir_lib.checkpoint_steps(str(tmp_path / 'straight'))[-1]
  meta = json.loads((tmp_path / 'straight' / 'checkpoints' / str(last) / 'meta' / 'metadata'
                     ).read_text())
  assert meta['stopped_at'] == [30, None] and stops[0] == 40   # its first line marked stopped

  run_chunk = train._run_chunk

  def crash_at_50(run, *args, **kwargs):
    if run.step >= 50:
      raise RuntimeError('simulated crash')
    return run_chunk(run, *args, **kwargs)
  monkeypatch.setattr(train, '_run_chunk', crash_at_50)
  with pytest.raises(RuntimeError, match='simulated crash'):
    train.train_and_evaluate(config(), str(tmp_path / 'resumed'))
  monkeypatch.setattr(train, '_run_chunk', run_chunk)
  resume_at = workdir_lib.checkpoint_steps(str(tmp_path / 'resumed'))[-1]
  assert 30 < resume_at < 90, resume_at          # after member 0 stopped (the one at 50 may be torn)
  train.train_and_evaluate(config(), str(tmp_path / 'resumed'))
  assert comparable(tmp_path / 'resumed') == comparable(tmp_path / 'straight')


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason='signal handlers are installed in the main thread only')
def test_a_sigterm_after_ctrl_c_is_a_repeat_and_a_second_ctrl_c_stops_at_once():
  """Ctrl-C reaches a sweep's runs and its parent, which then sends each run
  a SIGTERM: that must not stop the run before its checkpoint."""
  def deliver(sig):
    os.kill(os.getpid(), sig)
    for _ in range(100):         # the handler runs in this thread, between bytecodes
      time.sleep(0.001)
  with train._Interrupt() as interrupt:
    deliver(signal.SIGINT)
    deliver(signal.SIGTERM)
    deliver(signal.SIGTERM)
    assert interrupt.signal == 'SIGINT'
    with pytest.raises(KeyboardInterrupt):
      deliver(signal.SIGINT)
  with train._Interrupt() as interrupt:     # the other order: Ctrl-C after a kill still stops
    deliver(signal.SIGTERM)
    assert interrupt.signal == 'SIGTERM'
    with pytest.raises(KeyboardInterrupt):
      deliver(signal.SIGINT)


def _signal_during(monkeypatch, name, when=lambda *a, **k: True):
  """Sends this process a SIGTERM as ``train.<name>`` starts (where ``when``
  says, once), as a session's end or `timeout` does."""
  original, sent = getattr(train, name), []
  def wrapped(*args, **kwargs):
    if not sent and when(*args, **kwargs):
      sent.append(True)
      os.kill(os.getpid(), signal.SIGTERM)
      for _ in range(100):        # the handler runs in this thread, between bytecodes
        time.sleep(0.001)
    return original(*args, **kwargs)
  monkeypatch.setattr(train, name, wrapped)
  return sent


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason='signal handlers are installed in the main thread only')
@pytest.mark.parametrize('where', ['last validation', 'final test'])
def test_a_signal_as_the_run_ends_keeps_the_finished_run_and_stops_its_caller(
    where, tmp_path, monkeypatch):
  """A SIGTERM in the last chunk's validation or during the final test: the
  run has trained, so it is tested and result.json written as without the
  signal (it was thrown away with only a checkpoint, which a session's end
  loses), then Interrupted says so; in a sweep, no further unit starts."""
  config = lambda: tiny_config(num_steps=40, log_every=10, eval_every=20)
  train.train_and_evaluate(config(), str(tmp_path / 'straight'))
  sent = (_signal_during(monkeypatch, '_validate', lambda run, ev, w, tc, step: step == 40)
          if where == 'last validation' else _signal_during(monkeypatch, '_summarise'))
  with pytest.raises(train.Interrupted, match='SIGTERM came as the run ended at step 40: it '
                     r'finished \(result.json written\); a rerun of the same command finds it done'):
    train.train_and_evaluate(config(), str(tmp_path / 'signalled'))
  assert sent
  assert comparable(tmp_path / 'signalled') == comparable(tmp_path / 'straight')

  monkeypatch.undo()
  _signal_during(monkeypatch, '_summarise')     # in the first unit of a sweep of four
  with pytest.raises(RunError, match='sweep interrupted in .*: SIGTERM came as the run ended'):
    swept = temporal_order_sweep.get_config('smoke,workers=1')
    swept.sweep.part_size = 1                   # four units of one trial
    sweep.run(swept, str(tmp_path / 'sweep'))
  finished = glob.glob(str(tmp_path / 'sweep' / '*' / 'part*' / 'result.json'))
  started = glob.glob(str(tmp_path / 'sweep' / '*' / 'part*' / 'config.json'))
  assert len(finished) == len(started) == 1, (finished, started)


def test_a_finished_run_without_its_checkpoint_is_not_started_over(run40, tmp_path):
  """Records committed without checkpoints (as results/ keeps them): a rerun
  would begin at step 0 and overwrite them, so it is refused and nothing changes."""
  workdir = copy_of(run40, tmp_path)
  shutil.rmtree(workdir / 'checkpoints')
  before = {name: (workdir / name).read_bytes() for name in ('config.json', 'metrics.jsonl',
                                                              'result.json')}
  with pytest.raises(RunError, match='finished run .* no checkpoint'):
    train.train_and_evaluate(tiny_config(num_steps=40), str(workdir))
  assert before == {name: (workdir / name).read_bytes() for name in before}
  (workdir / 'result.json').unlink()          # the way to start it over on purpose
  train.train_and_evaluate(tiny_config(num_steps=40), str(workdir))
  assert (workdir / 'result.json').exists()


def test_a_rerun_with_a_budget_below_its_checkpoint_is_refused_and_records_kept(run40, tmp_path,
                                                                                 capsys):
  """A budget may grow on a rerun (a constant schedule), not fall below the
  step the run has reached: the run of 40 steps rerun with 30 printed
  'Resumed from step 40', scored again and recorded num_steps 30 beside its
  40 steps. Refused, every record byte for byte as it was; a branch from it
  into a smaller budget is refused the same way."""
  workdir = copy_of(run40, tmp_path)
  before = {name: (workdir / name).read_bytes() for name in ('config.json', 'metrics.jsonl',
                                                              'result.json')}
  with pytest.raises(RunError, match='checkpoint at step 40, past this config\'s budget of 30 '
                                     'steps; rerun with its own budget'):
    train.train_and_evaluate(tiny_config(num_steps=30), str(workdir))
  assert before == {name: (workdir / name).read_bytes() for name in before}
  with pytest.raises(RunError, match='its checkpoint is at step 40, past this config\'s budget of 30 '
                                     'steps; branch from an earlier step'):
    train.train_and_evaluate(tiny_config(num_steps=30), str(tmp_path / 'branch'),
                             branch_from=str(workdir))
  # nothing of the refused branch is kept (its config.json said 30 beside a step-40 checkpoint)
  assert not (set(os.listdir(tmp_path / 'branch')) & {'checkpoints', 'config.json', 'metrics.jsonl'})
  capsys.readouterr()
  train.train_and_evaluate(tiny_config(num_steps=50), str(tmp_path / 'branch'), branch_from=str(workdir))
  assert json.loads((tmp_path / 'branch' / 'result.json').read_text())['step'] == 50
  out = capsys.readouterr().out      # a branch says so (it read "Resumed from step 40")
  assert f'Branched from {workdir} at step 40, into {tmp_path / "branch"}\n' in out
  assert 'Resumed from' not in out
  train.train_and_evaluate(tiny_config(num_steps=40), str(workdir))   # its own budget: fine
  assert json.loads((workdir / 'config.json').read_text())['train']['num_steps'] == 40


def test_the_shape_check_names_the_first_array_either_side_lacks_or_changes(tmp_path):
  """``train._check_shapes`` against a checkpoint written by orbax: a key
  array is compared as its stored data, and an array on one side only is
  named whichever side holds it (a branch from an Adam run into an SGD
  config passed the check and failed inside orbax's restore)."""
  import jax
  import jax.numpy as jnp
  import orbax.checkpoint as ocp
  ckpt = ocp.CheckpointManager(str(tmp_path), options=ocp.CheckpointManagerOptions(create=True))
  saved = {'w': jnp.zeros((2, 3)), 'key': jax.random.key(0), 'opt': {'mu': jnp.zeros(3)}}
  ckpt.save(5, args=ocp.args.Composite(state=ocp.args.StandardSave(saved)))
  ckpt.wait_until_finished()
  train._check_shapes(ckpt, 5, state=saved)                          # the same: nothing to say
  with pytest.raises(ValueError, match=r'state/w: this config makes float32\[2, 4\], the '
                                       r'checkpoint holds float32\[2, 3\]'):
    train._check_shapes(ckpt, 5, state=dict(saved, w=jnp.zeros((2, 4))))
  with pytest.raises(ValueError, match='state/opt/nu is not in the checkpoint'):
    train._check_shapes(ckpt, 5, state=dict(saved, opt={'mu': jnp.zeros(3), 'nu': jnp.zeros(3)}))
  with pytest.raises(ValueError, match='the checkpoint holds state/opt/mu, which this config does '
                                       'not make'):
    train._check_shapes(ckpt, 5, state=dict(saved, opt={}))
  ckpt.close()


def test_budget_and_reporting_fields_may_change():
  old = json.loads(tiny_config().to_json())
  new = tiny_config(num_steps=500, log_every=10, eval_every=50, checkpoint_every_s=1.0)
  assert workdir_lib.config_changes(old, json.loads(new.to_json())) == []
  new.train.patience = 3                     # when a member stops, like the budget
  new.sweep.trials = 7                       # how a sweep is laid out: not what a run computes
  assert workdir_lib.config_changes(old, json.loads(new.to_json())) == []
  new.optim.schedule = 'warmup_cosine'      # the budget now sets the schedule's length
  assert 'train.num_steps' in workdir_lib.config_changes(old, json.loads(new.to_json()))


@pytest.mark.parametrize('schedule,field,value,why', [
    ('warmup_cosine', 'train.num_steps', 80, 'the budget sets the warmup_cosine schedule, so it '
                                             'cannot change mid-run'),
    ('warmup_cosine', 'model.hidden_size', 9, None),        # not the budget: no reason given
    ('constant', 'train.eval_sequences', 7, None)])
def test_a_refused_budget_change_says_the_schedule_is_why(tmp_path, schedule, field, value, why):
  old = tiny_config(num_steps=40)
  old.optim.schedule = schedule
  (tmp_path / 'config.json').write_text(workdir_lib.config_json(old))
  (tmp_path / 'checkpoints' / '40').mkdir(parents=True)    # a started run
  new = old.copy_and_resolve_references()
  group, name = field.split('.')
  new[group][name] = value
  with pytest.raises(RunError, match=f'another config .*{field}') as error:
    workdir_lib.open_workdir(new, str(tmp_path))
  assert (why in str(error.value)) if why else 'schedule' not in str(error.value)


@pytest.mark.parametrize('at,error', [('@', "no step after '@'"),
                                      ('@x', "no checkpoint at step 'x'"),
                                      ('@30', "no checkpoint at step '30' .*it has 40")])
def test_a_branch_from_a_step_not_there_is_refused(tmp_path, at, error):
  (tmp_path / 'source' / 'checkpoints' / '40').mkdir(parents=True)
  with pytest.raises(RunError, match=f'--branch_from=.*source{at}: {error}'):
    workdir_lib.branch(tiny_config(), str(tmp_path / 'new'), str(tmp_path / 'source') + at)
  assert not (tmp_path / 'new').exists()


def test_a_field_added_later_counts_as_absent_at_its_default_only():
  """A run recorded before reg.omega_form existed computed the squared form:
  resuming it under 'squared' is no change, under 'norms' is one."""
  old = json.loads(tiny_config().to_json())
  del old['reg']['omega_form']
  new = tiny_config()
  assert workdir_lib.config_changes(old, json.loads(new.to_json())) == []
  new.reg.omega_form = 'norms'
  assert workdir_lib.config_changes(old, json.loads(new.to_json())) == ['reg.omega_form']
  new.reg.omega_form = 'norm'
  with pytest.raises(ValueError, match="reg.omega_form='norm' is not one of squared, norms"):
    train.check_config(new)


def test_a_field_added_later_that_could_not_act_does_not_count():
  """Validation's NADE sample count came after the RNN rows of Bengio Table 1
  ran: their records lack it, and it cannot act without the NADE output, so
  an explicit rerun of those sweeps is not refused; a NADE row's record
  without it (validation then drew the test count) still is."""
  from experiments import music_bengio
  for method, counts in (('sgd', False), ('nade-sgd', True)):
    new = music_bengio.get_config(f'dataset=jsb,method={method}')
    assert new.train.valid_accuracy_samples == 1
    old = json.loads(new.to_json())
    del old['train']['valid_accuracy_samples']
    assert workdir_lib.config_changes(old, json.loads(new.to_json())) == (
        ['train.valid_accuracy_samples'] if counts else [])


def test_a_torn_last_metrics_line_is_dropped_on_resume_and_history_kept(run40, tmp_path):
  workdir = copy_of(run40, tmp_path)
  with open(workdir / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 50, "split": "tr')          # a kill mid-write
  train.train_and_evaluate(tiny_config(num_steps=60), str(workdir))
  with open(workdir / 'metrics.jsonl') as f:
    lines = [json.loads(l) for l in f]            # every line parses
  assert [r['step'] for r in lines if r['split'] == 'train'] == [20, 40, 60]
  assert [r['step'] for r in lines if r['split'] == 'test'] == [40, 60]   # each run's test kept


def test_a_torn_result_is_not_finished(run40, tmp_path):
  workdir = copy_of(run40, tmp_path)
  assert sweep.finished(str(workdir)) is not None
  text = (workdir / 'result.json').read_text()
  (workdir / 'result.json').write_text(text[:len(text) // 2])
  assert sweep.finished(str(workdir)) is None
  from reporting import tables
  skipped = []
  tables.collect([str(tmp_path)], skipped)
  assert skipped == [(str(workdir), 'result.json is unreadable (cut short or not JSON)')]


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
  path = tmp_path / 'result.json'
  records.write_json(str(path), {'a': 1})
  def fail(*args):
    raise KeyboardInterrupt
  monkeypatch.setattr(os, 'replace', fail)
  with pytest.raises(KeyboardInterrupt):
    records.write_json(str(path), {'a': 2})
  assert json.loads(path.read_text()) == {'a': 1}
  assert os.listdir(tmp_path) == ['result.json']     # no temporary file left behind


# --- workdirs ----------------------------------------------------------------

def test_a_second_process_on_a_workdir_is_refused_naming_the_holder(tmp_path):
  assert records.lock_holder(str(tmp_path)) is None          # no lock file
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from training import records; '
       'records.WorkdirLock(sys.argv[1]); print("held", flush=True); time.sleep(60)',
       str(tmp_path)],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    assert records.lock_holder(str(tmp_path)) == str(holder.pid)
    with pytest.raises(RunError, match=f'in use by process {holder.pid}'):
      train.train_and_evaluate(tiny_config(), str(tmp_path))
    with pytest.raises(RunError, match=f'in use by process {holder.pid}'):
      sweep.run(temporal_order_sweep.get_config('smoke,workers=1'), str(tmp_path))
  finally:
    holder.kill()
    holder.wait()
    holder.stdout.close()
  assert records.lock_holder(str(tmp_path)) is None    # its file stays, its lock went with it
  with records.WorkdirLock(str(tmp_path)):      # released when its process ended
    pass


@pytest.mark.parametrize('kind', ['file', 'missing parent in /proc'])
def test_a_workdir_that_cannot_be_one_is_one_line(tmp_path, kind):
  if kind == 'file':
    workdir = tmp_path / 'notadir'
    workdir.write_text('')
  else:
    workdir = '/proc/rnnopt-no/such'
  with pytest.raises(RunError, match='cannot use .* as the workdir'):
    train.train_and_evaluate(tiny_config(), str(workdir))


# --- divergence --------------------------------------------------------------

def test_a_member_whose_guard_skips_most_steps_is_diverged_and_counts_agree(tmp_path):
  config = tiny_config(num_steps=20, log_every=10, eval_every=20)
  config.optim.guard_max_norm = 1e-9          # every update is "absurd"
  result = train.train_and_evaluate(config, str(tmp_path))
  member = result['members'][0]
  assert member['skipped_steps'] == 20
  assert member['diverged'] and 'skipped 20 of its 20' in member['diverged_why']
  last = [r for r in records.read_jsonl(str(tmp_path / 'metrics.jsonl')) if r['split'] == 'train']
  assert last[-1]['skipped'] == member['skipped_steps']


def test_divergence_rules():
  assert train.diverged_why(1.39, 1.39, False, 0, 1000) is None
  assert 'test loss is 5.9e+20' in train.diverged_why(5.9e20, 1.0, False, 0, 1000)
  assert 'training loss is nan' in train.diverged_why(1.0, float('nan'), False, 0, 1000)
  assert 'NaN or infinite' in train.diverged_why(1.0, 1.0, True, 0, 1000)
  assert 'skipped 999 of its 1000' in train.diverged_why(1.0, 1.0, False, 999, 1000)
  assert train.diverged_why(1.0, 1.0, False, 400, 1000) is None


def test_the_time_left_leaves_out_the_first_validations_compile(monkeypatch):
  """A fake clock: a chunk of 50 steps compiles (12 s), then takes 10 s;
  validation every 150 steps takes 30 s the first time (25 s of it
  compiling) and 5 s after. The loop's true pace is 35 s per 150 steps.
  Timed over the whole loop, the first validation made the estimate at step
  150 of 1,050 say 450 s for 900 steps (the rest at 0.2 s a step plus 6
  validations of 5 s: 210 s)."""
  now = [0.0]
  monkeypatch.setattr(train.time, 'time', lambda: now[0])
  pace = train._Pace(0)

  def chunk(step, seconds, compiled=False):
    now[0] += seconds
    pace.chunk(step, 50, seconds, compiled)

  def validation(seconds):
    now[0] += seconds
    pace.validation(seconds)

  chunk(50, 12, compiled=True)
  chunk(100, 10)
  chunk(150, 10)
  validation(30)
  assert pace.eta(150, 1050) == pytest.approx(900 * 0.2)    # validations not yet timed: left out
  for step in (200, 250, 300):
    chunk(step, 10)
  validation(5)
  # from step 50: 250 steps in 50 s of chunks and two validations, the first at the second's 5 s
  assert pace.eta(300, 1050) == pytest.approx(750 * 60 / 250)
  for step in range(350, 1050, 50):
    chunk(step, 10)
    if step % 150 == 0:
      validation(5)
      assert pace.eta(step, 1050) == pytest.approx((1050 - step) * 35 / 150, rel=0.04)
  assert pace.rate == pytest.approx(5.0)


def test_the_line_saying_why_members_stopped_counts_each_reason():
  """It said '(solved, no better validation for train.patience=0 times, or no
  longer finite)' for a run that had solved, whatever had stopped it."""
  import types
  tc = lambda **kw: ml_collections.ConfigDict(dict(dict(stop_when_solved=True, patience=0,
                                                        anneal=''), **kw))
  run = lambda solved_at, nonfinite: types.SimpleNamespace(
      solved_at=solved_at, nonfinite=np.asarray(nonfinite), size=len(solved_at))
  assert train._why_stopped(run([8000], [False]), tc()) == 'solved'
  assert train._why_stopped(run([8000, None, None, 500], [False, False, True, False]),
                            tc(patience=20)) == (
      '2 solved, 1 no better validation in train.patience=20 validations, '
      '1 its loss no longer finite')
  assert train._why_stopped(run([None, None], [False, False]), tc(patience=3, anneal='rnnlm')) == (
      '2 stopped by the rnnlm schedule or no better validation in train.patience=3 validations')
  # not stopped by solving: a member that solved and went on counts under what stopped it
  assert train._why_stopped(run([100], [False]), tc(stop_when_solved=False, patience=5)) == (
      'no better validation in train.patience=5 validations')


def test_progress_lines_show_skips_and_validation_only_where_it_ran():
  rec = dict(loss=1.0, error=0.5, grad_norm=1.0, clipped=0.0, skipped=7, omega=0.0,
             spectral_radius=1.0, steps_per_s=100.0, active=True)
  line = train._progress_line(8000, 200000, [rec], None, [None], 80.0, 1920.0, True)
  assert '4%]' in line and 'skipped 7' in line and 'ETA <=32m00s' in line
  assert 'valid' not in line
  first = train._progress_line(10, 100, [dict(rec, steps_per_s=None)], None, [None], 9.0)
  assert 'compiling' in first
  # a slow run's pace is not rounded to nothing
  for rate, text in [(0.37, '0.37'), (3.14159, '3.1'), (9.96, '10'), (1234.4, '1234')]:
    assert f'| {text} steps/s,' in train._progress_line(
        10, 100, [dict(rec, steps_per_s=rate)], None, [None], 9.0), rate
  population = train._progress_line(10, 100, [rec, dict(rec, skipped=3)], [dict(loss=2.0)],
                                    [None, None], 9.0, 81.0)
  assert 'skipped at most 7' in population and 'best valid loss 2.0000' in population
  # a text task's validation in bits per character too, as its test line has it
  bpc = lambda loss: loss / math.log(2)
  valid = [dict(loss=0.95, error=0.3, count=10, bpc=bpc(0.95))]
  line = train._progress_line(20, 100, [rec], valid, [None], 9.0)
  assert f'| valid loss 0.9500, bpc {bpc(0.95):.4f}, error 30.00% |' in line, line
  population = train._progress_line(20, 100, [rec, rec], [dict(valid[0], loss=1.0, bpc=bpc(1.0)),
                                                          valid[0]], [None, None], 9.0)
  assert f'best valid loss 0.9500, bpc {bpc(0.95):.4f} |' in population, population


# --- data files --------------------------------------------------------------

TINY_MUSIC = {'train': [[(60, 64), (), (21, 108)], [(50,)]], 'valid': [[(70,)] * 4],
              'test': [[(40, 41, 42), (43,)]]}


def write_music(folder, raw=None, data: bytes | None = None):
  (folder / 'music').mkdir(exist_ok=True)
  path = folder / 'music' / 'JSB Chorales.pickle'
  path.write_bytes(data if data is not None else pickle.dumps(raw, 2))
  return path


@pytest.mark.parametrize('kind,message', [
    ('truncated', 'cannot be read as a pickle'),
    ('not a pickle', 'cannot be read as a pickle'),
    ('note None', "note None at frame 1 is not a MIDI note number"),
    ('note float', 'note 60.5 at frame 1 is not a MIDI note number'),
    ('note string', "note '60' at frame 1 is not a MIDI note number"),
    ('note 10^30', 'MIDI note 1e+30 at frame 1 is outside the piano range'),
    ('empty split', 'the valid split is empty'),
    ('changed notes', 'content SHA-256'),
])
def test_each_kind_of_bad_music_file_is_one_line_saying_what_to_do(tmp_path, kind, message):
  good = pickle.dumps(TINY_MUSIC, 2)
  raw = {k: [list(p) for p in v] for k, v in TINY_MUSIC.items()}
  bad = {'note None': None, 'note float': 60.5, 'note string': '60', 'note 10^30': 10**30}
  if kind == 'truncated':
    write_music(tmp_path, data=good[:len(good) // 2])
  elif kind == 'not a pickle':
    write_music(tmp_path, data=b'<html>503 Service Unavailable</html>')
  elif kind in bad:
    raw['test'][0][1] = (bad[kind],)
    write_music(tmp_path, raw)
  elif kind == 'empty split':
    raw['valid'] = []
    write_music(tmp_path, raw)
  else:       # one note moved: pieces, frames and note-on counts are unchanged
    raw['train'][0][0] = (60, 65)
    write_music(tmp_path, raw)
  rolls = music.piano_rolls(TINY_MUSIC)
  prints = {s: music.fingerprint(rolls[s]) for s in music.SPLITS}
  prints['sha256'] = music.content_digest(rolls)
  with pytest.raises(_files.DataError) as e:
    music.load_music('jsb', tmp_path, {'JSB Chorales': prints})
  text = str(e.value)
  assert message in text and '\n' not in text
  assert 'python -m datasets.download music' in text and 'RNNOPT_DATA' in text


def test_the_music_check_is_cached_by_the_files_stat(tmp_path, monkeypatch):
  monkeypatch.setattr(_files, 'CACHE_FILE', str(tmp_path / 'cache.json'))
  write_music(tmp_path, TINY_MUSIC)
  rolls = music.piano_rolls(TINY_MUSIC)
  prints = {s: music.fingerprint(rolls[s]) for s in music.SPLITS}
  prints['sha256'] = music.content_digest(rolls)
  calls = []
  digest = music.content_digest
  monkeypatch.setattr(music, 'content_digest', lambda r: calls.append(1) or digest(r))
  for _ in range(3):
    music.load_music('jsb', tmp_path, {'JSB Chorales': prints})
  assert len(calls) == 1


@pytest.mark.realdata
@pytest.mark.parametrize('kind', ['one letter', 'truncated test'])
def test_a_changed_ptb_file_is_refused(tmp_path, kind, monkeypatch, real_data):
  monkeypatch.setattr(_files, 'CACHE_FILE', str(tmp_path / 'cache.json'))
  real = real_data(*(f'ptb/{ptb.file_name("word", s)}' for s in ptb.SPLITS))
  (tmp_path / 'ptb').mkdir()
  for split in ptb.SPLITS:
    shutil.copy(real / 'ptb' / ptb.file_name('word', split), tmp_path / 'ptb')
  if kind == 'one letter':
    path = tmp_path / 'ptb' / 'ptb.valid.txt'
    text = path.read_text()
    path.write_text(text[:1000] + ('a' if text[1000] != 'a' else 'b') + text[1001:])
  else:
    path = tmp_path / 'ptb' / 'ptb.test.txt'
    path.write_bytes(path.read_bytes()[:-5000])
  with pytest.raises(_files.DataError, match=f'{path} is not the original file .*'
                     'python -m datasets.download ptb'):
    ptb.load_ptb('word', tmp_path)


@pytest.mark.realdata
def test_a_real_music_file_with_changed_notes_is_refused(tmp_path, monkeypatch, real_data):
  monkeypatch.setattr(_files, 'CACHE_FILE', str(tmp_path / 'cache.json'))
  real = real_data('music/JSB Chorales.pickle')
  raw = _files.safe_load(real / 'music' / 'JSB Chorales.pickle')
  frame = raw['test'][0][0]
  raw['test'][0][0] = tuple(n + 1 for n in frame)      # transposed: the same fingerprint
  write_music(tmp_path, raw)
  with pytest.raises(_files.DataError, match='content SHA-256'):
    music.load_music('jsb', tmp_path)


# --- processes (slow) --------------------------------------------------------

@pytest.fixture(scope='module')
def straight(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('straight') / 'run'
  proc = launch(*TINY, f'--workdir={workdir}')
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  return workdir, out


def committed_checkpoint(proc, workdir, step: int) -> int:
  """Waits until the run ``proc`` in ``workdir`` has committed a checkpoint at
  ``step`` or later, and returns its newest step. Orbax writes a checkpoint
  in a temporary folder and renames it to its step when it is whole, so a
  numbered folder is the code's own word that it can be resumed from. A run
  that ends first fails here at once; the deadline only catches a hung run
  (it never carries on regardless)."""
  deadline = time.time() + 300
  while True:
    steps = workdir_lib.checkpoint_steps(str(workdir))
    if steps and steps[-1] >= step:
      return steps[-1]
    if proc.poll() is not None or time.time() > deadline:
      proc.kill()
      out, err = proc.communicate()
      pytest.fail(f'no checkpoint at step {step} or later (return code {proc.returncode}; '
                  f'checkpoints {steps}):\n{out}\n{err}')
    time.sleep(0.02)


def resumed_from(out: str) -> int | None:
  """The step a run's output says it resumed from (None: it started afresh)."""
  found = [int(l.split()[3]) for l in out.splitlines() if l.startswith('Resumed from step')]
  return found[0] if found else None


@pytest.mark.slow
def test_kill_9_at_random_instants_then_rerun_gives_the_uninterrupted_run(straight, tmp_path):
  """Runs killed (SIGKILL), each at a random instant after it has committed
  a checkpoint of its own at or past a planned step: in a chunk, in writing
  a record or in writing the next checkpoint. Each rerun resumes from the
  newest checkpoint committed before the kill (or a later one), and the
  run that a last rerun finishes has the uninterrupted run's records. The
  waits are on the checkpoints the run writes, so that every kill lands
  after the run has saved one, whatever the machine's pace; only where in
  the run it lands is left to chance."""
  workdir = tmp_path / 'run'
  rng = random.Random(11)
  committed, resumed = [], []
  for planned in (10, 40, 70, 100):
    start = (workdir_lib.checkpoint_steps(str(workdir)) or [0])[-1]
    if start >= 120:        # TINY's budget: the run finished while it waited to be killed
      break
    proc = launch(*TINY, f'--workdir={workdir}')
    committed.append(committed_checkpoint(proc, workdir, max(planned, start + 1)))
    time.sleep(rng.uniform(0.0, 0.5))      # a chunk, a record and a checkpoint every 10 steps
    proc.kill()
    out, _ = proc.communicate()
    resumed.append(resumed_from(out))
  proc = launch(*TINY, f'--workdir={workdir}')
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  resumed.append(resumed_from(out))
  assert resumed[0] is None, resumed                      # the first run started afresh
  assert all(r is not None and r >= c for r, c in zip(resumed[1:], committed)), (
      resumed, committed)                                 # each kill landed after a checkpoint
  assert comparable(workdir) == comparable(straight[0])


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(straight, tmp_path):
  workdir = tmp_path / 'run'
  proc = launch(*TINY, f'--workdir={workdir}')
  first = proc.stdout.readline()       # the first progress line: training has started
  assert '%]' in first and 'skipped 0' in first, first
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode != 0
  line = one_line(err)
  assert 'interrupted (SIGINT) at step' in line and 'rerun the same command' in line
  assert os.listdir(workdir / 'checkpoints')
  proc = launch(*TINY, f'--workdir={workdir}')
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0 and 'Resumed from step' in out, err
  assert comparable(workdir) == comparable(straight[0])
  # progress: validation numbers only on the lines where it ran (every 40 steps)
  progress = [l for l in straight[1].splitlines() if l.startswith('[')]
  assert ['valid loss' in l for l in progress] == [(i + 1) % 4 == 0 for i in range(12)]


@pytest.mark.slow
def test_two_commands_on_one_workdir_the_second_is_refused_in_one_line(tmp_path):
  longer = [a for a in TINY if not a.startswith('--config.train.num_steps=')]   # a flag once only
  first = launch(*longer, '--config.train.num_steps=100000', f'--workdir={tmp_path}')
  try:
    assert '%]' in first.stdout.readline()
    second = launch(*TINY, f'--workdir={tmp_path}')
    _, err = second.communicate(timeout=120)
    assert second.returncode != 0
    assert f'in use by process {first.pid}' in one_line(err)
  finally:
    first.kill()
    first.communicate()


def _alive(pid: int) -> bool:
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().split(')')[-1].split()[0] != 'Z'     # a zombie has ended
  except FileNotFoundError:
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
def test_killing_a_sweep_parent_ends_its_workers(tmp_path):
  code = ('import sys; from orchestration import sweep; '
          'from experiments import temporal_order_sweep as t; '
          'c = t.get_config("smoke,workers=2"); c.sweep.grid = (); '
          'c.train.num_steps = 100000; c.train.log_every = 20; c.train.eval_every = 100000; '
          'sweep.run(c, sys.argv[1])')
  parent = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  workers, deadline = {}, time.time() + 120
  while len(workers) < 2 and time.time() < deadline:
    for lock in tmp_path.glob('*/part*/lock'):
      pid = lock.read_text().strip()
      if pid and _alive(int(pid)):
        workers[lock] = int(pid)
    time.sleep(0.5)
  assert len(workers) == 2, parent.stdout.read() if parent.poll() is not None else 'no workers'
  parent.kill()
  parent.communicate()
  deadline = time.time() + 60
  while any(map(_alive, workers.values())) and time.time() < deadline:
    time.sleep(0.5)
  assert not any(map(_alive, workers.values()))


def test_config_json_keeps_its_origin_and_gains_none_on_a_rerun(tmp_path):
  """A run opened without an origin (a sweep unit) writes none on a rerun
  either; one opened with an origin keeps it when rerun without."""
  config = temporal_order.get_config()
  for name, origin in (('bare', None), ('made', {'experiment': 'experiments/temporal_order.py'})):
    folder = str(tmp_path / name)
    for given in (origin, None, None):
      workdir_lib.open_workdir(config, folder, origin=given).release()
      written = json.loads((tmp_path / name / 'config.json').read_text())
      assert written.get('origin') == origin, (name, given, written.get('origin'))


def test_a_field_whose_default_is_on_is_one_every_record_has_or_is_listed():
  """A rerun compares its config with the recorded one, and a field an older
  record lacks counts as off (None, False, 0, ''). A field added with a default
  that is on (a name, a factor of 1) would make every earlier run refuse to
  resume, unless ``records._DEFAULTS_ON`` says what its absence means. Every
  such field of the base config is in every committed record or listed."""
  from experiments import common
  import glob
  flat = records.flatten(common.base_config().to_dict())
  on = {k for k, v in flat.items()
        if not records.is_unset(k, v) and k not in workdir_lib.SAFE_TO_CHANGE
        and not k.startswith(workdir_lib.SAFE_PREFIXES)}
  saved = [records.flatten(records.read_json(p)) for p in
           glob.glob(os.path.join(ROOT, 'results', '**', 'config.json'), recursive=True)]
  assert len(saved) > 100                    # the committed records are there
  lacking = sorted(k for k in on if any(k not in s for s in saved))
  assert not lacking, (f'{lacking}: on by default but absent from older records; list each in '
                       'training/records._DEFAULTS_ON with the value its absence means')
