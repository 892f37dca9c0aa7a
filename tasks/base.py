"""What the trainer needs from a task, and the pieces the tasks share.

``Task`` is the interface (a Protocol: ``training/train.py`` reads nothing else);
``per_step_loss`` the loss of each kind of output; ``windowed_evaluator``
the evaluation of the tasks that score long sequences in windows with the
state carried (music, text, long series).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from training import distributed
from models import nade

# The kinds of output a task scores (``per_step_loss``).
KINDS = ('classification', 'regression', 'bernoulli', 'nade', 'log_prob')

# ``evaluate(params [P, ...], split, step=0) -> [dict per member]``: each dict
# holds ``loss`` (mean per scored step, nats), ``error`` (a rate, NaN where a
# task has none) and ``count`` (what was scored), and may hold more numbers
# (``bpc``, ``ppl``).
Evaluate = Callable[..., list[dict]]


class Task(Protocol):
  """A task as the trainer sees it.

  Attributes:
    name: what ``summary`` and messages call it.
    kind: one of ``KINDS``: how ``per_step_loss`` scores the outputs.
    output_size: the model's outputs per step (classes, keys, 1 for regression).
    carries: whether the state is carried from one batch to the next
      (truncated BPTT over long sequences); then every batch holds ``reset``.
    steps_per_epoch: training batches in one pass over the data; None where
      the task draws fresh data every step (no epochs: ``train.build``
      refuses the settings that count epochs).
    unit: what ``count`` counts in the test line ('frames', 'symbols', ...).
    model_kwargs: what the data decide about the model (word ids in,
      frequency classes of a class softmax), passed to
      ``models.rnn.RecurrentNetwork``; {} for most tasks.
    data: what ``tasks.make(config, data)`` builds this task from (None:
      nothing to load), so that the task can be rebuilt with another
      ``task.chunk`` without reading the corpus again.
  """
  name: str
  kind: str
  output_size: int
  carries: bool
  steps_per_epoch: int | None
  unit: str
  model_kwargs: dict
  data: Any

  def summary(self) -> str:
    """One line on the data for the log ('' for nothing to say)."""

  def train_batch(self, key: jax.Array, step) -> dict:
    """The batch of training step ``step`` (jittable; ``step`` may be traced)
    of the member whose data key is ``key``: time-major ``inputs [T, B, ...]``,
    ``targets``, ``mask [T, B]`` (1 where the output is scored) and, where
    ``carries``, a scalar ``reset`` (start from the initial state)."""

  def error(self, outputs: jax.Array, batch: dict) -> jax.Array:
    """The error rate on a training batch (a scalar; NaN where there is none)."""

  def evaluator(self, apply_fn: Callable, initial_carry: Callable, train_config,
                eval_key: jax.Array | None) -> Evaluate:
    """``evaluate(params [P, ...], split, step=0) -> [dict per member]``.

    ``apply_fn(params, inputs, carry, reset, **kw) -> (outputs, carry,
    samples)`` runs the model (``train.Trainer.apply``, a ``train.Forward``;
    ``samples`` is None unless given a ``sample_key``);
    ``initial_carry(params, batch_size)`` gives the carry's shapes;
    ``train_config`` the evaluation's sizes;
    ``eval_key`` the key of whatever evaluation draws (``train.eval_seed``).
    """


def per_step_loss(outputs: jax.Array, batch: dict, kind: str) -> jax.Array:
  """Loss of every step [T, B] (masked later), in nats."""
  if kind == 'classification':
    return optax.softmax_cross_entropy_with_integer_labels(outputs, batch['targets'])
  if kind == 'regression':
    return (outputs[..., 0] - batch['targets']) ** 2
  if kind == 'bernoulli':       # independent sigmoid units, summed over the keys
    return -nade.bernoulli_log_prob(outputs, batch['targets'])
  if kind == 'log_prob':
    # Word softmaxes (models.rnn.RecurrentNetwork with output='class_softmax' or
    # 'softmax'): the outputs are already log P(target) [T, B].
    return -outputs
  if kind == 'nade':
    # RNN-NADE (models.rnn.RecurrentNetwork with output='nade'): the outputs are
    # the teacher-forced conditional logits of p(v_d | v_<d, h_t), so the sum of
    # the keys' Bernoulli terms is the exact NADE log-likelihood of the frame.
    return -nade.bernoulli_log_prob(outputs, batch['targets'])
  raise ValueError(f'unknown task kind {kind!r}; known: {", ".join(KINDS)}')


def windowed_evaluator(score_window: Callable, splits: Mapping[str, tuple[int, int]],
                       initial_carry: Callable,
                       more: Callable[[float], dict] | None = None,
                       sequences: Mapping[str, np.ndarray] | None = None) -> Evaluate:
  """Scores whole splits read in windows, the state carried from one to the next.

  Args:
    score_window: ``(params, split, n, carry) -> (carry, (loss, errors, count))``
      for window ``n`` (traced) of ``split``: the summed loss (nats), the
      summed errors and the number of scored steps of the window. It starts
      from the initial state where the window says so (its reset).
    splits: split -> (number of windows, parallel sequences B): the split's
      scan length and the carry's batch size (``initial_carry(params, B)``).
    initial_carry: ``(params, batch_size) -> carry``.
    more: ``mean loss -> {name: number}``, further numbers of a split
      (bits per character, perplexity).
    sequences: split -> int [windows, B], which sequence (piece) column b of
      window n belongs to (-1: none). Then ``score_window`` returns each sum
      per column ([B]), and each member's dict also holds
      ``loss_per_sequence``: the mean over sequences of each sequence's loss
      per scored step, where ``loss`` pools the steps of all sequences (the
      two differ when long sequences score worse or better than short ones).

  Returns:
    ``evaluate(params [P, ...], split, step=0) -> [dict per member]`` with
    ``loss`` and ``error`` per scored step and ``count``. Each window's sums
    are float32 on the device; they are added in float64 on the host. The
    members are vmapped; each split is compiled once, its data captured.
  """

  def run_split(params, split):
    def body(carry, n):
      return score_window(params, split, n, carry)
    num_windows, batch_size = splits[split]
    _, sums = jax.lax.scan(body, initial_carry(params, batch_size), jnp.arange(num_windows))
    return sums

  fns = {s: jax.jit(jax.vmap(functools.partial(run_split, split=s))) for s in splits}

  def evaluate(params, split: str, step: int = 0) -> list[dict]:
    del step          # the same windows every time
    # each [P, windows] (or [P, windows, B] with ``sequences``)
    sums = [np.asarray(a, np.float64) for a in distributed.to_host(fns[split](params))]
    out = []
    for p, (loss, errors, count) in enumerate(
        zip(*(a.reshape(a.shape[0], -1).sum(-1) for a in sums))):
      mean = float(loss) / float(count)
      out.append(dict(loss=mean, error=float(errors) / float(count), count=int(round(count)),
                      **(more(mean) if more is not None else {})))
      if sequences is not None:
        out[-1]['loss_per_sequence'] = _mean_per_sequence(sums[0][p], sums[2][p],
                                                          sequences[split])
    return out

  return evaluate


def _mean_per_sequence(loss: np.ndarray, count: np.ndarray, ids: np.ndarray) -> float:
  """The mean over sequences of loss / count, each summed over the windows
  and columns that ``ids`` [windows, B] assigns to the sequence (-1: none);
  sequences with nothing scored are left out."""
  keep = ids >= 0
  n = int(ids.max()) + 1 if keep.any() else 0
  loss_s = np.bincount(ids[keep], loss[keep], minlength=n)
  count_s = np.bincount(ids[keep], count[keep], minlength=n)
  scored = count_s > 0
  return float(np.mean(loss_s[scored] / count_s[scored])) if scored.any() else float('nan')
