"""bfloat16 compute with float32 parameters (``model.compute_dtype``).

The reference is always the same model computing in float32. Tolerances
(measured on the shapes below, then given a margin of 3x or more):

- gradients of the whole parameter vector: cosine similarity and relative
  norm error ``|g16 - g32| / |g32|``. Measured: tanh 0.8%, sigmoid 0.4%,
  rnn_preact 0.7%, LSTM 0.9%, GRU 0.6%, cosine >= 0.99996: bound 3%, cosine
  > 0.999. ReLU 5.0%, cosine 0.9987: a ReLU network with an orthogonal
  W_rec does not contract, so each step's rounding (bfloat16 keeps 8 bits,
  0.4%) is carried forward undamped; bound 15%, cosine > 0.99.
- a training run: the mean loss of each block of 50 steps, relative to
  float32's. Measured over 300 steps of a char-LM: LSTM 0.9%, GRU 0.04%,
  sigmoid RNN 0.01%: bound 3%.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from benchmarks import workloads as wl
from experiments import ptb_char, temporal_order
from models import rnn
from training import population
from training import records
from training import train

T, B, D, H, O = 20, 4, 5, 16, 3
CELLS = [('rnn', 'tanh'), ('rnn', 'sigmoid'), ('rnn', 'relu'), ('rnn_preact', 'tanh'),
         ('lstm', 'tanh'), ('gru', 'tanh')]


def _data(seed=0):
  x = jax.random.normal(jax.random.key(seed), (T, B, D))
  y = jax.random.randint(jax.random.key(seed + 1), (T, B), 0, O)
  return x, y


def _grads(dtype, cell='rnn', activation='tanh', seed=0, **kwargs):
  """(loss, gradient) of a softmax over every step, float32 parameters from ``seed``."""
  x, y = _data(seed)
  model = rnn.RecurrentNetwork(O, cell=cell, activation=activation, hidden_size=H,
                               compute_dtype=dtype, **kwargs)
  params = model.init(jax.random.key(seed + 2), x)['params']

  def loss(p):
    out, _ = model.apply({'params': p}, x, train=True, rngs={'dropout': jax.random.key(7)})
    assert out.dtype == jnp.float32        # float32 logits, whatever the compute dtype
    return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

  return jax.jit(jax.value_and_grad(loss))(params)


def _flat(tree):
  return jnp.concatenate([a.ravel() for a in jax.tree.leaves(tree)])


def _compare(g32, g16):
  """(cosine similarity, relative norm error) of two gradients."""
  a, b = _flat(g32), _flat(g16)
  return (float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b))),
          float(jnp.linalg.norm(b - a) / jnp.linalg.norm(a)))


@pytest.mark.parametrize('cell,activation', CELLS)
def test_bf16_gradients_are_close_to_float32(cell, activation):
  """Every cell: the custom-VJP recurrence (simple RNNs) and GRU/LSTM."""
  l32, g32 = _grads('float32', cell, activation)
  l16, g16 = _grads('bfloat16', cell, activation)
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(g16))
  assert jax.tree.structure(g16) == jax.tree.structure(g32)
  cos, rel = _compare(g32, g16)
  bound, min_cos = (0.15, 0.99) if activation == 'relu' else (0.03, 0.999)
  assert cos > min_cos and rel < bound, (cos, rel)
  assert float(l16) == pytest.approx(float(l32), rel=0.01)


@pytest.mark.parametrize('options', [
    dict(layer_norm=True), dict(leaky_fraction=0.5), dict(num_layers=2, sum_layer_outputs=True),
    dict(input_layers=(8,)), dict(learned_initial_state=True), dict(recurrent_dropout=0.25),
    dict(zoneout=0.1), dict(cell='gru', layer_norm=True), dict(cell='lstm', zoneout=0.1)])
def test_bf16_gradients_with_the_models_options(options):
  """The options that add float32 constants or take the plain-autodiff scan
  (dropout, zoneout) keep the compute dtype and float32 gradients."""
  g32 = _grads('float32', **options)[1]
  g16 = _grads('bfloat16', **options)[1]
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(g16))
  cos, rel = _compare(g32, g16)
  assert cos > 0.999 and rel < 0.03, (cos, rel)


@pytest.mark.parametrize('cell', ['rnn', 'gru'])
def test_custom_vjp_recurrence_agrees_with_autodiff_in_bf16(cell):
  """The hand-written backward pass (float32 sum of dE/dW_rec) against plain
  autodiff of the same bfloat16 scan (params cast inside each step), and
  both against float32: the custom VJP is no less accurate."""
  from models import cells as cells_lib
  c = cells_lib.make_cell(cell, H)
  params = c.init(jax.random.key(0), D)
  xp_in = jax.random.normal(jax.random.key(1), (T, B, D))
  state0 = jnp.zeros((B, c.state_size))
  probe = jnp.zeros((T, B, c.state_size))
  target = jax.random.normal(jax.random.key(2), (T, B, c.state_size))

  def loss(fn, dtype):
    def f(p, probe):
      xp = c.project(cells_lib.cast(p, dtype), xp_in.astype(dtype))
      states = fn(c, p, state0, xp, probe, clip=0.5)
      return jnp.sum(states.astype(jnp.float32) * target)
    return jax.jit(jax.grad(f, argnums=(0, 1)))(params, probe)

  ref = loss(rnn.plain_recurrence, jnp.float32)
  custom = loss(rnn.recurrence, jnp.bfloat16)
  plain = loss(rnn.plain_recurrence, jnp.bfloat16)
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(custom))
  cos, rel = _compare(plain, custom)
  assert cos > 0.999 and rel < 0.03, (cos, rel)
  assert _compare(ref, custom)[1] < 1.5 * _compare(ref, plain)[1] + 0.005


def _charlm(cell='lstm', dtype='bfloat16', **population_fields):
  c = ptb_char.get_config(f'cell={cell},batch=8,method=sgd-c')
  c.model.hidden_size = 32
  c.task.chunk = 25
  c.model.compute_dtype = dtype
  c.optim.learning_rate = 0.1
  for k, v in population_fields.items():
    c.population[k] = v
  return c


def test_parameters_and_optimizer_state_stay_float32():
  config = temporal_order.get_config('smoke')
  config.model.compute_dtype = 'bfloat16'
  config.reg.omega_alpha = 0.01           # Omega reads the bfloat16 states
  config.reg.bptt_clip = 1.0
  config.optim.name = 'nesterov'       # a velocity in the optimiser state
  chunk = wl.trainer_chunk(config)
  before = jax.tree.map(np.asarray, chunk.state.params)
  state, m = chunk.fn(chunk.state, 2)
  for tree in (state.params, state.opt_state):
    for leaf in jax.tree.leaves(tree):
      assert not jnp.issubdtype(leaf.dtype, jnp.floating) or leaf.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(m['loss']))) and np.all(np.asarray(m['omega']) > 0)
  changed = [not np.allclose(a, b) for a, b in
             zip(jax.tree.leaves(before), jax.tree.leaves(jax.tree.map(np.asarray, state.params)))]
  assert all(changed)


def test_a_bf16_population_trains_as_its_members_alone():
  """Two members vmapped in one program against each run alone (same compute dtype)."""
  config = _charlm(seeds=(0, 1), layout='vmap')
  together = wl.trainer_chunk(config)
  state, m = together.fn(together.state, 3)
  assert together.layout == 'vmap'
  for i in range(2):
    alone = wl.trainer_chunk(_charlm(seeds=(i,), layout='vmap'))
    _, mi = alone.fn(alone.state, 3)
    np.testing.assert_allclose(np.asarray(m['loss'])[i], np.asarray(mi['loss'])[0], rtol=0.01)
  assert state.carry[0].dtype == jnp.bfloat16
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state.params))


@pytest.mark.slow
@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
def test_bf16_training_follows_the_float32_loss_curve(cell):
  """300 steps of a char-LM on the benchmark's synthetic text: each block of
  50 steps' mean loss within 3% of float32's, and the loss falls."""
  curves = {}
  for dtype in ('float32', 'bfloat16'):
    config = _charlm(cell, dtype)
    if cell == 'rnn':
      config.optim.learning_rate = 0.05
    chunk = wl.trainer_chunk(config)
    _, m = chunk.fn(chunk.state, 300)
    curves[dtype] = np.asarray(m['loss'])[0].reshape(-1, 50).mean(1)
  a, b = curves['float32'], curves['bfloat16']
  np.testing.assert_array_less(np.abs(b - a) / a, 0.03)
  assert b[-1] < b[0] - 0.05


def test_an_unknown_compute_dtype_is_a_one_line_error():
  config = temporal_order.get_config('smoke')
  config.model.compute_dtype = 'float16'
  with pytest.raises(ValueError) as e:
    train.check_config(config)
  assert str(e.value) == "model.compute_dtype='float16' is not one of float32, bfloat16"
  with pytest.raises(ValueError, match='is not one of float32, bfloat16'):
    _grads('half')


def test_runs_recorded_before_the_field_are_float32():
  old = train.make_model(temporal_order.get_config('smoke'),
                         train.build(temporal_order.get_config('smoke')).task)
  assert old.compute_dtype == 'float32'
  assert records.is_unset('model.compute_dtype', 'float32')
  assert not records.is_unset('model.compute_dtype', 'bfloat16')
  new = {'model': {'cell': 'rnn', 'compute_dtype': 'float32'}}
  assert train.config_changes({'model': {'cell': 'rnn'}}, new) == []
  bf16 = {'model': {'cell': 'rnn', 'compute_dtype': 'bfloat16'}}
  assert train.config_changes({'model': {'cell': 'rnn'}}, bf16) == ['model.compute_dtype']
