"""Each member's training NLL near its selection: the mean of the logged
training losses (``split='train'`` lines of ``metrics.jsonl``) over the
updates in the ``--window`` before its best validation step
(``result.json``), beside its mean over the last 20 lines. RESULTS.md
compares these with the training column of Pascanu et al.'s Table 1.

    python scripts/train_nll_at_selection.py results/pascanu2013_table1/piano \
        results/pascanu2013_table1/musedata [--window=3000]
"""
import argparse
import json
import os

import numpy as np


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('runs', nargs='+')
  parser.add_argument('--window', type=int, default=3000)
  args = parser.parse_args()
  for run in args.runs:
    with open(os.path.join(run, 'metrics.jsonl')) as f:
      rows = [json.loads(line) for line in f]
    with open(os.path.join(run, 'result.json')) as f:
      members = json.load(f)['members']
    for i, m in enumerate(members):
      train = [(r['step'], r['loss']) for r in rows
               if r['split'] == 'train' and r.get('member', 0) == i and 'loss' in r]
      best = m['best_valid_step']
      near = [loss for step, loss in train if best - args.window < step <= best]
      print(f'{run} member {i} {m["hparams"]}: best valid at step {best}, training NLL there '
            f'{np.mean(near):.2f}, over the last 20 lines {np.mean([l for _, l in train[-20:]]):.2f}')


if __name__ == '__main__':
  main()
