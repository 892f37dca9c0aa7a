"""Gradient transformations of Pascanu et al. (2013) and Bengio et al. (2013).

Each transformation is written in optax's own form: a ``NamedTuple`` state
and an ``init_fn``/``update_fn`` pair returned as an
``optax.GradientTransformation``.
Hyperparameters are ``ArrayLike`` so that they can be traced arrays (one value
per member of a vmapped population).

Norm clipping (Pascanu et al., Algorithm 1) is ``optax.clip_by_global_norm``
and element-wise clipping is ``optax.clip``; they are reused, not rewritten.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

ArrayLike = jax.typing.ArrayLike
ScalarOrSchedule = Union[ArrayLike, Callable[[ArrayLike], ArrayLike]]

# Name of the injected hyperparameter holding the value of the learning-rate
# schedule's shape (peak 1) at the current update; ``make_optimizer`` injects
# it beside the array-valued ``learning_rate`` and ``inspect`` multiplies them.
LR_SCALE = 'lr_scale'


def _value_at(hyperparam: ScalarOrSchedule, count: jax.Array) -> ArrayLike:
  return hyperparam(count) if callable(hyperparam) else hyperparam


# ---------------------------------------------------------------------------
# Momentum: classical and simplified Nesterov.


class MomentumSGDState(NamedTuple):
  """State of ``momentum_sgd``.

  Attributes:
    count: number of updates applied so far, ``k`` (int32 scalar).
    velocity: ``v_k``, same tree as the parameters, in parameter units (the
      learning rate is already folded in, as in the paper).
  """
  count: jax.Array
  velocity: optax.Updates


def momentum_sgd(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule,
    nesterov: bool = True,
) -> optax.GradientTransformation:
  r"""SGD with classical momentum or Bengio et al.'s simplified Nesterov.

  Index convention. ``k = 0, 1, 2, ...`` is the count of updates already
  applied (``state.count``); schedules are called with it. The update number
  ``k`` receives the gradient ``g_k`` taken at the current parameters and
  maps onto the paper's step ``t = k + 1``, so that ``mu_{t-1} = mu(k)``,
  ``mu_t = mu(k + 1)`` and ``eps_{t-1} = lr(k)``; ``v_0 = 0`` is the paper's
  ``v_1 = 0``.

  * ``nesterov=True``, Bengio et al. (2013) eq. 6-7::

      v_{k+1} = mu(k) v_k - lr(k) g_k
      update  = mu(k+1) mu(k) v_k - (1 + mu(k+1)) lr(k) g_k

    The parameters are the paper's "peeked-ahead" ``Theta``. For constant
    ``mu`` and ``lr`` this equals ``optax.sgd(lr, momentum=mu,
    nesterov=True)``; with schedules it does not, because optax keeps the
    velocity without the learning rate and uses one ``mu`` per step.

  * ``nesterov=False``, classical momentum (Bengio et al. eq. 4-5)::

      v_{k+1} = mu(k) v_k - lr(k) g_k
      update  = v_{k+1}

  The output is the final update, to be added to the parameters (as with
  ``optax.sgd``; the learning rate and the minus sign are included).

  Args:
    learning_rate: ``lr``, a scalar (float or array) or an ``optax.Schedule``
      of the update count ``k``.
    momentum: ``mu``, a scalar or an ``optax.Schedule`` of ``k``.
    nesterov: simplified Nesterov (True) or classical momentum (False).

  Returns:
    An ``optax.GradientTransformation``; its state is ``MomentumSGDState``.

  References:
    Bengio, Boulanger-Lewandowski, Pascanu, `Advances in optimizing recurrent
    networks <https://arxiv.org/abs/1212.0901>`_, ICASSP 2013, section 3.5,
    eq. 6-7.

    Sutskever, Martens, Dahl, Hinton, `On the importance of initialization and
    momentum in deep learning
    <https://proceedings.mlr.press/v28/sutskever13.html>`_, ICML 2013.
  """

  def init_fn(params):
    return MomentumSGDState(
        count=jnp.zeros([], jnp.int32),
        velocity=optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    k = state.count
    lr = _value_at(learning_rate, k)
    mu_prev = _value_at(momentum, k)  # the paper's mu_{t-1}
    velocity = jax.tree.map(
        lambda v, g: (mu_prev * v - lr * g).astype(v.dtype),
        state.velocity, updates)
    if nesterov:
      mu_next = _value_at(momentum, k + 1)  # the paper's mu_t
      updates = jax.tree.map(
          lambda v, g: (mu_next * mu_prev * v
                        - (1.0 + mu_next) * lr * g).astype(g.dtype),
          state.velocity, updates)
    else:
      updates = jax.tree.map(lambda v, g: v.astype(g.dtype), velocity,
                             updates)
    return updates, MomentumSGDState(
        count=optax.safe_increment(k), velocity=velocity)

  return optax.GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------
# Norm clipping with a threshold taken from the first updates.


class AutoClipState(NamedTuple):
  """State of ``clip_by_global_norm_auto``.

  Attributes:
    count: number of updates seen (int32 scalar, saturating).
    mean_norm: mean global gradient norm over the warm-up updates seen so far
      (frozen once the warm-up is over).
    threshold: the clipping threshold: ``+inf`` during warm-up, then
      ``factor * mean_norm``.
  """
  count: jax.Array
  mean_norm: jax.Array
  threshold: jax.Array


def clip_by_global_norm_auto(
    warmup_steps: int,
    factor: ArrayLike = 1.0,
) -> optax.GradientTransformation:
  """Norm clipping whose threshold is the mean norm of the first updates.

  Pascanu et al. (section 3.2) suggest choosing the threshold from "statistics
  on the average norm over a sufficiently large number of updates"; Bengio et
  al. (section 4) set it "based on the average norm of the gradient over one
  pass on the data". During the first ``warmup_steps`` updates this transform
  passes the gradients through unclipped (choice: the statistic should
  describe the unclipped gradients, and the threshold does not exist yet) and
  accumulates the mean of their global norms. From update ``warmup_steps`` on
  (0-based) it clips with ``optax.clip_by_global_norm`` (Algorithm 1) at
  ``threshold = factor * mean``.

  The mean includes every update it sees; place it inside
  ``skip_large_updates`` so that non-finite gradients never reach it.

  Args:
    warmup_steps: number of updates whose norms are averaged (>= 1).
    factor: threshold as a multiple of the mean norm (may be a traced array).

  Returns:
    An ``optax.GradientTransformation``; its state is ``AutoClipState``.

  References:
    Pascanu, Mikolov, Bengio, `On the difficulty of training recurrent neural
    networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013, section 3.2 and
    Algorithm 1.

    Bengio, Boulanger-Lewandowski, Pascanu, `Advances in optimizing recurrent
    networks <https://arxiv.org/abs/1212.0901>`_, ICASSP 2013, section 4.
  """
  if warmup_steps < 1:
    raise ValueError(
        f'clip_by_global_norm_auto: warmup_steps={warmup_steps} must be >= 1')

  def init_fn(params):
    del params
    return AutoClipState(
        count=jnp.zeros([], jnp.int32),
        mean_norm=jnp.zeros([], jnp.float32),
        threshold=jnp.full([], jnp.inf, jnp.float32))

  def update_fn(updates, state, params=None):
    del params
    in_warmup = state.count < warmup_steps
    clipped, _ = optax.clip_by_global_norm(state.threshold).update(
        updates, optax.EmptyState())
    # Select explicitly rather than rely on the infinite threshold, which
    # would turn an infinite norm into NaN.
    out = jax.tree.map(lambda u, c: jnp.where(in_warmup, u, c), updates,
                       clipped)

    norm = optax.tree.norm(updates).astype(jnp.float32)
    seen = state.count + 1
    mean_norm = jnp.where(
        in_warmup,
        state.mean_norm + (norm - state.mean_norm) / seen.astype(jnp.float32),
        state.mean_norm)
    threshold = jnp.where(seen >= warmup_steps, factor * mean_norm, jnp.inf)
    return out, AutoClipState(
        count=optax.safe_increment(state.count),
        mean_norm=mean_norm,
        threshold=threshold.astype(jnp.float32))

  return optax.GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------
# Skip updates whose gradient norm is non-finite or huge.


class SkipLargeUpdatesState(NamedTuple):
  """State of ``skip_large_updates``.

  Attributes:
    skipped: total number of skipped updates since ``init`` (int32 scalar).
    last_skipped: whether the latest update was skipped (bool scalar).
    inner_state: the inner transformation's state, untouched by skipped
      updates.
  """
  skipped: jax.Array
  last_skipped: jax.Array
  inner_state: optax.OptState


def skip_large_updates(
    inner: optax.GradientTransformation,
    max_norm: ArrayLike = 1e10,
    on_skip: Callable[[optax.Params, optax.OptState], optax.Updates] | None = None,
) -> optax.GradientTransformationExtraArgs:
  """Skips updates whose global gradient norm is non-finite or > ``max_norm``.

  Like ``optax.apply_if_finite``, but also skips on a finite norm above
  ``max_norm``, and never gives up. On a skipped update it returns zero
  updates and leaves the inner state (step counts, velocities, schedules)
  exactly as it was; it counts the skipped updates.

  The authors' code (Pascanu et al., public Theano implementation) tests the
  same condition (non-finite or > 1e10) but, instead of a zero update, shrinks
  W_rec by lr * 0.02 W_rec: pass that as ``on_skip`` (``shrink_recurrent``).

  Args:
    inner: the transformation to guard.
    max_norm: largest global norm of the incoming updates that is applied.
    on_skip: ``on_skip(params, inner_state) -> updates``, what a skipped update
      applies instead of zeros (the inner state still stays as it was).

  Returns:
    An ``optax.GradientTransformationExtraArgs``; its state is
    ``SkipLargeUpdatesState``.

  References:
    Pascanu, Mikolov, Bengio, `On the difficulty of training recurrent neural
    networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013 (authors' code).
  """
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return SkipLargeUpdatesState(
        skipped=jnp.zeros([], jnp.int32),
        last_skipped=jnp.array(False),
        inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    norm = optax.tree.norm(updates)
    ok = jnp.logical_and(jnp.isfinite(norm), norm <= max_norm)

    # Both branches, then a select (as vmap makes of a cond): a lax.cond's
    # outputs are new buffers, a copy of every parameter per update, which
    # cost a PTB word model 18% of its update time (2026-12-04). What a
    # non-finite gradient makes of the inner update is discarded here.
    applied, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
    skipped = (optax.tree.zeros_like(updates) if on_skip is None
               else on_skip(params, state.inner_state))
    pick = lambda new, old: jnp.where(ok, new, old)
    new_updates = jax.tree.map(pick, applied, skipped)
    inner_state = jax.tree.map(pick, inner_state, state.inner_state)
    return new_updates, SkipLargeUpdatesState(
        skipped=jnp.where(ok, state.skipped,
                          optax.safe_increment(state.skipped)),
        last_skipped=jnp.logical_not(ok),
        inner_state=inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def shrink_recurrent(factor: float, leaf: str = 'w_rec'):
  """An ``on_skip`` for ``skip_large_updates``: the authors' reaction to an
  overflowing gradient. Every leaf named ``leaf`` moves by
  ``-learning_rate * factor * itself`` (the authors' code: factor 0.02 on
  W_hh), every other leaf stays. The learning rate is the ``learning_rate``
  that ``optax.inject_hyperparams`` keeps in the guarded state.
  """
  def on_skip(params, inner_state):
    if params is None:
      raise ValueError('shrink_recurrent needs the params in update()')
    lr = optax.tree_utils.tree_get(inner_state, 'learning_rate')
    if lr is None:
      raise ValueError('shrink_recurrent needs an inject_hyperparams state '
                       'with a learning_rate')

    def one(path, p):
      name = getattr(path[-1], 'key', None) if path else None
      return -lr * factor * p if name == leaf else jnp.zeros_like(p)

    return jax.tree_util.tree_map_with_path(one, params)

  return on_skip


class HalveOnRiseState(NamedTuple):
  """State of ``halve_on_rise`` (field names unique in an optimiser state, so
  that ``optax.tree_utils.tree_get`` finds them).

  Attributes:
    halving_scale: the factor on the updates, 1 / 2 ** halvings (float32).
    halving_epoch: the epoch whose error is being summed (int32).
    halving_total: the sum of loss x weight over that epoch so far.
    halving_weight: the sum of the weights over that epoch so far.
    halving_previous: the previous epoch's error (inf before the first).
  """
  halving_scale: jax.Array
  halving_epoch: jax.Array
  halving_total: jax.Array
  halving_weight: jax.Array
  halving_previous: jax.Array


def halve_on_rise(on_train_loss: bool = True) -> optax.GradientTransformationExtraArgs:
  """Halves the updates after every epoch whose error did not fall below
  the previous epoch's (Pascanu et al. 2013, supplementary, music: "the
  learning rate halved every time the error over an epoch increased instead
  of decreasing").

  In the shape of ``optax.contrib.reduce_on_plateau``, with the paper's rule:
  the comparison is with the previous epoch, not with the best. Chain it
  after the optimiser; ``update`` takes the extra arguments

  * ``loss``: the step's mean loss per scored item,
  * ``weight``: how many items it scored (0: the step counts for nothing),
  * ``epoch``: the epoch the step belongs to.

  The epoch's error is the weighted mean of its steps' losses. It is judged
  at the first update of a later epoch (so an epoch whose last step was
  dropped is still judged), and the new factor applies from that update on;
  an epoch with no weight leaves the factor and the previous error as they
  were. With ``on_train_loss=False`` the updates are only scaled, and the
  error comes from outside the step (validation): ``halve_if_rose``.

  Args:
    on_train_loss: judge the training loss passed to ``update``.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; its state is
    ``HalveOnRiseState``.
  """

  def init_fn(params):
    del params
    return HalveOnRiseState(
        halving_scale=jnp.ones([], jnp.float32), halving_epoch=jnp.zeros([], jnp.int32),
        halving_total=jnp.zeros([], jnp.float32), halving_weight=jnp.zeros([], jnp.float32),
        halving_previous=jnp.full([], jnp.inf, jnp.float32))

  def update_fn(updates, state, params=None, *, loss=None, weight=None, epoch=None,
                **extra_args):
    del params, extra_args
    if on_train_loss:
      new_epoch = jnp.asarray(epoch, jnp.int32) != state.halving_epoch
      seen = state.halving_weight > 0
      mean = state.halving_total / jnp.maximum(state.halving_weight, 1e-30)
      judged = new_epoch & seen
      rose = judged & jnp.logical_not(mean < state.halving_previous)
      weight = jnp.asarray(weight, jnp.float32)
      state = HalveOnRiseState(
          halving_scale=jnp.where(rose, state.halving_scale * 0.5, state.halving_scale),
          halving_epoch=jnp.asarray(epoch, jnp.int32),
          halving_total=jnp.where(new_epoch, 0.0, state.halving_total)
          + jnp.asarray(loss, jnp.float32) * weight,
          halving_weight=jnp.where(new_epoch, 0.0, state.halving_weight) + weight,
          halving_previous=jnp.where(judged, mean, state.halving_previous))
    updates = jax.tree.map(lambda u: u * state.halving_scale.astype(u.dtype), updates)
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def halve_if_rose(opt_state: optax.OptState, errors: ArrayLike, judged: ArrayLike
                  ) -> optax.OptState:
  """``halve_on_rise(on_train_loss=False)``'s rule on errors measured
  outside the step: halves the factor where ``judged`` and the error did not
  fall below the previous one, and keeps each judged error as the next
  comparison. Elementwise, so a population's [P] errors act member by member."""
  scale = optax.tree_utils.tree_get(opt_state, 'halving_scale')
  previous = optax.tree_utils.tree_get(opt_state, 'halving_previous')
  if scale is None:
    raise KeyError('halve_if_rose: the optimiser state has no halve_on_rise')
  errors = jnp.asarray(errors, jnp.float32)
  judged = jnp.asarray(judged, bool)
  rose = judged & jnp.logical_not(errors < previous)
  return optax.tree_utils.tree_set(
      opt_state, halving_scale=jnp.where(rose, scale * 0.5, scale),
      halving_previous=jnp.where(judged, errors, previous))


# ---------------------------------------------------------------------------
# Reading and writing the state.

_INJECT_STATES = (optax.InjectStatefulHyperparamsState,
                  optax.InjectHyperparamsState)


def _children(state: Any) -> list[Any]:
  if isinstance(state, dict):
    return list(state.values())
  if isinstance(state, (tuple, list)):
    return list(state)
  return []


def inspect(opt_state: optax.OptState) -> dict[str, jax.Array]:
  """Values worth logging, read from a (possibly nested, injected) state.

  Keys, each present only where the state holds it (the outermost wins):

  * ``'skipped'``: total skipped updates (``skip_large_updates``).
  * ``'clip_threshold'``: the norm-clipping threshold: the injected
    ``clip_norm`` hyperparameter, or ``clip_by_global_norm_auto``'s threshold
    (``inf`` during its warm-up).
  * ``'learning_rate'``: the injected ``learning_rate``, times the injected
    ``lr_scale`` when there is one (as ``make_optimizer`` builds it), times
    ``halve_on_rise``'s factor when it is chained. Like all
    ``optax.inject_hyperparams`` values it is the one used by the latest
    update (after ``init``: the one the first update will use).

  Args:
    opt_state: an optimiser state; under ``jax.vmap`` the values carry the
      population axis.

  Returns:
    A dict from the names above to arrays.
  """
  found: dict[str, jax.Array] = {}

  def visit(state):
    if isinstance(state, SkipLargeUpdatesState):
      found.setdefault('skipped', state.skipped)
    elif isinstance(state, AutoClipState):
      found.setdefault('clip_threshold', state.threshold)
    elif isinstance(state, _INJECT_STATES):
      hps = state.hyperparams
      if 'learning_rate' in hps:
        lr = hps['learning_rate']
        if LR_SCALE in hps:
          lr = lr * hps[LR_SCALE]
        found.setdefault('learning_rate', lr)
      if 'clip_norm' in hps:
        found.setdefault('clip_threshold', hps['clip_norm'])
    elif isinstance(state, HalveOnRiseState):
      found['halving_scale'] = state.halving_scale
    for child in _children(state):
      visit(child)

  visit(opt_state)
  if 'halving_scale' in found and 'learning_rate' in found:
    found['learning_rate'] = found['learning_rate'] * found.pop('halving_scale')
  return found


def set_hyperparams(opt_state: optax.OptState, **values: ArrayLike):
  """Returns ``opt_state`` with injected numeric hyperparameters replaced.

  This is how a population gets per-member hyperparameters: inside
  ``jax.vmap``, ``set_hyperparams(opt.init(params), learning_rate=lr)`` with a
  per-member ``lr``. It is ``optax.tree_utils.tree_set`` with each value cast
  to the dtype already in the state (so that new numbers are data, never a
  new trace). Scheduled hyperparameters (such as ``lr_scale``) are
  recomputed on every update, so setting them has no lasting effect.

  Raises:
    KeyError: a name is not an injected hyperparameter anywhere in the state.
  """
  current = {name: optax.tree_utils.tree_get(opt_state, name) for name in values}
  missing = sorted(name for name, v in current.items() if v is None)
  if missing:
    raise KeyError(f'set_hyperparams: {", ".join(missing)} not among the injected '
                   'hyperparameters of this optimiser state')
  return optax.tree_utils.tree_set(opt_state, **{
      name: jnp.asarray(value, dtype=jnp.asarray(current[name]).dtype)
      for name, value in values.items()})
