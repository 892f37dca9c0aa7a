"""Models against hand-written numpy recurrences, and their options' behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import cells as cells_lib
from models.rnn import RecurrentNetwork, temporal_clip

T, B, D, O = 7, 3, 4, 5


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def np_layer_norm(x: np.ndarray, gain: np.ndarray, eps: float = 1e-5) -> np.ndarray:
  """Ba et al. (2016) over the last axis, biased variance: (x - mean) / sqrt(var + eps) * gain."""
  centred = x - x.mean(-1, keepdims=True)
  return centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + eps) * gain


def numpy_run(cell: str, p: dict, u: np.ndarray, activation='tanh', leak=None) -> np.ndarray:
  """Plain loops over time: the textbook equations, written independently.

  With ``ln_in`` and ``ln_rec`` in ``p``, u W_in and h W_rec are each layer-
  normalised over all their G units (then the bias is added to the first);
  ``leak`` [H] is Bengio et al.'s h_t = a h_{t-1} + (1 - a) F(h_{t-1}, u_t)
  (for rnn_preact on the pre-activation state)."""
  s = {'tanh': np.tanh, 'sigmoid': sigmoid, 'relu': lambda x: np.maximum(x, 0)}[activation]
  H = p['w_rec'].shape[0]
  h = np.zeros((u.shape[1], H))
  c = np.zeros((u.shape[1], H))
  out = []
  for t in range(u.shape[0]):
    x = u[t] @ p['w_in']
    if 'ln_in' in p:
      x = np_layer_norm(x, p['ln_in'])
    x = x + p['b']
    r = (s(h) if cell == 'rnn_preact' else h) @ p['w_rec']
    if 'ln_rec' in p:
      r = np_layer_norm(r, p['ln_rec'])
    if cell == 'rnn':
      new = s(r + x)
      h = new if leak is None else leak * h + (1 - leak) * new
    elif cell == 'rnn_preact':        # state is the pre-activation, output s(state)
      new = r + x
      h = new if leak is None else leak * h + (1 - leak) * new
    elif cell == 'lstm':
      i, f, g, o = (x[:, k * H:(k + 1) * H] + r[:, k * H:(k + 1) * H] for k in range(4))
      c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
      h = sigmoid(o) * np.tanh(c)
    elif cell == 'gru':
      xr, xz, xn = (x[:, k * H:(k + 1) * H] for k in range(3))
      hr, hz, hn = (r[:, k * H:(k + 1) * H] for k in range(3))
      rr = sigmoid(xr + hr)
      z = sigmoid(xz + hz)
      n = np.tanh(xn + rr * (hn + p['b_rec_n']))
      h = (1 - z) * n + z * h
    else:            # a cell added to cells.CELLS: its equations belong here
      raise NotImplementedError(f'numpy_run has no reference for cell {cell!r}: write its '
                                'equations here, from the paper, not from models/cells.py')
    out.append(s(h) if cell == 'rnn_preact' else h)
  return np.stack(out)


def numpy_network(cell: str, p: dict, u: np.ndarray, num_layers: int, leaks=None,
                  sum_outputs=False) -> np.ndarray:
  """A stack of ``numpy_run`` layers, each fed by the one below, and the
  linear head on the last layer's outputs or (``sum_outputs``) on their sum."""
  x, hidden = u, []
  for i in range(num_layers):
    x = numpy_run(cell, p[f'layer_{i}'], x, leak=None if leaks is None else leaks[i])
    hidden.append(x)
  top = sum(hidden) if sum_outputs else hidden[-1]
  return top @ p['w_out'] + p['b_out']


def _np_params(params):
  return jax.tree.map(lambda x: np.asarray(x, np.float64), params)


@pytest.mark.parametrize('cell', sorted(cells_lib.CELLS))   # every registered cell
def test_cell_matches_hand_written_recurrence(cell):
  u = np.random.default_rng(0).normal(size=(T, B, D)).astype(np.float32)
  model = RecurrentNetwork(output_size=O, cell=cell, hidden_size=6, init_scheme='basic_tanh')
  params = model.init(jax.random.key(0), u)['params']
  # Non-zero biases, so a bias in the wrong place would show.
  layer = params['layer_0']
  layer['b'] = 0.3 * jax.random.normal(jax.random.key(1), layer['b'].shape)
  if cell == 'gru':
    layer['b_rec_n'] = 0.2 * jnp.ones_like(layer['b_rec_n'])
  outputs, aux = model.apply({'params': params}, u)
  hidden = numpy_run(cell, _np_params(layer), u.astype(np.float64))
  np.testing.assert_allclose(aux['hidden'][0], hidden, rtol=1e-4, atol=1e-5)
  expected = hidden @ np.asarray(params['w_out']) + np.asarray(params['b_out'])
  np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_gate_bias_initialisation():
  lstm = cells_lib.LSTM(8).init(jax.random.key(0), 3)
  np.testing.assert_array_equal(lstm['b'][8:16], 1.0)         # forget gate
  np.testing.assert_array_equal(np.delete(lstm['b'], np.s_[8:16]), 0.0)
  gru = cells_lib.GRU(8).init(jax.random.key(0), 3)
  np.testing.assert_array_equal(gru['b'][:8], -1.0)           # reset gate
  np.testing.assert_array_equal(gru['b'][8:], 0.0)


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_gate_bias_can_be_removed(cell):
  """``gate_bias=False`` (the ablation's): every bias starts at zero."""
  u = jnp.zeros((3, 2, 4))
  biases = {}
  for on in (True, False):
    model = RecurrentNetwork(output_size=2, cell=cell, hidden_size=8, gate_bias=on)
    biases[on] = np.asarray(model.init(jax.random.key(0), u)['params']['layer_0']['b'])
  gate = np.s_[8:16] if cell == 'lstm' else np.s_[:8]
  np.testing.assert_array_equal(biases[True][gate], 1.0 if cell == 'lstm' else -1.0)
  np.testing.assert_array_equal(biases[False], 0.0)
  with pytest.raises(ValueError, match=r"gate_bias=False is for cells with a gate bias \(lstm, gru\); 'rnn' has none"):
    RecurrentNetwork(output_size=2, cell='rnn', gate_bias=False).init(jax.random.key(0), u)


def test_smart_tanh_init_is_sparse_with_radius_095():
  w = np.asarray(cells_lib.init_weight('smart_tanh', 'rec', jax.random.key(3), (50, 50)))
  assert (np.count_nonzero(w, axis=0) == 15).all()            # 15 incoming weights per unit
  np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(w))), 0.95, rtol=1e-4)
  w_in = np.asarray(cells_lib.init_weight('smart_tanh', 'in', jax.random.key(4), (200, 100)))
  assert abs(w_in.std() - 0.01) < 0.001


@pytest.mark.parametrize('scheme,std', [('sigmoid', 0.01), ('basic_tanh', 0.1)])
def test_gaussian_inits(scheme, std):
  for role in ('in', 'rec', 'out'):
    w = np.asarray(cells_lib.init_weight(scheme, role, jax.random.key(5), (200, 200)))
    assert abs(w.std() - std) < 0.05 * std


def test_orthogonal_recurrence_blocks():
  w = np.asarray(cells_lib.init_weight('orthogonal', 'rec', jax.random.key(6), (16, 64)))
  for k in range(4):
    block = w[:, 16 * k:16 * (k + 1)]
    np.testing.assert_allclose(block.T @ block, np.eye(16), atol=1e-5)


def test_leaky_units_follow_the_leaky_integration_equation():
  cell = cells_lib.SimpleRNN(10, leaky_fraction=0.5, leak_range=(0.02, 0.2))
  a = np.asarray(cell.leak())
  assert (a[:5] >= 0.02).all() and (a[:5] <= 0.2).all() and (a[5:] == 0).all()
  params = cell.init(jax.random.key(0), 3)
  prev = np.random.default_rng(1).normal(size=(2, 10)).astype(np.float32)
  xp = np.random.default_rng(2).normal(size=(2, 10)).astype(np.float32)
  f = np.tanh(prev @ np.asarray(params['w_rec']) + xp)
  np.testing.assert_allclose(cell.step(params, prev, xp), a * prev + (1 - a) * f, rtol=1e-5)


def test_stacked_layers_with_summed_outputs_and_input_layers():
  u = jnp.ones((T, B, D))
  model = RecurrentNetwork(output_size=O, cell='gru', hidden_size=6, num_layers=3,
                           sum_layer_outputs=True, input_layers=(8,))
  params = model.init(jax.random.key(0), u)['params']
  outputs, aux = model.apply({'params': params}, u)
  assert params['layer_0']['w_in'].shape == (8, 18)            # fed by the input layer
  assert params['layer_1']['w_in'].shape == (6, 18)
  summed = sum(aux['hidden'])
  np.testing.assert_allclose(outputs, summed @ params['w_out'] + params['b_out'], rtol=1e-5)


_NETWORKS = {   # cell, options: layer norm, leaky units and stacks at once
    'rnn_layer_norm_leaky_summed': ('rnn', dict(layer_norm=True, leaky_fraction=0.5,
                                                sum_layer_outputs=True)),
    'rnn_preact_layer_norm_leaky_top': ('rnn_preact', dict(layer_norm=True, leaky_fraction=0.5)),
    'lstm_layer_norm_summed': ('lstm', dict(layer_norm=True, sum_layer_outputs=True)),
    'gru_layer_norm_summed': ('gru', dict(layer_norm=True, sum_layer_outputs=True)),
}


@pytest.mark.parametrize('case', sorted(_NETWORKS))
def test_two_layer_network_matches_numpy_with_layer_norm_and_leaky_units(case):
  """A 2-layer network's outputs and gradients against ``numpy_network``:
  layer norm with random gains (not 1), random biases and eps = 1e-5 (the
  first layer's u W_in has a variance of about eps / 10, so eps sets its
  scale), leaky units h = a h_prev + (1 - a) F, the second layer fed by the
  first, the head on the sum of the layers' outputs or on the top layer's.
  Gradients (of a random linear function of the outputs, through the
  hand-written BPTT) against central differences of the numpy network, at
  three entries of every parameter."""
  cell, kw = _NETWORKS[case]
  rng = np.random.default_rng(0)
  h = 5
  u = rng.normal(size=(T, B, D)).astype(np.float32)
  model = RecurrentNetwork(output_size=O, cell=cell, hidden_size=h, num_layers=2,
                           init_scheme='basic_tanh', **kw)
  params = jax.jit(model.init)(jax.random.key(0), u)['params']    # one compile, not one an op
  for i in range(2):
    layer = params[f'layer_{i}']
    g = layer['w_rec'].shape[1]
    layer['w_rec'] = jnp.asarray(0.6 * rng.normal(size=(h, g)), jnp.float32)
    layer['b'] = jnp.asarray(0.3 * rng.normal(size=g), jnp.float32)
    layer['ln_in'] = jnp.asarray(rng.uniform(0.5, 1.5, size=g), jnp.float32)
    layer['ln_rec'] = jnp.asarray(rng.uniform(0.5, 1.5, size=g), jnp.float32)
    if cell == 'gru':
      layer['b_rec_n'] = jnp.asarray(0.3 * rng.normal(size=h), jnp.float32)
  params['layer_0']['w_in'] = jnp.asarray(5e-4 * rng.normal(size=(D, g)), jnp.float32)
  params['b_out'] = jnp.asarray(0.1 * rng.normal(size=O), jnp.float32)
  leaks = None
  if kw.get('leaky_fraction'):
    leaks = [np.asarray(c.leak(), np.float64) for c in model.cells()]
    for a in leaks:           # round(2.5) = 2 units leaky, a in the paper's (0.02, 0.2)
      assert ((a[:2] >= 0.02) & (a[:2] <= 0.2)).all() and (a[2:] == 0).all()
    assert not np.allclose(leaks[0], leaks[1])
  p = _np_params(params)
  sum_outputs = kw.get('sum_layer_outputs', False)
  u64 = u.astype(np.float64)

  weights = rng.normal(size=(T, B, O))

  def loss(q):
    outputs = model.apply({'params': q}, u)[0]
    return jnp.sum(outputs * weights), outputs

  grads, outputs = jax.jit(jax.grad(loss, has_aux=True))(params)
  expected = numpy_network(cell, p, u64, 2, leaks, sum_outputs)
  np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)

  eps = 1e-6
  for path, got in jax.tree_util.tree_flatten_with_path(grads)[0]:
    keys = [k.key for k in path]
    for flat in rng.choice(got.size, size=min(3, got.size), replace=False):
      index = np.unravel_index(flat, got.shape)
      values = []
      for sign in (1, -1):
        q = jax.tree.map(np.copy, p)
        leaf = q[keys[0]] if len(keys) == 1 else q[keys[0]][keys[1]]
        leaf[index] += sign * eps
        values.append(np.sum(numpy_network(cell, q, u64, 2, leaks, sum_outputs) * weights))
      fd = (values[0] - values[1]) / (2 * eps)
      np.testing.assert_allclose(got[index], fd, rtol=2e-3, atol=2e-4, err_msg=f'{keys} {index}')


def test_carry_continues_the_sequence():
  """Two windows with the carry passed on equal one window of twice the length."""
  u = np.random.default_rng(0).normal(size=(2 * T, B, D)).astype(np.float32)
  model = RecurrentNetwork(output_size=O, cell='lstm', hidden_size=6, num_layers=2)
  params = model.init(jax.random.key(0), u)['params']
  whole, _ = model.apply({'params': params}, u)
  first, aux = model.apply({'params': params}, u[:T])
  second, _ = model.apply({'params': params}, u[T:], aux['carry'])
  np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-5, atol=1e-6)


def test_learned_initial_state_is_used():
  """The learned initial state starts every sequence of the batch, and its
  gradient (summed over the batch it is broadcast to) equals central
  differences of a float64 loop of the tanh RNN."""
  u = jnp.zeros((T, B, D))
  model = RecurrentNetwork(output_size=O, hidden_size=6, learned_initial_state=True)
  params = model.init(jax.random.key(0), u)['params']
  params['initial_0'] = jnp.full((6,), 0.5)
  out, aux = model.apply({'params': params}, u)
  np.testing.assert_allclose(aux['initial'][0], 0.5)
  g = jax.grad(lambda p: model.apply({'params': p}, u)[0].sum())(params)
  p = _np_params(params)

  def numpy_loss(h0):       # the outputs' sum from the initial state h0 [6]; the inputs are 0
    h, total = np.broadcast_to(h0, (B, 6)), 0.0
    for _ in range(T):
      h = np.tanh(h @ p['layer_0']['w_rec'] + p['layer_0']['b'])
      total += np.sum(h @ p['w_out'] + p['b_out'])
    return total

  np.testing.assert_allclose(float(out.sum()), numpy_loss(p['initial_0']), rtol=1e-5)
  eps = 1e-6
  fd = [(numpy_loss(p['initial_0'] + e) - numpy_loss(p['initial_0'] - e)) / (2 * eps)
        for e in eps * np.eye(6)]
  np.testing.assert_allclose(g['initial_0'], fd, rtol=1e-4, atol=1e-5)


def test_recurrent_dropout_is_one_mask_per_sequence():
  u = jnp.ones((T, B, D))
  model = RecurrentNetwork(output_size=O, hidden_size=64, recurrent_dropout=0.5)
  params = model.init(jax.random.key(0), u)['params']
  eval_out, _ = model.apply({'params': params}, u)
  train_out, _ = model.apply({'params': params}, u, train=True, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(eval_out, train_out)
  # The dropped recurrent inputs are the same units at every step: with
  # W_rec = I, a dropped unit's contribution vanishes at all steps alike.
  params['layer_0']['w_rec'] = jnp.eye(64)
  params['layer_0']['w_in'] = jnp.zeros_like(params['layer_0']['w_in'])
  params['layer_0']['b'] = jnp.zeros(64)
  _, aux = model.apply({'params': params}, u, carry=[jnp.ones((B, 64))], train=True,
                       rngs={'dropout': jax.random.key(2)})
  h = np.asarray(aux['hidden'][0])
  dead = h[0] == 0
  assert 0.3 < dead.mean() < 0.7
  assert (h[1:][:, dead] == 0).all() and (h[1:][:, ~dead] != 0).all()


@pytest.mark.parametrize('cell', ['gru', 'rnn_leaky'])
def test_recurrent_dropout_leaves_the_carried_state_whole(cell):
  """Dropout masks the operand of the recurrent product only. A GRU whose
  update gate is shut (z = 1) carries its state over unchanged, dropout or
  not; so does a leaky unit whose a_i is 1. Scaling the carried state by
  the mask / keep made it grow by 1 / keep a step (1e9 in 100 steps)."""
  u = jnp.ones((T, B, D))
  kw = (dict(cell='gru') if cell == 'gru' else
        dict(cell='rnn', leaky_fraction=1.0, leak_range=(1.0, 1.0)))   # h' = h
  model = RecurrentNetwork(output_size=O, hidden_size=16, recurrent_dropout=0.5, **kw)
  params = model.init(jax.random.key(0), u)['params']
  layer = params['layer_0']
  if cell == 'gru':
    layer['b'] = layer['b'].at[16:32].set(100.0)       # z = sigmoid(100) = 1
  h0 = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (B, 16)), jnp.float32)
  _, aux = model.apply({'params': params}, u, carry=[h0], train=True,
                       rngs={'dropout': jax.random.key(1)})
  np.testing.assert_allclose(aux['states'][0][-1], h0, rtol=1e-6, atol=1e-6)


def test_dropout_on_layer_and_head_inputs_a_fresh_mask_each_step():
  """``dropout``: each unit of a layer's input and of the head's input is
  either zeroed or scaled by 1 / keep, with masks that change over time; the
  recurrence itself is untouched, and evaluation is the plain network. The
  dropped inputs are recovered from the projections by least squares
  (W_in [D, H] and W_out [H, O] have full row rank), not read from the model."""
  rng = np.random.default_rng(0)
  t, b, d, h, o = 40, 3, 4, 6, 9
  u = jnp.asarray(rng.uniform(0.5, 1.5, (t, b, d)), jnp.float32)
  model = RecurrentNetwork(output_size=o, hidden_size=h, dropout=0.5)
  params = model.init(jax.random.key(0), u)['params']
  layer = params['layer_0']
  out, aux = model.apply({'params': params}, u, train=True, rngs={'dropout': jax.random.key(1)})
  # the layer's input, recovered from its projection x W_in + b
  xp = np.asarray(aux['xp'][0]) - np.asarray(layer['b'])
  seen = np.linalg.lstsq(np.asarray(layer['w_in']).T, xp.reshape(-1, h).T, rcond=None)[0].T
  seen = seen.reshape(t, b, d)
  dropped = np.isclose(seen, 0.0, atol=1e-4)
  np.testing.assert_allclose(seen[~dropped], 2.0 * np.asarray(u)[~dropped], rtol=1e-4)
  assert 0.4 < dropped.mean() < 0.6
  assert len({m.tobytes() for m in dropped}) > t // 2        # fresh masks over time
  # the states follow the plain recurrence of that projection (recurrence not dropped)
  cell = model.cells()[0]
  prev = np.zeros((b, h), np.float32)
  for s in range(t):
    prev = np.asarray(cell.step(layer, prev, aux['xp'][0][s]))
    np.testing.assert_allclose(aux['states'][0][s], prev, rtol=1e-4, atol=1e-6)
  # the head's input, recovered from the outputs
  top = np.linalg.lstsq(np.asarray(params['w_out']).T,
                        (np.asarray(out) - np.asarray(params['b_out'])).reshape(-1, o).T,
                        rcond=None)[0].T.reshape(t, b, h)
  hidden = np.asarray(aux['hidden'][0])
  off = np.isclose(top, 0.0, atol=1e-4)
  assert (off | np.isclose(top, 2.0 * hidden, rtol=1e-3, atol=1e-4)).all()
  clear = np.abs(hidden) > 1e-2                 # units whose drop is unambiguous
  assert 0.4 < off[clear].mean() < 0.6
  # evaluation: the network without dropout
  plain = RecurrentNetwork(output_size=o, hidden_size=h)
  np.testing.assert_allclose(model.apply({'params': params}, u)[0],
                             plain.apply({'params': params}, u)[0], rtol=1e-6)


def test_dropout_that_spares_the_inputs_drops_between_layers_and_before_the_head():
  """``dropout_on_inputs=False`` (PTB's one-hot characters): the first
  layer's projection is that of the whole input (x W_in + b, in numpy), the
  second layer's input and the head's input are still dropped."""
  rng = np.random.default_rng(1)
  t, b, d, h, o = 30, 3, 5, 6, 7
  u = jnp.asarray(rng.uniform(0.5, 1.5, (t, b, d)), jnp.float32)
  model = RecurrentNetwork(output_size=o, hidden_size=h, num_layers=2, dropout=0.5,
                           dropout_on_inputs=False)
  params = model.init(jax.random.key(0), u)['params']
  out, aux = model.apply({'params': params}, u, train=True, rngs={'dropout': jax.random.key(1)})
  first = params['layer_0']
  np.testing.assert_allclose(aux['xp'][0], np.asarray(u) @ np.asarray(first['w_in'])
                             + np.asarray(first['b']), rtol=1e-5, atol=1e-5)
  second = params['layer_1']        # its input: layer 0's output, half of it dropped
  seen = np.linalg.lstsq(np.asarray(second['w_in']).T,
                         (np.asarray(aux['xp'][1]) - np.asarray(second['b'])).reshape(-1, h).T,
                         rcond=None)[0].T.reshape(t, b, h)
  hidden = np.asarray(aux['hidden'][0])
  off = np.isclose(seen, 0.0, atol=1e-4)
  assert (off | np.isclose(seen, 2.0 * hidden, rtol=1e-3, atol=1e-4)).all()
  assert 0.35 < off[np.abs(hidden) > 1e-2].mean() < 0.65
  plain_head = np.asarray(aux['hidden'][1]) @ np.asarray(params['w_out']) + np.asarray(params['b_out'])
  assert not np.allclose(out, plain_head, atol=1e-3)     # the head's input dropped too
  # the default drops the first layer's input as well
  dropped = RecurrentNetwork(output_size=o, hidden_size=h, num_layers=2, dropout=0.5)
  _, aux = dropped.apply({'params': params}, u, train=True, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(aux['xp'][0], np.asarray(u) @ np.asarray(first['w_in'])
                         + np.asarray(first['b']), atol=1e-3)


def test_dropout_draws_the_masks_of_flax_nn_dropout():
  """models.rnn.Dropout takes its rate at the call (so it may be traced) and
  draws what nn.Dropout draws in its place: runs recorded with nn.Dropout keep
  their numbers."""
  import flax.linen as nn
  from models.rnn import Dropout

  class Flax(nn.Module):
    @nn.compact
    def __call__(self, x):
      drop = nn.Dropout(0.3, deterministic=False)
      return drop(drop(x) + 1.0)

  class Ours(nn.Module):
    @nn.compact
    def __call__(self, x, rate):
      drop = Dropout()
      return drop(drop(x, rate) + 1.0, rate)

  x = jnp.asarray(np.random.default_rng(0).normal(size=(50, 40)), jnp.float32)
  rngs = {'dropout': jax.random.key(3)}
  want = Flax().apply({}, x, rngs=rngs)
  np.testing.assert_array_equal(Ours().apply({}, x, 0.3, rngs=rngs), want)
  traced = jax.jit(lambda r: Ours().apply({}, x, r, rngs=rngs))(jnp.float32(0.3))
  np.testing.assert_allclose(traced, want, rtol=1e-5)   # 1 - 0.3 in float32, not double


def test_a_members_own_rates_equal_the_model_at_those_rates():
  """``rates`` given at the call (a population member's own numbers, vmapped)
  give what a model built with those rates gives, a rate of 0 included (the
  model without that dropout); a rate for a dropout that is off is refused."""
  rng = np.random.default_rng(0)
  u = jnp.asarray(rng.normal(size=(T, B, D)), jnp.float32)
  on = RecurrentNetwork(output_size=O, hidden_size=16, num_layers=2, dropout=0.5,
                        recurrent_dropout=0.5)
  params = on.init(jax.random.key(0), u)['params']
  rngs = {'dropout': jax.random.key(7)}
  members = jnp.asarray([[0.1, 0.25], [0.4, 0.0], [0.0, 0.0]], jnp.float32)
  got = jax.jit(jax.vmap(lambda r: on.apply(
      {'params': params}, u, train=True, rngs=rngs,
      rates={'dropout': r[0], 'recurrent_dropout': r[1]})[0]))(members)
  for i, (ff, rec) in enumerate(np.asarray(members).tolist()):
    alone = RecurrentNetwork(output_size=O, hidden_size=16, num_layers=2, dropout=ff,
                             recurrent_dropout=rec)
    np.testing.assert_allclose(got[i], alone.apply({'params': params}, u, train=True,
                                                   rngs=rngs)[0], rtol=1e-5, atol=1e-6)
  off = RecurrentNetwork(output_size=O, hidden_size=16)
  with pytest.raises(ValueError, match=r"rates\['dropout'\] is given but model.dropout is off"):
    off.init(jax.random.key(0), u, rates={'dropout': 0.1})


@pytest.mark.parametrize('field', ['dropout', 'recurrent_dropout', 'zoneout'])
def test_dropout_probabilities_are_checked(field):
  model = RecurrentNetwork(output_size=O, hidden_size=8, **{field: 1.0})
  with pytest.raises(ValueError, match=f'model.{field}=1.0 is not a probability'):
    model.init(jax.random.key(0), jnp.ones((T, B, D)))


def test_zoneout_keeps_previous_state_and_uses_expectation_at_eval():
  u = np.random.default_rng(0).normal(size=(T, B, D)).astype(np.float32)
  model = RecurrentNetwork(output_size=O, hidden_size=32, zoneout=0.3)
  plain = RecurrentNetwork(output_size=O, hidden_size=32)
  params = model.init(jax.random.key(0), u)['params']
  _, aux = model.apply({'params': params}, u, train=True, rngs={'dropout': jax.random.key(1)})
  h = np.asarray(aux['states'][0])
  kept = np.isclose(h[1:], h[:-1]).mean()
  assert 0.2 < kept < 0.4                                      # about 30% of units zoned out
  # Evaluation: the expected update, h = z h_prev + (1 - z) F(h_prev).
  _, aux = model.apply({'params': params}, u)
  cell = plain.cells()[0]
  prev = np.zeros((B, 32), np.float32)
  for t in range(T):
    new = cell.step(params['layer_0'], prev, cell.project(params['layer_0'], u[t]))
    prev = 0.3 * prev + 0.7 * np.asarray(new)
    np.testing.assert_allclose(aux['states'][0][t], prev, rtol=1e-4, atol=1e-6)


def test_layer_norm_normalises_each_gate_input_separately():
  cell = cells_lib.LSTM(6, layer_norm=True)
  params = cell.init(jax.random.key(0), 4)
  z = cell.recurrent(params, jnp.asarray(np.random.default_rng(0).normal(size=(3, 6)), jnp.float32))
  np.testing.assert_allclose(z.mean(-1), 0, atol=1e-5)
  np.testing.assert_allclose(z.std(-1), 1, atol=1e-3)
  xp = cell.project(params, jnp.ones((2, 3, 4)) * jnp.arange(4.0))
  np.testing.assert_allclose((xp - params['b']).mean(-1), 0, atol=1e-5)


def test_temporal_clip_clips_the_backward_pass_only():
  clip = temporal_clip(0.5)
  x = jnp.array([1.0, -2.0, 3.0])
  np.testing.assert_array_equal(clip(x), x)
  g = jax.grad(lambda x: jnp.sum(clip(x) * jnp.array([0.1, -3.0, 2.0])))(x)
  np.testing.assert_allclose(g, [0.1, -0.5, 0.5])


def test_bptt_clip_bounds_every_temporal_gradient_component():
  u = np.random.default_rng(0).normal(size=(T, B, D)).astype(np.float32)
  model = RecurrentNetwork(output_size=O, hidden_size=6, init_scheme='basic_tanh')
  params = model.init(jax.random.key(0), u)['params']
  probes = [jnp.zeros((T, B, 6))]

  def loss(probes, c):
    return 100.0 * model.apply({'params': params}, u, probes=probes, bptt_clip=c)[0].sum()

  g_free = jax.grad(loss)(probes, None)[0]
  g_clip = jax.grad(loss)(probes, 1e-3)[0]
  # dE/dh_t = (direct path through the head) + (clipped path through h_{t+1}).
  direct = 100.0 * np.asarray(params['w_out']).sum(1)
  np.testing.assert_allclose(g_clip[-1], np.broadcast_to(direct, (B, 6)), rtol=1e-5)
  assert np.abs(g_clip[:-1] - direct).max() <= 1e-3 + 1e-5
  assert np.abs(g_free[:-1] - direct).max() > 1e-2             # the clip did something


def test_bad_cell_options_are_one_line_errors():
  with pytest.raises(ValueError, match="not one of rnn, rnn_preact, lstm, gru"):
    cells_lib.make_cell('lsmt', 4)
  with pytest.raises(ValueError, match=r"'lstm' does not take activation \(they are for rnn, rnn_preact\)"):
    cells_lib.make_cell('lstm', 4, activation='relu')
  assert cells_lib.make_cell('lstm', 4, activation='tanh') == cells_lib.LSTM(4)   # a default: dropped
  assert cells_lib.make_cell('rnn_preact', 4).preactivation


def test_a_cell_registered_by_one_line_is_built_with_its_gate_bias(monkeypatch):
  """A new cell is a Cell subclass and its line in CELLS: the network builds it
  and ``gate_bias`` finds its gate bias through ``gate_bias_field``, with no
  list of cell names elsewhere to update."""
  import dataclasses
  from typing import ClassVar

  @dataclasses.dataclass(frozen=True)
  class Biased(cells_lib.GRU):
    update_bias: float = 2.0
    gate_bias_field: ClassVar[str] = 'update_bias'

    def bias_init(self):
      h = self.hidden_size
      return jnp.zeros((3 * h,)).at[h:2 * h].set(self.update_bias)

  monkeypatch.setitem(cells_lib.CELLS, 'biased', (Biased, {}))
  u = jnp.zeros((3, 2, 4))
  for on, want in ((True, 2.0), (False, 0.0)):
    model = RecurrentNetwork(output_size=2, cell='biased', hidden_size=8, gate_bias=on)
    assert isinstance(model.cells()[0], Biased)
    b = np.asarray(model.init(jax.random.key(0), u)['params']['layer_0']['b'])
    np.testing.assert_array_equal(b[8:16], want)
  with pytest.raises(ValueError, match='leaky_fraction'):
    RecurrentNetwork(output_size=2, cell='gru', leaky_fraction=0.5).cells()
