"""Random searches at a glance: every trial's validation score against its
learning rate, one panel per table row (dataset), one colour per method.

    python -m reporting.figures.search results/bengio2013_table1 [more folders...]

reads the ``sweep.json`` of every search under each folder (``launch.py
sweep`` writes one per search, e.g. ``results/bengio2013_table1/jsb_c``) and
writes ``search.png`` into the folder. A search still running (no sweep.json
yet) is drawn from the units it has finished, its panel titled with how many
of its trials that is. Each trial is a point: x its learning
rate (log), y its validation score at its best epoch (what the search selects
on; in the papers' unit where the trials record it: bits per character for
PTB characters, perplexity for words), the marker's size its hidden units. The trial a search selects (its
lowest validation) is ringed; the table reports its test score. Diverged
trials sit on the panel's top edge as crosses. What a search is (which table,
row and method) is read from its units' ``config.json``
(``reporting.tables.declared``), so the method names are the tables'; a
search at a reduced budget (``reporting.tables.reduced``, e.g. 2 of 30
epochs a trial) says so in its panel's title.

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
import ml_collections

matplotlib.use('Agg')  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402

from reporting import tables  # noqa: E402
from training import records  # noqa: E402
from reporting.figures import cli  # noqa: E402


# The papers' units a trial's validation may be recorded in beside the loss
# (``orchestration.sweep.REPORTED_AS``; not imported here, it brings JAX).
PAPER_UNITS = ('bpc', 'ppl')


@dataclasses.dataclass(frozen=True)
class Trial:
  learning_rate: float
  valid: float          # NaN when diverged
  hidden: int | None
  diverged: bool
  selected: bool
  in_unit: tuple = ()   # (unit, value): the validation in one of PAPER_UNITS, where recorded
  reduced: str = ''     # its search's cut budget (``tables.reduced``), '' for the full one

  def score(self, unit: str) -> float:
    """Its validation in ``unit`` ('loss' or one of PAPER_UNITS)."""
    return self.valid if unit == 'loss' else (
        self.in_unit[1] if self.in_unit and self.in_unit[0] == unit else math.nan)


def searches(folder: str) -> dict:
  """{row name: {method label: [Trial]}} of every search under ``folder``,
  rows and methods in the tables' order; a search still running with the
  trials it has finished."""
  return _collect(folder)[0]


def _hidden(structural: dict) -> int | None:
  """The hidden units a trial's structural values set, also where a key sets
  several fields together (``model.num_layers+model.hidden_size``: (2, 312))."""
  for key, value in structural.items():
    fields = key.split('+')
    if 'model.hidden_size' in fields:
      return int(value[fields.index('model.hidden_size')] if len(fields) > 1 else value)
  return None


def _so_far(search_dir: str, config: dict) -> dict:
  """What ``sweep.json`` will hold, from the units a search still running has
  finished (``sweep.summarize``, as the sweep writes it at its end)."""
  from orchestration import sweep   # imports JAX: only for a search still running
  units = []
  for path in sorted(glob.glob(os.path.join(search_dir, 'g[0-9][0-9]_*', 'part*', 'result.json'))):
    unit_dir = os.path.dirname(path)
    unit_config = records.read_json(os.path.join(unit_dir, 'config.json'))
    hidden = (unit_config.get('model') or {}).get('hidden_size') if isinstance(unit_config, dict) else None
    units.append(sweep.Unit(os.path.basename(os.path.dirname(unit_dir)),
                            (('model.hidden_size', hidden),) if hidden else (), (), (),
                            int(os.path.basename(unit_dir)[len('part'):])))
  select = (config.get('sweep') or {}).get('select', 'loss')
  return sweep.summarize(ml_collections.ConfigDict({'sweep': {'select': select}}), search_dir, units)


def _collect(folder: str) -> tuple[dict, dict, list]:
  """``searches(folder)``, {row: {method: (trials finished, planned)}} of
  the searches still running, and the searches that fill no paper table."""
  out: dict = {}
  unfinished: dict = {}
  off_table = []
  dirs = {os.path.dirname(p) for p in glob.glob(os.path.join(folder, '**', 'sweep.json'),
                                                recursive=True)}
  dirs |= {os.path.dirname(os.path.dirname(os.path.dirname(p))) for p in glob.glob(
      os.path.join(folder, '**', 'g[0-9][0-9]_*', 'part*', 'config.json'), recursive=True)}
  for search_dir in sorted(dirs):
    configs = sorted(glob.glob(os.path.join(search_dir, '*', '*', 'config.json')))
    config = records.read_json(configs[0]) if configs else None
    if not isinstance(config, dict):
      continue
    sweep = records.read_json(os.path.join(search_dir, 'sweep.json'))
    if not (isinstance(sweep, dict) and sweep.get('trials')):
      sweep = _so_far(search_dir, config)
    if not sweep.get('trials'):
      continue
    paper = tables.declared(config)
    table = tables.PAPER.get(paper['table'])
    if table is None or not paper['methods']:
      off_table.append(search_dir)
      continue
    row = tables.row_name(table, paper['row'])
    method = table.method_labels.get(paper['methods'][0], paper['methods'][0])
    best = (sweep.get('best') or {})
    cut = tables.reduced(config)
    trials = []
    for t in sweep['trials']:
      lr = t.get('hparams', {}).get('optim.learning_rate')
      if lr is None:
        continue                  # a search that does not draw the learning rate
      valid = t.get('valid')
      in_unit = next(((u, float(t[f'valid_{u}'])) for u in PAPER_UNITS
                      if isinstance(t.get(f'valid_{u}'), (int, float))), ())
      trials.append(Trial(float(lr), math.nan if valid is None else float(valid),
                          _hidden(t.get('structural', {})), bool(t.get('diverged')),
                          t.get('unit') == best.get('unit') and t.get('hparams') == best.get('hparams'),
                          in_unit, cut))
    if not trials:
      continue
    out.setdefault(row, {})[method] = trials
    planned = tables.planned_trials(config)
    if not os.path.exists(os.path.join(search_dir, 'sweep.json')) and len(trials) < planned:
      unfinished.setdefault(row, {})[method] = (len(trials), planned)
  method_order = {m: i for t in tables.PAPER.values()
                  for i, m in enumerate(t.method_labels.values())}
  row_order = {tables.row_name(t, r): (i, j) for i, t in enumerate(tables.PAPER.values())
               for j, r in enumerate(t.rows)}
  return ({row: dict(sorted(by.items(), key=lambda kv: method_order.get(kv[0], 99)))
           for row, by in sorted(out.items(), key=lambda kv: row_order.get(kv[0], (99, 99)))},
          unfinished, off_table)


def y_scale(scores: list[float]) -> str:
  """'log' where a panel's finite scores are positive and span a decade or
  more (the adding problem's MSE: 4e-6 to 2e-4 for the trials that learned
  it, 0.17 for any left on the plateau), else 'linear' (NLL, bpc: within a
  factor of 1.5)."""
  scored = [v for v in scores if math.isfinite(v)]
  return 'log' if scored and min(scored) > 0 and max(scored) >= 10 * min(scored) else 'linear'


def panel_unit(trials: list[Trial]) -> str:
  """The unit a panel's trials are drawn in: a paper unit every trial that
  scored records (bpc for PTB characters), else the loss."""
  scored = [t for t in trials if math.isfinite(t.valid)]
  units = {t.in_unit[0] if t.in_unit else 'loss' for t in scored}
  return units.pop() if len(units) == 1 else 'loss'


def panel_notes(by_method: dict, running: dict) -> list[str]:
  """A panel's title lines under its row: the searches still running ({method:
  (finished, planned)}) and the reduced budgets, each budget named once with the
  methods it applies to (the panels are narrow)."""
  so_far = [f'{m} {running[m][0]} of {running[m][1]}' for m in by_method if m in running]
  cuts: dict[str, list[str]] = {}
  for m, trials in by_method.items():
    if trials[0].reduced:
      cuts.setdefault(trials[0].reduced, []).append(m)
  budgets = '; '.join(f'{cut} ({", ".join(methods)})' for cut, methods in cuts.items())
  return ([f'running; trials so far: {", ".join(so_far)}'] if so_far else []) + (
      [f'reduced budget a trial: {budgets}'] if cuts else [])


def draw(folder: str, out: str | None = None) -> str:
  """Writes the panels of ``searches(folder)`` to ``out`` (default
  ``folder/search.png``) and returns its path."""
  found, unfinished, off_table = _collect(folder)
  if not found and off_table:
    raise FileNotFoundError(f'the searches under {folder} fill no paper table (tables.PAPER); '
                            'the figure draws those')
  if not found:
    raise FileNotFoundError(f'no search (sweep.json or finished units, with learning-rate trials) under {folder}')
  methods = list(dict.fromkeys(m for by in found.values() for m in by))   # the tables' order
  colour = {m: f'C{i}' for i, m in enumerate(methods)}                    # one per method
  size = lambda t: 12 + 0.1 * (t.hidden or 100)
  fig, axes = plt.subplots(1, len(found), figsize=(max(6.5, 4.2 * len(found)), 3.8), squeeze=False)
  for ax, (row, by_method) in zip(axes[0], found.items()):
    unit = panel_unit([t for ts in by_method.values() for t in ts])
    scored = [t.score(unit) for ts in by_method.values() for t in ts
              if math.isfinite(t.score(unit))]
    top = max(scored) if scored else 1.0
    for method, trials in by_method.items():
      ok = [t for t in trials if not t.diverged and math.isfinite(t.score(unit))]
      ax.scatter([t.learning_rate for t in ok], [t.score(unit) for t in ok],
                 s=[size(t) for t in ok], color=colour[method], alpha=0.75)
      for t in ok:
        if t.selected:
          ax.scatter([t.learning_rate], [t.score(unit)], s=size(t) * 4, facecolors='none',
                     edgecolors=colour[method], linewidths=1.5)
      bad = [t for t in trials if t not in ok]
      ax.scatter([t.learning_rate for t in bad], [top] * len(bad), marker='x',
                 color=colour[method])
    ax.set_xscale('log')
    ax.set_yscale(y_scale(scored))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    notes = panel_notes(by_method, unfinished.get(row, {}))
    ax.set_title('\n'.join([row] + notes), fontsize=9 if notes else None)
    ax.set_xlabel('learning rate')
    ax.grid(alpha=0.3)
    ax.set_ylabel(f'validation {unit} at the best epoch')
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
