"""The trainer's combined gradient (``train.Trainer.grads``) against numpy.

What the trainer differentiates, written out from the papers and the
documented conventions, on a tiny sigmoid or rectifier RNN (3 units, 6
steps, 2 sequences, the music task's 88 Bernoulli outputs, a carried state):

- the cost: the mean Bernoulli NLL per scored step (``train.loss_reduction=
  'mean'``), or its sum over the window averaged over the sequences
  ('sum_over_time');
- plus alpha_t times the "immediate" gradient of Omega with respect to W_rec
  (Pascanu et al. 2013, sec. 3.3, eq. 9-10; ``optim.omega``: ratio of
  squared norms, the mean over the (step, sequence) pairs whose error signal
  is not zero), with alpha_t = alpha / t and t as ``optim.regularizer_weight``
  documents it: the 1-based epoch (the supplementary's "t measures the number
  of epochs", the music and ptb_char configs) or the 1-based update;
- plus the L1 penalty on the hidden units' outputs (Bengio et al. 2013, sec.
  3.4), summed over units and averaged over the steps up to each sequence's
  last scored step (``train.valid_steps``: padding after it does not count,
  an unscored step before it does).

The reference is plain numpy in float64: the forward pass as a loop, every
derivative by central finite differences (of the cost for the parameters,
of the cost for dE/dx_k through a kick to the state, of Omega with x_k,
dE/dx_{k+1} and the slopes held fixed for its immediate gradient).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import music
from tests.test_music_train import toy_corpus
from training import train

T, B, H, K = 6, 2, 3, 88
EPS = 1e-6
# Column 0 is scored from step 1 on (step 0 unscored, but before its last scored
# step: it counts for L1); column 1 is scored at steps 0, 1 and 3 and padded after
# step 3: steps 4 and 5 count for nothing.
MASK = np.array([[0, 1], [1, 1], [1, 0], [1, 1], [1, 0], [1, 0]], np.float64)


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


ACT = {'sigmoid': (sigmoid, lambda a: sigmoid(a) * (1.0 - sigmoid(a))),
       'relu': (lambda a: np.maximum(a, 0.0), lambda a: (a > 0).astype(np.float64))}


def np_valid(mask):
  """1 at each sequence's steps up to its last scored one (padding after it: 0)."""
  valid = np.zeros_like(mask)
  for b in range(mask.shape[1]):
    valid[:np.flatnonzero(mask[:, b]).max() + 1, b] = 1.0
  return valid


def np_states(p, u, carry, activation, kick=None):
  """x_1..x_T [T, B, H] of h_t = s(h_{t-1} W_rec + u_t W_in + b) from ``carry``;
  ``kick=(k, delta)`` adds delta to state k (0-based) before the recurrence goes on."""
  s, _ = ACT[activation]
  x, out = carry, []
  for t in range(len(u)):
    x = s(x @ p['w_rec'] + u[t] @ p['w_in'] + p['b'])
    if kick is not None and kick[0] == t:
      x = x + kick[1]
    out.append(x)
  return np.stack(out)


def np_cost(p, batch, carry, activation, reduction='mean', l1_weight=0.0, kick=None):
  """What is differentiated: the cost, plus l1_weight times the L1 term."""
  h = np_states(p, batch['inputs'], carry, activation, kick)
  logits = h @ p['w_out'] + p['b_out']
  y, mask = batch['targets'], batch['mask']
  per_step = np.sum(np.logaddexp(0.0, logits) - y * logits, axis=-1)   # -log p(frame)
  if reduction == 'mean':
    cost = np.sum(per_step * mask) / np.sum(mask)
  else:
    cost = np.sum(per_step * mask) / mask.shape[1]
  if l1_weight:
    valid = np_valid(mask)
    cost = cost + l1_weight * np.sum(np.abs(h) * valid[..., None]) / np.sum(valid)
  return cost


def np_param_grads(p, f, names=None):
  """Central differences of ``f(p)`` with respect to every parameter (or ``names``)."""
  grads = {}
  for name in names or p:
    value = p[name]
    g = np.zeros_like(value)
    for i in np.ndindex(value.shape):
      hi, lo = dict(p), dict(p)
      hi[name], lo[name] = value.copy(), value.copy()
      hi[name][i] += EPS
      lo[name][i] -= EPS
      g[i] = (f(hi) - f(lo)) / (2 * EPS)
    grads[name] = g
  return grads


def np_state_grads(p, batch, carry, activation):
  """dE/dx_k [T, B, H] by kicks to the states."""
  g = np.zeros((T, B, H))
  for k in range(T):
    for b in range(B):
      for i in range(H):
        d = np.zeros((B, H))
        d[b, i] = EPS
        g[k, b, i] = (np_cost(p, batch, carry, activation, kick=(k, d)) -
                      np_cost(p, batch, carry, activation, kick=(k, -d))) / (2 * EPS)
  return g


def np_omega(w_rec, p, batch, carry, xs, g, activation):
  """Mean over the (k, b) with |dE/dx_k|^2 >= 1e-20 of
  (|dE/dx_k dx_k/dx_{k-1}|^2 / |dE/dx_k|^2 - 1)^2, where dx_k/dx_{k-1} =
  diag(s'(a_k)) W_rec^T with the slope s'(a_k) taken at the parameters' own W_rec."""
  _, ds = ACT[activation]
  prev = np.concatenate([carry[None], xs[:-1]])
  total, count = 0.0, 0
  for k in range(T):
    for b in range(B):
      gk = g[k, b]
      if gk @ gk < 1e-20:
        continue
      a = prev[k, b] @ p['w_rec'] + batch['inputs'][k, b] @ p['w_in'] + p['b']
      carried = w_rec @ (gk * ds(a))
      total += (carried @ carried / (gk @ gk) - 1.0) ** 2
      count += 1
  return total / count


def data(seed, activation):
  """Parameters (float64), a batch with padding, and a carried state."""
  rng = np.random.default_rng(seed)
  p = dict(w_in=0.3 * rng.normal(size=(K, H)), w_rec=1.5 * rng.normal(size=(H, H)),
           b=0.3 * rng.normal(size=H), w_out=0.5 * rng.normal(size=(H, K)),
           b_out=0.5 * rng.normal(size=K))
  if activation == 'relu':
    p['w_rec'] *= 0.3
    p['b'] = np.abs(p['b']) + 0.2        # most units on
  batch = dict(inputs=(rng.random((T, B, K)) < 0.1).astype(np.float64),   # padding too
               targets=(rng.random((T, B, K)) < 0.1).astype(np.float64), mask=MASK)
  carry = rng.uniform(0.1, 0.9, size=(B, H))
  return p, batch, carry


def trainer_and_state(p, carry, activation, **reg):
  """The music config's trainer (3 units, windows of T frames, B pieces; the
  toy corpus's 7 batches an epoch) and a state holding ``p`` and ``carry``."""
  config = music.get_config('method=sgd-cr,smoke')
  with config.unlocked():
    config.model.hidden_size = H
    config.model.activation = activation
    config.task.chunk = T
    config.task.batch_size = B
    for field, value in reg.items():
      section, name = field.split('.')
      config[section][name] = value
  trainer = train.build(config, data=toy_corpus(0, [13, 20, 9]))
  hp = dict(omega_alpha=config.reg.omega_alpha, l1_weight=config.reg.l1_weight, bptt_clip=0.0)
  state = trainer.init(jax.random.key(0), hp, {})
  params = {'layer_0': {k: jnp.asarray(p[k], jnp.float32) for k in ('w_in', 'w_rec', 'b')},
            'w_out': jnp.asarray(p['w_out'], jnp.float32),
            'b_out': jnp.asarray(p['b_out'], jnp.float32)}
  assert jax.tree.structure(params) == jax.tree.structure(state.params)
  return trainer, state.replace(params=params, carry=[jnp.asarray(carry, jnp.float32)])


def as_batch(batch):
  """The numpy batch as the trainer takes it: a window that goes on from the carry."""
  return {k: jnp.asarray(v, jnp.float32) for k, v in batch.items()} | {
      'reset': jnp.asarray(False)}


def flat(g):
  """The trainer's gradient as the reference's dict of float64 arrays."""
  return {**{k: np.asarray(v, np.float64) for k, v in g['layer_0'].items()},
          'w_out': np.asarray(g['w_out'], np.float64), 'b_out': np.asarray(g['b_out'], np.float64)}


def close(got, want):
  """Float32 against float64 finite differences: within 2e-4 relative, and
  2e-5 of the parameter's largest entry absolute."""
  return np.allclose(got, want, rtol=2e-4, atol=2e-5 * np.max(np.abs(want)))


def assert_grads_close(got, want, what):
  for name in want:
    assert close(got[name], want[name]), (what, name, got[name], want[name])


@pytest.fixture(scope='module')
def omega_reference():
  """The cost's gradient and Omega's immediate gradient (W_rec only), in numpy."""
  p, batch, carry = data(0, 'sigmoid')
  g_cost = np_param_grads(p, lambda q: np_cost(q, batch, carry, 'sigmoid'))
  g_states = np_state_grads(p, batch, carry, 'sigmoid')
  # the padding's error signals are zero: 10 of the 12 (step, sequence) pairs count
  assert np.sum(np.sum(g_states ** 2, -1) >= 1e-20) == 10
  xs = np_states(p, batch['inputs'], carry, 'sigmoid')
  g_omega = np.zeros((H, H))
  for i in np.ndindex(H, H):
    d = np.zeros((H, H))
    d[i] = EPS
    g_omega[i] = (np_omega(p['w_rec'] + d, p, batch, carry, xs, g_states, 'sigmoid') -
                  np_omega(p['w_rec'] - d, p, batch, carry, xs, g_states, 'sigmoid')) / (2 * EPS)
  omega = np_omega(p['w_rec'], p, batch, carry, xs, g_states, 'sigmoid')
  return p, batch, carry, g_cost, g_omega, omega


@pytest.mark.parametrize('unit,accumulate', [('epoch', 1), ('epoch', 2), ('step', 2)])
def test_cost_plus_scheduled_omega_gradient_against_numpy(omega_reference, unit, accumulate):
  """Music's sgd-cr setting (alpha 0.5, ``inverse_t``): the gradient is the
  cost's plus alpha / t times Omega's immediate gradient, t the 1-based
  epoch (unit 'epoch': epochs count batches, micro-batches with
  accumulation) or the 1-based update (unit 'step': k micro-batches an
  update), at steps on both sides of the first epoch's end and in the third."""
  p, batch, carry, g_cost, g_omega, omega = omega_reference
  alpha = 0.5
  trainer, state = trainer_and_state(p, carry, 'sigmoid', **{
      'reg.omega_alpha': alpha, 'reg.omega_schedule': 'inverse_t',
      'reg.omega_schedule_unit': unit, 'optim.accumulate_steps': accumulate})
  per_epoch = trainer.task.steps_per_epoch
  assert per_epoch == 7
  grads = jax.jit(trainer.grads)
  for step in (per_epoch - 1, per_epoch, per_epoch + 1, 2 * per_epoch + 3):
    t = step // per_epoch + 1 if unit == 'epoch' else step // accumulate + 1
    g, out = grads(state.replace(step=jnp.asarray(step, jnp.int32)), as_batch(batch),
                   jax.random.key(1))
    want = dict(g_cost, w_rec=g_cost['w_rec'] + alpha / t * g_omega)
    assert_grads_close(flat(g), want, f'step {step} (t = {t})')
    np.testing.assert_allclose(out['omega'], omega, rtol=1e-4)
    np.testing.assert_allclose(out['loss'], np_cost(p, batch, carry, 'sigmoid'), rtol=1e-5)
    # Omega's part is large enough for the check to tell t from t - 1 and t + 1.
    for other in (t - 1, t + 1):
      wrong = g_cost['w_rec'] + (alpha / other if other else 0.0) * g_omega
      assert not close(wrong, want['w_rec']), (step, t, other)


@pytest.mark.parametrize('reduction', ['mean', 'sum_over_time'])
def test_cost_plus_l1_on_the_valid_steps_against_numpy(reduction):
  """Bengio et al.'s rectifiers with an L1 penalty (``reg.l1_weight``): the
  gradient of the cost plus l1_weight times sum |h| over the units, averaged
  over the steps up to each sequence's last scored step. The same penalty
  over every step, or over the scored steps only, gives another gradient,
  which the check tells apart."""
  p, batch, carry = data(5, 'relu')   # units on 58-67% of the steps, |a| >= 0.03
  l1 = 0.5
  trainer, state = trainer_and_state(p, carry, 'relu', **{
      'reg.omega_alpha': 0.0, 'reg.l1_weight': l1, 'train.loss_reduction': reduction})
  assert trainer.use_l1 and not trainer.use_omega
  g, out = jax.jit(trainer.grads)(state, as_batch(batch), jax.random.key(1))
  want = np_param_grads(p, lambda q: np_cost(q, batch, carry, 'relu', reduction, l1))
  assert_grads_close(flat(g), want, 'cost + L1')
  h = np_states(p, batch['inputs'], carry, 'relu')
  valid = np_valid(MASK)
  np.testing.assert_allclose(out['l1'], np.sum(np.abs(h) * valid[..., None]) / np.sum(valid),
                             rtol=1e-5)
  np.testing.assert_allclose(out['loss'], np_cost(p, batch, carry, 'relu'), rtol=1e-5)

  # The other normalisations are far from it (so the check above can tell them apart).
  def l1_over(weights):
    return lambda q: (np_cost(q, batch, carry, 'relu', reduction) + l1 * np.sum(
        np.abs(np_states(q, batch['inputs'], carry, 'relu')) * weights[..., None])
        / np.sum(weights))
  for weights in (np.ones_like(MASK), MASK):
    other = np_param_grads(p, l1_over(weights), names=['w_rec', 'b'])
    assert not (close(other['w_rec'], want['w_rec']) and close(other['b'], want['b']))
