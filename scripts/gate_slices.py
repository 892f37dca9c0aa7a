"""Why the recurrences scan over each gate's input projection as its own
array (``models.rnn.by_gate``): the element-wise part of a GRU and an LSTM
step inside a ``lax.scan``, reading the step's input projection either as
slices of one [B, G] array (``xp[t]``, a dynamic slice) or as G arrays
[B, H], one per gate.

    XLA_FLAGS='--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1' \\
        taskset -c 1 python scripts/gate_slices.py

On XLA's CPU backend (JAX 0.10) a fusion that reads one dynamically sliced
array at several offsets compiles to scalar code (``<1 x float>`` in the
kernel's LLVM IR, ``--xla_dump_to``); from separate arrays it is vectorised.
Prints microseconds per step (the recurrent product and the element-wise
step; forward only) for each cell and width.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models import cells  # noqa: E402
from models import rnn  # noqa: E402


def per_step_us(cell: cells.Cell, split: bool, steps: int = 600, batch: int = 32,
                rounds: int = 10) -> float:
  params = cell.init(jax.random.key(0), 2)
  h, g = cell.hidden_size, cell.gates
  xp = jax.random.normal(jax.random.key(1), (steps, batch, g * h))

  def run(params, xp):
    def body(state, xp_t):
      xp_t = rnn.joined(xp_t)
      z = cell.matmul(cell.matmul_operand(state), params['w_rec'])
      return cell.step_from_matmul(params, state, xp_t, z), None
    xs = rnn.by_gate(cell, xp) if split else xp
    return jax.lax.scan(body, jnp.zeros((batch, cell.state_size)), xs)[0].sum()

  fn = jax.jit(run)
  fn(params, xp).block_until_ready()
  t0 = time.perf_counter()
  for _ in range(rounds):
    fn(params, xp).block_until_ready()
  return (time.perf_counter() - t0) / (rounds * steps) * 1e6


def main() -> None:
  print('| cell | width | layer norm | slices of one array (us a step) | one array a gate |')
  print('|---|---|---|---|---|')
  for width in (144, 512):
    for name in ('gru', 'lstm'):
      for ln in (False, True):
        cell = cells.make_cell(name, width, layer_norm=ln)
        print(f'| {name} | {width} | {ln} | {per_step_us(cell, False):.1f} | '
              f'{per_step_us(cell, True):.1f} |', flush=True)


if __name__ == '__main__':
  main()
