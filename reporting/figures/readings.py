"""Each reading of a paper's setting against the paper, cell by cell.

    python -m reporting.figures.readings --out FILE.png \\
        "LABEL=RUN[,RUN...]" "LABEL=RUN[,RUN...]" ...

Each argument is one reading (a variant of the settings) and the run folders
that measured it, e.g. every seed of the default and every seed of an
ablation. The runs are placed in their paper's table as ``launch.py table``
places them (``tables.collect``); for every (row, method) cell a reading has,
the figure shows the mean test score at the best validation over the reading's
members of that cell (a dot) and their range (a bar), beside the paper's
number (a black dash). One panel per row of the table (a dataset), the
methods along the x axis, the readings side by side within a method. For
example, Pascanu et al.'s Table 1 on MuseData:

    python -m reporting.figures.readings --out results/ablations/musedata_readings.png \\
        "default=results/pascanu2013_table1/musedata,results/pascanu2013_table1/musedata_seed1" \\
        "shuffled chunks=results/ablations/musedata_shuffle_chunks,results/ablations/musedata_shuffle_chunks_seed1"
"""

from __future__ import annotations

import dataclasses
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from reporting import figures  # noqa: E402
from reporting import tables  # noqa: E402
from reporting.figures import cli  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Point:
  """One reading's members of one cell."""
  reading: str
  row: str
  method: str
  mean: float
  low: float
  high: float
  members: int
  paper: float | None


def parse_reading(arg: str) -> tuple[str, list[str]]:
  """``LABEL=RUN[,RUN...]`` -> (label, run folders)."""
  label, sep, runs = arg.partition('=')
  folders = [r for r in runs.split(',') if r]
  if not sep or not label or not folders:
    raise ValueError(f'{arg!r}: a reading is LABEL=RUN[,RUN...], e.g. '
                     '"default=results/pascanu2013_table1/piano"')
  return label, folders


def points(readings: list[tuple[str, list[tables.Cell]]]) -> list[Point]:
  """Per reading and (row, method): the mean, lowest and highest test score at the
  best validation over its members (diverged members left out), with the paper's number.
  Where a reading holds several trials of a cell (a grid of thresholds or rates, each
  over the same seeds), the cell is the trial ``launch.py table`` reports: the lowest
  validation averaged over its seeds.
  The readings must all place their runs in one paper table."""
  names = {c.table for _, cells in readings for c in cells}
  if len(names) > 1:
    raise ValueError(f'the runs belong to different tables ({", ".join(sorted(names))}); '
                     'compare readings of one table')
  out = []
  for label, cells in readings:
    by_cell: dict[tuple[str, str], list[tables.Cell]] = {}
    for c in cells:
      by_cell.setdefault((c.row, c.method), []).append(c)
    table = tables.PAPER[cells[0].table] if cells else None
    for (row, method), members in by_cell.items():
      trials, chosen = tables.choose_trial(members)     # a grid's runs: the trial it selects
      scores = [c.ours for c in (trials[chosen] if chosen else members) if not c.diverged]
      if not scores:
        continue
      paper = table.rows.get(row, {}).get(method)     # a companion row has none
      out.append(Point(label, row, method, sum(scores) / len(scores), min(scores), max(scores),
                       len(scores), paper))
  return out


def draw(readings: list[tuple[str, list[str]]]):
  """The figure (the caller closes it). Each reading's dots have the gid
  ``'{row}:{reading}'``, each paper dash ``'{row}:paper:{method}'``."""
  collected = [(label, tables.collect(folders)) for label, folders in readings]
  for label, cells in collected:
    if not cells:
      raise ValueError(f'reading {label!r}: no finished run of a paper table in its folders')
  pts = points(collected)
  table = tables.PAPER[collected[0][1][0].table]
  paper = {(p.row, p.method): p.paper for p in pts if p.paper is not None}
  order = list(table.rows)            # the paper's order of rows and methods
  rank = lambda key, keys: keys.index(key) if key in keys else len(keys)
  rows = sorted(dict.fromkeys(p.row for p in pts), key=lambda r: (rank(r.partition('/')[0], order), r))
  labels = [label for label, _ in readings]
  fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows) + 3.5, 4.4), squeeze=False)
  width = 0.7 / len(labels)
  for ax, row in zip(axes[0], rows):
    known = list(table.rows.get(row.partition('/')[0], {}))
    methods = sorted(dict.fromkeys(p.method for p in pts if p.row == row),
                     key=lambda m: (rank(m, known), m))
    for k, method in enumerate(methods):
      if (row, method) in paper:
        ax.plot([k - 0.42, k + 0.42], [paper[row, method]] * 2, color='black', lw=2,
                gid=f'{row}:paper:{method}', label='paper' if k == 0 else None)
    for j, label in enumerate(labels):
      xs, ys, lo, hi = [], [], [], []
      for k, method in enumerate(methods):
        for p in pts:
          if (p.reading, p.row, p.method) == (label, row, method):
            xs.append(k - 0.35 + width * (j + 0.5))
            ys.append(p.mean)
            lo.append(p.mean - p.low)
            hi.append(p.high - p.mean)
      colour, marker = style(j)
      ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, color=colour, ms=6,
                  capsize=3, label=label, gid=f'{row}:{label}')
    ax.set_xticks(range(len(methods)), [table.method_labels.get(m, m) for m in methods])
    ax.set_title(tables.row_name(table, row))
    ax.grid(axis='y', alpha=0.3)
  axes[0][0].set_ylabel(f'test {table.metric}')
  axes[0][-1].legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.02, 1.0),   # beside, over no dot
                     title='at the lowest validation;\nmean (dot) and range of seeds', title_fontsize=8)
  fig.suptitle(f'{table.title}: each reading of the settings against the paper', fontsize=10)
  fig.tight_layout()
  return fig


MARKERS = 'osD^v'


def style(j: int) -> tuple[str, str]:
  """The colour and marker of reading ``j``: the colour cycle, then the
  cycle again with the next marker, so no two readings look alike."""
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  return colours[j % len(colours)], MARKERS[(j // len(colours)) % len(MARKERS)]


def main(argv: list[str]) -> None:
  figures.draw_to_file(
      argv, 'python -m reporting.figures.readings',
      'Each reading (LABEL=RUN[,RUN...]) of a paper table against the paper, cell by cell.',
      'LABEL=RUN[,RUN...]', parse_reading, draw)


if __name__ == '__main__':
  cli(main, sys.argv[1:], parses_flags=True)
