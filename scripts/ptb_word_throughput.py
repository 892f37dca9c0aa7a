"""Training throughput (words/s) of the PTB word model of Bengio et al. 2013
Table 2 with the class-factored softmax against the full softmax.

    RNNOPT_DATA=DIR python scripts/ptb_word_throughput.py [--batch=32] [--steps=50] [--rounds=3]

Builds the run of ``experiments/ptb_bengio.py:level=word,method=sgd-c``
(``softmax=class`` and ``softmax=full``), compiles one chunk of ``steps``
updates, then times ``rounds`` chunks of the trainer's compiled step
(``train.Trainer.train_chunk``, one member) and prints one JSON line per
softmax: the median seconds per update and words per second (40 x batch
words per update), plus the time of one valid pass over the whole stream.
"""

import argparse
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training import train  # noqa: E402
from experiments import ptb_bengio  # noqa: E402


def measure(softmax: str, batch: int, steps: int, rounds: int) -> dict:
  config = ptb_bengio.get_config(f'level=word,method=sgd-c,softmax={softmax},batch={batch}')
  pop = train.population.make_population(config)
  mesh = train.population.make_mesh(pop.size, config.task.batch_size)
  trainer = train.build(config, mesh)
  state = train.init_population(trainer, pop, mesh)
  chunk = jax.jit(jax.vmap(trainer.train_chunk, in_axes=(0, None)), static_argnums=1,
                  donate_argnums=0)
  t0 = time.time()
  state, m = chunk(state, steps)
  jax.block_until_ready(m)
  compile_s = time.time() - t0
  times = []
  for _ in range(rounds):
    t0 = time.time()
    state, m = chunk(state, steps)
    jax.block_until_ready(m)
    times.append((time.time() - t0) / steps)
  evaluate = trainer.task.evaluator(trainer.apply, trainer.initial_carry, config.train,
                                    jax.random.key(0))
  evaluate(state.params, 'valid')            # compile
  t0 = time.time()
  valid = evaluate(state.params, 'valid')
  valid_s = time.time() - t0
  per_update = float(np.median(times))
  words = config.task.chunk * config.task.batch_size
  return dict(softmax=softmax, output=config.model.output, batch=batch, window=config.task.chunk,
              hidden=config.model.hidden_size, s_per_update=per_update,
              words_per_s=words / per_update, first_chunk_s=compile_s, valid_pass_s=valid_s,
              valid_words=valid[0]['count'], loss=float(np.mean(m['loss'])),
              devices=str(jax.devices()))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--steps', type=int, default=50)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--softmax', default='class,full')
  args = parser.parse_args()
  for softmax in args.softmax.split(','):
    print(json.dumps(measure(softmax, args.batch, args.steps, args.rounds)), flush=True)


if __name__ == '__main__':
  main()
