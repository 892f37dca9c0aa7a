"""Random searches at a glance: every trial's validation score against its
learning rate, one panel per table row (dataset), one colour per method.

    python -m reporting.figures.search results/bengio2013_table1 [more folders...]

reads the ``sweep.json`` of every search under each folder (``launch.py
sweep`` writes one per search, e.g. ``results/bengio2013_table1/jsb_c``) and
writes ``search.png`` into the folder. Each trial is a point: x its learning
rate (log), y its validation score at its best epoch (what the search selects
on), the marker's size its hidden units. The trial a search selects (its
lowest validation) is ringed; the table reports its test score. Diverged
trials sit on the panel's top edge as crosses. What a search is (which table,
row and method) is read from its units' ``config.json``
(``reporting.tables.declared``), so the method names are the tables'.

What it shows at once: where each method's good learning rates lie, how
wide that window is, whether the search's interval covered it, and the
trials lost to a plateau or to divergence.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import sys

import matplotlib

matplotlib.use('Agg')  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402

from reporting import tables  # noqa: E402
from training import records  # noqa: E402
from reporting.figures import cli  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Trial:
  learning_rate: float
  valid: float          # NaN when diverged
  hidden: int | None
  diverged: bool
  selected: bool


def searches(folder: str) -> dict:
  """{row name: {method label: [Trial]}} of every search under ``folder``,
  rows and methods in the tables' order."""
  out: dict = {}
  for path in sorted(glob.glob(os.path.join(folder, '**', 'sweep.json'), recursive=True)):
    sweep = records.read_json(path)
    configs = glob.glob(os.path.join(os.path.dirname(path), '*', '*', 'config.json'))
    if not isinstance(sweep, dict) or not sweep.get('trials') or not configs:
      continue
    paper = tables.declared(records.read_json(configs[0]))
    table = tables.PAPER.get(paper['table'])
    if table is None or not paper['methods']:
      continue
    row = tables.row_name(table, paper['row'])
    method = table.method_labels.get(paper['methods'][0], paper['methods'][0])
    best = (sweep.get('best') or {})
    trials = []
    for t in sweep['trials']:
      lr = t.get('hparams', {}).get('optim.learning_rate')
      if lr is None:
        continue                  # a search that does not draw the learning rate
      hidden = t.get('structural', {}).get('model.hidden_size')
      valid = t.get('valid')
      trials.append(Trial(float(lr), math.nan if valid is None else float(valid),
                          None if hidden is None else int(hidden), bool(t.get('diverged')),
                          t.get('unit') == best.get('unit') and t.get('hparams') == best.get('hparams')))
    out.setdefault(row, {})[method] = trials
  method_order = {m: i for t in tables.PAPER.values()
                  for i, m in enumerate(t.method_labels.values())}
  row_order = {tables.row_name(t, r): (i, j) for i, t in enumerate(tables.PAPER.values())
               for j, r in enumerate(t.rows)}
  return {row: dict(sorted(by.items(), key=lambda kv: method_order.get(kv[0], 99)))
          for row, by in sorted(out.items(), key=lambda kv: row_order.get(kv[0], (99, 99)))}


def draw(folder: str, out: str | None = None) -> str:
  """Writes the panels of ``searches(folder)`` to ``out`` (default
  ``folder/search.png``) and returns its path."""
  found = searches(folder)
  if not found:
    raise FileNotFoundError(f'no search (sweep.json with learning-rate trials) under {folder}')
  methods = list(dict.fromkeys(m for by in found.values() for m in by))   # the tables' order
  colour = {m: f'C{i}' for i, m in enumerate(methods)}                    # one per method
  size = lambda t: 12 + 0.1 * (t.hidden or 100)
  fig, axes = plt.subplots(1, len(found), figsize=(max(6.5, 4.2 * len(found)), 3.8), squeeze=False)
  for ax, (row, by_method) in zip(axes[0], found.items()):
    scored = [t.valid for ts in by_method.values() for t in ts if math.isfinite(t.valid)]
    top = max(scored) if scored else 1.0
    for method, trials in by_method.items():
      ok = [t for t in trials if not t.diverged and math.isfinite(t.valid)]
      ax.scatter([t.learning_rate for t in ok], [t.valid for t in ok],
                 s=[size(t) for t in ok], color=colour[method], alpha=0.75)
      for t in ok:
        if t.selected:
          ax.scatter([t.learning_rate], [t.valid], s=size(t) * 4, facecolors='none',
                     edgecolors=colour[method], linewidths=1.5)
      bad = [t for t in trials if t not in ok]
      ax.scatter([t.learning_rate for t in bad], [top] * len(bad), marker='x',
                 color=colour[method])
    ax.set_xscale('log')
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title(row)
    ax.set_xlabel('learning rate')
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel('validation score at the best epoch')
  handles = [plt.Line2D([], [], marker='o', linestyle='', color=colour[m]) for m in methods]
  fig.legend(handles, methods, loc='lower center', ncol=min(len(methods), 8), fontsize=8,
             frameon=False)
  fig.suptitle('Random searches: each trial (size: hidden units; ringed: selected; '
               'x on the top edge: diverged)', fontsize=9)
  fig.tight_layout(rect=(0, 0.08, 1, 1))
  out = out or os.path.join(folder, 'search.png')
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return out


def main(argv: list[str]) -> None:
  if not argv:
    raise SystemExit('usage: python -m reporting.figures.search FOLDER [FOLDER...]')
  for folder in argv:
    print(draw(folder))


if __name__ == '__main__':
  cli(main, sys.argv[1:])
