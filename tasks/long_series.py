"""Long price series: regress the discounted future return, truncated BPTT
(Muccino 2019, ``datasets.long_series``)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from datasets import long_series as series_lib
from tasks.base import per_step_loss, windowed_evaluator


class LongSeriesTask:
  """Muccino (2019): regress the discounted future return of a long price series.

  ``datasets.long_series`` makes the series (prices [N, L]), the targets
  R_t and the inputs x_{t,k} = p_t - p_{t-k}, k = 1..``lags``. Training reads
  all N training series as one batch (the post: "Our training batch consists
  of all 15 sequences together"), in L / ``chunk`` consecutive chunks of
  ``chunk`` steps ("batch sequence length" L / chunk): the state is carried
  from chunk to chunk and reset at the first chunk of each epoch, i.e. at
  the start of the series. ``chunk = L`` is the post's baseline (the whole
  series per update).

  Normalisation (the post does not say): each input feature k is divided by
  its standard deviation over the training series, and the targets by
  theirs, so a model that predicts 0 has a loss near 1 (the loss is the
  mean squared error per step in these units). Prices are stored relative
  to the offset, time-major and padded with p_0 at the front, [lags + L, N];
  the features of a chunk are computed on the device from them.

  Evaluation runs each split's series whole, in windows of ``eval_chunk``
  steps with the state carried (the same for every training chunk length).
  The error is the fraction of steps where the sign of the prediction
  differs from the target's: the wrong action (buy or sell).
  """
  name = 'long_series'
  kind = 'regression'
  carries = True
  unit = 'steps'
  output_size = 1
  model_kwargs = {}

  def __init__(self, series: dict, chunk: int, lags: int = 128, discount: float = 0.99,
               eval_chunk: int = 1000, offset: float = 100.0):
    """``series``: split -> prices [N, L] (``generate``)."""
    length = series['train'].shape[1]
    lengths = {split: p.shape[1] for split, p in series.items()}
    if len(set(lengths.values())) > 1:   # evaluation windows every split by the training length
      raise ValueError(f'long_series: every split must have series of one length, got {lengths}')
    for n in (chunk, eval_chunk):
      if length % n:
        raise ValueError(f'long_series: chunk {n} does not divide the series length {length}')
    self.chunk, self.eval_chunk, self.lags, self.discount = chunk, eval_chunk, lags, discount
    self.length, self.num_series = length, series['train'].shape[0]
    self.data = series
    self.steps_per_epoch = length // chunk
    train = np.asarray(series['train'], np.float64)
    padded_train = np.concatenate([np.repeat(train[:, :1], lags, 1), train], 1)
    self.input_scale = np.array(
        [np.std(train - padded_train[:, lags - k:lags - k + length]) for k in range(1, lags + 1)])
    self.target_scale = float(np.std(series_lib.discounted_returns(train, discount)))
    self.prices, self.targets = {}, {}
    for split, p in series.items():
      p = np.asarray(p, np.float64)
      padded = np.concatenate([np.repeat(p[:, :1], lags, 1), p], 1) - offset
      self.prices[split] = jnp.asarray(padded.T.astype(np.float32))         # [lags + L, N]
      self.targets[split] = jnp.asarray(
          (series_lib.discounted_returns(p, discount) / self.target_scale).T.astype(np.float32))
    self._scale = jnp.asarray(self.input_scale.astype(np.float32))

  @property
  def input_size(self) -> int:
    return self.lags

  def summary(self) -> str:
    return (f'long_series: {self.num_series} series of {self.length} steps in '
            f'{self.steps_per_epoch} chunks of {self.chunk}; {self.lags} lags, discount '
            f'{self.discount}; valid {self.prices["valid"].shape[1]}, test '
            f'{self.prices["test"].shape[1]} series')

  def window(self, split: str, start, size: int) -> dict:
    """Steps [start, start + size) of every series of a split: inputs [size, N, lags],
    targets [size, N], mask [size, N]."""
    prices = self.prices[split]
    w = jax.lax.dynamic_slice_in_dim(prices, start, size + self.lags, 0)   # [lags + size, N]
    now = w[self.lags:]
    lagged = jnp.stack([w[self.lags - k:self.lags - k + size] for k in range(1, self.lags + 1)],
                       -1)
    inputs = (now[..., None] - lagged) / self._scale
    targets = jax.lax.dynamic_slice_in_dim(self.targets[split], start, size, 0)
    return dict(inputs=inputs, targets=targets, mask=jnp.ones(targets.shape, jnp.float32))

  def train_batch(self, key, step) -> dict:
    n = step % self.steps_per_epoch
    return dict(self.window('train', n * self.chunk, self.chunk), reset=n == 0)

  def error(self, outputs, batch) -> jax.Array:
    wrong = (jnp.sign(outputs[..., 0]) != jnp.sign(batch['targets'])) * batch['mask']
    return jnp.sum(wrong) / jnp.maximum(jnp.sum(batch['mask']), 1)

  def evaluator(self, apply_fn: Callable, initial_carry: Callable, train_config,
                eval_key) -> Callable:
    """``evaluate(params [P, ...], split, step) -> [dict per member]`` over whole series.

    ``apply_fn(params, inputs, carry, reset) -> (outputs, carry, _)``; the state
    starts from the initial one and is carried across the windows of
    ``eval_chunk`` steps.
    """

    def score_window(params, split, n, carry):
      batch = self.window(split, n * self.eval_chunk, self.eval_chunk)
      outputs, carry, _ = apply_fn(params, batch['inputs'], carry, n == 0)
      return carry, (jnp.sum(per_step_loss(outputs, batch, self.kind) * batch['mask']),
                     self.error(outputs, batch) * jnp.sum(batch['mask']), jnp.sum(batch['mask']))

    shapes = {s: (self.length // self.eval_chunk, p.shape[1]) for s, p in self.prices.items()}
    return windowed_evaluator(score_window, shapes, initial_carry)


# task.kwargs that make the series (the rest are LongSeriesTask's)
SERIES_KWARGS = ('num_series', 'length', 'num_valid', 'num_test', 'data_seed', 'noise_std',
                 'frequencies')


def generate(num_series: int = 15, length: int = 20_000, num_valid: int = 3, num_test: int = 3,
             data_seed: int = 0, noise_std: float = 0.01,
             frequencies: tuple = (0.0002, 0.0002)) -> dict[str, np.ndarray]:
  """The post's 15 training series of 20,000 steps, and further draws for
  validation and test: split -> prices [N, L], what ``build`` takes as ``data``."""
  spec = series_lib.SeriesSpec(length=length, noise_std=noise_std,
                               frequencies=tuple(frequencies))
  return series_lib.make_splits(data_seed, num_series, num_valid, num_test, spec)


def build(config: ml_collections.ConfigDict, data: dict | None = None) -> LongSeriesTask:
  """The series read in chunks of ``task.chunk`` steps; ``task.kwargs`` set
  the series (``SERIES_KWARGS``, for ``generate``) and the task (``lags``,
  ``discount``, ``eval_chunk``). ``data``: prices (``generate``'s form) in
  place of the generated ones."""
  kwargs = dict(config.task.get('kwargs', {}))
  made = {k: kwargs.pop(k) for k in SERIES_KWARGS if k in kwargs}
  series = generate(**made) if data is None else data
  return LongSeriesTask(series, config.task.chunk, offset=series_lib.SeriesSpec().offset,
                        **kwargs)
