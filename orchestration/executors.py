"""Executors: where a sweep's parts run, on an engine the user already has.

    python launch.py sweep --config=... --workdir=DIR --executor=local|ray|slurm

- ``local`` (``orchestration/sweep.py``): processes on this host, one per core. Needs
  nothing more; the default.
- ``ray``: every part is a Ray task (``sweep.cpus_per_part`` CPUs,
  ``sweep.gpus_per_part`` GPUs, a fresh worker process each), on a Ray
  instance started here (``sweep.ray_address=''``) or on a running cluster
  (``'auto'`` on one of its nodes, or ``HOST:PORT``).
- ``slurm``: every part is one job of a Slurm job array, submitted through
  submitit (``sweep.slurm``: partition, account, time, memory); submitit's
  scripts, logs and pickles are in ``DIR/slurm``.

Ray and submitit are optional (``requirements-cluster.txt``); a missing one
is named in one line before anything runs. A part is the same run as under
``local`` (``sweep._run_unit``): it writes to ``DIR/<group>/part<j>``, so
the workdir and the repository must be at the same path on every machine (a
shared filesystem), with the same Python environment. The command that
started the sweep waits for its parts and then ranks them; interrupting it
(Ctrl-C) stops its Ray tasks or cancels its Slurm jobs, and running it again
resumes: finished parts are not rerun. ``orchestration/sweep.py`` retries failed parts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time

import ml_collections

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository
INSTALL = 'pip install -r requirements-cluster.txt'
FORWARDED_ENV = ('RNNOPT_DATA',)   # read by the parts (datasets/_files.py)


@dataclasses.dataclass(frozen=True)
class Part:
  """One unit of the sweep, ready to run anywhere."""
  name: str            # '<group>/part<j>'
  config_json: str     # the unit's config
  workdir: str         # absolute


class MissingEngine(ValueError):
  """The executor's package is not installed."""


def engine(executor: str):
  """The module an executor needs (None for ``local``); one-line error if absent."""
  if executor not in REGISTRY:
    raise ValueError(f'sweep.executor={executor!r} is not one of {", ".join(REGISTRY)}')
  try:
    if executor == 'ray':
      import ray
      return ray
    if executor == 'slurm':
      import submitit
      return submitit
  except ImportError:
    package = PACKAGES[executor]
    raise MissingEngine(f'sweep.executor={executor!r} needs the package {package}, '
                        f'which is not installed: {INSTALL}') from None
  return None


def _part_function():
  """The function a part runs on its worker.

  Made inside a function so that Ray and submitit pickle it by value: the
  worker then needs only this repository on disk, not this module importable.
  """
  def run_part(root: str, cwd: str, env: dict, config_json: str, workdir: str) -> None:
    import os
    import sys
    os.environ.update(env)          # before JAX is imported (XLA_FLAGS)
    if root not in sys.path:
      sys.path.insert(0, root)
    if os.path.isdir(cwd):
      os.chdir(cwd)                 # relative paths in the config mean what they meant
    from orchestration import sweep
    try:
      sweep._run_unit(config_json, workdir, None)
    except BaseException:
      import traceback
      traceback.print_exc()         # into the part's log.txt, where its output went
      raise
  return run_part


def _args(parts: list[Part], env: dict) -> list[tuple]:
  env = dict(env, **{k: os.environ[k] for k in FORWARDED_ENV if k in os.environ})
  return [(ROOT, os.getcwd(), env, p.config_json, p.workdir) for p in parts]


def _gist(error: BaseException) -> str:
  """One line: the part's own exception where the engine's error quotes its traceback."""
  lines = [l.strip() for l in str(error).splitlines() if l.strip()]
  raised = [l for l in lines if re.match(r'[\w.]*(Error|Exception|Interrupt)\b.*:', l)]
  return raised[-1] if raised else f'{type(error).__name__}: {lines[0] if lines else ""}'


def run_ray(parts: list[Part], options: ml_collections.ConfigDict, workdir: str,
            env: dict) -> dict[str, str]:
  """Runs ``parts`` as Ray tasks; returns {name: error} of those that failed.

  Uses the Ray instance this process already joined (a test's), else starts
  or joins the one ``options.ray_address`` names, and leaves it at the end.
  """
  del workdir   # the parts know theirs
  ray = engine('ray')
  joined_here = not ray.is_initialized()
  if joined_here:
    ray.init(address=options.ray_address or None, include_dashboard=False,
             log_to_driver=False, logging_level='WARNING')
  failed = {}
  try:
    # One fresh worker process per part (max_calls=1): XLA_FLAGS and the log
    # redirection are per process, and JAX's memory goes back when it ends.
    task = ray.remote(num_cpus=options.cpus_per_part, num_gpus=options.gpus_per_part,
                      max_calls=1, max_retries=0)(_part_function())
    pending = {task.remote(*a): p for p, a in zip(parts, _args(parts, env))}
    print(f'  {len(parts)} part(s) sent to Ray ({ray.cluster_resources().get("CPU", 0):.0f} '
          'CPUs in the cluster)', flush=True)
    t0 = time.time()
    while pending:
      done, _ = ray.wait(list(pending), num_returns=1)
      for ref in done:
        p = pending.pop(ref)
        try:
          ray.get(ref)
          print(f'  {p.name}: done after {time.time() - t0:.0f} s', flush=True)
        except Exception as e:   # the task's error, or its worker's death
          failed[p.name] = _gist(e)
          print(f'  {p.name}: FAILED ({failed[p.name]}; see its log.txt)', flush=True)
  finally:
    if joined_here:
      ray.shutdown()          # the driver's own instance stops its tasks with it
  return failed


def submitit_parameters(options: ml_collections.ConfigDict, name: str) -> dict:
  """``AutoExecutor.update_parameters`` arguments for one part's job."""
  s = options.slurm
  params = dict(name=name, timeout_min=int(s.time_min), cpus_per_task=int(options.cpus_per_part),
                gpus_per_node=int(options.gpus_per_part) or None, mem_gb=int(s.mem_gb) or None,
                slurm_partition=s.partition or None, slurm_account=s.account or None,
                slurm_array_parallelism=int(s.array_parallelism),
                slurm_additional_parameters=dict(s.additional) or None)
  return {k: v for k, v in params.items() if v is not None}


def slurm_executor(options: ml_collections.ConfigDict, workdir: str):
  """The submitit executor of a sweep's parts, its files in ``workdir/slurm``."""
  submitit = engine('slurm')
  executor = submitit.AutoExecutor(folder=os.path.join(workdir, 'slurm', '%j'),
                                   cluster=options.slurm.cluster)
  executor.update_parameters(**submitit_parameters(
      options, f'rnnopt-sweep-{os.path.basename(os.path.normpath(workdir))}'))
  return executor


def run_slurm(parts: list[Part], options: ml_collections.ConfigDict, workdir: str,
              env: dict) -> dict[str, str]:
  """Runs ``parts`` as one Slurm job array; returns {name: error} of those that failed."""
  submitit = engine('slurm')
  executor = slurm_executor(options, workdir)
  jobs = executor.map_array(_part_function(), *zip(*_args(parts, env)))
  by_job = {j.job_id: p for j, p in zip(jobs, parts)}
  print(f'  {len(parts)} part(s) submitted as {options.slurm.cluster} job(s) '
        f'{", ".join(sorted(by_job))}; logs in {os.path.join(workdir, "slurm")}', flush=True)
  failed = {}
  t0 = time.time()
  poll = 1 if options.slurm.cluster != 'slurm' else 30
  try:
    for job in submitit.helpers.as_completed(jobs, poll_frequency=poll):
      p = by_job[job.job_id]
      try:
        job.result()
        print(f'  {p.name}: done after {time.time() - t0:.0f} s (job {job.job_id})', flush=True)
      except Exception as e:   # the part's error, or the job's (time limit, node failure)
        failed[p.name] = _gist(e)
        print(f'  {p.name}: FAILED (job {job.job_id}: {failed[p.name]}; see its log.txt '
              f'and {job.paths.stderr})', flush=True)
  except BaseException:
    for job in jobs:          # an interrupted sweep leaves no jobs behind to race a rerun
      if not job.done():
        job.cancel(check=False)
    raise
  return failed


# The engines, by the name of sweep.executor ('local' is orchestration/sweep.py's process pool).
REGISTRY = {'local': None, 'ray': run_ray, 'slurm': run_slurm}
PACKAGES = {'ray': 'ray', 'slurm': 'submitit'}
