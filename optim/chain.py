"""The optimiser, built from the config in one place.

``make_optimizer(cfg, total_steps)`` turns an ``optim`` config (see
``default_config``) into one ``optax.GradientTransformation``::

    MultiSteps(                                  # if accumulate_steps > 1
        skip_large_updates(                      # if guard_max_norm > 0; on a skip,
                                                 # shrink w_rec if guard_shrink > 0
            inject_hyperparams(
                chain(clip(clip_value),          # if clip_value > 0
                      clip_by_global_norm(clip_norm)       # if clip_norm > 0, or
                      | clip_by_global_norm_auto(...),     # if auto_steps > 0
                      add_decayed_weights(weight_decay),   # if > 0, not adamw
                      <optimiser name>(learning_rate * lr_scale(count), ...)))))

Structure and numbers are kept apart. The config's strings and integer fields
(``name``, ``schedule``, which clips are on, ...) decide what is compiled.
Every numeric hyperparameter in use (``learning_rate``, ``momentum``,
``clip_norm``, ``weight_decay``, ...) is an array in the state's
``hyperparams`` dict under its config field name, and the learning-rate
schedule contributes only its shape ``lr_scale`` (peak 1). A population of
members that share the structure but not the numbers is therefore one vmapped
program::

    opt = make_optimizer(cfg, total_steps)
    init = lambda p, lr: set_hyperparams(opt.init(p), learning_rate=lr)
    states = jax.vmap(init)(params, learning_rates)
    updates, states = jax.vmap(opt.update)(grads, states, params)

Skipped updates (guard) advance no count: schedules run on applied updates.

Gradient accumulation (``accumulate_steps = k > 1``, ``optax.MultiSteps``):
every call of ``update`` is one micro-batch; the chain returns zero updates
for k - 1 calls and, at the k-th, applies everything inside it (guard,
clipping, optimiser) once to the mean of the k gradients, so k micro-batches
of B sequences make the update of one batch of k B (exactly so when every
micro-batch's loss is a mean over as many scored steps; the mean is
unweighted). Every count inside the chain (the learning-rate schedule and
its ``warmup_steps``, the momentum schedule, ``clip_norm_auto_steps``, the
guard's ``skipped``) counts updates, not micro-batches; ``total_steps`` too.
The accumulator and the micro-batch count live in the state, so a
checkpoint taken between two updates resumes where it was.
"""

from __future__ import annotations

import ml_collections
import optax

from optim import schedules
from optim import transforms

# A clipping threshold no gradient reaches: plain SGD as a member of a population
# whose other members clip (the threshold is a number in the train state, not
# structure). ``clips`` tells whether a threshold clips at all.
NO_CLIP = 1e30


def clips(threshold) -> bool:
  """Whether ``clip_norm=threshold`` clips: neither 0 (off) nor ``NO_CLIP``."""
  return bool(threshold) and threshold < NO_CLIP

OPTIMIZERS = ('sgd', 'momentum', 'nesterov', 'adam', 'rmsprop', 'adamw')
# The optimisers whose own update decays the weights (decoupled, as optax.adamw):
# for the others ``weight_decay`` is added to the gradient before the update.
DECOUPLED_DECAY = ('adamw',)

# Numeric fields that become injected hyperparameters when in use.
_ADAM_FIELDS = ('adam_b1', 'adam_b2', 'adam_eps')
_RMSPROP_FIELDS = ('rmsprop_decay', 'rmsprop_eps')


def default_config() -> ml_collections.ConfigDict:
  """The ``optim`` config that experiments start from: plain SGD, guarded.

  The defaults are the authors' public code where it has one (learning rate
  0.01, skip on a gradient norm above 1e10); clipping is off so that the
  default is the papers' "SGD" baseline and experiments switch on what they
  study.
  """
  cfg = ml_collections.ConfigDict()
  # Optimiser: 'sgd' | 'momentum' (classical) | 'nesterov' (Bengio et al.
  # 2013 simplified Nesterov) | 'adam' | 'rmsprop' | 'adamw'.
  cfg.name = 'sgd'
  # Peak learning rate (the height of the schedule); an array in the state.
  cfg.learning_rate = 0.01
  # Learning-rate schedule shape: 'constant' | 'warmup_cosine'.
  cfg.schedule = 'constant'
  # Linear warm-up updates before the cosine decay ('warmup_cosine' only).
  cfg.warmup_steps = 0
  # Final learning rate as a fraction of the peak ('warmup_cosine' only).
  cfg.final_lr_fraction = 0.0
  # Momentum ('momentum', 'nesterov'): the constant, or the cap mu_max of the
  # Sutskever schedule. An array in the state.
  cfg.momentum = 0.9
  # Momentum schedule: 'constant' | 'sutskever' (Sutskever et al. 2013).
  cfg.momentum_schedule = 'constant'
  # Updates between increases of the Sutskever momentum (the paper: 250).
  cfg.momentum_schedule_every = 250
  # Global-norm clipping threshold (Pascanu et al. Alg. 1); 0 = off.
  cfg.clip_norm = 0.0
  # > 0: threshold = clip_norm_auto_factor * mean gradient norm over this many
  # first updates (no clipping before); 0 = off. Exclusive with clip_norm.
  cfg.clip_norm_auto_steps = 0
  # Multiple of the mean norm used as the automatic threshold.
  cfg.clip_norm_auto_factor = 1.0
  # Element-wise clipping to [-clip_value, clip_value] (Mikolov); 0 = off.
  cfg.clip_value = 0.0
  # L2 weight decay added to the gradient (decoupled for 'adamw', where the
  # step subtracts learning_rate * weight_decay * params: optax's and
  # PyTorch's convention); 0 = off.
  cfg.weight_decay = 0.0
  # Skip (zero update, state unchanged) when the gradient norm is non-finite
  # or above this (the authors' code: 1e10); 0 = no guard.
  cfg.guard_max_norm = 1e10
  # What a guarded update does instead: 0 = nothing (zero update); > 0 = the
  # authors' code: every recurrent matrix (w_rec) shrinks by
  # learning_rate * guard_shrink of itself (their value: 0.02).
  cfg.guard_shrink = 0.0
  # Adam / AdamW moments' decay rates and epsilon.
  cfg.adam_b1 = 0.9
  cfg.adam_b2 = 0.999
  cfg.adam_eps = 1e-8
  # RMSProp squared-gradient decay rate and epsilon; epsilon is added inside
  # the square root, g / sqrt(nu + eps) (optax's convention; PyTorch and Keras
  # add it outside).
  cfg.rmsprop_decay = 0.9
  cfg.rmsprop_eps = 1e-8
  # Gradient accumulation: one update per this many micro-batches (training
  # steps), on the mean of their gradients (optax.MultiSteps); 1 = off.
  # Structure (an integer), never a population member.
  cfg.accumulate_steps = 1
  return cfg


def _check(cfg: ml_collections.ConfigDict) -> None:
  schedules.check_choice('optim.name', cfg.name, OPTIMIZERS)
  schedules.check_choice('optim.schedule', cfg.schedule,
                         schedules.LEARNING_RATE_SCHEDULES)
  schedules.check_choice('optim.momentum_schedule', cfg.momentum_schedule,
                         schedules.MOMENTUM_SCHEDULES)
  for field in ('learning_rate', 'warmup_steps', 'clip_norm',
                'clip_norm_auto_steps', 'clip_value', 'weight_decay',
                'guard_max_norm', 'guard_shrink'):
    if cfg[field] < 0:
      raise ValueError(f'optim.{field}={cfg[field]!r} must be >= 0')
  accumulate_steps(cfg)
  if cfg.clip_norm > 0 and cfg.clip_norm_auto_steps > 0:
    raise ValueError(
        'optim.clip_norm and optim.clip_norm_auto_steps are both set; '
        'choose a fixed or an automatic threshold')


def accumulate_steps(cfg: ml_collections.ConfigDict) -> int:
  """``optim.accumulate_steps`` checked (an integer >= 1; absent: 1): the
  micro-batches per update."""
  k = cfg.get('accumulate_steps', 1)
  if isinstance(k, bool) or not isinstance(k, int) or k < 1:
    raise ValueError(f'optim.accumulate_steps={k!r} must be an integer >= 1 (1: no accumulation)')
  return k


def numeric_hyperparams(cfg: ml_collections.ConfigDict) -> dict[str, float]:
  """The numeric fields in use, by config name (float, so never int32): the
  chain's injected hyperparameters, arrays in its state. These, and the loss
  side's weights that are on, are what may differ between the members of
  one program (``population.member_hparams``)."""
  names = ['learning_rate']
  if cfg.name in ('momentum', 'nesterov'):
    names.append('momentum')
  if cfg.clip_norm_auto_steps > 0:
    names.append('clip_norm_auto_factor')
  elif cfg.clip_norm > 0:
    names.append('clip_norm')
  if cfg.clip_value > 0:
    names.append('clip_value')
  if cfg.weight_decay > 0:
    names.append('weight_decay')
  if cfg.name in ('adam', 'adamw'):
    names.extend(_ADAM_FIELDS)
  if cfg.name == 'rmsprop':
    names.extend(_RMSPROP_FIELDS)
  return {name: float(cfg[name]) for name in names}


def optimizer_only_fields() -> tuple[str, ...]:
  """The numeric fields (``optim.<name>``) that some optimisers read and others
  do not (``numeric_hyperparams`` over ``OPTIMIZERS`` at the defaults): a
  sweep may not vary one its optimiser ignores."""
  used = []
  for name in OPTIMIZERS:
    cfg = default_config()
    cfg.name = name
    used.append(set(numeric_hyperparams(cfg)))
  return tuple(sorted(f'optim.{k}' for k in set.union(*used) - set.intersection(*used)))


def make_optimizer(
    cfg: ml_collections.ConfigDict,
    total_steps: int,
) -> optax.GradientTransformationExtraArgs:
  """Builds the optimiser described by an ``optim`` config.

  An optimiser's branch in ``build`` passes optax every argument that would
  act: one the config has no field for is pinned to what the config means
  (``optax.lion``'s own ``weight_decay`` defaults to 1e-3, ``optax.adamw``'s to
  1e-4), so that nothing the config does not say changes the update; one whose
  update decays the weights itself is in ``DECOUPLED_DECAY``.

  Args:
    cfg: an ``optim`` config with the fields of ``default_config`` (read
      once; later changes to ``cfg`` do not affect the result).
    total_steps: number of updates of the run (sets the cosine decay); with
      ``accumulate_steps = k`` that is the number of micro-batches // k.

  Returns:
    An ``optax.GradientTransformationExtraArgs``. Its ``update`` needs
    ``params`` when weight decay is on. Use ``transforms.inspect`` on its
    state for logging and ``transforms.set_hyperparams`` to change the numbers.

  Raises:
    ValueError: an unknown name or schedule (the message lists the valid
      ones), a negative value, or both kinds of norm clipping.

  References:
    Pascanu, Mikolov, Bengio, `On the difficulty of training recurrent neural
    networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013 (Algorithm 1).

    Bengio, Boulanger-Lewandowski, Pascanu, `Advances in optimizing recurrent
    networks <https://arxiv.org/abs/1212.0901>`_, ICASSP 2013 (section 3.5).
  """
  _check(cfg)
  # Structural choices, copied so that the closure below never reads cfg.
  name = str(cfg.name)
  auto_clip_steps = int(cfg.clip_norm_auto_steps)
  momentum_schedule = str(cfg.momentum_schedule)
  momentum_every = int(cfg.momentum_schedule_every)
  lr_shape = schedules.learning_rate_schedule(
      cfg.schedule, 1.0,
      total_steps=total_steps,
      warmup_steps=int(cfg.warmup_steps),
      final_fraction=float(cfg.final_lr_fraction))

  # optax.inject_hyperparams calls this on every update with the current
  # (possibly traced) values; a None argument is a transform that is off.
  def build(lr_scale, learning_rate, momentum=None, clip_norm=None,
            clip_norm_auto_factor=None, clip_value=None, weight_decay=None,
            adam_b1=None, adam_b2=None, adam_eps=None, rmsprop_decay=None,
            rmsprop_eps=None):
    parts = []
    if clip_value is not None:
      parts.append(optax.clip(clip_value))
    if clip_norm_auto_factor is not None:
      parts.append(transforms.clip_by_global_norm_auto(
          auto_clip_steps, clip_norm_auto_factor))
    elif clip_norm is not None:
      parts.append(optax.clip_by_global_norm(clip_norm))
    if weight_decay is not None and name not in DECOUPLED_DECAY:
      parts.append(optax.add_decayed_weights(weight_decay))

    lr = learning_rate * lr_scale
    if name == 'sgd':
      parts.append(optax.sgd(lr))
    elif name in ('momentum', 'nesterov'):
      mu = (schedules.sutskever_momentum(momentum, momentum_every)
            if momentum_schedule == 'sutskever' else momentum)
      parts.append(transforms.momentum_sgd(lr, mu,
                                           nesterov=name == 'nesterov'))
    elif name == 'adam':
      parts.append(optax.adam(lr, b1=adam_b1, b2=adam_b2, eps=adam_eps))
    elif name == 'adamw':
      parts.append(optax.adamw(
          lr, b1=adam_b1, b2=adam_b2, eps=adam_eps,
          weight_decay=0.0 if weight_decay is None else weight_decay))
    elif name == 'rmsprop':
      parts.append(optax.rmsprop(lr, decay=rmsprop_decay, eps=rmsprop_eps))
    else:     # a name in OPTIMIZERS that has no branch here yet
      raise ValueError(f'optim.name={name!r} is in OPTIMIZERS but make_optimizer does not build it')
    return optax.chain(*parts)

  build(1.0, **numeric_hyperparams(cfg))   # a name without a branch fails here, not at step 1
  opt = optax.inject_hyperparams(build)(
      lr_scale=lr_shape, **numeric_hyperparams(cfg))
  if cfg.guard_max_norm > 0:
    on_skip = (transforms.shrink_recurrent(float(cfg.guard_shrink))
               if cfg.guard_shrink > 0 else None)
    opt = transforms.skip_large_updates(opt, float(cfg.guard_max_norm), on_skip)
  accumulate = accumulate_steps(cfg)
  if accumulate > 1:
    # Outermost, so that the guard and the clipping see the accumulated
    # (mean) gradient, as they would see the gradient of the large batch.
    multi = optax.MultiSteps(opt, accumulate)
    opt = optax.GradientTransformationExtraArgs(multi.init, multi.update)
  return opt
