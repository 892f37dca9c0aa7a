"""Recurrent cells as pure functions over an explicit parameter dict.

A cell is a small frozen dataclass (hashable, so it is part of what gets
compiled) with four pure functions:

- ``init(key, input_size) -> params``: the cell's parameters.
- ``project(params, inputs [T, B, D]) -> xp [T, B, G]``: the input-to-hidden
  mapping of every step as one matmul, hoisted out of the recurrence.
- ``step(params, state [B, S], xp_t [B, G]) -> state [B, S]``: one step.
- ``output(state) -> h [B, H]``: what the layer emits (and feeds upward).

plus ``jvp_t(params, prev [B, S], xp_t, g [B, S]) -> g^T d state_t / d prev``
for the vanishing-gradient regulariser Omega (Pascanu et al. 2013, eq. 10):
the error signal ``g = dE/dx_{k+1}`` carried back one step.

and, for the hand-written BPTT of ``models.rnn.recurrence``, the step split
at its recurrent product (``step_from_matmul``) and its derivative from kept
residuals (``step_residuals``, ``step_vjp``): by default z and autodiff; the
LSTM and GRU keep their gate activations and differentiate the step in
closed form, as cuDNN and PyTorch do.

States are single arrays (the LSTM's is ``concat(h, c)``, S = 2H) so that
carries, probes and regularisers see one shape. Everything is time-major.

Cells (``CELLS``):

- ``rnn``: ``h_t = s(h_{t-1} W_rec + u_t W_in + b)``, the usual form.
- ``rnn_preact``: Pascanu et al. eq. 11, ``x_t = s(x_{t-1}) W_rec + u_t W_in + b``;
  the state is the pre-activation x, the layer emits ``s(x_t)``.
- both accept leaky integration (Bengio et al. 2013, sec. 3.2):
  ``h_t,i = a_i h_{t-1,i} + (1 - a_i) F_i(h_{t-1}, u_t)`` with fixed ``a_i``.
- ``lstm``: gates (i, f, g, o), forget-gate bias 1 (Gers et al. 2000;
  Jozefowicz et al. 2015).
- ``gru``: reset applied after the recurrent matmul (as cuDNN/PyTorch do,
  which lets the three recurrent matmuls fuse into one), reset-gate bias -1
  (the tip in Hafner 2017).

Row-vector convention: ``h @ W`` with ``W`` of shape [in, out].

Dtypes: parameters, states, gates and every element-wise operation are
float32. A cell's ``matmul_dtype`` is the dtype of its matrix products'
operands: 'float32' (the default: plain ``x @ w``) or 'bfloat16', where each
product takes bfloat16 operands and returns float32 (``matmul``, whose
gradient's products are bfloat16 x bfloat16 -> float32 too). That is the
one form of bfloat16 XLA's CPU backend runs faster than float32 (on a CPU
with AVX512-BF16; bfloat16 results and bfloat16 element-wise work are
slower than float32 there), and it keeps the rounding to the operands.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

Params = dict

ACTIVATIONS: dict[str, Callable] = {
    'tanh': jnp.tanh,
    'sigmoid': jax.nn.sigmoid,
    'relu': jax.nn.relu,
}


# The dtypes a matrix product's operands may have (``Cell.matmul_dtype``).
MATMUL_DTYPES = ('float32', 'bfloat16')


def _dot(x: jax.Array, w: jax.Array, dims) -> jax.Array:
  return jax.lax.dot_general(x, w, (dims, ((), ())), preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def mixed_dot(x: jax.Array, w: jax.Array, dtype: str) -> jax.Array:
  """``x [..., K] @ w [K, N]`` -> float32 [..., N] with both operands cast to ``dtype``.

  The backward pass's two products are of the same form (``dtype`` operands,
  float32 results): dE/dx = dE/dy @ w^T and dE/dw = x^T @ dE/dy summed over
  the leading axes; the cotangents come back in the dtypes of ``x`` and ``w``.
  Plain autodiff of a cast-then-multiply would instead return ``dtype``
  results from the backward products.
  """
  return _mixed_dot_fwd(x, w, dtype)[0]


def _mixed_dot_fwd(x, w, dtype):
  return _dot(x.astype(dtype), w.astype(dtype), ((x.ndim - 1,), (0,))), (x, w)


def _mixed_dot_bwd(dtype, res, g):
  x, w = res
  xc, wc, gc = x.astype(dtype), w.astype(dtype), g.astype(dtype)
  lead = tuple(range(x.ndim - 1))
  d_x = _dot(gc, wc, ((g.ndim - 1,), (1,)))          # [..., N] x [K, N] -> [..., K]
  d_w = _dot(xc, gc, (lead, lead))                   # [..., K] x [..., N] -> [K, N]
  # The barrier keeps XLA from folding a transpose of a cotangent (that of a
  # transposed operand, ``matmul(g, w.T)``) into its product: XLA's CPU
  # backend has no kernel for the folded bfloat16 x bfloat16 -> float32
  # product ("Unsupported element type for DotThunk").
  d_x, d_w = jax.lax.optimization_barrier(d_x), jax.lax.optimization_barrier(d_w)
  return d_x.astype(x.dtype), d_w.astype(w.dtype)


mixed_dot.defvjp(_mixed_dot_fwd, _mixed_dot_bwd)


def matmul(x: jax.Array, w: jax.Array, dtype: str = 'float32') -> jax.Array:
  """``x [..., K] @ w [K, N]`` with operands in ``dtype`` (``MATMUL_DTYPES``):
  exactly ``x @ w`` in float32, else ``mixed_dot`` (a float32 result).

  In float32 a sequence ``x [T, B, K]`` is multiplied as one [T B, K]
  matrix: the weight gradient is then a product of two 2-D arrays, where from
  [T, B, K] XLA's CPU backend chose a 3-D transpose of the larger operand (the
  LSTM 512's input weight gradient: 17-20 ms against 4 ms;
  ``models.rnn._recurrence`` does the same for the recurrent one). With
  bfloat16 operands the 3-D form measured faster, so it stays."""
  if dtype == 'float32' and x.ndim > 2:
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])
  if dtype == 'float32':
    return x @ w
  if dtype not in MATMUL_DTYPES:
    raise ValueError(f'matmul dtype {dtype!r} is not one of {", ".join(MATMUL_DTYPES)}')
  return mixed_dot(x, w, dtype)


def _slope_from_preactivation(activation: str, pre: jax.Array) -> jax.Array:
  """s'(pre) for the supported activations."""
  if activation == 'tanh':
    return 1.0 - jnp.tanh(pre) ** 2
  if activation == 'sigmoid':
    y = jax.nn.sigmoid(pre)
    return y * (1.0 - y)
  if activation == 'relu':
    return (pre > 0).astype(pre.dtype)
  raise ValueError(activation)


# ---------------------------------------------------------------------------
# Initialisations of the paper's code (Pascanu et al. 2013, public Theano
# code): 'sigmoid' all weights N(0, 0.01); 'basic_tanh' N(0, 0.1);
# 'smart_tanh' W_in and W_out N(0, 0.01), W_rec sparse (15 non-zero incoming
# weights per unit) rescaled to spectral radius 0.95. Plus 'orthogonal'
# (orthogonal W_rec, LeCun-normal inputs) and 'default' (Glorot-uniform
# inputs, orthogonal recurrence), the usual choice for LSTM/GRU.
INITS = ('sigmoid', 'basic_tanh', 'smart_tanh', 'orthogonal', 'default')


def spectral_radius(w: jax.Array) -> jax.Array:
  """max |eigenvalue| of a square matrix; works under jit on any backend.

  ``jnp.linalg.eigvals`` exists only on the CPU, so this calls numpy.
  """
  def host(m):
    return np.asarray(np.max(np.abs(np.linalg.eigvals(np.asarray(m, np.float64)))), np.float32)
  return jax.pure_callback(host, jax.ShapeDtypeStruct((), jnp.float32), w,
                           vmap_method='sequential')


def _sparse_rescaled(key, n_in: int, n_out: int, nonzero: int = 15, radius: float = 0.95):
  """Sparse recurrent matrix, ``nonzero`` incoming weights per unit, radius 0.95."""
  kw, kp = jax.random.split(key)
  w = 0.01 * jax.random.normal(kw, (n_in, n_out))
  # Incoming weights of unit j are column j: keep `nonzero` random rows of it.
  ranks = jnp.argsort(jax.random.uniform(kp, (n_in, n_out)), axis=0)
  w = jnp.where(ranks < nonzero, w, 0.0)
  return w * (radius / spectral_radius(w))


def init_weight(scheme: str, role: str, key, shape) -> jax.Array:
  """Weight of a given role ('in', 'rec' or 'out') under an init scheme."""
  if scheme == 'sigmoid':
    return 0.01 * jax.random.normal(key, shape)
  if scheme == 'basic_tanh':
    return 0.1 * jax.random.normal(key, shape)
  if scheme == 'smart_tanh':
    if role == 'rec':
      blocks = shape[1] // shape[0]
      keys = jax.random.split(key, blocks)
      return jnp.concatenate([_sparse_rescaled(k, shape[0], shape[0]) for k in keys], axis=1)
    return 0.01 * jax.random.normal(key, shape)
  if scheme in ('orthogonal', 'default'):
    if role == 'rec':
      blocks = shape[1] // shape[0]
      keys = jax.random.split(key, blocks)
      ortho = jax.nn.initializers.orthogonal()
      return jnp.concatenate([ortho(k, (shape[0], shape[0])) for k in keys], axis=1)
    if role == 'in' and scheme == 'default':
      return jax.nn.initializers.glorot_uniform()(key, shape)
    return jax.nn.initializers.lecun_normal()(key, shape)
  raise ValueError(f"model.init_scheme={scheme!r} is not one of {', '.join(INITS)}")


LAYER_NORM_EPS = 1e-5   # added to the variance (PyTorch's default; flax.linen.LayerNorm's is 1e-6)


def _layer_norm(x: jax.Array, scale: jax.Array, eps: float = LAYER_NORM_EPS) -> jax.Array:
  """Layer norm over the last axis with a gain and no shift (the bias follows)."""
  return _normalised(x, eps)[0] * scale


def _normalised(x: jax.Array, eps: float = LAYER_NORM_EPS) -> tuple[jax.Array, jax.Array]:
  """``((x - mean) / std, 1 / std)`` over the last axis, std with ``eps``."""
  centred = x - x.mean(-1, keepdims=True)
  inv_std = jax.lax.rsqrt((centred * centred).mean(-1, keepdims=True) + eps)
  return centred * inv_std, inv_std


def _normalised_vjp(x_hat: jax.Array, inv_std: jax.Array, g: jax.Array) -> jax.Array:
  """``g^T d x_hat / d x`` for ``x_hat = _normalised(x)[0]``, from its outputs."""
  return inv_std * (g - g.mean(-1, keepdims=True)
                    - x_hat * (g * x_hat).mean(-1, keepdims=True))


@dataclasses.dataclass(frozen=True)
class Cell:
  """Fields shared by every cell; see the module docstring."""
  hidden_size: int
  init_scheme: str = 'default'   # one of INITS
  use_bias: bool = True
  layer_norm: bool = False   # normalise u W_in and h W_rec separately (Ba et al. 2016)
  matmul_dtype: str = 'float32'   # MATMUL_DTYPES: the products' operands (results: float32)

  gates: int = 1             # G = gates * hidden_size
  state_factor: int = 1      # S = state_factor * hidden_size
  # The field of the bias the gates start from (``model.gate_bias=False`` sets
  # it to 0); None for a cell without one.
  gate_bias_field: ClassVar[str | None] = None

  @property
  def state_size(self) -> int:
    return self.state_factor * self.hidden_size

  def bias_init(self) -> jax.Array:
    return jnp.zeros((self.gates * self.hidden_size,))

  def init(self, key, input_size: int) -> Params:
    k_in, k_rec = jax.random.split(key)
    g = self.gates * self.hidden_size
    params = {
        'w_in': init_weight(self.init_scheme, 'in', k_in, (input_size, g)),
        'w_rec': init_weight(self.init_scheme, 'rec', k_rec, (self.hidden_size, g)),
    }
    if self.use_bias:
      params['b'] = self.bias_init()
    if self.layer_norm:
      params['ln_in'] = jnp.ones((g,))
      params['ln_rec'] = jnp.ones((g,))
    return params

  def matmul(self, x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` with operands in ``matmul_dtype``: every product of the cell."""
    return matmul(x, w, self.matmul_dtype)

  def project(self, params: Params, inputs: jax.Array) -> jax.Array:
    return self.after_input_matmul(params, self.matmul(inputs, params['w_in']))

  def project_ids(self, params: Params, ids: jax.Array) -> jax.Array:
    """``project`` of one-hot inputs given their int ids [T, B]: rows of W_in."""
    return self.after_input_matmul(params, jnp.take(params['w_in'], ids.astype(jnp.int32), axis=0))

  def after_input_matmul(self, params: Params, xp: jax.Array) -> jax.Array:
    """What ``project`` adds to ``inputs @ W_in``: layer norm, bias."""
    if self.layer_norm:
      xp = _layer_norm(xp, params['ln_in'])
    if self.use_bias:
      xp = xp + params['b']
    return xp

  def recurrent(self, params: Params, h: jax.Array) -> jax.Array:
    return self._after_matmul(params, self.matmul(h, params['w_rec']))

  def _after_matmul(self, params: Params, z: jax.Array) -> jax.Array:
    return _layer_norm(z, params['ln_rec']) if self.layer_norm else z

  # The step split at its recurrent matmul, which lets ``models.rnn.recurrence``
  # accumulate dE/dW_rec as one matmul after the backward pass instead of one
  # outer product per step:
  #     step(p, s, x) == step_from_matmul(p, s, x, matmul(matmul_operand(s), p['w_rec'])).

  def matmul_operand(self, state: jax.Array) -> jax.Array:
    """What multiplies W_rec in a step: [B, S] -> [B, H]."""
    return state[..., :self.hidden_size]

  def step_from_matmul(self, params: Params, state: jax.Array, xp_t: jax.Array,
                       z: jax.Array) -> jax.Array:
    """The step given ``z = matmul(matmul_operand(state), W_rec)`` [B, G]; reads no W_rec."""
    raise NotImplementedError

  def step_param_names(self) -> tuple[str, ...]:
    """The parameters ``step_from_matmul`` reads (besides W_rec, which it does
    not read: it gets z). The hand-written BPTT differentiates only these: a
    parameter the step reads and this list leaves out would get a zero
    gradient, so ``check_step_params`` refuses it."""
    return ('ln_rec',) if self.layer_norm else ()

  def check_step_params(self, params: Params, state, xp_t, z) -> None:
    """Raises a one-line ValueError where ``step_from_matmul`` reads a parameter
    that ``step_param_names`` does not list (its BPTT gradient would be zero,
    silently). Abstract: it traces the step once, computing nothing."""
    small = {k: params[k] for k in self.step_param_names()}
    try:
      jax.eval_shape(self.step_from_matmul, small, state, xp_t, z)
    except KeyError as e:
      raise ValueError(
          f'{type(self).__name__}.step_from_matmul reads params[{e.args[0]!r}], which its '
          'step_param_names() does not list: the hand-written BPTT (models/rnn.py) would leave '
          "that parameter's gradient at zero; add it to step_param_names") from None

  # The hand-written BPTT of ``models.rnn.recurrence`` keeps, for each step,
  # what ``step_residuals`` returns, and takes the step's derivative from it
  # with ``step_vjp``. By default the residuals are z (one array per gate, see
  # ``models.rnn.by_gate``) and the derivative is autodiff of
  # ``step_from_matmul``, which recomputes the step's activations; a cell can
  # keep its activations instead and give the derivative in closed form (LSTM,
  # GRU: ``_gates_and_state`` with ``_closed_form_residuals`` and
  # ``_layer_norm_vjp``).

  def step_residuals(self, params: Params, state: jax.Array, xp_t: jax.Array,
                     z: jax.Array) -> tuple[jax.Array, Any]:
    """``(step_from_matmul(params, state, xp_t, z), residuals)``."""
    if self.gates > 1 and z.shape[-1] != self.gates * self.hidden_size:
      raise ValueError(
          f'{type(self).__name__}: z is {z.shape[-1]} wide, not gates x hidden_size = '
          f'{self.gates} x {self.hidden_size}; a cell whose recurrent product has another width '
          'overrides step_residuals (the default keeps z split by gate)')
    residuals = tuple(jnp.split(z, self.gates, axis=-1)) if self.gates > 1 else z
    return self.step_from_matmul(params, state, xp_t, z), residuals

  def step_vjp(self, params: Params, small: Params, prev: jax.Array, xp_t: jax.Array,
               residuals, g: jax.Array) -> tuple[Params, jax.Array, jax.Array, jax.Array]:
    """``g^T`` times the derivatives of the step with respect to ``small``
    (``step_param_names``' parameters), the previous state, ``xp_t`` and z:
    ``(d_small, d_prev, d_xp_t, d_z)``. Where xp_t and z enter only through
    their sum, ``d_xp_t is d_z``."""
    z = jnp.concatenate(residuals, axis=-1) if isinstance(residuals, tuple) else residuals
    _, pull = jax.vjp(lambda small, prev, xp_t, z: self.step_from_matmul(
        {**params, **small}, prev, xp_t, z), small, prev, xp_t, z)
    return pull(g)

  def _closed_form_residuals(self, params, state, xp_t, z):
    """``step_residuals`` of a cell whose ``_gates_and_state(params, state,
    xp_t, z after layer norm)`` returns (new state, activations): the
    activations, and with layer norm the normalised z and 1 / std after them."""
    if not self.layer_norm:
      return self._gates_and_state(params, state, xp_t, z)
    z_hat, inv_std = _normalised(z)
    new, acts = self._gates_and_state(params, state, xp_t, z_hat * params['ln_rec'])
    return new, acts + (z_hat, inv_std)

  def _layer_norm_vjp(self, params, residuals, d_after):
    """From ``d_after`` = dE/d(z after layer norm): (dE/d ln_rec, dE/dz), with
    the normalised z and 1 / std that ``_closed_form_residuals`` put last."""
    z_hat, inv_std = residuals[-2:]
    d_scale = (d_after * z_hat).reshape(-1, d_after.shape[-1]).sum(0)
    return d_scale, _normalised_vjp(z_hat, inv_std, d_after * params['ln_rec'])

  def step(self, params: Params, state: jax.Array, xp_t: jax.Array) -> jax.Array:
    """One step: state [B, S], xp_t [B, G] -> state [B, S]."""
    return self.step_from_matmul(params, state, xp_t,
                                 self.matmul(self.matmul_operand(state), params['w_rec']))

  def output(self, state: jax.Array) -> jax.Array:
    return state[..., :self.hidden_size]

  def jvp_t(self, params: Params, prev: jax.Array, xp_t: jax.Array, g: jax.Array) -> jax.Array:
    """g^T d step(prev, xp_t) / d prev, differentiable with respect to params.

    Generic version through ``jax.vjp``: the state and input are constants,
    the derivative with respect to params flows through every parameter of
    the step. Simple RNNs override it with the paper's closed form.
    """
    prev = jax.lax.stop_gradient(prev)
    _, pullback = jax.vjp(lambda s: self.step(params, s, xp_t), prev)
    return pullback(g)[0]


@dataclasses.dataclass(frozen=True)
class SimpleRNN(Cell):
  """``h_t = a * h_{t-1} + (1 - a) * s(h_{t-1} W_rec + xp_t)``; a = 0 unless leaky.

  ``preactivation=True`` is Pascanu et al. eq. 11, with the state being the
  pre-activation ``x_t = s(x_{t-1}) W_rec + xp_t`` and the output ``s(x_t)``.
  """
  activation: str = 'tanh'
  preactivation: bool = False
  leaky_fraction: float = 0.0          # fraction of units with a_i > 0
  leak_range: tuple[float, float] = (0.02, 0.2)
  leak_seed: int = 0                   # the a_i are fixed, drawn from this seed

  def leak(self) -> jax.Array | None:
    """Per-unit a_i [H] (None without leaky units); a constant of the config."""
    n_leaky = int(round(self.leaky_fraction * self.hidden_size))
    if n_leaky == 0:
      return None
    lo, hi = self.leak_range
    a = np.random.default_rng(self.leak_seed).uniform(lo, hi, size=n_leaky)
    return jnp.asarray(np.concatenate([a, np.zeros(self.hidden_size - n_leaky)]), jnp.float32)

  def _mix(self, prev: jax.Array, new: jax.Array) -> jax.Array:
    a = self.leak()
    return new if a is None else a * prev + (1.0 - a) * new

  def matmul_operand(self, state):
    return ACTIVATIONS[self.activation](state) if self.preactivation else state

  def step_from_matmul(self, params, state, xp_t, z):
    r = self._after_matmul(params, z)
    new = r + xp_t if self.preactivation else ACTIVATIONS[self.activation](r + xp_t)
    return self._mix(state, new)

  def output(self, state: jax.Array) -> jax.Array:
    return ACTIVATIONS[self.activation](state) if self.preactivation else state

  def jvp_t(self, params, prev, xp_t, g):
    """Pascanu et al. eq. 10: ``g W_rec^T diag(s'(.))``, with x_k, the input
    and the slope s' held constant, so the derivative with respect to
    params flows through W_rec alone (the "immediate" derivative).

    With leaky units, ``h = a h_prev + (1 - a) F(h_prev)``: the signal is
    ``a g + ((1 - a) g)^T dF/dh_prev``, the factor (1 - a) on the signal
    before it goes back through W_rec (unit i's leak scales what unit i
    sends back, not what unit j receives)."""
    if self.layer_norm:
      return super().jvp_t(params, prev, xp_t, g)
    prev = jax.lax.stop_gradient(prev)
    w = params['w_rec']
    a = self.leak()
    through = g if a is None else (1.0 - a) * g          # the part that goes through F
    if self.preactivation:
      carried = self.matmul(through, w.T) * _slope_from_preactivation(self.activation, prev)
    else:
      pre = jax.lax.stop_gradient(self.matmul(prev, w) + xp_t)
      carried = self.matmul(through * _slope_from_preactivation(self.activation, pre), w.T)
    return carried if a is None else a * g + carried


@dataclasses.dataclass(frozen=True)
class LSTM(Cell):
  """LSTM with gates (i, f, g, o); state ``concat(h, c)``; forget bias 1."""
  gates: int = 4
  state_factor: int = 2
  forget_bias: float = 1.0
  gate_bias_field: ClassVar[str] = 'forget_bias'

  def bias_init(self):
    h = self.hidden_size
    return jnp.zeros((4 * h,)).at[h:2 * h].set(self.forget_bias)

  def step_from_matmul(self, params, state, xp_t, z):
    return self._gates_and_state(params, state, xp_t, self._after_matmul(params, z))[0]

  def _gates_and_state(self, params, state, xp_t, z):
    """The step from z after layer norm: (new state, (i, f, g, o, tanh(c)))."""
    c = state[..., self.hidden_size:]
    # gate by gate: the slices of xp_t simplify away in the recurrences (rnn.by_gate)
    i, f, g, o = (a + b for a, b in zip(jnp.split(z, 4, axis=-1), jnp.split(xp_t, 4, axis=-1)))
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * c + i * g
    tanh_c = jnp.tanh(c)
    return jnp.concatenate([o * tanh_c, c], axis=-1), (i, f, g, o, tanh_c)

  # The hand-written BPTT keeps the gates' activations and tanh(c) (5 H a step
  # against z's 4 H; with layer norm also the normalised z and its 1 / std)
  # and differentiates the step in closed form, as cuDNN and PyTorch do: no
  # activation is recomputed backwards.

  step_residuals = Cell._closed_form_residuals

  def step_vjp(self, params, small, prev, xp_t, residuals, g):
    i, f, gg, o, tanh_c = residuals[:5]
    g_h, g_c = jnp.split(g, 2, axis=-1)
    d_c = g_c + g_h * o * (1.0 - tanh_c * tanh_c)       # dE/dc_t
    d_a = jnp.concatenate([d_c * gg * i * (1.0 - i),     # dE/d(gate pre-activations)
                           d_c * prev[..., self.hidden_size:] * f * (1.0 - f),
                           d_c * i * (1.0 - gg * gg),
                           g_h * tanh_c * o * (1.0 - o)], axis=-1)
    # h_{t-1} reaches the step through z only (the caller adds d_z W_rec^T)
    d_prev = jnp.concatenate([jnp.zeros_like(g_h), d_c * f], axis=-1)
    if not self.layer_norm:
      return {}, d_prev, d_a, d_a
    d_scale, d_z = self._layer_norm_vjp(params, residuals, d_a)
    return {'ln_rec': d_scale}, d_prev, d_a, d_z


@dataclasses.dataclass(frozen=True)
class GRU(Cell):
  """GRU (r, z, n) with the reset gate applied after the recurrent matmul:
  ``n = tanh(xn + r * (h Wn + bn))``, ``h' = (1 - z) n + z h``; reset bias -1."""
  gates: int = 3
  reset_bias: float = -1.0
  gate_bias_field: ClassVar[str] = 'reset_bias'

  def bias_init(self):
    return jnp.zeros((3 * self.hidden_size,)).at[:self.hidden_size].set(self.reset_bias)

  def init(self, key, input_size):
    params = super().init(key, input_size)
    params['b_rec_n'] = jnp.zeros((self.hidden_size,))
    return params

  def step_param_names(self):
    return super().step_param_names() + ('b_rec_n',)

  def step_from_matmul(self, params, state, xp_t, z):
    return self._gates_and_state(params, state, xp_t, self._after_matmul(params, z))[0]

  def _gates_and_state(self, params, state, xp_t, z):
    """The step from z after layer norm: (new state, (r, u, n, h W_n + b_n))."""
    xr, xu, xn = jnp.split(xp_t, 3, axis=-1)
    hr, hu, hn = jnp.split(z, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    u = jax.nn.sigmoid(xu + hu)                  # the update gate
    m = hn + params['b_rec_n']
    n = jnp.tanh(xn + r * m)
    return (1.0 - u) * n + u * state, (r, u, n, m)

  # As the LSTM's: the activations (and with layer norm the normalised z and
  # 1 / std) are kept, and the step is differentiated in closed form.

  step_residuals = Cell._closed_form_residuals

  def step_vjp(self, params, small, prev, xp_t, residuals, g):
    r, u, n, m = residuals[:4]
    d_n = g * (1.0 - u) * (1.0 - n * n)          # dE/d(n's pre-activation)
    d_r = d_n * m * r * (1.0 - r)
    d_u = g * (prev - n) * u * (1.0 - u)
    d_m = d_n * r
    d_xp = jnp.concatenate([d_r, d_u, d_n], axis=-1)
    d_after = jnp.concatenate([d_r, d_u, d_m], axis=-1)     # dE/d(z after layer norm)
    d_small = {'b_rec_n': d_m.reshape(-1, d_m.shape[-1]).sum(0)}
    if not self.layer_norm:
      return d_small, g * u, d_xp, d_after
    d_small['ln_rec'], d_z = self._layer_norm_vjp(params, residuals, d_after)
    return d_small, g * u, d_xp, d_z


# The cells by name (``model.cell``): each name's class and the fields the name
# fixes. A new cell is a Cell subclass and a line here.
CELLS: dict[str, tuple[type[Cell], dict[str, Any]]] = {
    'rnn': (SimpleRNN, {}),
    'rnn_preact': (SimpleRNN, {'preactivation': True}),
    'lstm': (LSTM, {}),
    'gru': (GRU, {}),
}


def cell_class(name: str) -> type[Cell]:
  """The class of the cell ``name`` (``CELLS``)."""
  if name not in CELLS:
    raise ValueError(f"model.cell={name!r} is not one of {', '.join(CELLS)}")
  return CELLS[name][0]


def make_cell(name: str, hidden_size: int, **kwargs) -> Cell:
  """The cell ``name`` (``CELLS``) of ``hidden_size`` units. A field another
  cell has and this one lacks (a simple RNN's activation or leaky units) may
  be given at that cell's default (it is then dropped), not at another value."""
  cls, fixed = cell_class(name), CELLS[name][1]
  own = {f.name for f in dataclasses.fields(cls)}
  defaults = {f.name: f.default for c, _ in CELLS.values() for f in dataclasses.fields(c)}
  extra = sorted(k for k in set(kwargs) - own if kwargs[k] != defaults.get(k, object()))
  if extra:
    owners = sorted({n for n, (c, _) in CELLS.items()
                     if any(k in {f.name for f in dataclasses.fields(c)} for k in extra)})
    raise ValueError(f'model.cell={name!r} does not take {", ".join(extra)}'
                     + (f' (they are for {", ".join(owners)})' if owners else ''))
  return cls(hidden_size, **{k: v for k, v in kwargs.items() if k in own}, **fixed)
