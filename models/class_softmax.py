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

Three computations of the same probabilities (``method``):

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
- ``'sorted'``: Mikolov's cost without the padding (``class_log_normalizer``).
  The N positions are sorted by their target's class; each class's
  positions are read in tiles of ``tile`` rows and scored against that
  class's words only (a contiguous block of the class-ordered W_w), in a
  loop whose trip count is the class's tile count in this batch. Flops
  sum_c ceil(n_c / tile) tile S_c H, about N V H / C plus tile V H with
  classes of equal token share (PTB, C = 30, N = 1,280: ~1/15 of 'dense';
  measured on one CPU core with H = 200, forward and backward take 0.06-0.09 s
  against 0.53 s for 'dense' and 0.55 s for the full softmax),
  memory O(tile S + N H). The tile follows the positions per class
  (``tile_rows``): at the paper's one window of 40 words an update, a
  tile of 32 rows scored some 30 times the rows needed. Its backward pass
  is written by hand (``jax.custom_vjp``) with the same tiles, into one
  gradient buffer. With both (2026-12-02, AMD EPYC, one core, the other
  jobs paused, ``scripts/ptb_word_throughput.py --batch=1``), a whole
  training update of the 200-unit word model at B = 1 takes 11-12 ms
  instead of 20, and a validation pass 1.7-1.9 s instead of 5-7; at
  B = 32 it is unchanged (50 ms). Classes of at most
  ``SMALL_CLASS`` words are scored densely instead (one small matmul, no
  loop). The target's logit and the dense classes are computed inside the
  same hand-written VJP, so the [H, V] gradient is one buffer (a gathered
  target column or a dense block differentiated apart each cost a pass over
  the whole matrix): with that and the transposed product written as
  ``(w_c @ p.T).T``, an update of the paper's model takes 24% less time
  (2026-12-04, Intel Xeon, the trainer's vmapped chunk side by side on a
  core shared with a run: 29.3 ms against 38.5; a run's one member, chunk
  not vmapped, gained with ``optim.skip_large_updates`` made a select: 35
  ms against 48-50). What ``models.rnn`` trains with.

References:
  Mikolov, Kombrink, Burget, Cernocky, Khudanpur 2011, "Extensions of
  recurrent neural network language model", ICASSP (class-based output).
  Goodman 2001, "Classes for fast maximum entropy training", ICASSP.
  Bengio, Boulanger-Lewandowski, Pascanu 2013, "Advances in optimizing
  recurrent networks", ICASSP (sec. 4.2, Table 2).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models import cells as cells_lib

Params = dict
METHODS = ('dense', 'gather', 'sorted', 'full')
TILE = 32            # most rows of a tile of positions in method 'sorted' (tile_rows)
MIN_TILE = 4         # fewest
SMALL_CLASS = 64     # method 'sorted' scores classes of at most this many words densely


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


def _sorted_in_class_nll(w, b, structure: ClassStructure, h, words, c, vmap_one: bool = False):
  """Method 'sorted': ``-log P(w | c(w), h)`` of words [...] (classes c) at h [..., H].

  The words are reordered (once, statically) so that the classes of at
  most ``SMALL_CLASS`` words (PTB: the 17 most frequent classes, 128 words)
  come first, scored densely for every position (one [N, 128] product,
  cheaper than a loop per class), and each class is one block.

  ``vmap_one``: compute it as ``jax.vmap`` over a leading axis of one. Same
  numbers; for a caller that is not itself vmapped (one member, or members
  under ``lax.map``) XLA:CPU compiles that program about 1.24x faster for a
  whole PTB word update (18.4 against 22.8 ms on a shared core, jaxlib 0.10,
  ``scripts/ptb_word_layouts.py``; 1.5x in a run, RESULTS.md), and inside a
  vmap over members 11% slower, so the trainer asks for it only with
  ``population.layout='map'``.
  """
  sizes = structure.class_size
  small = sizes <= SMALL_CLASS
  classes = np.concatenate([np.flatnonzero(small), np.flatnonzero(~small)])   # new class order
  rank = np.empty_like(classes)
  rank[classes] = np.arange(len(classes))
  order = np.concatenate([structure.words[k, :sizes[k]] for k in classes])
  if not np.array_equal(order, np.arange(len(order))):
    w, b = w[:, order], b[order]
  def nll(h, w, b, cls, target):
    return class_log_normalizer(h, w, b, cls, sizes[classes], num_dense=int(small.sum()),
                                target=target)
  args = (h.reshape(-1, h.shape[-1]), w, b, jnp.asarray(rank)[c].reshape(-1),
          jnp.asarray(structure.index_in_class)[words].reshape(-1))
  if vmap_one:
    return jax.vmap(nll)(*(x[None] for x in args))[0].reshape(c.shape)
  return nll(*args).reshape(c.shape)


def class_log_normalizer(h: jax.Array, w: jax.Array, b: jax.Array, cls: jax.Array,
                         sizes: Sequence[int], tile: int | None = None, offset: int = 0,
                         target: jax.Array | None = None, num_dense: int = 0) -> jax.Array:
  """``log sum_{v in class cls[n]} exp(h[n] w[:, v] + b[v])`` for every position,
  less the target's logit when ``target`` is given.

  Method 'sorted' of the module docstring: positions sorted by class, each
  class's positions scored in tiles against its own block of words only;
  the first ``num_dense`` classes (small ones) instead in one product of
  every position with all their words, masked to each position's class.

  Args:
    h: [N, H] hidden states.
    w: [H, V] word weights in class order: class c owns the columns
      ``offset + sum(sizes[:c]) .. offset + sum(sizes[:c + 1]) - 1``; the
      columns before ``offset`` are not read (their gradient is 0).
    b: [V] word biases, same order.
    cls: int [N], the class of each position's target; C marks a position
      to skip (its result is 0 and its gradient 0).
    sizes: the C class sizes (static).
    tile: rows per tile; None: ``tile_rows(N, C - num_dense)``.
    offset: the first column of class 0 (static).
    target: int [N] or None: each position's target word as its index in
      its class's block; given, the result is ``-log P(target | class, h)``.
    num_dense: how many of the first classes are scored densely (static).

  Returns:
    [N] log-normalisers, or in-class negative log-probabilities (nats).
    Differentiable in h, w, b (hand-written VJP), in one [H, V] gradient
    buffer: a gradient of the dense classes' block made apart from it would
    be padded to [H, V] and added, a pass over the whole matrix per call.
  """
  num_dense = int(num_dense)
  if not 0 <= num_dense <= len(sizes):
    raise ValueError(f'num_dense={num_dense} is not in 0..{len(sizes)}')
  tile = tile_rows(h.shape[0], len(sizes) - num_dense) if tile is None else tile
  run = _class_log_normalizer(tuple(int(s) for s in sizes), int(tile), int(offset),
                              target is not None, num_dense)
  return run(h, w, b, cls, jnp.zeros(cls.shape, jnp.int32) if target is None else target)


def tile_rows(positions: int, num_classes: int) -> int:
  """Rows per tile of method 'sorted': about the positions a class gets when
  they spread evenly over the classes (a power of two in [MIN_TILE, TILE]).

  A class with any position costs at least one tile of its S words (the
  tile's padding rows are scored too), so at one window of 40 words and 30
  classes a tile of 32 scores some 30 times the rows it needs."""
  share = -(-positions // max(num_classes, 1))
  return int(min(TILE, max(MIN_TILE, 1 << max(share - 1, 0).bit_length())))


@functools.lru_cache(maxsize=None)
def _class_log_normalizer(sizes: tuple[int, ...], tile: int, offset: int, has_target: bool,
                          num_dense: int):
  """The custom-VJP normaliser for one static class layout (less each
  target's logit when ``has_target``; the first ``num_dense`` classes
  scored densely).

  The loops read each class's block of ``w`` with a static slice inside
  their bodies and write its gradient into one [H, V] buffer carried through
  all of them (updated in place): a block sliced outside a loop, or a
  gradient per class joined at the end, is a copy of the whole matrix per
  call, which at one window an update cost more than the products. For the
  same reason the product with the block's transpose is written as
  ``(w_c @ p.T).T``: ``p @ w_c.T`` made XLA copy the block transposed."""
  starts = (offset + np.concatenate([[0], np.cumsum(sizes)[:-1]])).astype(int)
  num_classes = len(sizes)
  dense_words = int(sum(sizes[:num_dense]))
  dense_class = np.repeat(np.arange(num_dense), sizes[:num_dense])    # of each dense column

  def block(a, s0, size):
    """Class block of w [H, V] or b [V]: the columns s0 .. s0 + size - 1."""
    return jax.lax.slice_in_dim(a, s0, s0 + size, axis=a.ndim - 1)

  def dense_scores(h, w, b, cls, target):
    """The dense classes' logits [N, D], mask of each row's class, the row's
    target column, and whether the row is of a dense class."""
    is_dense = cls < num_dense
    z = h @ block(w, offset, dense_words) + block(b, offset, dense_words)
    # rows of other classes see class 0 (finite gradients); their value is discarded
    mask = jnp.asarray(dense_class) == jnp.where(is_dense, cls, 0)[:, None]
    column = jnp.asarray(starts - offset)[jnp.where(is_dense, cls, 0)] + target
    return z, mask, jnp.where(is_dense, column, 0), is_dense

  def layout(h, cls, target):
    """Sorted, padded rows (and targets) and each class's (offset, count) among them."""
    n = h.shape[0]
    perm = jnp.argsort(cls, stable=True)
    counts = jnp.bincount(cls, length=num_classes + 1)    # the last: positions to skip
    offsets = jnp.cumsum(counts) - counts
    rows = jnp.concatenate([h[perm], jnp.zeros((tile, h.shape[1]), h.dtype)])   # [N + tile, H]
    targets = jnp.concatenate([target[perm], jnp.zeros((tile,), target.dtype)])
    return n, perm, counts, offsets, rows, targets

  def tiles(c, counts, offsets):
    """(trip count, j -> (start row, valid [tile])) of class c's tiles."""
    count = counts[c]
    def at(j):
      return offsets[c] + j * tile, j * tile + jnp.arange(tile) < count
    return (count + tile - 1) // tile, at

  def forward(h, w, b, cls, target):
    n, perm, counts, offsets, rows, targets = layout(h, cls, target)
    out = jnp.zeros((2, n + tile), h.dtype)     # each sorted row's lse and target logit
    for c in range(num_dense, num_classes):
      s0, size = starts[c], sizes[c]
      trips, at = tiles(c, counts, offsets)

      def body(j, out, s0=s0, size=size, at=at):
        start, valid = at(j)
        x = jax.lax.dynamic_slice_in_dim(rows, start, tile)
        z = x @ block(w, s0, size) + block(b, s0, size)
        new = jnp.stack([jax.nn.logsumexp(z, axis=-1),
                         _take(z, jax.lax.dynamic_slice_in_dim(targets, start, tile))])
        old = jax.lax.dynamic_slice_in_dim(out, start, tile, axis=1)
        return jax.lax.dynamic_update_slice_in_dim(out, jnp.where(valid, new, old), start, 1)

      out = jax.lax.fori_loop(0, trips, body, out)
    lse, logit = (jnp.zeros((n,), h.dtype).at[perm].set(x[:n]) for x in out)
    if num_dense:
      z, mask, column, is_dense = dense_scores(h, w, b, cls, target)
      lse = jnp.where(is_dense, jax.nn.logsumexp(jnp.where(mask, z, -jnp.inf), axis=-1), lse)
      logit = jnp.where(is_dense, _take(z, column), logit)
    return (lse - logit if has_target else lse), (perm, counts, offsets, rows, targets, lse)

  @jax.custom_vjp
  def run(h, w, b, cls, target):
    return forward(h, w, b, cls, target)[0]

  def run_fwd(h, w, b, cls, target):
    value, res = forward(h, w, b, cls, target)
    return value, (h, w, b, cls, target) + res

  def run_bwd(res, g):
    h, w, b, cls, target, perm, counts, offsets, rows, targets, lse = res
    n = perm.shape[0]
    d_w, d_b = jnp.zeros_like(w), jnp.zeros_like(b)
    d_h = jnp.zeros_like(h)
    if num_dense:          # d lse / d z = the softmax within the class (less the one-hot)
      z, mask, column, is_dense = dense_scores(h, w, b, cls, target)
      p = jnp.where(mask, jnp.exp(z - lse[:, None]), 0.0)
      if has_target:
        p -= jax.nn.one_hot(column, dense_words, dtype=p.dtype)
      p_dense = jnp.where(is_dense[:, None], p, 0.0) * g[:, None]
      d_h = (block(w, offset, dense_words) @ p_dense.T).T
    gs = jnp.concatenate([g[perm], jnp.zeros((tile,), g.dtype)])
    lses = jnp.concatenate([lse[perm], jnp.zeros((tile,), lse.dtype)])
    carry = (jnp.zeros_like(rows), d_w, d_b)
    for c in range(num_dense, num_classes):
      s0, size = starts[c], sizes[c]
      trips, at = tiles(c, counts, offsets)

      def body(j, carry, s0=s0, size=size, at=at):
        d_rows, d_w, d_b = carry
        start, valid = at(j)
        wc, bc = block(w, s0, size), block(b, s0, size)
        x = jax.lax.dynamic_slice_in_dim(rows, start, tile)
        lse = jax.lax.dynamic_slice_in_dim(lses, start, tile)
        gj = jnp.where(valid, jax.lax.dynamic_slice_in_dim(gs, start, tile), 0.0)
        # the softmax within the class (less the target's one-hot); rows of
        # other classes are masked
        p = jnp.exp(x @ wc + bc - lse[:, None])
        if has_target:
          p -= jax.nn.one_hot(jax.lax.dynamic_slice_in_dim(targets, start, tile), size,
                              dtype=p.dtype)
        p = jnp.where(valid[:, None], p, 0.0) * gj[:, None]
        d_x = jax.lax.dynamic_slice_in_dim(d_rows, start, tile) + (wc @ p.T).T
        return (jax.lax.dynamic_update_slice_in_dim(d_rows, d_x, start, 0),
                jax.lax.dynamic_update_slice_in_dim(d_w, block(d_w, s0, size) + x.T @ p, s0, 1),
                jax.lax.dynamic_update_slice_in_dim(d_b, block(d_b, s0, size) + p.sum(0), s0, 0))

      carry = jax.lax.fori_loop(0, trips, body, carry)
    d_rows, d_w, d_b = carry
    if num_dense:          # written last, into the buffer the loops updated in place
      d_w = jax.lax.dynamic_update_slice_in_dim(d_w, h.T @ p_dense, offset, 1)
      d_b = jax.lax.dynamic_update_slice_in_dim(d_b, p_dense.sum(0), offset, 0)
    d_h = d_h + jnp.zeros_like(h).at[perm].set(d_rows[:n])
    return d_h, d_w, d_b, None, None

  run.defvjp(run_fwd, run_bwd)
  return run


def log_prob(params: Params, structure: ClassStructure, h: jax.Array, words: jax.Array,
             method: str = 'dense', vmap_one: bool = False) -> jax.Array:
  """Class-factored ``log P(w | h) = log P(c(w) | h) + log P(w | c(w), h)``.

  Args:
    params: ``init_params`` with classes.
    structure: ``class_structure(...)``.
    h: ``[..., H]`` hidden states.
    words: int ``[...]`` target ids.
    method: 'dense', 'gather' or 'sorted' (module docstring); same result.
    vmap_one: method 'sorted' only: compiled as a vmap of one, faster on a
      CPU when the caller is not vmapped (``_sorted_in_class_nll``).

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
  elif method == 'sorted':
    return class_lp - _sorted_in_class_nll(params['w_word'], params['b_word'], structure, h,
                                           words, c, vmap_one)
  else:
    raise ValueError(f"method={method!r} is not 'dense', 'gather' or 'sorted'")
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
  hashable). ``method``: 'dense', 'gather' or 'sorted' for the factored softmax,
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
  vmap_one: bool = False      # method 'sorted': see log_prob

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
    return log_prob(params, self.structure(), hidden, words, self.method, self.vmap_one)

  def all_log_probs(self, hidden):
    params = self._params(hidden.shape[-1])
    if self.method == 'full':
      return jax.nn.log_softmax(hidden @ params['w_word'] + params['b_word'], -1)
    return all_log_probs(params, self.structure(), hidden)
