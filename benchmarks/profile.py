r"""Where one training update's time goes: the trainer's compiled chunk of a
benchmark workload under ``jax.profiler``, its XLA operations (thunks)
summed per update.

    python launch.py bench --profile --workloads=ptb_sigmoid_h500_b1 --steps=20

XLA's CPU runtime records one event per executed operation. An operation
that runs T times an update (once per timestep, inside the recurrence's
loops) is listed per timestep as well; the rest (the input projection, the
output layer, the weight gradients as one product each, the optimiser) run
a few times an update. The events come from the Perfetto trace the profiler
writes (``perfetto_trace.json.gz``), so no TensorBoard is needed to read
them.

The profiler adds a little time to every operation: compare operations
with each other within one profile, and take the update's own time from
``launch.py bench``.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import gzip
import json
import os
import tempfile
import time

import jax

from benchmarks import workloads as wl

# Events that are not XLA operations: the runtime's and Python's own spans.
_NOT_OPS = ('ThunkExecutor', 'PjitFunction', 'CommonPjRt', 'SlinkyThreadPool', '$', 'end: ',
            'while.', 'cond.', 'call.')


@dataclasses.dataclass(frozen=True)
class Op:
  """One XLA operation of the chunk: ``us`` microseconds and ``calls`` per update."""
  name: str
  us: float
  calls: float


def read_trace(folder: str) -> dict[str, tuple[float, int]]:
  """Name -> (total microseconds, count) of the complete events of the
  Perfetto trace under ``folder`` (what ``jax.profiler.trace`` wrote)."""
  paths = glob.glob(os.path.join(folder, '**', 'perfetto_trace.json.gz'), recursive=True)
  if not paths:
    raise FileNotFoundError(f'no perfetto_trace.json.gz under {folder}')
  with gzip.open(sorted(paths)[-1]) as f:
    trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  totals: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])
  for e in events:
    if e.get('ph') == 'X':
      totals[e['name']][0] += float(e.get('dur', 0.0))
      totals[e['name']][1] += 1
  return {k: (v[0], v[1]) for k, v in totals.items()}


def operations(totals: dict[str, tuple[float, int]], updates: int) -> list[Op]:
  """The XLA operations of ``read_trace``'s totals, per update, slowest first."""
  ops = [Op(name, us / updates, count / updates) for name, (us, count) in totals.items()
         if not name.startswith(_NOT_OPS)]
  return sorted(ops, key=lambda op: -op.us)


def profile_workload(name: str, steps: int | None = None, rounds: int = 3,
                     layout: str = 'map') -> dict:
  """Profiles ``rounds`` calls of the workload's compiled chunk of ``steps``
  updates. Returns {'workload', 'updates', 'ms_per_update' (unprofiled),
  'length' (timesteps per update), 'ops': [Op]}."""
  workload = wl.WORKLOADS[name]
  config = workload.config()
  config.population.layout = layout
  chunk = wl.trainer_chunk(config)
  steps = steps or workload.steps
  compiled = chunk.fn.lower(chunk.state, steps).compile()
  state, metrics = compiled(chunk.state)
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for _ in range(rounds):
    state, metrics = compiled(state)
    jax.block_until_ready(metrics)
  ms = (time.perf_counter() - t0) / (rounds * steps) * 1e3
  with tempfile.TemporaryDirectory() as folder:
    with jax.profiler.trace(folder, create_perfetto_trace=True):
      for _ in range(rounds):
        state, metrics = compiled(state)
        jax.block_until_ready(metrics)
    totals = read_trace(folder)
  return dict(workload=name, updates=rounds * steps, ms_per_update=ms,
              length=workload.length, ops=operations(totals, rounds * steps))


def report(profile: dict, top: int = 25) -> str:
  """A Markdown table of the slowest operations, with the share of the
  operations' total and the per-timestep times of those run once a timestep."""
  ops, length = profile['ops'], profile['length']
  total = sum(op.us for op in ops)
  per_step = [op for op in ops if abs(op.calls - length) < 0.5]
  lines = [f'{profile["workload"]}: {profile["ms_per_update"]:.2f} ms an update unprofiled; '
           f'operations {total / 1e3:.2f} ms an update profiled, of which '
           f'{sum(op.us for op in per_step) / total:.0%} in the {len(per_step)} operations run '
           f'once a timestep (T = {length})',
           '', '| operation | us an update | share | calls an update | us a call |',
           '|---|---|---|---|---|']
  for op in ops[:top]:
    lines.append(f'| `{op.name}` | {op.us:.0f} | {op.us / total:.1%} | {op.calls:g} | '
                 f'{op.us / op.calls:.2f} |')
  return '\n'.join(lines)


def main(names, steps: int | None = None, rounds: int = 3) -> list[dict]:
  out = []
  for name in names:
    profile = profile_workload(name, steps, rounds)
    print(report(profile), flush=True)
    print(flush=True)
    out.append(profile)
  return out
