"""The pathological long-term-dependency problems as a task: fresh sequences
drawn on the device every step (Pascanu et al. 2013 sec. 4.1;
``datasets.pathological``)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from training import distributed
from datasets import pathological
from tasks.base import per_step_loss


@dataclasses.dataclass(frozen=True, eq=False)
class SyntheticTask:
  """A pathological problem with lengths drawn per batch from [min_length, max_length].

  Every batch is padded to the same static length so one compiled program
  serves every length; the scored steps are given by the batch's mask.
  """
  problem: Any            # a datasets.pathological task (``make_task``)
  batch_size: int
  min_length: int
  max_length: int
  regression_error: str = 'squared'   # datasets.pathological.REGRESSION_ERRORS
  carries = False
  unit = 'fresh sequences'
  steps_per_epoch = None        # fresh data every step: no epochs
  data = None                   # nothing to load
  model_kwargs = {}

  @property
  def name(self) -> str:
    return type(self.problem).__name__

  @property
  def kind(self) -> str:
    return self.problem.kind

  @property
  def output_size(self) -> int:
    return self.problem.output_size

  @property
  def longest(self) -> int:
    """The longest length drawn: max_length - 1 for a range, as the authors'
    code draws min + randint(max - min) (Pascanu et al.'s trainingRNNs, RNN.py)."""
    return self.max_length - 1 if self.max_length > self.min_length else self.max_length

  def train_batch(self, key, step) -> dict:
    """Fresh sequences for ``step`` of the member whose data key is ``key``.

    The data come from the first half of the step's key; the trainer draws its
    dropout masks from the second (``training/train.py``), so the two never share bits."""
    k_len, k_data = jax.random.split(jax.random.split(jax.random.fold_in(key, step))[0])
    length = jax.random.randint(k_len, (), self.min_length, self.longest + 1)
    return self.problem.sample(k_data, self.batch_size, length, self.max_length)

  def summary(self) -> str:
    return ''

  def error(self, outputs, batch) -> jax.Array:
    return jnp.mean(pathological.sequence_errors(outputs, batch, self.kind,
                                                 self.regression_error))

  def eval_lengths(self, num_batches: int) -> list[int]:
    """Lengths of the evaluation batches, spread evenly over the training range."""
    if num_batches == 1 or self.min_length == self.longest:
      return [self.longest] * num_batches
    step = (self.longest - self.min_length) / (num_batches - 1)
    return [round(self.min_length + i * step) for i in range(num_batches)]

  def evaluator(self, apply_fn: Callable, initial_carry: Callable, train_config,
                eval_key) -> Callable:
    """``evaluate(params [P, ...], split, step) -> [dict per member]`` on fresh sequences.

    ``apply_fn(params, inputs, carry, reset) -> (outputs, carry, _)`` runs the model.
    Every member sees the same sequences (drawn from ``train.eval_seed``):
    ``train.eval_sequences`` (validation, new ones at every step) or
    ``train.test_sequences`` (test), exactly, in batches of ``train.eval_batch_size``
    whose lengths spread over the training range (``eval_lengths``). The
    loss is the mean over sequences of each one's mean per scored step; the
    error the fraction of sequences with an error.
    """
    tc = train_config
    valid_key, test_key = jax.random.split(eval_key)

    def one_batch(params, key, length, keep):
      """Sums over the batch's first ``keep`` sequences (fewer than the batch
      where ``eval_batch_size`` does not divide the count; the others, drawn
      alike, are not scored, so one compile serves every batch)."""
      batch = self.problem.sample(key, tc.eval_batch_size, length, self.max_length)
      outputs, _, _ = apply_fn(params, batch['inputs'], None, None)
      mask = batch['mask']
      per_seq = jnp.sum(per_step_loss(outputs, batch, self.kind) * mask, 0) / jnp.maximum(
          jnp.sum(mask, 0), 1)
      kept = jnp.arange(per_seq.shape[0]) < keep
      errors = pathological.sequence_errors(outputs, batch, self.kind, self.regression_error)
      return jnp.sum(jnp.where(kept, per_seq, 0.0)), jnp.sum(jnp.where(kept, errors, 0))

    batch_fn = jax.jit(jax.vmap(one_batch, in_axes=(0, None, None, None)), static_argnums=2)

    def evaluate(params, split: str, step: int = 0) -> list[dict]:
      count = tc.eval_sequences if split == 'valid' else tc.test_sequences
      key = jax.random.fold_in(valid_key, step) if split == 'valid' else test_key
      num_batches = max(1, math.ceil(count / tc.eval_batch_size))
      total_loss = total_err = 0.0
      for i, length in enumerate(self.eval_lengths(num_batches)):
        # a count the batch size does not divide: the shortfall spread over the
        # batches, so that no length is scored by fewer sequences than the others
        keep = count // num_batches + (i < count % num_batches)
        loss, err = distributed.to_host(batch_fn(params, jax.random.fold_in(key, i), length,
                                                 np.int32(keep)))
        total_loss = total_loss + np.asarray(loss, np.float64)
        total_err = total_err + np.asarray(err, np.float64)
      return [dict(loss=float(l) / count, error=float(e) / count, count=count)
              for l, e in zip(total_loss, total_err)]

    return evaluate


def build(config: ml_collections.ConfigDict, data=None) -> SyntheticTask:
  """The task ``config.task.name`` of ``datasets.pathological.TASKS``
  (``task.kwargs`` set its fields); ``data`` must be None (nothing to load)."""
  if data is not None:
    raise ValueError(f'task {config.task.name!r} draws its data; it takes none')
  c = config.task
  error = c.get('regression_error', 'squared')
  if error not in pathological.REGRESSION_ERRORS:
    raise ValueError(f'task.regression_error={error!r} is not one of '
                     f'{", ".join(pathological.REGRESSION_ERRORS)}')
  if c.min_length < pathological.MIN_LENGTH:
    # Checked here, not in ``sample``: training draws a traced length, which
    # ``sample`` cannot check, and addition's first window would be empty.
    raise ValueError(f'task.min_length={c.min_length} is below {pathological.MIN_LENGTH}, '
                     'the shortest sequence the pathological tasks define')
  return SyntheticTask(pathological.make_task(c.name, **dict(c.get('kwargs', {}))),
                       c.batch_size, c.min_length, c.max_length, error)
