"""NADE and Bernoulli frame models against enumeration and hand-written numpy."""

import itertools

import jax
import numpy as np
import pytest

from models import nade

D, HN, H = 5, 4, 3
ALL_FRAMES = np.array(list(itertools.product([0, 1], repeat=D)), np.float32)   # [2^D, D]


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def random_nade(seed, scale=1.0):
  """Core NADE params and conditional biases [2, ...], large enough to matter."""
  rng = np.random.default_rng(seed)
  normal = lambda *shape: rng.normal(size=shape).astype(np.float32)
  params = {'w': scale * normal(D, HN), 'v': scale * normal(HN, D)}
  return params, normal(2, D), normal(2, HN)


def numpy_nade_log_prob(params, bv, bh, v):
  """One frame, a plain loop over keys (Larochelle & Murray 2011, eq. 2-3)."""
  w, vw = (np.asarray(params[n], np.float64) for n in ('w', 'v'))
  a = np.asarray(bh, np.float64).copy()
  total = 0.0
  for d in range(len(v)):
    p = sigmoid(bv[d] + sigmoid(a) @ vw[:, d])
    total += np.log(p) if v[d] else np.log(1.0 - p)
    a += v[d] * w[d]
  return total


# The two computations of the teacher-forced logits: a scan over the keys
# (None) and the segments between a frame's notes (K = D: any frame).
COMPUTATIONS = pytest.mark.parametrize('max_notes', [None, D], ids=['scan', 'segments'])


@COMPUTATIONS
@pytest.mark.parametrize('seed', [0, 1])
def test_nade_normalised_over_all_frames(seed, max_notes):
  params, bv, bh = random_nade(seed, scale=2.0)
  # [2^D, 1, D] against biases [2, D]: broadcasting gives [2^D, 2].
  lp = jax.jit(nade.nade_log_prob, static_argnums=4)(params, bv, bh, ALL_FRAMES[:, None, :],
                                                    max_notes)
  assert lp.shape == (2 ** D, 2)
  np.testing.assert_allclose(np.exp(np.asarray(lp, np.float64)).sum(0), 1.0, atol=1e-5)


@COMPUTATIONS
def test_nade_matches_per_key_loop(max_notes):
  params, bv, bh = random_nade(2, scale=1.5)
  frames = ALL_FRAMES[[0, 5, 17, 31]]
  lp = np.asarray(jax.jit(nade.nade_log_prob, static_argnums=4)(params, bv[0], bh[0], frames,
                                                               max_notes))
  expected = [numpy_nade_log_prob(params, np.asarray(bv[0]), np.asarray(bh[0]), f) for f in frames]
  np.testing.assert_allclose(lp, expected, rtol=1e-5, atol=1e-5)


def test_nade_samples_follow_the_distribution():
  params, bv, bh = random_nade(3)
  n = 20000
  samples = jax.jit(nade.nade_sample)(params, np.broadcast_to(bv[0], (n, D)), bh[0],
                                      jax.random.key(7))
  assert samples.shape == (n, D)
  assert set(np.unique(np.asarray(samples))) <= {0.0, 1.0}
  codes = np.asarray(samples, np.int64) @ (2 ** np.arange(D)[::-1])
  observed = np.bincount(codes, minlength=2 ** D)
  expected = n * np.exp(np.asarray(jax.jit(nade.nade_log_prob)(params, bv[0], bh[0], ALL_FRAMES),
                                   np.float64))
  chi2 = ((observed - expected) ** 2 / expected).sum()
  assert chi2 < 61.1   # 31 degrees of freedom, p = 0.001


def central_differences(loss, base, eps=1e-6):
  """d loss / d base[name] [index] by central differences, float64; ``base``:
  name -> array, ``loss(dict of the same names)``."""
  grads = {}
  for name, value in base.items():
    grads[name] = np.zeros(np.shape(value))
    for index in np.ndindex(grads[name].shape):
      plus, minus = ({k: np.array(x, np.float64) for k, x in base.items()} for _ in range(2))
      plus[name][index] += eps
      minus[name][index] -= eps
      grads[name][index] = (loss(plus) - loss(minus)) / (2 * eps)
  return grads


def test_nade_gradients_through_broadcast_biases_match_finite_differences():
  """-log p of every frame at two settings of the biases at once (frames
  [2^D, 1, D] against biases [2, D] and [2, HN]): each bias setting's
  gradient sums its own frames only; against central differences of the
  float64 per-key loop."""
  params, bv, bh = random_nade(4)

  def loss(p, bv, bh):
    return -nade.nade_log_prob(p, bv, bh, ALL_FRAMES[:, None, :]).sum()

  grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, bv, bh)
  ours = {'w': grads[0]['w'], 'v': grads[0]['v'], 'bv': grads[1], 'bh': grads[2]}
  fd = central_differences(
      lambda q: -sum(numpy_nade_log_prob(q, q['bv'][c], q['bh'][c], f)
                     for c in range(2) for f in ALL_FRAMES),
      {'w': params['w'], 'v': params['v'], 'bv': bv, 'bh': bh})
  for name, want in fd.items():
    np.testing.assert_allclose(ours[name], want, rtol=1e-3, atol=1e-4, err_msg=name)


@COMPUTATIONS
def test_nade_gradients_match_finite_differences_of_the_numpy_loop(max_notes):
  """d(-log p)/d(W, V, b_v, b_h) of a few frames: JAX's gradient through the
  scan over keys, or the segments, against central differences of the
  float64 per-key loop."""
  params, bv, bh = random_nade(5)
  frames = ALL_FRAMES[[3, 12, 22, 29, 31, 0]]

  def numpy_loss(p, bv, bh):
    return -sum(numpy_nade_log_prob(p, bv, bh, f) for f in frames)

  grads = jax.jit(jax.grad(
      lambda p, bv, bh: -nade.nade_log_prob(p, bv, bh, frames, max_notes).sum(),
      argnums=(0, 1, 2)))(params, bv[0], bh[0])
  ours = {'w': grads[0]['w'], 'v': grads[0]['v'], 'bv': grads[1], 'bh': grads[2]}
  fd = central_differences(lambda q: numpy_loss(q, q['bv'], q['bh']),
                           {'w': params['w'], 'v': params['v'], 'bv': bv[0], 'bh': bh[0]})
  for name, want in fd.items():
    np.testing.assert_allclose(ours[name], want, rtol=1e-3, atol=1e-4, err_msg=name)


def test_segments_at_fewer_notes_than_keys_and_a_frame_with_too_many():
  """88 keys, at most 6 notes a frame (empty frames, the top and bottom key,
  neighbours): the segments' log-probabilities equal the per-key loop; a
  frame with 7 notes is NaN, never a wrong number."""
  keys, hn = 88, 7
  rng = np.random.default_rng(8)
  params = {'w': rng.normal(size=(keys, hn)).astype(np.float32),
            'v': rng.normal(size=(hn, keys)).astype(np.float32)}
  bv, bh = rng.normal(size=keys).astype(np.float32), rng.normal(size=hn).astype(np.float32)
  frames = np.zeros((6, keys), np.float32)
  frames[1, [0, 87]] = 1
  frames[2, [40, 41, 42, 43, 44, 45]] = 1
  frames[3, rng.choice(keys, 6, replace=False)] = 1
  frames[4, 87] = 1
  frames[5, rng.choice(keys, 7, replace=False)] = 1       # one note too many
  lp = np.asarray(jax.jit(nade.nade_log_prob, static_argnums=4)(params, bv, bh, frames, 6))
  expected = [numpy_nade_log_prob(params, bv, bh, f) for f in frames[:5]]
  np.testing.assert_allclose(lp[:5], expected, rtol=2e-5, atol=2e-4)
  assert np.isnan(lp[5])


T, B = 3, 2


def test_nade_head_matches_pure_functions():
  hidden = np.random.default_rng(0).normal(size=(T, B, H)).astype(np.float32)
  frames = ALL_FRAMES[np.arange(T * B).reshape(T, B) * 5 % 32]
  head = nade.NADEHead(n_hidden=HN, n_visible=D)

  @jax.jit
  def run(key):
    variables = head.init(key, hidden, frames)
    grads = jax.grad(lambda v: head.apply(v, hidden, frames).sum())(variables)
    return (variables, head.apply(variables, hidden, frames),
            head.apply(variables, hidden, key, method='sample'), grads)

  variables, lp, sample, grads = run(jax.random.key(1))
  p = jax.tree.map(np.asarray, variables['params']['nade'])
  assert p['w'].shape == (D, HN) and p['w_hv'].shape == (H, D) and p['w_hh'].shape == (H, HN)
  assert lp.shape == (T, B)
  h = hidden
  for t, b in itertools.product(range(T), range(B)):
    bv = p['b_v'] + h[t, b] @ p['w_hv']
    bh = p['b_h'] + h[t, b] @ p['w_hh']
    np.testing.assert_allclose(lp[t, b], numpy_nade_log_prob(p, bv, bh, frames[t, b]),
                               rtol=1e-5, atol=1e-5)
  assert sample.shape == (T, B, D)
  # the gradient of the summed log-probability, every parameter (W_hv and
  # W_hh through the conditional biases) against central differences
  fd = central_differences(
      lambda q: sum(numpy_nade_log_prob(q, q['b_v'] + h[t, b] @ q['w_hv'],
                                        q['b_h'] + h[t, b] @ q['w_hh'], frames[t, b])
                    for t, b in itertools.product(range(T), range(B))), p)
  ours = grads['params']['nade']
  assert ours.keys() == fd.keys()
  for name, want in fd.items():
    np.testing.assert_allclose(ours[name], want, rtol=1e-3, atol=1e-4, err_msg=name)


def test_bernoulli_head_matches_numpy():
  rng = np.random.default_rng(0)
  hidden = rng.normal(size=(T, B, H)).astype(np.float32)
  frames = (rng.uniform(size=(T, B, 88)) < 0.3).astype(np.uint8)
  head = nade.BernoulliHead()
  shapes = jax.eval_shape(head.init, jax.random.key(2), hidden, frames)
  assert shapes['params']['bernoulli']['w'].shape == (H, 88)
  p = {'w': rng.normal(size=(H, 88)).astype(np.float32),
       'b': rng.normal(size=88).astype(np.float32)}
  variables = {'params': {'bernoulli': p}}
  prob = sigmoid(np.asarray(hidden, np.float64) @ p['w'] + p['b'])
  y = np.asarray(frames, np.float64)
  expected = np.sum(y * np.log(prob) + (1 - y) * np.log(1 - prob), -1)

  @jax.jit
  def run(variables):
    return (head.apply(variables, hidden, frames), head.apply(variables, hidden, method='probs'),
            head.apply(variables, hidden, jax.random.key(3), method='sample'))

  lp, probs, sample = run(variables)
  np.testing.assert_allclose(lp, expected, rtol=1e-5)
  np.testing.assert_allclose(probs, prob, rtol=1e-5)
  assert sample.shape == (T, B, 88)


# --- accuracy ------------------------------------------------------------------

def numpy_accuracy(pred, target, empty_value=1.0):
  tp = np.sum(pred * target)
  denom = tp + np.sum(pred * (1 - target)) + np.sum((1 - pred) * target)
  return tp / denom if denom else empty_value


def test_frame_accuracy_by_hand():
  pred = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0]])
  target = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]])
  # TP, FP, FN = (1, 1, 1), (0, 0, 0), (0, 1, 0), (2, 0, 0)
  accuracy = jax.jit(nade.frame_accuracy)
  np.testing.assert_allclose(accuracy(pred, target), [1 / 3, 1.0, 0.0, 1.0])
  np.testing.assert_allclose(accuracy(pred, target, empty_value=0.0)[1], 0.0)


TARGETS = ALL_FRAMES[[0, 1, 6, 21, 31]]   # includes an empty frame


def test_bernoulli_expected_accuracy_exact_against_enumeration():
  probs = np.random.default_rng(0).uniform(size=(len(TARGETS), D))
  exact = jax.jit(nade.bernoulli_expected_frame_accuracy)(probs.astype(np.float32), TARGETS)
  for i, y in enumerate(TARGETS):
    weights = np.prod(np.where(ALL_FRAMES, probs[i], 1 - probs[i]), -1)
    brute = sum(wt * numpy_accuracy(x, y) for wt, x in zip(weights, ALL_FRAMES))
    np.testing.assert_allclose(exact[i], brute, rtol=1e-5, atol=1e-6)


def test_mc_accuracy_matches_exact_bernoulli_and_nade_enumeration():
  probs = np.random.default_rng(1).uniform(size=(len(TARGETS), D)).astype(np.float32)
  targets = TARGETS
  n = 4000
  tol = 4 * 0.5 / np.sqrt(n)

  @jax.jit
  def bernoulli(key):
    return (nade.mc_frame_accuracy(lambda k: jax.random.bernoulli(k, probs), targets, key, n,
                                   batch_size=n),
            nade.bernoulli_expected_frame_accuracy(probs, targets))

  mc, exact = bernoulli(jax.random.key(2))
  np.testing.assert_allclose(mc, exact, atol=tol)

  params, bv, bh = random_nade(5)
  bv = np.broadcast_to(bv[0], (len(TARGETS), D))

  @jax.jit
  def nade_mc(key):
    return (nade.mc_frame_accuracy(lambda k: nade.nade_sample(params, bv, bh[0], k), targets,
                                   key, n, batch_size=n),
            nade.nade_log_prob(params, bv[0], bh[0], ALL_FRAMES))

  mc, lp = nade_mc(jax.random.key(3))
  p_all = np.exp(np.asarray(lp, np.float64))
  brute = [sum(p * numpy_accuracy(x, y) for p, x in zip(p_all, ALL_FRAMES)) for y in TARGETS]
  np.testing.assert_allclose(mc, brute, atol=tol)
