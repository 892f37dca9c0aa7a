"""The benchmark workloads, built from the project's own model and optimiser.

Five synthetic training workloads, the same models, batch sizes and lengths
as the PyTorch peer (``../shared/bench/README.md``), float32, plain SGD with
global-norm clipping (Pascanu et al. 2013, Alg. 1, via ``optim.make_optimizer``
with ``name='sgd'`` and ``clip_norm`` set, no guard):

  ==========================  =====================================  ========
  name                        model                                  B, T
  ==========================  =====================================  ========
  ``torder_tanh_h50``         tanh RNN 6 -> 50, 4-way softmax on     20, 200
                              the last step (temporal order task)
  ``music_sigmoid_h300``      sigmoid RNN 88 -> 300, 88 sigmoid      32, 100
                              outputs (binary cross-entropy) every step
  ``music_tanh_h300_fused``   the same with tanh                     32, 100
  ``charlm_lstm_h512``        embedding 50 x 50 -> LSTM 512 ->       32, 150
                              50-way softmax every step
  ``charlm_gru_h512``         the same with a GRU                    32, 150
  ==========================  =====================================  ========

Data are generated on the device with ``jax.random`` (the temporal order
task by ``datasets.pathological``; piano-roll-like Markov chains; a fixed
random Markov chain over 50 characters). Their content does not change the
speed; the shapes and dtypes are the peer's. Shapes are time-major.

Training is compiled in chunks: ``Bench.chunk`` runs ``num_steps`` optimiser
steps as one ``lax.scan`` inside one program, cycling through a pool of
``POOL`` batches staged on the device (as the peer cycles through its pool),
so Python dispatch is paid once per chunk. ``Bench.chunk_generated`` draws
each step's batch on the device from ``fold_in(state.key, step)`` instead;
that is the form a vmapped population uses (one data stream per member).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import optim
from datasets import pathological
from models.rnn import RecurrentNetwork

POOL = 8        # distinct batches cycled through by `Bench.chunk`
EMBED = 50      # character embedding width


@dataclasses.dataclass(frozen=True)
class Workload:
  """One benchmark workload; ``steps`` is the default number of timed steps."""
  name: str
  kind: str            # 'torder' | 'music' | 'charlm'
  cell: str            # models.cells name: 'rnn' | 'lstm' | 'gru'
  n_in: int            # input symbols or features
  hidden: int
  n_out: int
  batch: int
  length: int          # T
  lr: float
  clip: float          # global-norm clipping threshold
  steps: int
  activation: str = 'tanh'

  @property
  def timesteps_per_step(self) -> int:
    return self.batch * self.length


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload('torder_tanh_h50', 'torder', 'rnn', 6, 50, 4, 20, 200, 0.1, 1.0, 200),
    Workload('music_sigmoid_h300', 'music', 'rnn', 88, 300, 88, 32, 100, 0.5, 5.0, 80,
             activation='sigmoid'),
    Workload('music_tanh_h300_fused', 'music', 'rnn', 88, 300, 88, 32, 100, 0.1, 5.0, 80),
    Workload('charlm_lstm_h512', 'charlm', 'lstm', 50, 512, 50, 32, 150, 1.0, 5.0, 15),
    Workload('charlm_gru_h512', 'charlm', 'gru', 50, 512, 50, 32, 150, 1.0, 5.0, 15),
)}


class CharLM(nn.Module):
  """Tokens [T, B] int32 -> embedding [T, B, EMBED] -> recurrent network
  -> logits [T, B, vocab]."""
  vocab: int
  cell: str
  hidden_size: int

  @nn.compact
  def __call__(self, tokens):
    x = nn.Embed(self.vocab, EMBED, name='embed')(tokens)
    return RecurrentNetwork(output_size=self.vocab, cell=self.cell,
                            hidden_size=self.hidden_size, name='rnn')(x)


def make_model(w: Workload) -> nn.Module:
  if w.kind == 'charlm':
    return CharLM(w.n_in, w.cell, w.hidden)
  return RecurrentNetwork(output_size=w.n_out, cell=w.cell, hidden_size=w.hidden,
                          activation=w.activation)


def make_optimizer(w: Workload) -> optax.GradientTransformation:
  """SGD with global-norm clipping, the peer's optimiser, from the project's chain."""
  cfg = optim.default_config()
  cfg.name = 'sgd'
  cfg.learning_rate = w.lr
  cfg.clip_norm = w.clip
  cfg.guard_max_norm = 0.0     # the peer has no skip guard
  return optim.make_optimizer(cfg, total_steps=max(w.steps, 1))


# ---------------------------------------------------------------------------
# Synthetic data, drawn on the device.

def _music_batch(key, batch: int, length: int, keys: int = 88):
  """Piano-roll-like binary data: each key a 2-state Markov chain (stay on
  with probability 0.9, key-dependent onset rate). Inputs [T, B, 88] float32
  and next-step targets [T, B, 88] float32."""
  onset = 0.005 + 0.05 * jnp.linspace(0.0, 1.0, keys) ** 2 * (jnp.arange(keys) % 3 == 0)
  k0, k_steps = jax.random.split(key)
  on0 = jax.random.uniform(k0, (batch, keys)) < onset / (onset + 0.1)

  def step(on, k):
    u = jax.random.uniform(k, (batch, keys))
    on = jnp.where(on, u < 0.9, u < onset)
    return on, on

  _, roll = jax.lax.scan(step, on0, jax.random.split(k_steps, length + 1))
  roll = roll.astype(jnp.float32)
  return {'inputs': roll[:-1], 'targets': roll[1:]}


def _char_batch(key, batch: int, length: int, vocab: int):
  """Tokens from a fixed sparse random Markov chain over ``vocab`` symbols:
  inputs [T, B] int32 and next-token targets [T, B] int32."""
  # Dirichlet(0.05) rows: a few likely successors per symbol.
  logits = jnp.log(jax.random.gamma(jax.random.key(1234), 0.05, (vocab, vocab)) + 1e-30)
  k0, k_steps = jax.random.split(key)
  first = jax.random.randint(k0, (batch,), 0, vocab)

  def step(tok, k):
    tok = jax.random.categorical(k, logits[tok]).astype(jnp.int32)
    return tok, tok

  _, rest = jax.lax.scan(step, first, jax.random.split(k_steps, length))
  tokens = jnp.concatenate([first[None], rest], axis=0)
  return {'inputs': tokens[:-1], 'targets': tokens[1:]}


def sample_batch(w: Workload, key) -> dict:
  """One batch of workload ``w`` (see the module docstring for shapes)."""
  if w.kind == 'torder':
    b = pathological.TemporalOrder().sample(key, w.batch, w.length, w.length)
    return {'inputs': b['inputs'], 'targets': b['targets'][-1]}   # scored on the last step
  if w.kind == 'music':
    return _music_batch(key, w.batch, w.length, w.n_in)
  return _char_batch(key, w.batch, w.length, w.n_in)


# ---------------------------------------------------------------------------
# Training.

@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  key: jax.Array       # data stream of `chunk_generated`


@dataclasses.dataclass(frozen=True)
class Bench:
  """The pure functions of one workload (closed over structure only)."""
  workload: Workload

  @property
  def model(self) -> nn.Module:
    return make_model(self.workload)

  @property
  def optimizer(self) -> optax.GradientTransformation:
    return make_optimizer(self.workload)

  def init(self, key, learning_rate: jax.Array | float | None = None) -> TrainState:
    """Parameters and optimiser state; ``learning_rate`` overrides the
    workload's (an array, so a vmapped population can differ in it)."""
    k_init, k_data = jax.random.split(key)
    batch = sample_batch(self.workload, k_data)
    params = self.model.init(k_init, batch['inputs'])['params']
    opt_state = self.optimizer.init(params)
    if learning_rate is not None:
      opt_state = optim.set_hyperparams(opt_state, learning_rate=learning_rate)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=opt_state, key=k_data)

  def pool(self, key, size: int = POOL) -> dict:
    """``size`` batches stacked on a leading axis, staged on the device."""
    return jax.jit(jax.vmap(lambda k: sample_batch(self.workload, k)))(
        jax.random.split(key, size))

  def loss(self, params, batch) -> jax.Array:
    w = self.workload
    outputs, _ = self.model.apply({'params': params}, batch['inputs'])
    if w.kind == 'torder':      # softmax on the last step, mean over the batch
      return optax.softmax_cross_entropy_with_integer_labels(
          outputs[-1], batch['targets']).mean()
    if w.kind == 'music':       # BCE summed over keys, mean over time and batch
      return optax.sigmoid_binary_cross_entropy(outputs, batch['targets']).sum() / (
          w.length * w.batch)
    return optax.softmax_cross_entropy_with_integer_labels(outputs, batch['targets']).mean()

  def train_step(self, state: TrainState, batch: dict) -> tuple[TrainState, jax.Array]:
    loss, grads = jax.value_and_grad(self.loss)(state.params, batch)
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), loss

  def chunk(self, state: TrainState, pool: dict, num_steps: int):
    """``num_steps`` steps as one scan over the staged pool; returns
    (state, losses [num_steps])."""
    size = jax.tree.leaves(pool)[0].shape[0]

    def one(state, _):
      i = state.step % size
      batch = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False), pool)
      return self.train_step(state, batch)

    return jax.lax.scan(one, state, None, length=num_steps)

  def chunk_generated(self, state: TrainState, num_steps: int):
    """As ``chunk`` with every batch drawn on the device from
    ``fold_in(state.key, state.step)``."""
    def one(state, _):
      batch = sample_batch(self.workload, jax.random.fold_in(state.key, state.step))
      return self.train_step(state, batch)

    return jax.lax.scan(one, state, None, length=num_steps)
