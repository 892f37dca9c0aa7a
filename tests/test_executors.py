"""orchestration/executors.py: a sweep's parts on Ray and on Slurm (submitit),
retries, missing engines."""

import json
import os
import re
import subprocess
import sys

import ml_collections
import pytest

from orchestration import executors
from orchestration import sweep
from experiments import temporal_order_sweep
from tests.test_sweep import fake_unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smoke_config(**fields):
  """Temporal order, one group of two trials, split into two parts of 20 steps."""
  c = temporal_order_sweep.get_config('smoke,workers=2')
  c.sweep.grid = ()
  c.train.num_steps = 20
  c.train.log_every = c.train.eval_every = 20
  for key, value in fields.items():
    c.sweep[key] = value
  return c


def ranking(summary):
  return [(t['unit'], t['hparams'], t['seeds']) for t in summary['trials']]


def assert_same_ranking(summary, reference, units=None):
  keep = [t for t in reference['trials'] if units is None or t['unit'] in units]
  assert ranking(summary) == ranking(dict(trials=keep))
  for t, r in zip(summary['trials'], keep):
    assert (t['valid'], t['test']) == pytest.approx((r['valid'], r['test']), rel=1e-6)


# Module-scoped, and asked for before `local_sweep`, so that a missing engine
# skips its tests before the reference sweep is run for them.
@pytest.fixture(scope='module')
def ray():
  return pytest.importorskip('ray', reason='ray is not installed (requirements-cluster.txt)')


@pytest.fixture(scope='module')
def submitit():
  return pytest.importorskip('submitit',
                             reason='submitit is not installed (requirements-cluster.txt)')


@pytest.fixture(scope='module')
def local_sweep(tmp_path_factory):
  """The smoke sweep on the local executor (two worker processes): the reference."""
  workdir = tmp_path_factory.mktemp('local')
  summary = sweep.run(smoke_config(), str(workdir))
  assert summary['finished_units'] == 2 and len(summary['trials']) == 2
  return summary


@pytest.mark.slow
def test_ray_tasks_give_the_local_ranking(ray, local_sweep, tmp_path):
  ray.init(num_cpus=2, include_dashboard=False, _node_ip_address='127.0.0.1',
           log_to_driver=False)
  try:
    s = sweep.run(smoke_config(executor='ray'), str(tmp_path))
  finally:
    ray.shutdown()
  assert not s['failed_units'] and s['finished_units'] == 2
  assert_same_ranking(s, local_sweep)
  assert json.loads((tmp_path / 'sweep.json').read_text())['trials'] == s['trials']


@pytest.mark.slow
def test_slurm_jobs_through_submitit_retry_then_list_a_failed_part(submitit, local_sweep,
                                                                    tmp_path):
  """submitit's local executor runs the job array; a part whose folder is
  taken by a file fails on every attempt and is listed, the other ranks as
  it did locally."""
  c = smoke_config(executor='slurm', retries=1)
  c.sweep.slurm.cluster = 'local'
  os.makedirs(tmp_path / 'g00_all')
  (tmp_path / 'g00_all' / 'part1').write_text('not a folder')
  s = sweep.run(c, str(tmp_path))
  assert s['failed_units'] == ['g00_all/part1'] and s['finished_units'] == 1
  jobs = [d for d in os.listdir(tmp_path / 'slurm') if d.isdigit()]   # submitit's, by job id
  assert len(jobs) == 3                    # part 0 once, part 1 twice
  assert_same_ranking(s, local_sweep, units={'g00_all/part0'})
  assert 'FAILED units' in (tmp_path / 'sweep.md').read_text()
  assert json.loads((tmp_path / 'sweep.json').read_text())['failed_units'] == ['g00_all/part1']


def test_slurm_jobs_are_the_recorded_sbatch_script(submitit, monkeypatch):
  """Where no scheduler is present: the sbatch script of a sweep's job array
  (two parts), from the config's slurm fields."""
  monkeypatch.setattr(submitit.SlurmExecutor, 'affinity', classmethod(lambda cls: 1))  # no srun
  c = smoke_config(executor='slurm', cpus_per_part=4, gpus_per_part=1)
  s = c.sweep.slurm
  s.partition, s.account, s.time_min, s.mem_gb = 'gpu', 'rnn', 90, 8
  s.array_parallelism, s.additional = 16, (('qos', 'high'),)
  ex = executors.slurm_executor(c.sweep, '/shared/sweeps/torder')._executor
  text = submitit.slurm.slurm._make_sbatch_string(
      command=ex._submitit_command_str, folder=ex.folder, **dict(ex.parameters, map_count=2))
  out = '/shared/sweeps/torder/slurm/%A_%a/%A_%a'
  assert [l for l in text.splitlines() if l.startswith('#SBATCH')] == [
      '#SBATCH --account=rnn',
      '#SBATCH --array=0-1%2',
      '#SBATCH --cpus-per-task=4',
      f'#SBATCH --error={out}_0_log.err',
      '#SBATCH --gpus-per-node=1',
      '#SBATCH --job-name=rnnopt-sweep-torder',
      '#SBATCH --mem=8GB',
      '#SBATCH --nodes=1',
      '#SBATCH --open-mode=append',
      f'#SBATCH --output={out}_0_log.out',
      '#SBATCH --partition=gpu',
      '#SBATCH --qos=high',
      '#SBATCH --signal=USR2@90',
      '#SBATCH --time=90',
      '#SBATCH --wckey=submitit',
  ]
  assert text.strip().splitlines()[-1] == (
      f'srun --unbuffered --output {out}_%t_log.out --error {out}_%t_log.err '
      f'{sys.executable} -u -m submitit.core._submit /shared/sweeps/torder/slurm/%j')


def fake_train(config, workdir):
  """What a unit leaves behind, without training: every member's result."""
  members = [dict(hparams=dict(zip(config.population.hparams, row), seed=0),
                  test_loss=1.0 + row[0], test_error=0.5) for row in config.population.rows]
  fake_unit(os.path.dirname(workdir), os.path.basename(workdir), members,
            valid=[row[0] for row in config.population.rows])


@pytest.mark.parametrize('executor', ['local', 'ray'])
def test_a_failing_part_is_retried_then_listed_never_dropped(tmp_path, monkeypatch, executor):
  """Part 0 fails once then succeeds; part 1 fails on every attempt. Run with
  the engine replaced by a fake that records its attempts (``local``: the
  in-process trainer; ``ray``: the executor's entry in the registry)."""
  c = smoke_config(executor=executor, retries=2)
  c.sweep.workers = 1 if executor == 'local' else 2   # local: the in-process path
  if executor == 'local':
    c.sweep.trials = 1
    c.sweep.grid = (('model.init_scheme', ('smart_tanh', 'basic_tanh')),)   # two units
  first, second = [u.name for u in sweep.plan(c, c.sweep.workers)]
  attempts = {}

  def attempt(config, workdir):
    name = os.path.relpath(workdir, tmp_path)
    attempts[name] = attempts.get(name, 0) + 1
    if name == second or attempts[name] == 1:
      raise RuntimeError('node lost')
    fake_train(config, workdir)

  def fake_executor(parts, options, workdir, env):
    failed = {}
    for p in parts:
      try:
        attempt(ml_collections.ConfigDict(json.loads(p.config_json)), p.workdir)
      except RuntimeError as e:
        failed[p.name] = str(e)
    return failed

  from training import train
  monkeypatch.setattr(train, 'train_and_evaluate', attempt)
  monkeypatch.setitem(executors.REGISTRY, 'ray', fake_executor)
  s = sweep.run(c, str(tmp_path))
  assert attempts == {first: 2, second: 3}
  assert s['failed_units'] == [second] and s['finished_units'] == 1
  assert {t['unit'] for t in s['trials']} == {first}
  assert 'FAILED units (no result after their retries' in (tmp_path / 'sweep.md').read_text()
  assert json.loads((tmp_path / 'sweep.json').read_text())['failed_units'] == [second]
  sweep.run(c, str(tmp_path))              # a rerun: the finished part is not run again
  assert attempts == {first: 2, second: 6}


@pytest.mark.parametrize('executor, package', [('ray', 'ray'), ('slurm', 'submitit')])
def test_a_missing_engine_is_named_in_one_line(monkeypatch, executor, package):
  monkeypatch.setitem(sys.modules, package, None)     # `import package` now fails
  with pytest.raises(executors.MissingEngine) as e:
    sweep.check(smoke_config(executor=executor))
  assert str(e.value) == (f"sweep.executor='{executor}' needs the package {package}, which is "
                          'not installed: pip install -r requirements-cluster.txt')
  with pytest.raises(ValueError, match="sweep.executor='dask' is not one of local, ray, slurm"):
    sweep.check(smoke_config(executor='dask'))


def test_the_command_line_names_a_missing_engine(tmp_path):
  """``launch.py sweep --executor=ray`` where Ray is absent: one line, exit 1."""
  code = ("import runpy, sys; sys.modules['ray'] = None; "
          "sys.argv = ['launch.py', 'sweep', '--config=experiments/temporal_order_sweep.py:smoke', "
          f"'--workdir={tmp_path}', '--executor=ray']; "
          "runpy.run_path('launch.py', run_name='__main__')")
  p = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                     timeout=300)
  assert p.returncode == 1
  assert p.stderr.strip().splitlines()[-1] == (
      "config error: sweep.executor='ray' needs the package ray, which is not installed: "
      'pip install -r requirements-cluster.txt')
  assert not os.listdir(tmp_path)          # nothing ran


def test_sweep_options_reach_the_sweep_fields_with_their_types():
  """reproduce takes no --config: --sweep_option KEY=VALUE sets what
  --config.sweep.KEY would (a Slurm account, memory, extra sbatch options),
  typed as the field is; a field that does not exist is one line."""
  import launch
  from absl import flags
  from experiments import common

  def options(*given):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(['launch.py', 'reproduce'] + [f'--sweep_option={o}' for o in given])
    try:
      return launch.sweep_config(common.base_config()).sweep
    finally:
      flags.FLAGS.unparse_flags()
  s = options('slurm.account=lab', 'slurm.mem_gb=16', 'gpus_per_part=1',
              "slurm.additional=(('qos', 'high'),)")
  assert (s.slurm.account, s.slurm.mem_gb, s.gpus_per_part) == ('lab', 16, 1)
  assert s.slurm.additional == (('qos', 'high'),)
  for bad, message in (('slurm.acount=lab', "sweep has no field 'slurm.acount'"),
                       ('retries=x', "retries='x' is not a int"), ('retries', 'KEY=VALUE')):
    with pytest.raises(SystemExit, match=re.escape(message)):
      options(bad)


def test_reproduce_defaults_to_a_folder_of_the_users_own(monkeypatch):
  """Without --workdir, reproduce (and --status) use runs/, not results/, where the
  project's committed records would make every job "done" (and be redrawn)."""
  import launch
  from absl import flags
  from orchestration import reproduce as reproduce_lib
  seen = []
  monkeypatch.setattr(reproduce_lib, 'status', lambda targets, workdir: seen.append(workdir) or '')
  monkeypatch.setattr(reproduce_lib, 'run', lambda key, workdir, **kw: seen.append(workdir))
  for argv in (['--status'], [], ['--workdir=results', '--status']):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(['launch.py', 'reproduce'] + argv)
    try:
      launch.reproduce(['bai2018.ablation'])
    finally:
      flags.FLAGS.unparse_flags()
  assert seen == ['runs', 'runs', 'results']
