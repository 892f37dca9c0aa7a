r"""Training throughput of rnnopt against the PyTorch peer, as JSON lines.

    python launch.py bench                                      # every workload
    python launch.py bench --workloads=charlm_lstm_h512 --steps=10 --rounds=3
    python launch.py bench --peer                               # alternate with PyTorch

What is timed is the trainer's own compiled chunk, the program
``train.train_and_evaluate`` runs between two log lines
(``train.compile_chunk``), built from experiment configs on synthetic data of
the peer's shapes (``benchmarks.workloads`` says which config each workload
is and how it differs from the peer's model).

Workloads: the nine of ``benchmarks.workloads`` (two of them the char-LMs
with bfloat16 products) and
``population_<workload>`` for the temporal-order shape and the papers' two
B = 1 shapes (``POPULATIONS``): ``members`` runs of the workload, each with
its own seed and learning rate (``workloads.population_config``), trained as
ONE program, both vmapped and mapped (``population.layout`` 'vmap' and
'map'), against the same members trained one after another (one compiled
single-member chunk called on each member's state in turn).

Per workload it prints one JSON line (``framework: "jax"``; the population
one per layout, with ``layout``, ``sequential_timesteps_per_s`` and
``speedup`` over the sequence) with

- ``config``: the experiment file, its arguments and the overrides;
- ``timesteps_per_s``: batch x T x steps / seconds, the median over
  ``rounds`` timed rounds (``timesteps_per_s_rounds``: every round). A round
  is one call of the compiled chunk of ``steps`` optimiser steps (one
  ``lax.scan``, with the data read or drawn on the device as in training,
  and the per-step metrics the trainer logs), after one untimed warm-up call.
- ``compile_s``: tracing, lowering and compiling the chunk (the first call's
  overhead; measured with ``jit(...).lower(...).compile()``).
- ``xla_memory_mb``: XLA's buffer assignment for the chunk: arguments +
  outputs + temporaries - aliased (donated) bytes, from
  ``compiled.memory_analysis()``. This is the program's peak working set.
- ``rss_growth_mb``: growth of this process's peak RSS (``getrusage``
  ``ru_maxrss``) during compile and warm-up; 0 when an earlier workload had
  already raised the peak higher.

With ``--peer`` the PyTorch peer (``../shared/bench/torch_peer.py``, run by
``--peer_python`` in its own virtual environment, default
``$RNNOPT_PEER_PYTHON``, else ``../torchvenv/bin/python``) is run for the same
workload and steps in every round, alternating with ours (the order flips
every round), once per ``--peer_configs`` entry:

- ``default``: a torch thread per core this process may use (the cores ours
  runs on; the peer's own default is 2, which is the same on our 2-core
  machines), pinned to them, with the glibc settings of the peer's README
  (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000``);
- ``passive``: the same plus ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads
  sleep instead of spinning: much faster when other jobs share the cores);
- ``threads1``: one thread pinned to the core ours is pinned to, the same
  glibc settings.

Each peer configuration gets a ``framework: "torch"`` line (median of its
rounds; ``peak_rss_mb`` is the peer process's whole peak RSS from
``wait4``, interpreter and libraries included), and a ``ratio`` line gives
ours over the peer's best configuration, both as the ratio of medians and as
the median of per-round ratios. Machines are shared and noisy: only ratios
measured in the same run mean anything.

Ours has configurations too (``--ours_configs``), timed in the same rounds:

- ``default``: this process, on every core it may use (JAX sizes its thread
  pool from the process's affinity);
- ``threads1``: a fresh process pinned to one core with XLA's single-thread
  flags (``python -m benchmarks.run``, one compile, one warm-up call and one
  timed call a round): what a sweep or ``reproduce`` worker runs. On the
  small temporal-order RNN one core was as fast as two or faster for both
  frameworks (RESULTS.md, "Training speed").

Each gets a ``framework: "jax"`` line (``jax_config``), and the ``ratio``
line compares the best of ours with the best of the peer's
(``jax_config``, ``peer_config``; ``jax_over_torch_by_config``: our best
over each peer configuration; ``ratios``: every pair).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from training import population
from training import train
from benchmarks import workloads as wl

# Populations at the temporal-order shape and at the papers' own B = 1 shapes.
POPULATIONS = {f'population_{n}': n
               for n in ('torder_tanh_h50', 'music_sigmoid_h300_b1', 'ptb_sigmoid_h500_b1')}
POPULATION = 'population_torder_tanh_h50'
ALL = tuple(wl.WORKLOADS) + tuple(POPULATIONS)
PEER_CONFIGS = ('default', 'passive', 'threads1')
OUR_CONFIGS = ('default', 'threads1')
LAYOUTS = ('vmap', 'map')      # population.layout: how the population's chunk runs its members
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PEER_SCRIPT = os.path.join(os.path.dirname(_REPO), 'shared', 'bench', 'torch_peer.py')
_PEER_VENV_PYTHON = os.path.join(os.path.dirname(_REPO), 'torchvenv', 'bin', 'python')
_PEER_MALLOC = {'MALLOC_MMAP_MAX_': '0', 'MALLOC_TRIM_THRESHOLD_': '100000000000'}


@dataclasses.dataclass(frozen=True)
class Options:
  """What ``main`` runs (``launch.py bench`` fills it from its flags)."""
  workloads: tuple[str, ...] = ALL
  steps: int | None = None       # timed optimiser steps per round (None: the workload's)
  rounds: int = 5                # timed rounds; medians are reported
  members: int = 8               # population size of the POPULATIONS workloads
  seed: int = 0
  peer: bool = False             # alternate with the PyTorch peer
  peer_configs: tuple[str, ...] = PEER_CONFIGS
  ours_configs: tuple[str, ...] = ('default',)
  peer_python: str = ''          # '' : $RNNOPT_PEER_PYTHON, else ../torchvenv, else python3
  peer_script: str = _PEER_SCRIPT

  def validated(self) -> 'Options':
    """Self with ``peer_python`` resolved; ValueError naming what is valid."""
    for name in self.workloads:
      if name not in ALL:
        raise ValueError(f'unknown workload {name!r}; choose among {", ".join(ALL)}')
    for c in self.peer_configs:
      if c not in PEER_CONFIGS:
        raise ValueError(f'unknown peer config {c!r}; choose among {", ".join(PEER_CONFIGS)}')
    for c in self.ours_configs:
      if c not in OUR_CONFIGS:
        raise ValueError(f'unknown configuration of ours {c!r}; choose among '
                         f'{", ".join(OUR_CONFIGS)}')
    if not self.ours_configs or len(set(self.ours_configs)) < len(self.ours_configs):
      raise ValueError('ours_configs: name each configuration once')
    if self.rounds < 1 or (self.steps is not None and self.steps < 1) or self.members < 1:
      raise ValueError('rounds, steps and members must be >= 1')
    python = self.peer_python or os.environ.get('RNNOPT_PEER_PYTHON') or (
        _PEER_VENV_PYTHON if os.path.exists(_PEER_VENV_PYTHON) else 'python3')
    if self.peer and not os.path.exists(self.peer_script):
      raise ValueError(f'the PyTorch peer {self.peer_script} is not there')
    return dataclasses.replace(self, peer_python=python)


def _emit(record: dict) -> None:
  print(json.dumps(record), flush=True)


def _max_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def _xla_memory_mb(compiled) -> float | None:
  try:
    m = compiled.memory_analysis()
  except Exception:      # not every backend reports it
    return None
  if m is None:
    return None
  total = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
           - m.alias_size_in_bytes)
  return round(total / 2 ** 20, 2)


def _median(xs):
  return statistics.median(xs)


class _Timed:
  """A trainer's chunk (``workloads.Chunk``) compiled for ``num_steps`` steps,
  and its state; ``run()`` times one call."""

  def __init__(self, chunk: wl.Chunk, num_steps: int, state=None):
    rss0 = _max_rss_mb()
    t0 = time.perf_counter()
    self.compiled = chunk.fn.lower(chunk.state, num_steps).compile()
    self.mesh = chunk.mesh
    self.compile_s = time.perf_counter() - t0
    self.xla_memory_mb = _xla_memory_mb(self.compiled)
    self.state = chunk.state if state is None else state
    self.run()                                   # warm-up, untimed
    self.rss_growth_mb = round(_max_rss_mb() - rss0, 1)

  def run(self, state=None) -> float:
    """Seconds of one call on the state (``state``: another member's, returned
    in ``self.out``; default: the own state, replaced by the new one)."""
    t0 = time.perf_counter()
    out, self.metrics = self.compiled(self.state if state is None else state)
    jax.block_until_ready((out, self.metrics))
    seconds = time.perf_counter() - t0
    if not np.asarray(self.metrics['active']).all():
      # a member whose loss went non-finite skips its compute: the time would flatter us
      raise RuntimeError('a member stopped during a timed call (non-finite loss); its steps '
                         'did no work, so this timing is not comparable')
    if state is None:
      self.state = out
    self.out = out
    return seconds

  @property
  def last_loss(self) -> float:
    """The first member's loss at the last step of the last call."""
    return float(np.asarray(self.metrics['loss'])[0, -1])


def _peer(args, name: str, steps: int, config: str) -> dict:
  """One run of the peer; its JSON line plus its process's peak RSS.

  The peer gets the cores ours gets: every core this process may use (as
  many torch threads), or, for ``threads1``, one thread pinned to the core
  ``_one_core`` pins ours to."""
  flags = ['--steps', str(steps), '--workloads', name, '--seed', str(args.seed)]
  cores = sorted(os.sched_getaffinity(0))
  if config == 'threads1':
    cores = cores[:1]
  flags += ['--threads', str(len(cores))]
  # pinned before torch starts, as ours is (a wrapper, not preexec_fn: see _one_core)
  # sys.path[0] the script's folder, as when it is run directly (it imports its sibling
  # modules; the repository's own packages must not shadow them)
  script = os.path.abspath(args.peer_script)
  pin = (f'import os, runpy, sys; os.sched_setaffinity(0, {set(cores)!r}); '
         f'sys.path[0] = {os.path.dirname(script)!r}; sys.argv = {[script] + flags!r}; '
         f"runpy.run_path({script!r}, run_name='__main__')")
  cmd = [args.peer_python, '-c', pin]
  env = dict(os.environ, **_PEER_MALLOC)
  env.pop('XLA_FLAGS', None)
  if config == 'passive':
    env['OMP_WAIT_POLICY'] = 'PASSIVE'
  with tempfile.TemporaryFile('w+') as err_file:   # not a pipe: a full one would block the peer
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_file, env=env, text=True)
    with proc.stdout:
      out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)     # wait4: the child's own peak RSS
    returncode = proc.returncode = os.waitstatus_to_exitcode(status)   # reaped: Popen must know
    err_file.seek(0)
    err = err_file.read()
  lines = [l for l in out.splitlines() if l.startswith('{')]
  if returncode or not lines:
    raise RuntimeError(f'peer failed ({args.peer_script} {" ".join(flags)}):\n{err[-2000:]}')
  record = json.loads(lines[-1])
  record['peak_rss_mb'] = round(usage.ru_maxrss / 1024, 1)
  record['cores_used'] = len(cores)
  return record


def _one_core(name: str, steps: int, seed: int) -> dict:
  """One round of ours in a fresh process pinned to one core, with XLA's
  single-thread flags (``orchestration.sweep.single_thread_env``): the
  ``threads1`` configuration."""
  from orchestration import sweep
  core = min(os.sched_getaffinity(0))
  # pinned before JAX starts (it sizes its thread pool from the affinity); not
  # with preexec_fn, which forks this multithreaded process into Python code
  pin = (f'import os, runpy, sys; os.sched_setaffinity(0, {{{core}}}); '
         f"sys.argv[1:] = {[name, str(steps), str(seed)]!r}; "
         f"runpy.run_module('benchmarks.run', run_name='__main__')")
  cmd = [sys.executable, '-c', pin]
  proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True,
                        env=dict(os.environ, **sweep.single_thread_env()))
  lines = [l for l in proc.stdout.splitlines() if l.startswith('{')]
  if proc.returncode or not lines:
    raise RuntimeError(f'the one-core run failed ({" ".join(cmd)}):\n{proc.stderr[-2000:]}')
  return json.loads(lines[-1])


def _one_round(name: str, steps: int, seed: int) -> dict:
  """What ``python -m benchmarks.run NAME STEPS SEED`` prints: one timed call
  of the workload's chunk after its compile and warm-up, in this process."""
  w = wl.WORKLOADS[name]
  config = w.config()
  config.seed = seed
  timed = _Timed(wl.trainer_chunk(config), steps)
  seconds = timed.run()
  return dict(timesteps_per_s=w.timesteps_per_step * steps / seconds,
              compile_s=timed.compile_s, xla_memory_mb=timed.xla_memory_mb,
              rss_growth_mb=timed.rss_growth_mb, final_loss=timed.last_loss,
              cpus=len(os.sched_getaffinity(0)), xla_flags=os.environ.get('XLA_FLAGS', ''))


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo), else the platform's processor string:
  VMs of one name can run on different hosts, and timings follow the CPU."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def _machine() -> dict:
  return dict(host=platform.node(), cpu=cpu_model(), cpus=os.cpu_count(), jax=jax.__version__,
              backend=jax.default_backend(), xla_flags=os.environ.get('XLA_FLAGS', ''),
              load_avg_1min=round(os.getloadavg()[0], 2))


def bench_workload(args, name: str, load_before: float | None = None) -> list[dict]:
  """``load_before``: the load average before the benchmark's first workload
  (later ones would read our own work in it), recorded with each line."""
  w = wl.WORKLOADS[name]
  steps = args.steps or w.steps
  config = w.config()
  config.seed = args.seed
  ours = _Timed(wl.trainer_chunk(config), steps) if 'default' in args.ours_configs else None
  mine_runs = {c: [] for c in args.ours_configs}            # timesteps/s of each round
  one_core = []                                             # the threads1 rounds' records
  peer_runs = {c: [] for c in (args.peer_configs if args.peer else ())}
  for r in range(args.rounds):
    order = [('ours', c) for c in mine_runs] + [('peer', c) for c in peer_runs]
    for who, c in (order if r % 2 == 0 else order[::-1]):
      if who == 'peer':
        peer_runs[c].append(_peer(args, name, steps, c))
      elif c == 'default':
        mine_runs[c].append(w.timesteps_per_step * steps / ours.run())
      else:
        one_core.append(_one_core(name, steps, args.seed))
        mine_runs[c].append(one_core[-1]['timesteps_per_s'])
  records, mine = [], {}
  for c, per_round in mine_runs.items():
    if c == 'default':
      extra = dict(compile_s=round(ours.compile_s, 3), xla_memory_mb=ours.xla_memory_mb,
                   rss_growth_mb=ours.rss_growth_mb, final_loss=round(ours.last_loss, 4),
                   cores_used=len(os.sched_getaffinity(0)))   # not cpus: a taskset run has fewer
    else:
      extra = dict(compile_s=round(_median([x['compile_s'] for x in one_core]), 3),
                   xla_memory_mb=one_core[0]['xla_memory_mb'],
                   rss_growth_mb=max(x['rss_growth_mb'] for x in one_core),
                   final_loss=round(one_core[-1]['final_loss'], 4),
                   cores_used=one_core[0]['cpus'],
                   xla_flags=one_core[0]['xla_flags'])   # the one-core process's, not ours
    mine[c] = dict(workload=name, framework='jax', jax_config=c, config=w.command,
                   seed=args.seed, steps=steps, rounds=args.rounds,
                   timesteps_per_s=round(_median(per_round), 1),
                   timesteps_per_s_rounds=[round(x, 1) for x in per_round],
                   load_avg_1min_before=load_before, **{**_machine(), **extra})
    records.append(mine[c])
  if not peer_runs:
    return records
  theirs = {}
  for config, runs in peer_runs.items():
    tps = [x['timesteps_per_s'] for x in runs]
    theirs[config] = dict(workload=name, framework='torch', config=config, steps=steps,
                          rounds=args.rounds, timesteps_per_s=round(_median(tps), 1),
                          timesteps_per_s_rounds=tps,
                          peak_rss_mb=max(x['peak_rss_mb'] for x in runs),
                          torch_threads=runs[0].get('torch_threads'),
                          cores_used=runs[0]['cores_used'],
                          torch_version=runs[0].get('torch_version'))
    records.append(theirs[config])
  best_mine = max(mine, key=lambda c: mine[c]['timesteps_per_s'])
  best = max(theirs, key=lambda c: theirs[c]['timesteps_per_s'])
  rate, best_tps = mine[best_mine]['timesteps_per_s'], theirs[best]['timesteps_per_s']
  records.append(dict(
      workload=name, kind='ratio', jax_config=best_mine, peer_config=best,
      jax_timesteps_per_s=rate, torch_timesteps_per_s=best_tps,
      jax_over_torch=round(rate / best_tps, 3),
      jax_over_torch_round_median=round(_median(
          [a / b for a, b in zip(mine_runs[best_mine],
                                 theirs[best]['timesteps_per_s_rounds'])]), 3),
      jax_over_torch_by_config={c: round(rate / t['timesteps_per_s'], 3)
                                for c, t in theirs.items()},
      ratios={f'{a}/{b}': round(m['timesteps_per_s'] / t['timesteps_per_s'], 3)
              for a, m in mine.items() for b, t in theirs.items()}))
  return records


def bench_population(args, name: str = POPULATION) -> list[dict]:
  """``members`` runs of the workload ``POPULATIONS[name]`` as one program,
  vmapped and mapped (``population.layout``), against the same members one
  after another."""
  w = wl.WORKLOADS[POPULATIONS[name]]
  steps = args.steps or w.steps
  config = wl.population_config(w.config(), args.members, args.seed)
  together = {how: _Timed(wl.trainer_chunk(wl.with_layout(config, how)), steps)
              for how in LAYOUTS}
  # One after another: the members as single runs, one compiled chunk for all
  # (they share its structure), each on its own state as the trainer inits it.
  single = wl.trainer_chunk(wl.one_member(config))
  stacked = train.init_population(single.trainer, population.make_population(config), single.mesh)
  p = jax.tree.leaves(stacked)[0].shape[0]
  members = [jax.tree.map(lambda a, i=i: a[i:i + 1], stacked) for i in range(p)]
  alone = _Timed(single, steps, members[0])
  members[0] = alone.out

  def one_after_another():
    seconds = 0.0
    for i in range(p):
      seconds += alone.run(members[i])
      members[i] = alone.out
    return seconds

  times = {how: [] for how in (*LAYOUTS, 'sequence')}
  for r in range(args.rounds):
    order = list(times)[r % 3:] + list(times)[:r % 3]    # each first in turn
    for who in order:
      times[who].append(one_after_another() if who == 'sequence' else together[who].run())
  work = p * w.timesteps_per_step * steps
  t_seq = times['sequence']
  pc = config.population
  command = ' '.join([w.command] + [f'"--config.population.{k}={tuple(pc[k])}"'
                                    for k in ('seeds', 'hparams', 'rows')])
  return [dict(
      workload=name, framework='jax', layout=how,
      config=f'{command} --config.population.layout={how}', members=p,
      steps=steps, rounds=args.rounds,
      # what a run picks here
      auto_layout=population.layout(together[how].mesh, 'auto'),
      timesteps_per_s=round(work / _median(times[how]), 1),
      timesteps_per_s_rounds=[round(work / t, 1) for t in times[how]],
      sequential_timesteps_per_s=round(work / _median(t_seq), 1),
      speedup=round(_median(t_seq) / _median(times[how]), 3),
      speedup_round_median=round(_median([s / v for s, v in zip(t_seq, times[how])]), 3),
      compile_s=round(together[how].compile_s, 3), sequential_compile_s=round(alone.compile_s, 3),
      xla_memory_mb=together[how].xla_memory_mb, rss_growth_mb=together[how].rss_growth_mb,
      **_machine()) for how in LAYOUTS]


def main(options: Options = Options()) -> list[dict]:
  """Runs the benchmark; prints and returns its JSON records."""
  args = options.validated()
  load_before = round(os.getloadavg()[0], 2)      # other work, before ours adds to the average
  if load_before > 0.5:
    print(f'warning: load average {load_before} before the benchmark: the machine is not idle, '
          'so these ratios are not an idle machine\'s', file=sys.stderr, flush=True)
  records = []
  for name in args.workloads:
    new = (bench_population(args, name) if name in POPULATIONS
           else bench_workload(args, name, load_before))
    for rec in new:
      _emit(rec)
    records.extend(new)
  return records


if __name__ == '__main__':      # one round of a workload (the threads1 configuration)
  _name, _steps, _seed = sys.argv[1:4]
  print(json.dumps(_one_round(_name, int(_steps), int(_seed))))
