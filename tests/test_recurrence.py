"""The recurrence's hand-written backward pass against plain autodiff.

``models.rnn.recurrence`` (custom VJP: dE/dW_rec as one matmul after the
backward loop) must give the gradients that ``jax.grad`` gives through the
plain ``lax.scan`` of ``models.rnn.plain_recurrence``, for every cell and
option the fast path serves: probes (Omega's dE/dx_t), the temporal clip,
layer norm, leaky units, a population under ``jax.vmap``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import cells as cells_lib
from models import rnn

T, B, D, H = 7, 3, 4, 5

CASES = {
    'rnn_tanh': ('rnn', {}),
    'rnn_sigmoid': ('rnn', {'activation': 'sigmoid'}),
    'rnn_relu': ('rnn', {'activation': 'relu'}),
    'rnn_preact': ('rnn_preact', {}),
    'rnn_leaky': ('rnn', {'leaky_fraction': 0.5}),
    'rnn_layer_norm': ('rnn', {'layer_norm': True}),
    'lstm': ('lstm', {}),
    'lstm_layer_norm': ('lstm', {'layer_norm': True}),
    'gru': ('gru', {}),
    'gru_layer_norm': ('gru', {'layer_norm': True}),
}


def test_every_registered_cell_has_a_case():
  """A cell added to ``cells.CELLS`` gets its backward pass checked here."""
  assert set(cells_lib.CELLS) <= {name for name, _ in CASES.values()}


def test_a_step_reading_a_parameter_it_does_not_list_is_refused():
  """The hand-written BPTT differentiates only ``step_param_names``: a new
  cell that forgets one (here a GRU without its b_rec_n) would train with a
  zero gradient for it; it is refused in one line when the gradient is taken."""
  class Forgetful(cells_lib.GRU):
    def step_param_names(self):
      return cells_lib.Cell.step_param_names(self)
  cell = Forgetful(hidden_size=H)
  params = cell.init(jax.random.key(0), D)
  xp = cell.project(params, jax.random.normal(jax.random.key(1), (T, B, D)))
  state0 = jnp.zeros((B, H))
  assert rnn.recurrence(cell, params, state0, xp).shape == (T, B, H)   # forward: fine
  with pytest.raises(ValueError, match=r"^Forgetful.step_from_matmul reads params\['b_rec_n'\], "
                                       r'which its step_param_names\(\) does not list'):
    jax.grad(lambda p: rnn.recurrence(cell, p, state0, xp).sum())(params)


def test_a_recurrent_product_of_another_width_needs_its_own_residuals():
  """The default residuals split z by gate: a cell whose z is not gates x H
  wide (a second recurrent product, as the MGU's) is told to override them,
  not left to numpy's array_split error (or a silent wrong split)."""
  class Narrow(cells_lib.GRU):
    def step_from_matmul(self, params, state, xp_t, z):
      return state
    def step_residuals(self, params, state, xp_t, z):
      return cells_lib.Cell.step_residuals(self, params, state, xp_t, z[..., :H])
  cell = Narrow(hidden_size=H)
  with pytest.raises(ValueError, match=rf'^Narrow: z is {H} wide, not gates x hidden_size = 3 x {H}'):
    cell.step_residuals({}, jnp.zeros((B, H)), None, jnp.zeros((B, 3 * H)))


def _setup(name, kwargs, seed=0):
  cell = cells_lib.make_cell(name, H, init_scheme='basic_tanh', **kwargs)
  params = cell.init(jax.random.key(seed), D)
  # Non-trivial values for every parameter the step reads.
  params['b'] = 0.2 * jax.random.normal(jax.random.key(seed + 1), params['b'].shape)
  if 'b_rec_n' in params:
    params['b_rec_n'] = 0.3 * jnp.ones_like(params['b_rec_n'])
  if 'ln_rec' in params:
    params['ln_rec'] = 1.0 + 0.1 * jax.random.normal(jax.random.key(seed + 2), params['ln_rec'].shape)
  xp = cell.project(params, jax.random.normal(jax.random.key(seed + 3), (T, B, D)))
  state0 = 0.5 * jax.random.normal(jax.random.key(seed + 4), (B, cell.state_size))
  weights = jax.random.normal(jax.random.key(seed + 5), (T, B, cell.state_size))
  return cell, params, state0, xp, weights


def _grads(recurrence, cell, params, state0, xp, weights, probe, clip):
  def loss(params, state0, xp, probe):
    states = recurrence(cell, params, state0, xp, probe, clip)
    return jnp.sum(jnp.sin(states) * weights)          # every state, non-linearly
  argnums = (0, 1, 2) if probe is None else (0, 1, 2, 3)
  return jax.grad(loss, argnums=argnums)(params, state0, xp, probe)


@pytest.mark.parametrize('case', sorted(CASES))
@pytest.mark.parametrize('with_probe,clip', [(False, None), (True, None), (True, 0.05)])
def test_custom_vjp_matches_autodiff_through_a_plain_scan(case, with_probe, clip):
  cell, params, state0, xp, weights = _setup(*CASES[case])
  probe = jnp.zeros((T, B, cell.state_size)) if with_probe else None
  np.testing.assert_allclose(rnn.recurrence(cell, params, state0, xp, probe),
                             rnn.plain_recurrence(cell, params, state0, xp, probe),
                             rtol=1e-6, atol=1e-6)
  fast = _grads(rnn.recurrence, cell, params, state0, xp, weights, probe, clip)
  plain = _grads(rnn.plain_recurrence, cell, params, state0, xp, weights, probe, clip)
  assert jax.tree.structure(fast) == jax.tree.structure(plain)
  for path, a, b in zip(jax.tree_util.tree_leaves_with_path(fast),
                        jax.tree.leaves(fast), jax.tree.leaves(plain)):
    scale = float(jnp.max(jnp.abs(b))) + 1e-6
    np.testing.assert_allclose(a / scale, b / scale, atol=2e-6,
                               err_msg=jax.tree_util.keystr(path[0]))


def test_clip_changes_the_gradient():
  """The clip case above is not vacuous: the threshold bites."""
  cell, params, state0, xp, weights = _setup('rnn', {})
  probe = jnp.zeros((T, B, H))
  free = _grads(rnn.recurrence, cell, params, state0, xp, weights, probe, None)
  clipped = _grads(rnn.recurrence, cell, params, state0, xp, weights, probe, 0.05)
  assert np.abs(np.asarray(free[3]) - np.asarray(clipped[3])).max() > 1e-2


def test_custom_vjp_under_vmap_matches_each_member():
  """A population (vmapped params, states and inputs) gets each member's gradient."""
  members = [_setup('lstm', {}, seed=10 * i) for i in range(3)]
  cell = members[0][0]
  stacked = [jax.tree.map(lambda *xs: jnp.stack(xs), *[m[k] for m in members])
             for k in range(1, 5)]

  def member_grad(params, state0, xp, weights):
    return _grads(rnn.recurrence, cell, params, state0, xp, weights, None, None)

  together = jax.jit(jax.vmap(member_grad))(*stacked)
  for i, (_, params, state0, xp, weights) in enumerate(members):
    alone = _grads(rnn.plain_recurrence, cell, params, state0, xp, weights, None, None)
    for a, b in zip(jax.tree.leaves(together), jax.tree.leaves(alone)):
      np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)


def _python_loop(cell, params, state0, xp, probe=None, clip=None):
  """The states by a Python loop over ``cell.step``: no scan, no gates split
  apart (``rnn.by_gate``), plain autodiff."""
  state, states = state0, []
  for t in range(xp.shape[0]):
    state = cell.step(params, state, xp[t])
    states.append(state)
  return jnp.stack(states)


@pytest.mark.parametrize('case', ['lstm', 'gru_layer_norm'])
def test_gated_recurrences_match_a_python_loop_over_the_step(case):
  # the scans read each gate of xp (and the backward pass each gate of z) as
  # its own array (rnn.by_gate); the loop reads xp[t] whole
  cell, params, state0, xp, weights = _setup(*CASES[case])
  assert isinstance(rnn.by_gate(cell, xp), tuple) and len(rnn.by_gate(cell, xp)) == cell.gates
  want = _python_loop(cell, params, state0, xp)
  for recurrence in (rnn.recurrence, rnn.plain_recurrence):
    np.testing.assert_allclose(recurrence(cell, params, state0, xp), want, rtol=1e-6, atol=1e-6)
    got = _grads(recurrence, cell, params, state0, xp, weights, None, None)
    ref = _grads(_python_loop, cell, params, state0, xp, weights, None, None)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
      scale = float(jnp.max(jnp.abs(b))) + 1e-6
      np.testing.assert_allclose(a / scale, b / scale, atol=2e-6)


def _python_loop_masked(cell, params, state0, xp, probe=None, clip=None, mask=None):
  """Recurrent dropout by hand: the recurrent product's operand times ``mask``
  at every step, a Python loop, plain autodiff."""
  state, states = state0, []
  for t in range(xp.shape[0]):
    z = (cell.matmul_operand(state) * mask) @ params['w_rec']
    state = cell.step_from_matmul(params, state, xp[t], z)
    states.append(state)
  return jnp.stack(states)


@pytest.mark.parametrize('case', ['rnn_leaky', 'lstm_layer_norm', 'gru'])
def test_recurrent_dropout_in_the_hand_written_backward_pass(case):
  cell, params, state0, xp, weights = _setup(*CASES[case])
  mask = jax.random.bernoulli(jax.random.key(9), 0.7, (B, cell.hidden_size)) / 0.7
  masked = lambda f: (lambda c, p, s, x, probe=None, clip=None:
                      f(c, p, s, x, probe, clip, mask=mask) if f is _python_loop_masked
                      else f(c, p, s, x, probe, clip, drop_mask=mask))
  want = _python_loop_masked(cell, params, state0, xp, mask=mask)
  # the mask acts: without it the states differ
  assert float(jnp.max(jnp.abs(rnn.recurrence(cell, params, state0, xp) - want))) > 1e-3
  ref = _grads(masked(_python_loop_masked), cell, params, state0, xp, weights, None, None)
  for recurrence in (rnn.recurrence, rnn.plain_recurrence):
    np.testing.assert_allclose(masked(recurrence)(cell, params, state0, xp), want,
                               rtol=1e-6, atol=1e-6)
    got = _grads(masked(recurrence), cell, params, state0, xp, weights, None, None)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
      scale = float(jnp.max(jnp.abs(b))) + 1e-6
      np.testing.assert_allclose(a / scale, b / scale, atol=2e-6)
