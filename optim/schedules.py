"""Schedules for the optimiser's hyperparameters and the regulariser weights.

Every schedule is an ``optax.Schedule``: a function of the 0-based update
count ``step`` (the count kept in the optimiser state) returning a scalar.
Numeric arguments are ``ArrayLike`` so that they may be traced arrays (one
value per member of a vmapped population); only the choice of schedule and
its integer periods are structural.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import optax

ArrayLike = jax.typing.ArrayLike

LEARNING_RATE_SCHEDULES = ('constant', 'warmup_cosine')
MOMENTUM_SCHEDULES = ('constant', 'sutskever')
REGULARIZER_SCHEDULES = ('constant', 'inverse_t', 'inverse_2t')
REGULARIZER_UNITS = ('step', 'epoch')


def check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
  """Raises a one-line ``ValueError`` when ``value`` is not in ``choices``.

  Args:
    field: the config field's dotted name, e.g. ``'optim.name'``.
    value: the value given.
    choices: the valid values.
  """
  if value not in choices:
    raise ValueError(
        f'{field}={value!r} is not one of {", ".join(choices)}')


def constant(value: ArrayLike) -> optax.Schedule:
  """A schedule that returns ``value`` at every step.

  Args:
    value: the constant (a float or a traced scalar).

  Returns:
    An ``optax.Schedule``.
  """
  return optax.constant_schedule(value)


def sutskever_momentum(mu_max: ArrayLike, every: int = 250) -> optax.Schedule:
  """Momentum schedule of Sutskever et al. (2013), eq. 5.

  ``mu_t = min(1 - 2^(-1 - log2(floor(t / every) + 1)), mu_max)``, computed in
  the equivalent closed form ``min(1 - 1 / (2 (floor(t / every) + 1)), mu_max)``
  (since ``2^(-1 - log2 n) = 1 / (2 n)``). It starts at 0.5 for ``t < every``,
  is 0.75 for ``every <= t < 2 every``, 5/6 next, and rises towards 1 until it
  is capped at ``mu_max``.

  Args:
    mu_max: the cap on the momentum (scalar, may be a traced array).
    every: the number of updates between increases (the paper uses 250).

  Returns:
    An ``optax.Schedule`` of the 0-based update count ``t``.

  References:
    Sutskever, Martens, Dahl, Hinton, `On the importance of initialization and
    momentum in deep learning
    <https://proceedings.mlr.press/v28/sutskever13.html>`_,
    ICML 2013, section 3 (eq. 5).
  """
  if every <= 0:
    raise ValueError(f'sutskever_momentum: every={every} must be positive')

  def schedule(count):
    n = jnp.floor(jnp.asarray(count, jnp.float32) / every) + 1.0
    return jnp.minimum(1.0 - 0.5 / n, mu_max)

  return schedule


def regularizer_weight(
    alpha: ArrayLike,
    schedule: str = 'constant',
    unit: str = 'step',
    steps_per_epoch: Optional[int] = None,
) -> optax.Schedule:
  """Weight ``alpha_t`` of a loss-side regulariser (Omega, L1 on activations).

  With ``t`` the 1-based count of elapsed units (``t = step + 1`` for
  ``unit='step'``; ``t = floor(step / steps_per_epoch) + 1`` for
  ``unit='epoch'``, so the whole first epoch has ``t = 1``):

  * ``'constant'``: ``alpha_t = alpha``;
  * ``'inverse_t'``: ``alpha_t = alpha / t``;
  * ``'inverse_2t'``: ``alpha_t = alpha / (2 t)``.

  Pascanu et al. (supplementary, music) write "an initial value for the
  regularization coefficient alpha of 0.5, where alpha follows a 1/t schedule,
  i.e. alpha_t = 1/(2t) (where t measures the number of epochs)". Starting at
  0.5 and equal to 1/(2t) is ``alpha=0.5, schedule='inverse_t',
  unit='epoch'`` (equivalently ``alpha=1.0, schedule='inverse_2t'``);
  ``alpha=0.5, schedule='inverse_2t'`` gives 1/(4t), the other reading.

  Args:
    alpha: the base weight (scalar, may be a traced array).
    schedule: one of ``'constant'``, ``'inverse_t'``, ``'inverse_2t'``.
    unit: ``'step'`` or ``'epoch'``: what ``t`` counts.
    steps_per_epoch: updates per epoch; required when ``unit='epoch'``.

  Returns:
    An ``optax.Schedule`` of the 0-based update count.

  References:
    Pascanu, Mikolov, Bengio, `On the difficulty of training recurrent neural
    networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013, supplementary
    material (music and character-level experiments).
  """
  check_choice('regularizer schedule', schedule, REGULARIZER_SCHEDULES)
  check_choice('regularizer unit', unit, REGULARIZER_UNITS)
  if unit == 'epoch' and (steps_per_epoch is None or steps_per_epoch <= 0):
    raise ValueError(
        "regularizer_weight: unit='epoch' needs a positive steps_per_epoch, "
        f'got {steps_per_epoch}')
  if schedule == 'constant':
    return constant(alpha)
  divisor = 1.0 if schedule == 'inverse_t' else 2.0

  def weight(count):
    count = jnp.asarray(count, jnp.int32)
    if unit == 'epoch':
      count = count // steps_per_epoch
    t = count.astype(jnp.float32) + 1.0
    return alpha / (divisor * t)

  return weight


def learning_rate_schedule(
    name: str,
    peak_value: ArrayLike = 1.0,
    *,
    total_steps: int = 0,
    warmup_steps: int = 0,
    final_fraction: float = 0.0,
) -> optax.Schedule:
  """The learning-rate schedule named by ``optim.schedule``.

  ``make_optimizer`` calls it with ``peak_value=1`` and multiplies the result
  by the (array-valued, per population member) ``learning_rate``, so the shape
  of the schedule is structure and its height is a number.

  Args:
    name: ``'constant'`` (always ``peak_value``) or ``'warmup_cosine'`` (linear
      from 0 to ``peak_value`` over ``warmup_steps`` updates, then cosine decay
      to ``final_fraction * peak_value`` at ``total_steps``; built with
      ``optax.warmup_cosine_decay_schedule``).
    peak_value: the learning rate at the top of the schedule.
    total_steps: the length of the whole run, warm-up included (used by
      ``'warmup_cosine'`` only).
    warmup_steps: updates of linear warm-up (``'warmup_cosine'`` only; 0 means
      cosine decay from the first update).
    final_fraction: final learning rate as a fraction of the peak
      (``'warmup_cosine'`` only).

  Returns:
    An ``optax.Schedule`` of the 0-based update count.
  """
  check_choice('optim.schedule', name, LEARNING_RATE_SCHEDULES)
  if name == 'constant':
    return constant(peak_value)
  if total_steps <= warmup_steps:
    raise ValueError(
        f'warmup_cosine needs total_steps ({total_steps}) > warmup_steps '
        f'({warmup_steps})')
  # The shape is built with peak 1 and scaled, so that ``peak_value`` may be
  # a traced array (optax branches on the peak in Python).
  if warmup_steps == 0:
    shape = optax.cosine_decay_schedule(
        init_value=1.0, decay_steps=total_steps, alpha=final_fraction)
  else:
    shape = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=warmup_steps,
        decay_steps=total_steps,
        end_value=final_fraction,
    )
  return lambda count: peak_value * shape(count)
