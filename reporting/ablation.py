"""An ablation's table: the full recipe, then each ingredient taken out.

A folder is an ablation when it holds ``ablation.json``::

    {"title": "...", "reference": "full", "rows": [["full", "the recipe"],
                                                  ["no_layer_norm", "no layer norm"], ...]}

(``orchestration/reproduce.py`` writes it for a target whose figure is
'ablation'), and one finished run per row in ``<folder>/<name>``. Each row
gives the test score at each member's lowest validation loss, as the mean
and standard deviation over the run's members (its seeds), and the change
from the reference row's mean. ``launch.py table --workdir=<folder>`` prints
it beside the papers' tables.
"""

from __future__ import annotations

import json
import math
import os

from training import records

MARKER = 'ablation.json'


def is_ablation(folder: str) -> bool:
  return os.path.exists(os.path.join(folder, MARKER))


def write_marker(folder: str, title: str, rows: list[tuple[str, str]], reference: str) -> None:
  if reference not in [name for name, _ in rows]:
    raise ValueError(f'the reference row {reference!r} is not one of the rows')
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, MARKER), 'w') as f:
    json.dump({'title': title, 'reference': reference, 'rows': [list(r) for r in rows]}, f,
              indent=1)


def _mean_sd(xs: list[float]) -> tuple[float, float]:
  mean = sum(xs) / len(xs)
  sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
  return mean, sd


def rows_of(folder: str) -> tuple[dict, list[dict]]:
  """The marker and one dict per row (``test`` None where the run has not finished)."""
  path = os.path.join(folder, MARKER)
  marker = records.read_json(path)
  if not isinstance(marker, dict) or not marker.get('rows'):
    raise ValueError(f'{path} is missing, empty or torn')
  if not all(isinstance(r, (list, tuple)) and len(r) == 2 for r in marker['rows']):
    raise ValueError(f'{path}: rows must be [name, label] pairs')
  if marker.get('reference') not in [name for name, _ in marker['rows']]:
    raise ValueError(f'{path}: its reference row {marker.get("reference")!r} is not one of its rows')
  nan = float('nan')
  at = lambda m, key: nan if m.get(key) is None else float(m[key])   # none: it never validated
  out = []
  for name, label in marker['rows']:
    result = records.read_json(os.path.join(folder, name, 'result.json'))
    row = dict(name=name, label=label, test=None, sd=None, tests=[], valid=None, members=0,
               best_steps=[], steps=None, wall_time_s=None)
    if result and result.get('members'):
      members = result['members']
      tests = [at(m, 'test_loss_at_best_valid') for m in members]
      test, sd = _mean_sd(tests)
      row.update(test=test, sd=sd, members=len(members), tests=tests,
                 valid=_mean_sd([at(m, 'best_valid_loss') for m in members])[0],
                 best_steps=[m.get('best_valid_step') for m in members],
                 steps=result.get('step'), wall_time_s=result.get('wall_time_s'),
                 diverged=sum(bool(m.get('diverged')) for m in members))
    out.append(row)
  ref = next(r for r in out if r['name'] == marker['reference'])
  for r in out:
    r['change'] = (None if r['test'] is None or ref['test'] is None
                   else r['test'] - ref['test'])
  return marker, out


def markdown(marker: dict, rows: list[dict]) -> str:
  lines = [f'#### {marker.get("title", "Ablation")}', '',
           f'test at each member\'s lowest validation loss, mean ± sd over the members (seeds); '
           f'change against the row "{marker["reference"]}".', '',
           '| row | test | change | valid | members | best valid at step | wall time |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    if r['test'] is None:
      lines.append(f'| {r["label"]} (`{r["name"]}`) | not run yet | | | | | |')
      continue
    change = '' if r['name'] == marker['reference'] else f'{r["change"]:+.3f}'
    minutes = '' if r['wall_time_s'] is None else f'{r["wall_time_s"] / 60:.1f} min'
    members = f'{r["members"]}' + (f' ({r["diverged"]} diverged)' if r.get('diverged') else '')
    lines.append(f'| {r["label"]} (`{r["name"]}`) | {r["test"]:.3f} ± {r["sd"]:.3f} | {change} | '
                 f'{r["valid"]:.3f} | {members} | {", ".join(map(str, r["best_steps"]))} | '
                 f'{minutes} |')
  return '\n'.join(lines) + '\n'


def main(folder: str) -> str:
  return markdown(*rows_of(folder))
