r"""Training throughput of rnnopt against the PyTorch peer, as JSON lines.

    python launch.py bench                                      # every workload
    python launch.py bench --workloads=charlm_lstm_h512 --steps=10 --rounds=3
    python launch.py bench --peer                               # alternate with PyTorch

Workloads: the five of ``benchmarks.workloads`` and ``population_torder_tanh_h50``
(``members`` copies of ``torder_tanh_h50``, each with its own seed, data
stream and learning rate, trained as ONE vmapped program, against the same
members trained one after another).

Per workload it prints one JSON line (``framework: "jax"``) with

- ``timesteps_per_s``: batch x T x steps / seconds, the median over
  ``rounds`` timed rounds (``timesteps_per_s_rounds``: every round). A round
  is one call of the compiled chunk of ``steps`` optimiser steps (one
  ``lax.scan``), after one untimed warm-up call.
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

- ``default``: 2 threads with the glibc settings of the peer's README
  (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000``);
- ``passive``: the same plus ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads
  sleep instead of spinning: much faster when other jobs share the cores);
- ``threads1``: one thread, the same glibc settings.

Each peer configuration gets a ``framework: "torch"`` line (median of its
rounds; ``peak_rss_mb`` is the peer process's whole peak RSS from
``wait4``, interpreter and libraries included), and a ``ratio`` line gives
ours over the peer's best configuration, both as the ratio of medians and as
the median of per-round ratios. Machines are shared and noisy: only ratios
measured in the same run mean anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import workloads as wl

POPULATION = 'population_torder_tanh_h50'
ALL = tuple(wl.WORKLOADS) + (POPULATION,)
PEER_CONFIGS = ('default', 'passive', 'threads1')
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
  members: int = 8               # population size of POPULATION
  seed: int = 0
  peer: bool = False             # alternate with the PyTorch peer
  peer_configs: tuple[str, ...] = PEER_CONFIGS
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


class _Compiled:
  """A compiled chunk and its state; ``run()`` times one call."""

  def __init__(self, fn, *args):
    rss0 = _max_rss_mb()
    t0 = time.perf_counter()
    self.compiled = jax.jit(fn, donate_argnums=0).lower(*args).compile()
    self.compile_s = time.perf_counter() - t0
    self.xla_memory_mb = _xla_memory_mb(self.compiled)
    self.args = list(args)
    self.run()                                   # warm-up, untimed
    self.rss_growth_mb = round(_max_rss_mb() - rss0, 1)

  def run(self) -> float:
    t0 = time.perf_counter()
    self.args[0], losses = self.compiled(*self.args)
    jax.block_until_ready(losses)
    seconds = time.perf_counter() - t0
    self.last_loss = float(np.asarray(losses).reshape(-1)[-1])
    return seconds


def _ours(name: str, steps: int, seed: int) -> _Compiled:
  bench = wl.Bench(wl.WORKLOADS[name])
  state = bench.init(jax.random.key(seed))
  pool = bench.pool(jax.random.key(seed + 1))
  return _Compiled(lambda s, p: bench.chunk(s, p, steps), state, pool)


def _peer(args, name: str, steps: int, config: str) -> dict:
  """One run of the peer; its JSON line plus its process's peak RSS."""
  cmd = [args.peer_python, args.peer_script, '--steps', str(steps), '--workloads', name,
         '--seed', str(args.seed)]
  env = dict(os.environ, **_PEER_MALLOC)
  env.pop('XLA_FLAGS', None)
  if config == 'threads1':
    cmd += ['--threads', '1']
  if config == 'passive':
    env['OMP_WAIT_POLICY'] = 'PASSIVE'
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          text=True)
  out, err = proc.stdout.read(), proc.stderr.read()
  _, status, usage = os.wait4(proc.pid, 0)     # wait4: the child's own peak RSS
  proc.returncode = os.waitstatus_to_exitcode(status)
  lines = [l for l in out.splitlines() if l.startswith('{')]
  if proc.returncode or not lines:
    raise RuntimeError(f'peer failed ({" ".join(cmd)}):\n{err[-2000:]}')
  record = json.loads(lines[-1])
  record['peak_rss_mb'] = round(usage.ru_maxrss / 1024, 1)
  return record


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


def bench_workload(args, name: str) -> list[dict]:
  w = wl.WORKLOADS[name]
  steps = args.steps or w.steps
  ours = _ours(name, steps, args.seed)
  times, peer_runs = [], {c: [] for c in (args.peer_configs if args.peer else ())}
  for r in range(args.rounds):
    order = ['ours'] + list(peer_runs)
    for who in (order if r % 2 == 0 else order[::-1]):
      if who == 'ours':
        times.append(ours.run())
      else:
        peer_runs[who].append(_peer(args, name, steps, who))
  per_round = [w.timesteps_per_step * steps / t for t in times]
  mine = dict(workload=name, framework='jax', steps=steps, rounds=args.rounds,
              timesteps_per_s=round(_median(per_round), 1),
              timesteps_per_s_rounds=[round(x, 1) for x in per_round],
              compile_s=round(ours.compile_s, 3), xla_memory_mb=ours.xla_memory_mb,
              rss_growth_mb=ours.rss_growth_mb, final_loss=round(ours.last_loss, 4),
              **_machine())
  records = [mine]
  if not peer_runs:
    return records
  best, best_tps = None, -1.0
  for config, runs in peer_runs.items():
    tps = [x['timesteps_per_s'] for x in runs]
    rec = dict(workload=name, framework='torch', config=config, steps=steps,
               rounds=args.rounds, timesteps_per_s=round(_median(tps), 1),
               timesteps_per_s_rounds=tps,
               peak_rss_mb=max(x['peak_rss_mb'] for x in runs),
               torch_threads=runs[0].get('torch_threads'),
               torch_version=runs[0].get('torch_version'))
    records.append(rec)
    if rec['timesteps_per_s'] > best_tps:
      best, best_tps = config, rec['timesteps_per_s']
  best_rounds = [x['timesteps_per_s'] for x in peer_runs[best]]
  records.append(dict(
      workload=name, kind='ratio', peer_config=best,
      jax_timesteps_per_s=mine['timesteps_per_s'], torch_timesteps_per_s=best_tps,
      jax_over_torch=round(mine['timesteps_per_s'] / best_tps, 3),
      jax_over_torch_round_median=round(_median(
          [a / b for a, b in zip(per_round, best_rounds)]), 3),
      jax_over_torch_by_config={
          c: round(mine['timesteps_per_s'] / _median([x['timesteps_per_s'] for x in runs]), 3)
          for c, runs in peer_runs.items()}))
  return records


def bench_population(args) -> list[dict]:
  """``members`` torder runs as one vmapped program vs one after another."""
  w = wl.WORKLOADS['torder_tanh_h50']
  steps = args.steps or w.steps
  p = args.members
  bench = wl.Bench(w)
  keys = jax.random.split(jax.random.key(args.seed), p)
  lrs = w.lr * jnp.logspace(-1.0, 0.5, p)     # a learning-rate sweep
  states = jax.jit(jax.vmap(bench.init))(keys, lrs)
  chunk = lambda s: bench.chunk_generated(s, steps)
  members = [jax.tree.map(lambda a, i=i: a[i], states) for i in range(p)]
  together = _Compiled(jax.vmap(chunk), states)     # donates `states`
  single = _Compiled(chunk, members[0])
  members[0] = single.args[0]

  def one_after_another():
    t0 = time.perf_counter()
    outs = []
    for i in range(p):
      members[i], losses = single.compiled(members[i])
      outs.append(losses)
    jax.block_until_ready(outs)
    return time.perf_counter() - t0

  t_vmap, t_seq = [], []
  for r in range(args.rounds):
    if r % 2 == 0:
      t_vmap.append(together.run())
      t_seq.append(one_after_another())
    else:
      t_seq.append(one_after_another())
      t_vmap.append(together.run())
  work = p * w.timesteps_per_step * steps
  return [dict(
      workload=POPULATION, framework='jax', members=p, steps=steps, rounds=args.rounds,
      timesteps_per_s=round(work / _median(t_vmap), 1),
      sequential_timesteps_per_s=round(work / _median(t_seq), 1),
      speedup=round(_median(t_seq) / _median(t_vmap), 3),
      speedup_round_median=round(_median([s / v for s, v in zip(t_seq, t_vmap)]), 3),
      compile_s=round(together.compile_s, 3), sequential_compile_s=round(single.compile_s, 3),
      xla_memory_mb=together.xla_memory_mb, rss_growth_mb=together.rss_growth_mb,
      **_machine())]


def main(options: Options = Options()) -> list[dict]:
  """Runs the benchmark; prints and returns its JSON records."""
  args = options.validated()
  records = []
  for name in args.workloads:
    new = bench_population(args) if name == POPULATION else bench_workload(args, name)
    for rec in new:
      _emit(rec)
    records.extend(new)
  return records

