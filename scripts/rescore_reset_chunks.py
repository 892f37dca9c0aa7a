"""A music run's test NLL at each member's lowest validation, scored twice:
over whole pieces with the state carried (what the run reported), and with
the state reset to the initial one at every chunk of the test pieces (each
``task.chunk`` frames a sequence of its own, as a run with
``task.reset_every_chunk`` trained).

    python scripts/rescore_reset_chunks.py WORKDIR 'dataset=piano,method=all' \
        task.reset_every_chunk=True

WORKDIR must hold its checkpoint (the best parameters are read from it);
the config is rebuilt from ``experiments/music.py`` with the argument and
the overrides given, as the run's command line had them. The first column
is checked against the run's result.json, which says the restore is right.
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import music  # noqa: E402
from training import population  # noqa: E402
from training import train  # noqa: E402


def _set(config: ml_collections.ConfigDict, override: str) -> None:
  key, value = override.split('=', 1)
  *path, leaf = key.split('.')
  node = config
  for p in path:
    node = node[p]
  old = node[leaf]
  node[leaf] = type(old)(value == 'True') if isinstance(old, bool) else type(old)(value)


def main(workdir: str, arg: str, *overrides: str) -> None:
  config = music.get_config(arg)
  for o in overrides:
    _set(config, o)
  pop = population.make_population(config)
  mesh = population.make_mesh(pop.size, config.task.batch_size, None)
  trainer = train.build(config, mesh)
  run = train._restore_or_init(config, trainer, pop, mesh, train._checkpoints(workdir))
  best = run.best.params
  key = jax.random.key(config.train.eval_seed)
  carried = trainer.task.evaluator(trainer.apply, trainer.initial_carry, config.train, key)(
      best, 'test')
  inputs, targets, mask, reset = trainer.task.splits['test']
  trainer.task.splits['test'] = (inputs, targets, mask, jnp.ones_like(reset))
  fresh = trainer.task.evaluator(trainer.apply, trainer.initial_carry, config.train, key)(
      best, 'test')
  with open(os.path.join(workdir, 'result.json')) as f:
    reported = json.load(f)['members']
  print('member | reported (result.json) | carried over whole pieces | reset every '
        f'{config.task.chunk} frames')
  for i, (c, r, m) in enumerate(zip(carried, fresh, reported)):
    print(f'{i} {m["hparams"]} | {m["test_loss_at_best_valid"]:.4f} | {float(c["loss"]):.4f} | '
          f'{float(r["loss"]):.4f}')


if __name__ == '__main__':
  if len(sys.argv) < 3:
    sys.exit('usage: python scripts/rescore_reset_chunks.py WORKDIR ARG [KEY=VALUE ...]\n'
             "  e.g. WORKDIR 'dataset=piano,method=all' task.reset_every_chunk=True")
  main(*sys.argv[1:])
