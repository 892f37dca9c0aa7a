"""Class-factored softmax over a vocabulary (Mikolov et al. 2011), plus the
full softmax and the bits/perplexity conversions of Bengio et al. 2013, Table 2.

Each word w belongs to one class c(w) (frequency bins from
``datasets.ptb.frequency_classes``: 30 classes for PTB's 10k words in
Bengio et al. 2013, sec. 4.2)::

    log P(w | h) = log P(c(w) | h) + log P(w | c(w), h)
    P(c | h)      = softmax_c(h W_c + b_c)                      W_c [H, C]
    P(w | c, h)   = softmax over the words of c of (h W_w + b_w) W_w [H, V]

so the word softmax is normalised only over the target's class.

Class membership is a table ``words [C, S]`` (S the largest class size) of
each class's word ids, padded and masked (``mask [C, S]``), built from
``class_of_word`` and ``index_in_class``. The table does not need classes to
be contiguous id ranges; with PTB ids sorted by frequency they are, and
``class_start [C]`` is then each class's first id
(``words[c, i] = class_start[c] + i``).

Two computations of the same probabilities (``method``):

- ``'gather'``: for each position, gather its class's columns of W_w
  (``[..., S, H]``) and score only those S words: Mikolov's per-example cost
  O(S H), but it materialises ``[N, S, H]`` for N positions. With PTB's
  frequency bins the rare-word class is large (S = 4,096 of 10,000 words for
  30 classes), so for ``[T, B]`` = 40 x 64 positions and H = 200 that is
  2.1e9 floats (8 GB): use it for small N or balanced classes.
- ``'dense'`` (default): one matmul for all V logits ``[N, V]``, then the
  log-normaliser of the target's class only (a masked logsumexp). Same
  numbers, O(N V H) flops in one large matmul and O(N V) memory: the
  faster choice on an accelerator for V = 10k.

References:
  Mikolov, Kombrink, Burget, Cernocky, Khudanpur 2011, "Extensions of
  recurrent neural network language model", ICASSP (class-based output).
  Goodman 2001, "Classes for fast maximum entropy training", ICASSP.
  Bengio, Boulanger-Lewandowski, Pascanu 2013, "Advances in optimizing
  recurrent networks", ICASSP (sec. 4.2, Table 2).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models import cells as cells_lib

Params = dict
METHODS = ('dense', 'gather', 'full')


def bits_per_symbol(nll_nats):
  """Mean negative log-likelihood in nats -> bits per symbol: ``nll / ln 2``."""
  return nll_nats / math.log(2.0)


def perplexity(nll_nats):
  """Mean negative log-likelihood in nats -> perplexity ``exp(nll)``."""
  return jnp.exp(nll_nats)


@dataclasses.dataclass(frozen=True, eq=False)
class ClassStructure:
  """Static class layout of a vocabulary (numpy, baked into compiled code).

  Attributes:
    class_of_word: int32 [V].
    index_in_class: int32 [V], position of each word in its class's row.
    class_size: int32 [C].
    class_start: int32 [C], smallest word id of each class.
    words: int32 [C, S], ``words[c, index_in_class[w]] = w`` for
      ``c = class_of_word[w]``; padding repeats the class's first word.
    mask: bool [C, S], True on real entries.
    contiguous: whether each class is the id range
      ``class_start[c] .. class_start[c] + class_size[c] - 1`` in order.
  """
  class_of_word: np.ndarray
  index_in_class: np.ndarray
  class_size: np.ndarray
  class_start: np.ndarray
  words: np.ndarray
  mask: np.ndarray
  contiguous: bool

  @property
  def vocab_size(self) -> int:
    return len(self.class_of_word)

  @property
  def num_classes(self) -> int:
    return len(self.class_size)


def class_structure(class_of_word, index_in_class=None) -> ClassStructure:
  """Builds the table of each class's words.

  Args:
    class_of_word: int [V], classes 0..C-1, each non-empty.
    index_in_class: int [V] or None; None orders each class's words by id.
      When given, it must number each class's words 0..size-1.

  Raises:
    ValueError: on an empty class or an inconsistent ``index_in_class``.
  """
  cls = np.asarray(class_of_word, np.int32)
  num_classes = int(cls.max()) + 1
  size = np.bincount(cls, minlength=num_classes).astype(np.int32)
  if np.any(size == 0):
    raise ValueError(f'classes {np.flatnonzero(size == 0).tolist()} have no words')
  if index_in_class is None:
    order = np.argsort(cls, kind='stable')
    idx = np.empty_like(cls)
    idx[order] = np.arange(len(cls)) - np.repeat(np.cumsum(size) - size, size)
  else:
    idx = np.asarray(index_in_class, np.int32)
  if np.any(idx < 0) or np.any(idx >= size[cls]):
    raise ValueError('index_in_class is outside 0..class size - 1')
  start = np.array([np.flatnonzero(cls == c).min() for c in range(num_classes)], np.int32)
  words = np.repeat(start[:, None], int(size.max()), axis=1)
  filled = np.zeros(words.shape, np.int32)
  np.add.at(filled, (cls, idx), 1)
  if np.any(filled[np.arange(words.shape[1])[None, :] < size[:, None]] != 1):
    raise ValueError('index_in_class does not number each class 0..size-1 once')
  words[cls, idx] = np.arange(len(cls), dtype=np.int32)
  mask = np.arange(words.shape[1])[None, :] < size[:, None]
  contiguous = bool(np.all(idx == np.arange(len(cls)) - start[cls]))
  return ClassStructure(cls, idx, size, start, words, mask, contiguous)


def init_params(key, hidden_size: int, vocab_size: int, num_classes: int | None,
                init_scheme: str = 'default') -> Params:
  """``{'w_word': [H, V], 'b_word': [V]}`` plus, when ``num_classes`` is
  given, ``{'w_class': [H, C], 'b_class': [C]}``. Weights from
  ``models.cells.init_weight(init_scheme, 'out', ...)``, biases zero."""
  kw, kc = jax.random.split(key)
  params = {'w_word': cells_lib.init_weight(init_scheme, 'out', kw, (hidden_size, vocab_size)),
            'b_word': jnp.zeros((vocab_size,))}
  if num_classes is not None:
    params['w_class'] = cells_lib.init_weight(init_scheme, 'out', kc, (hidden_size, num_classes))
    params['b_class'] = jnp.zeros((num_classes,))
  return params


def _take(x, index):
  """``x[..., index]`` per position: x [..., K], index int [...] -> [...]."""
  return jnp.take_along_axis(x, index[..., None], axis=-1)[..., 0]


def full_log_prob(params: Params, h: jax.Array, words: jax.Array) -> jax.Array:
  """Full softmax ``log P(w | h) = z_w - logsumexp_v z_v``, ``z = h W_w + b_w``.

  Args:
    h: ``[..., H]``; words: int ``[...]``. Returns ``[...]`` in nats.
  """
  z = h @ params['w_word'] + params['b_word']
  return _take(z, words) - jax.nn.logsumexp(z, axis=-1)


def log_prob(params: Params, structure: ClassStructure, h: jax.Array, words: jax.Array,
             method: str = 'dense') -> jax.Array:
  """Class-factored ``log P(w | h) = log P(c(w) | h) + log P(w | c(w), h)``.

  Args:
    params: ``init_params`` with classes.
    structure: ``class_structure(...)``.
    h: ``[..., H]`` hidden states.
    words: int ``[...]`` target ids.
    method: 'dense' or 'gather' (module docstring); same result.

  Returns:
    ``[...]`` log-probabilities in nats.
  """
  c = jnp.asarray(structure.class_of_word)[words]
  class_lp = _take(jax.nn.log_softmax(h @ params['w_class'] + params['b_class'], -1), c)
  if method == 'dense':
    z = h @ params['w_word'] + params['b_word']                       # [..., V]
    in_class = jnp.asarray(structure.class_of_word) == c[..., None]
    log_norm = jax.nn.logsumexp(jnp.where(in_class, z, -jnp.inf), axis=-1)
    target = _take(z, words)
  elif method == 'gather':
    cols = jnp.asarray(structure.words)[c]                            # [..., S]
    w = params['w_word'].T[cols]                                      # [..., S, H]
    z = jnp.einsum('...h,...sh->...s', h, w) + params['b_word'][cols]
    z = jnp.where(jnp.asarray(structure.mask)[c], z, -jnp.inf)
    log_norm = jax.nn.logsumexp(z, axis=-1)
    target = _take(z, jnp.asarray(structure.index_in_class)[words])
  else:
    raise ValueError(f"method={method!r} is not 'dense' or 'gather'")
  return class_lp + target - log_norm


def all_log_probs(params: Params, structure: ClassStructure, h: jax.Array) -> jax.Array:
  """Factored ``log P(w | h)`` of every word, ``[..., V]`` (evaluation,
  sampling, tests). Costs ``[..., C, S]`` memory for the class normalisers."""
  class_lp = jax.nn.log_softmax(h @ params['w_class'] + params['b_class'], -1)  # [..., C]
  z = h @ params['w_word'] + params['b_word']                                  # [..., V]
  zc = jnp.where(jnp.asarray(structure.mask), z[..., jnp.asarray(structure.words)], -jnp.inf)
  log_norm = jax.nn.logsumexp(zc, axis=-1)                                     # [..., C]
  cls = jnp.asarray(structure.class_of_word)
  return class_lp[..., cls] + z - log_norm[..., cls]


class ClassSoftmaxHead(nn.Module):
  """Hidden states ``[..., H]`` -> ``log P(word)`` ``[...]``.

  ``class_of_word`` (and optional ``index_in_class``) as returned by
  ``datasets.ptb.frequency_classes``; pass tuples (module fields should be
  hashable). ``method``: 'dense' or 'gather' for the factored softmax,
  'full' for a plain softmax over V (no class parameters). Params: one
  dict ``'softmax'`` of ``init_params``' form.

  Methods: ``__call__(hidden, words) -> [...]``, ``all_log_probs(hidden)
  -> [..., V]``.
  """
  vocab_size: int
  class_of_word: Sequence[int]
  index_in_class: Sequence[int] | None = None
  method: str = 'dense'
  init_scheme: str = 'default'

  def structure(self) -> ClassStructure:
    s = class_structure(self.class_of_word, self.index_in_class)
    if s.vocab_size != self.vocab_size:
      raise ValueError(f'class_of_word has {s.vocab_size} words, vocab_size={self.vocab_size}')
    return s

  @nn.compact
  def _params(self, hidden_size: int) -> Params:
    if self.method not in METHODS:
      raise ValueError(f"model.softmax={self.method!r} is not one of {', '.join(METHODS)}")
    num_classes = None if self.method == 'full' else int(max(self.class_of_word)) + 1
    return self.param('softmax', init_params, hidden_size, self.vocab_size, num_classes,
                      self.init_scheme)

  def __call__(self, hidden, words):
    params = self._params(hidden.shape[-1])
    if self.method == 'full':
      return full_log_prob(params, hidden, words)
    return log_prob(params, self.structure(), hidden, words, self.method)

  def all_log_probs(self, hidden):
    params = self._params(hidden.shape[-1])
    if self.method == 'full':
      return jax.nn.log_softmax(hidden @ params['w_word'] + params['b_word'], -1)
    return all_log_probs(params, self.structure(), hidden)
