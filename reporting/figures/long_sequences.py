"""Learning curves of the long-sequence study (Muccino 2019; ``experiments/long_sequences.py``)
side by side, and a table of final losses.

    python -m reporting.figures.long_sequences ROOT [OUT.png]

reads every run folder under ``ROOT`` (``config.json`` + ``metrics.jsonl``),
and draws one column per optimiser (SGD, RMSprop, Adam) with, in each, the
runs with and without clipping and with and without the chunk-length
schedule: the training loss (the mean of each epoch's updates; lines that
span several epochs as logged) on top, the validation loss (whole series, state carried) below, against
epochs (passes over the training series; an epoch of n chunks per series is
n updates). Default output ``ROOT/long_sequences.png``. It also
prints a Markdown table of each member's last training loss, last
validation loss, and test loss at the end and at its lowest validation loss
(from ``result.json``).
"""

from __future__ import annotations

import json
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import optim  # noqa: E402
from reporting.figures.curves import read_metrics  # noqa: E402
from reporting.figures import cli  # noqa: E402

OPTIMIZERS = ('sgd', 'rmsprop', 'adam')
TITLES = {'sgd': 'SGD', 'rmsprop': 'RMSprop', 'adam': 'Adam'}


def step_to_epoch(config: dict, steps: np.ndarray) -> np.ndarray:
  """Epochs done after ``steps`` updates, from the run's chunk lengths and schedule."""
  length = config['task']['kwargs']['length']
  schedule = [tuple(p) for p in config['train'].get('chunk_schedule') or ()]
  if not schedule:
    schedule = [(0, config['task']['chunk'])]
  steps = np.asarray(steps, float)
  epochs = np.zeros_like(steps)
  for i, (start, chunk) in enumerate(schedule):
    end = schedule[i + 1][0] if i + 1 < len(schedule) else np.inf
    epochs += np.clip(np.minimum(steps, end) - start, 0, None) * chunk / length
  return epochs


def per_epoch(epoch: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Logged training losses averaged over each epoch (lines that end in (e - 1, e]).

  With short chunks a logged line covers a stretch of the series, and the
  loss depends on where in the series it is; the epoch's mean does not.
  Lines that span more than an epoch are kept as they are."""
  bins = np.ceil(np.round(epoch, 9)).astype(int)
  keys = np.unique(bins)
  return keys.astype(float), np.array([np.mean(loss[bins == k]) for k in keys])


def runs(root: str) -> list[dict]:
  """Each run folder under ``root``, one entry per member:
  {name, optimizer, schedule, clip, split -> {'epoch', 'loss'}, result}."""
  out = []
  for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    if not os.path.exists(os.path.join(d, 'metrics.jsonl')):
      continue
    with open(os.path.join(d, 'config.json')) as f:
      config = json.load(f)
    result = None
    if os.path.exists(os.path.join(d, 'result.json')):
      with open(os.path.join(d, 'result.json')) as f:
        result = json.load(f)
    rows = config['population'].get('rows') or ()
    names = config['population'].get('hparams') or ()
    metrics = read_metrics(d)
    for member in sorted(metrics):
      hp = dict(zip(names, rows[member])) if rows else {}
      clip = float(hp.get('optim.clip_norm', config['optim']['clip_norm']))
      curves = {split: dict(epoch=step_to_epoch(config, m['step']), loss=m['loss'])
                for split, m in metrics[member].items()}
      if 'train' in curves:
        curves['train_epoch'] = dict(zip(('epoch', 'loss'), per_epoch(**curves['train'])))
      out.append(dict(name=name, member=member, optimizer=config['optim']['name'],
                      schedule=bool(config['train'].get('chunk_schedule')),
                      clip=clip if optim.clips(clip) else None, curves=curves,
                      result=result['members'][member] if result else None,
                      wall=result['wall_time_s'] if result else None))
  return out


def label(r: dict) -> str:
  return ((f'clip {r["clip"]:g}' if r['clip'] else 'no clip')
          + (', chunks 100/50/10/2/1' if r['schedule'] else ', whole series'))


def plot(root: str, out: str) -> str:
  rs = runs(root)
  fig, axes = plt.subplots(2, 3, figsize=(16, 8), sharex='col')
  styles = {(False, False): ('tab:blue', '-'), (True, False): ('tab:orange', '-'),
            (False, True): ('tab:green', '--'), (True, True): ('tab:red', '--')}
  for j, opt in enumerate(OPTIMIZERS):
    for r in (r for r in rs if r['optimizer'] == opt):
      colour, ls = styles[(r['clip'] is not None, r['schedule'])]
      for i, split in enumerate(('train_epoch', 'valid')):
        c = r['curves'].get(split)
        if c is not None:
          axes[i, j].plot(c['epoch'], c['loss'], color=colour, ls=ls, lw=1.2, label=label(r),
                          marker='o' if split == 'valid' else None, ms=3)
    axes[0, j].set_title(TITLES[opt])
    axes[1, j].set_xlabel('epoch (passes over the training series)')
    for i in range(2):
      axes[i, j].set_yscale('log')
      axes[i, j].grid(alpha=0.3, which='both')
    if axes[0, j].get_legend_handles_labels()[0]:
      axes[0, j].legend(fontsize=8)
    else:                       # an optimiser not run (yet)
      axes[0, j].text(0.5, 0.5, 'not run', transform=axes[0, j].transAxes, ha='center')
  axes[0, 0].set_ylabel('training loss per epoch (MSE, normalised targets)')
  axes[1, 0].set_ylabel('validation loss (whole series)')
  fig.suptitle('Muccino (2019) long-sequence study: 2 dense + 2 LSTM layers, '
               'discounted future returns of a synthetic series')
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return out


def table(root: str) -> str:
  """Markdown table: last train / valid loss, test loss at the end and at the best valid."""
  lines = ['| run | optimiser | clip | schedule | epochs | last train loss | last valid loss '
           '| test loss (end) | best valid loss (epoch) | test loss at best valid | wall s |',
           '|---|---|---|---|---|---|---|---|---|---|---|']
  for r in runs(root):
    tr, va, res = r['curves'].get('train'), r['curves'].get('valid'), r['result'] or {}
    fmt = lambda x: f'{x:.4f}' if isinstance(x, (int, float)) and x is not None else '-'
    best_epoch = '-'
    if res.get('best_valid_step') is not None and va is not None:
      best_epoch = f'{va["epoch"][np.argmin(va["loss"])]:.0f}'
    lines.append(
        f'| {r["name"]}/{r["member"]} | {TITLES[r["optimizer"]]} | '
        f'{r["clip"] if r["clip"] else "off"} | {"on" if r["schedule"] else "off"} | '
        f'{tr["epoch"][-1]:.0f} | {fmt(tr["loss"][-1])} | '
        f'{fmt(va["loss"][-1]) if va is not None else "-"} | {fmt(res.get("test_loss"))} | '
        f'{fmt(res.get("best_valid_loss"))} ({best_epoch}) | '
        f'{fmt(res.get("test_loss_at_best_valid"))} | '
        + (f'{r["wall"]:.0f} |' if r['wall'] else '- |'))
  return '\n'.join(lines)


def main(argv: list[str]) -> None:
  if not argv:
    sys.exit('usage: python -m reporting.figures.long_sequences ROOT [OUT.png]')
  if not runs(argv[0]):
    raise FileNotFoundError(f'no runs (config.json and metrics.jsonl) under {argv[0]}')
  out = argv[1] if len(argv) > 1 else os.path.join(argv[0], 'long_sequences.png')
  print(plot(argv[0], out))
  print(table(argv[0]))


if __name__ == '__main__':
  cli(main, sys.argv[1:])
