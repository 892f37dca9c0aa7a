"""An ablation as a figure: each row's change in test loss against the full
recipe, one dot per member (seed) and the row's mean, beside the full
recipe's own spread.

    python -m reporting.figures.ablation results/bai2018_ablation   # writes ablation.png there

The numbers are ``reporting.ablation.rows_of``'s (the table that ``launch.py
table`` prints); ``launch.py reproduce`` draws this figure at the end of an
ablation target. Rows not run yet are left out. The grey band is the
reference row's mean ± one standard deviation over its members, so a row
whose mean sits inside it differs from the recipe by less than the recipe
differs from itself across seeds.
"""

from __future__ import annotations

import os
import sys
import textwrap

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from reporting import ablation  # noqa: E402
from reporting.figures import cli  # noqa: E402

FILENAME = 'ablation.png'


def draw(folder: str) -> str:
  """Writes ``<folder>/ablation.png``; returns its path."""
  marker, rows = ablation.rows_of(folder)
  ref = next(r for r in rows if r['name'] == marker['reference'])
  rows = [r for r in rows if r['test'] is not None]
  if ref['test'] is None:
    raise ValueError(f'{folder}: the reference row {ref["name"]!r} has not finished')
  fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(rows) + 1.8))
  ax.axvspan(-ref['sd'], ref['sd'], color='0.88', zorder=0,
             label=f'grey: {ref["label"]}, ± 1 sd over {ref["members"]} seeds')
  ax.axvline(0.0, color='0.4', lw=0.8, zorder=1)
  for y, r in enumerate(rows):
    color = ('0.3' if r is ref else 'tab:red' if r['change'] > 0 else 'tab:blue')
    ax.scatter([t - ref['test'] for t in r['tests']], [y] * len(r['tests']), s=14,
               color=color, alpha=0.5, zorder=2)
    ax.plot([r['change']], [y], marker='|', ms=16, mew=2.5, color=color, zorder=3)
  ax.set_yticks(range(len(rows)), [r['label'] for r in rows])
  ax.invert_yaxis()
  ax.set_xlabel(f'test loss minus the recipe\'s mean ({ref["test"]:.3f})\n'
                'right of 0 (red): worse than the recipe\ndots: seeds, bars: means')
  fig.suptitle(textwrap.fill(marker.get('title', 'Ablation'), 90), fontsize=9)
  ax.legend(loc='upper right', fontsize=8, frameon=False)
  ax.grid(axis='x', color='0.92')
  fig.tight_layout()
  path = os.path.join(folder, FILENAME)
  fig.savefig(path, dpi=130)
  plt.close(fig)
  return path


def main(argv: list[str]) -> None:
  if len(argv) != 1:
    sys.exit('usage: python -m reporting.figures.ablation FOLDER')
  print(draw(argv[0]))


if __name__ == '__main__':
  cli(main, sys.argv[1:])
