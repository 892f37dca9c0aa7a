r"""The benchmark workloads: experiment configs, timed through the trainer.

Each workload is an experiment file of ``experiments/`` with its arguments
and a few ``--config.KEY=VALUE`` overrides that give it the shape of the
PyTorch peer's workload of the same name (``../shared/bench/README.md``):

  =========================  ======================================  ======  =========================
  name                       model                                   B, T    config
  =========================  ======================================  ======  =========================
  ``torder_tanh_h50``        tanh RNN 6 -> 50, 4-way softmax on      20,200  ``temporal_order.py:``
                             the last step (temporal order)                  ``length=200,method=sgd-c``
  ``music_sigmoid_h300``     sigmoid RNN 88 -> 300, 88 sigmoid       32,100  ``music.py:batch=32,``
                             outputs every step                              ``method=sgd-c``, chunk 100
  ``music_tanh_h300_fused``  the same with tanh                      32,100  the same, ``activation=tanh``
  ``charlm_lstm_h512``       50 symbols -> LSTM 512 -> 50-way        32,150  ``ptb_char.py:cell=lstm,``
                             softmax every step                              ``batch=32,method=sgd-c``,
                                                                             512 units, chunk 150
  ``charlm_gru_h512``        the same with a GRU                     32,150  the same, ``cell=gru``
  ``charlm_lstm_h512_bf16``  ``charlm_lstm_h512`` with bfloat16      32,150  the same,
                             operands of every product                       ``compute_dtype=bfloat16``
  ``charlm_gru_h512_bf16``   the same with a GRU                     32,150  the same, ``cell=gru``
  ``music_sigmoid_h300_b1``  the music RNN at the papers' shape      1, 200  ``music.py:method=sgd-c``
  ``ptb_sigmoid_h500_b1``    Pascanu et al.'s PTB characters: 500    1, 200  ``ptb_char.py:method=sgd-c``
                             sigmoid units without biases
  =========================  ======================================  ======  =========================

The overrides set only shapes, the peer's learning rate and clipping
threshold (SGD with global-norm clipping, as the peer; the numbers do not
change the speed) and, for the ``_bf16`` workloads, the compute dtype. Everything else is the experiment's: initialisation,
the overflow guard, the objective (``ptb_char.py`` differentiates the cost
summed over the window, ``loss_reduction='sum_over_time'``; the peer the
mean), the carried state and the per-step metrics the trainer computes.

Differences from the peer's models, kept because they are the
experiments' own:

- the char-LMs read their 50 symbols one-hot into the cell's input
  projection ([T, B, 50] x [50, G H]); the peer looks them up in a 50 x 50
  embedding and projects that ([50, G H]): the same products, one table
  lookup fewer here;
- the PTB RNN reads one-hot [T, B, 50] x [50, 500] where the peer gathers
  rows of W_in;
- music pieces have one unscored last frame (no next frame to predict):
  the step is computed, and counted, all the same.

The ``_bf16`` workloads are the char-LMs with ``model.compute_dtype=
'bfloat16'`` (``models.rnn``, "Mixed precision": every matrix product takes
bfloat16 operands and returns float32, forward and backward; parameters,
states, gates, loss and gradients are float32). The peer runs these names
in float32, so their ratio to the peer compares our bfloat16 products with
PyTorch's float32. There is no bfloat16 twin of the B=1 workloads: XLA's
CPU matrix-vector products are slower with bfloat16 operands.

Data: the trainer's own path (``tasks``), on synthetic data of the same
shapes, so no corpus is needed. The temporal order task draws fresh
sequences on the device every step, as in training. Music and text are
``tasks.music`` and ``tasks.text`` built from arrays (``synthetic_data``:
random piano-rolls and a random Markov chain over 50 characters) holding
``POOL`` training batches, read in the trainer's order with the state
carried, and passed to ``train.build``.

The chunk is the trainer's: ``trainer_chunk`` does what
``train.train_and_evaluate`` does before its loop (population, mesh,
``train.build``, ``train.init_population``, ``population.layout``,
``train.compile_chunk``); the benchmark times calls of that program.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from training import population
import tasks
from training import train
from datasets import music as music_lib
from experiments import music, ptb_char, temporal_order

POOL = 8          # training batches of a synthetic corpus (one epoch)
VOCAB = 50        # characters of the synthetic text (Penn Treebank's)
# How a task scores its outputs, for benchmarks.roofline: on the last step
# only ('torder') or on every step.
KINDS = {'temporal_order': 'torder', 'music': 'music', 'ptb_char': 'charlm'}


@dataclasses.dataclass(frozen=True)
class Workload:
  """An experiment config with overrides; ``steps``: timed steps by default
  (the peer's). The shapes are read from the config and its data."""
  name: str
  experiment: types.ModuleType      # an experiments/ module (get_config)
  arg: str                          # what follows the colon in --config=FILE:ARG
  overrides: tuple[tuple[str, Any], ...]
  steps: int

  def config(self) -> ml_collections.ConfigDict:
    """The experiment's config with the overrides (a fresh copy)."""
    c = self.experiment.get_config(self.arg)
    for key, value in self.overrides:
      *path, field = key.split('.')
      node = c
      for p in path:
        node = node[p]
      node[field] = value
    return c

  @property
  def command(self) -> str:
    """The config as launch.py takes it."""
    file = f'experiments/{self.experiment.__name__.rpartition(".")[2]}.py'
    return ' '.join([f'--config={file}:{self.arg}'] +
                    [f'--config.{k}={v}' for k, v in self.overrides])

  @functools.cached_property
  def shape(self) -> dict:
    """What one training step reads: batch B, length T, input width n_in
    (symbols read one-hot), hidden units, outputs n_out, cell and activation."""
    c = self.config()
    task = synthetic_task(c)
    batch = jax.eval_shape(task.train_batch, jax.random.key(0), 0)
    t, b, *rest = batch['inputs'].shape     # [T, B, D]: every task here reads vectors
    return dict(batch=b, length=t, n_in=rest[0],
                hidden=c.model.hidden_size, n_out=task.output_size, cell=c.model.cell,
                activation=c.model.activation, kind=KINDS[c.task.name])

  # The fields benchmarks.roofline reads.
  kind = property(lambda self: self.shape['kind'])
  cell = property(lambda self: self.shape['cell'])
  batch = property(lambda self: self.shape['batch'])
  length = property(lambda self: self.shape['length'])
  n_in = property(lambda self: self.shape['n_in'])
  hidden = property(lambda self: self.shape['hidden'])
  n_out = property(lambda self: self.shape['n_out'])

  @property
  def timesteps_per_step(self) -> int:
    return self.batch * self.length


def _peer_optim(lr: float, clip: float) -> tuple:
  return (('optim.learning_rate', lr), ('optim.clip_norm', clip))


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload('torder_tanh_h50', temporal_order, 'length=200,method=sgd-c',
             _peer_optim(0.1, 1.0), steps=200),
    Workload('music_sigmoid_h300', music, 'batch=32,method=sgd-c',
             (('task.chunk', 100),) + _peer_optim(0.5, 5.0), steps=80),
    Workload('music_tanh_h300_fused', music, 'batch=32,method=sgd-c',
             (('task.chunk', 100), ('model.activation', 'tanh')) + _peer_optim(0.1, 5.0),
             steps=80),
    Workload('charlm_lstm_h512', ptb_char, 'cell=lstm,batch=32,method=sgd-c',
             (('task.chunk', 150), ('model.hidden_size', 512)) + _peer_optim(1.0, 5.0),
             steps=15),
    Workload('charlm_gru_h512', ptb_char, 'cell=gru,batch=32,method=sgd-c',
             (('task.chunk', 150), ('model.hidden_size', 512)) + _peer_optim(1.0, 5.0),
             steps=15),
    Workload('charlm_lstm_h512_bf16', ptb_char, 'cell=lstm,batch=32,method=sgd-c',
             (('task.chunk', 150), ('model.hidden_size', 512),
              ('model.compute_dtype', 'bfloat16')) + _peer_optim(1.0, 5.0), steps=15),
    Workload('charlm_gru_h512_bf16', ptb_char, 'cell=gru,batch=32,method=sgd-c',
             (('task.chunk', 150), ('model.hidden_size', 512),
              ('model.compute_dtype', 'bfloat16')) + _peer_optim(1.0, 5.0), steps=15),
    # The papers' own shapes; the configs' learning rates and thresholds are the peer's.
    Workload('music_sigmoid_h300_b1', music, 'method=sgd-c', (), steps=40),
    Workload('ptb_sigmoid_h500_b1', ptb_char, 'method=sgd-c', (), steps=30),
)}


# ---------------------------------------------------------------------------
# Synthetic corpora, through the trainer's tasks.

def _piano_rolls(rng: np.random.Generator, num: int, frames: int) -> list[np.ndarray]:
  """``num`` piano-roll-like pieces [frames, 88] uint8: each key a two-state
  Markov chain (stays on with probability 0.9, a key-dependent onset rate)."""
  keys = music_lib.NUM_KEYS
  onset = 0.005 + 0.05 * np.linspace(0.0, 1.0, keys) ** 2 * (np.arange(keys) % 3 == 0)
  pieces = []
  for _ in range(num):
    u = rng.random((frames, keys))
    roll = np.zeros((frames, keys), np.uint8)
    on = u[0] < onset / (onset + 0.1)       # the chain's stationary rate
    for t in range(frames):
      if t:
        on = np.where(on, u[t] < 0.9, u[t] < onset)
      roll[t] = on
    pieces.append(roll)
  return pieces


def _text(rng: np.random.Generator, length: int) -> np.ndarray:
  """A stream of ``length`` symbols from a random sparse Markov chain over ``VOCAB``."""
  succ = rng.dirichlet(np.full(VOCAB, 0.05), VOCAB).cumsum(1)
  u = rng.random(length)
  ids = np.empty(length, np.int32)
  ids[0] = rng.integers(VOCAB)
  for t in range(1, length):
    ids[t] = min(np.searchsorted(succ[ids[t - 1]], u[t]), VOCAB - 1)
  return ids


def synthetic_data(config: ml_collections.ConfigDict, seed: int = 0):
  """Data of the config's shapes for ``tasks.make(config, data)`` (no corpus read).

  Music: 2 B pieces of 4 ``task.chunk`` frames (2 batches of pieces, 4
  chunks each: ``POOL`` steps an epoch). Characters: a stream cut into B
  parallel streams of ``POOL`` windows. None for the tasks generated on the
  fly (the pathological problems, long series): their own data.
  """
  t = config.task
  rng = np.random.default_rng(seed)
  if t.name == 'music':
    per_piece = POOL // 2 * t.chunk
    return {s: _piano_rolls(rng, 2 * t.batch_size if s == 'train' else 1, per_piece)
            for s in ('train', 'valid', 'test')}
  if t.name == 'ptb_char':
    ahead = t.kwargs.get('ahead', 1)
    return ({'train': _text(rng, t.batch_size * (POOL * t.chunk + ahead)),
             'valid': _text(rng, 1000), 'test': _text(rng, 1000)}, VOCAB)
  if t.name == 'ptb_word':
    raise ValueError('no synthetic data for task ptb_word')
  return None


def synthetic_task(config: ml_collections.ConfigDict, seed: int = 0) -> tasks.Task:
  """The config's task on ``synthetic_data``."""
  return tasks.make(config, synthetic_data(config, seed))


# ---------------------------------------------------------------------------
# The trainer's chunk.

@dataclasses.dataclass
class Chunk:
  """A config's compiled training chunk (``fn(state, num_steps)``, not yet
  lowered), its members' state, its pure functions, mesh and layout."""
  fn: Callable
  state: train.TrainState
  trainer: train.Trainer
  mesh: Any
  layout: str
  members: int


def trainer_chunk(config: ml_collections.ConfigDict) -> Chunk:
  """As ``train.train_and_evaluate`` sets up its loop, on ``synthetic_data(config)``.
  ``config.population`` gives the members and ``population.layout`` how the
  chunk runs over them."""
  pop = population.make_population(config)
  mesh = population.make_mesh(pop.size, config.task.batch_size)
  trainer = train.build(config, mesh, data=synthetic_data(config))
  state = train.init_population(trainer, pop, mesh)
  how = population.layout(mesh, config.population.layout)
  return Chunk(train.compile_chunk(trainer, how), state, trainer, mesh, how, pop.size)


# ---------------------------------------------------------------------------
# The population workload.

def population_config(config: ml_collections.ConfigDict, members: int, seed: int = 0
                      ) -> ml_collections.ConfigDict:
  """``config`` as a population of ``members`` with their own seeds and
  learning rates: ``members / 2`` seeds x 2 learning rates (the config's and
  0.3 times it), or ``members`` seeds at the config's rate when odd."""
  c = config.copy_and_resolve_references()
  lr = c.optim.learning_rate
  rows = ((lr,), (0.3 * lr,)) if members % 2 == 0 else ((lr,),)
  c.population.seeds = tuple(range(seed, seed + members // len(rows)))
  c.population.hparams = ('optim.learning_rate',)
  c.population.rows = rows
  return c


def with_layout(config: ml_collections.ConfigDict, how: str) -> ml_collections.ConfigDict:
  c = config.copy_and_resolve_references()
  c.population.layout = how
  return c


def one_member(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The population's first member as a run of its own."""
  c = config.copy_and_resolve_references()
  c.population.seeds = tuple(c.population.seeds)[:1]
  c.population.rows = tuple(c.population.rows)[:1]
  return c
