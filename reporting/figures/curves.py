"""Learning curves and gradient norms of finished or running runs, from their
``metrics.jsonl``: one PNG per workdir.

    python -m reporting.figures.curves runs/music/nottingham_all [more workdirs...]

writes ``curves.png`` into each workdir with three panels, one colour per
population member (per method when the population also varies the seed:
then the line style tells the seeds apart and the legend names each method
once):

- the loss, training (thin) and validation (thick, markers); the test loss
  as a star at the step it was scored. In the unit of the papers' tables
  (``loss_unit``): bits per character for Penn Treebank characters (the
  loss / ln 2), negative log-likelihood per frame in nats for music,
  perplexity on a log axis for Penn Treebank words;
- the error rate, the same way;
- the gradient norm before clipping (the mean over each logged chunk, and
  its maximum, faint), on a log scale, with the clipping thresholds as
  black dashed lines: what the clipping of Pascanu et al. (2013) Alg. 1
  acts on.

The x axis counts epochs where the run's budget is ``task.epochs`` and its
validation marks the epochs' ends (``steps_per_epoch``), updates otherwise.
The title names the paper's table and row the run belongs to
(``config.paper``, ``tables.declared``), e.g. "Pascanu et al. Table 1 (polyphonic music),
Nottingham: SGD / SGD+C / SGD+CR", or the task and its length for the
synthetic problems. Members are labelled by what differs between them
(``SGD`` / ``SGD+C`` / ``SGD+CR``, the tables' names, when a run declares
one method per population row, as the ``method=all`` configs do).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import re
import sys
from typing import Callable

import matplotlib

matplotlib.use('Agg')
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

import optim  # noqa: E402
from reporting import tables  # noqa: E402
from training import population as population_lib  # noqa: E402
from datasets import pathological  # noqa: E402
from reporting.figures import cli  # noqa: E402

SEED_STYLES = ('-', '--', ':', '-.')    # line style of each seed, up to 4 seeds


def read_metrics(workdir: str) -> dict:
  """{member: {split: {field: np.ndarray over logged steps}}} from metrics.jsonl.

  Lines of a run that was resumed may repeat steps; the last one wins. A line
  that is not a JSON record (a torn last line of a run killed mid-write, or
  of one still writing) is skipped.
  """
  rows: dict = collections.defaultdict(lambda: collections.defaultdict(dict))
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    for line in f:
      try:
        m = json.loads(line)
      except json.JSONDecodeError:
        continue
      if not isinstance(m, dict) or 'split' not in m or 'step' not in m:
        continue
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


def read_run(workdir: str) -> tuple[dict, dict | None]:
  """(config.json, result.json) of a run; result None for a run still going
  (or a torn record: the config decides)."""
  with open(os.path.join(workdir, 'config.json')) as f:
    config = json.load(f)
  try:
    with open(os.path.join(workdir, 'result.json')) as f:
      return config, json.load(f)
  except (OSError, ValueError):
    return config, None


@dataclasses.dataclass(frozen=True)
class LossUnit:
  """How the loss panel shows the logged loss (nats per scored symbol)."""
  label: str
  convert: Callable[[np.ndarray], np.ndarray]
  log: bool = False


def _nats(x):
  return x


def _bits(x):
  return np.asarray(x, float) / math.log(2.0)


def loss_unit(config: dict, result: dict | None = None) -> LossUnit:
  """The unit of the table the run's numbers go to (``tables.PAPER``'s metric)."""
  name = config.get('task', {}).get('name')
  scored = {k for m in (result or {}).get('members', []) for k in m}
  if name == 'ptb_char' or 'test_bpc' in scored:
    return LossUnit('bits per character', _bits)
  if name == 'ptb_word' or 'test_ppl' in scored:
    return LossUnit('perplexity (per word)', np.exp, log=True)
  if name == 'music':
    return LossUnit('NLL per frame (nats)', _nats)
  return LossUnit('loss', _nats)


def steps_per_epoch(config: dict, metrics: dict) -> int | None:
  """Updates per epoch, where the run counts epochs; else None.

  A run whose budget is ``task.epochs`` and whose validation runs at the end
  of every epoch (``train.eval_every=0``) validates first after exactly one
  epoch; a validation at the end of a step budget cut short of an epoch says
  nothing, nor does a chunk schedule, which changes the epoch.
  """
  task, train = config.get('task', {}), config.get('train', {})
  if not task.get('epochs') or train.get('eval_every') or train.get('chunk_schedule'):
    return None
  steps = sorted({int(s) for splits in metrics.values() if 'valid' in splits
                  for s in splits['valid']['step']})
  budget = train.get('num_steps') or 0
  if not steps or steps[0] <= 0 or (budget and steps[0] >= budget):
    return None
  if any(s % steps[0] for s in steps if not (budget and s >= budget)):
    return None
  return steps[0]


def _method_label(lab: dict, config: dict) -> str | None:
  """The tables' name of a member's method, when the run declares one method
  per population row (``config.paper``, e.g. the ``method=all`` configs);
  else None."""
  try:
    paper = tables.declared(config)
  except Exception:           # nothing declared, or an experiment since removed
    return None
  if len(paper['methods']) < 2:
    return None
  method = tables.member_method(config, paper, lab)
  table = tables.PAPER.get(paper['table'])
  return (table.method_labels if table else tables.METHOD_LABELS).get(method, method.upper())


def _population(config: dict):
  # 'origin' (what made the run: the overrides, with dotted keys) is no config field.
  config = ml_collections.ConfigDict({k: v for k, v in config.items() if k != 'origin'})
  pop = population_lib.make_population(config)
  varied = {k for lab in pop.labels for k in lab
            if len({str(l.get(k)) for l in pop.labels}) > 1}
  return config, pop, varied


def member_labels(config: dict) -> tuple[list[str], list[float]]:
  """Each member's label and clipping threshold (inf: none), from config.json."""
  raw = config
  config, pop, varied = _population(config)
  labels, clips = [], []
  for lab in pop.labels:
    clip = float(lab.get('optim.clip_norm', config.optim.clip_norm))
    clips.append(clip if optim.clips(clip) else np.inf)
    name = _method_label(lab, raw)
    if name is not None:
      rest = [f'seed {lab["seed"]}'] if 'seed' in varied else []
      labels.append(' '.join([name] + rest))
    else:
      labels.append(', '.join(f'{k}={lab[k]:g}' if k != 'seed' else f'seed {lab[k]}'
                              for k in sorted(varied)) or 'run')
  return labels, clips


@dataclasses.dataclass(frozen=True)
class Legend:
  """How members are told apart: ``group[i]`` is member i's colour and legend
  entry (``names[group[i]]``), ``seed[i]`` its seed's index (its line style)."""
  names: list[str]
  group: list[int]
  seed: list[int]
  seeds: list[int]          # the seeds, when the population has several and groups


def legend_of(config: dict) -> Legend:
  """One legend entry per member, or per method (or hyperparameter row) when
  the population also has several seeds: the seeds then share its colour."""
  full, _ = member_labels(config)
  cfg, pop, varied = _population(config)
  others = sorted(varied - {'seed'})
  if 'seed' not in varied or not others:
    return Legend(full, list(range(len(full))), [0] * len(full), [])
  seeds = sorted({lab['seed'] for lab in pop.labels})
  names, group = [], []
  for lab in pop.labels:
    name = _method_label(lab, config) or ', '.join(f'{k}={lab[k]:g}' for k in others)
    if name not in names:
      names.append(name)
    group.append(names.index(name))
  return Legend(names, group, [seeds.index(lab['seed']) for lab in pop.labels], seeds)


def title_of(config: dict, legend: Legend) -> str:
  """The paper's table and row of the run (or its task), and its members."""
  task = config.get('task', {})
  kwargs = task.get('kwargs') or {}
  try:
    paper = tables.declared(config)
  except Exception:           # nothing declared, or an experiment since removed
    paper = dict(table='', row='')
  if paper['table'] in tables.PAPER:
    key, row = paper['table'], paper['row']
    table = tables.PAPER[key]
    authors = f'{key.split("_")[0].capitalize()} et al.'
    number = re.search(r'Table (\d+)', table.title)
    subject = table.title.partition(': ')[2].removesuffix(', test')
    try:
      row_name = tables.row_name(table, row)
    except KeyError:
      row_name = row or str(kwargs)
    head = f'{authors} Table {number.group(1) if number else "?"} ({subject}), {row_name}'
  else:
    name = str(task.get('name', 'run'))
    parts = [name.replace('_', ' ')]
    if name in pathological.TASKS and 'min_length' in task:
      lo, hi = task['min_length'], task.get('max_length', task['min_length'])
      parts.append(f'T = {lo}' if hi == lo else f'T = {lo} to {hi}')
    parts += [f'{k} = {v}' for k, v in sorted(kwargs.items())]
    head = ', '.join(parts)
  names = ' / '.join(legend.names)
  if legend.seeds:
    names += f' ({len(legend.seeds)} seeds each)'
  return f'{head}: {names}'


def _top_without_transient(ax, values: list[np.ndarray], body: list[np.ndarray]) -> None:
  """Lets the curves fill the panel when the first updates' loss is far above
  the rest: the top is set by ``body`` (validation, test and training after its
  first tenth), so early spikes leave the panel instead of flattening it."""
  every = np.concatenate([v[np.isfinite(v)] for v in values] or [np.zeros(0)])
  kept = np.concatenate([v[np.isfinite(v)] for v in body] or [np.zeros(0)])
  if not kept.size or not every.size:
    return
  lo, top = float(every.min()), float(kept.max())
  if every.max() > top + 0.5 * (top - lo):
    ax.set_ylim(lo - 0.05 * (top - lo), top + 0.1 * (top - lo))


def draw(workdir: str):
  """``workdir``'s curves as a matplotlib Figure (the caller closes it).

  Each plotted line carries a gid ``'{panel}:{split}:{member}'`` (panel
  ``loss``, ``error`` or ``grad``) so that tests can find it."""
  config, result = read_run(workdir)
  metrics = read_metrics(workdir)
  _, clips = member_labels(config)
  legend = legend_of(config)
  unit = loss_unit(config, result)
  per_epoch = steps_per_epoch(config, metrics)
  x_of = (lambda s: s / per_epoch) if per_epoch else (lambda s: s)
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  many_seeds = len(legend.seeds) > len(SEED_STYLES)
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
  values = {'loss': [], 'error': []}
  body = {'loss': [], 'error': []}
  for member in sorted(metrics):
    known = member < len(legend.group)
    group = legend.group[member] if known else len(legend.names) + member
    c = colours[group % len(colours)]
    ls = '-' if many_seeds or not known else SEED_STYLES[legend.seed[member]]
    alpha = 0.55 if many_seeds else 1.0
    splits = metrics[member]
    for ax, field in zip(axes[:2], ('loss', 'error')):
      convert = unit.convert if field == 'loss' else _nats
      for split in ('train', 'valid', 'test'):
        if split not in splits or field not in splits[split]:
          continue
        x, y = x_of(splits[split]['step']), convert(splits[split][field])
        if split == 'train':
          ax.plot(x, y, color=c, lw=0.8, ls=ls, alpha=0.6 * alpha, gid=f'{field}:train:{member}')
          body[field].append(y[len(y) // 10:])
        elif split == 'valid':
          ax.plot(x, y, color=c, lw=2, ls=ls, marker='o', ms=3, alpha=alpha,
                  gid=f'{field}:valid:{member}')
          body[field].append(y)
        else:
          ax.plot(x, y, color=c, marker='*', ms=12, ls='none', mec='black', mew=0.5,
                  gid=f'{field}:test:{member}')
          body[field].append(y)
        values[field].append(y)
    if 'train' in splits and 'grad_norm' in splits['train']:
      tr = splits['train']
      axes[2].plot(x_of(tr['step']), tr['grad_norm'], color=c, lw=1.2, ls=ls, alpha=alpha,
                   gid=f'grad:train:{member}')
      if 'grad_norm_max' in tr:
        axes[2].plot(x_of(tr['step']), tr['grad_norm_max'], color=c, lw=0.6, ls=ls,
                     alpha=0.3 * alpha, gid=f'grad_max:train:{member}')
  # Thresholds in black, once each: members of one threshold share its line.
  for clip in sorted({c for c in clips if np.isfinite(c)}):
    axes[2].axhline(clip, color='black', ls=(0, (6, 3)), lw=1)
    axes[2].annotate(f'threshold {clip:g}', (1, clip), xycoords=('axes fraction', 'data'),
                     xytext=(-4, 3), textcoords='offset points', ha='right', fontsize=8)
  for field, ax in zip(('loss', 'error'), axes[:2]):
    if not (unit.log and field == 'loss'):
      _top_without_transient(ax, values[field], body[field])
    if not any(np.isfinite(v).any() for v in values[field]):
      ax.text(0.5, 0.5, f'no {field} recorded', transform=ax.transAxes, ha='center',
              color='grey')
  axes[0].set_ylabel(unit.label)
  if unit.log:
    axes[0].set_yscale('log')
  axes[1].set_ylabel('error rate')
  axes[2].set_ylabel('gradient norm before clipping')
  axes[2].set_yscale('log')
  axes[0].set_title('thin: training, thick: validation, star: test', fontsize=9)
  axes[1].set_title('thin: training, thick: validation, star: test', fontsize=9)
  axes[2].set_title('mean per logged chunk (faint: its max); black: clipping threshold',
                    fontsize=9)
  for ax in axes:
    ax.set_xlabel('epoch' if per_epoch else 'update')
    ax.grid(alpha=0.3)
  present = sorted({legend.group[m] for m in metrics if m < len(legend.group)})
  handles = [matplotlib.lines.Line2D([], [], color=colours[g % len(colours)], lw=2,
                                     label=legend.names[g]) for g in present]
  if legend.seeds and not many_seeds:
    handles += [matplotlib.lines.Line2D([], [], color='grey', lw=1.5, ls=SEED_STYLES[i],
                                        label=f'seed {s}') for i, s in enumerate(legend.seeds)]
  if handles:
    axes[0].legend(handles=handles, fontsize=8, loc='best',
                   title=(f'{len(legend.seeds)} seeds each (faint)' if many_seeds else None),
                   title_fontsize=8)
  fig.suptitle(title_of(config, legend), fontsize=12)
  fig.text(0.995, 0.005, f'run: {os.path.basename(os.path.normpath(workdir))}', ha='right',
           va='bottom', fontsize=7, color='grey')
  fig.tight_layout()
  return fig


def plot_run(workdir: str, out: str | None = None) -> str:
  """Draws ``workdir``'s curves into ``out`` (default ``workdir/curves.png``);
  returns the PNG's path."""
  fig = draw(workdir)
  out = out or os.path.join(workdir, 'curves.png')
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return out


def main(argv: list[str]) -> None:
  if not argv:
    sys.exit('usage: python -m reporting.figures.curves WORKDIR [WORKDIR...]')
  for workdir in argv:
    if not os.path.exists(os.path.join(workdir, 'metrics.jsonl')):
      sys.exit(f'{workdir}: no metrics.jsonl (not a run folder)')
    print(plot_run(workdir))


if __name__ == '__main__':
  cli(main, sys.argv[1:])
