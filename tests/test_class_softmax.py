"""Class-factored softmax against the full softmax, enumeration and numpy."""

import math

import jax
import numpy as np
import pytest

from models import class_softmax as cs

H, V = 4, 12
UNEVEN = np.array([0] + [1] * 4 + [2] * 7, np.int32)   # sizes 1, 4, 7: padding to 7


def normal(seed, *shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def random_params(seed, num_classes, vocab=V, scale=1.0):
  """Params of init_params' form, with non-zero biases."""
  rng = np.random.default_rng(seed)
  f32 = lambda x: np.asarray(x, np.float32)
  params = {'w_word': f32(rng.normal(size=(H, vocab))),
            'b_word': f32(scale * rng.normal(size=vocab))}
  if num_classes:
    params['w_class'] = f32(rng.normal(size=(H, num_classes)))
    params['b_class'] = f32(scale * rng.normal(size=num_classes))
  return params


def numpy_factored(params, class_of_word, h, w):
  """log P(c(w)) + log P(w | c(w)): each class's softmax over its own words."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  zc = h @ p['w_class'] + p['b_class']
  zw = h @ p['w_word'] + p['b_word']
  c = class_of_word[w]
  members = np.flatnonzero(class_of_word == c)
  return (zc[c] - np.log(np.exp(zc).sum())) + (zw[w] - np.log(np.exp(zw[members]).sum()))


def test_structure_of_uneven_classes():
  s = cs.class_structure(UNEVEN)
  np.testing.assert_array_equal(s.class_size, [1, 4, 7])
  np.testing.assert_array_equal(s.class_start, [0, 1, 5])
  assert s.words.shape == (3, 7) and s.contiguous
  np.testing.assert_array_equal(s.mask.sum(1), [1, 4, 7])
  np.testing.assert_array_equal(s.words[s.class_of_word, s.index_in_class], np.arange(V))
  with pytest.raises(ValueError):
    cs.class_structure(UNEVEN, index_in_class=np.zeros(V, np.int32))
  with pytest.raises(ValueError):
    cs.class_structure(np.array([0, 2, 2]))   # class 1 empty


@pytest.mark.parametrize('method', ['dense', 'gather'])
def test_single_class_equals_full_softmax(method):
  s = cs.class_structure(np.zeros(V, np.int32))
  params = random_params(0, 1)
  h = normal(1, 3, 2, H)
  words = np.arange(6).reshape(3, 2) * 2
  factored, full = jax.jit(lambda p: (cs.log_prob(p, s, h, words, method),
                                      cs.full_log_prob(p, h, words)))(params)
  if method == 'dense':
    np.testing.assert_array_equal(factored, full)
  else:   # another summation order in the matmul
    np.testing.assert_allclose(factored, full, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('class_of_word', [
    np.repeat(np.arange(3), 4).astype(np.int32),            # contiguous, even
    UNEVEN,                                                  # contiguous, uneven
    np.array([2, 0, 1, 1, 2, 0, 2, 2, 1, 2, 0, 2], np.int32),  # interleaved
])
def test_factored_probabilities_sum_to_one_and_match_numpy(class_of_word):
  s = cs.class_structure(class_of_word)
  params = random_params(2, 3, scale=2.0)
  h = normal(3, 2, H)
  hh = np.broadcast_to(h[:, None, :], (2, V, H))
  ww = np.broadcast_to(np.arange(V), (2, V))
  dense, gather, every = jax.jit(lambda p: (
      cs.log_prob(p, s, hh, ww, 'dense'), cs.log_prob(p, s, hh, ww, 'gather'),
      cs.all_log_probs(p, s, h)))(params)
  np.testing.assert_allclose(np.exp(np.asarray(dense, np.float64)).sum(-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(gather, dense, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(every, dense, rtol=1e-5, atol=1e-5)
  expected = [[numpy_factored(params, class_of_word, h[i].astype(np.float64), w)
               for w in range(V)] for i in range(2)]
  np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-5)


def test_hand_computed_example():
  # h = [1]; P(class) = (1/4, 3/4); class 0 = words {0, 1} with P = (1/3, 2/3); class 1 = {2}.
  params = {'w_class': np.array([[0.0, math.log(3.0)]], np.float32),
            'b_class': np.zeros(2, np.float32),
            'w_word': np.array([[0.0, math.log(2.0), 5.0]], np.float32),
            'b_word': np.zeros(3, np.float32)}
  s = cs.class_structure(np.array([0, 0, 1]))
  h = np.ones((3, 1), np.float32)
  got = jax.jit(lambda p: [cs.log_prob(p, s, h, np.arange(3), m) for m in ('dense', 'gather')]
                )(params)
  for lp in got:
    np.testing.assert_allclose(lp, np.log([1 / 12, 2 / 12, 3 / 4]), rtol=1e-6)


def test_gradients_reach_only_the_target_class_words():
  s = cs.class_structure(UNEVEN)
  params = random_params(4, 3)
  h = normal(5, H)
  grads = jax.jit(lambda p: [jax.grad(lambda p: cs.log_prob(p, s, h, np.int32(3), m))(p)
                             for m in ('dense', 'gather')])(params)
  for g in grads:
    touched = np.any(np.asarray(g['w_word']) != 0, axis=0)
    np.testing.assert_array_equal(touched, UNEVEN == 1)
    assert np.all(np.asarray(g['w_class']) != 0)


@pytest.mark.parametrize('method', ['dense', 'gather', 'full'])
def test_head(method):
  cls = tuple(int(c) for c in UNEVEN)
  head = cs.ClassSoftmaxHead(vocab_size=V, class_of_word=cls, method=method)
  h = normal(0, 3, 2, H)
  words = np.arange(6).reshape(3, 2) * 2

  @jax.jit
  def run(key):
    v = head.init(key, h, words)
    return v, head.apply(v, h, words), head.apply(v, h, method='all_log_probs')

  variables, lp, every = run(jax.random.key(1))
  p = variables['params']['softmax']
  assert ('w_class' in p) == (method != 'full')
  assert p['w_word'].shape == (H, V)
  assert lp.shape == (3, 2)
  np.testing.assert_allclose(np.exp(every).sum(-1), 1.0, atol=1e-5)
  picked = np.take_along_axis(np.asarray(every), words[..., None], -1)[..., 0]
  np.testing.assert_allclose(picked, lp, rtol=1e-5, atol=1e-5)


# --- bits per symbol -----------------------------------------------------------

def test_uniform_model_gives_log2_of_alphabet():
  params = random_params(0, None, vocab=50)
  params['w_word'] = np.zeros_like(params['w_word'])
  params['b_word'] = np.full_like(params['b_word'], 0.7)
  h = normal(1, 7, H)
  nll = -jax.jit(cs.full_log_prob)(params, h, np.arange(7) * 7).mean()
  np.testing.assert_allclose(cs.bits_per_symbol(nll), math.log2(50), rtol=1e-6)
  np.testing.assert_allclose(cs.perplexity(nll), 50.0, rtol=1e-5)


def test_unigram_model_gives_the_empirical_entropy():
  rng = np.random.default_rng(0)
  ids = rng.choice(V, size=500, p=np.arange(V, 0, -1) / np.arange(V, 0, -1).sum())
  freq = np.bincount(ids, minlength=V) / len(ids)
  entropy_bits = -np.sum(freq[freq > 0] * np.log2(freq[freq > 0]))
  log_freq = np.log(np.maximum(freq, 1e-30))
  h = normal(1, len(ids), H)
  full = {'w_word': np.zeros((H, V), np.float32), 'b_word': log_freq.astype(np.float32)}
  nll = -jax.jit(cs.full_log_prob)(full, h, ids).mean()
  np.testing.assert_allclose(cs.bits_per_symbol(nll), entropy_bits, rtol=1e-5)
  # The same unigram factored: class prior log P(c) and word bias log p(w).
  s = cs.class_structure(UNEVEN)
  fact = dict(full, w_class=np.zeros((H, 3), np.float32),
              b_class=np.log(np.bincount(UNEVEN, weights=freq)).astype(np.float32))
  nll = -jax.jit(lambda p: cs.log_prob(p, s, h, ids))(fact).mean()
  np.testing.assert_allclose(cs.bits_per_symbol(nll), entropy_bits, rtol=1e-5)
