"""Omega (Pascanu et al. 2013, eq. 9-10) against a plain numpy computation.

The numpy side is written from the equations alone: a forward loop, dE/dx_k
by central finite differences on the state, Omega by its formula, and its
"immediate" gradient with respect to W_rec by finite differences with x_k,
dE/dx_{k+1} and the slopes held fixed.
"""

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


def test_omega_for_gated_cells_is_finite_and_differentiable():
  for cell in ('lstm', 'gru'):
    model = RecurrentNetwork(output_size=2, cell=cell, hidden_size=H)
    u = jnp.ones((T, B, D))
    params = model.init(jax.random.key(0), u)['params']
    _, aux = model.apply({'params': params}, u)
    s = model.cells()[0].state_size
    g = [jnp.asarray(np.random.default_rng(1).normal(size=(T, B, s)), jnp.float32)]
    value, grad = jax.value_and_grad(omega_lib.omega, argnums=1)(model.cells(), params, aux, g)
    assert np.isfinite(value) and value > 0
    assert np.abs(grad['layer_0']['w_rec']).sum() > 0
