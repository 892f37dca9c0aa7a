"""Pascanu et al. (2013) Fig. 7 from finished runs of
``experiments/temporal_order_fig7.py``: success rate against sequence length,
one panel per initialisation, one curve per method.

    python -m reporting.figures.fig7 runs/fig7    # writes fig7_success.png and fig7.md there
    python -m reporting.figures.fig7 runs/fig7 --more runs/longer/*   # and fig7_more.{png,md}

A member counts as a success when its run's criterion says so (``solved``
in result.json): ``success=paper``, fewer than 1% wrong of 10,000 fresh
sequences (the paper's Fig. 7), or ``success=authors``, none wrong (the
authors' code). The title and fig7.md name the criterion; runs under two
criteria are never mixed in one figure.

Each point is a success rate of a few seeds (5 in ``scripts/fig7_runs.sh``),
so it carries its Wilson 95% interval (``wilson_interval``) as an error bar,
and the legend says how many seeds each point has. The x ticks are the
lengths tested, on a log scale; the three methods sit slightly apart along x
with their own marker shapes and sizes, so equal rates never hide each other.

``--more`` adds runs of some points trained for longer, e.g. one method's
seeds alone with ``experiments/temporal_order.py:...,steps=N`` at the
figure's settings: hollow markers, each joined to the figure's point and
labelled with its budget.
"""

from __future__ import annotations

import collections
import glob
import json
import math
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.lines  # noqa: E402
import matplotlib.ticker  # noqa: E402

from datasets.pathological import SUCCESS_CRITERIA  # noqa: E402
from experiments.temporal_order_fig7 import METHOD_ROWS  # noqa: E402
from optim import NO_CLIP  # noqa: E402
from reporting.figures import cli  # noqa: E402

INITS = ('sigmoid', 'basic_tanh', 'smart_tanh')
# How each criterion is worded in the title and in fig7.md.
CRITERIA = {'paper': '<1% wrong of 10,000 fresh sequences (the paper\'s criterion)',
            'authors': '0 wrong of 10,000 fresh sequences (the authors\' code\'s criterion)'}
STYLE = {'sgd': ('tab:blue', 'o', 'SGD'), 'sgd-c': ('tab:orange', 's', 'SGD-C'),
         'sgd-cr': ('tab:green', '^', 'SGD-CR')}
# Each method's marker size and its shift along the (log) length axis, as a
# factor: points of equal rate sit side by side instead of on top of each other.
MARKER_SIZE = {'sgd': 9, 'sgd-c': 7, 'sgd-cr': 6}
X_SHIFT = {'sgd': 10 ** -0.035, 'sgd-c': 1.0, 'sgd-cr': 10 ** 0.035}
Z95 = 1.959963984540054     # the standard normal's 97.5% quantile


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
  """Wilson score interval of a binomial proportion (95% by default).

  ``(c - h, c + h)`` with ``c = (p + z^2/2n) / (1 + z^2/n)`` and
  ``h = z / (1 + z^2/n) * sqrt(p (1 - p) / n + z^2 / 4n^2)``, ``p = k / n``.
  Unlike the normal approximation it stays inside [0, 1] and is not empty
  at 0/n or n/n (0/n gives ``[0, z^2 / (n + z^2)]``), which is what a rate
  of 5 seeds mostly is. No trials: ``(0, 1)``.

  References:
    Wilson, Probable inference, the law of succession, and statistical
    inference, JASA 22 (1927); Brown, Cai, DasGupta, Interval estimation for
    a binomial proportion, Statistical Science 16 (2001).
  """
  if trials <= 0:
    return 0.0, 1.0
  n, p, z2 = float(trials), successes / trials, z * z
  centre = (p + z2 / (2 * n)) / (1 + z2 / n)
  half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
  # At k = 0 or n one end is 0 or 1 exactly, whatever the rounding.
  lo = 0.0 if successes <= 0 else max(0.0, centre - half)
  hi = 1.0 if successes >= trials else min(1.0, centre + half)
  return lo, hi


def method_of(hparams: dict) -> str:
  """SGD, SGD-C or SGD-CR by the member's clip threshold and Omega weight, the
  figure's values exactly; a threshold of 0 (no clipping, a run of
  ``temporal_order.py:method=sgd``) is SGD's threshold that no gradient reaches."""
  clip = hparams['optim.clip_norm'] or NO_CLIP
  for name, row_clip, alpha in METHOD_ROWS:
    if clip == row_clip and hparams['reg.omega_alpha'] == alpha:
      return name
  raise ValueError(f'not a Fig. 7 member: {hparams}')


def criterion_of(result: dict, config: dict) -> str:
  """The run's success criterion: result.json's, else the one its threshold is."""
  if result.get('success'):
    return result['success']
  threshold = config['train']['solved_error']
  for name, value in SUCCESS_CRITERIA.items():
    if threshold == value:
      return name
  raise ValueError(f'solved_error={threshold} is neither criterion {SUCCESS_CRITERIA}')


def _load(path: str):
  """The JSON in ``path``; one that does not parse is a ValueError naming it."""
  with open(path) as f:
    try:
      return json.load(f)
    except ValueError as e:
      raise ValueError(f'{path}: {e}') from None


def read_run(run: str) -> tuple:
  """``(init, length, criterion, budget, [(method, solved) per member])`` of
  one finished run: a Fig. 7 population, or one method's seeds alone
  (``experiments/temporal_order.py``), whose members' hparams are only their
  seeds and whose method is the config's."""
  result, config = (_load(os.path.join(run, name)) for name in ('result.json', 'config.json'))
  shared = {'optim.clip_norm': config.get('optim', {}).get('clip_norm'),
            'reg.omega_alpha': config.get('reg', {}).get('omega_alpha')}
  members = [(method_of({**shared, **m['hparams']}), bool(m['solved']))
             for m in result['members']]
  return (config['model']['init_scheme'], config['task']['min_length'],
          criterion_of(result, config), config['train']['num_steps'], members)


def collect(root: str) -> dict:
  """{(init, method): {length: (solved, members, budget)}} from the runs under root,
  plus ``table.criterion``, the one success criterion they share."""
  return collect_runs(sorted(os.path.dirname(p)
                             for p in glob.glob(os.path.join(root, '*', 'result.json'))))


def collect_runs(runs) -> dict:
  """``collect`` of the given run folders. Runs of one point (initialisation,
  length, method), e.g. its seeds split over two processes, add up; they must
  share their budget (updates a member)."""
  table: dict = _Table(dict)
  for run in runs:
    init, length, criterion, budget, members = read_run(run)
    if table.criterion not in (None, criterion):
      raise ValueError(f'{run} used success={criterion}, the runs before it '
                       f'success={table.criterion}: draw them separately')
    table.criterion = criterion
    for method in dict.fromkeys(m for m, _ in members):
      solved = sum(ok for m, ok in members if m == method)
      count = sum(m == method for m, _ in members)
      points = table[(init, method)]
      if length in points:
        before_solved, before_count, before_budget = points[length]
        if before_budget != budget:
          raise ValueError(f'{run}: {init} T={length} {method} at {budget:,} updates, '
                           f'another run of that point at {before_budget:,}: pass one budget per point')
        solved, count = solved + before_solved, count + before_count
      points[length] = (solved, count, budget)
  return table


class _Table(collections.defaultdict):
  criterion: str | None = None


def lengths_of(table: dict) -> list[int]:
  """The sequence lengths any run tested, ascending."""
  return sorted({l for points in table.values() for l in points})


def seeds_text(table: dict) -> str:
  """How many seeds each point is: '5 seeds per point', or a range."""
  counts = sorted({n for points in table.values() for _, n, _ in points.values()})
  if not counts:
    return 'no seeds'
  if len(counts) == 1:
    return f'{counts[0]} seed{"s" if counts[0] != 1 else ""} per point'
  return f'{counts[0]}-{counts[-1]} seeds per point (fig7.md has each)'


def budget_text(updates: int) -> str:
  """150000 -> '150k', 1000000 -> '1M'."""
  if updates >= 1_000_000 and updates % 100_000 == 0:
    return f'{updates / 1_000_000:g}M'
  if updates >= 1000 and updates % 1000 == 0:
    return f'{updates // 1000}k'
  return f'{updates:,}'


def plot(table: dict, path: str, more: dict | None = None) -> str:
  """The figure's panels; ``more`` (a ``collect_runs`` table of the same
  points trained for longer) adds a hollow marker per point it has, joined to
  the figure's point by a dotted line and labelled with its budget."""
  more = more or {}
  lengths = lengths_of(table)
  fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True, sharex=True)
  for ax, init in zip(axes, INITS):
    for method, (color, marker, label) in STYLE.items():
      points = sorted(table.get((init, method), {}).items())
      if not points:
        continue
      x = [l * X_SHIFT[method] for l, _ in points]
      rate = [s / n for _, (s, n, _) in points]
      lo, hi = zip(*(wilson_interval(s, n) for _, (s, n, _) in points))
      yerr = [[r - l for r, l in zip(rate, lo)], [h - r for r, h in zip(rate, hi)]]
      bars = ax.errorbar(x, rate, yerr=yerr, marker=marker, ms=MARKER_SIZE[method],
                         color=color, mec='white', mew=0.8, lw=1.5, elinewidth=1.2,
                         capsize=3, label=label)
      for bar in bars.lines[2]:
        bar.set_alpha(0.7)
      bars.lines[0].set_gid(f'{init}:{method}')     # the rates' line, for tests
      figure_rate = dict(zip((l for l, _ in points), rate))
      for length, (solved, count, budget) in sorted(more.get((init, method), {}).items()):
        x, y = length * X_SHIFT[method], solved / count
        if length in figure_rate:
          ax.plot([x, x], [figure_rate[length], y], ls=':', lw=1.2, color=color)
        ax.plot([x], [y], marker=marker, ms=MARKER_SIZE[method] + 1, color=color,
                mfc='white', mew=1.5, ls='none', gid=f'{init}:{method}:more:{length}')
        last = bool(lengths) and length >= lengths[-1]   # label to the left, inside the panel
        ax.annotate(budget_text(budget), (x, y), xytext=(-6 if last else 6, -3 if y > 0.5 else 3),
                    textcoords='offset points', fontsize=7, color=color,
                    ha='right' if last else 'left', va='top' if y > 0.5 else 'bottom')
    ax.set_xscale('log')
    ax.set_title(f'{init} initialisation')
    ax.set_xlabel('sequence length T')
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
  if lengths:
    # Ticks at the lengths tested and nowhere else (no 3x10^1 minor labels).
    axes[0].set_xlim(lengths[0] / 1.3, lengths[-1] * 1.3)
    for ax in axes:
      ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(lengths))
      ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([str(l) for l in lengths]))
      ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
  axes[0].set_ylabel('success rate (fraction of seeds solved)')
  # One legend for the three panels, below them, where it covers no point.
  handles, labels = next((h for h in (ax.get_legend_handles_labels() for ax in axes) if h[0]),
                         ([], []))
  if more:
    handles = list(handles) + [matplotlib.lines.Line2D(
        [], [], color='gray', marker='o', mfc='white', ls=':', lw=1.2)]
    labels = list(labels) + ['the same seeds with more updates (budget beside each)']
  if handles:
    fig.legend(handles, labels, loc='lower center', ncol=len(handles) + 1, fontsize=9,
               frameon=False, title=f'{seeds_text(table)}; bars: Wilson 95% interval',
               title_fontsize=9)
  budgets = sorted({b for points in table.values() for _, _, b in points.values()})
  criterion = CRITERIA[getattr(table, 'criterion', None) or 'paper']
  budget = f'budget {", ".join(f"{b:,}" for b in budgets)} updates'
  if more:
    budget = f'filled: {budget}, hollow: more'
  fig.suptitle('Pascanu et al. (2013) Fig. 7, temporal order: fraction of seeds solved, '
               f'{criterion}; {budget}', fontsize=10)
  fig.tight_layout(rect=(0, 0.1 if handles else 0, 1, 1))
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def markdown(table: dict) -> str:
  lengths = lengths_of(table)
  criterion = CRITERIA[getattr(table, 'criterion', None) or 'paper']
  lines = [f'Solved seeds per point, success = {criterion}; in brackets the Wilson 95% '
           'interval of the success rate.', '',
           '| init | method | ' + ' | '.join(f'T={l}' for l in lengths) + ' |',
           '|---|---|' + '---|' * len(lengths)]
  for init in INITS:
    for method in STYLE:
      points = table.get((init, method), {})
      cells = [f'{points[l][0]}/{points[l][1]} [{wilson_interval(*points[l][:2])[0]:.2f}, '
               f'{wilson_interval(*points[l][:2])[1]:.2f}]' if l in points else ''
               for l in lengths]
      if points:
        lines.append(f'| {init} | {STYLE[method][2]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def markdown_more(table: dict, more: dict) -> str:
  """One row per point that ``more`` has: the figure's count beside the
  count with more updates, each with its Wilson interval."""
  budgets = sorted({b for points in table.values() for _, _, b in points.values()})
  lines = [f'The same seeds with more updates; the figure: {", ".join(f"{b:,}" for b in budgets)} '
           'updates a member. In brackets the Wilson 95% interval of the success rate.', '',
           '| init | method | T | the figure | with more updates | budget |',
           '|---|---|---|---|---|---|']

  def cell(point):
    if point is None:
      return '-'
    lo, hi = wilson_interval(*point[:2])
    return f'{point[0]}/{point[1]} [{lo:.2f}, {hi:.2f}]'

  for init in INITS:
    for method in STYLE:
      for length, point in sorted(more.get((init, method), {}).items()):
        before = table.get((init, method), {}).get(length)
        lines.append(f'| {init} | {STYLE[method][2]} | {length} | {cell(before)} | '
                     f'{cell(point)} | {point[2]:,} |')
  return '\n'.join(lines) + '\n'


def main(argv):
  """``fig7 [ROOT] [--more RUN ...]``: the figure from the runs under ROOT;
  with ``--more``, also fig7_more.png and fig7_more.md there, the figure with
  the given runs (the same points trained for longer) added."""
  args = argv[1:]
  more_runs = []
  if '--more' in args:
    at = args.index('--more')
    args, more_runs = args[:at], args[at + 1:]
    if not more_runs:
      sys.exit('--more names no runs: give the folders of the longer runs after it')
  root = args[0] if args else 'runs/fig7'
  table = collect(root)
  if not table:
    sys.exit(f'no finished Fig. 7 runs (result.json) under {root}')
  print(plot(table, os.path.join(root, 'fig7_success.png')))
  text = markdown(table)
  with open(os.path.join(root, 'fig7.md'), 'w') as f:
    f.write(text)
  print(text)
  if more_runs:
    draw_more(table, more_runs, root)


def draw_more(table: dict, runs: list[str], out: str) -> str:
  """fig7_more.png and fig7_more.md in ``out``: the figure (``table``) with
  ``runs``, some of its points trained for longer. Returns the Markdown."""
  missing = [r for r in runs if not os.path.exists(os.path.join(r, 'result.json'))]
  if missing:
    sys.exit(f'not finished runs (no result.json): {", ".join(missing)}')
  more = collect_runs(runs)
  if more.criterion != table.criterion:
    sys.exit(f'the longer runs use success={more.criterion}, the figure success={table.criterion}')
  os.makedirs(out, exist_ok=True)
  print(plot(table, os.path.join(out, 'fig7_more.png'), more))
  text = markdown_more(table, more)
  with open(os.path.join(out, 'fig7_more.md'), 'w') as f:
    f.write(text)
  print(text)
  return text


if __name__ == '__main__':
  cli(main, sys.argv)
