"""Drawing Fig. 3 and Fig. 6 of Pascanu et al. (2013) (matplotlib, Agg).

The numbers come from ``reporting.figures.dynamics``; this module only draws them.
Run ``python -m reporting.figures.plots [out_dir]`` to write both PNGs (default
``reporting/figures/out/``); it takes a few seconds on one CPU core.
"""

from __future__ import annotations

import io
import os
import sys

import matplotlib

matplotlib.use('Agg')  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402  (installed with matplotlib)

from reporting.figures import dynamics  # noqa: E402
from reporting.figures import cli  # noqa: E402

_PAPER = 'Pascanu, Mikolov & Bengio (2013)'

# Fig. 6 set-up. The paper draws its trajectories without saying where they
# start or which step sizes they use; these are our choices. From this start
# (on the gentle slope beside the wall, E = 0.056) both runs take the same
# first 30 steps (every gradient norm is below the threshold, so clipping does
# nothing), down towards the valley, twice onto the wall and back. At step 31,
# at the foot of the wall, the gradient norm is ~61: plain descent is thrown
# ~15 units to (w, b) ~ (12.6, 10.7), where s(x_50) ~ 1, E ~ 0.09 and the
# gradient is ~0, and stays there; the clipped run moves lr * clip = 0.125
# and settles in the valley beside the wall. Where plain descent lands on
# the wall, and so how far it jumps, depends sensitively on the start and the
# learning rate; that it can be thrown far is the paper's point.
FIG6_START = (5.0, -2.0)
FIG6_LR = 0.25
FIG6_CLIP = 0.5
FIG6_STEPS = 300
FIG6_W = (3.0, 6.0)       # window of the 3-D surface (our choice)
FIG6_B = (-3.5, -1.0)
FIG6_ZOOM_W = (3.7, 5.3)  # window of the top view (our choice)
FIG6_ZOOM_B = (-3.4, -1.5)


def _branches(bf: dynamics.Bifurcation):
  """Splits the fixed points into curves ``(x [n], b [n], stable)``.

  Stable points below the lower fold state, unstable ones between the fold
  states, stable ones above the upper fold state; the fold points are added
  to the ends so that the curves meet. Each curve is sorted by x (the
  diagram is a graph over x: ``b = x - w s(x)``).
  """
  ok = ~np.isnan(bf.x)
  xs = bf.x[ok]
  bs = np.broadcast_to(bf.b[:, None], bf.x.shape)[ok]
  st = bf.stable[ok]
  if len(bf.fold_x) == 0:
    pieces = [(st, True, [])]
  else:
    lo, hi = bf.fold_x
    pieces = [(st & (xs < lo), True, [0]), (~st, False, [0, 1]),
              (st & (xs > hi), True, [1])]
  out = []
  for mask, stable, folds in pieces:
    x, b = xs[mask], bs[mask]
    for i in folds:
      if bf.b[0] <= bf.fold_b[i] <= bf.b[-1]:
        x, b = np.append(x, bf.fold_x[i]), np.append(b, bf.fold_b[i])
    order = np.argsort(x)
    out.append((x[order], b[order], stable))
  return out


def plot_fig3(path: str, w: float = 5.0, b_range=(-4.0, -1.0)) -> str:
  """Draws Fig. 3: fixed points of ``x = w s(x) + b`` against ``b``, w = 5.

  Stable fixed points solid, unstable dashed, the two fold bifurcations as
  filled circles (as in the paper), the bistable interval shaded, and grey
  arrows for the direction in which ``x_t`` moves under the map. The range
  of ``b`` is our choice (see ``dynamics.bifurcation``).

  Returns:
    ``path``.
  """
  bf = dynamics.bifurcation(w=w, b_range=b_range)
  fig, ax = plt.subplots(figsize=(7.0, 5.0), dpi=100)

  if len(bf.fold_b):
    b_lo, b_hi = np.sort(bf.fold_b)
    ax.axvspan(b_lo, b_hi, color='0.9', zorder=0,
               label=f'bistable: {b_lo:.3f} < b < {b_hi:.3f}')

  # Direction of the map's flow: x_{t+1} - x_t = w s(x_t) + b - x_t.
  lo, hi = np.nanmin(bf.x), np.nanmax(bf.x)
  pad = 0.12 * (hi - lo)
  gb, gx = np.meshgrid(np.linspace(*b_range, 13)[1:-1],
                       np.linspace(lo - 0.5 * pad, hi + 0.5 * pad, 14))
  direction = np.sign(w * dynamics._sigmoid(gx) + gb - gx)
  ax.quiver(gb, gx, np.zeros_like(gb), direction, color='0.6', width=0.003,
            scale=40, pivot='mid', zorder=1)

  labelled = set()
  for x, b, stable in _branches(bf):
    kind = 'stable fixed point' if stable else 'unstable fixed point (basin boundary)'
    ax.plot(b, x, '-' if stable else '--', color='tab:blue' if stable else 'tab:red',
            lw=2.2, zorder=3, label=None if kind in labelled else kind)
    labelled.add(kind)
  if len(bf.fold_b):
    ax.plot(bf.fold_b, bf.fold_x, 'o', color='k', ms=7, zorder=4,
            label=r'fold bifurcation ($w\,\sigma^{\prime}(x^*) = 1$)')

  ax.set_xlim(*b_range)
  ax.set_ylim(lo - pad, hi + pad)
  ax.set_xlabel('bias $b$')
  ax.set_ylabel(r'fixed point $x^*$  ($x^* = w\,\sigma(x^*) + b$)')
  ax.set_title(f'{_PAPER}, Fig. 3\nbifurcation diagram of a single-unit RNN, '
               f'$w = {w:g}$', fontsize=11)
  handles, _ = ax.get_legend_handles_labels()
  handles.append(Line2D([], [], color='0.5', marker=r'$\updownarrow$', ls='none', ms=10,
                        label=r'direction of $x_{t+1} - x_t$ under the map'))
  ax.legend(handles=handles, loc='upper left', fontsize=8.5, framealpha=0.95)
  fig.tight_layout()
  _save(fig, path)
  return path


def _inside(run: np.ndarray, w_lim, b_lim) -> np.ndarray:
  """The rows of ``run`` before it first leaves the window."""
  inside = ((run[:, 0] >= w_lim[0]) & (run[:, 0] <= w_lim[1])
            & (run[:, 1] >= b_lim[0]) & (run[:, 1] <= b_lim[1]))
  n = len(run) if inside.all() else int(np.argmin(inside))
  return run[:n]


def plot_fig6(path: str, num_w: int = 121, num_b: int = 201, num_zoom: int = 201) -> str:
  """Draws Fig. 6: the error surface ``E_50(w, b)`` and two descents on it.

  ``E = (s(x_50) - 0.7)^2`` with ``x_0 = 0.5`` (sec. 2.3). Left: the surface
  in 3-D over ``FIG6_W x FIG6_B``, as in the paper. Middle: a close-up
  ``FIG6_ZOOM_W x FIG6_ZOOM_B`` seen from above (``log10 E``) with plain
  gradient descent (solid, as in the paper) and norm-clipped descent (dashed,
  as the paper's dashed arrows) from the same start ``FIG6_START``, learning
  rate ``FIG6_LR``, threshold ``FIG6_CLIP``, ``FIG6_STEPS`` steps (all our
  choices, see the comment above them; one dot per step). The 3-D view draws
  each run only until it first leaves the window.
  Right: the error along both runs.

  Returns:
    ``path``.
  """
  plain = dynamics.descent_trajectory(*FIG6_START, FIG6_LR, FIG6_STEPS)
  clipped = dynamics.descent_trajectory(*FIG6_START, FIG6_LR, FIG6_STEPS, clip=FIG6_CLIP)
  jumps = np.linalg.norm(np.diff(plain[:, :2], axis=0), axis=1)
  k = int(np.argmax(jumps))                     # plain jumps from row k to k + 1
  # Plain is drawn on top (last number: zorder) to show where the two coincide.
  runs = [(plain, 'plain gradient descent', '-', 'tab:red', 4),
          (clipped, f'gradient norm clipped at {FIG6_CLIP:g}', '--', 'darkorange', 3)]

  fig = plt.figure(figsize=(16.5, 5.4), dpi=100)

  # 3-D surface, seen from the low-error side with the wall at the back.
  ax = fig.add_subplot(1, 3, 1, projection='3d')
  w = np.linspace(*FIG6_W, num_w)
  b = np.linspace(*FIG6_B, num_b)    # fine in b: the wall is steep across b
  ww, bb = np.meshgrid(w, b, indexing='ij')
  ax.plot_surface(ww, bb, dynamics.error_surface(w, b), cmap='viridis', rstride=1,
                  cstride=1, lw=0, antialiased=True)
  for run, _, style, color, z in runs:
    run = _inside(run, FIG6_W, FIG6_B)
    ax.plot(run[:, 0], run[:, 1], run[:, 2] + 0.004, style, color=color, lw=1.5,
            zorder=z + 2)
  ax.view_init(elev=30, azim=50)
  ax.set_xlabel('$w$')
  ax.set_ylabel('$b$')
  ax.set_zlabel('$E_{50}$')
  ax.set_title(r'error surface $E_{50} = (\sigma(x_{50}) - 0.7)^2$, $x_0 = 0.5$',
               fontsize=10)

  # Close-up from above.
  ax = fig.add_subplot(1, 3, 2)
  w = np.linspace(*FIG6_ZOOM_W, num_zoom)
  b = np.linspace(*FIG6_ZOOM_B, num_zoom)
  im = ax.imshow(np.log10(np.maximum(dynamics.error_surface(w, b), 1e-6)).T,
                 origin='lower', aspect='auto', cmap='viridis',
                 extent=(w[0], w[-1], b[0], b[-1]))
  fig.colorbar(im, ax=ax, label=r'$\log_{10} E_{50}$', pad=0.02)
  for run, label, style, color, z in runs:
    ax.plot(run[:, 0], run[:, 1], style, color=color, lw=1.5, label=label, zorder=z)
    ax.plot(run[:, 0], run[:, 1], '.', color=color, ms=4, zorder=z)
  ax.plot(*FIG6_START, 'o', color='white', mec='k', ms=8, label='start', zorder=5)
  ax.plot(*clipped[-1, :2], 's', color='darkorange', mec='k', ms=7, zorder=5,
          label='end of the clipped run')
  # The jump leaves the close-up: an arrow head where it crosses the frame.
  start, step = plain[k, :2], plain[k + 1, :2] - plain[k, :2]
  lims = np.array([FIG6_ZOOM_W, FIG6_ZOOM_B])
  with np.errstate(divide='ignore'):
    t_out = np.where(step > 0, (lims[:, 1] - start) / step, (lims[:, 0] - start) / step)
  t_out = min(1.0, float(np.min(t_out)))
  ax.annotate('', xy=start + 0.97 * t_out * step, xytext=start, zorder=6,
              arrowprops=dict(arrowstyle='-|>', color='tab:red', lw=1.5, mutation_scale=18))
  ax.text(0.03, 0.47,
          f'plain, step {k + 1}: gradient norm {jumps[k] / FIG6_LR:.0f},\n'
          f'jump of {jumps[k]:.1f} to (w, b) = ({plain[k + 1, 0]:.1f}, '
          f'{plain[k + 1, 1]:.1f}),\na flat plateau: E = {plain[k + 1, 2]:.3f} '
          'for good',
          transform=ax.transAxes, color='tab:red', fontsize=8.5, ha='left', va='top',
          bbox=dict(fc='white', ec='tab:red', alpha=0.9, pad=2.0), zorder=7)
  ax.set_xlim(*FIG6_ZOOM_W)
  ax.set_ylim(*FIG6_ZOOM_B)
  ax.set_xlabel('recurrent weight $w$')
  ax.set_ylabel('bias $b$')
  ax.set_title(f'close-up from above: lr = {FIG6_LR:g}, {FIG6_STEPS} steps, '
               'one dot per step', fontsize=10)
  ax.legend(loc='lower left', fontsize=8.5, framealpha=0.9)

  # Error along the runs.
  ax = fig.add_subplot(1, 3, 3)
  for run, label, style, color, z in runs:
    ax.semilogy(run[:, 2], style, color=color, lw=1.3, zorder=z,
                label=f'{label} (final E = {run[-1, 2]:.1e})')
  ax.axvline(k + 1, color='tab:red', lw=0.8, ls=':')
  ax.set_xlabel('gradient descent step')
  ax.set_ylabel('$E_{50}$')
  ax.set_title('error along the two runs', fontsize=10)
  ax.legend(loc='lower left', fontsize=8.5)
  ax.grid(alpha=0.3, which='both')

  fig.suptitle(f'{_PAPER}, Fig. 6: the wall in the error surface of a single-unit RNN '
               r'$x_t = w\,\sigma(x_{t-1}) + b$, with and without gradient clipping',
               fontsize=12)
  fig.tight_layout()
  _save(fig, path)
  return path


def _save(fig, path: str) -> None:
  """Writes ``fig`` as a 256-colour palette PNG (a third of the RGB size,
  small enough to commit; the colour maps have no more levels than that)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  buf = io.BytesIO()
  fig.savefig(buf, format='png')
  plt.close(fig)
  buf.seek(0)
  Image.open(buf).convert('RGB').quantize(colors=256).save(path, optimize=True)


def main(argv: list[str]) -> None:
  out = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), 'out')
  print(plot_fig3(os.path.join(out, 'fig3_bifurcation.png')))
  print(plot_fig6(os.path.join(out, 'fig6_error_surface.png')))


if __name__ == '__main__':
  cli(main, sys.argv)
