r"""How fast can this machine train the 512-unit LSTM and GRU at all? A matmul roofline.

    python -m benchmarks.roofline                 # all cores
    taskset -c 0 python -m benchmarks.roofline    # one core
    python -m benchmarks.roofline --peer_lstm=35140 --peer_gru=22036   # PyTorch's, from bench --peer

The LSTM and GRU workloads of ``benchmarks.run`` (B 32, T 150, 512 units) are
almost all matrix products, and most of them are small and sequential: each
step's ``h @ W_rec`` ([32, 512] x [512, G*512], G = 4 gates for the LSTM, 3
for the GRU) waits for the step before, forward and backward. This measures,
with XLA on this machine:

- ``gemm_large``: a 2048^3 product (the machine's practical peak);
- ``gemm_all_steps``: [B*T, 512] x [512, 4*512], the shape of the weight
  gradient, which we compute once for all steps;
- ``scan_step_matmuls``: T dependent [B, 512] x [512, 4*512] products in a
  ``lax.scan`` (the recurrence with nothing else in the loop);

and prints, as JSON lines, these rates in GFLOP/s and, per cell, the least
time a training step can take: 3 x T x 2 B 512 (G 512) flop (the forward
``h @ W_rec``, the backward ``dz @ W_rec^T`` and the weight gradient; the
50-wide embedding and the 50-way output layer are under 1% and left out),

- ``floor_xla_s``: the two sequential products at the scan rate and the
  weight gradient at the all-steps rate, i.e. the best any XLA program
  can do with the dot kernels it has here;
- ``floor_peak_s``: everything at the large-GEMM peak, the best any program
  can do on this machine in float32.

With ``--peer_lstm`` / ``--peer_gru`` (PyTorch's measured throughput in
timesteps/s) each floor also becomes the largest ratio to PyTorch that
program could reach.
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

_PEER = {cell: flags.DEFINE_float(f'peer_{cell}', 0.0, f"PyTorch's {cell.upper()} 512 "
                                  'timesteps/s, from `launch.py bench --peer`.')
         for cell in ('lstm', 'gru')}
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'timed rounds (the fastest is kept).')

B, T, H, GATES = 32, 150, 512, 4
CELL_GATES = {'lstm': 4, 'gru': 3}


def _best_seconds(fn, *args, calls: int) -> float:
  jax.block_until_ready(fn(*args))
  best = float('inf')
  for _ in range(_ROUNDS.value):
    start = time.perf_counter()
    for _ in range(calls):
      out = fn(*args)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - start) / calls)
  return best


def _rate(flop: float, seconds: float) -> float:
  return flop / seconds / 1e9


def main(argv):
  del argv
  w = jnp.full((H, GATES * H), 1e-3, jnp.float32)
  dot = jax.jit(jnp.dot)
  big = jnp.ones((2048, 2048), jnp.float32)
  all_steps = jnp.ones((B * T, H), jnp.float32)

  @jax.jit
  def recurrence(h0):
    def step(h, _):
      return jnp.tanh((h @ w)[:, :H]), None
    return jax.lax.scan(step, h0, None, length=T)[0]

  step_flop = 2 * B * H * GATES * H
  rates = {
      'gemm_large': _rate(2 * 2048**3, _best_seconds(dot, big, big, calls=5)),
      'gemm_all_steps': _rate(T * step_flop, _best_seconds(dot, all_steps, w, calls=5)),
      'scan_step_matmuls': _rate(T * step_flop,
                                 _best_seconds(recurrence, jnp.ones((B, H)), calls=10)),
  }
  cores = len(os.sched_getaffinity(0))
  print(json.dumps({'cpu': run.cpu_model(), 'cores': cores,
                    'xla_flags': os.environ.get('XLA_FLAGS', '')}))
  for name, gflops in rates.items():
    print(json.dumps({'measure': name, 'gflop_per_s': round(gflops, 1), 'cores': cores}))

  for cell in CELL_GATES:
    line = {'measure': f'{cell}512_train_step', 'cores': cores}
    line.update(train_step_floors(rates, cell, _PEER[cell].value))
    print(json.dumps(line))


def train_step_floors(rates: dict, cell: str, peer_timesteps_per_s: float = 0.0) -> dict:
  """The least seconds (and most timesteps/s) of one B x T training step of
  ``cell`` at the measured ``rates`` (GFLOP/s), and their ratios to the peer."""
  product = 2 * B * H * CELL_GATES[cell] * H * T / 1e9   # one of the three, over all T steps
  floors = {
      'floor_xla_s': (2 * product / rates['scan_step_matmuls']
                      + product / rates['gemm_all_steps']),
      'floor_peak_s': 3 * product / rates['gemm_large'],
  }
  line = {'gflop': round(3 * product, 1)}
  for name, seconds in floors.items():
    line[name] = round(seconds, 4)
    line[name.replace('_s', '_timesteps_per_s')] = round(B * T / seconds)
    if peer_timesteps_per_s:
      line[name.replace('_s', '_over_peer')] = round(B * T / seconds / peer_timesteps_per_s, 2)
  return line

if __name__ == '__main__':
  app.run(main)
