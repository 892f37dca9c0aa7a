"""The PTB word update of one member under each population layout: the
trainer's chunk of ``experiments/ptb_bengio.py:level=word,method=sgd-cl`` (lr
0.01, one window of 40 words an update) compiled three ways, timed in turns
in one process so that a shared core's drift falls on all three alike:

- ``vmap``: the member vmapped (a population of one);
- ``map``: under ``lax.map``, the class softmax unbatched (before 2026-12-04);
- ``map+vmap_one``: under ``lax.map``, the class softmax as a vmap of one
  (``RecurrentNetwork.unbatched``, what ``train.compile_chunk`` runs for 'map').

    RNNOPT_DATA=DIR python scripts/ptb_word_layouts.py [--steps=300] [--rounds=6]

Prints each program's first loss (the same, to rounding) and the median
milliseconds an update, one JSON line each.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import ptb_bengio  # noqa: E402
from training import population, train  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--steps', type=int, default=300, help='updates a timed chunk')
  parser.add_argument('--rounds', type=int, default=6, help='timed chunks a program')
  args = parser.parse_args()
  config = ptb_bengio.get_config('level=word,method=sgd-cl,lr=0.01')
  pop = population.make_population(config)
  mesh = population.make_mesh(pop.size, config.task.batch_size)
  trainer = train.build(config, mesh)
  state = train.init_population(trainer, pop, mesh)
  unbatched = dataclasses.replace(trainer, model=trainer.model.clone(unbatched=True))
  programs = {'vmap': (trainer, 'vmap'), 'map': (trainer, 'map'),
              'map+vmap_one': (unbatched, 'map')}
  compiled, loss = {}, {}
  for name, (t, how) in programs.items():     # not train.compile_chunk: no donation, no flag
    compiled[name] = jax.jit(population.over_members(t.train_chunk, how), static_argnums=1)
    _, m = compiled[name](state, args.steps)
    loss[name] = float(np.mean(m['loss']))
  times = {name: [] for name in programs}
  for _ in range(args.rounds):
    for name, chunk in compiled.items():
      t0 = time.perf_counter()
      jax.block_until_ready(chunk(state, args.steps))
      times[name].append((time.perf_counter() - t0) / args.steps * 1e3)
  for name in programs:
    print(json.dumps(dict(program=name, ms_per_update=float(np.median(times[name])),
                          rounds_ms=[round(x, 2) for x in times[name]], loss=loss[name],
                          steps=args.steps, cores=len(os.sched_getaffinity(0)))))


if __name__ == '__main__':
  main()
