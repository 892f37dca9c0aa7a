"""Pascanu et al. (2013) Fig. 7 from finished runs of
``experiments/temporal_order_fig7.py``: success rate against sequence length,
one panel per initialisation, one curve per method.

    python -m figures.fig7 runs/fig7            # writes fig7_success.png and fig7.md there
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

from experiments.temporal_order_fig7 import METHOD_ROWS  # noqa: E402

INITS = ('sigmoid', 'basic_tanh', 'smart_tanh')
STYLE = {'sgd': ('tab:blue', 'o', 'SGD'), 'sgd-c': ('tab:orange', 's', 'SGD-C'),
         'sgd-cr': ('tab:green', '^', 'SGD-CR')}


def method_of(hparams: dict) -> str:
  for name, clip, alpha in METHOD_ROWS:
    if hparams['optim.clip_norm'] == clip and hparams['reg.omega_alpha'] == alpha:
      return name
  raise ValueError(f'not a Fig. 7 member: {hparams}')


def collect(root: str) -> dict:
  """{(init, method): {length: (solved, members, budget)}} from the runs under root."""
  table: dict = collections.defaultdict(dict)
  for path in sorted(glob.glob(os.path.join(root, '*', 'result.json'))):
    run = os.path.dirname(path)
    with open(path) as f:
      result = json.load(f)
    with open(os.path.join(run, 'config.json')) as f:
      config = json.load(f)
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
  fig.suptitle('Pascanu et al. (2013) Fig. 7, temporal order: fraction of seeds with <1% errors '
               f'on 10,000 sequences (budget {", ".join(f"{b:,}" for b in budgets)} updates)',
               fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def markdown(table: dict) -> str:
  lengths = sorted({l for points in table.values() for l in points})
  lines = ['| init | method | ' + ' | '.join(f'T={l}' for l in lengths) + ' |',
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
