"""How much a stopped member costs: the trainer's compiled chunk of the music
B = 1 workload with 4 members mapped (``population.layout='map'``), timed
with all 4 training and with 1 of the 4 (the other three marked stopped).

    XLA_FLAGS='--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1' \
        taskset -c 1 python scripts/stopped_members_speed.py

Prints the median time of a chunk of 20 updates (5 rounds) for each case.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import workloads as wl  # noqa: E402


def main(steps: int = 20, rounds: int = 5) -> None:
  config = wl.WORKLOADS['music_sigmoid_h300_b1'].config()
  config.population.seeds = (0, 1, 2, 3)
  config.population.layout = 'map'
  chunk = wl.trainer_chunk(config)
  compiled = chunk.fn.lower(chunk.state, steps).compile()
  state, metrics = compiled(chunk.state)
  jax.block_until_ready(metrics)

  def timed(state):
    times = []
    for _ in range(rounds):
      t0 = time.perf_counter()
      state, metrics = compiled(state)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - t0)
    return state, float(np.median(times))

  state, all_training = timed(state)
  state, one_training = timed(state.replace(active=jnp.array([True, False, False, False])))
  print(f'4 members training: {1e3 * all_training:.0f} ms a chunk of {steps}; 1 of 4 training: '
        f'{1e3 * one_training:.0f} ms; ratio {all_training / one_training:.2f}')


if __name__ == '__main__':
  main()
