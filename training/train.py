"""One trainer for every task: pure train/eval steps and the run loop.

``train_and_evaluate(config, workdir)`` is what ``launch.py`` calls. The
workdir receives
- ``config.json``: the config of the run;
- ``metrics.jsonl``: one JSON object per logged step (split, loss, error,
  gradient norm before clipping, fraction of steps clipped, spectral radius
  of W_rec, Omega, steps skipped by the guard, throughput);
- ``result.json``: final metrics, steps, wall time, whether it solved, and the test
  at each member's lowest validation loss;
- ``checkpoints/``: orbax checkpoints; rerunning the same command resumes.

The inner loop runs ``log_every`` steps as one ``lax.scan`` inside one
compiled program, with the data generated on (or read from) the device, so
Python is touched once per log line, not once per step. Every run is a
population (``training/population.py``; one member by default): the members' states
are stacked and the chunk is ``jax.vmap``ped over them (on one CPU device
``lax.map``ped: one after another, ``population.layout``). What differs between
tasks lives in ``tasks/`` (the interface: ``tasks.Task``).

Beside it: ``training/workdir.py`` (config.json checked against a rerun,
metrics.jsonl, branching from another run), ``training/selection.py`` (what
each validation decides: the best parameters, patience, the annealing
schedules), ``training/population.py`` (members, mesh and layout).

Steps and updates. A step is one batch: ``train.num_steps``, ``task.epochs``,
``log_every``, ``eval_every``, ``chunk_schedule`` and the data's index count
steps. With gradient accumulation (``optim.accumulate_steps = k``) a step is
one micro-batch and the parameters change at every k-th step (the optimiser
chain holds the accumulated gradient), so a run of ``num_steps`` steps makes
``num_steps // k`` updates (a last, incomplete accumulation is never
applied); the optimiser's own counts (learning-rate schedule, warm-up,
momentum schedule) and Omega's per-step schedule count updates. The logged
``grad_norm`` and ``clipped`` are each micro-batch's, before accumulation.
Validation between two updates scores the parameters of the last update.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import signal
import subprocess
import threading
import time
from typing import Any, NamedTuple

import flax
import jax
import jax.extend
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

import optim
import tasks
from models import cells as cells_lib
from models.rnn import COMPUTE_DTYPES, MEMBER_RATES, OUTPUTS, RecurrentNetwork
from optim import omega as omega_lib
from training import distributed
from training import population
from training import records
from training import selection
from training import workdir as workdir_lib
from training.errors import Interrupted, RunError
from training.selection import BestOnValid


# ---------------------------------------------------------------------------
# Loss.

def valid_steps(mask: jax.Array) -> jax.Array:
  """[T, B] 1 up to each sequence's last scored step (later steps are padding)."""
  return (jnp.cumsum(mask[::-1], axis=0)[::-1] > 0).astype(mask.dtype)


def make_model(config: ml_collections.ConfigDict, task: tasks.Task) -> RecurrentNetwork:
  m = dict(config.model)
  m['leak_range'] = tuple(m.get('leak_range', (0.02, 0.2)))
  m['input_layers'] = tuple(m.get('input_layers', ()))
  m.update(task.model_kwargs)   # what the data decide: word ids, classes
  return RecurrentNetwork(output_size=task.output_size, **m)


# What the gradient is taken of, which sets the scale that the clipping
# threshold and the learning rate act on: 'mean' over every scored step, or
# 'sum_over_time' (summed over a window's steps, averaged over the batch's
# sequences), Pascanu et al.'s PTB setting ("a cut-off threshold of 45 (though
# we take the sum of the cost over the sequence length)"). The logged loss is
# the per-step mean either way.
LOSS_REDUCTIONS = ('mean', 'sum_over_time')


# ---------------------------------------------------------------------------
# Train state and steps.

@flax.struct.dataclass
class TrainState:
  """One member's state; a population stacks these on a leading axis."""
  step: jax.Array
  params: Any
  opt_state: Any
  key: jax.Array          # the member's key; step keys are fold_in(key, step)
  hp: dict                # loss-side numbers: omega_alpha, l1_weight, bptt_clip
  active: jax.Array       # False once solved or diverged: the member stops learning
  carry: Any = ()         # per layer [B, S], carried between batches (truncated BPTT)


class Forward(NamedTuple):
  """What ``Trainer.apply`` returns, whatever it was asked for."""
  outputs: jax.Array      # [T, B, ...] the model's outputs (an RNN-NADE: its frames' logits)
  carry: Any              # per layer [B, S]: the state after the last step
  samples: jax.Array | None = None   # [S, T, B, D] frames drawn (an RNN-NADE given a key)


@dataclasses.dataclass(frozen=True)
class Trainer:
  """The pure functions of a run (init, train step and chunk, evaluation
  forward pass), closed over its structure, not its numbers: the model, the
  optimiser chain, the task and which loss-side terms are on. ``build(config)``
  makes one; ``train_and_evaluate`` runs its loop with it."""
  model: RecurrentNetwork
  optimizer: optax.GradientTransformation
  task: tasks.Task
  use_omega: bool
  use_l1: bool
  use_bptt_clip: bool
  omega_schedule: str = 'constant'
  omega_form: str = 'squared'    # optim.omega.FORMS
  omega_steps_per_epoch: int | None = None   # set: the schedule's t counts epochs
  loss_reduction: str = 'mean'   # LOSS_REDUCTIONS: the objective that is differentiated
  mesh: Any = None        # shard each member's batch over the mesh's 'data' axis
  step_offset: int = 0    # the step at which the task's data start (a chunk-schedule phase)
  halving: bool = False   # the optimiser ends in optim.halve_on_rise (it needs loss, epoch)
  accumulate_steps: int = 1   # optim.accumulate_steps: micro-batches per update

  def initial_carry(self, params, batch_size: int):
    """Zero states of every layer [B, S] (replaced by the initial state on reset)."""
    del params
    return [jnp.zeros((batch_size, c.state_size)) for c in self.model.cells()]

  def apply(self, params, inputs, carry, reset, targets=None, sample_key=None,
            num_samples: int = 1) -> Forward:
    """Evaluation forward pass: ``Forward(outputs, carry, samples)``.

    An RNN-NADE (``model.output='nade'``) scores given frames, so it needs
    ``targets``; with ``sample_key`` it also draws ``num_samples`` frames per
    step (``samples``; None without a key).
    """
    outputs, aux = self.model.apply({'params': params}, inputs, carry, reset=reset,
                                    targets=targets, sample_key=sample_key,
                                    num_samples=num_samples)
    return Forward(outputs, aux['carry'], aux.get('samples'))

  def init(self, key, loss_hp: dict, opt_hp: dict) -> TrainState:
    k_init, k_run = jax.random.split(key)
    batch = self.task.train_batch(k_init, 0)
    params = self.model.init(k_init, batch['inputs'], targets=batch.get('targets'))['params']
    opt_state = self.optimizer.init(params)
    if opt_hp:
      opt_state = optim.set_hyperparams(opt_state, **opt_hp)
    carry = (self.initial_carry(params, batch['inputs'].shape[1]) if self.task.carries
             else ())
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                      key=k_run, hp={k: jnp.asarray(v, jnp.float32) for k, v in loss_hp.items()},
                      active=jnp.ones((), bool), carry=carry)

  def loss_fn(self, params, probes, batch, hp, dropout_key, carry=(), train=True):
    outputs, aux = self.model.apply(
        {'params': params}, batch['inputs'], carry or None, reset=batch.get('reset'),
        train=train, probes=probes, bptt_clip=hp['bptt_clip'] if self.use_bptt_clip else None,
        targets=batch.get('targets'), rngs={'dropout': dropout_key},   # targets: an RNN-NADE scores them
        rates={k: hp[k] for k in MEMBER_RATES if k in hp} if train else None)   # the member's own
    mask = batch['mask']
    per_step = tasks.per_step_loss(outputs, batch, self.task.kind)
    # What is logged: the mean per scored step. A window with nothing to score
    # (a piece's last frame alone in its chunk) has loss and gradient 0, not
    # 0/0; train_step then leaves the parameters as they are.
    loss = jnp.sum(per_step * mask) / jnp.maximum(jnp.sum(mask), 1)
    total = loss if self.loss_reduction == 'mean' else jnp.sum(per_step * mask) / mask.shape[1]
    l1 = jnp.zeros(())
    if self.use_l1:   # Bengio et al. 2013 sec. 3.4: L1 on the hidden units' outputs
      valid = valid_steps(mask)[..., None]
      l1 = sum(jnp.sum(jnp.abs(h) * valid) for h in aux['hidden']) / jnp.sum(valid)
      total = total + hp['l1_weight'] * l1
    return total, (loss, l1, outputs, aux)

  def grads(self, state: TrainState, batch: dict, dropout_key):
    """Gradient of the loss (plus alpha * the immediate gradient of Omega)."""
    cells = self.model.cells()
    t, b = batch['inputs'].shape[:2]
    probes = [jnp.zeros((t, b, c.state_size)) for c in cells] if self.use_omega else None
    grad_fn = jax.grad(self.loss_fn, argnums=(0, 1), has_aux=True)
    (g_params, g_probes), (loss, l1, outputs, aux) = grad_fn(
        state.params, probes, batch, state.hp, dropout_key, state.carry)
    om = jnp.zeros(())
    if self.use_omega:
      om, g_omega = jax.value_and_grad(omega_lib.omega, argnums=1)(
          cells, state.params, aux, g_probes, self.omega_form)
      unit = 'epoch' if self.omega_steps_per_epoch else 'step'
      # t counts updates (a step is a micro-batch when gradients accumulate);
      # epochs count batches, so the epoch unit reads the step itself
      count = state.step if unit == 'epoch' else state.step // self.accumulate_steps
      alpha = optim.regularizer_weight(state.hp['omega_alpha'], self.omega_schedule, unit,
                                       self.omega_steps_per_epoch)(count)
      g_params = jax.tree.map(lambda g, o: g + alpha * o, g_params, g_omega)
    carry = jax.lax.stop_gradient(aux['carry']) if self.task.carries else ()
    return g_params, dict(loss=loss, l1=l1, omega=om, outputs=outputs, carry=carry,
                          scored=jnp.sum(batch['mask']))

  def train_step(self, state: TrainState, batch: dict, dropout_key):
    grads, out = self.grads(state, batch, dropout_key)
    grad_norm = optax.tree.norm(grads)
    extra = {}
    if self.halving:    # the epoch's error, for the halving rule in the optimiser state
      extra = dict(loss=out['loss'], weight=out['scored'],
                   epoch=epoch_id(state.step, self.step_offset, self.task.steps_per_epoch))
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params, **extra)
    params = optax.apply_updates(state.params, updates)
    # A member that is done (or whose loss is no longer finite) keeps its state;
    # a window with nothing to score changes only the carried state.
    learning = state.active & jnp.isfinite(out['loss'])
    update = learning & (out['scored'] > 0)
    keep = lambda new, old, on=learning: jax.tree.map(lambda n, o: jnp.where(on, n, o), new, old)
    info = optim.inspect(opt_state)
    threshold = info.get('clip_threshold', jnp.inf)
    metrics = dict(loss=out['loss'], error=self.task.error(out['outputs'], batch),
                   grad_norm=grad_norm,
                   clipped=(grad_norm > threshold).astype(jnp.float32),
                   omega=out['omega'], l1=out['l1'], active=learning, scored=out['scored'],
                   skipped=jnp.asarray(info.get('skipped', 0), jnp.float32))
    return state.replace(step=state.step + 1, params=keep(params, state.params, update),
                         opt_state=keep(opt_state, state.opt_state, update), active=learning,
                         carry=keep(out['carry'], state.carry)), metrics

  def train_chunk(self, state: TrainState, num_steps: int):
    """``num_steps`` training steps of one member as one scan; per-step metrics.

    A member that has stopped (``active`` False: solved, out of patience, or
    diverged) only counts the steps: its steps would change nothing but the
    step number, so they are not computed. Members mapped one after another
    (``population.layout='map'``) skip that work; vmapped, both branches run
    (a select) and the result is the same. Its metrics are zeros, with
    nothing scored and ``active`` False."""
    # Traced once: the branch that trains replays this trace, and the branch
    # that does not takes its metrics' shapes from it.
    traced, shapes = jax.make_jaxpr(
        functools.partial(self._train_steps, num_steps=num_steps), return_shape=True)(state)

    def train(state):
      out = jax.extend.core.jaxpr_as_fun(traced)(*jax.tree.leaves(state))
      return jax.tree.unflatten(jax.tree.structure(shapes), out)

    def stopped(state):
      metrics = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes[1])
      return state.replace(step=state.step + num_steps), metrics

    return jax.lax.cond(state.active, train, stopped, state)

  def _train_steps(self, state: TrainState, num_steps: int):
    def one(state, _):
      k_drop = jax.random.split(jax.random.fold_in(state.key, state.step))[1]
      # The member's data: the task derives them from its key and the step
      # (fresh sequences per step, a shuffled order per epoch).
      batch = self.task.train_batch(state.key, state.step - self.step_offset)
      if self.mesh is not None:
        batch = {k: v if v.ndim < 2 else jax.lax.with_sharding_constraint(
                     v, population.batch_sharding(self.mesh, v.ndim)) for k, v in batch.items()}
      return self.train_step(state, batch, k_drop)
    return jax.lax.scan(one, state, None, length=num_steps)


# ---------------------------------------------------------------------------
# The run.

def spectral_radius(w_rec) -> float:
  """Spectral radius of a layer's W_rec [H, G] (the largest over gate blocks);
  NaN for a matrix that is not finite (a member that diverged)."""
  w = np.asarray(w_rec, np.float64)
  if not np.all(np.isfinite(w)):
    return float('nan')
  h = w.shape[0]
  return float(max(np.max(np.abs(np.linalg.eigvals(w[:, i:i + h])))
                   for i in range(0, w.shape[1], h)))


@functools.cache
def imported_code_version() -> str | None:
  """``code_version`` at this process's first run: the code it imported. A
  sweep on one worker runs its units in one process, so a commit made while
  it runs must not be recorded by its later units (their code is still the
  one it imported)."""
  return code_version()


# What is not code: a run's records (results/, where a rerun rewrites a committed
# metrics.jsonl or lock) and the prose (*.md) do not make a version dirty.
NOT_CODE = (':(top,exclude)results', ':(top,exclude)*.md')


def code_version(where: str | None = None) -> str | None:
  """The git commit of this code (of the checkout holding ``where``, default
  this file's), with '+dirty' for uncommitted changes to tracked files other
  than ``NOT_CODE`` (None outside git)."""
  here = where or os.path.dirname(os.path.abspath(__file__))
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=here, text=True,
                            capture_output=True, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no', '--',
                            ':(top)', *NOT_CODE], cwd=here,
                           text=True, capture_output=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return None
  return commit + ('+dirty' if dirty else '')


class _Pace:
  """Steps per second of training, without the chunks that compiled, and the
  time left at the pace of the whole loop (evaluation and checkpoints too),
  less the first validation's compile: until a second validation is timed
  the first one is left out whole, then only what it took beyond the second
  (the estimate jumped by half at the first validation, then fell for an hour)."""

  def __init__(self, step: int):
    self.steps, self.seconds = 0, 0.0
    self.since = None         # (step, time) after the first chunk that did not compile
    self.validations = []     # the first two validations' seconds
    self.excluded = 0.0       # seconds of the loop not at its pace (the first one's compile)

  def validation(self, seconds: float):
    if len(self.validations) < 2:
      self.validations.append(seconds)
      first, *second = self.validations
      self.excluded = max(0.0, first - second[0]) if second else first

  def chunk(self, step: int, n: int, seconds: float, compiled: bool):
    if compiled:
      if self.since is None:
        self.since = (step, time.time())
      return
    self.steps += n
    self.seconds += seconds
    if self.since is None:
      self.since = (step - n, time.time() - seconds)

  @property
  def rate(self) -> float | None:
    return self.steps / self.seconds if self.seconds > 0 else None

  def eta(self, step: int, total: int) -> float | None:
    if self.since is None or step <= self.since[0]:
      return None
    seconds = time.time() - self.since[1] - self.excluded
    return (total - step) * seconds / (step - self.since[0]) if seconds > 0 else None


def diverged_why(test_loss: float, train_loss: float, nonfinite: bool, skipped: int,
                 steps: int) -> str | None:
  """Why a member counts as diverged, or None: its loss was ever NaN or inf,
  leaves the sensible range (``DIVERGED_LOSS`` nats per step), or the guard
  skipped most of its updates."""
  if nonfinite:
    return 'its training loss became NaN or infinite'
  for what, loss in (('test', test_loss), ('training', train_loss)):
    if not np.isfinite(loss) or abs(loss) > DIVERGED_LOSS:
      return f'its {what} loss is {loss:.3g} nats per step'
  if steps and skipped > steps / 2:
    return f'the guard skipped {skipped} of its {steps} updates'
  return None


def is_smoke(config: ml_collections.ConfigDict, total_steps: int) -> bool:
  """A smoke run (the config's ``smoke`` switch, or a budget of a few steps):
  it checks the plumbing and never fills a table's cell."""
  return bool(config.get('smoke', False)) or total_steps < SMOKE_STEPS


def scored_mean(losses: np.ndarray, scored: np.ndarray) -> float:
  """The mean loss per scored step of steps whose losses are each a mean over
  ``scored`` steps (a window with none scored counts for nothing)."""
  total = float(np.sum(scored, dtype=np.float64))
  return float(np.sum(losses * scored, dtype=np.float64)) / total if total else float('nan')


def _structure_flags(config) -> dict:
  r = config.reg
  return dict(use_omega=r.omega_alpha > 0, use_l1=r.l1_weight > 0,
              use_bptt_clip=r.bptt_clip > 0, omega_schedule=r.omega_schedule,
              omega_form=r.get('omega_form', 'squared'))


# The range of each numeric field that check_config checks, as its message
# says it. A population row's value for one of these fields, and a sweep's
# random interval for it, are held to the same range.
RANGES = {
    'model.hidden_size': '>= 1', 'model.num_layers': '>= 1', 'task.batch_size': '>= 1',
    'model.dropout': 'in [0, 1)', 'model.recurrent_dropout': 'in [0, 1)',
    'model.zoneout': 'in [0, 1)',
    'optim.learning_rate': '>= 0', 'optim.momentum': 'in [0, 1)', 'optim.clip_norm': '>= 0',
    'optim.clip_norm_auto_factor': '>= 0', 'optim.clip_value': '>= 0',
    'optim.weight_decay': '>= 0', 'optim.adam_b1': 'in [0, 1)', 'optim.adam_b2': 'in [0, 1)',
    'optim.adam_eps': '>= 0', 'optim.rmsprop_decay': 'in [0, 1)', 'optim.rmsprop_eps': '>= 0',
    'reg.omega_alpha': '>= 0', 'reg.l1_weight': '>= 0', 'reg.bptt_clip': '>= 0',
    'train.num_steps': '>= 0',       # 0: task.epochs epochs
    'train.solved_error': 'in [0, 1]', 'train.checkpoint_every_s': '>= 0',
    'train.patience': '>= 0', 'train.patience_min_delta': '>= 0',
}


def check_range(field: str, value, bounds: str | None = None) -> None:
  """Raises '<field>=<value> must be <bounds>' unless ``value`` is a finite
  number within ``bounds`` ('>= LOW', 'in [LOW, HIGH]' or 'in [LOW, HIGH)';
  by default ``RANGES[field]``)."""
  bounds = bounds or RANGES[field]
  if bounds.startswith('>= '):
    low, high, open_high = float(bounds[3:]), math.inf, False
  else:
    low, high = map(float, bounds[4:-1].split(', '))
    open_high = bounds.endswith(')')
  finite = (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))
  if not (finite and low <= value <= high and not (open_high and value == high)):
    raise ValueError(f'{field}={value!r} must be {"" if finite else "a finite number "}{bounds}')


def check_config(config: ml_collections.ConfigDict, data=None) -> Any:
  """Raises a one-line ValueError for a config that cannot run.

  Builds everything that can be built without running JAX, so that a typo
  is reported here, not from deep inside a traced function. ``data``: as
  for ``build``. Returns the task's data as built (``tasks.Task.data``: a
  corpus read once), for the run to take as its ``data``
  (``train_and_evaluate(config, workdir, data=...)``) rather than read it
  again.
  """
  m = config.model
  if m.init_scheme not in cells_lib.INITS:
    raise ValueError(f"model.init_scheme={m.init_scheme!r} is not one of {', '.join(cells_lib.INITS)}")
  if m.activation not in cells_lib.ACTIVATIONS:
    raise ValueError(f"model.activation={m.activation!r} is not one of "
                     f"{', '.join(cells_lib.ACTIVATIONS)}")
  if m.get('output', 'linear') not in OUTPUTS:
    raise ValueError(f"model.output={m.output!r} is not one of {', '.join(OUTPUTS)}")
  if m.get('compute_dtype', 'float32') not in COMPUTE_DTYPES:
    raise ValueError(f'model.compute_dtype={m.compute_dtype!r} is not one of '
                     f'{", ".join(COMPUTE_DTYPES)}')
  for field in RANGES:
    section, name = field.split('.')
    if name in config.get(section, {}):
      check_range(field, config[section][name])
  t = config.task
  if not 1 <= t.min_length <= t.max_length:
    raise ValueError(f'task.min_length={t.min_length} and task.max_length={t.max_length} '
                     'must satisfy 1 <= min_length <= max_length')
  tc = config.train
  if tc.log_every < 1:
    raise ValueError(f'train.log_every={tc.log_every} must be >= 1 (updates a chunk)')
  if tc.eval_every < 0 or tc.eval_every % tc.log_every:
    raise ValueError(f'train.eval_every={tc.eval_every} must be a multiple of '
                     f'train.log_every={tc.log_every}, or 0 (once an epoch)')
  optim.regularizer_weight(1.0, config.reg.omega_schedule)
  if config.reg.get('omega_form', 'squared') not in omega_lib.FORMS:
    raise ValueError(f'reg.omega_form={config.reg.omega_form!r} is not one of '
                     f'{", ".join(omega_lib.FORMS)}')
  if tc.get('loss_reduction', 'mean') not in LOSS_REDUCTIONS:
    raise ValueError(f'train.loss_reduction={tc.loss_reduction!r} is not one of '
                     f'{", ".join(LOSS_REDUCTIONS)}')
  phases = chunk_phases(config)
  for member in population.make_population(config).labels:   # a row's values, as the fields
    for field, value in member.items():
      if field in RANGES:
        try:
          check_range(field, value)
        except ValueError as e:
          raise ValueError(f'population.rows: {e}') from None
  trainer = build(config, data=data)
  trainer.model.cells()    # the cells' own checks
  if isinstance(trainer.task, tasks.synthetic.SyntheticTask):   # its fresh sequences
    for field in ('eval_sequences', 'test_sequences', 'eval_batch_size'):
      check_range(f'train.{field}', tc[field], '>= 1')
  for start, chunk in phases:       # each phase's task, now, not hours in
    try:
      phase_trainer(config, trainer, start, chunk)
    except ValueError as e:
      raise ValueError(f'train.chunk_schedule, the phase from step {start} (chunk {chunk}): {e}'
                       ) from None
  return trainer.task.data


def num_steps(config: ml_collections.ConfigDict, task: tasks.Task) -> int:
  """``train.num_steps``, or ``task.epochs`` epochs of a corpus when it is 0."""
  return config.train.num_steps or config.task.epochs * task.steps_per_epoch


def chunk_phases(config: ml_collections.ConfigDict) -> list[tuple[int, int | None]]:
  """``train.chunk_schedule`` checked, as [(start step, chunk length)]; [(0, None)]
  (one phase, ``task.chunk`` throughout) when it is empty."""
  schedule = [tuple(p) for p in config.train.get('chunk_schedule', ())]
  if not schedule:
    return [(0, None)]
  tc, starts = config.train, [p[0] for p in schedule]
  if any(len(p) != 2 for p in schedule) or starts[0] != 0 or starts != sorted(set(starts)):
    raise ValueError(f'train.chunk_schedule={schedule} must be ((0, chunk), (start, chunk), ...) '
                     'with increasing starts')
  if any(s % tc.log_every for s in starts) or not tc.num_steps:
    raise ValueError('train.chunk_schedule needs train.num_steps > 0 and starts that are '
                     f'multiples of train.log_every={tc.log_every} (one compile per phase)')
  if (_halving_judge(tc) != 'train' and tc.get('halve_lr_on_rise')) or (
      config.reg.omega_alpha > 0 and config.reg.get('omega_schedule_unit') == 'epoch'):
    raise ValueError('train.chunk_schedule changes the epoch; it cannot be combined with '
                     'train.halve_lr_on_valid, train.halve_lr_on_train_pass or '
                     "reg.omega_schedule_unit='epoch' (the "
                     'halving rule on the training loss can: each phase starts an epoch)')
  return [(int(s), int(c)) for s, c in schedule]


def epoch_id(step, phase_start: int, steps_per_epoch: int):
  """A number for the epoch that holds ``step``, distinct for every epoch of
  the run: the epoch's index within its phase, plus the phase's first step
  (0 without a chunk schedule, so the plain index). The halving rule on the
  training loss closes an epoch when this changes; indices alone restart at
  0 with each phase, so a one-epoch phase ran into the next one's first."""
  return (step - phase_start) // steps_per_epoch + phase_start


def phase_at(phases: list, step: int) -> tuple[int, int, int | None]:
  """(start, end, chunk) of the phase that holds ``step`` (end: the next start, or inf)."""
  i = max(j for j, (s, _) in enumerate(phases) if s <= step)
  end = phases[i + 1][0] if i + 1 < len(phases) else math.inf
  return phases[i][0], end, phases[i][1]


def phase_trainer(config: ml_collections.ConfigDict, trainer: Trainer, start: int,
                  chunk: int | None) -> Trainer:
  """``trainer`` with the task read in chunks of ``chunk`` from step ``start`` on.

  The task is rebuilt from its data with ``task.chunk = chunk`` and reads them from
  their beginning at ``start`` (step - start = 0 is the first chunk, which
  resets the carried state); the model and optimiser are the same, so the
  train state goes on unchanged.
  """
  if chunk is None or (start == 0 and chunk == config.task.get('chunk')):
    return trainer
  c = config.copy_and_resolve_references()
  c.task.chunk = chunk
  return dataclasses.replace(trainer, task=tasks.make(c, trainer.task.data), step_offset=start)


def _halving_judge(tc) -> str:
  """Which loss ``train.halve_lr_on_rise`` judges an epoch by: 'train' (the
  losses of its updates, as they trained), 'valid' (``halve_lr_on_valid``)
  or 'train_pass' (``halve_lr_on_train_pass``: the training set scored after
  the epoch with its final parameters); ``tc``: the config's ``train``."""
  if tc.get('halve_lr_on_valid') and tc.get('halve_lr_on_train_pass'):
    raise ValueError('train.halve_lr_on_valid and train.halve_lr_on_train_pass name two losses '
                     'for the halving rule to judge: set at most one')
  return ('valid' if tc.get('halve_lr_on_valid') else
          'train_pass' if tc.get('halve_lr_on_train_pass') else 'train')


def build(config: ml_collections.ConfigDict, mesh=None, data=None) -> Trainer:
  """The run's pure functions from its config.

  ``data``: the task's arrays, when they are not the config's (``tasks.make``):
  e.g. a test's toy corpus or the benchmark's synthetic ones
  (``benchmarks.workloads``).
  """
  task = tasks.make(config, data)
  model = make_model(config, task)
  needs_epochs = [f for f, on in (
      ('train.num_steps=0 (a budget of task.epochs)', not config.train.num_steps),
      ('train.eval_every=0', not config.train.eval_every),
      ("reg.omega_schedule_unit='epoch'", config.reg.get('omega_schedule_unit') == 'epoch'),
      ('train.halve_lr_on_rise', config.train.get('halve_lr_on_rise'))) if on]
  judge = _halving_judge(config.train)
  if judge == 'train_pass' and config.task.name != 'music':
    raise ValueError('train.halve_lr_on_train_pass scores the training set after each epoch; '
                     f'only task.name=\'music\' has it (task.name={config.task.name!r})')
  if judge != 'train' and not (config.train.get('halve_lr_on_rise')
                               and config.train.eval_every in (0, task.steps_per_epoch)):
    field = 'halve_lr_on_valid' if judge == 'valid' else 'halve_lr_on_train_pass'
    what = 'validation loss' if judge == 'valid' else 'training loss scored after the epoch'
    raise ValueError(f'train.{field} compares the {what} of one epoch with the '
                     'last: it needs train.halve_lr_on_rise=True and train.eval_every=0 (validation '
                     'at the end of every epoch)')
  if config.train.get('anneal', '') not in selection.ANNEALS:
    raise ValueError(f"train.anneal={config.train.anneal!r} is not one of "
                     f"{', '.join(repr(a) for a in selection.ANNEALS)}")
  if config.train.get('anneal') and (config.train.get('halve_lr_on_rise') or
                                     config.train.eval_every not in (0, task.steps_per_epoch)):
    raise ValueError(f'train.anneal={config.train.anneal!r} judges the validation loss of each '
                     'epoch: it needs train.eval_every=0 (validation at the end of every epoch) '
                     'and cannot be combined with train.halve_lr_on_rise')
  if not config.train.get('anneal_min_improvement', 0.0) >= 0:
    raise ValueError(f'train.anneal_min_improvement={config.train.anneal_min_improvement!r} '
                     'must be >= 0')
  if config.train.get('anneal'):
    needs_epochs.append(f'train.anneal={config.train.anneal!r}')
  if needs_epochs and not task.steps_per_epoch:
    raise ValueError(f'{", ".join(needs_epochs)} counts epochs, and task {config.task.name!r} '
                     'draws fresh data every step (no epochs)')
  accumulate = optim.accumulate_steps(config.optim)
  optimizer = optim.make_optimizer(config.optim, num_steps(config, task) // accumulate)
  halving = bool(config.train.get('halve_lr_on_rise'))
  if halving:    # per member, in the optimiser state (checkpointed and vmapped with it)
    optimizer = optax.chain(optimizer, optim.halve_on_rise(
        on_train_loss=judge == 'train'))
  per_epoch = (task.steps_per_epoch if config.reg.get('omega_schedule_unit') == 'epoch'
               else None)
  return Trainer(model=model, optimizer=optimizer, task=task, mesh=mesh,
               omega_steps_per_epoch=per_epoch,
               loss_reduction=config.train.get('loss_reduction', 'mean'), halving=halving,
               accumulate_steps=accumulate, **_structure_flags(config))


def compile_chunk(trainer: Trainer, how: str):
  """The members' training chunk as one jitted program: ``(state [P, ...],
  num_steps) -> (state, metrics [P, num_steps])``, the members vmapped or
  mapped (``population.layout``); the state is donated. What the run loop
  calls, and what ``launch.py bench`` times. Mapped, the model is told it is
  not vmapped (``RecurrentNetwork.unbatched``: a faster program for the
  class softmax on a CPU; the same numbers)."""
  if how == 'map' and not trainer.model.unbatched:
    trainer = dataclasses.replace(trainer, model=trainer.model.clone(unbatched=True))
  return jax.jit(population.over_members(trainer.train_chunk, how), static_argnums=1,
                 donate_argnums=0)


def init_population(trainer: Trainer, pop: population.Population, mesh) -> TrainState:
  """The members' states stacked on a leading axis, placed on the mesh."""
  keys = jax.vmap(jax.random.key)(jnp.asarray(pop.seeds))
  init = jax.jit(jax.vmap(trainer.init), out_shardings=population.member_sharding(mesh))
  state = init(keys, pop.loss_hp, pop.opt_hp)
  # the carried states [P, B, S] are sharded on B as the training chunk leaves
  # them, so that its compiled program takes its own output
  return state.replace(carry=jax.device_put(state.carry, population.carry_sharding(mesh)))


# A member whose loss (nats per scored step) leaves this range has diverged:
# no task here starts above a few hundred nats per step.
DIVERGED_LOSS = 1e6
# A run whose budget is below this many steps is a smoke run, flag or not.
SMOKE_STEPS = 100


class _Interrupt:
  """Ctrl-C (SIGINT) or SIGTERM while training: noted, and acted on between
  chunks (a checkpoint, then a RunError saying how to resume); a second
  Ctrl-C stops at once. Installed only in the main thread.

  A SIGTERM after the first signal is a repeat, not a second Ctrl-C: Ctrl-C
  in a terminal reaches a sweep's or ``reproduce``'s runs and the parent,
  which then sends each run a SIGTERM, and a sweep worker is sent one by
  the kernel and by its own watch when the parent ends; stopping at once
  there would lose the work since the last checkpoint."""

  def __init__(self):
    self.signal = None
    self.previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self.previous[sig] = signal.signal(sig, self._note)
    return self

  def _note(self, signum, frame):
    if self.signal is not None:
      if signum == signal.SIGTERM:
        return
      raise KeyboardInterrupt
    self.signal = signal.Signals(signum).name
    print(f'{self.signal}: stopping after this chunk and saving a checkpoint '
          '(Ctrl-C again to stop at once)', flush=True)

  def __exit__(self, *exc):
    for sig, handler in self.previous.items():
      signal.signal(sig, handler)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, devices=None,
                       origin: dict | None = None, data=None,
                       branch_from: str | None = None) -> dict:
  """Trains every member until it solves the task or ``train.num_steps``.

  ``origin`` (``launch.origin``: the experiment file with its arguments and
  the overrides) is recorded in ``config.json`` under the key ``origin``.
  ``data``: the task's arrays in place of the config's (``tasks.make``).
  A resumed run must be given the same. ``branch_from`` (``DIR`` or
  ``DIR@STEP``): a new run that starts from another run's checkpoint
  (``workdir.branch``); rerun without it to resume.
  Returns the final result (also written to ``workdir/result.json``). Raises
  RunError (one line) for a workdir that is in use, unwritable or holds a
  run of another config, and when interrupted (after saving a checkpoint).
  """
  main = distributed.is_main()    # one process writes the files and prints (several hosts)
  lock = workdir_lib.open_workdir(config, workdir, origin, branch_from) if main else None
  try:
    with _Interrupt() as interrupt:
      return _train_and_evaluate(config, workdir, devices, main, interrupt, data, branch_from,
                                 lock.previous_config if lock is not None else None)
  finally:
    if lock is not None:
      lock.release()


@dataclasses.dataclass
class _Run:
  """What a run carries from one chunk to the next and keeps in its
  checkpoints: the train state and the host-side bookkeeping beside it."""
  state: TrainState
  best: BestOnValid
  solved_at: list              # per member: the step of its first passing validation, or None
  nonfinite: np.ndarray        # per member: whether its training loss was ever NaN or inf
  elapsed: float               # seconds trained before this process started
  last_loss: np.ndarray        # per member: its last training loss (for the divergence verdict)
  # train.anneal: per member, whether it anneals, and its previous validation loss
  annealing: np.ndarray = None
  anneal_previous: np.ndarray = None
  # per member: its last validation numbers (a stopped member's parameters no
  # longer change, so they stand; None: score it); kept in the checkpoints, so a
  # resumed run scores and writes what the uninterrupted run would
  last_valid: list = None
  # per member: the step it stopped at (patience, solved, annealing), or None
  stopped_at: list = None

  @property
  def anneal_meta(self) -> dict:
    return {'annealing': self.annealing.tolist(),
            'previous': [float(x) for x in self.anneal_previous]}

  @property
  def size(self) -> int:
    return len(self.solved_at)

  @property
  def step(self) -> int:
    return int(distributed.to_host(self.state.step)[0])

  def stop(self, done: np.ndarray, active: np.ndarray) -> None:
    """Stops the members ``done``; ``active``: which were training before."""
    if done.any():
      step = self.step
      if self.stopped_at is None:
        self.stopped_at = [None] * self.size
      for i in np.flatnonzero(done & active):
        self.stopped_at[i] = step
      self.state = self.state.replace(active=self.state.active & ~done)

  def skipped(self, size: int) -> np.ndarray:
    """Each member's count of updates its overflow guard skipped (a step
    dropped for a NaN loss is not one)."""
    return np.broadcast_to(
        distributed.to_host(optim.inspect(self.state.opt_state).get('skipped', 0)), (size,))


def _restore_or_init(config, trainer: Trainer, pop, mesh, ckpt, changed: list | None = None
                     ) -> _Run:
  """The run from its latest checkpoint, or a fresh one. ``changed``: the
  checkpoint is another run's (``--branch_from``), and these are the config
  fields this run changes; the numbers in the state that they set (a
  learning rate, a clipping threshold, Omega's weight; any of them when
  ``population.*`` changed) are set from this config, and every other
  number goes on as the other run left it (a rate its schedule halved)."""
  state = init_population(trainer, pop, mesh)
  min_delta = config.train.get('patience_min_delta', 0.0)
  best = BestOnValid(state.params, pop.size, min_delta=min_delta)
  meta = {}
  if ckpt.latest_step() is not None:
    try:
      if changed is not None:   # checked first: a failed restore leaves orbax's reads in flight, noisily
        _check_shapes(ckpt, ckpt.latest_step(), state=state, best=best.params)
      restored = ckpt.restore(ckpt.latest_step(), args=ocp.args.Composite(
          state=ocp.args.StandardRestore(state), best=ocp.args.StandardRestore(best.params),
          meta=ocp.args.JsonRestore()))
    except (ValueError, TypeError, KeyError) as e:
      if changed is None:
        raise
      first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise RunError(
          f'--branch_from: the checkpoint does not fit this config, whose changes ({", ".join(changed)}) '
          f'alter the train state\'s shapes (sizes, cells, the optimiser, the population); a branch '
          f'may change only what leaves them as they were ({first})') from None
    fresh, state, meta = state, restored.state, restored.meta
    best = BestOnValid(restored.best, pop.size, meta.get('best'), min_delta)
    if changed:
      every = any(k.startswith('population.') for k in changed)
      opt = [n for n in optim.numeric_hyperparams(config.optim) if every or f'optim.{n}' in changed]
      state = state.replace(
          hp={k: fresh.hp[k] if every or {f'reg.{k}', f'model.{k}'} & set(changed) else v
              for k, v in state.hp.items()},
          opt_state=optim.set_hyperparams(state.opt_state, **{
              n: optax.tree_utils.tree_get(fresh.opt_state, n) for n in opt}) if opt
          else state.opt_state)
  anneal = meta.get('anneal', {})
  return _Run(state=state, best=best,
              solved_at=list(meta.get('solved_at', [None] * pop.size)),
              nonfinite=np.asarray(meta.get('nonfinite', [False] * pop.size), bool),
              elapsed=meta.get('elapsed', 0.0),
              last_loss=np.asarray(meta.get('last_loss', [0.0] * pop.size), np.float64),
              # a stopped member's last numbers stand after a resume, as they would have
              # a branch may score validation otherwise: its stopped members are scored again
              last_valid=None if changed is not None else meta.get('last_valid'),
              stopped_at=meta.get('stopped_at'),
              annealing=np.asarray(anneal.get('annealing', [False] * pop.size), bool),
              # with no record of its own (a branch from a run without the schedule),
              # the first epoch is compared with the best validation so far
              anneal_previous=np.asarray(anneal.get('previous', best.loss), np.float64))


def _check_shapes(ckpt, step: int, **items) -> None:
  """Raises ValueError naming the first array of ``items`` (name -> pytree)
  whose shape or dtype differs from the one stored in checkpoint ``step``,
  that is missing from it, or that it holds and the items lack, read from
  the checkpoint's metadata, before any array is."""
  def leaves(tree):
    return {'/'.join(str(getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k)))) for k in path):
            (tuple(x.shape), np.dtype(x.dtype)) for path, x in
            jax.tree_util.tree_flatten_with_path(tree)[0]}
  as_stored = lambda x: (jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
                         else x)   # a key is stored as its data
  for name, target in items.items():
    have = leaves(ocp.StandardCheckpointHandler().metadata(ckpt.directory / str(step) / name).tree)
    wanted = leaves(jax.tree.map(as_stored, flax.serialization.to_state_dict(target)))
    for key, want in wanted.items():
      if key not in have:
        raise ValueError(f'{name}/{key} is not in the checkpoint')
      if have[key] != want:
        raise ValueError(f'{name}/{key}: this config makes {want[1].name}{list(want[0])}, '
                         f'the checkpoint holds {have[key][1].name}{list(have[key][0])}')
    extra = sorted(set(have) - set(wanted))
    if extra:
      raise ValueError(f'the checkpoint holds {name}/{extra[0]}, which this config does not make')


def _checkpoints(workdir: str) -> ocp.CheckpointManager:
  """The run's orbax checkpoints, the last two kept, in ``workdir/checkpoints``."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))


def _save(ckpt, run: _Run, wall: float) -> None:
  ckpt.save(run.step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(run.state), best=ocp.args.StandardSave(run.best.params),
      meta=ocp.args.JsonSave({'elapsed': wall, 'solved_at': run.solved_at,
                              'best': run.best.meta, 'nonfinite': run.nonfinite.tolist(),
                              'anneal': run.anneal_meta,
                              'last_loss': [float(x) for x in run.last_loss],
                              'last_valid': _plain(run.last_valid),
                              'stopped_at': run.stopped_at})))


def _plain(valid: list | None) -> list | None:
  """Each member's last validation numbers as JSON (numpy scalars as floats)."""
  if valid is None:
    return None
  return [None if v is None else {k: float(x) if isinstance(x, (np.floating, np.integer)) else x
                                  for k, x in v.items()} for v in valid]


def _chunks(config, trainer: Trainer, mesh, main: bool):
  """``chunk(step)``: the compiled training chunk for the phase of
  ``train.chunk_schedule`` that holds ``step`` (one phase without one). A new
  truncation length is a new batch shape, so one compile per phase; the
  phase is read from the step, so a resumed run lands in it.

  ``validation_due(step)``: the updates from ``step`` to the next
  validation. With ``train.eval_every`` > 0 that is every ``eval_every``
  steps; with 0, the end of every epoch, and a phase has epochs of its own
  (a shorter window makes more chunks of the same pieces), which start at
  the phase's first step, so the last update of a phase also ends one."""
  phases, compiled, trainers = chunk_phases(config), {}, {}
  how = population.layout(mesh, config.get('population', {}).get('layout', 'auto'))

  def phase(step: int) -> tuple[int, int, Trainer]:
    """(start, end, trainer) of the phase that holds ``step``; only the current one is kept."""
    start, end, length = phase_at(phases, step)
    if start not in trainers:
      trainers.clear()
      trainers[start] = phase_trainer(config, trainer, start, length)
      if main and trainers[start] is not trainer:
        print(f'Chunk schedule: from step {start}, {trainers[start].task.summary()}', flush=True)
    return start, end, trainers[start]

  def chunk(step: int):
    start, _, s = phase(step)
    if start not in compiled:
      compiled.clear()
      compiled[start] = compile_chunk(s, how)
    return compiled[start]

  def validation_due(step: int) -> int:
    if config.train.eval_every:
      return config.train.eval_every - step % config.train.eval_every
    start, end, s = phase(step)
    per_epoch = s.task.steps_per_epoch
    return min(per_epoch - (step - start) % per_epoch, end - step)
  return chunk, phases, validation_due


def _train_records(run: _Run, m: dict, step: int, rate, size: int, halving: bool,
                   was_active: np.ndarray) -> list[dict]:
  """One metrics line per member for the chunk that ended at ``step``. A
  member that had stopped before the chunk trained no step of it
  (``Trainer.train_chunk``): its line says so (``stopped``) and has no loss."""
  w_rec = distributed.to_host(run.state.params['layer_0']['w_rec'])
  skipped = run.skipped(size)
  # the rate each member's next update uses (with a halving or annealing rule: it changes)
  lrs = (distributed.to_host(optim.inspect(run.state.opt_state)['learning_rate'])
         if halving else None)
  return [dict(step=step, split='train', member=i, active=False, stopped=True,
               skipped=int(skipped[i]), steps_per_s=rate)
          if not was_active[i] else
          dict(step=step, split='train', member=i,
               loss=float(scored_mean(m['loss'][i], m['scored'][i])),
               error=float(np.mean(m['error'][i])),
               grad_norm=float(np.mean(m['grad_norm'][i])),
               grad_norm_max=float(np.max(m['grad_norm'][i])),
               clipped=float(np.mean(m['clipped'][i])), omega=float(np.mean(m['omega'][i])),
               l1=float(np.mean(m['l1'][i])), skipped=int(skipped[i]),
               active=bool(m['active'][i][-1]),
               spectral_radius=spectral_radius(w_rec[i]), steps_per_s=rate,
               **({'learning_rate': float(lrs[i])} if halving else {}))
          for i in range(size)]


def _run_chunk(run: _Run, chunk, n: int, compiling: bool, pace: _Pace, writer,
               halving: bool) -> list[dict]:
  """Trains every member ``n`` steps (``chunk``, compiled), notes which losses
  were not finite and each member's last loss, and writes (and returns) one
  metrics line per member."""
  t0 = time.time()
  was_active = np.asarray(distributed.to_host(run.state.active), bool)   # before: donated
  run.state, m = chunk(run.state, n)
  m = distributed.to_host(m)
  step = run.step
  pace.chunk(step, n, time.time() - t0, compiling)
  run.nonfinite |= was_active & ~np.all(np.isfinite(np.asarray(m['loss'], np.float64)), axis=-1)
  train_recs = _train_records(run, m, step, pace.rate, run.size, halving, was_active)
  run.last_loss = np.array([r['loss'] if np.sum(m['scored'][i]) else run.last_loss[i]
                            for i, r in enumerate(train_recs)])
  for r in train_recs:
    writer.write(r)
  return train_recs


def _validate(run: _Run, evaluate, writer, tc, step: int) -> list[dict]:
  """Scores the validation split; keeps each member's best parameters; stops
  the members that solved the task (``stop_when_solved``) or stopped
  improving (``patience``); with ``halve_lr_on_valid``, applies the halving
  rule to the validation loss (``halve_lr_on_train_pass``: to the training
  set scored now, each member's line ``split='train_pass'``), and with
  ``anneal``, its schedule."""
  judged = np.asarray(distributed.to_host(run.state.active), bool)   # before this one's stops
  valid, scored = _validate_members(run, evaluate, step, judged)
  run.best.update(run.state.params, valid, step)
  for i, v in enumerate(valid):
    if scored[i]:               # a stopped member's line would repeat its last one
      writer.write(dict(step=step, split='valid', member=i, **v))
    if v['error'] < tc.solved_error and run.solved_at[i] is None:
      run.solved_at[i] = step
  done = np.zeros(len(valid), bool)
  if tc.stop_when_solved:
    done |= np.asarray([s is not None for s in run.solved_at])
  if tc.get('patience', 0):   # early stopping: no better validation for `patience` times
    done |= run.best.since >= tc.patience
  if tc.get('anneal'):
    done |= _anneal(run, [v['loss'] for v in valid], judged, tc)
  run.stop(done, judged)
  judge = _halving_judge(tc) if tc.get('halve_lr_on_rise') else None
  if judge == 'valid':
    errors = [v['loss'] for v in valid]
  elif judge == 'train_pass':
    errors = _train_pass(run, evaluate, writer, step)
  else:      # no halving, or the rule judges the training loss inside the step
    return valid
  run.state = run.state.replace(opt_state=optim.halve_if_rose(
      run.state.opt_state, np.asarray(errors, np.float32), distributed.to_host(run.state.active)))
  return valid


def _train_pass(run: _Run, evaluate, writer, step: int) -> list[float]:
  """The training set scored with each member's parameters as the epoch left
  them (whole pieces, as validation scores its split): the loss the halving
  rule judges with ``train.halve_lr_on_train_pass``. Every member is scored
  (a stopped member's rate no longer matters); the training members' lines
  are written as ``split='train_pass'``."""
  active = np.asarray(distributed.to_host(run.state.active), bool)
  scored = evaluate(run.state.params, 'train', step)
  for i, v in enumerate(scored):
    if active[i]:
      writer.write(dict(step=step, split='train_pass', member=i, **v))
  return [v['loss'] for v in scored]


def _validate_members(run: _Run, evaluate, step: int, active: np.ndarray
                      ) -> tuple[list[dict], np.ndarray]:
  """Each member's validation numbers, and which were scored now: the
  members still training (and any not yet scored in this process); a
  stopped member keeps its last numbers. The members scored are gathered
  into a population padded to a power of two, so that the validation
  program compiles for a few sizes only."""
  size = len(active)
  if run.last_valid is None:
    run.last_valid = [None] * size
  todo = active | np.array([v is None for v in run.last_valid])
  idx = np.flatnonzero(todo)
  if len(idx) == size:
    fresh = evaluate(run.state.params, 'valid', step)
  elif len(idx):
    padded = 1 << (len(idx) - 1).bit_length()
    take = jnp.asarray(np.concatenate([idx, np.full(padded - len(idx), idx[0])]))
    scored = dict(zip(idx.tolist(), evaluate(
        jax.tree.map(lambda x: jnp.take(x, take, axis=0), run.state.params), 'valid', step)))
    fresh = [scored.get(i, run.last_valid[i]) for i in range(size)]
  else:
    fresh = list(run.last_valid)
  run.last_valid = list(fresh)
  return fresh, todo


def _anneal(run: _Run, losses, judged: np.ndarray, tc) -> np.ndarray:
  """``selection.rnnlm_anneal`` or ``selection.restore_anneal`` (``tc.anneal``) applied to the
  members that were training: halves their learning rates, returns those
  whose loss rose to their best parameters; returns which members it stops.
  ``run.anneal_previous`` holds the previous validation loss (rnnlm) or the
  best so far (restore)."""
  if tc.anneal == 'restore':
    halve, previous = selection.restore_anneal(losses, run.anneal_previous)
    rose, stop, annealing = halve, np.zeros_like(halve), run.annealing | halve
  else:
    halve, stop, rose, annealing = selection.rnnlm_anneal(
        losses, run.anneal_previous, run.annealing, tc.get('anneal_min_improvement', 0.003))
    previous = np.asarray(losses, np.float64)
  halve, stop, rose = halve & judged, stop & judged, rose & judged
  run.annealing = np.where(judged, annealing, run.annealing)
  run.anneal_previous = np.where(judged, previous, run.anneal_previous)
  state = run.state
  if halve.any():
    lr = optax.tree_utils.tree_get(state.opt_state, 'learning_rate')
    state = state.replace(opt_state=optim.set_hyperparams(
        state.opt_state, learning_rate=lr * jnp.asarray(np.where(halve, 0.5, 1.0), lr.dtype)))
  if rose.any():
    back = lambda now, best: jnp.where(rose.reshape((-1,) + (1,) * (now.ndim - 1)), best, now)
    state = state.replace(params=jax.tree.map(back, state.params, run.best.params))
  run.state = state
  return stop


def _train_and_evaluate(config, workdir, devices, main, interrupt, data, branch_from,
                        previous_config: str | None = None) -> dict:
  version = imported_code_version()
  pop = population.make_population(config)
  mesh = population.make_mesh(pop.size, config.task.batch_size, devices)
  trainer = build(config, mesh, data)
  tc = config.train
  total_steps = num_steps(config, trainer.task)
  if trainer.task.summary() and main:
    print(trainer.task.summary(), flush=True)
  if (pop.size > 1 or math.prod(mesh.devices.shape) > 1) and main:
    print(f'Population of {pop.size} on {population.describe(mesh)}', flush=True)

  ckpt = _checkpoints(workdir)
  resumed = ckpt.latest_step() is not None
  if resumed and ckpt.latest_step() > total_steps:
    if branch_from:
      if main:
        workdir_lib.undo_branch(workdir)
      raise RunError(f'--branch_from={branch_from}: its checkpoint is at step {ckpt.latest_step()}, '
                     f'past this config\'s budget of {total_steps} steps; branch from an earlier step '
                     f'(DIR@STEP) or give a budget of at least {ckpt.latest_step()} steps ({workdir} '
                     'is left as it was)')
    if main and previous_config is not None:   # the run's record, as it was
      records.write_atomic(os.path.join(workdir, 'config.json'), previous_config)
    raise RunError(workdir_lib.past_budget(workdir, ckpt.latest_step(), total_steps))
  # a branch whose latest checkpoint is still the copied one (its first start, or a
  # rerun after a crash before its own first checkpoint): the fields it changes
  branched = (records.read_json(os.path.join(workdir, 'config.json')) or {}).get(
      'origin', {}).get('branched_from', {})
  changed = (branched.get('changed') if branch_from or (
      branched and ckpt.latest_step() == branched.get('step')) else None)
  try:
    run = _restore_or_init(config, trainer, pop, mesh, ckpt, changed)
  except RunError:
    if branch_from and main:
      workdir_lib.undo_branch(workdir)
    raise
  step = run.step
  size = param_count(run.state.params, pop.size)
  unfiled = records.not_filed_why(config.to_dict(), size)
  if unfiled and main:
    print(f'Note: launch.py table will not file this run under {config.paper.table} row '
          f'{config.paper.row!r}: {unfiled}', flush=True)
  if resumed and main:
    print(f'Branched from {branch_from} at step {step}, into {workdir}' if branch_from
          else f'Resumed from step {step} in {workdir}', flush=True)
  writer = workdir_lib.MetricWriter(os.path.join(workdir, 'metrics.jsonl') if main else None, step,
                        retest=step >= total_steps    # a finished run, run again
                        or not np.any(distributed.to_host(run.state.active)))
  chunk, phases, validation_due = _chunks(config, trainer, mesh, main)
  evaluate = trainer.task.evaluator(trainer.apply, trainer.initial_carry, tc,
                                     jax.random.key(tc.eval_seed))

  # Validation every eval_every steps, or at the end of every epoch (0; with
  # a chunk schedule, of each phase's epochs); a chunk never runs past a
  # validation point.
  t_resume = time.time()
  # The first checkpoint of a run comes after its first chunk, not a minute in.
  last_ckpt = time.time() if resumed else -math.inf
  pace, shapes = _Pace(step), set()
  active = bool(np.any(distributed.to_host(run.state.active)))
  while step < total_steps and active:
    due = validation_due(step)
    n = min(tc.log_every, total_steps - step, phase_at(phases, step)[1] - step, due)
    compiling = (phase_at(phases, step)[0], n) not in shapes    # a new static shape compiles
    shapes.add((phase_at(phases, step)[0], n))
    train_recs = _run_chunk(run, chunk(step), n, compiling, pace, writer,
                            trainer.halving or bool(tc.get('anneal')))
    step = run.step
    valid = None      # shown on the lines where validation ran, and only there
    if n == due or step >= total_steps:
      t_valid = time.time()
      valid = _validate(run, evaluate, writer, tc, step)
      pace.validation(time.time() - t_valid)
    wall = run.elapsed + time.time() - t_resume
    active = bool(np.any(distributed.to_host(run.state.active)))
    if main:
      print(_progress_line(step, total_steps, train_recs, valid, run.solved_at, wall,
                           pace.eta(step, total_steps), tc.stop_when_solved), flush=True)
    if (time.time() - last_ckpt > tc.checkpoint_every_s or step >= total_steps or not active
        or interrupt.signal):
      _save(ckpt, run, wall)
      last_ckpt = time.time()
    if interrupt.signal and step < total_steps and active:
      ckpt.wait_until_finished()
      writer.close()
      raise Interrupted(f'interrupted ({interrupt.signal}) at step {step} of {total_steps}; the '
                     f'checkpoint is saved: rerun the same command to resume from step {step}')
    # a signal in the last chunk: the run has trained; it is tested and recorded first
  ckpt.wait_until_finished()
  if step < total_steps and main:
    who = 'Stopped' if pop.size == 1 else 'Every member stopped'
    print(f'{who} at step {step:,} of the budget of {total_steps:,}: {_why_stopped(run, tc)}',
          flush=True)
  wall = run.elapsed + time.time() - t_resume
  result, test = _summarise(run, config, pop, mesh, evaluate, writer, step, total_steps,
                            wall, version)
  writer.close()
  if main:
    records.write_json(os.path.join(workdir, 'result.json'), result)
    _report(result, test, trainer.task.unit, tc.stop_when_solved, workdir)
  if interrupt.signal:      # it came as the run ended: the caller (a sweep) stops too
    raise Interrupted(f'{interrupt.signal} came as the run ended at step {step}: it finished '
                      '(result.json written); a rerun of the same command finds it done')
  return result


def _why_stopped(run: _Run, tc) -> str:
  """Why the members stopped before the budget: '3 solved, 1 no better
  validation in train.patience=20 validations' (one member: no count)."""
  solved = np.asarray([s is not None for s in run.solved_at]) & bool(tc.stop_when_solved)
  nonfinite = np.asarray(run.nonfinite, bool) & ~solved
  patience, anneal = tc.get('patience', 0), tc.get('anneal')
  rule = ' or '.join(
      ([f'stopped by the {anneal} schedule'] if anneal == 'rnnlm' else [])   # 'restore' stops none
      + ([f'no better validation in train.patience={patience} validations'] if patience else [])
  ) or 'stopped'
  counts = ((int(solved.sum()), 'solved'), (run.size - int(solved.sum() + nonfinite.sum()), rule),
            (int(nonfinite.sum()), 'its loss no longer finite'))
  return ', '.join(what if run.size == 1 else f'{n} {what}' for n, what in counts if n > 0)


def param_count(params, members: int) -> int:
  """The parameters of one member (``params`` stacked over ``members``)."""
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)) // members


def _summarise(run: _Run, config, pop, mesh, evaluate, writer, step: int, total_steps: int,
               wall: float, version) -> tuple[dict, list[dict]]:
  """The run's result (``result.json``): each member scored on the test
  split at its final parameters and at its lowest validation loss."""
  tc = config.train
  test = evaluate(run.state.params, 'test')
  best = run.best
  at_best = evaluate(best.params, 'test') if any(x is not None for x in best.step) else None
  skipped = run.skipped(pop.size)
  w_rec = distributed.to_host(run.state.params['layer_0']['w_rec'])
  members = []
  for i in range(pop.size):
    writer.write(dict(step=step, split='test', member=i, **test[i]))
    stopped = (run.stopped_at or [None] * pop.size)[i]
    why = diverged_why(test[i]['loss'], float(run.last_loss[i]), bool(run.nonfinite[i]),
                       int(skipped[i]),    # the guard counts updates, to the member's stop
                       (stopped or run.solved_at[i] or step)
                       // config.optim.get('accumulate_steps', 1))
    members.append(dict(
        hparams=pop.labels[i], test_loss=test[i]['loss'], test_error=test[i]['error'],
        test_count=test[i]['count'],
        solved=test[i]['error'] < tc.solved_error,
        solved_at_step=run.solved_at[i],
        # the task's further test numbers, e.g. bits per character
        **{f'test_{k}': v for k, v in test[i].items() if k not in ('loss', 'error', 'count')},
        # the test at the member's lowest validation loss (select on valid, report on test)
        best_valid_loss=best.loss[i] if best.step[i] is not None else None,
        best_valid_step=best.step[i],
        **({f'test_{k}_at_best_valid': v for k, v in at_best[i].items() if k != 'count'}
           if at_best is not None and best.step[i] is not None else {}),
        diverged=why is not None, diverged_why=why,
        spectral_radius=spectral_radius(w_rec[i]),
        skipped_steps=int(skipped[i])))
  result = dict(step=step, wall_time_s=wall, population=pop.size,
                param_count=param_count(run.state.params, pop.size),   # of one member
                solved=sum(m['solved'] for m in members),
                # which success criterion 'solved' means: test error < solved_error
                success=tc.get('success'), solved_error=tc.solved_error,
                devices=population.describe(mesh),
                code_version=version, smoke=is_smoke(config, total_steps),
                diverged=sum(m['diverged'] for m in members), members=members)
  return result, test


def _report(result: dict, test: list[dict], unit: str, verdicts: bool, workdir: str) -> None:
  """The result on the terminal: one line per member (two when it was
  selected before the end)."""
  step, many = result['step'], result['population'] > 1
  for i, m in enumerate(result['members']):
    who = f'member {i} {m["hparams"]}: ' if many else ''
    verdict = ('SOLVED: ' if m['solved'] else 'not solved: ') if verdicts else ''
    extra = ''.join(f', {k} {records.loss_text(v)}' for k, v in test[i].items()
                    if k not in ('loss', 'error', 'count'))
    if m['diverged']:
      print(f'{who}DIVERGED: {m["diverged_why"]}', flush=True)
    # a member stopped on solving was tested with its parameters of then
    at = (m['solved_at_step'] if verdicts else None) or step
    print(f'{who}{verdict}test loss {records.loss_text(m["test_loss"])}{extra}'
          f'{_error(m["test_error"], ",")} on {m["test_count"]} {unit} after {at} steps',
          flush=True)
    if m['best_valid_step'] is not None and m['best_valid_step'] != step:
      print(f'{who}  at its lowest validation loss ({records.loss_text(m["best_valid_loss"])}, '
            f'step {m["best_valid_step"]}): test loss '
            f'{records.loss_text(m["test_loss_at_best_valid"])}'
            f'{_error(m["test_error_at_best_valid"], ",")}', flush=True)
  print(f'{step} steps, {result["wall_time_s"]:.0f} s. Results in {workdir}', flush=True)


def _error(error: float, before: str = '') -> str:
  """' error 12.34%', or nothing where a task has no error rate (words: NaN)."""
  return f'{before} error {100 * error:.2f}%' if np.isfinite(error) else ''


def _duration(seconds: float) -> str:
  s = int(round(seconds))
  if s < 60:
    return f'{s}s'
  if s < 3600:
    return f'{s // 60}m{s % 60:02d}s'
  return f'{s // 3600}h{s // 60 % 60:02d}m'


def _rate(per_s: float) -> str:
  """Two significant digits below 10 a second (a large model on a CPU makes
  0.37), whole numbers above."""
  return f'{per_s:.0f}' if per_s >= 9.95 else f'{per_s:.2g}'


def _progress_line(step, total, recs, valid, solved_at, wall, eta=None,
                   may_stop_early=False) -> str:
  """One line per log step: the first member's numbers, or a population summary;
  validation numbers on the lines where validation ran. The ETA is an upper
  bound (<=) where members stop once they solve the task."""
  rate = recs[0]['steps_per_s']
  pace = 'compiling' if rate is None else f'{_rate(rate)} steps/s'
  left = '' if eta is None or step >= total else f', ETA {"<=" if may_stop_early else ""}{_duration(eta)}'
  head = f'[{step:>8d}/{total} {100 * step / max(total, 1):3.0f}%]'
  tail = f' | {pace}, {_duration(wall)}{left}'
  also = lambda v: ''.join(f', {k} {records.loss_text(x)}' for k, x in v.items()
                           if k not in ('loss', 'error', 'count'))   # bits per character...
  if len(recs) == 1 and 'loss' in recs[0]:
    rec = recs[0]
    more = also(valid[0]) if valid else ''
    v = (f' | valid loss {records.loss_text(valid[0]["loss"])}{more}'
         f'{_error(valid[0]["error"], "," if more else "")}' if valid else '')
    return (f'{head} loss {records.loss_text(rec["loss"])}{_error(rec["error"])} '
            f'|g| {rec["grad_norm"]:.3g} clip {rec["clipped"]:.2f} skipped {rec["skipped"]} '
            f'omega {rec["omega"]:.3g} rho {rec["spectral_radius"]:.2f}{v}{tail}')
  losses = [r['loss'] for r in recs if 'loss' in r] or [float('nan')]
  active = sum(r['active'] for r in recs)
  solved = sum(s is not None for s in solved_at)
  skipped = max(r['skipped'] for r in recs)
  top = min(valid, key=lambda v: v['loss']) if valid else None
  best = f' | best valid loss {records.loss_text(top["loss"])}{also(top)}' if valid else ''
  return (f'{head} {len(recs)} members, {active} learning, {solved} solved | '
          f'loss min {records.loss_text(min(losses))} median '
          f'{records.loss_text(float(np.median(losses)))} | skipped at most '
          f'{skipped} per member{best}{tail}')
