"""Populations: many members trained as one program, and the device mesh.

A population is the product of ``population.seeds`` and the rows of
``population.rows`` (one value per name in ``population.hparams``). Its
members share the run's structure (cell, sizes, which transforms are on)
and differ in numbers: the seed, and any numeric hyperparameter that is an
array in the train state: the optimiser's injected ones (``optim.learning_rate``,
``optim.momentum``, ``optim.clip_norm``, ...), the loss-side ones
(``reg.omega_alpha``, ``reg.l1_weight``, ``reg.bptt_clip``) and the model's
dropout rates (``model.dropout``, ``model.recurrent_dropout``). Members are
stacked on a leading axis and trained with ``jax.vmap``.

The mesh has a population axis ``'pop'`` and a data axis ``'data'``:
members are spread over ``'pop'``, each member's batch over ``'data'``, and
parameters are replicated along ``'data'``. With one device it is the plain
run. On a single CPU device the training chunk runs the members one after
another inside the program instead (``population.layout``, ``layout``).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import optim

LOSS_HPARAMS = ('reg.omega_alpha', 'reg.l1_weight', 'reg.bptt_clip')
# The model's rates a member may have of its own where they are on (the
# program then draws their masks; ``models.rnn.MEMBER_RATES``).
MODEL_HPARAMS = ('model.dropout', 'model.recurrent_dropout')


@dataclasses.dataclass(frozen=True)
class Population:
  """Members' seeds and numbers; ``labels[i]`` names member i's values."""
  seeds: tuple[int, ...]
  loss_hp: dict[str, np.ndarray]     # 'omega_alpha' -> [P]; the model's rates the members vary
  opt_hp: dict[str, np.ndarray]      # 'learning_rate' -> [P] (optax injected names)
  labels: tuple[dict, ...]

  @property
  def size(self) -> int:
    return len(self.seeds)


def member_hparams(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The one rule for what may differ between the members of one program:
  the numbers that are arrays in each member's train state. They are the
  loss-side weights and the model's dropout rates that are on (non-zero in
  the config, so that the program computes them; a member's own rate may
  then be 0) and the optimiser's injected hyperparameters
  (``optim.numeric_hyperparams``: those its chain uses). Everything else is
  structure: it changes the program, so it varies across runs
  (``training/population.py``, ``orchestration/sweep.py`` and the optimiser all read this)."""
  loss = tuple(k for k in LOSS_HPARAMS if config.reg[k.partition('.')[2]])
  rates = tuple(k for k in MODEL_HPARAMS if config.model.get(k.partition('.')[2], 0.0))
  return loss + rates + tuple(f'optim.{k}' for k in optim.numeric_hyperparams(config.optim))


def make_population(config: ml_collections.ConfigDict) -> Population:
  """Members from ``config.population`` (a single member when it is absent)."""
  pc = config.get('population', None)
  try:
    seeds = tuple(pc.seeds) if pc is not None and pc.seeds else (config.seed,)
  except TypeError:
    seeds = (pc.seeds,)
  bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32]
  if bad and pc is not None and pc.seeds:
    raise ValueError(f'population.seeds={pc.seeds}: seeds must be integers in 0..2**32-1, '
                     f'e.g. (0, 1, 2); {bad[0]!r} is not')
  if bad:
    raise ValueError(f'seed={config.seed!r}: a seed must be an integer in 0..2**32-1')
  twice = [s for i, s in enumerate(seeds) if s in seeds[:i]]
  if twice:
    raise ValueError(f'population.seeds={seeds}: seed {twice[0]} is given twice (its members '
                     'would be identical)')
  how = pc.get('layout', 'auto') if pc is not None else 'auto'
  if how not in LAYOUTS:
    raise ValueError(f'population.layout={how!r} is not one of {", ".join(LAYOUTS)}')
  names = tuple(pc.hparams) if pc is not None else ()
  rows = [tuple(r) for r in pc.rows] if pc is not None and names else [()]
  if not rows:
    raise ValueError(f'population.hparams={names} but population.rows is empty: give one row '
                     'of values for each member, e.g. population.rows=((0.01,), (0.1,))')
  for row in rows:
    if len(row) != len(names):
      raise ValueError(f'population.rows row {row} does not have one value for each of '
                       f'population.hparams {names}')
  base_loss = {'omega_alpha': config.reg.omega_alpha, 'l1_weight': config.reg.l1_weight,
               'bptt_clip': config.reg.bptt_clip}
  allowed = member_hparams(config)
  # a dropout that is off, with every member at 0: nothing to draw, so the
  # program leaves it out (a sweep's unit whose trials drew no such dropout)
  idle = tuple(n for i, n in enumerate(names)
               if n in MODEL_HPARAMS and n not in allowed and all(r[i] == 0 for r in rows))
  for name in names:
    if name in idle:
      continue
    if name in LOSS_HPARAMS + MODEL_HPARAMS and name not in allowed:
      raise ValueError(f'population varies {name}, which is off (0) in the config; '
                       'switch it on there so the program computes it')
    if name not in allowed:
      raise ValueError(f'population.hparams: {name!r} is not a numeric hyperparameter that '
                       f'this config computes per member; it has: {", ".join(allowed)} '
                       '(a number the optimiser does not use, e.g. optim.momentum with plain '
                       'SGD, or a structural field, varies across runs: sweep.grid)')
  members = [(seed, dict(zip(names, row))) for row in rows for seed in seeds]
  loss_hp = {k: np.array([m.get(f'reg.{k}', v) for _, m in members], np.float32)
             for k, v in base_loss.items()}
  # a rate the members vary (only then: a run at the config's rate keeps its
  # constant, and its numbers to the last bit)
  loss_hp.update({k.partition('.')[2]: np.array([m[k] for _, m in members], np.float32)
                  for k in MODEL_HPARAMS if k in names and k not in idle})
  opt_hp = {n.partition('.')[2]: np.array([m[n] for _, m in members], np.float32)
            for n in names if n.startswith('optim.')}
  labels = tuple({'seed': s, **m} for s, m in members)
  return Population(tuple(s for s, _ in members), loss_hp, opt_hp, labels)


def make_mesh(population_size: int, batch_size: int, devices=None) -> Mesh:
  """A ('pop', 'data') mesh over as many devices as divide the work evenly.

  Members go first: ``pop`` is the largest divisor of the population size
  that fits the devices; the devices left per member shard the batch when
  they divide it.
  """
  devices = list(devices if devices is not None else jax.devices())
  n = len(devices)
  pop = max(d for d in range(1, n + 1) if population_size % d == 0 and n % d == 0)
  per_member = n // pop
  data = max(d for d in range(1, per_member + 1)
             if batch_size % d == 0 and per_member % d == 0)
  return Mesh(np.array(devices[:pop * data]).reshape(pop, data), ('pop', 'data'))


LAYOUTS = ('auto', 'vmap', 'map')


def layout(mesh: Mesh, requested: str = 'auto') -> str:
  """How a population's training chunk runs over its members: 'vmap' (one
  batched program: each matrix product gets a member axis) or 'map'
  (``lax.map``: one member after another, inside one compiled program).

  'auto' picks 'map' on a single CPU device and 'vmap' everywhere else (an
  accelerator, members spread over devices). Measured with ``launch.py
  bench``, 8 members against the same runs in sequence (RESULTS.md):

  - one pinned core (how runs are started here, one process per core), idle
    2-core AMD EPYC: map 0.97-1.10 at both B = 1 shapes and 1.01-1.03 at
    temporal order (B = 20), vmap 0.68-0.92 and 0.58-0.72;
  - two threads at B = 1: on that EPYC vmap spread the members' products
    over both cores (1.22-1.49 at 8 members, map 0.95-1.10), and 'auto'
    picked it there; on an Intel Xeon VM (2026-12-04) vmap was 0.59 at the
    PTB shape and 1.00 at the music one, map 0.99 and 1.01. Since map is
    level with the runs in sequence on both machines and vmap is not, 'auto'
    no longer guesses from the thread count; ask for 'vmap' where it pays.
  """
  if requested not in LAYOUTS:
    raise ValueError(f'population.layout={requested!r} is not one of {", ".join(LAYOUTS)}')
  if requested != 'auto':
    return requested
  single_cpu = math.prod(mesh.devices.shape) == 1 and mesh.devices.flat[0].platform == 'cpu'
  return 'map' if single_cpu else 'vmap'


def over_members(fn, how: str):
  """``fn(member, *shared)`` over stacked members: ``(members, *shared) ->
  stacked results``, by ``jax.vmap`` or ``jax.lax.map`` (see ``layout``)."""
  if how == 'vmap':
    return lambda members, *shared: jax.vmap(
        lambda m: fn(m, *shared), spmd_axis_name='pop')(members)
  return lambda members, *shared: jax.lax.map(lambda m: fn(m, *shared), members)


def member_sharding(mesh: Mesh) -> NamedSharding:
  """Stacked member state: leading axis over 'pop', replicated over 'data'."""
  return NamedSharding(mesh, P('pop'))


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Within a member: time-major arrays [T, B, ...] sharded on B over 'data'."""
  return NamedSharding(mesh, P(None, 'data', *([None] * (ndim - 2))))


def carry_sharding(mesh: Mesh) -> NamedSharding:
  """Stacked carried states [P, B, S]: members over 'pop', the batch over 'data'."""
  return NamedSharding(mesh, P('pop', 'data'))


def describe(mesh: Mesh) -> str:
  return (f"{math.prod(mesh.devices.shape)} device(s) of {mesh.devices.flat[0].platform}: "
          f"pop={mesh.shape['pop']} x data={mesh.shape['data']}")
