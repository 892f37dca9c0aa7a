"""The trainer end to end: every config's smoke run, resume, guard, CLI errors."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from training import train
from experiments import modern, pathological, temporal_order, temporal_order_fig7

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ([('temporal_order', f'method={m},smoke') for m in ('sgd', 'sgd-c', 'sgd-cr')] +
           [('pathological', f'problem={p},smoke') for p in pathological.SETTINGS] +
           [('temporal_order_fig7', 'seeds=1,smoke')] +
           [('modern', f'dataset=adding600,cell={c},smoke') for c in modern.CELLS])
# The everyday suite trains one of them (all three methods' terms: SGD-CR); CI trains all.
CONFIGS = [c if c == ('temporal_order', 'method=sgd-cr,smoke')
           else pytest.param(*c, marks=pytest.mark.slow) for c in CONFIGS]
MODULES = {'temporal_order': temporal_order, 'pathological': pathological,
           'temporal_order_fig7': temporal_order_fig7, 'modern': modern}
TRAIN_KEYS = {'step', 'split', 'loss', 'error', 'grad_norm', 'clipped', 'spectral_radius',
              'omega', 'skipped', 'steps_per_s'}


def read_metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f]


@pytest.mark.parametrize('module,arg', CONFIGS)
def test_every_config_trains_in_smoke_mode(module, arg, tmp_path):
  config = MODULES[module].get_config(arg)
  train.check_config(config)
  result = train.train_and_evaluate(config, str(tmp_path))
  assert result['step'] == config.train.num_steps
  member = result['members'][0]
  assert 0.0 <= member['test_error'] <= 1.0 and np.isfinite(member['test_loss'])
  records = read_metrics(tmp_path)
  train_records = [r for r in records if r['split'] == 'train' and r['member'] == 0]
  assert TRAIN_KEYS <= set(train_records[0])
  assert [r['step'] for r in train_records] == list(
      range(config.train.log_every, config.train.num_steps + 1, config.train.log_every))
  assert {'train', 'valid', 'test'} == {r['split'] for r in records}
  omega_on = config.reg.omega_alpha > 0
  assert (train_records[0]['omega'] > 0) == omega_on
  for name in ('config.json', 'result.json'):
    assert os.path.exists(tmp_path / name)


def stopped_at_40_and_resumed(config, workdir) -> dict:
  """The 60-step smoke run, interrupted at step 40 and resumed to the end."""
  with config.unlocked():
    config.train.num_steps = 40
  train.train_and_evaluate(config, workdir)
  with config.unlocked():
    config.train.num_steps = 60
  return train.train_and_evaluate(config, workdir)


def test_resuming_gives_the_same_run_as_not_stopping(tmp_path):
  config = temporal_order.get_config('smoke')
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  resumed = stopped_at_40_and_resumed(config, str(tmp_path / 'resumed'))
  assert resumed['members'][0]['test_loss'] == pytest.approx(
      straight['members'][0]['test_loss'], rel=1e-6)
  steps = [r['step'] for r in read_metrics(tmp_path / 'resumed') if r['split'] == 'train']
  assert steps == [20, 40, 60]


def noisy_selection_config():
  config = temporal_order_fig7.get_config('seeds=1,smoke')
  with config.unlocked():
    config.train.eval_every = config.train.log_every = 20
    config.train.stop_when_solved = False
    config.optim.learning_rate = 0.3         # a noisy validation curve
  return config


def test_test_is_also_scored_where_validation_was_lowest(tmp_path):
  """Select on validation, report on test: the best-validation parameters are
  tracked per member and are the parameters of that step."""
  config = noisy_selection_config()
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  valid = [r for r in read_metrics(tmp_path / 'straight') if r['split'] == 'valid']
  for i, m in enumerate(straight['members']):
    mine = [r for r in valid if r['member'] == i]
    lowest = min(mine, key=lambda r: r['loss'])
    assert m['best_valid_step'] == lowest['step']
    assert m['best_valid_loss'] == pytest.approx(lowest['loss'])
  # A member selected before the end: its test number is that of a run stopped there.
  # (lr 0.3 makes the curve noisy enough that one is: checked, so this part always runs)
  early = [(i, m) for i, m in enumerate(straight['members']) if m['best_valid_step'] < 60]
  assert early, [m['best_valid_step'] for m in straight['members']]
  i, m = early[0]
  with config.unlocked():
    config.train.num_steps = m['best_valid_step']
  stopped = train.train_and_evaluate(config, str(tmp_path / 'stopped'))
  assert stopped['members'][i]['test_loss'] == pytest.approx(m['test_loss_at_best_valid'],
                                                             rel=1e-5)


@pytest.mark.slow   # resuming in general: test_resuming_gives_the_same_run_as_not_stopping
def test_the_best_validation_parameters_survive_a_resume(tmp_path):
  config = noisy_selection_config()
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  # Interrupted at 40 and resumed: the same selection and the same test numbers.
  resumed = stopped_at_40_and_resumed(config, str(tmp_path / 'resumed'))
  for a, b in zip(straight['members'], resumed['members']):
    assert (a['best_valid_step'], a['test_loss_at_best_valid']) == pytest.approx(
        (b['best_valid_step'], b['test_loss_at_best_valid']), rel=1e-6)


@pytest.mark.slow
def test_trainer_learns_a_short_temporal_order_problem(tmp_path):
  """Behaviour, not plumbing: Adam on T=12 solves the problem in seconds."""
  config = temporal_order.get_config('length=12,steps=1500')
  with config.unlocked():
    config.optim.name = 'adam'
    config.optim.learning_rate = 0.01
    config.train.log_every = 250
    config.train.eval_every = 250
    config.train.eval_sequences = 2000
    config.train.test_sequences = 2000
  result = train.train_and_evaluate(config, str(tmp_path))
  assert result['members'][0]['solved'], result


def test_guard_skips_and_counts_every_update_over_its_limit(tmp_path):
  config = temporal_order.get_config('smoke')
  with config.unlocked():
    config.optim.guard_max_norm = 1e-9       # every gradient is "absurd"
  steps = train.build(config)
  state = steps.init(jax.random.key(0), dict(omega_alpha=4.0, l1_weight=0.0, bptt_clip=0.0), {})
  new, metrics = jax.jit(steps.train_chunk, static_argnums=1)(state, 5)
  np.testing.assert_array_equal(metrics['skipped'], [1, 2, 3, 4, 5])
  jax.tree.map(np.testing.assert_array_equal, new.params, state.params)


def run_cli(*args):
  return subprocess.run([sys.executable, 'launch.py', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)


@pytest.mark.parametrize('args,message', [
    (['--config=experiments/temporal_order.py:methd=sgd'], "unknown config argument 'methd'"),
    (['--config=experiments/temporal_order.py:method=sgdcr'], 'is not one of sgd, sgd-c, sgd-cr'),
    (['--config=experiments/temporal_order.py', '--config.optim.lerning_rate=0.1'],
     'Did you mean "learning_rate"'),
    (['--config=experiments/temporal_order.py', '--config.optim.name=adm'],
     "optim.name='adm' is not one of"),
    (['--config=experiments/temporal_order.py', '--config.model.cell=lsmt'],
     "model.cell='lsmt' is not one of"),
    (['--config=experiments/nope.py'], 'No such file'),
    (['--config=experiments/music.py', '--config.data_dir=/nonexistent'],
     'missing data file'),
    (['bogus'], "usage error: unknown command 'bogus'; commands: train, sweep"),
    # trained no steps, exited 0 and wrote a result.json
    (['--config=experiments/temporal_order.py:smoke', '--config.train.num_steps=-5'],
     'config error: train.num_steps=-5 must be >= 0'),
    (['--config=experiments/temporal_order.py', '--config.optim.qqqq=1'],
     "--config.optim.qqqq: optim has no field 'qqqq'; its fields: accumulate_steps, "),
    (['--config=experiments/temporal_order.py', '--config.data_dir=/x'],
     "--config.data_dir: the config has no field 'data_dir'; its fields: model, "),
    # a flag of another command, once ignored (sweep --status ran the whole sweep,
    # before it was sweep's too: tests/test_reproduce.py)
    (['--config=experiments/temporal_order.py', '--status'],
     'usage error: --status is for reproduce and sweep, not train'),
    (['--config=experiments/temporal_order.py', '--steps=5'], '--steps is for bench, not train'),
    # absl kept the last one silently: this ran at 0.01
    (['--config=experiments/temporal_order.py', '--config.optim.learning_rate=0.1',
      '--config.optim.learning_rate', '0.01'], '--config.optim.learning_rate is given twice'),
    (['sweep', '--config=experiments/temporal_order_sweep.py:smoke', '--sweep_option=retries=1',
      '--sweep_option=retries=2', '--nostatus', '--status'], '--status is given twice'),
    (['--config=experiments/temporal_order.py', '--config.seed=1', '-config.seed=2'],
     '--config.seed is given twice'),
    (['--config=experiments/temporal_order.py', '--config.train.stop_when_solved=True',
      '--noconfig.train.stop_when_solved'], '--config.train.stop_when_solved is given twice'),
    # a run filed under the declared row with another task's numbers
    (['--config=experiments/modern.py:dataset=adding600,cell=gru', '--config.model.cell=lstm'],
     "--config.model.cell changes what this config declares it reproduces (table 'bai2018', "
     "row 'adding600')"),
])
def test_config_mistakes_are_one_line_errors(args, message, tmp_path):
  proc = run_cli(*args, f'--workdir={tmp_path}')
  assert proc.returncode != 0
  assert 'Traceback' not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and message in lines[0], proc.stderr


def test_ctrl_c_while_the_config_loads_stops_in_one_line(tmp_path):
  """Loading a config imports JAX, which registers a garbage-collection
  callback; a KeyboardInterrupt raised inside it is swallowed, and the run
  once went on to train and exit 0. Sent once JAX is loaded, Ctrl-C ends the
  command with 'interrupted' and no run starts."""
  proc = subprocess.Popen([sys.executable, 'launch.py', '--config=experiments/temporal_order.py',
                           f'--workdir={tmp_path / "run"}'], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  maps = f'/proc/{proc.pid}/maps'
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    with open(maps) as f:
      if 'jaxlib' in f.read():
        break
    time.sleep(0.02)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode not in (0, None)
  assert [l for l in err.splitlines() if l.strip()][-1] == 'interrupted', err[-2000:]
  assert not (tmp_path / 'run' / 'result.json').exists()


@pytest.mark.parametrize('spec,fields,message', [
    ('temporal_order.py:smoke=yess', {},
     "smoke='yess' is not a boolean: one of 1, true, yes, on or 0, false, no, off"),
    ('modern.py:dataset=jsb,lr=0.1,lr=0.2', {}, "'lr' is given twice"),
    ('modern.py:dataset=jsb,lr=nan', {}, "lr='nan' is not a finite number"),
    ('modern.py:dataset=jsb,width=-8', {}, 'width=-8 must be >= 0'),
    ('temporal_order.py', {'model.hidden_size': -3}, 'model.hidden_size=-3 must be >= 1'),
    ('temporal_order.py', {'model.num_layers': 0}, 'model.num_layers=0 must be >= 1'),
    ('temporal_order.py', {'task.batch_size': 0}, 'task.batch_size=0 must be >= 1'),
    ('temporal_order.py', {'optim.learning_rate': float('inf')}, 'must be a finite number >= 0'),
    # Training draws a traced length, which ``sample`` cannot check: at T' < 10 addition's
    # first window is empty and half the sequences carried a single marker.
    ('pathological.py:problem=addition,length=5', {}, 'task.min_length=5 is below 10'),
    # Each of these ran: to no steps, to a ZeroDivisionError after training, on 100
    # sequences, with Omega off, or with a learning rate below 0.
    ('temporal_order.py', {'train.num_steps': -5}, 'train.num_steps=-5 must be >= 0'),
    ('temporal_order.py', {'train.eval_batch_size': 0}, 'train.eval_batch_size=0 must be >= 1'),
    ('temporal_order.py', {'train.eval_sequences': 0}, 'train.eval_sequences=0 must be >= 1'),
    ('temporal_order.py', {'train.test_sequences': -3}, 'train.test_sequences=-3 must be >= 1'),
    ('temporal_order.py', {'train.solved_error': 5.0}, 'train.solved_error=5.0 must be in [0, 1]'),
    ('temporal_order.py', {'reg.omega_alpha': -1.0}, 'reg.omega_alpha=-1.0 must be >= 0'),
    ('temporal_order.py', {'train.checkpoint_every_s': -1.0},
     'train.checkpoint_every_s=-1.0 must be >= 0'),
    ('temporal_order.py', {'optim.momentum': 5.0}, 'optim.momentum=5.0 must be in [0, 1)'),
    ('temporal_order.py', {'model.recurrent_dropout': 1.5},
     'model.recurrent_dropout=1.5 must be in [0, 1)'),
    ('temporal_order.py', {'model.dropout': -0.1}, 'model.dropout=-0.1 must be in [0, 1)'),
    ('temporal_order.py', {'model.zoneout': 1.0}, 'model.zoneout=1.0 must be in [0, 1)'),
    ('temporal_order.py', {'population.seeds': (0, 0)}, 'seed 0 is given twice'),
    ('temporal_order.py', {'population.seeds': (0, -2)}, 'population.seeds=(0, -2): seeds must'),
    ('temporal_order.py', {'seed': -1}, 'seed=-1: a seed must be'),   # (it named population.seeds=())
    ('temporal_order.py', {'population.hparams': ('optim.learning_rate',)},
     'population.rows is empty'),
    ('temporal_order.py', {'population.hparams': ('optim.learning_rate',),
                           'population.rows': ((0.1,), (-0.1,))},
     'population.rows: optim.learning_rate=-0.1 must be >= 0'),
    ('modern.py:dataset=adding600,dropout=-0.5', {}, 'dropout=-0.5 must be >= 0'),
    ('modern.py:dataset=adding600,ff_dropout=-1', {}, 'ff_dropout=-1.0 must be >= 0'),
    ('modern.py:dataset=adding600,warmup=-3', {}, 'warmup=-3 must be >= 0'),
    ('modern.py:dataset=adding600,patience=-7', {}, 'patience=-7 must be >= 0'),
])
def test_argument_and_size_mistakes_are_refused_before_jax(spec, fields, message):
  """Each of these once passed every check and failed inside JAX (a negative
  width: an MLIR error) or ran something else (smoke=yess: a full run)."""
  from orchestration import reproduce
  with pytest.raises(ValueError, match=re.escape(message)):
    config = reproduce.load_config('experiments/' + spec)
    for key, value in fields.items():
      *section, name = key.split('.')
      (config[section[0]] if section else config)[name] = value
    train.check_config(config)
  assert reproduce.load_config('experiments/temporal_order.py:smoke=on').smoke
  assert not reproduce.load_config('experiments/temporal_order.py:smoke=off').smoke


@pytest.mark.slow
def test_readme_command_runs_from_the_command_line(tmp_path):
  proc = run_cli('--config=experiments/temporal_order.py:smoke', f'--workdir={tmp_path}')
  assert proc.returncode == 0, proc.stderr
  assert 'test loss' in proc.stdout and 'on 200 fresh sequences' in proc.stdout
  with open(tmp_path / 'result.json') as f:
    assert json.load(f)['step'] == 60


@pytest.mark.slow
def test_fig7_figure_from_population_runs(tmp_path):
  from reporting.figures import fig7
  config = temporal_order_fig7.get_config('init=basic_tanh,seeds=2,smoke')
  result = train.train_and_evaluate(config, str(tmp_path / 'basic_tanh_T20'))
  assert result['population'] == 6
  table = fig7.collect(str(tmp_path))
  assert {m for _, m in table} == {'sgd', 'sgd-c', 'sgd-cr'}
  assert all(points[20][1] == 2 for points in table.values())     # 2 seeds per method
  assert os.path.getsize(fig7.plot(table, str(tmp_path / 'fig7.png'))) > 1000


def test_the_code_version_is_dirty_for_code_not_for_records_or_prose(tmp_path):
  """A rerun rewrites a committed metrics.jsonl (or a lock committed by
  mistake) and sessions edit RESULTS.md while runs go on: neither is a code
  change. A changed tracked .py file is, wherever it is; an untracked file is not."""
  git = lambda *args: subprocess.run(['git', *args], cwd=tmp_path, check=True,
                                     capture_output=True, text=True).stdout.strip()
  git('init', '-q')
  for path in ('pkg/code.py', 'results/run/metrics.jsonl', 'results/run/lock', 'RESULTS.md',
               'docs/notes.md'):
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text('1\n')
  git('add', '.')
  git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'x')
  commit = git('rev-parse', '--short', 'HEAD')
  where = str(tmp_path / 'pkg')
  assert train.code_version(where) == commit
  for path in ('results/run/metrics.jsonl', 'results/run/lock', 'RESULTS.md', 'docs/notes.md'):
    (tmp_path / path).write_text('2\n')
  (tmp_path / 'pkg' / 'new.py').write_text('')
  assert train.code_version(where) == commit
  (tmp_path / 'pkg' / 'code.py').write_text('2\n')
  assert train.code_version(where) == commit + '+dirty'
  assert train.code_version(str(tmp_path / 'results')) == commit + '+dirty'



def test_runs_in_one_process_record_the_code_it_imported(tmp_path, monkeypatch):
  """A sweep on one worker runs its units in one process: a commit made
  while it runs (HEAD moves) is not the code its later units train with."""
  heads = iter(['abc1234', 'def5678'])
  monkeypatch.setattr(train, 'code_version', lambda where=None: next(heads))
  train.imported_code_version.cache_clear()
  try:
    for name in ('first', 'second'):
      train.train_and_evaluate(temporal_order.get_config('smoke'), str(tmp_path / name))
  finally:
    train.imported_code_version.cache_clear()
  for name in ('first', 'second'):
    assert json.loads((tmp_path / name / 'result.json').read_text())['code_version'] == 'abc1234'


def test_small_losses_are_shown_with_their_digits(capsys):
  """The adding problem's MSE (4.7e-6) read 0.0000 on the progress lines, the
  final report and sweep.md; an NLL keeps its four decimals. A member that
  passed the solved criterion but trained on (train.stop_when_solved off)
  was tested at the end, not at the step it first passed."""
  from training import records
  assert [records.loss_text(x) for x in (3.04561, 0.0123456, 0.0071271, 4.73239e-06, 0.0,
                                         float('nan'))] == [
      '3.0456', '0.0123', '0.007127', '4.732e-06', '0.0000', 'nan']
  member = dict(hparams={'seed': 0}, test_loss=4.73239e-06, test_error=0.0, test_count=10000,
                solved=True, solved_at_step=1000, best_valid_loss=3.89e-06,
                best_valid_step=19000, test_loss_at_best_valid=5.1e-06,
                test_error_at_best_valid=0.0, diverged=False)
  result = dict(step=20000, population=1, members=[member], wall_time_s=2537.0)
  train._report(result, [{'loss': 4.73239e-06, 'error': 0.0, 'count': 10000}], 'fresh sequences',
                False, '/tmp/x')
  out = capsys.readouterr().out.splitlines()
  assert out[0] == 'test loss 4.732e-06, error 0.00% on 10000 fresh sequences after 20000 steps'
  assert out[1] == '  at its lowest validation loss (3.89e-06, step 19000): test loss 5.1e-06, error 0.00%'
  train._report(result, [{'loss': 4.73239e-06, 'error': 0.0, 'count': 10000}], 'fresh sequences',
                True, '/tmp/x')                  # stopped when solved: tested at step 1,000
  assert 'SOLVED: test loss 4.732e-06, error 0.00% on 10000 fresh sequences after 1000 steps' in (
      capsys.readouterr().out)
