"""Omega (Pascanu et al. 2013, eq. 9-10) against a plain numpy computation.

The numpy side is written from the equations alone: a forward loop, dE/dx_k
by central finite differences on the state, Omega by its formula, and its
"immediate" gradient with respect to W_rec by finite differences with x_k,
dE/dx_{k+1} and the slopes held fixed.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.rnn import RecurrentNetwork
from optim import omega as omega_lib

T, B, D, H, C = 6, 2, 3, 4, 3


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


ACT = {'tanh': (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
       'sigmoid': (sigmoid, lambda x: sigmoid(x) * (1 - sigmoid(x)))}


def np_loss(p, u, y, activation, preact, kick=None):
  """Mean softmax cross-entropy on the last step; ``kick=(k, delta)`` adds
  delta to the state x_k (1-based) before the recurrence goes on."""
  s, _ = ACT[activation]
  x = np.zeros((B, H))
  for t in range(T):
    xp = u[t] @ p['w_in'] + p['b']
    x = s(x) @ p['w_rec'] + xp if preact else s(x @ p['w_rec'] + xp)
    if kick is not None and kick[0] == t + 1:
      x = x + kick[1]
  h = s(x) if preact else x
  logits = h @ p['w_out'] + p['b_out']
  logits = logits - logits.max(1, keepdims=True)
  logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  return -logp[np.arange(B), y].mean()


def np_states(p, u, activation, preact):
  s, _ = ACT[activation]
  x = np.zeros((B, H))
  out = [x]
  for t in range(T):
    xp = u[t] @ p['w_in'] + p['b']
    x = s(x) @ p['w_rec'] + xp if preact else s(x @ p['w_rec'] + xp)
    out.append(x)
  return np.stack(out)          # x_0 .. x_T


def np_state_grads(p, u, y, activation, preact, eps=1e-6):
  """dE/dx_k for k = 1..T by central differences, [T, B, H]."""
  g = np.zeros((T, B, H))
  for k in range(1, T + 1):
    for b in range(B):
      for i in range(H):
        d = np.zeros((B, H))
        d[b, i] = eps
        g[k - 1, b, i] = (np_loss(p, u, y, activation, preact, (k, d)) -
                          np_loss(p, u, y, activation, preact, (k, -d))) / (2 * eps)
  return g


def np_omega(w_rec, xs, g, p, u, activation, preact, power=2):
  """Mean over (k, b) of (|g_{k+1} dx_{k+1}/dx_k|^power / |g_{k+1}|^power - 1)^2:
  power 2 is the authors' code, power 1 eq. 9."""
  _, ds = ACT[activation]
  total = 0.0
  for k in range(T):
    for b in range(B):
      gk = g[k, b]
      if preact:           # dx_{k+1}/dx_k = diag(s'(x_k)) W_rec
        carried = (w_rec @ gk) * ds(xs[k, b])
      else:                # dx_{k+1}/dx_k = W_rec diag(s'(a_{k+1})), slope held fixed
        a = xs[k, b] @ p['w_rec'] + u[k, b] @ p['w_in'] + p['b']
        carried = w_rec @ (gk * ds(a))
      total += ((np.linalg.norm(carried) / np.linalg.norm(gk)) ** power - 1.0) ** 2
  return total / (T * B)


@pytest.mark.parametrize('cell,activation', [('rnn', 'tanh'), ('rnn_preact', 'sigmoid'),
                                             ('rnn_preact', 'tanh')])
def test_omega_and_its_gradient_against_numpy(cell, activation):
  rng = np.random.default_rng(0)
  u = rng.normal(size=(T, B, D))
  y = rng.integers(0, C, size=B)
  model = RecurrentNetwork(output_size=C, cell=cell, hidden_size=H, activation=activation,
                           init_scheme='basic_tanh')
  params = model.init(jax.random.key(0), jnp.asarray(u, jnp.float32))['params']
  params['layer_0']['w_rec'] = 0.8 * jax.random.normal(jax.random.key(1), (H, H))
  params['layer_0']['b'] = 0.1 * jnp.ones(H)
  p = {k: np.asarray(v, np.float64) for k, v in {**params['layer_0'], 'w_out': params['w_out'],
                                                  'b_out': params['b_out']}.items()}
  preact = cell == 'rnn_preact'

  # dE/dx_k from the probes (what training uses) against finite differences.
  def loss(params, probes):
    out, aux = model.apply({'params': params}, jnp.asarray(u, jnp.float32), probes=probes)
    logp = jax.nn.log_softmax(out[-1])
    return -logp[jnp.arange(B), y].mean(), aux

  probes = [jnp.zeros((T, B, H))]
  (g_params, g_probes), aux = jax.grad(loss, argnums=(0, 1), has_aux=True)(params, probes)
  g_np = np_state_grads(p, u, y, activation, preact)
  np.testing.assert_allclose(g_probes[0], g_np, rtol=2e-3, atol=1e-6)

  # Omega's value.
  xs = np_states(p, u, activation, preact)
  value, grad = jax.value_and_grad(omega_lib.omega, argnums=1)(
      model.cells(), params, aux, g_probes)
  expected = np_omega(p['w_rec'], xs, g_np, p, u, activation, preact)
  np.testing.assert_allclose(value, expected, rtol=2e-3)

  # Its immediate gradient: through W_rec only, by finite differences.
  eps = 1e-6
  fd = np.zeros((H, H))
  for i in range(H):
    for j in range(H):
      d = np.zeros((H, H))
      d[i, j] = eps
      fd[i, j] = (np_omega(p['w_rec'] + d, xs, g_np, p, u, activation, preact) -
                  np_omega(p['w_rec'] - d, xs, g_np, p, u, activation, preact)) / (2 * eps)
  np.testing.assert_allclose(grad['layer_0']['w_rec'], fd, rtol=5e-3, atol=1e-5)
  for name in ('w_in', 'b'):
    np.testing.assert_array_equal(grad['layer_0'][name], 0.0)
  np.testing.assert_array_equal(grad['w_out'], 0.0)

  # Eq. 9's ratio of norms (reg.omega_form='norms'), value and gradient.
  value, grad = jax.value_and_grad(omega_lib.omega, argnums=1)(
      model.cells(), params, aux, g_probes, 'norms')
  np.testing.assert_allclose(
      value, np_omega(p['w_rec'], xs, g_np, p, u, activation, preact, power=1), rtol=2e-3)
  for i, j in ((0, 0), (1, 2), (H - 1, 0)):
    d = np.zeros((H, H))
    d[i, j] = eps
    fd_ij = (np_omega(p['w_rec'] + d, xs, g_np, p, u, activation, preact, power=1) -
             np_omega(p['w_rec'] - d, xs, g_np, p, u, activation, preact, power=1)) / (2 * eps)
    np.testing.assert_allclose(grad['layer_0']['w_rec'][i, j], fd_ij, rtol=5e-3, atol=1e-5)


@pytest.mark.parametrize('cell', ['rnn', 'rnn_preact'])
@pytest.mark.parametrize('activation', ['tanh', 'relu'])
def test_the_closed_form_signal_of_leaky_units_is_the_step_jacobians(cell, activation):
  """``SimpleRNN.jvp_t`` (eq. 10's closed form) against ``jax.vjp`` of the
  step itself (``Cell.jvp_t``), half the units leaky. With relu the slopes
  are constant in W_rec, so the immediate gradient of Omega's numerator is
  autodiff's too."""
  model = RecurrentNetwork(output_size=2, cell=cell, hidden_size=H, activation=activation,
                           leaky_fraction=0.5)
  one = model.cells()[0]
  assert one.leak() is not None and float(one.leak()[0]) > 0
  u = jnp.asarray(np.random.default_rng(0).normal(size=(T, B, D)), jnp.float32)
  params = model.init(jax.random.key(0), u)['params']['layer_0']
  rng = np.random.default_rng(1)
  prev = jnp.asarray(rng.normal(size=(B, H)), jnp.float32)
  xp = jnp.asarray(rng.normal(size=(B, H)), jnp.float32)
  g = jnp.asarray(rng.normal(size=(B, H)), jnp.float32)
  closed = one.jvp_t(params, prev, xp, g)
  generic = super(type(one), one).jvp_t(params, prev, xp, g)
  np.testing.assert_allclose(closed, generic, rtol=1e-5, atol=1e-6)
  if activation == 'relu':
    norm2 = lambda jvp: lambda p: jnp.sum(jvp(p, prev, xp, g) ** 2)
    np.testing.assert_allclose(
        jax.grad(norm2(one.jvp_t))(params)['w_rec'],
        jax.grad(norm2(super(type(one), one).jvp_t))(params)['w_rec'], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('form', ['squared', 'norms'])
def test_a_step_whose_units_are_all_off_gives_a_finite_gradient(form):
  """relu with every pre-activation negative at one step: the carried
  signal there is exactly 0 (ratio 0), where eq. 9's square root has an
  infinite slope; the gradient must stay finite (the guard would otherwise
  skip every update)."""
  model = RecurrentNetwork(output_size=2, cell='rnn_preact', hidden_size=H, activation='relu')
  u = jnp.ones((T, B, D))
  params = model.init(jax.random.key(0), u)['params']
  _, aux = model.apply({'params': params}, u)
  states = aux['states'][0].at[2].set(-1.0)       # x_3 < 0: s'(x_3) = 0, nothing carried past it
  aux = {**aux, 'states': [states]}
  grads = [jnp.asarray(np.random.default_rng(1).normal(size=(T, B, H)), jnp.float32)]
  value, grad = jax.value_and_grad(omega_lib.omega, argnums=1)(
      model.cells(), params, aux, grads, form)
  assert np.isfinite(float(value)) and float(value) > 0
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(grad))
  assert np.any(np.asarray(grad['layer_0']['w_rec']) != 0)


def test_omega_is_zero_for_a_norm_preserving_linear_recurrence():
  """With a permutation W_rec and identity slopes (relu in its linear
  region), every error signal keeps its norm: Omega = 0 and its gradient 0."""
  model = RecurrentNetwork(output_size=2, cell='rnn_preact', hidden_size=H, activation='relu')
  u = jnp.ones((T, B, D))
  params = model.init(jax.random.key(0), u)['params']
  q = np.eye(H)[[2, 0, 3, 1]]                           # a permutation: orthogonal, >= 0
  params['layer_0']['w_rec'] = jnp.asarray(q, jnp.float32)
  params['layer_0']['b'] = jnp.full((H,), 10.0)       # keeps every state positive
  _, aux = model.apply({'params': params}, u, carry=[jnp.ones((B, H))])
  grads = [jnp.asarray(np.random.default_rng(1).normal(size=(T, B, H)), jnp.float32)]
  value, grad = jax.value_and_grad(omega_lib.omega, argnums=1)(model.cells(), params, aux, grads)
  assert abs(float(value)) < 1e-9
  np.testing.assert_allclose(grad['layer_0']['w_rec'], 0.0, atol=1e-6)


def test_zero_error_signals_are_left_out():
  """Steps after a sequence's end carry dE/dx = 0; they must not count."""
  model = RecurrentNetwork(output_size=2, cell='rnn', hidden_size=H)
  u = jnp.ones((T, B, D))
  params = model.init(jax.random.key(0), u)['params']
  _, aux = model.apply({'params': params}, u)
  g = np.random.default_rng(1).normal(size=(T, B, H)).astype(np.float32)
  full = omega_lib.omega(model.cells(), params, aux, [jnp.asarray(g)])
  g[:, 1] = 0.0                                          # second sequence: no signal
  half = omega_lib.omega(model.cells(), params, aux, [jnp.asarray(g)])
  only_first = omega_lib.omega_layer(model.cells()[0], params['layer_0'], aux['initial'][0][:1],
                                     aux['states'][0][:, :1], aux['xp'][0][:, :1],
                                     jnp.asarray(g[:, :1]))
  np.testing.assert_allclose(half, only_first, rtol=1e-5)
  assert not np.isclose(full, half)


def np_layer_norm(x, gain, eps=1e-5):
  """Ba et al. (2016) over the last axis: (x - mean) / sqrt(var + eps) * gain."""
  centred = x - x.mean(-1, keepdims=True)
  return centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + eps) * gain


def np_step(cell, p, prev, xp, leak=None):
  """One step of ``cell`` written from its equations (states [..., S], xp [..., G]).

  Layer norm (when ``p`` has ``ln_rec``) acts on the whole recurrent product
  h W_rec; ``leak`` is the per-unit a of h = a h_prev + (1 - a) F."""
  H = p['w_rec'].shape[0]
  h = prev[..., :H]
  z = h @ p['w_rec']
  if 'ln_rec' in p:
    z = np_layer_norm(z, p['ln_rec'])
  if cell == 'rnn':
    new = np.tanh(z + xp)
    return new if leak is None else leak * h + (1 - leak) * new
  if cell == 'lstm':
    i, f, g, o = (z[..., k * H:(k + 1) * H] + xp[..., k * H:(k + 1) * H] for k in range(4))
    c = sigmoid(f) * prev[..., H:] + sigmoid(i) * np.tanh(g)
    return np.concatenate([sigmoid(o) * np.tanh(c), c], axis=-1)
  xr, xu, xn = (xp[..., k * H:(k + 1) * H] for k in range(3))     # gru
  hr, hu, hn = (z[..., k * H:(k + 1) * H] for k in range(3))
  r, u = sigmoid(xr + hr), sigmoid(xu + hu)
  n = np.tanh(xn + r * (hn + p['b_rec_n']))
  return (1 - u) * n + u * h


def np_gated_omega(cell, p, prev, xp, g, leak=None, eps=1e-5, form='squared'):
  """Omega (the authors' squared form, or eq. 9's ratio of norms; mean over (k, b)) with every step's Jacobian
  dx_{k+1}/dx_k [S, S] by central differences of ``np_step`` at the fixed
  states ``prev`` [T, B, S] and inputs ``xp``; g [T, B, S] held fixed."""
  S = prev.shape[-1]
  carried = np.zeros_like(g)
  for i in range(S):                      # carried_i = sum_j g_j d step_j / d prev_i
    d = np.zeros(S)
    d[i] = eps
    column = (np_step(cell, p, prev + d, xp, leak) -
              np_step(cell, p, prev - d, xp, leak)) / (2 * eps)
    carried[..., i] = (g * column).sum(-1)
  ratio = (carried ** 2).sum(-1) / (g ** 2).sum(-1)
  if form == 'norms':
    ratio = np.sqrt(ratio)
  return ((ratio - 1.0) ** 2).mean()


def _np_layer(layer):
  return {k: np.asarray(v, np.float64) for k, v in layer.items()}


@pytest.mark.parametrize('cell,kw,form', [
    ('lstm', {}, 'squared'), ('gru', {}, 'squared'), ('lstm', {'layer_norm': True}, 'squared'),
    ('rnn', {'layer_norm': True, 'leaky_fraction': 0.5}, 'squared'), ('gru', {}, 'norms')],
                         ids=['lstm', 'gru', 'lstm_layer_norm', 'rnn_layer_norm_leaky', 'gru_norms'])
def test_omega_of_the_generic_jacobians_against_numpy(cell, kw, form):
  """Omega through ``Cell.jvp_t`` (gated cells, layer-normed simple RNNs)
  against numpy: the states by a forward loop of ``np_step``, each step's
  Jacobian by central differences (so the LSTM's cell-state half, the GRU's
  direct u h path and layer norm all enter), Omega by its formula with the
  error signals g fixed; its gradient with respect to W_rec, and to the other
  parameters of the step (b_rec_n, the layer-norm gain), by finite
  differences of that numpy Omega. Nothing reaches W_in, b or the head."""
  rng = np.random.default_rng(0)
  u = rng.normal(size=(T, B, D))
  model = RecurrentNetwork(output_size=C, cell=cell, hidden_size=H, **kw)
  params = jax.jit(model.init)(jax.random.key(0), jnp.asarray(u, jnp.float32))['params']
  layer = params['layer_0']
  G = layer['w_rec'].shape[1]
  layer['w_rec'] = jnp.asarray(0.8 * rng.normal(size=(H, G)), jnp.float32)
  layer['b'] = jnp.asarray(0.3 * rng.normal(size=G), jnp.float32)
  for name in ('ln_in', 'ln_rec', 'b_rec_n'):      # away from their initial 1 and 0
    if name in layer:
      layer[name] = jnp.asarray(rng.uniform(0.5, 1.5, size=layer[name].shape), jnp.float32)
  p = _np_layer(layer)
  one = model.cells()[0]
  leak = getattr(one, 'leak', lambda: None)()
  if leak is not None:
    leak = np.asarray(leak, np.float64)
  S = one.state_size

  xp = u @ p['w_in']
  if 'ln_in' in p:
    xp = np_layer_norm(xp, p['ln_in'])
  xp = xp + p['b']
  # From a random x_0: at h = 0, layer norm's 1 / sqrt(eps) would dominate Omega.
  states = [rng.uniform(-0.8, 0.8, size=(B, S)).astype(np.float32).astype(np.float64)]
  for t in range(T):
    states.append(np_step(cell, p, states[-1], xp[t], leak))
  prev = np.stack(states[:-1])                        # x_0 .. x_{T-1}
  _, aux = jax.jit(model.apply)({'params': params}, jnp.asarray(u, jnp.float32),
                                [jnp.asarray(states[0], jnp.float32)])
  np.testing.assert_allclose(aux['states'][0], np.stack(states[1:]), rtol=1e-4, atol=1e-5)

  g = rng.normal(size=(T, B, S))
  value, grad = jax.jit(jax.value_and_grad(partial(omega_lib.omega, model.cells(), form=form)))(
      params, aux, [jnp.asarray(g, jnp.float32)])
  expected = np_gated_omega(cell, p, prev, xp, g, leak, form=form)
  assert expected > 0.05                              # not a degenerate point
  np.testing.assert_allclose(value, expected, rtol=1e-4)

  def fd(name, index, eps=1e-5):
    plus, minus = dict(p), dict(p)
    plus[name], minus[name] = p[name].copy(), p[name].copy()
    plus[name][index] += eps
    minus[name][index] -= eps
    return (np_gated_omega(cell, plus, prev, xp, g, leak, form=form) -
            np_gated_omega(cell, minus, prev, xp, g, leak, form=form)) / (2 * eps)

  want = np.vectorize(lambda i, j: fd('w_rec', (i, j)))(*np.indices((H, G)))
  np.testing.assert_allclose(grad['layer_0']['w_rec'], want, rtol=2e-3, atol=1e-5)
  for name in ('ln_rec', 'b_rec_n'):
    if name in p:
      want = [fd(name, (i,)) for i in range(p[name].size)]
      np.testing.assert_allclose(grad['layer_0'][name], want, rtol=2e-3, atol=1e-5)
  for name in ('w_in', 'b', 'ln_in'):
    if name in p:
      np.testing.assert_array_equal(grad['layer_0'][name], 0.0)
  np.testing.assert_array_equal(grad['w_out'], 0.0)

