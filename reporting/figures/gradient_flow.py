"""Vanishing gradients made visible: how much of the error at the last step
reaches each earlier state, during training, with and without Omega.

    python -m reporting.figures.gradient_flow OUTDIR [LENGTH] [STEPS]

trains SGD, SGD-C and SGD-CR as one population on the temporal order
problem (``experiments/temporal_order_fig7.py``'s settings: 50 tanh units,
smart-tanh initialisation, learning rate 0.01, clipping at 1, Omega weight
4; default LENGTH 50, STEPS 8000) and, at a few points of training, measures
on one fixed batch the norm of the temporal component ``dE/dx_k`` (E: the
loss, scored on the last step T only; x_k: the state at step k) for every k.
Pascanu et al. (2013) sec. 2-3: with a contracting W_rec the norm decays
exponentially in T - k, and the error signal of the first steps, where the
temporal order problem puts its information, vanishes; Omega (sec. 3.3)
pushes the ratio ``||dE/dx_k|| / ||dE/dx_{k+1}||`` towards 1.

Writes ``gradient_flow.png`` (one panel per method: the norm against T - k,
one curve per training step) and ``gradient_flow.json`` (the numbers).
"""

from __future__ import annotations

import json
import os
import sys

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from reporting import tables  # noqa: E402
from training import population as population_lib  # noqa: E402
from training import train  # noqa: E402
from experiments import temporal_order_fig7  # noqa: E402
from reporting.figures import cli  # noqa: E402

METHOD_NAMES = {'sgd': 'SGD', 'sgd-c': 'SGD-C', 'sgd-cr': 'SGD-CR'}


def state_gradients(trainer: train.Trainer, params, batch: dict) -> jax.Array:
  """dE/dx_k of the first layer, [T, B, S]: the gradient of the loss with
  respect to a zero "probe" added to each state (exactly the temporal
  component of BPTT; ``optim/omega.py`` uses the same)."""
  t, b = batch['inputs'].shape[:2]
  probes = [jnp.zeros((t, b, c.state_size)) for c in trainer.model.cells()]
  hp = {'omega_alpha': 0.0, 'l1_weight': 0.0, 'bptt_clip': 0.0}
  g = jax.grad(lambda p: trainer.loss_fn(params, p, batch, hp, jax.random.key(0),
                                         train=False)[0])(probes)
  return g[0]


def profile(trainer: train.Trainer, params, batch: dict) -> jax.Array:
  """[T]: the norm of dE/dx_k over the units, averaged over the batch."""
  return jnp.mean(jnp.linalg.norm(state_gradients(trainer, params, batch), axis=-1), axis=1)


def measure(length: int = 50, total_steps: int = 8000, points: int = 5, seed: int = 0):
  """Profiles [points, members, T] at training steps spaced by powers of two."""
  config = temporal_order_fig7.get_config(f'length={length},seeds=1,steps={total_steps}')
  config.seed = seed
  trainer = train.build(config)
  pop = population_lib.make_population(config)
  mesh = population_lib.make_mesh(pop.size, config.task.batch_size, jax.devices()[:1])
  state = train.init_population(trainer, pop, mesh)
  batch = trainer.task.train_batch(jax.random.key(12345), 0)   # one fixed batch
  measure_all = jax.jit(jax.vmap(lambda p: profile(trainer, p, batch)))
  chunk = jax.jit(jax.vmap(trainer.train_chunk, in_axes=(0, None)), static_argnums=1)
  at = sorted({0} | {int(total_steps / 2 ** i) for i in range(points - 1)})
  methods = [tables.member_method(config.to_dict(), config.paper.to_dict(), lab)
             for lab in pop.labels]
  profiles, losses, done = [], [], 0
  for step in at:
    if step > done:
      state, m = chunk(state, step - done)
      losses.append(np.asarray(m['loss'])[:, -200:].mean(axis=1).tolist())
      done = step
    profiles.append(np.asarray(measure_all(state.params)))
  return dict(length=length, steps=at, methods=methods, profiles=np.stack(profiles),
              train_loss=losses)


def plot(data: dict, out: str) -> str:
  prof = np.asarray(data['profiles'])        # [points, members, T]
  t = prof.shape[-1]
  lag = np.arange(t)[::-1]                    # T - k for k = 1..T (the last state: lag 0)
  fig, axes = plt.subplots(1, prof.shape[1], figsize=(5 * prof.shape[1], 4), sharey=True)
  colours = plt.cm.viridis(np.linspace(0, 0.9, len(data['steps'])))
  for j, ax in enumerate(np.atleast_1d(axes)):
    for i, step in enumerate(data['steps']):
      ax.semilogy(lag, prof[i, j], color=colours[i], label=f'update {step}')
    ax.set_title(METHOD_NAMES.get(data['methods'][j], data['methods'][j]))
    ax.set_xlabel('T - k (steps back from the scored step)')
    ax.grid(alpha=0.3)
  np.atleast_1d(axes)[0].set_ylabel('mean ||dE/dx_k||')
  np.atleast_1d(axes)[0].legend(fontsize=8)
  fig.suptitle(f'Temporal order, T = {data["length"]}: the error signal reaching earlier states '
               '(Pascanu et al. 2013, sec. 3.3)')
  fig.tight_layout()
  path = os.path.join(out, 'gradient_flow.png')
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def main(argv: list[str]) -> None:
  if not argv:
    sys.exit('usage: python -m reporting.figures.gradient_flow OUTDIR [LENGTH] [STEPS]')
  out = argv[0]
  length = int(argv[1]) if len(argv) > 1 else 50
  total = int(argv[2]) if len(argv) > 2 else 8000
  os.makedirs(out, exist_ok=True)
  data = measure(length, total)
  with open(os.path.join(out, 'gradient_flow.json'), 'w') as f:
    json.dump({**data, 'profiles': np.asarray(data['profiles']).tolist()}, f)
  print(plot(data, out))


if __name__ == '__main__':
  cli(main, sys.argv[1:])
