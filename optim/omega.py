"""The vanishing-gradient regulariser Omega (Pascanu et al. 2013, sec. 3.3).

    Omega = sum_k Omega_k,
    Omega_k = ( ||dE/dx_{k+1} . dx_{k+1}/dx_k|| / ||dE/dx_{k+1}|| - 1 )^2     (eq. 9)

It prefers parameters for which the error signal keeps its norm as it
travels back one step. Following the paper, only the "immediate" derivative
with respect to the recurrent weights is used (eq. 10): the states x_k and
the error signals dE/dx_{k+1} are constants, taken from the BPTT pass that
computes the gradient of E anyway (here: the gradient with respect to zero
"probes" added to every state, see ``models.rnn.RecurrentNetwork``).

Two details follow the authors' public Theano code, which produced the
paper's numbers: the ratio is of *squared* norms, and the sum over k is
normalised to a mean over the (time, sequence) pairs whose error signal is
not numerically zero (squared norm below ``bound``, e.g. after the end of a
padded sequence). Near ratio 1 the squared form is about 4 times eq. 9, so
alpha values transfer between the two up to that factor. ``form='norms'``
(``reg.omega_form``) is eq. 9's ratio of norms, with the same mean.

Which cells it applies to: for the simple RNNs (``rnn``, ``rnn_preact``,
leaky or not) dx_{k+1}/dx_k = diag(s') W_rec in closed form and the
derivative flows through W_rec alone, as in eq. 10. For LSTM and GRU the
same quantity is computed through ``jax.vjp`` of the cell step with the
state and input held constant; its derivative then flows through every
recurrent parameter, including through the gate values. That is a direct
generalisation, not something the paper studied: gated cells already have
the additive memory path that Omega tries to create, so expect little from it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from models import cells as cells_lib


FORMS = ('squared', 'norms')


def omega_layer(cell: cells_lib.Cell, params: dict, initial: jax.Array, states: jax.Array,
                xp: jax.Array, grads: jax.Array, bound: float = 1e-20,
                form: str = 'squared') -> jax.Array:
  """Omega of one layer, differentiable with respect to ``params`` only.

  The Jacobians are the cell's step without recurrent dropout's mask or
  zoneout's mixing (``cell.jvp_t``): with either, Omega keeps the flow of
  the dynamics the model has at evaluation, not of the masked steps the
  error signals came back through (our choice; the paper has neither).

  Args:
    cell: the layer's cell.
    params: its parameters.
    initial: [B, S] state before the first step.
    states: [T, B, S] states x_1..x_T.
    xp: [T, B, G] input projections of steps 1..T.
    grads: [T, B, S] dE/dx_1..dE/dx_T (total derivatives from BPTT).
    bound: error signals with a smaller squared norm are left out.
    form: 'squared', the ratio of squared norms (authors' code), or 'norms',
      the ratio of norms (eq. 9).
  """
  const = jax.lax.stop_gradient
  prev = const(jnp.concatenate([initial[None], states[:-1]], axis=0))
  g = const(grads)
  carried = cell.jvp_t(params, prev, const(xp), g)             # dE/dx_{k+1} dx_{k+1}/dx_k
  num = jnp.sum(carried ** 2, axis=-1)
  den = jnp.sum(g ** 2, axis=-1)
  valid = den >= bound
  ratio = jnp.where(valid, num / jnp.where(valid, den, 1.0), 1.0)
  if form == 'norms':         # sqrt's slope is infinite at 0 (every unit off): taken as 0 there
    positive = ratio > 0
    ratio = jnp.where(positive, jnp.sqrt(jnp.where(positive, ratio, 1.0)), 0.0)
  elif form != 'squared':
    raise ValueError(f'reg.omega_form={form!r} is not one of {", ".join(FORMS)}')
  return jnp.sum((ratio - 1.0) ** 2) / jnp.maximum(jnp.sum(valid), 1)


def omega(cells, params: dict, aux: dict, probe_grads, form: str = 'squared') -> jax.Array:
  """Sum of ``omega_layer`` over the layers of a ``RecurrentNetwork``.

  ``params`` is the network's parameter dict (layers under ``layer_i``),
  ``aux`` what the network returned, ``probe_grads`` dE/dprobe per layer.
  """
  return sum(omega_layer(cell, params[f'layer_{i}'], aux['initial'][i], aux['states'][i],
                         aux['xp'][i], probe_grads[i], form=form)
             for i, cell in enumerate(cells))
