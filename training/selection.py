"""What each validation decides, member by member: the parameters a run is
scored at (``BestOnValid``: select on validation, report on test), when a
member stops improving (patience), and the learning-rate schedules that
judge the validation loss (``train.anneal``: ``rnnlm_anneal``,
``restore_anneal``). Host-side numpy on [P] arrays; ``training/train.py``
applies the decisions to the train state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


class BestOnValid:
  """Each member's parameters at its lowest validation loss so far, so that
  the test can be scored there (select on validation, report on test, as
  the papers do) as well as at the end."""

  def __init__(self, params, size: int, meta: dict | None = None, min_delta: float = 0.0):
    self.params = jax.tree.map(jnp.copy, params)    # the train step donates its own
    meta = meta or {}
    self.loss = np.asarray(meta.get('loss', [np.inf] * size), np.float64)
    self.step = list(meta.get('step', [None] * size))
    # Patience counts validations since the loss last fell by more than
    # min_delta below `mark` (the loss at that fall); the best parameters
    # follow every fall, however small.
    self.min_delta = float(min_delta)
    self.mark = np.asarray(meta.get('mark', self.loss), np.float64)
    self.since = np.asarray(meta.get('since', [0] * size), np.int64)   # validations since

  @property
  def meta(self) -> dict:
    return {'loss': [float(x) for x in self.loss], 'step': self.step,
            'mark': [float(x) for x in self.mark], 'since': [int(x) for x in self.since]}

  def update(self, params, valid: list[dict], step: int) -> None:
    losses = np.array([v['loss'] for v in valid], np.float64)
    better = np.isfinite(losses) & (losses < self.loss)
    progress = np.isfinite(losses) & (losses < self.mark - self.min_delta)
    self.mark = np.where(progress, losses, self.mark)
    self.since = np.where(progress, 0, self.since + 1)
    if not better.any():
      return
    self.loss = np.where(better, losses, self.loss)
    self.step = [step if b else s for b, s in zip(better, self.step)]
    mask = np.asarray(better)
    self.params = jax.tree.map(
        lambda new, old: jnp.where(mask.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
        params, self.params)


# train.anneal: '' (off), 'rnnlm' (``rnnlm_anneal``) or 'restore' (``restore_anneal``).
ANNEALS = ('', 'rnnlm', 'restore')


def rnnlm_anneal(losses, previous, annealing, min_improvement: float = 0.003):
  """One validation of Mikolov's RNNLM learning-rate schedule (the RNNLM
  toolkit's ``trainNet``; the schedule of the model Pascanu et al. 2013 take
  for Penn Treebank, Mikolov et al. 2012), member by member.

  An epoch is *short* when its validation loss ``L`` is not below
  ``previous / (1 + min_improvement)`` (RNNLM: ``logp * 1.003 < llogp``;
  a loss that is not finite is short). The first short epoch starts the
  annealing; from then on the learning rate is halved after every epoch,
  and the next short epoch stops the member. An epoch whose loss rose above
  the previous one returns the member to its best parameters (RNNLM
  restores its saved weights).

  Args:
    losses: [P] this epoch's validation losses.
    previous: [P] the previous epoch's (inf before the first).
    annealing: [P] bool, whether each member is annealing already.
    min_improvement: the relative improvement an epoch must make.

  Returns:
    (halve, stop, rose, annealing), each [P] bool: halve the learning rate,
    stop the member, return it to its best parameters, and whether it
    anneals from now on.
  """
  losses = np.asarray(losses, np.float64)
  previous = np.asarray(previous, np.float64)
  annealing = np.asarray(annealing, bool)
  short = ~(losses * (1.0 + min_improvement) <= previous)
  stop = short & annealing
  annealing = annealing | short
  halve = annealing & ~stop
  rose = ~(losses <= previous)
  return halve, stop, rose, annealing


def restore_anneal(losses, best):
  """One validation of the halve-and-restore schedule, member by member: a
  member whose validation loss is not below its best so far returns to its
  best parameters and halves its learning rate; it never stops by this rule
  (``train.patience`` does). One reading of Pascanu et al.'s "halved every
  time the error over an epoch increased" (sec. 5.2), with the error on
  validation and RNNLM's return to the saved weights; our choice, not theirs.

  Args:
    losses: [P] this epoch's validation losses.
    best: [P] each member's lowest validation loss before this one (inf
      before the first).

  Returns:
    (rose, best): [P] bool, halve the rate and return to the best
    parameters; [P] the lowest loss including this one (a loss that is not
    finite leaves it, and counts as a rise).
  """
  losses = np.asarray(losses, np.float64)
  best = np.asarray(best, np.float64)
  rose = ~(losses < best)
  return rose, np.where(rose, best, losses)
