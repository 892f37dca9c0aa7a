"""Pascanu et al. (2013) Fig. 7 from finished runs of
``experiments/temporal_order_fig7.py``: success rate against sequence length,
one panel per initialisation, one curve per method.

    python -m figures.fig7 runs/fig7            # writes fig7_success.png and fig7.md there

A member counts as a success when its run's criterion says so (``solved``
in result.json): ``success=paper``, fewer than 1% wrong of 10,000 fresh
sequences (the paper's Fig. 7), or ``success=authors``, none wrong (the
authors' code). The title and fig7.md name the criterion; runs under two
criteria are never mixed in one figure.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from datasets.pathological import SUCCESS_CRITERIA  # noqa: E402
from experiments.temporal_order_fig7 import METHOD_ROWS  # noqa: E402

INITS = ('sigmoid', 'basic_tanh', 'smart_tanh')
# How each criterion is worded in the title and in fig7.md.
CRITERIA = {'paper': '<1% wrong of 10,000 fresh sequences (the paper\'s criterion)',
            'authors': '0 wrong of 10,000 fresh sequences (the authors\' code\'s criterion)'}
STYLE = {'sgd': ('tab:blue', 'o', 'SGD'), 'sgd-c': ('tab:orange', 's', 'SGD-C'),
         'sgd-cr': ('tab:green', '^', 'SGD-CR')}


def method_of(hparams: dict) -> str:
  for name, clip, alpha in METHOD_ROWS:
    if hparams['optim.clip_norm'] == clip and hparams['reg.omega_alpha'] == alpha:
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


def collect(root: str) -> dict:
  """{(init, method): {length: (solved, members, budget)}} from the runs under root,
  plus ``table.criterion``, the one success criterion they share."""
  table: dict = _Table(dict)
  for path in sorted(glob.glob(os.path.join(root, '*', 'result.json'))):
    run = os.path.dirname(path)
    with open(path) as f:
      result = json.load(f)
    with open(os.path.join(run, 'config.json')) as f:
      config = json.load(f)
    criterion = criterion_of(result, config)
    if table.criterion not in (None, criterion):
      raise ValueError(f'{run} used success={criterion}, other runs under {root} '
                       f'success={table.criterion}: draw them separately')
    table.criterion = criterion
    init, length = config['model']['init_scheme'], config['task']['min_length']
    counts = collections.Counter()
    totals = collections.Counter()
    for m in result['members']:
      method = method_of(m['hparams'])
      totals[method] += 1
      counts[method] += bool(m['solved'])
    for method in totals:
      table[(init, method)][length] = (counts[method], totals[method],
                                       config['train']['num_steps'])
  return table


class _Table(collections.defaultdict):
  criterion: str | None = None


def plot(table: dict, path: str) -> str:
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
  for ax, init in zip(axes, INITS):
    for method, (color, marker, label) in STYLE.items():
      points = sorted(table.get((init, method), {}).items())
      if points:
        ax.plot([l for l, _ in points], [s / n for _, (s, n, _) in points], marker=marker,
                color=color, label=label)
    ax.set_xscale('log')
    ax.set_title(f'{init} initialisation')
    ax.set_xlabel('sequence length T')
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel('success rate')
  for ax in axes:
    if ax.get_legend_handles_labels()[0]:
      ax.legend()
      break
  budgets = sorted({b for points in table.values() for _, _, b in points.values()})
  criterion = CRITERIA[getattr(table, 'criterion', None) or 'paper']
  fig.suptitle('Pascanu et al. (2013) Fig. 7, temporal order: fraction of seeds solved, '
               f'{criterion}; budget {", ".join(f"{b:,}" for b in budgets)} updates',
               fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def markdown(table: dict) -> str:
  lengths = sorted({l for points in table.values() for l in points})
  criterion = CRITERIA[getattr(table, 'criterion', None) or 'paper']
  lines = [f'Solved seeds per point, success = {criterion}.', '',
           '| init | method | ' + ' | '.join(f'T={l}' for l in lengths) + ' |',
           '|---|---|' + '---|' * len(lengths)]
  for init in INITS:
    for method in STYLE:
      points = table.get((init, method), {})
      cells = [f'{points[l][0]}/{points[l][1]}' if l in points else '' for l in lengths]
      if points:
        lines.append(f'| {init} | {STYLE[method][2]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  root = argv[1] if len(argv) > 1 else 'runs/fig7'
  table = collect(root)
  if not table:
    sys.exit(f'no finished Fig. 7 runs (result.json) under {root}')
  print(plot(table, os.path.join(root, 'fig7_success.png')))
  text = markdown(table)
  with open(os.path.join(root, 'fig7.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  main(sys.argv)
