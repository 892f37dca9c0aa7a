"""Tests of optim/: transforms against formulas iterated by hand in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim import schedules
from optim import transforms

RTOL, ATOL = 2e-5, 1e-7

# A small strictly convex quadratic f(theta) = 0.5 theta'A theta - b'theta on
# a two-leaf parameter tree (the leaves are concatenated for the algebra).
_RNG = np.random.default_rng(0)
_M = _RNG.normal(size=(5, 5))
A = _M @ _M.T / 5 + np.eye(5)
B = _RNG.normal(size=5)


def _split(theta):
  return {'w': jnp.asarray(theta[:3], jnp.float32),
          'b': jnp.asarray(theta[3:], jnp.float32)}


def _flat(tree):
  return np.concatenate([np.asarray(tree['w'], np.float64),
                         np.asarray(tree['b'], np.float64)])


def _np_grad(theta):
  return A @ theta - B


def _loss(params):
  theta = jnp.concatenate([params['w'], params['b']])
  return 0.5 * theta @ jnp.asarray(A, jnp.float32) @ theta - jnp.asarray(
      B, jnp.float32) @ theta


def _run(opt, theta0, steps):
  """Runs ``opt`` on the quadratic; returns the list of flat parameters."""

  @jax.jit
  def step(params, state):
    updates, state = opt.update(jax.grad(_loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  params = _split(theta0)
  state = opt.init(params)
  out = [_flat(params)]
  for _ in range(steps):
    params, state = step(params, state)
    out.append(_flat(params))
  return out, state


# Schedules that vary at every step (k is the 0-based update count).
def _mu(k):
  return 0.5 + 0.4 * (1.0 - 0.7 ** k)


def _lr(k):
  return 0.2 / (1.0 + 0.5 * k)


THETA0 = np.array([1.0, -2.0, 0.5, 3.0, -1.0])


# ---------------------------------------------------------------------------
# momentum_sgd


def test_nesterov_matches_paper_eq7_with_schedules():
  steps = 8
  got, _ = _run(optim.momentum_sgd(_lr, _mu, nesterov=True), THETA0, steps)

  # Bengio et al. eq. 6-7 with t = k + 1: mu_{t-1} = mu(k), mu_t = mu(k+1).
  theta, v = THETA0.copy(), np.zeros(5)
  want = [theta.copy()]
  for k in range(steps):
    g = _np_grad(theta)
    theta = theta + _mu(k + 1) * _mu(k) * v - (1 + _mu(k + 1)) * _lr(k) * g
    v = _mu(k) * v - _lr(k) * g
    want.append(theta.copy())
  np.testing.assert_allclose(np.array(got), np.array(want), rtol=RTOL,
                             atol=ATOL)

  # The schedules are strong enough that another index convention differs.
  theta, v = THETA0.copy(), np.zeros(5)
  for k in range(steps):
    g = _np_grad(theta)
    theta = theta + _mu(k) * _mu(k) * v - (1 + _mu(k)) * _lr(k) * g
    v = _mu(k) * v - _lr(k) * g
  assert np.abs(theta - want[-1]).max() > 1e-3


def test_nesterov_is_sutskever_nag_at_the_peeked_ahead_point():
  # Sutskever's NAG: v_t = mu_{t-1} v_{t-1} - eps_{t-1} grad(theta + mu v),
  # theta_t = theta_{t-1} + v_t. The paper's Theta_t = theta_t + mu_t v_t.
  steps = 8
  got, _ = _run(optim.momentum_sgd(_lr, _mu, nesterov=True), THETA0, steps)
  theta, v = THETA0.copy(), np.zeros(5)
  for k in range(steps):
    v = _mu(k) * v - _lr(k) * _np_grad(theta + _mu(k) * v)
    theta = theta + v
    np.testing.assert_allclose(got[k + 1], theta + _mu(k + 1) * v,
                               rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize('nesterov', [True, False])
def test_constant_momentum_matches_optax_sgd(nesterov):
  steps = 10
  got, _ = _run(optim.momentum_sgd(0.05, 0.9, nesterov=nesterov), THETA0,
                steps)
  want, _ = _run(optax.sgd(0.05, momentum=0.9, nesterov=nesterov), THETA0,
                 steps)
  np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5,
                             atol=1e-6)


def test_classical_momentum_matches_hand_formula_with_schedules():
  steps = 8
  got, state = _run(optim.momentum_sgd(_lr, _mu, nesterov=False), THETA0,
                    steps)
  theta, v = THETA0.copy(), np.zeros(5)
  want = [theta.copy()]
  for k in range(steps):
    v = _mu(k) * v - _lr(k) * _np_grad(theta)
    theta = theta + v
    want.append(theta.copy())
  np.testing.assert_allclose(np.array(got), np.array(want), rtol=RTOL,
                             atol=ATOL)
  assert int(state.count) == steps
  np.testing.assert_allclose(_flat(state.velocity), v, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------
# clip_by_global_norm_auto


def _grad_with_norm(norm, seed):
  g = np.random.default_rng(seed).normal(size=5)
  return g / np.linalg.norm(g) * norm


@pytest.mark.parametrize('factor', [1.0, 2.0])
def test_auto_clip_threshold_is_mean_of_first_norms(factor):
  warmup_norms = [1.0, 2.0, 6.0]
  clip = optim.clip_by_global_norm_auto(len(warmup_norms), factor)
  update = jax.jit(clip.update)
  params = _split(np.zeros(5))
  state = clip.init(params)
  threshold = factor * np.mean(warmup_norms)

  for i, n in enumerate(warmup_norms):
    g = _grad_with_norm(n, i)
    out, state = update(_split(g), state)
    # No clipping during warm-up, even above the coming threshold (6 > 3).
    np.testing.assert_allclose(_flat(out), g, rtol=1e-6)
    expected = threshold if i == len(warmup_norms) - 1 else np.inf
    np.testing.assert_allclose(float(state.threshold), expected, rtol=1e-6)

  for i, n in enumerate([10.0, 0.5 * threshold, 50.0, 1e4]):
    g = _grad_with_norm(n, 10 + i)
    out, state = update(_split(g), state)
    got = _flat(out)
    if n > threshold:
      np.testing.assert_allclose(np.linalg.norm(got), threshold, rtol=1e-5)
      np.testing.assert_allclose(got / np.linalg.norm(got),
                                 g / np.linalg.norm(g), rtol=1e-5, atol=1e-6)
    else:
      np.testing.assert_allclose(got, g, rtol=1e-6)
    # Later norms do not move the threshold.
    np.testing.assert_allclose(float(state.threshold), threshold, rtol=1e-6)
  assert optim.inspect(state)['clip_threshold'] == state.threshold


# ---------------------------------------------------------------------------
# skip_large_updates


def _trees_equal(a, b):
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  return tree_a == tree_b and all(
      np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
      for x, y in zip(leaves_a, leaves_b))


def test_guard_skips_nonfinite_and_huge_and_passes_the_rest():
  inner = optim.momentum_sgd(0.1, 0.9, nesterov=True)
  guarded = optim.skip_large_updates(inner, max_norm=100.0)
  g_update = jax.jit(guarded.update)
  i_update = jax.jit(inner.update)
  params = _split(THETA0)
  gs, ist = guarded.init(params), inner.init(params)

  good = [_split(_grad_with_norm(n, s)) for s, n in enumerate([1., 3., 2.])]
  bad = [
      _split(np.array([1.0, np.nan, 0.0, 0.0, 0.0])),
      _split(np.array([np.inf, 0.0, 0.0, 0.0, 0.0])),
      _split(_grad_with_norm(150.0, 7)),  # finite, above max_norm
  ]
  # good, bad, good, bad, bad, good: the guarded run must equal the inner run
  # on the good gradients alone.
  sequence = [good[0], bad[0], good[1], bad[1], bad[2], good[2]]
  skipped = 0
  for g in sequence:
    is_bad = any(g is b for b in bad)
    before = gs.inner_state
    u, gs = g_update(g, gs)
    if is_bad:
      skipped += 1
      assert all(not np.any(x) for x in jax.tree.leaves(u))
      assert _trees_equal(gs.inner_state, before)
      assert bool(gs.last_skipped)
    else:
      want_u, ist = i_update(g, ist)
      assert _trees_equal(u, want_u)
      assert _trees_equal(gs.inner_state, ist)
      assert not bool(gs.last_skipped)
    assert int(gs.skipped) == skipped
  assert int(optim.inspect(gs)['skipped']) == 3


def test_guard_lets_a_norm_at_max_norm_through():
  guarded = optim.skip_large_updates(optax.sgd(1.0), max_norm=100.0)
  params = _split(np.zeros(5))
  g = _grad_with_norm(99.0, 0)
  u, s = guarded.update(_split(g), guarded.init(params))
  np.testing.assert_allclose(_flat(u), -g, rtol=1e-6)
  assert int(s.skipped) == 0


def test_guard_shrink_moves_only_w_rec_by_lr_times_factor_and_keeps_the_state():
  """optim.guard_shrink: the authors' reaction to an overflow: W_rec <- W_rec -
  lr * 0.02 * W_rec, every other leaf unchanged, the inner state (momentum,
  counts) as it was; an ordinary gradient is an ordinary update."""
  cfg = _cfg(name='momentum', learning_rate=0.5, momentum=0.9, clip_norm=1.0,
             guard_max_norm=100.0, guard_shrink=0.02)
  opt = optim.make_optimizer(cfg, total_steps=10)
  rng = np.random.default_rng(0)
  params = {'layer_0': {'w_in': jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
                        'w_rec': jnp.asarray(rng.normal(size=(4, 4)), jnp.float32)},
            'w_out': jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)}
  state = opt.init(params)
  small = jax.tree.map(lambda p: 0.01 * jnp.ones_like(p), params)
  _, state = opt.update(small, state, params)      # momentum now non-zero
  before = state.inner_state
  huge = jax.tree.map(lambda p: jnp.full_like(p, 1e6), params)
  u, state = opt.update(huge, state, params)
  np.testing.assert_allclose(u['layer_0']['w_rec'],
                             -0.5 * 0.02 * np.asarray(params['layer_0']['w_rec']), rtol=1e-6)
  assert not np.any(u['layer_0']['w_in']) and not np.any(u['w_out'])
  assert _trees_equal(state.inner_state, before)
  assert int(state.skipped) == 1
  nan = jax.tree.map(lambda p: jnp.full_like(p, jnp.nan), params)
  u, state = opt.update(nan, state, params)
  assert np.all(np.isfinite(u['layer_0']['w_rec'])) and int(state.skipped) == 2
  with pytest.raises(ValueError, match='guard_shrink'):
    optim.make_optimizer(_cfg(guard_shrink=-1.0), total_steps=10)


# ---------------------------------------------------------------------------
# make_optimizer


def _cfg(**overrides):
  cfg = optim.default_config()
  cfg.update(overrides)
  return cfg


_CONFIGS = {
    'sgd': dict(name='sgd', learning_rate=0.1),
    'momentum': dict(name='momentum', learning_rate=0.05),
    'nesterov': dict(name='nesterov', learning_rate=0.05),
    'adam': dict(name='adam', learning_rate=0.05),
    'rmsprop': dict(name='rmsprop', learning_rate=0.05),
    'adamw': dict(name='adamw', learning_rate=0.05, weight_decay=1e-3),
    'nesterov_sutskever_cosine_clip': dict(
        name='nesterov', learning_rate=0.05, momentum=0.95,
        momentum_schedule='sutskever', momentum_schedule_every=5,
        schedule='warmup_cosine', warmup_steps=3, clip_norm=1.0),
    'sgd_auto_clip_value_clip_wd': dict(
        name='sgd', learning_rate=0.1, clip_norm_auto_steps=3,
        clip_norm_auto_factor=0.5, clip_value=2.0, weight_decay=1e-3),
}


def test_every_optimizer_name_is_built_and_tested(monkeypatch):
  """Each name ``optim.name`` accepts has a branch in ``make_optimizer`` and a
  case above; a name added to OPTIMIZERS without its branch is refused when
  the optimizer is made (it once fell through to RMSProp's branch and failed
  inside optax at the first update)."""
  assert set(optim.OPTIMIZERS) <= {c['name'] for c in _CONFIGS.values()}
  monkeypatch.setattr(optim.chain, 'OPTIMIZERS', optim.OPTIMIZERS + ('no_such_optimizer',))
  with pytest.raises(ValueError, match="optim.name='no_such_optimizer' is in OPTIMIZERS but "
                                       'make_optimizer'):
    optim.make_optimizer(_cfg(name='no_such_optimizer', learning_rate=0.1), total_steps=10)


@pytest.mark.parametrize('key', sorted(_CONFIGS))
def test_make_optimizer_decreases_a_quadratic(key):
  steps = 20
  opt = optim.make_optimizer(_cfg(**_CONFIGS[key]), total_steps=steps)

  @jax.jit
  def step(params, state):
    loss, grads = jax.value_and_grad(_loss)(params)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  params = _split(THETA0)
  state = opt.init(params)
  losses = []
  for _ in range(steps):
    params, state, loss = step(params, state)
    losses.append(float(loss))
  assert np.all(np.isfinite(losses))
  assert losses[-1] < 0.5 * losses[0], losses
  info = optim.inspect(state)
  assert int(info['skipped']) == 0
  assert 'learning_rate' in info


def test_make_optimizer_sgd_step_is_clip_then_decay_then_sgd():
  cfg = _cfg(name='sgd', learning_rate=0.1, clip_norm=0.5, weight_decay=0.01)
  opt = optim.make_optimizer(cfg, total_steps=10)
  params = _split(THETA0)
  g = _grad_with_norm(2.0, 3)
  u, state = opt.update(_split(g), opt.init(params), params)
  want = -0.1 * (g * 0.5 / 2.0 + 0.01 * THETA0)
  np.testing.assert_allclose(_flat(u), want, rtol=1e-5)
  info = optim.inspect(state)
  np.testing.assert_allclose(info['learning_rate'], 0.1, rtol=1e-6)
  np.testing.assert_allclose(info['clip_threshold'], 0.5, rtol=1e-6)


def _np_warmup_cosine(k, peak, warm, total, frac):
  if k < warm:
    return peak * k / warm
  c = 0.5 * (1 + np.cos(np.pi * min(k - warm, total - warm) / (total - warm)))
  return peak * (frac + (1 - frac) * c)


def test_make_optimizer_nesterov_with_schedules_matches_hand_formula():
  steps, peak, warm, frac, mu_max, every = 9, 0.1, 3, 0.2, 0.8, 2
  cfg = _cfg(name='nesterov', learning_rate=peak, schedule='warmup_cosine',
             warmup_steps=warm, final_lr_fraction=frac, momentum=mu_max,
             momentum_schedule='sutskever', momentum_schedule_every=every)
  opt = optim.make_optimizer(cfg, total_steps=steps)
  got, state = _run(opt, THETA0, steps)

  lr = lambda k: _np_warmup_cosine(k, peak, warm, steps, frac)
  mu = lambda k: min(1 - 2.0 ** (-1 - np.log2(k // every + 1)), mu_max)
  theta, v = THETA0.copy(), np.zeros(5)
  for k in range(steps):
    g = _np_grad(theta)
    theta = theta + mu(k + 1) * mu(k) * v - (1 + mu(k + 1)) * lr(k) * g
    v = mu(k) * v - lr(k) * g
  np.testing.assert_allclose(got[-1], theta, rtol=RTOL, atol=1e-6)
  # The learning rate of the latest update, k = steps - 1.
  np.testing.assert_allclose(optim.inspect(state)['learning_rate'],
                             lr(steps - 1), rtol=1e-5)


def _np_clip(g, value, norm):
  """Mikolov's element-wise clip to [-value, value], then Pascanu et al.'s
  Algorithm 1 (g <- norm g / |g| when |g| > norm)."""
  g = np.clip(g, -value, value)
  return g * min(1.0, norm / np.linalg.norm(g))


# Every number away from its default, so that a field that is not passed on shows.
_ADAPTIVE = {
    'adam': dict(name='adam', adam_b1=0.7, adam_b2=0.9, adam_eps=0.1),
    'adamw': dict(name='adamw', adam_b1=0.7, adam_b2=0.9, adam_eps=0.1),
    'rmsprop': dict(name='rmsprop', rmsprop_decay=0.8, rmsprop_eps=0.05),
}


@pytest.mark.parametrize('name', sorted(_ADAPTIVE))
def test_make_optimizer_adaptive_methods_match_hand_recursions(name):
  """Adam, AdamW and RMSProp as built from the config (value clip, norm clip,
  weight decay, warm-up + cosine schedule all on) against their recursions
  written out in numpy:

  - Adam (Kingma & Ba 2015, optax's form: eps outside the square root):
    m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    theta -= lr_k m_hat / (sqrt(v_hat) + eps), the hats bias-corrected by
    1 - b^(k+1); weight decay is L2 on the gradient (wd theta added after
    the clips, before the moments).
  - AdamW (Loshchilov & Hutter 2019): the same with the decay decoupled,
    theta -= lr_k (m_hat / (sqrt(v_hat) + eps) + wd theta).
  - RMSProp (optax's default form: eps inside the square root, no bias
    correction, nu_0 = 0): nu = d nu + (1 - d) g^2, theta -= lr_k g / sqrt(nu + eps).

  The gradient is clipped element-wise then by norm (``_np_clip``), as the
  chain's docstring orders them, and lr_k is the schedule at the 0-based
  update count k (0 at k = 0: the first update moves nothing)."""
  steps, peak, warm, frac, wd, value, norm = 7, 0.1, 2, 0.2, 0.05, 1.5, 2.0
  cfg = _cfg(**_ADAPTIVE[name], learning_rate=peak, schedule='warmup_cosine',
             warmup_steps=warm, final_lr_fraction=frac, clip_value=value, clip_norm=norm,
             weight_decay=wd)
  got, _ = _run(optim.make_optimizer(cfg, total_steps=steps), THETA0, steps)

  theta, m, v = THETA0.copy(), np.zeros(5), np.zeros(5)
  want, clipped = [theta.copy()], 0
  for k in range(steps):
    raw = _np_grad(theta)
    g = _np_clip(raw, value, norm)
    clipped += np.abs(raw).max() > value and np.linalg.norm(np.clip(raw, -value, value)) > norm
    lr = _np_warmup_cosine(k, peak, warm, steps, frac)
    if name == 'rmsprop':
      g = g + wd * theta
      m = cfg.rmsprop_decay * m + (1 - cfg.rmsprop_decay) * g ** 2
      theta = theta - lr * g / np.sqrt(m + cfg.rmsprop_eps)
    else:
      if name == 'adam':
        g = g + wd * theta
      b1, b2 = cfg.adam_b1, cfg.adam_b2
      m = b1 * m + (1 - b1) * g
      v = b2 * v + (1 - b2) * g ** 2
      direction = (m / (1 - b1 ** (k + 1))) / (np.sqrt(v / (1 - b2 ** (k + 1))) + cfg.adam_eps)
      if name == 'adamw':
        direction = direction + wd * theta
      theta = theta - lr * direction
    want.append(theta.copy())
  assert clipped >= 3                 # both clips bound at several updates
  np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5, atol=1e-6)


def test_make_optimizer_clips_by_value_then_norm_then_adds_weight_decay():
  """One SGD update with a gradient beyond both thresholds: -lr (clip_norm(
  clip_value(g)) + wd theta), the chain's documented order. The other
  orders (norm before value; decay before the clips) give other updates."""
  lr, value, norm, wd = 0.1, 0.5, 0.6, 0.2
  cfg = _cfg(name='sgd', learning_rate=lr, clip_value=value, clip_norm=norm, weight_decay=wd)
  opt = optim.make_optimizer(cfg, total_steps=10)
  params = _split(THETA0)
  g = np.array([3.0, -0.2, 0.4, -1.5, 0.1])
  u, _ = opt.update(_split(g), opt.init(params), params)
  want = -lr * (_np_clip(g, value, norm) + wd * THETA0)
  np.testing.assert_allclose(_flat(u), want, rtol=1e-5)
  assert np.linalg.norm(np.clip(g, -value, value)) > norm     # both clips bind
  norm_first = np.clip(g * norm / np.linalg.norm(g), -value, value)
  decay_first = _np_clip(g + wd * THETA0, value, norm)
  for other in (-lr * (norm_first + wd * THETA0), -lr * decay_first):
    assert np.abs(other - want).max() > 1e-2


def test_make_optimizer_rejects_bad_names():
  with pytest.raises(ValueError) as err:
    optim.make_optimizer(_cfg(name='adm'), total_steps=10)
  assert str(err.value) == f"optim.name='adm' is not one of {', '.join(optim.OPTIMIZERS)}"
  assert 'sgd, momentum, nesterov, adam' in str(err.value)
  with pytest.raises(ValueError, match='constant, warmup_cosine'):
    optim.make_optimizer(_cfg(schedule='cosine'), total_steps=10)
  with pytest.raises(ValueError, match='constant, sutskever'):
    optim.make_optimizer(_cfg(momentum_schedule='x'), total_steps=10)
  with pytest.raises(ValueError, match='both set'):
    optim.make_optimizer(_cfg(clip_norm=1.0, clip_norm_auto_steps=5),
                         total_steps=10)


def test_jitted_update_does_not_recompile():
  cfg = _cfg(name='nesterov', momentum_schedule='sutskever', clip_norm=1.0,
             schedule='warmup_cosine', warmup_steps=2)
  opt = optim.make_optimizer(cfg, total_steps=10)
  traces = []

  @jax.jit
  def update(grads, state, params):
    traces.append(1)
    return opt.update(grads, state, params)

  params = _split(THETA0)
  state = opt.init(params)
  for i in range(3):
    _, state = update(_split(_grad_with_norm(1.0 + i, i)), state, params)
    # New numbers in the state are data, not structure.
    state = optim.set_hyperparams(state, learning_rate=0.02 * (i + 1))
  assert len(traces) == 1


def test_vmapped_population_equals_separate_runs():
  steps = 6
  base = dict(name='nesterov', momentum_schedule='sutskever',
              momentum_schedule_every=2, schedule='warmup_cosine',
              warmup_steps=2, clip_norm=1.0)
  lrs = np.array([0.01, 0.05, 0.1], np.float32)
  mus = np.array([0.9, 0.6, 0.99], np.float32)
  clips = np.array([1.0, 0.3, 5.0], np.float32)
  thetas = np.stack([THETA0] * 3)  # same start: members differ by numbers
  opt = optim.make_optimizer(_cfg(**base), total_steps=steps)

  def init(params, lr, mu, clip):
    return optim.set_hyperparams(opt.init(params), learning_rate=lr,
                                 momentum=mu, clip_norm=clip)

  @jax.jit
  def step(params, state):
    updates, state = opt.update(jax.grad(_loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  params = jax.vmap(_split)(jnp.asarray(thetas))
  state = jax.vmap(init)(params, lrs, mus, clips)
  for _ in range(steps):
    params, state = jax.vmap(step)(params, state)
  info = optim.inspect(state)
  assert info['learning_rate'].shape == (3,)

  finals = []
  for i in range(3):
    cfg = _cfg(**{**base, 'learning_rate': float(lrs[i]),
                  'momentum': float(mus[i]), 'clip_norm': float(clips[i])})
    got, _ = _run(optim.make_optimizer(cfg, total_steps=steps), thetas[i],
                  steps)
    member = jax.tree.map(lambda x, i=i: x[i], params)
    np.testing.assert_allclose(_flat(member), got[-1], rtol=1e-5, atol=1e-6)
    finals.append(got[-1])
  # The members really differ, so a vmap that ignored them would fail.
  assert min(np.abs(finals[i] - finals[j]).max()
             for i, j in [(0, 1), (0, 2), (1, 2)]) > 1e-3


def test_set_hyperparams_rejects_unknown_names():
  opt = optim.make_optimizer(_cfg(name='sgd'), total_steps=10)
  with pytest.raises(KeyError, match='momentum'):
    optim.set_hyperparams(opt.init(_split(THETA0)), momentum=0.5)


# ---------------------------------------------------------------------------
# schedules


def test_sutskever_momentum_closed_form():
  sched = optim.sutskever_momentum(0.99, every=250)
  for t in [0, 1, 249, 250, 499, 500, 750, 1000, 10_000, 100_000]:
    want = min(1 - 2.0 ** (-1 - np.log2(np.floor(t / 250) + 1)), 0.99)
    np.testing.assert_allclose(float(sched(t)), want, rtol=1e-6)
  np.testing.assert_allclose(float(sched(0)), 0.5)
  np.testing.assert_allclose(float(sched(250)), 0.75)
  np.testing.assert_allclose(float(sched(750)), 0.875)
  assert float(optim.constant(0.3)(17)) == pytest.approx(0.3)


def test_regularizer_weight_closed_form():
  per_epoch = optim.regularizer_weight(0.5, 'inverse_t', unit='epoch',
                                       steps_per_epoch=10)
  for step, t in [(0, 1), (9, 1), (10, 2), (25, 3), (99, 10)]:
    np.testing.assert_allclose(float(per_epoch(step)), 0.5 / t, rtol=1e-6)
  half = optim.regularizer_weight(1.0, 'inverse_2t', unit='step')
  for step in [0, 1, 7]:
    np.testing.assert_allclose(float(half(step)), 1 / (2 * (step + 1)),
                               rtol=1e-6)
  assert float(optim.regularizer_weight(2.0)(123)) == 2.0
  with pytest.raises(ValueError, match='steps_per_epoch'):
    optim.regularizer_weight(1.0, 'inverse_t', unit='epoch')
  with pytest.raises(ValueError, match='constant, inverse_t, inverse_2t'):
    optim.regularizer_weight(1.0, '1/t')


def test_learning_rate_schedules_closed_form():
  peak, warm, total, frac = 0.3, 4, 20, 0.1
  sched = optim.learning_rate_schedule(
      'warmup_cosine', peak, total_steps=total, warmup_steps=warm,
      final_fraction=frac)
  for k in [0, 1, 2, 4, 7, 12, 19, 20, 30]:
    want = _np_warmup_cosine(k, peak, warm, total, frac)
    np.testing.assert_allclose(float(sched(k)), want, rtol=1e-5, atol=1e-7)
  assert float(optim.learning_rate_schedule('constant', 0.3)(50)) == (
      pytest.approx(0.3))
  # The peak may be a traced array (a population member's learning rate).
  traced = jax.jit(lambda p: optim.learning_rate_schedule(
      'warmup_cosine', p, total_steps=total, warmup_steps=warm)(7))(peak)
  np.testing.assert_allclose(float(traced), float(
      optim.learning_rate_schedule('warmup_cosine', peak, total_steps=total,
                                   warmup_steps=warm)(7)), rtol=1e-6)
