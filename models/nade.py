"""Output models for piano-roll frames: RNN-NADE and independent Bernoullis.

A frame is a binary vector ``v`` of D = 88 keys. The RNN state ``h`` that
precedes a frame (the caller aligns ``hidden[t]`` with ``frames[t]``, i.e.
``h`` has seen frames ``< t`` only) sets the output distribution's biases.

**NADE** (Larochelle & Murray 2011), conditioned as in the RNN-NADE of
Boulanger-Lewandowski, Bengio & Vincent (ICML 2012), used by Bengio,
Boulanger-Lewandowski & Pascanu (2013, sec. 3.3 and Table 1). With shared
weights ``W [D, Hn]`` (key -> NADE hidden) and ``V [Hn, D]`` (NADE hidden ->
key), and biases that are affine in the RNN state::

    b_v = b_v0 + h W_hv              [..., D]
    b_h = b_h0 + h W_hh              [..., Hn]
    a_d = b_h + sum_{k<d} v_k W[k]   [..., Hn]   (a cumulative sum over keys)
    p(v_d = 1 | v_<d) = sigmoid(b_v[d] + sigmoid(a_d) . V[:, d])
    log p(v) = sum_d v_d l_d - softplus(l_d),   l_d the logit above.

Exact log-likelihood costs O(D Hn) per frame; sampling is sequential over
keys (a ``lax.scan``). Keys are ordered from the lowest (A0) to the highest.

**Bernoulli**: ``p(v_d = 1) = sigmoid(b + h W)[d]``, keys independent: the
"sigmoid recognition layer" rows of Bengio et al. 2013, Table 1.

**Accuracy** (Bay, Ehmann & Downie 2009), per frame:
``acc = TP / (TP + FP + FN)``, with a predicted frame drawn from the model.
Bengio et al. report its *expected* value under the model. Two estimators:

- ``mc_frame_accuracy``: Monte Carlo over samples, for any output model.
- ``bernoulli_expected_frame_accuracy``: exact for independent keys (see its
  docstring for the derivation).

Averages over a test set weigh each frame equally (the evaluation notes on
the authors' data page, www-etud.iro.umontreal.ca/~boulanni/icml2012: "weigh
each time step in the test set equally", for log-likelihood "and similarly
for accuracy"); a frame with no notes in target and prediction (0/0) scores
``empty_value`` (1 by default: predicting silence for silence is right).
Aggregate ``accuracy_counts`` instead for the corpus-level ratio
``sum TP / sum (TP + FP + FN)``.

Parameters follow ``models.cells``: one explicit dict, row-vector
convention ``h @ W`` with ``W [in, out]``; Linen heads hold that dict as a
single param, as ``models.rnn.RecurrentNetwork`` holds a cell's.

References:
  Larochelle, Murray 2011, "The neural autoregressive distribution
  estimator", AISTATS.
  Boulanger-Lewandowski, Bengio, Vincent 2012, "Modeling temporal
  dependencies in high-dimensional sequences: application to polyphonic
  music generation and transcription", ICML.
  Bay, Ehmann, Downie 2009, "Evaluation of multiple-F0 estimation and
  tracking systems", ISMIR.
  Bengio, Boulanger-Lewandowski, Pascanu 2013, "Advances in optimizing
  recurrent networks", ICASSP (sec. 3.3, 4.1).
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import cells as cells_lib

Params = dict
NUM_KEYS = 88


# --- NADE --------------------------------------------------------------------

def nade_init(key, rnn_hidden: int, n_hidden: int, n_visible: int = NUM_KEYS,
              init_scheme: str = 'default') -> Params:
  """RNN-NADE parameters.

  Returns:
    ``{'w': [D, Hn], 'v': [Hn, D], 'b_v': [D], 'b_h': [Hn],
    'w_hv': [H, D], 'w_hh': [H, Hn]}``; weights from
    ``models.cells.init_weight(init_scheme, 'out', ...)``, biases zero.
  """
  kw, kv, khv, khh = jax.random.split(key, 4)
  init = lambda k, shape: cells_lib.init_weight(init_scheme, 'out', k, shape)
  return {
      'w': init(kw, (n_visible, n_hidden)),
      'v': init(kv, (n_hidden, n_visible)),
      'b_v': jnp.zeros((n_visible,)),
      'b_h': jnp.zeros((n_hidden,)),
      'w_hv': init(khv, (rnn_hidden, n_visible)),
      'w_hh': init(khh, (rnn_hidden, n_hidden)),
  }


def nade_conditional_biases(params: Params, h: jax.Array) -> tuple[jax.Array, jax.Array]:
  """RNN state ``h [..., H]`` -> ``(b_v [..., D], b_h [..., Hn])``:
  ``b_v = b_v0 + h W_hv``, ``b_h = b_h0 + h W_hh`` (Boulanger-Lewandowski
  et al. 2012, eq. 9-10 with the RNN state in place of u_{t-1})."""
  return h @ params['w_hv'] + params['b_v'], h @ params['w_hh'] + params['b_h']


def nade_logits(params: Params, cond_bv: jax.Array, cond_bh: jax.Array,
                v: jax.Array, max_notes: int | None = None) -> jax.Array:
  """Logits ``l_d`` of ``p(v_d = 1 | v_<d)`` for every key, ``[..., D]``.

  Teacher-forced. ``a_d = b_h + sum_{k<d} v_k W[k]`` only changes at the
  keys that are on, so a frame with m notes has m + 1 distinct NADE hidden
  states: the segments between its notes. With ``max_notes`` = K >= every
  frame's number of notes (``_segment_logits``), the K + 1 segment states of
  every frame are one gather and a cumulative sum over the frame's notes,
  and their logits for all D keys one [N (K + 1), Hn] x [Hn, D] product;
  each key reads the segment it lies in. O(K Hn D) flops a frame, no loop
  over keys. A frame with more than K notes gets NaN logits (loud, never a
  silently wrong likelihood). ``tasks.music`` sets K from the data.

  Without ``max_notes``: a ``lax.scan`` over the D keys that carries ``a
  [N, Hn]`` of every frame (N: the leading axes, flattened): at key d,
  ``l_d = b_v[d] + sigmoid(a) . V[:, d]``, then ``a += v_d W[d]``. O(D Hn)
  flops a frame, but 88 small sequential steps.

  Measured (the value and gradient of a frame-summed NLL, 100 frames of
  B = 1, Hn = 150, a 300-unit RNN state; one thread of the AMD EPYC VM,
  its core shared with a training run, side by side in one process,
  2026-12-03): the scan 8-12 ms, segments 3-4 ms at K = 9 (Nottingham's
  most notes in a frame) and 3 ms at K = 4 (JSB's), the rest of that
  computation 0.5 ms. Of the other forms tried: one product of the frame
  masked by a lower-triangular [D, D] matrix with W (O(D^2 Hn), [..., D,
  Hn] at once) 31 ms against the scan's 7.2 on an idle core, ``jnp.cumsum``
  over all keys 47 ms, the segments with the notes found by ``argsort``
  instead of counting 8 ms, or with their sums and the keys' reads as masked
  dense products 4-8 ms; ``scan``'s ``unroll`` of 4 or 8 was slower than 1.

  Args:
    params: needs ``'w' [D, Hn]`` and ``'v' [Hn, D]``.
    cond_bv: ``[..., D]`` visible biases.
    cond_bh: ``[..., Hn]`` hidden biases.
    v: ``[..., D]`` frame (binary for a piano-roll; any values work);
      leading axes broadcast with the biases'.
    max_notes: most nonzero keys in a frame (static), or None for the scan.
  """
  w, vw = params['w'], params['v']
  batch = jnp.broadcast_shapes(v.shape[:-1], cond_bv.shape[:-1], cond_bh.shape[:-1])
  flat = lambda x: jnp.broadcast_to(x, batch + x.shape[-1:]).reshape(-1, x.shape[-1])
  v = flat(v.astype(w.dtype))
  if max_notes is None:
    logits = _scan_logits(w, vw, flat(cond_bh), v)
  else:
    logits = _segment_logits(w, vw, flat(cond_bh), v, int(max_notes))
  return jnp.broadcast_to(cond_bv, batch + cond_bv.shape[-1:]) + logits.reshape(
      batch + (w.shape[0],))


def _scan_logits(w, vw, bh, v):
  """``sigmoid(a_d) . V[:, d]`` [N, D], a scan over the keys (``nade_logits``)."""
  def key_step(a, xs):
    w_d, v_col_d, v_d = xs                 # W[d] [Hn], V[:, d] [Hn], v_d [N]
    return a + v_d[:, None] * w_d, jax.nn.sigmoid(a) @ v_col_d

  _, logits = jax.lax.scan(key_step, bh, (w, vw.T, v.T))   # [D, N]
  return logits.T


def _segment_logits(w, vw, bh, v, max_notes: int):
  """``sigmoid(a_d) . V[:, d]`` [N, D] from the segments between each frame's
  notes (``nade_logits``); NaN for a frame with more than ``max_notes``."""
  keys = w.shape[0]
  on = v != 0
  count = jnp.cumsum(on, axis=-1)                                       # notes up to key d
  # the j-th note's key: how many keys hold fewer than j + 1 notes (keys past the last: none)
  note = (count[:, None, :] <= jnp.arange(max_notes)[:, None]).sum(-1)   # [N, K]
  present = note < keys
  note = jnp.minimum(note, keys - 1)
  value = jnp.where(present, jnp.take_along_axis(v, note, axis=-1), 0.0)
  steps = w[note] * value[..., None]                                    # [N, K, Hn]
  a = bh[:, None, :] + jnp.concatenate(
      [jnp.zeros_like(steps[:, :1]), jnp.cumsum(steps, axis=1)], axis=1)   # [N, K + 1, Hn]
  per_segment = jax.nn.sigmoid(a) @ vw                                  # [N, K + 1, D]
  segment = jnp.minimum(count - on, max_notes)                          # notes below key d
  logits = jnp.take_along_axis(per_segment, segment[:, None, :], axis=1)[:, 0, :]
  return jnp.where(count[:, -1:] > max_notes, jnp.nan, logits)


def bernoulli_log_prob(logits: jax.Array, v: jax.Array) -> jax.Array:
  """``sum_d v_d log s(l_d) + (1 - v_d) log(1 - s(l_d)) = sum_d v_d l_d - softplus(l_d)``
  over the last axis: minus the summed sigmoid binary cross-entropy."""
  v = v.astype(logits.dtype)
  return jnp.sum(v * logits - jax.nn.softplus(logits), axis=-1)


def nade_log_prob(params: Params, cond_bv: jax.Array, cond_bh: jax.Array,
                  v: jax.Array, max_notes: int | None = None) -> jax.Array:
  """Exact ``log p(v) = sum_d log p(v_d | v_<d)`` in nats, ``[...]``.

  Shapes (and ``max_notes``) as in ``nade_logits``; the result has the
  broadcast leading shape.
  """
  return bernoulli_log_prob(nade_logits(params, cond_bv, cond_bh, v, max_notes), v)


def nade_sample(params: Params, cond_bv: jax.Array, cond_bh: jax.Array,
                key: jax.Array) -> jax.Array:
  """One exact sample ``v ~ p(v)`` per leading index, ``[..., D]`` of 0./1.

  Ancestral sampling key by key (a ``lax.scan`` over D): draw
  ``v_d ~ Bernoulli(sigmoid(l_d))`` given the keys drawn so far, then
  ``a += v_d W[d]``. One ``uniform [..., D]`` draw supplies all keys.
  """
  w, vw = params['w'], params['v']
  batch = jnp.broadcast_shapes(cond_bv.shape[:-1], cond_bh.shape[:-1])
  a0 = jnp.broadcast_to(cond_bh, batch + cond_bh.shape[-1:])
  bv = jnp.moveaxis(jnp.broadcast_to(cond_bv, batch + cond_bv.shape[-1:]), -1, 0)
  u = jax.random.uniform(key, (w.shape[0],) + batch, dtype=cond_bv.dtype)

  def step(a, xs):
    w_d, v_d, bv_d, u_d = xs
    p = jax.nn.sigmoid(bv_d + jax.nn.sigmoid(a) @ v_d)
    x = (u_d < p).astype(a.dtype)
    return a + x[..., None] * w_d, x

  _, keys = jax.lax.scan(step, a0, (w, vw.T, bv, u))
  return jnp.moveaxis(keys, 0, -1)


# --- Frame accuracy (Bay et al. 2009) ----------------------------------------

def accuracy_counts(pred: jax.Array, target: jax.Array
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(TP, FP, FN) per frame, each ``[...]``, from binary ``[..., D]`` frames."""
  pred = pred.astype(jnp.float32)
  target = target.astype(jnp.float32)
  tp = jnp.sum(pred * target, -1)
  fp = jnp.sum(pred * (1.0 - target), -1)
  fn = jnp.sum((1.0 - pred) * target, -1)
  return tp, fp, fn


def frame_accuracy(pred: jax.Array, target: jax.Array, empty_value: float = 1.0) -> jax.Array:
  """``TP / (TP + FP + FN)`` per frame ``[...]``; ``empty_value`` where both
  frames are empty (0/0)."""
  tp, fp, fn = accuracy_counts(pred, target)
  denom = tp + fp + fn
  return jnp.where(denom > 0, tp / jnp.maximum(denom, 1.0), empty_value)


def mc_frame_accuracy(sample_fn: Callable[[jax.Array], jax.Array], targets: jax.Array,
                      key: jax.Array, n_samples: int, empty_value: float = 1.0,
                      batch_size: int | None = 16) -> jax.Array:
  """Monte Carlo expected accuracy ``E_{x ~ model}[acc(x, target)]`` per frame.

  Args:
    sample_fn: ``key -> [..., D]`` one binary sample of every frame, e.g.
      ``lambda k: head.apply(variables, hidden, k, method='sample')``.
    targets: ``[..., D]`` binary frames.
    key: PRNG key; sample i uses ``split(key, n_samples)[i]``.
    n_samples: number of samples (static).
    empty_value: accuracy of a 0/0 frame.
    batch_size: samples drawn at once (``lax.map``'s), bounding memory.

  Returns:
    ``[...]`` the sample mean of the per-frame accuracy; its standard error
    is at most ``0.5 / sqrt(n_samples)``.
  """
  keys = jax.random.split(key, n_samples)
  accs = jax.lax.map(lambda k: frame_accuracy(sample_fn(k), targets, empty_value),
                     keys, batch_size=batch_size)
  return accs.mean(0)


def bernoulli_expected_frame_accuracy(probs: jax.Array, targets: jax.Array,
                                      empty_value: float = 1.0) -> jax.Array:
  """Exact ``E[TP / (TP + FP + FN)]`` per frame for independent keys, ``[...]``.

  With the prediction ``x_d ~ Bernoulli(p_d)`` independent and a target
  ``y`` holding ``K`` notes: ``TP = sum_{y_d=1} x_d``, ``FP = sum_{y_d=0} x_d``
  and ``FN = K - TP``, so the denominator is ``K + FP``. TP and FP are sums
  over disjoint sets of independent keys, hence independent, and

      K > 0:  E[acc] = E[TP] E[1 / (K + FP)]
                     = (sum_d y_d p_d) sum_f P(FP = f) / (K + f)
      K = 0:  E[acc] = empty_value P(FP = 0) = empty_value prod_d (1 - p_d).

  FP is Poisson-binomial; its law over 0..D comes from the recursion
  ``P_d(f) = P_{d-1}(f) (1 - q_d) + P_{d-1}(f - 1) q_d`` with
  ``q_d = p_d (1 - y_d)`` (a scan over keys, O(D^2) per frame).

  Args:
    probs: ``[..., D]`` key probabilities ``sigmoid(logits)``.
    targets: ``[..., D]`` binary frames.
  """
  probs, y = jnp.broadcast_arrays(jnp.asarray(probs, jnp.float32),
                                  jnp.asarray(targets, jnp.float32))
  num_keys = probs.shape[-1]
  q = probs * (1.0 - y)
  law0 = jnp.zeros(probs.shape[:-1] + (num_keys + 1,)).at[..., 0].set(1.0)

  def add_key(law, q_d):
    shifted = jnp.concatenate([jnp.zeros_like(law[..., :1]), law[..., :-1]], -1)
    return law * (1.0 - q_d[..., None]) + shifted * q_d[..., None], None

  law, _ = jax.lax.scan(add_key, law0, jnp.moveaxis(q, -1, 0))
  k = y.sum(-1)
  f = jnp.arange(num_keys + 1, dtype=jnp.float32)
  inv = jnp.sum(law / jnp.maximum(k[..., None] + f, 1.0), -1)
  e_tp = jnp.sum(y * probs, -1)
  return jnp.where(k > 0, e_tp * inv, empty_value * law[..., 0])


# --- Linen heads ---------------------------------------------------------------

class NADEHead(nn.Module):
  """RNN hidden states ``[T, B, H]`` -> a NADE over each frame ``[T, B, D]``.

  ``hidden[t]`` must precede ``frames[t]`` (it summarises frames < t). The
  params are one dict ``'nade'`` of ``nade_init``'s form.

  Methods: ``log_prob(hidden, frames) -> [T, B]`` (nats; ``__call__`` too),
  ``sample(hidden, key) -> [T, B, D]``, ``biases(hidden)``.
  """
  n_hidden: int
  n_visible: int = NUM_KEYS
  init_scheme: str = 'default'

  @nn.compact
  def _params(self, rnn_hidden: int) -> Params:
    return self.param('nade', nade_init, rnn_hidden, self.n_hidden, self.n_visible,
                      self.init_scheme)

  def biases(self, hidden):
    return nade_conditional_biases(self._params(hidden.shape[-1]), hidden)

  def log_prob(self, hidden, frames):
    params = self._params(hidden.shape[-1])
    bv, bh = nade_conditional_biases(params, hidden)
    return nade_log_prob(params, bv, bh, frames)

  def sample(self, hidden, key):
    params = self._params(hidden.shape[-1])
    bv, bh = nade_conditional_biases(params, hidden)
    return nade_sample(params, bv, bh, key)

  def __call__(self, hidden, frames):
    return self.log_prob(hidden, frames)


def bernoulli_init(key, rnn_hidden: int, n_visible: int = NUM_KEYS,
                   init_scheme: str = 'default') -> Params:
  """``{'w': [H, D], 'b': [D]}`` for independent sigmoid outputs."""
  return {'w': cells_lib.init_weight(init_scheme, 'out', key, (rnn_hidden, n_visible)),
          'b': jnp.zeros((n_visible,))}


class BernoulliHead(nn.Module):
  """Independent keys: ``p(v_d = 1) = sigmoid(h W + b)[d]``; the interface of
  ``NADEHead`` plus ``probs(hidden)``. Params: one dict ``'bernoulli'``."""
  n_visible: int = NUM_KEYS
  init_scheme: str = 'default'

  @nn.compact
  def _params(self, rnn_hidden: int) -> Params:
    return self.param('bernoulli', bernoulli_init, rnn_hidden, self.n_visible,
                      self.init_scheme)

  def logits(self, hidden):
    params = self._params(hidden.shape[-1])
    return hidden @ params['w'] + params['b']

  def probs(self, hidden):
    return jax.nn.sigmoid(self.logits(hidden))

  def log_prob(self, hidden, frames):
    return bernoulli_log_prob(self.logits(hidden), frames)

  def sample(self, hidden, key):
    logits = self.logits(hidden)
    return jax.random.bernoulli(key, jax.nn.sigmoid(logits)).astype(logits.dtype)

  def __call__(self, hidden, frames):
    return self.log_prob(hidden, frames)

