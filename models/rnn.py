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
input, Gal & Ghahramani 2016) and zoneout (Krueger et al. 2017).

Mixed precision (``compute_dtype='bfloat16'``): the parameters stay float32
(so do the optimiser's state and every update); they are cast to bfloat16
where they are used. The input layers, input projections, the recurrence
forward and backward (its states, gates and carried dE/dstate) and the
linear head's product run in bfloat16; the head's product returns float32
(``preferred_element_type``), so the logits, the loss and its softmax
reductions are float32, and the recurrence sums dE/dW_rec over time and
batch into float32 (likewise the per-step sums of the other step
parameters' gradients). The NADE and word-softmax heads compute in float32
on the bfloat16 hidden states.
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
    bound = c.astype(g.dtype)      # a float32 bound would promote a bfloat16 cotangent
    return jnp.clip(g, -bound, bound), jnp.zeros_like(c)

  clip.defvjp(fwd, bwd)
  c = jnp.asarray(threshold, jnp.float32)
  return lambda x: clip(x, c)


# lax.scan unroll factor of the recurrences.
UNROLL = 1


def plain_recurrence(cell: cells_lib.Cell, params, state0: jax.Array, xp: jax.Array,
                     probe: jax.Array | None = None, clip: jax.Array | float | None = None,
                     unroll: int | None = None, dtype=None) -> jax.Array:
  """All states [T, B, S] of ``cell`` from ``state0`` [B, S] and the input
  projections ``xp`` [T, B, G]: a ``lax.scan`` over ``cell.step``,
  differentiated by plain autodiff. ``probe`` [T, B, S] is added to each new
  state; ``clip`` bounds element-wise the gradient flowing back into each
  step's input state (``temporal_clip``). ``dtype``: what the steps compute
  in (default: ``xp``'s); the parameters are cast to it inside each step, so
  their gradients are summed over the steps in their own dtype. ``recurrence``
  computes the same with a faster backward pass."""
  clip_fn = temporal_clip(clip)
  dt = jnp.dtype(dtype or xp.dtype)
  state0, xp = state0.astype(dt), xp.astype(dt)
  probe = None if probe is None else probe.astype(dt)

  def body(state, xs):
    xp_t, probe_t = xs
    new = cell.step(cells_lib.cast(params, dt), clip_fn(state), xp_t)
    if probe_t is not None:
      new = new + probe_t
    return new, new

  return jax.lax.scan(body, state0, (xp, probe), unroll=unroll or UNROLL)[1]


def recurrence(cell: cells_lib.Cell, params, state0: jax.Array, xp: jax.Array,
               probe: jax.Array | None = None, clip: jax.Array | float | None = None,
               unroll: int | None = None, dtype=None) -> jax.Array:
  """``plain_recurrence`` with a hand-written backward pass (BPTT).

  Plain autodiff of a scan accumulates dE/dW_rec inside the backward loop,
  one [H, B] x [B, G] outer product per step into a carried [H, G] sum. Here
  the backward loop only carries dE/dstate and records dE/dz_t for the
  recurrent matmul z_t = operand(state_{t-1}) @ W_rec; after it,

      dE/dW_rec = sum_t operand(state_{t-1})^T dE/dz_t
                = operand(states)[T*B, H]^T @ dE/dz[T*B, G],

  one well-shaped matmul. The forward pass keeps z_t [T, B, G], so the backward
  pass does one matmul per step (dE/dz_t @ W_rec^T) and no recomputation of
  the forward one. Same arguments and result as ``plain_recurrence``.

  In a ``dtype`` narrower than the parameters' (bfloat16 steps, float32
  parameters) the states, z_t and dE/dstate are in ``dtype``, and the sums
  over steps of the parameters' gradients are in the parameters' dtype:
  dE/dW_rec above is one product with float32 results
  (``preferred_element_type``), never a bfloat16 sum of T*B terms.
  """
  clip = None if clip is None else jnp.asarray(clip, jnp.float32)
  dt = jnp.dtype(dtype or xp.dtype)
  # Cast outside the custom VJP: autodiff casts the cotangents back.
  probe = None if probe is None else probe.astype(dt)
  return _recurrence(cell, unroll or UNROLL, dt.name)(
      params, state0.astype(dt), xp.astype(dt), probe, clip)


@functools.lru_cache(maxsize=None)
def _recurrence(cell: cells_lib.Cell, unroll: int, dtype: str):
  """The custom-VJP recurrence of one (hashable) cell, computing in ``dtype``."""

  def forward(params, state0, xp, probe, keep_z):
    params = cells_lib.cast(params, dtype)
    w = params['w_rec']

    def body(state, xs):
      xp_t, probe_t = xs
      z = cell.matmul_operand(state) @ w
      new = cell.step_from_matmul(params, state, xp_t, z)
      if probe_t is not None:
        new = new + probe_t
      return new, ((new, z) if keep_z else new)

    return jax.lax.scan(body, state0, (xp, probe), unroll=unroll)[1]

  @jax.custom_vjp
  def run(params, state0, xp, probe, clip):
    del clip   # the forward pass is the identity in it
    return forward(params, state0, xp, probe, keep_z=False)

  def run_fwd(params, state0, xp, probe, clip):
    states, zs = forward(params, state0, xp, probe, keep_z=True)
    return states, (params, state0, xp, states, zs, probe, clip)

  def run_bwd(res, g_states):
    params, state0, xp, states, zs, probe, clip = res
    computed = cells_lib.cast(params, dtype)
    w_t = computed['w_rec'].T
    prevs = jnp.concatenate([state0[None], states[:-1]], axis=0)
    names = cell.step_param_names()
    # The parameters read inside the step, in their own dtype: the cast is
    # inside ``local``, so their per-step gradients are summed in it.
    small = {k: params[k] for k in names}

    def local(small, prev, xp_t, z):
      return cell.step_from_matmul({**computed, **cells_lib.cast(small, dtype)}, prev, xp_t, z)

    def body(carry, xs):
      g_next, g_small = carry
      g_out, prev, xp_t, z = xs
      g = g_out + g_next                       # dE/dstate_t (= dE/dprobe_t)
      _, pull = jax.vjp(local, small, prev, xp_t, z)
      d_small, d_prev, d_xp, d_z = pull(g)
      _, pull_operand = jax.vjp(cell.matmul_operand, prev)
      d_prev = d_prev + pull_operand(d_z @ w_t)[0]
      if clip is not None:
        bound = clip.astype(d_prev.dtype)
        d_prev = jnp.clip(d_prev, -bound, bound)
      g_small = jax.tree.map(jnp.add, g_small, d_small)
      # Where xp_t and z enter the step only through their sum (no layer
      # norm, not a GRU) they share one cotangent: record it once.
      shared = d_xp is d_z
      return (d_prev, g_small), (None if shared else d_xp, d_z,
                                 None if probe is None else g)

    init = (jnp.zeros_like(state0), jax.tree.map(jnp.zeros_like, small))
    (d_state0, d_small), (d_xp, d_zs, g_all) = jax.lax.scan(
        body, init, (g_states, prevs, xp, zs), reverse=True, unroll=unroll)
    if d_xp is None:
      d_xp = d_zs
    operands = cell.matmul_operand(prevs)
    d_w = jnp.einsum('tbh,tbg->hg', operands, d_zs, preferred_element_type=jnp.float32)
    d_w = d_w.astype(params['w_rec'].dtype)
    d_params = {k: jnp.zeros_like(v) for k, v in params.items()}
    d_params.update(d_small, w_rec=d_w)
    return (d_params, d_state0, d_xp, g_all,
            None if clip is None else jnp.zeros_like(clip))

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
  leaky_fraction: float = 0.0
  leak_range: tuple[float, float] = (0.02, 0.2)
  input_layers: Sequence[int] = ()
  sum_layer_outputs: bool = False
  learned_initial_state: bool = False
  recurrent_dropout: float = 0.0
  zoneout: float = 0.0
  output: str = 'linear'         # OUTPUTS
  nade_hidden: int = 150         # NADE hidden units (output='nade')
  num_classes: int = 30          # word classes (output='class_softmax')
  class_of_word: Sequence[int] = ()   # [V] class of each word id (from the data)
  input_vocab: int = 0           # > 0: inputs are int ids read through W_in rows
  compute_dtype: str = 'float32' # COMPUTE_DTYPES: what the layers compute in (params: float32)

  @property
  def dtype(self) -> jnp.dtype:
    """The compute dtype (``compute_dtype``), checked."""
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f'model.compute_dtype={self.compute_dtype!r} is not one of '
                       f'{", ".join(COMPUTE_DTYPES)}')
    return jnp.dtype(self.compute_dtype)

  def cells(self) -> list[cells_lib.Cell]:
    common = dict(init_scheme=self.init_scheme, use_bias=self.use_bias, layer_norm=self.layer_norm)
    if self.cell in ('rnn', 'rnn_preact'):
      common.update(activation=self.activation, leaky_fraction=self.leaky_fraction,
                    leak_range=tuple(self.leak_range))
    elif self.leaky_fraction:
      raise ValueError(f'model.leaky_fraction is for rnn and rnn_preact cells, not {self.cell!r}')
    if self.cell == 'rnn_preact' and self.recurrent_dropout:
      raise ValueError('model.recurrent_dropout needs a cell whose state is h, not rnn_preact')
    return [cells_lib.make_cell(self.cell, self.hidden_size, **common, **(
        {'leak_seed': i} if self.cell in ('rnn', 'rnn_preact') else {}))
            for i in range(self.num_layers)]

  @nn.compact
  def __call__(self, inputs, carry=None, *, reset=None, train: bool = False, probes=None,
               bptt_clip=None, targets=None, sample_key=None, num_samples: int = 1):
    if self.output not in OUTPUTS:
      raise ValueError(f"model.output={self.output!r} is not one of {', '.join(OUTPUTS)}")
    if self.input_vocab and self.input_layers:
      raise ValueError('model.input_layers read float inputs, not the ids of input_vocab')
    dt = self.dtype
    x = inputs if self.input_vocab else inputs.astype(dt)
    for i, width in enumerate(self.input_layers):
      x = nn.tanh(nn.Dense(width, dtype=dt, name=f'input_{i}')(x))

    batch = inputs.shape[1]
    aux: dict[str, list[Any]] = {k: [] for k in ('carry', 'states', 'initial', 'xp', 'hidden')}
    summed = 0.0
    for i, cell in enumerate(self.cells()):
      ids = i == 0 and self.input_vocab > 0
      params = self.param(f'layer_{i}', cell.init, self.input_vocab if ids else x.shape[-1])
      if self.learned_initial_state:
        state0 = jnp.broadcast_to(
            self.param(f'initial_{i}', nn.initializers.zeros, (cell.state_size,)).astype(dt),
            (batch, cell.state_size))
      else:
        state0 = jnp.zeros((batch, cell.state_size), dt)
      if carry is not None:     # go on from the carried state, unless told to reset
        carried = carry[i].astype(dt)
        state0 = carried if reset is None else jnp.where(reset, state0, carried)
      computed = cells_lib.cast(params, dt)      # float32 params, used in the compute dtype
      xp = cell.project_ids(computed, x) if ids else cell.project(computed, x)
      states = self._scan(cell, params, state0, xp, probes[i] if probes is not None else None,
                          bptt_clip, train)
      hidden = cell.output(states)
      for k, v in zip(aux, (states[-1], states, state0, xp, hidden)):
        aux[k].append(v)
      summed = summed + hidden
      x = hidden
    top = summed if self.sum_layer_outputs else x
    if self.output != 'linear':     # the NADE and word heads compute in float32
      top = top.astype(jnp.float32)
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
    # float32 logits from bfloat16 products: the loss and its softmax are float32.
    return jnp.dot(top, w_out.astype(dt), preferred_element_type=jnp.float32) + b_out, aux

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
        method='sorted' if factored else 'full', init_scheme=self.init_scheme, name='head')
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
    return nade_lib.nade_logits(params, bv, bh, targets), samples

  def _scan(self, cell, params, state0, xp, probe, bptt_clip, train):
    """All states [T, B, S] of one layer; the recurrence is one lax.scan."""
    use_dropout = train and self.recurrent_dropout > 0
    if not use_dropout and not self.zoneout:
      return recurrence(cell, params, state0, xp, probe, bptt_clip)
    clip = temporal_clip(bptt_clip)
    steps, batch = xp.shape[:2]
    probe = None if probe is None else probe.astype(xp.dtype)
    drop_mask = zone_mask = None
    if train and self.recurrent_dropout > 0:
      keep = 1.0 - self.recurrent_dropout
      drop_mask = (jax.random.bernoulli(self.make_rng('dropout'), keep,
                                        (batch, cell.hidden_size)) / keep).astype(xp.dtype)
    if train and self.zoneout > 0:
      zone_mask = jax.random.bernoulli(self.make_rng('dropout'), self.zoneout,
                                       (steps, batch, cell.state_size))

    def body(state, xs):
      xp_t, probe_t, zone_t = xs
      state = clip(state)
      fed = state
      if drop_mask is not None:   # the recurrent input h (the h half of an LSTM state)
        fed = state.at[..., :cell.hidden_size].multiply(drop_mask)
      # Cast inside the step: the parameters' gradients are summed over steps in float32.
      new = cell.step(cells_lib.cast(params, xp.dtype), fed, xp_t)
      if zone_t is not None:
        new = jnp.where(zone_t, state, new)
      elif self.zoneout > 0:          # evaluation: the expectation of zoneout
        new = self.zoneout * state + (1.0 - self.zoneout) * new
      if probe_t is not None:
        new = new + probe_t
      return new, new

    _, states = jax.lax.scan(body, state0, (xp, probe, zone_mask))
    return states

