r"""How fast could each benchmark workload train on this machine? A matmul roofline.

    python -m benchmarks.roofline                                   # every workload
    python -m benchmarks.roofline --peer_from=benchmarks/results/cpu_2026-11-23_xeon.jsonl
    taskset -c 0 python -m benchmarks.roofline                      # one core

The workloads of ``benchmarks.workloads`` are almost all matrix products,
and the recurrent ones are small and sequential: each step's
``h @ W_rec`` ([B, H] x [H, G*H], G = 4 gates for the LSTM, 3 for the GRU, 1
for a plain RNN) waits for the step before, forward and backward. This
measures, with XLA on this machine:

- ``gemm_large``: a 2048^3 product (the machine's practical peak);
- per workload, ``gemm_all_steps``: [B*T, H] x [H, G*H], the shape of the
  weight gradient, which can be computed once for all steps;
- per workload, ``scan_step_matmuls``: T dependent [B, H] x [H, G*H]
  products in a ``lax.scan`` (the recurrence with nothing else in the loop);

and prints, as JSON lines, these rates in GFLOP/s and, per workload, the
time one training step takes if its matrix products, and nothing else, run
at these rates:

- sequential: the forward ``h @ W_rec`` and the backward ``dz @ W_rec^T``,
  2 x T x 2 B H (G H) flop;
- parallel: the recurrent weight gradient (T x 2 B H (G H)), and the input
  and output projections, forward and both backward products (3 x 2 B
  (n_in G H + H n_out) per step, the output at the last step only for
  temporal order);
- ``at_xla_rates_s``: the sequential part at the scan rate and the parallel
  part at the all-steps rate: an estimate of the best an XLA program can
  do with the dot kernels it has here (elementwise work and memory
  traffic free). It is not a strict bound: a real training step can keep
  the products' operands warmer than this bare scan does, and the
  300-unit sigmoid RNN beat its estimate by 7% on 2026-11-23;
- ``at_peak_s``: everything at the large-GEMM peak: a bound that no float32
  program on this machine can beat.

With ``--peer_from`` (the JSON lines of ``launch.py bench --peer``), each
time also becomes a ratio to PyTorch's measured throughput: for
``at_peak`` the largest any program could reach.
"""

from __future__ import annotations

import json
import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from benchmarks import run
from benchmarks import workloads as wl
from models import cells

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The script's flags, defined when it runs: launch.py has flags of the
  same names, and a process that imports both (the tests) would refuse the
  second definition."""
  flags.DEFINE_string('peer_from', '', 'JSON lines of `launch.py bench --peer`: '
                      "PyTorch's throughput per workload.")
  flags.DEFINE_integer('rounds', 5, 'timed rounds (the fastest is kept).')
  flags.DEFINE_list('workloads', list(wl.WORKLOADS), 'workloads to bound.')


def _best_seconds(fn, *args, calls: int) -> float:
  jax.block_until_ready(fn(*args))
  best = float('inf')
  for _ in range(FLAGS.rounds):
    start = time.perf_counter()
    for _ in range(calls):
      out = fn(*args)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - start) / calls)
  return best


def step_flop(w: wl.Workload) -> tuple[float, float]:
  """(sequential, parallel) GFLOP of one training step of ``w``'s matrix products."""
  g = cells.cell_class(w.cell).gates * w.hidden
  recurrent = w.length * 2 * w.batch * w.hidden * g / 1e9     # one product, all T steps
  out_steps = 1 if w.kind == 'torder' else w.length
  projections = 3 * 2 * w.batch * (w.length * w.n_in * g + out_steps * w.hidden * w.n_out) / 1e9
  return 2 * recurrent, recurrent + projections


def step_times(w: wl.Workload, rates: dict, peer_timesteps_per_s: float = 0.0) -> dict:
  """The seconds (and timesteps/s) of one training step of ``w`` whose matrix
  products run at the measured ``rates`` (GFLOP/s), and ratios to the peer."""
  sequential, parallel = step_flop(w)
  seconds = {
      'at_xla_rates_s': sequential / rates['scan_step_matmuls'] + parallel / rates['gemm_all_steps'],
      'at_peak_s': (sequential + parallel) / rates['gemm_large'],
  }
  line = {'gflop': round(sequential + parallel, 2)}
  for name, s in seconds.items():
    line[name] = round(s, 5)
    stem = name.removesuffix('_s')           # 'at_peak_s' -> 'at_peak'
    line[f'{stem}_timesteps_per_s'] = round(w.timesteps_per_step / s)
    if peer_timesteps_per_s:
      line[f'{stem}_over_peer'] = round(
          w.timesteps_per_step / s / peer_timesteps_per_s, 2)
  return line


def _peer_throughputs(path: str) -> dict:
  """{workload: PyTorch timesteps/s}, the best configuration in a bench --peer file."""
  best: dict = {}
  if path:
    with open(path) as f:
      for line in f:
        r = json.loads(line)
        if r.get('framework') == 'torch':
          best[r['workload']] = max(best.get(r['workload'], 0.0), r['timesteps_per_s'])
  return best


def _rates(w: wl.Workload) -> dict:
  """The measured GFLOP/s of ``w``'s recurrent product: all steps at once, and in a scan."""
  g = cells.cell_class(w.cell).gates * w.hidden
  weight = jnp.full((w.hidden, g), 1e-3, jnp.float32)
  product = w.length * 2 * w.batch * w.hidden * g

  @jax.jit
  def recurrence(h0):
    def step(h, _):
      return jnp.tanh((h @ weight)[:, :w.hidden]), None
    return jax.lax.scan(step, h0, None, length=w.length)[0]

  all_steps = jnp.ones((w.batch * w.length, w.hidden), jnp.float32)
  calls = max(1, int(2e9 // product))      # about 2 GFLOP per timed round
  return {
      'gemm_all_steps': product / _best_seconds(jax.jit(jnp.dot), all_steps, weight,
                                                calls=calls) / 1e9,
      'scan_step_matmuls': product / _best_seconds(recurrence, jnp.ones((w.batch, w.hidden)),
                                                   calls=calls) / 1e9,
  }


def main(argv):
  del argv
  unknown = sorted(set(FLAGS.workloads) - set(wl.WORKLOADS))
  if unknown:
    raise app.UsageError(f'unknown workloads {unknown}; choose among {", ".join(wl.WORKLOADS)}')
  cores = len(os.sched_getaffinity(0))
  print(json.dumps({'cpu': run.cpu_model(), 'cores': cores,
                    'xla_flags': os.environ.get('XLA_FLAGS', '')}))
  big = jnp.ones((2048, 2048), jnp.float32)
  peak = 2 * 2048**3 / _best_seconds(jax.jit(jnp.dot), big, big, calls=5) / 1e9
  print(json.dumps({'measure': 'gemm_large', 'gflop_per_s': round(peak, 1)}))
  peers = _peer_throughputs(FLAGS.peer_from)
  for name in FLAGS.workloads:
    w = wl.WORKLOADS[name]
    rates = dict(_rates(w), gemm_large=peak)
    line = {'workload': name, **{k: round(v, 1) for k, v in rates.items() if k != 'gemm_large'}}
    line.update(step_times(w, rates, peers.get(name, 0.0)))
    print(json.dumps(line))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
