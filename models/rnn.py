"""The recurrent network: optional feed-forward input layers, a stack of
recurrent layers (each a ``jax.lax.scan`` over a pure cell step), and a
linear head applied at every step.

Shapes are time-major: inputs ``[T, B, D]``, outputs ``[T, B, O]``.

The head is linear at every step; which steps are scored and how (softmax
cross-entropy, squared error, Bernoulli) is the task's business through a
mask. That covers the heads of the papers: softmax on the last step (mask
on the last step), softmax on every step, linear regression on the last step.

Practitioners' options (Hafner 2017; see ``../shared/references``): layer
norm of each input to a gate mapping separately, learned initial state,
stacked layers whose outputs are summed, feed-forward input layers,
variational recurrent dropout (one mask per sequence on the recurrent
input, Gal & Ghahramani 2016), zoneout (Krueger et al. 2017), and dropout on
the non-recurrent connections (``dropout``: each layer's input and the
head's input, a fresh mask at every step; Zaremba et al. 2014). Every
layer's recurrence takes the hand-written backward pass (``recurrence``),
recurrent dropout included; only zoneout differentiates the scan by autodiff.

Mixed precision (``compute_dtype='bfloat16'``): bfloat16 operands, float32
everything else. Every matrix product of the input layers, the input
projections, the recurrence (forward: h_{t-1} W_rec; its hand-written
backward: dE/dz_t W_rec^T and the one dE/dW_rec product) and the linear head
casts its two operands to bfloat16 and returns float32
(``models.cells.matmul``; the products of the gradients that autodiff
takes through them are of the same form, ``models.cells.mixed_dot``).
Parameters, optimiser state, states, gates, every element-wise operation,
the carried state, the loss and the gradients are float32. One reduction
reads bfloat16: the hand-written backward pass records dE/dz_t in the
products' dtype, and where the input projection shares it (the RNN and LSTM
cells without layer norm) the bias gradient sums those rounded values in
float32 (within bfloat16's unit roundoff 2^-9 of sum_t |dE/dz_t|; tested). The NADE and
word-softmax heads and the one-hot rows of ``input_vocab`` are float32 as in
``compute_dtype='float32'``, which is plain float32 throughout (the same
program, bit for bit, as before the option existed).

Why this form: XLA's CPU backend (measured on an AMD EPYC with AVX512-BF16,
one thread) multiplies bfloat16 operands into a float32 result about twice as
fast as float32 ([32, 512] x [512, 2048]: 583 us against 1096 us), but is
slower than float32 when the result is bfloat16 (1922 us) and for bfloat16
element-wise work; a first design with bfloat16 states and gates trained
the char-LMs at 0.3-0.4x float32's speed, this one at 1.2x (LSTM 1.18x,
GRU 1.25x; ``benchmarks``). At batch 1 (the papers' runs) it gains little
or nothing (music RNN 1.00x, PTB RNN 1.09x) although an isolated bfloat16
matrix-vector product is slower than float32's ([1, 500] x [500, 500]: 299
us against 67 us): it is allowed, but keep float32 there, where it only
adds rounding.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import cells as cells_lib
from models import class_softmax as class_softmax_lib
from models import nade as nade_lib

# What turns the top hidden states into outputs: 'linear' (a linear map at
# every step, scored by the task's loss), 'nade' (an RNN-NADE over binary
# frames, Bengio et al. 2013 sec. 3.3), 'class_softmax' (Mikolov's
# class-factored softmax over words, Bengio et al. 2013 sec. 4.2) or
# 'softmax' (the full softmax over words, the same interface); see
# ``RecurrentNetwork``.
OUTPUTS = ('linear', 'nade', 'class_softmax', 'softmax')
WORD_OUTPUTS = ('class_softmax', 'softmax')   # outputs are log P(targets) [T, B]
# What the network computes in (``RecurrentNetwork.compute_dtype``); the
# parameters are float32 either way.
COMPUTE_DTYPES = ('float32', 'bfloat16')
# The rates a call may give (``RecurrentNetwork.__call__(rates=...)``) in place
# of the fields of those names: a population member's own rate, a traced number.
MEMBER_RATES = ('dropout', 'recurrent_dropout')


class Dropout(nn.Module):
  """Flax's ``nn.Dropout`` with the rate given at each call, so that it may be
  traced (a member's own rate in a population). Its masks are nn.Dropout's:
  the same name ('Dropout_0') draws the same keys, so a run keeps the numbers
  it had with nn.Dropout (tested)."""

  @nn.compact
  def __call__(self, x, rate):
    keep = 1.0 - rate
    mask = jax.random.bernoulli(self.make_rng('dropout'), keep, x.shape)
    return jax.lax.select(mask, x / jnp.asarray(keep, x.dtype), jnp.zeros_like(x))


def temporal_clip(threshold: jax.Array | float | None):
  """Identity whose backward pass clips the cotangent element-wise to
  [-threshold, threshold]: Mikolov's clipping of the temporal components of
  the gradient inside BPTT (Mikolov 2012, cited in Pascanu et al. 2013 sec. 3.2)."""
  if threshold is None:
    return lambda x: x

  @jax.custom_vjp
  def clip(x, c):
    return x

  def fwd(x, c):
    return x, c

  def bwd(c, g):
    return jnp.clip(g, -c, c), jnp.zeros_like(c)

  clip.defvjp(fwd, bwd)
  c = jnp.asarray(threshold, jnp.float32)
  return lambda x: clip(x, c)


# lax.scan unroll factor of the recurrences.
UNROLL = 1


def by_gate(cell: cells_lib.Cell, a: jax.Array):
  """``a`` [T, B, G] as ``cell.gates`` arrays [T, B, H] (``a`` itself for one
  gate): what the recurrences scan over instead of ``a``, rejoined in the
  loop body by ``joined``.

  Inside a loop, a step that reads slices of the gates of ``a[t]`` (a
  dynamic slice) at different offsets compiles on XLA's CPU backend to
  scalar code (``scripts/gate_slices.py``). Measured on a core shared with
  two runs: the GRU's element-wise step at [32, 144] took 160-190 us against
  40 us from separate arrays; whole updates of the adding problem at T = 600
  took 15-20% less for the GRU (144 units) and 13% less for the LSTM (128),
  and of the 512-unit GRU of the benchmark 15% less. The LSTM's backward
  pass read its state (h, c) the same way: with ``by_part`` too, the
  512-unit LSTM's updates took 13-15% less.
  From separate arrays the step's slices of the rejoined gates simplify away.
  """
  return tuple(jnp.split(a, cell.gates, axis=-1)) if cell.gates > 1 else a


def by_part(cell: cells_lib.Cell, a: jax.Array):
  """``by_gate`` for states [T, B, S]: the LSTM's (h, c) as two arrays."""
  return tuple(jnp.split(a, cell.state_factor, axis=-1)) if cell.state_factor > 1 else a


def joined(a):
  """``by_gate``'s arrays at one step, as one [B, G]."""
  return jnp.concatenate(a, axis=-1) if isinstance(a, tuple) else a


def plain_recurrence(cell: cells_lib.Cell, params, state0: jax.Array, xp: jax.Array,
                     probe: jax.Array | None = None, clip: jax.Array | float | None = None,
                     unroll: int | None = None, drop_mask: jax.Array | None = None) -> jax.Array:
  """All states [T, B, S] of ``cell`` from ``state0`` [B, S] and the input
  projections ``xp`` [T, B, G]: a ``lax.scan`` over ``cell.step``,
  differentiated by plain autodiff. ``probe`` [T, B, S] is added to each new
  state; ``clip`` bounds element-wise the gradient flowing back into each
  step's input state (``temporal_clip``); ``drop_mask`` [B, H] (recurrent
  dropout, Gal and Ghahramani 2016: the same mask at every step, already
  scaled by 1 / keep) multiplies the operand of the recurrent product only.
  ``recurrence`` computes the same with a faster backward pass."""
  clip_fn = temporal_clip(clip)

  def body(state, xs):
    xp_t, probe_t = xs
    state = clip_fn(state)
    operand = cell.matmul_operand(state)
    if drop_mask is not None:
      operand = operand * drop_mask
    new = cell.step_from_matmul(params, state, joined(xp_t),
                                cell.matmul(operand, params['w_rec']))
    if probe_t is not None:
      new = new + probe_t
    return new, new

  return jax.lax.scan(body, state0, (by_gate(cell, xp), probe), unroll=unroll or UNROLL)[1]


def recurrence(cell: cells_lib.Cell, params, state0: jax.Array, xp: jax.Array,
               probe: jax.Array | None = None, clip: jax.Array | float | None = None,
               unroll: int | None = None, drop_mask: jax.Array | None = None) -> jax.Array:
  """``plain_recurrence`` with a hand-written backward pass (BPTT).

  Plain autodiff of a scan accumulates dE/dW_rec inside the backward loop,
  one [H, B] x [B, G] outer product per step into a carried [H, G] sum. Here
  the backward loop only carries dE/dstate and records dE/dz_t for the
  recurrent matmul z_t = operand(state_{t-1}) @ W_rec; after it,

      dE/dW_rec = sum_t operand(state_{t-1})^T dE/dz_t
                = operand(states)[T*B, H]^T @ dE/dz[T*B, G],

  one well-shaped matmul. The forward pass keeps each step's residuals
  (``cell.step_residuals``: z_t [T, B, G] by default; the LSTM and GRU keep
  their gate activations, with layer norm also the normalised z_t, and
  differentiate their step in closed form, ``cell.step_vjp``), so the backward pass does one matmul
  per step (dE/dz_t @ W_rec^T) and no recomputation of the forward one. Same arguments and result as ``plain_recurrence``; with
  ``drop_mask`` the operand is operand(state_{t-1}) * mask in all three
  products (the mask is a constant: no gradient flows to it).

  All three products (z_t, dE/dz_t W_rec^T, dE/dW_rec) take their operands in
  ``cell.matmul_dtype`` and return float32.
  """
  clip = None if clip is None else jnp.asarray(clip, jnp.float32)
  return _recurrence(cell, unroll or UNROLL)(params, state0, xp, probe, clip, drop_mask)


@functools.lru_cache(maxsize=None)
def _recurrence(cell: cells_lib.Cell, unroll: int):
  """The custom-VJP recurrence of one (hashable) cell."""
  operand_dtype = cell.matmul_dtype      # cast W_rec once, outside the loops

  def masked_operand(state, mask):
    operand = cell.matmul_operand(state)
    return operand if mask is None else operand * mask

  def forward(params, state0, xp, probe, mask, keep_z):
    w = params['w_rec'].astype(operand_dtype)
    # bfloat16, where the product's operand is part of the state (the
    # LSTM's h of (h, c)): the operand of the one dE/dW_rec product is kept
    # step by step, cast, as uint16 bits (a bfloat16 array updated in place
    # each step was widened to float32 and back, at 108 us a step), and laid
    # out [H, T, B] (written at [:, t, :]), the product's own layout: from
    # the stacked float32 states XLA's CPU backend sliced, cast and
    # transposed it in one copy (16.6 ms of the LSTM 512's update on one
    # thread; the product 26 ms), and from [T, B, H] it still transposed it.
    # Where the operand is the whole state (GRU, RNN) the copy from the
    # states was the faster.
    operand0 = masked_operand(state0, mask)
    keep_operand = (keep_z and operand_dtype != 'float32'
                    and operand0.shape[-1] != jnp.shape(state0)[-1])
    steps = xp.shape[0]

    def body(carry, xs):
      state, kept, t = carry
      xp_t, probe_t = xs
      operand = masked_operand(state, mask)
      z = cell.matmul(operand, w)
      if keep_z:             # the gradient's forward pass
        cell.check_step_params(params, state, joined(xp_t), z)
        new, residuals = cell.step_residuals(params, state, joined(xp_t), z)
      else:
        new = cell.step_from_matmul(params, state, joined(xp_t), z)
      if probe_t is not None:
        new = new + probe_t
      if keep_operand:
        bits = jax.lax.bitcast_convert_type(operand.astype(operand_dtype), jnp.uint16)
        kept = jax.lax.dynamic_update_slice_in_dim(kept, jnp.swapaxes(bits, -1, -2)[..., None, :],
                                                   t, axis=-2)
        t = t + 1
      return (new, kept, t), (new, residuals) if keep_z else new

    kept0, t0 = None, None          # only where kept (no counter in the other loops)
    if keep_operand:
      kept0 = jnp.zeros(operand0.shape[:-2] + (operand0.shape[-1], steps, operand0.shape[-2]),
                        jnp.uint16)
      t0 = jnp.zeros((), jnp.int32)
    (_, kept, _), out = jax.lax.scan(body, (state0, kept0, t0), (by_gate(cell, xp), probe),
                                     unroll=unroll)
    return (*out, kept) if keep_z else out

  @jax.custom_vjp
  def run(params, state0, xp, probe, clip, mask):
    del clip   # the forward pass is the identity in it
    return forward(params, state0, xp, probe, mask, keep_z=False)

  def run_fwd(params, state0, xp, probe, clip, mask):
    states, residuals, operand_bits = forward(params, state0, xp, probe, mask, keep_z=True)
    return states, (params, state0, xp, states, residuals, operand_bits, probe, clip, mask)

  def run_bwd(res, g_states):
    params, state0, xp, states, residuals, operand_bits, probe, clip, mask = res
    w_t = params['w_rec'].astype(operand_dtype).T
    prevs = jnp.concatenate([state0[None], states[:-1]], axis=0)
    names = cell.step_param_names()
    small = {k: params[k] for k in names}    # parameters read inside the step

    def body(carry, xs):
      g_next, g_small = carry
      *parts, residuals_t = xs
      g_out, prev, xp_t = (joined(a) for a in parts)
      g = g_out + g_next                       # dE/dstate_t (= dE/dprobe_t)
      d_small, d_prev, d_xp, d_z = cell.step_vjp(params, small, prev, xp_t, residuals_t, g)
      _, pull_operand = jax.vjp(lambda s: masked_operand(s, mask), prev)
      d_prev = d_prev + pull_operand(cell.matmul(d_z, w_t))[0]
      if clip is not None:
        d_prev = jnp.clip(d_prev, -clip, clip)
      g_small = jax.tree.map(jnp.add, g_small, d_small)
      # Where xp_t and z enter the step only through their sum (no layer
      # norm, not a GRU) they share one cotangent: record it once.
      shared = d_xp is d_z
      if operand_dtype != 'float32':
        # dE/dz_t is an operand of the products after the loop only (and,
        # shared, of the bias gradient's sum): recorded in their dtype, as
        # bits for the reason of the forward pass's kept operand.
        d_z = jax.lax.bitcast_convert_type(d_z.astype(operand_dtype), jnp.uint16)
      return (d_prev, g_small), (None if shared else d_xp, d_z,
                                 None if probe is None else g)

    init = (jnp.zeros_like(state0), jax.tree.map(jnp.zeros_like, small))
    (d_state0, d_small), (d_xp, d_zs, g_all) = jax.lax.scan(
        body, init, (by_part(cell, g_states), by_part(cell, prevs), by_gate(cell, xp),
                     residuals), reverse=True, unroll=unroll)
    if operand_dtype != 'float32':
      d_zs = jax.lax.bitcast_convert_type(d_zs, operand_dtype)
    if d_xp is None:
      d_xp = d_zs.astype(jnp.float32)
    if operand_bits is None:
      operands = masked_operand(prevs, mask).astype(operand_dtype)
    else:
      operands = jax.lax.bitcast_convert_type(operand_bits, operand_dtype)
    d_zs_op = d_zs.astype(operand_dtype)
    if operand_dtype == 'float32':
      # as [T B, H] and [T B, G] matrices: from the [T, B, .] arrays XLA's CPU
      # backend transposed the operand in 3-D, at 0.6x the speed (LSTM 512: 49
      # against 30 ms); with bfloat16 operands the 3-D form is the faster one
      operands = operands.reshape(-1, operands.shape[-1])
      d_zs_op = d_zs_op.reshape(-1, d_zs_op.shape[-1])
    lead = tuple(range(d_zs_op.ndim - 1))
    d_w = jax.lax.dot_general(operands, d_zs_op,
                              ((lead if operand_bits is None else (1, 2), lead), ((), ())),
                              preferred_element_type=jnp.float32)
    d_params = {k: jnp.zeros_like(v) for k, v in params.items()}
    d_params.update(d_small, w_rec=d_w)
    return (d_params, d_state0, d_xp, g_all,
            None if clip is None else jnp.zeros_like(clip),
            None if mask is None else jnp.zeros_like(mask))

  run.defvjp(run_fwd, run_bwd)
  return run


class RecurrentNetwork(nn.Module):
  """Inputs [T, B, D] -> outputs [T, B, output_size].

  ``__call__(inputs, carry=None, *, reset=None, train=False, probes=None, bptt_clip=None)``
  starts from ``carry`` (list per layer of [B, S]; the initial state when
  None, or where the scalar ``reset`` is True) and returns ``(outputs, aux)`` with
  - ``aux['carry']``: list per layer of final states [B, S], to carry into the
    next truncated-BPTT window;
  - ``aux['states']``: list per layer of all states [T, B, S];
  - ``aux['initial']``: list per layer of the initial states [B, S];
  - ``aux['xp']``: list per layer of input projections [T, B, G];
  - ``aux['hidden']``: list per layer of the emitted activations [T, B, H].
  ``probes`` (list per layer of [T, B, S], zeros) are added to the states so
  that their gradient is dE/dx_t for every t (what Omega needs);
  ``bptt_clip`` clips the gradient flowing back through each state.
  ``dropout`` (training only) zeroes each unit of every layer's input and
  of the head's input with that probability, a fresh mask at every step,
  and scales the rest by 1 / (1 - dropout); the recurrent connections are
  ``recurrent_dropout``'s. ``dropout_on_inputs=False`` spares the first
  layer's input: where it is a one-hot symbol, a dropped unit would be a
  dropped character, not a dropped feature (ids read through ``W_in``'s rows,
  ``input_vocab``, are never dropped).

  ``output='nade'`` (Bengio, Boulanger-Lewandowski, Pascanu 2013, sec. 3.3;
  Boulanger-Lewandowski et al. 2012) replaces the linear head by a NADE over
  binary frames of D = ``output_size`` keys whose biases are affine in the
  top hidden state (``models.nade``: ``b_v = b_v0 + h W_hv``, ``b_h = b_h0 +
  h W_hh``); its parameters are one dict param ``'nade'`` of
  ``models.nade.nade_init``'s form (``nade_hidden`` NADE units). The NADE
  needs the frames it scores, so ``__call__`` then takes ``targets [T, B, D]``
  and the outputs are the teacher-forced conditional logits ``l_d`` of
  ``p(targets_d = 1 | targets_<d, h_t)`` [T, B, D]: the exact log-likelihood
  of a frame is ``models.nade.bernoulli_log_prob(outputs, targets)`` (the
  per-step loss kind 'nade' of ``tasks.per_step_loss``). ``sample_key``
  adds ``aux['samples'] [num_samples, T, B, D]``, frames drawn from the model
  at every step (exact ancestral sampling), for the expected accuracy.
  ``nade_max_notes`` (the data's most notes in a frame; ``tasks.music`` sets
  it) scores the frames from the segments between their notes instead of
  a scan over the keys (``models.nade.nade_logits``: same numbers, the
  NADE about 3x and a Nottingham update 1.8x faster).
  With ``output='linear'`` ``targets``, ``sample_key`` and ``num_samples``
  are ignored.

  ``output='class_softmax'`` (Mikolov et al. 2011; Bengio et al. 2013 sec.
  4.2) scores words: ``targets`` are int ids [T, B] of a vocabulary of
  ``output_size`` words in the classes ``class_of_word`` (V ints in
  0..``num_classes``-1, ``datasets.ptb.frequency_classes``), and the outputs
  are ``log P(targets) = log P(c | h) + log P(w | c, h)`` [T, B] in nats
  (``models.class_softmax``, method 'sorted': each position is scored
  against its target's class only, never all V words). ``'softmax'`` is the
  full softmax over the V words, same interface (the per-step loss kind
  'log_prob' of ``tasks.per_step_loss``). Their parameters are one dict
  param ``'head'/'softmax'`` (``models.class_softmax.init_params``).

  ``input_vocab`` > 0: ``inputs`` are int ids [T, B] in [0, input_vocab),
  read as one-hot vectors: the first layer's W_in [input_vocab, G] is indexed
  by them rather than multiplied by a [T, B, V] one-hot array (same numbers;
  the plain RNN of Mikolov's RNNLM).
  """
  output_size: int
  cell: str = 'rnn'
  hidden_size: int = 50
  num_layers: int = 1
  activation: str = 'tanh'
  init_scheme: str = 'default'   # models.cells.INITS
  use_bias: bool = True
  layer_norm: bool = False
  gate_bias: bool = True         # LSTM forget-gate bias 1, GRU reset-gate bias -1 (False: 0)
  leaky_fraction: float = 0.0
  leak_range: tuple[float, float] = (0.02, 0.2)
  input_layers: Sequence[int] = ()
  sum_layer_outputs: bool = False
  learned_initial_state: bool = False
  recurrent_dropout: float = 0.0
  zoneout: float = 0.0
  dropout: float = 0.0           # on each layer's input and the head's input (not the recurrence)
  dropout_on_inputs: bool = True # False: ``dropout`` spares the first layer's input
  output: str = 'linear'         # OUTPUTS
  nade_hidden: int = 150         # NADE hidden units (output='nade')
  nade_max_notes: int | None = None   # most notes in a frame, from the data (None: scan the keys)
  num_classes: int = 30          # word classes (output='class_softmax')
  class_of_word: Sequence[int] = ()   # [V] class of each word id (from the data)
  input_vocab: int = 0           # > 0: inputs are int ids read through W_in rows
  compute_dtype: str = 'float32' # COMPUTE_DTYPES: the products' operands (all else float32)
  # Set by the trainer, not the config: True when the model is not vmapped over
  # members (population.layout='map'); the class softmax is then compiled as a
  # vmap of one, which XLA:CPU runs faster (models.class_softmax.log_prob).
  unbatched: bool = False

  @property
  def matmul_dtype(self) -> str:
    """The dtype of every product's operands (``compute_dtype``), checked."""
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f'model.compute_dtype={self.compute_dtype!r} is not one of '
                       f'{", ".join(COMPUTE_DTYPES)}')
    return self.compute_dtype

  def cells(self) -> list[cells_lib.Cell]:
    common = dict(init_scheme=self.init_scheme, use_bias=self.use_bias, layer_norm=self.layer_norm,
                  matmul_dtype=self.matmul_dtype)
    cls = cells_lib.cell_class(self.cell)
    simple = issubclass(cls, cells_lib.SimpleRNN)
    if simple:
      common.update(activation=self.activation, leaky_fraction=self.leaky_fraction,
                    leak_range=tuple(self.leak_range))
    elif self.leaky_fraction:
      raise ValueError(f'model.leaky_fraction is for rnn and rnn_preact cells, not {self.cell!r}')
    if self.cell == 'rnn_preact' and self.recurrent_dropout:
      raise ValueError('model.recurrent_dropout needs a cell whose state is h, not rnn_preact')
    if cls.gate_bias_field:      # the cell's own default (LSTM forget 1, GRU reset -1), or 0
      common[cls.gate_bias_field] = getattr(cls, cls.gate_bias_field) if self.gate_bias else 0.0
    elif not self.gate_bias:
      gated = [n for n, (c, _) in cells_lib.CELLS.items() if c.gate_bias_field]
      raise ValueError(f'model.gate_bias=False is for cells with a gate bias ({", ".join(gated)}); '
                       f'{self.cell!r} has none')
    return [cells_lib.make_cell(self.cell, self.hidden_size, **common,
                                **({'leak_seed': i} if simple else {}))
            for i in range(self.num_layers)]

  @nn.compact
  def __call__(self, inputs, carry=None, *, reset=None, train: bool = False, probes=None,
               bptt_clip=None, targets=None, sample_key=None, num_samples: int = 1,
               rates=None):
    if self.output not in OUTPUTS:
      raise ValueError(f"model.output={self.output!r} is not one of {', '.join(OUTPUTS)}")
    if self.input_vocab and self.input_layers:
      raise ValueError('model.input_layers read float inputs, not the ids of input_vocab')
    for name in ('dropout', 'recurrent_dropout', 'zoneout'):
      if not 0.0 <= getattr(self, name) < 1.0:
        raise ValueError(f'model.{name}={getattr(self, name)} is not a probability in [0, 1)')
    rates = dict(rates or {})
    if set(rates) - set(MEMBER_RATES):
      raise ValueError(f'rates: {", ".join(sorted(set(rates) - set(MEMBER_RATES)))} is not one of '
                       f'{", ".join(MEMBER_RATES)}')
    for name in rates:
      if not getattr(self, name):
        raise ValueError(f'rates[{name!r}] is given but model.{name} is off (0): switch it on so '
                         'that the program draws its masks')
    dropout = Dropout()
    drop = (lambda x: dropout(x, rates.get('dropout', self.dropout))) if train and self.dropout \
        else (lambda x: x)
    dt = self.matmul_dtype
    # The input layers' products in ``dt`` (nn.Dense contracts x's last axis with
    # the kernel's first); float32 keeps Flax's own product.
    dense_dot = {} if dt == 'float32' else dict(
        dot_general=lambda x, w, dims, precision=None: cells_lib.matmul(x, w, dt))
    x = inputs
    for i, width in enumerate(self.input_layers):
      x = nn.tanh(nn.Dense(width, name=f'input_{i}', **dense_dot)(x))

    batch = inputs.shape[1]
    aux: dict[str, list[Any]] = {k: [] for k in ('carry', 'states', 'initial', 'xp', 'hidden')}
    summed = 0.0
    for i, cell in enumerate(self.cells()):
      ids = i == 0 and self.input_vocab > 0
      # word ids: their rows of W_in are the embedding, not dropped
      if not ids and (i > 0 or self.dropout_on_inputs):
        x = drop(x)
      params = self.param(f'layer_{i}', cell.init, self.input_vocab if ids else x.shape[-1])
      if self.learned_initial_state:
        state0 = jnp.broadcast_to(
            self.param(f'initial_{i}', nn.initializers.zeros, (cell.state_size,)),
            (batch, cell.state_size))
      else:
        state0 = jnp.zeros((batch, cell.state_size), jnp.float32 if ids else x.dtype)
      if carry is not None:     # go on from the carried state, unless told to reset
        state0 = carry[i] if reset is None else jnp.where(reset, state0, carry[i])
      xp = cell.project_ids(params, x) if ids else cell.project(params, x)
      states = self._scan(cell, params, state0, xp, probes[i] if probes is not None else None,
                          bptt_clip, train, rates.get('recurrent_dropout', self.recurrent_dropout))
      hidden = cell.output(states)
      for k, v in zip(aux, (states[-1], states, state0, xp, hidden)):
        aux[k].append(v)
      summed = summed + hidden
      x = hidden
    top = drop(summed if self.sum_layer_outputs else x)
    if self.output == 'nade':
      logits, samples = self._nade(top, targets, sample_key, num_samples)
      if samples is not None:
        aux['samples'] = samples
      return logits, aux
    if self.output in WORD_OUTPUTS:
      return self._word_log_prob(top, targets), aux
    w_out = self.param('w_out', lambda k, s: cells_lib.init_weight(self.init_scheme, 'out', k, s),
                       (self.hidden_size, self.output_size))
    b_out = self.param('b_out', nn.initializers.zeros, (self.output_size,))
    return cells_lib.matmul(top, w_out, dt) + b_out, aux

  def _word_log_prob(self, top, targets):
    """log P(targets [T, B] | top [T, B, H]) [T, B] under the word softmax."""
    if targets is None:
      raise ValueError(f'model.output={self.output!r} scores given words: pass targets [T, B]')
    factored = self.output == 'class_softmax'
    classes = tuple(int(c) for c in self.class_of_word) or (0,) * self.output_size
    if factored and (len(classes) != self.output_size or max(classes) + 1 != self.num_classes):
      raise ValueError(f'model.class_of_word has {len(classes)} words in {max(classes) + 1} '
                       f'classes; expected {self.output_size} words in model.num_classes='
                       f'{self.num_classes}')
    head = class_softmax_lib.ClassSoftmaxHead(
        vocab_size=self.output_size, class_of_word=classes,
        method='sorted' if factored else 'full', init_scheme=self.init_scheme,
        vmap_one=self.unbatched, name='head')
    return head(top, targets.astype(jnp.int32))

  def _nade(self, top, targets, sample_key, num_samples):
    """(teacher-forced NADE logits [T, B, D] of ``targets`` given ``top`` [T, B, H],
    samples [num_samples, T, B, D] or None without ``sample_key``)."""
    params = self.param('nade', nade_lib.nade_init, top.shape[-1], self.nade_hidden,
                        self.output_size, self.init_scheme)
    if targets is None:
      raise ValueError("model.output='nade' scores given frames: pass targets [T, B, D]")
    bv, bh = nade_lib.nade_conditional_biases(params, top)
    samples = None
    if sample_key is not None:
      lead = (num_samples,) + top.shape[:-1]
      samples = nade_lib.nade_sample(params, jnp.broadcast_to(bv, lead + bv.shape[-1:]),
                                     jnp.broadcast_to(bh, lead + bh.shape[-1:]), sample_key)
    return nade_lib.nade_logits(params, bv, bh, targets, self.nade_max_notes), samples

  def _scan(self, cell, params, state0, xp, probe, bptt_clip, train, recurrent_dropout):
    """All states [T, B, S] of one layer; the recurrence is one lax.scan.
    ``recurrent_dropout``: the rate (``self.recurrent_dropout``, or a member's
    own, traced), used where ``self.recurrent_dropout`` is on."""
    steps, batch = xp.shape[:2]
    drop_mask = zone_mask = None
    if train and self.recurrent_dropout > 0:
      keep = 1.0 - recurrent_dropout
      drop_mask = jax.random.bernoulli(self.make_rng('dropout'), keep,
                                       (batch, cell.hidden_size)) / keep
    if not self.zoneout:   # the hand-written BPTT, recurrent dropout included
      return recurrence(cell, params, state0, xp, probe, bptt_clip, drop_mask=drop_mask)
    clip = temporal_clip(bptt_clip)
    if train and self.zoneout > 0:
      zone_mask = jax.random.bernoulli(self.make_rng('dropout'), self.zoneout,
                                       (steps, batch, cell.state_size))

    def body(state, xs):
      xp_t, probe_t, zone_t = xs
      xp_t = joined(xp_t)
      state = clip(state)
      if drop_mask is None:
        new = cell.step(params, state, xp_t)
      else:   # the operand of the recurrent product only (Gal and Ghahramani 2016);
        # the state that a GRU's z, a leaky unit or an LSTM's cell carries over is whole
        z = cell.matmul(cell.matmul_operand(state) * drop_mask, params['w_rec'])
        new = cell.step_from_matmul(params, state, xp_t, z)
      if zone_t is not None:
        new = jnp.where(zone_t, state, new)
      elif self.zoneout > 0:          # evaluation: the expectation of zoneout
        new = self.zoneout * state + (1.0 - self.zoneout) * new
      if probe_t is not None:
        new = new + probe_t
      return new, new

    _, states = jax.lax.scan(body, state0, (by_gate(cell, xp), probe, zone_mask))
    return states

