"""Learning curves and gradient norms of finished or running runs, from their
``metrics.jsonl``: one PNG per workdir.

    python -m figures.curves runs/music/nottingham_all [more workdirs...]

writes ``curves.png`` into each workdir with three panels against the
update step, one colour per population member:

- the loss, training (thin) and validation (thick, markers); the test loss
  as a star at the last step when the run has finished;
- the error rate, the same way;
- the gradient norm before clipping (the mean over each logged chunk, and
  its maximum, dotted), on a log scale, with each member's clipping
  threshold as a dashed line: what the clipping of Pascanu et al. (2013)
  Alg. 1 acts on.

Members are labelled by what differs between them (``SGD`` / ``SGD-C`` /
``SGD-CR`` when a population varies the clipping threshold and Omega's
weight, as the ``method=all`` configs do).
"""

from __future__ import annotations

import collections
import json
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

import population as population_lib  # noqa: E402
from experiments import common  # noqa: E402

def read_metrics(workdir: str) -> dict:
  """{member: {split: {field: np.ndarray over logged steps}}} from metrics.jsonl.

  Lines of a run that was resumed may repeat steps; the last one wins.
  """
  rows: dict = collections.defaultdict(lambda: collections.defaultdict(dict))
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    for line in f:
      if not line.strip():
        continue
      m = json.loads(line)
      rows[m.get('member', 0)][m['split']][m['step']] = m
  out = {}
  for member, splits in rows.items():
    out[member] = {}
    for split, by_step in splits.items():
      steps = sorted(by_step)
      fields = {k for m in by_step.values() for k, v in m.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
      out[member][split] = {k: np.array([by_step[s].get(k, np.nan) for s in steps], float)
                            for k in fields}
  return out


def member_labels(config: dict) -> tuple[list[str], list[float]]:
  """Each member's label and clipping threshold (inf: none), from config.json."""
  config = ml_collections.ConfigDict(config)
  pop = population_lib.make_population(config)
  varied = {k for lab in pop.labels for k in lab
            if len({str(l.get(k)) for l in pop.labels}) > 1}
  labels, clips = [], []
  for lab in pop.labels:
    clip = float(lab.get('optim.clip_norm', config.optim.clip_norm))
    alpha = float(lab.get('reg.omega_alpha', config.reg.omega_alpha))
    method = common.method_name(clip, alpha)
    clips.append(np.inf if method == 'sgd' else clip)
    if {'optim.clip_norm', 'reg.omega_alpha'} <= set(lab):
      name = method.upper()
      rest = [f'seed {lab["seed"]}'] if 'seed' in varied else []
      labels.append(' '.join([name] + rest))
    else:
      labels.append(', '.join(f'{k}={lab[k]:g}' if k != 'seed' else f'seed {lab[k]}'
                              for k in sorted(varied)) or 'run')
  return labels, clips


def plot_run(workdir: str, out: str | None = None) -> str:
  """Draws ``workdir``'s curves; returns the PNG's path."""
  with open(os.path.join(workdir, 'config.json')) as f:
    config = json.load(f)
  metrics = read_metrics(workdir)
  labels, clips = member_labels(config)
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  for member in sorted(metrics):
    c = colours[member % len(colours)]
    splits = metrics[member]
    label = labels[member] if member < len(labels) else f'member {member}'
    for ax, field in zip(axes[:2], ('loss', 'error')):
      if 'train' in splits:
        ax.plot(splits['train']['step'], splits['train'][field], color=c, lw=0.8, alpha=0.6)
      if 'valid' in splits:
        ax.plot(splits['valid']['step'], splits['valid'][field], color=c, lw=2, marker='o',
                ms=3, label=label)
      if 'test' in splits:
        ax.plot(splits['test']['step'], splits['test'][field], color=c, marker='*', ms=12,
                ls='none')
    if 'train' in splits and 'grad_norm' in splits['train']:
      tr = splits['train']
      axes[2].plot(tr['step'], tr['grad_norm'], color=c, lw=1, label=label)
      axes[2].plot(tr['step'], tr['grad_norm_max'], color=c, lw=0.8, ls=':')
      if np.isfinite(clips[member] if member < len(clips) else np.inf):
        axes[2].axhline(clips[member], color=c, ls='--', lw=1)
  axes[0].set_ylabel('loss (thin: train, thick: valid, star: test)')
  axes[1].set_ylabel('error rate')
  axes[2].set_ylabel('gradient norm before clipping\n(solid: mean, dotted: max, dashed: threshold)')
  axes[2].set_yscale('log')
  for ax in axes:
    ax.set_xlabel('update')
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  task = config.get('task', {})
  fig.suptitle(f'{os.path.basename(os.path.normpath(workdir))}: {task.get("name", "")} '
               f'{task.get("kwargs", {}) or ""}')
  fig.tight_layout()
  out = out or os.path.join(workdir, 'curves.png')
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return out


def main(argv: list[str]) -> None:
  if not argv:
    sys.exit('usage: python -m figures.curves WORKDIR [WORKDIR...]')
  for workdir in argv:
    if not os.path.exists(os.path.join(workdir, 'metrics.jsonl')):
      sys.exit(f'{workdir}: no metrics.jsonl (not a run folder)')
    print(plot_run(workdir))


if __name__ == '__main__':
  main(sys.argv[1:])
