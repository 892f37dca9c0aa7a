r"""How fast can this machine train a 512-unit LSTM at all? A matmul roofline.

    python -m benchmarks.roofline                 # all cores
    taskset -c 0 python -m benchmarks.roofline    # one core

The LSTM and GRU workloads of ``benchmarks.run`` (B 32, T 150, 512 units) are
almost all matrix products, and most of them are small and sequential: each
step's ``h @ W_hh`` ([32, 512] x [512, 4*512] for the LSTM) waits for the step
before, forward and backward. This measures, with XLA on this machine:

- ``gemm_large``: a 2048^3 product (the machine's practical peak);
- ``gemm_all_steps``: [B*T, 512] x [512, 4*512], the shape of the input
  projection and of the weight gradient, which we compute once for all steps;
- ``scan_step_matmuls``: T dependent [B, 512] x [512, 4*512] products in a
  ``lax.scan`` (the recurrence, with nothing else in the loop);

and prints, as JSON lines, these rates in GFLOP/s and the least time an LSTM
training step can take given them: the forward recurrence and the backward
``dh @ W_hh^T`` at the scan rate (2 x 10.1 GFLOP), the weight gradient at the
all-steps rate (10.1 GFLOP); the input projection of a 50-wide embedding and
the 50-way output layer are under 1% and left out. ``--peer_timesteps_per_s``
(PyTorch's measured LSTM throughput) turns that floor into the most any
implementation could reach relative to it.
"""

from __future__ import annotations

import json
import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

_PEER = flags.DEFINE_float('peer_timesteps_per_s', 0.0,
                           "PyTorch's LSTM 512 throughput from `launch.py bench --peer`.")
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'timed rounds (the fastest is kept).')

B, T, H, GATES = 32, 150, 512, 4


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
  for name, gflops in rates.items():
    print(json.dumps({'measure': name, 'gflop_per_s': round(gflops, 1), 'cores': cores}))

  sequential = 2 * T * step_flop / 1e9          # forward h @ W, backward dh @ W^T
  weight_grad = T * step_flop / 1e9             # h^T @ dgates, once for all steps
  floor_s = sequential / rates['scan_step_matmuls'] + weight_grad / rates['gemm_all_steps']
  line = {'measure': 'lstm512_train_step_floor', 'cores': cores,
          'gflop': round(sequential + weight_grad, 1), 'seconds': round(floor_s, 4),
          'timesteps_per_s': round(B * T / floor_s)}
  if _PEER.value:
    line['max_ratio_to_peer'] = round(B * T / floor_s / _PEER.value, 2)
  print(json.dumps(line))


if __name__ == '__main__':
  app.run(main)
