"""The single-unit RNN of Pascanu et al. (2013), sec. 2.2-2.3 (Fig. 3, Fig. 6).

One hidden unit, no input, the pre-activation as the state (eq. 8):

    x_t = w * s(x_{t-1}) + b,        s = the logistic sigmoid.

Two views of it:

- **Fig. 3 (sec. 2.2)**: with ``w`` fixed at 5, the fixed points
  ``x* = w s(x*) + b`` as ``b`` varies. A fixed point is stable when
  ``|w s'(x*)| < 1``. For ``w > 4`` there is a bistable interval of ``b``
  with two stable fixed points and an unstable one between them (the
  boundary between their basins of attraction); at its ends two fixed points
  merge and vanish (fold bifurcations, ``w s'(x*) = 1``).
- **Fig. 6 (sec. 2.3, 3.2)**: the error ``E_50 = (s(x_50) - 0.7)^2`` from
  ``x_0 = 0.5`` as a function of ``(w, b)``, and gradient descent on it with
  and without norm clipping (Algorithm 1, here ``optax.clip_by_global_norm``).

The fixed-point computations are float64 numpy (they have to meet 1e-8);
the error surface and its gradients are JAX (float32, ``lax.scan`` over the
50 steps, ``vmap`` over the grid).

References:
  Pascanu, Mikolov, Bengio, `On the difficulty of training recurrent neural
  networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013 (sec. 2.2-2.3,
  3.2, Fig. 3, Fig. 6, Algorithm 1).

  Doya, Bifurcations of recurrent neural networks in gradient descent
  learning, IEEE Transactions on Neural Networks, 1993 (the w = 5 example of
  Fig. 3, as the paper cites it).
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

# Fig. 6 of the paper: target of s(x_50), initial state, number of steps.
TARGET = 0.7
X0 = 0.5
LENGTH = 50


def _sigmoid(x: np.ndarray) -> np.ndarray:
  # Written through tanh so that it neither overflows nor loses digits in
  # float64 for large |x|.
  return 0.5 * (1.0 + np.tanh(0.5 * x))


def _sigmoid_slope(x: np.ndarray) -> np.ndarray:
  s = _sigmoid(x)
  return s * (1.0 - s)


# ---------------------------------------------------------------------------
# Fig. 3: fixed points and their stability.


class Bifurcation(NamedTuple):
  """Fixed points of ``x = w s(x) + b`` on a grid of ``b`` (Fig. 3).

  Attributes:
    w: the recurrent weight (scalar).
    b: [n_b] biases.
    x: [n_b, 3] fixed points per bias, ascending, NaN where there are fewer
      than three.
    slope: [n_b, 3] the map's derivative ``w s'(x*)`` at each fixed point.
    stable: [n_b, 3] ``|w s'(x*)| < 1`` (False at the NaN padding).
    count: [n_b] number of fixed points found.
    fold_x: [k] states at which the two folds happen (``w s'(x) = 1``;
      k = 2 for w > 4, else 0), ascending.
    fold_b: [k] biases at which they happen, ``b = x - w s(x)`` (same order;
      descending in b).
  """
  w: float
  b: np.ndarray
  x: np.ndarray
  slope: np.ndarray
  stable: np.ndarray
  count: np.ndarray
  fold_x: np.ndarray
  fold_b: np.ndarray


def _bisect(f, lo: np.ndarray, hi: np.ndarray, iters: int = 80) -> np.ndarray:
  """Vectorised bisection for ``f(x) = 0`` on brackets ``[lo, hi]``.

  ``f(lo)`` and ``f(hi)`` must differ in sign (checked by the caller).
  80 halvings take any bracket here below float64 resolution.
  """
  lo, hi = np.array(lo, np.float64), np.array(hi, np.float64)
  f_lo = f(lo)
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    f_mid = f(mid)
    left = (f_mid < 0) == (f_lo < 0)  # root lies in [mid, hi]
    lo = np.where(left, mid, lo)
    f_lo = np.where(left, f_mid, f_lo)
    hi = np.where(left, hi, mid)
  return 0.5 * (lo + hi)


def fold_points(w: float) -> tuple[np.ndarray, np.ndarray]:
  """States and biases of the fold bifurcations of ``x = w s(x) + b``.

  A fold is a fixed point with ``w s'(x) = 1``. ``s'`` is even, peaks at
  ``s'(0) = 1/4`` and decreases on ``x > 0``, so for ``w > 4`` there is one
  root ``x_f > 0`` (found here by bisection, not by the closed form, so that
  tests can check it against the closed form) and its mirror ``-x_f``;
  for ``w <= 4`` there is none. The fold biases follow from the fixed-point
  equation, ``b = x - w s(x)``.

  Returns:
    ``(fold_x [k], fold_b [k])``, ascending in ``x``, k = 2 or 0.
  """
  w = float(w)
  if w <= 4.0:
    return np.zeros(0), np.zeros(0)
  f = lambda x: w * _sigmoid_slope(x) - 1.0  # > 0 at 0, < 0 far out
  hi = 1.0
  while f(hi) > 0:
    hi *= 2.0
  x_f = float(_bisect(f, np.array(0.0), np.array(hi)))
  fold_x = np.array([-x_f, x_f])
  return fold_x, fold_x - w * _sigmoid(fold_x)


def bifurcation(w: float = 5.0,
                b_range: tuple[float, float] = (-4.0, -1.0),
                num_b: int = 601,
                num_x: int = 4001) -> Bifurcation:
  """Fixed points and their stability as a function of ``b`` (Fig. 3).

  Root finding of ``g_b(x) = h(x) - b`` with ``h(x) = x - w s(x)``. Every
  fixed point lies in ``[b + min(0, w), b + max(0, w)]`` because ``0 < s < 1``,
  so one shared grid of ``num_x`` states covers all biases. The grid also
  contains the critical points of ``h`` (the fold states, ``fold_points``):
  ``h`` is then monotone on every grid cell, a cell holds at most one root,
  and a sign change of ``g_b`` across a cell finds it however close two
  roots come near a fold. Each bracketed root is refined by bisection to
  float64 resolution. Stability: ``|w s'(x*)| < 1`` (sec. 2.2).

  The paper gives ``w = 5`` but not the range of ``b`` (its Fig. 3 has no
  axis values); our default ``[-4, -1]`` is centred on the symmetry point
  ``b = -w/2`` of the diagram and contains the whole bistable interval
  ``(-2.656, -2.344)`` with margin on either side.

  Args:
    w: the recurrent weight (the paper's 5.0).
    b_range: ``(b_min, b_max)`` of the bias grid (our choice).
    num_b: number of biases in the grid.
    num_x: number of states in the root-bracketing grid.

  Returns:
    A ``Bifurcation``.
  """
  w = float(w)
  b = np.linspace(b_range[0], b_range[1], num_b)
  fold_x, fold_b = fold_points(w)
  xs = np.linspace(b.min() + min(0.0, w) - 1.0, b.max() + max(0.0, w) + 1.0, num_x)
  xs = np.unique(np.concatenate([xs, fold_x]))
  h = xs - w * _sigmoid(xs)
  neg = (h[None, :] - b[:, None]) < 0                       # [n_b, n_x]
  # Treating g == 0 as positive counts a root on a grid point exactly once.
  i_b, i_x = np.nonzero(neg[:, :-1] != neg[:, 1:])
  bb = b[i_b]
  roots = _bisect(lambda x: x - w * _sigmoid(x) - bb, xs[i_x], xs[i_x + 1])

  count = np.bincount(i_b, minlength=num_b)
  if count.max(initial=0) > 3:
    raise RuntimeError(f'more than three fixed points found: {count.max()}')
  x = np.full((num_b, 3), np.nan)
  # np.nonzero is row-major, so within one b the roots come in ascending x.
  rank = np.arange(len(i_b)) - np.searchsorted(i_b, i_b)
  x[i_b, rank] = roots
  slope = w * _sigmoid_slope(x)
  stable = np.abs(slope) < 1.0                              # NaN -> False
  return Bifurcation(w=w, b=b, x=x, slope=slope, stable=stable, count=count,
                     fold_x=fold_x, fold_b=fold_b)


# ---------------------------------------------------------------------------
# Fig. 6: the error surface E_50(w, b) and gradient descent on it.


def final_state(w: jax.typing.ArrayLike, b: jax.typing.ArrayLike,
                x0: float = X0, length: int = LENGTH) -> jax.Array:
  """``x_length`` of eq. 8 from ``x_0``, as a ``lax.scan`` (scalars)."""
  x0 = jnp.asarray(x0, jnp.result_type(w, b, float))

  def step(x, _):
    return w * jax.nn.sigmoid(x) + b, None

  x, _ = lax.scan(step, x0, None, length=length)
  return x


def loss(params: dict, x0: float = X0, target: float = TARGET,
         length: int = LENGTH) -> jax.Array:
  """``E = (s(x_length) - target)^2`` of Fig. 6; ``params = {'w', 'b'}``."""
  x = final_state(params['w'], params['b'], x0, length)
  return (jax.nn.sigmoid(x) - target) ** 2


@functools.partial(jax.jit, static_argnames=('length',))
def _surface(w_grid, b_grid, x0, target, length):
  e = lambda w, b: loss({'w': w, 'b': b}, x0, target, length)
  return jax.vmap(jax.vmap(e, in_axes=(None, 0)), in_axes=(0, None))(w_grid, b_grid)


def error_surface(w_grid: np.ndarray, b_grid: np.ndarray, x0: float = X0,
                  target: float = TARGET, length: int = LENGTH) -> np.ndarray:
  """The error surface of Fig. 6 on a grid.

  ``E[i, j] = (s(x_50) - 0.7)^2`` for ``w = w_grid[i]``, ``b = b_grid[j]``,
  ``x_0 = 0.5`` (sec. 2.3), computed by one jitted double ``vmap`` of a
  ``lax.scan`` (float32).

  Args:
    w_grid: [n_w] recurrent weights.
    b_grid: [n_b] biases.
    x0: the initial state (the paper's 0.5).
    target: the target of ``s(x_length)`` (the paper's 0.7).
    length: number of steps (the paper's 50).

  Returns:
    [n_w, n_b] float64 array of errors (values computed in float32).
  """
  e = _surface(jnp.asarray(w_grid, jnp.float32), jnp.asarray(b_grid, jnp.float32),
               jnp.float32(x0), jnp.float32(target), length)
  return np.asarray(e, np.float64)


def grad_loss(w: float, b: float, x0: float = X0, target: float = TARGET,
              length: int = LENGTH) -> np.ndarray:
  """``(dE/dw, dE/db)`` at one point by ``jax.grad`` through the scan."""
  g = _grad(jnp.float32(w), jnp.float32(b), jnp.float32(x0), jnp.float32(target), length)
  return np.asarray(g, np.float64)


@functools.partial(jax.jit, static_argnames=('length',))
def _grad(w, b, x0, target, length):
  g = jax.grad(loss)({'w': w, 'b': b}, x0, target, length)
  return jnp.stack([g['w'], g['b']])


@functools.partial(jax.jit, static_argnames=('steps', 'clipped', 'length'))
def _descend(w0, b0, lr, clip, x0, target, steps, clipped, length):
  opt = optax.sgd(lr)
  if clipped:
    opt = optax.chain(optax.clip_by_global_norm(clip), opt)
  value_and_grad = jax.value_and_grad(loss)

  def step(carry, _):
    params, state = carry
    e, g = value_and_grad(params, x0, target, length)
    updates, state = opt.update(g, state, params)
    return (optax.apply_updates(params, updates), state), (params['w'], params['b'], e)

  params = {'w': w0, 'b': b0}
  (params, _), (ws, bs, es) = lax.scan(step, (params, opt.init(params)), None,
                                       length=steps)
  last = loss(params, x0, target, length)
  out = jnp.stack([ws, bs, es], axis=1)
  return jnp.concatenate([out, jnp.stack([params['w'], params['b'], last])[None]], 0)


def descent_trajectory(w0: float, b0: float, lr: float, steps: int,
                       clip: Optional[float] = None, x0: float = X0,
                       target: float = TARGET, length: int = LENGTH) -> np.ndarray:
  """Plain gradient descent on the Fig. 6 error, optionally norm-clipped.

  Each step is ``theta <- theta - lr * g`` with ``g = dE/d(w, b)`` from
  ``jax.grad`` through the 50-step scan; with ``clip`` set, ``g`` is first
  rescaled to norm ``clip`` whenever its norm exceeds it (Algorithm 1,
  ``optax.clip_by_global_norm``), so no step is longer than ``lr * clip``.
  The paper draws such trajectories (Fig. 6, solid: plain; dashed: clipped)
  without giving the start, learning rate or threshold; ``plots.plot_fig6``
  states the ones we use. ``lr`` and ``clip`` are traced, so changing them
  does not recompile.

  Args:
    w0, b0: the starting point.
    lr: the learning rate.
    steps: number of updates.
    clip: the clipping threshold on the gradient norm; None = no clipping.
    x0, target, length: the task (the paper's 0.5, 0.7, 50).

  Returns:
    [steps + 1, 3] float64 array; row k is ``(w_k, b_k, E(w_k, b_k))``.
  """
  f32 = jnp.float32
  out = _descend(f32(w0), f32(b0), f32(lr), f32(0.0 if clip is None else clip),
                 f32(x0), f32(target), steps=int(steps), clipped=clip is not None,
                 length=length)
  return np.asarray(out, np.float64)
