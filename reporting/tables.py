"""The papers' tables with our numbers beside them.

    python launch.py table --workdir=runs/music[,runs/ptb...]

finds every finished run (``result.json``) under the given folders, sorts
its members into the cells of the papers' tables, and prints each table as
Markdown: the paper's number, ours, the difference, our best validation
number and the run that produced the cell. A table none of the runs fills is
left out of the Markdown (the CSV keeps every paper cell). It also writes ``tables.md`` and
``tables.csv`` into the first folder.

``PAPER`` below is the one place the papers' numbers live in the code, each
with its source, table and row (copied from
``../shared/references/published_numbers.md``).

Our number is the test score at the member's lowest validation loss (the
trainer keeps those parameters: select on validation, report on test, as
the papers do); the test score of the final parameters is shown beside it,
and older runs without the selection show the final one only. Where several
runs fill one cell (a sweep's trials), the Markdown shows the one with the
lowest validation score, and the CSV all of them. A member the trainer marked
diverged (``train.diverged_why``) is flagged where it is shown, and chosen
only when no other run fills its cell. Smoke runs never fill a cell; the runs
left out are listed after the tables, each with the reason, among them a
run whose task was changed after it declared its row (an override flag) or
whose model is over the row's size (``training.records.not_filed_why``). A run given less
than the budget its experiment declares for the paper (``config.paper.budget``)
is labelled "reduced budget", with what was cut.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import glob
import io
import json
import math
import os
import re

from orchestration import reproduce
from reporting import ablation
from training import records

METHOD_LABELS = {'sgd': 'SGD', 'sgd-c': 'SGD+C', 'sgd-cr': 'SGD+CR', 'sgd-cl': 'SGD+CL',
                 'sgd-clr': 'SGD+CLR'}
# Bengio et al.'s Table 1 rows (experiments/music_bengio.py method names)
MUSIC_ROWS = {'sgd': 'RNN (SGD)', 'c': 'RNN (SGD+C)', 'cl': 'RNN (SGD+CL)',
              'clr': 'RNN (SGD+CLR)', 'crm': 'RNN (SGD+CRM)', 'nade-sgd': 'RNN-NADE (SGD)',
              'nade-cr': 'RNN-NADE (SGD+CR)', 'nade-crm': 'RNN-NADE (SGD+CRM)'}


@dataclasses.dataclass(frozen=True)
class PaperTable:
  """One table of a paper: its rows' numbers by method, and their source."""
  key: str
  title: str
  metric: str
  source: str
  rows: dict           # row key -> {method: number or None (not reported)}
  row_names: dict      # row key -> what the row is, as the paper names it
  alternative: dict = dataclasses.field(default_factory=dict)   # row -> {method: number}
  alternative_source: str = ''
  method_labels: dict = dataclasses.field(default_factory=lambda: METHOD_LABELS)
  result_key: str = 'test_loss'   # the member's number in result.json
  row_result_keys: dict = dataclasses.field(default_factory=dict)   # row -> its own result_key
  paper_label: str = 'paper'      # the column of the published numbers
  number_format: str = '.2f'      # how the numbers are printed
  accuracy_key: str = ''          # a second metric: 1 - this key of result.json, in percent

  def result_key_of(self, row: str) -> str:
    """The member's number in result.json for ``row`` (a companion row: its base row's)."""
    return self.row_result_keys.get(row.partition('/')[0], self.result_key)


PAPER = {t.key: t for t in (
    PaperTable(
        key='pascanu_table1',
        title='Pascanu, Mikolov, Bengio (2013), Table 1: polyphonic music, test',
        metric='negative log-likelihood per frame (nats)',
        source='arXiv:1211.5063v2, Table 1, test rows',
        rows={'piano': {'sgd': 7.56, 'sgd-c': 7.53, 'sgd-cr': 7.46},
              'nottingham': {'sgd': 3.80, 'sgd-c': 3.48, 'sgd-cr': 3.46},
              'musedata': {'sgd': 7.11, 'sgd-c': 7.00, 'sgd-cr': 6.99}},
        row_names={'piano': 'Piano-midi.de', 'nottingham': 'Nottingham',
                   'musedata': 'MuseData'},
        # The ICML proceedings differ in the SGD+CR column only.
        alternative={'piano': {'sgd': 7.56, 'sgd-c': 7.53, 'sgd-cr': 7.46},
                     'nottingham': {'sgd': 3.80, 'sgd-c': 3.48, 'sgd-cr': 3.36},
                     'musedata': {'sgd': 7.11, 'sgd-c': 7.00, 'sgd-cr': 6.97}},
        alternative_source='ICML 2013 proceedings (PMLR v28), merged Table 1, SGD+CR test'),
    PaperTable(
        key='pascanu_table2',
        title='Pascanu, Mikolov, Bengio (2013), Table 2: Penn Treebank characters, test',
        metric='bits per character',
        source='arXiv:1211.5063v2, Table 2, test rows',
        rows={'ahead1': {'sgd': 1.50, 'sgd-c': 1.42, 'sgd-cr': 1.41},
              'ahead5': {'sgd': None, 'sgd-c': 3.89, 'sgd-cr': 3.74}},
        row_names={'ahead1': 'next character', 'ahead5': '5th character ahead'},
        result_key='test_bpc'),
    # Bengio et al.'s Tables 1 and 2 values were not found in any source we have
    # (published_numbers.md): every cell is None, and our rows compare with
    # each other. Sec. 4.2.1 quotes 134 for Mikolov et al. 2011's RNN of 200
    # hidden units with 30 classes, the reference of the word rows.
    PaperTable(
        key='bengio_table1',
        title=('Bengio, Boulanger-Lewandowski, Pascanu (2013), Table 1: polyphonic music, '
               'test'),
        metric='negative log-likelihood per frame (nats; the paper prints log-likelihoods)',
        source='arXiv:1212.0901, Table 1 (values not available to us)',
        rows={d: {m: None for m in MUSIC_ROWS}
              for d in ('piano', 'nottingham', 'musedata', 'jsb')},
        row_names={'piano': 'Piano-midi.de', 'nottingham': 'Nottingham',
                   'musedata': 'MuseData', 'jsb': 'JSB Chorales'},
        method_labels=MUSIC_ROWS,
        # the table's second column: expected frame-level accuracy (Bay et al. 2009)
        accuracy_key='test_error'),
    PaperTable(
        key='bengio_table2_word',
        title=('Bengio, Boulanger-Lewandowski, Pascanu (2013), Table 2: Penn Treebank '
               'words, test'),
        metric='perplexity',
        source=('arXiv:1212.0901, Table 2, word level (values not available to us; sec. '
                '4.2.1 quotes 134 for a 200-unit RNN with 30 classes, Mikolov et al. 2011)'),
        rows={'word': {'sgd': None, 'sgd-c': None, 'sgd-cl': None, 'sgd-clr': None}},
        row_names={'word': 'PTB words (30 classes)'},
        result_key='test_ppl'),
    PaperTable(
        key='bengio_table2_char',
        title=('Bengio, Boulanger-Lewandowski, Pascanu (2013), Table 2: Penn Treebank '
               'characters, test'),
        metric='bits per character',
        source='arXiv:1212.0901, Table 2, character level (values not available to us)',
        rows={'char': {'sgd': None, 'sgd-c': None, 'sgd-cl': None, 'sgd-clr': None}},
        row_names={'char': 'PTB characters'},
        result_key='test_bpc'),
    # Bai, Kolter, Koltun (2018) Table 1 (published_numbers.md): their LSTM, GRU
    # and TCN at the sizes of the row names. Our runs (experiments/modern.py,
    # declared with the cell as the method) fill the column of their cell.
    PaperTable(
        key='bai2018',
        title=('Bai, Kolter, Koltun (2018), Table 1: GRU and LSTM with a modern recipe at the '
               "study's sizes, test"),
        metric=('per row: MSE (adding), NLL per frame in nats (music), bits per character '
                '(PTB); lower is better'),
        source='arXiv:1803.01271, Table 1 (their TCN, LSTM, GRU; their generic RNN not shown)',
        rows={'adding600': {'lstm': 0.164, 'gru': 5.3e-5, 'tcn': 5.8e-5},
              'jsb': {'lstm': 8.45, 'gru': 8.43, 'tcn': 8.10},
              'nottingham': {'lstm': 3.29, 'gru': 3.46, 'tcn': 3.07},
              'ptb_char': {'lstm': 1.36, 'gru': 1.37, 'tcn': 1.31}},
        row_names={'adding600': 'adding problem T=600, MSE (70K)',
                   'jsb': 'JSB Chorales, NLL (300K)', 'nottingham': 'Nottingham, NLL (1M)',
                   'ptb_char': 'PTB characters, bpc (3M)'},
        method_labels={'lstm': 'LSTM', 'gru': 'GRU', 'tcn': 'TCN (study only)'},
        row_result_keys={'ptb_char': 'test_bpc'},
        paper_label="study's (Table 1)",
        number_format='.3g'),
)}


@dataclasses.dataclass(frozen=True)
class Cell:
  """One member of one finished run, placed in a paper table."""
  table: str
  row: str
  method: str
  ours: float
  final: float
  best_valid: float | None
  best_valid_step: int | None
  run: str
  member: int
  step: int
  wall_time_s: float | None
  code_version: str
  diverged: bool = False
  seed: int | None = None
  trial: str = ''          # the run and its hyperparameters but the seed: seeds of one trial
  accuracy: float | None = None   # percent, at best valid where recorded (accuracy_key)
  planned: int = 0         # the trials of the sweep the run is a unit of (0: not a sweep)
  reduced: str = ''        # what the run cut from its declared budget ('' for none; ``reduced``)


def declared(config: dict) -> dict:
  """What a run declares it reproduces (``config.paper``: table, row, one
  method per population row; ``experiments.common.declare_paper``). A record
  written before configs declared it gets the declaration of the experiment
  it names (``origin.experiment``), rebuilt from the experiment file."""
  paper = config.get('paper')
  if paper is None:
    experiment = (config.get('origin') or {}).get('experiment')
    if not experiment:
      raise ValueError('config.json declares no paper and names no experiment')
    paper = reproduce.load_config(experiment).paper.to_dict()
  return dict(table=paper.get('table', ''), row=paper.get('row', ''),
              methods=tuple(paper.get('methods', ())))


# The fields a declared budget may name (``declare_paper(budget=...)``), and their unit.
BUDGET_UNITS = {'task.epochs': 'epochs', 'train.num_steps': 'updates'}


def reduced(config: dict) -> str:
  """What a run cut from the budget its experiment declares for the paper
  (``config.paper.budget``, e.g. '10 of 30 epochs'), '' for a run given all of
  it or one whose experiment declares none. A record written before configs
  declared it gets the declaration of the experiment it names
  (``origin.experiment``, with its arguments)."""
  budget = (config.get('paper') or {}).get('budget')
  if budget is None:
    budget = _declared_budget((config.get('origin') or {}).get('experiment') or '')
  if not budget:
    return ''
  flat = records.flatten(config)
  field, full = budget['field'], budget['value']
  got, unit = flat.get(field), BUDGET_UNITS.get(budget['field'], budget['field'])
  cut = [f'{got:,} of {full:,} {unit}'] if isinstance(got, (int, float)) and got < full else []
  cap = flat.get('train.num_steps') if field == 'task.epochs' else 0
  if cap:                   # a budget in epochs, capped at a number of updates
    cut.append(f'at most {cap:,} updates of the {full:,} {unit}')
  return ', '.join(cut)


@functools.cache
def _declared_budget(experiment: str) -> dict:
  """The budget ``experiments/FILE.py[:ARGS]`` declares today ({} if none, or
  if it cannot be built any more)."""
  if not experiment:
    return {}
  try:
    budget = reproduce.load_config(experiment).paper.get('budget')
  except Exception:        # an experiment since renamed or removed: nothing to compare with
    return {}
  return budget.to_dict() if budget else {}


def member_method(config: dict, paper: dict, hparams: dict) -> str:
  """The declared method of a run's member: the run's one method (a sweep's
  members are trials of one method), or that of the population row whose
  numbers are the member's (``hparams`` in result.json)."""
  pop = config.get('population') or {}
  names, rows = list(pop.get('hparams') or ()), list(pop.get('rows') or ())
  if not names or len(paper['methods']) == 1:
    return paper['methods'][0]
  for row, method in zip(rows, paper['methods']):
    if all(math.isclose(float(hparams[n]), float(v), rel_tol=1e-6)
           for n, v in zip(names, row)):
      return method
  raise ValueError(f'member hyperparameters {hparams} match no population row {rows}')


# Companion rows ('ROW/VARIANT'): our runs beside a paper's row that differ
# from it in one declared way, in this order, named so.
COMPANIONS = {'gru': 'GRU', 'lstm': 'LSTM',
              'mean': 'cost averaged over the window'}   # ptb_bengio.py cost=mean


def row_name(table: PaperTable, row: str) -> str:
  """The paper's name of a row; a companion row ('nottingham/lstm',
  'char/mean') is named after the paper's row with what differs."""
  base, _, variant = row.partition('/')
  if not variant:
    return table.row_names[base]
  name, what = table.row_names[base], f'{COMPANIONS.get(variant, variant)}, ours only'
  if name.endswith(')'):        # 'PTB words (30 classes)': one pair of brackets
    return f'{name[:-1]}; {what})'
  return f'{name} ({what})'


def table_rows(table: PaperTable, cells: list[Cell]) -> list[tuple[str, dict]]:
  """The paper's rows, each followed by the companion rows that runs filled."""
  filled = {c.row for c in cells if c.table == table.key}
  order = list(COMPANIONS)
  out = []
  for row, by_method in table.rows.items():
    out.append((row, by_method))
    variants = [r.partition('/')[2] for r in filled if r.partition('/')[0] == row and '/' in r]
    for variant in sorted(variants, key=lambda v: (order.index(v) if v in order else len(order), v)):
      out.append((f'{row}/{variant}', {m: None for m in by_method}))
  return out


def _agrees(found: tuple | None, recorded: float | None, step: int | None) -> bool:
  """Whether metrics.jsonl's lowest validation loss of a member, (value, step),
  is the one its result.json records (a record without one: yes)."""
  if recorded is None:
    return True
  return (found is not None and math.isclose(found[0], recorded, rel_tol=1e-6, abs_tol=1e-9)
          and (step is None or found[1] == step))


def _best_valid(workdir: str, key: str) -> dict:
  """{member: (lowest validation ``key``, its step)} from metrics.jsonl, read once."""
  best: dict = {}
  for m in records.read_jsonl(os.path.join(workdir, 'metrics.jsonl')):
    member = m.get('member', 0)
    if m.get('split') == 'valid' and key in m and (
        member not in best or m[key] < best[member][0]):
      best[member] = (m[key], m['step'])
  return best


# Config fields that say which seed ran, how a run reported, saved or was laid
# out, or how long it was allowed (a run stopped by hand writes its result with
# its step as the budget): runs that differ only in these are seeds of one trial.
_NOT_THE_TRIAL = ('seed', 'origin', 'data_dir',
                  'train.log_every', 'train.checkpoint_every_s', 'train.num_steps',
                  'task.epochs', 'train.patience', 'train.patience_min_delta')


# Where `launch.py sweep` puts a unit: <sweep workdir>/gNN_<structural values>/partK.
_SWEEP_UNIT = re.compile(r'(^|/)g\d\d_[^/]*/part\d+/?$')


def planned_trials(config: dict) -> int:
  """How many trials the sweep that wrote a run plans (every unit's
  config.json keeps the whole ``sweep``): the grid's combinations times the
  random draws; 0 for a run that is no sweep's unit."""
  s = config.get('sweep') or {}
  grid, random = list(s.get('grid') or ()), list(s.get('random') or ())
  if not grid and not random:
    return 0
  return math.prod(len(values) for _, values in grid) * (int(s.get('trials', 0)) if random else 1)


def trial_key(config: dict, hparams: dict) -> str:
  """What makes a member a trial: the settings it trained with (its run's
  config with its own hyperparameters in place), less its seed and how the
  run reported. Seeds of one trial share it whether they ran as one
  population, as separate runs, or beside different other members (a grid
  run over 0.25 / 0.5 and one over 0.125 / 0.25 / 0.5 share their 0.25 and
  0.5 trials: a member's result depends on its seed and settings only).
  Fields that are off count as absent, so a run recorded before a field was
  added matches one recorded after."""
  number = lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
  flat = records.flatten(config)
  flat.update((k, v) for k, v in hparams.items() if k != 'seed')
  flat = {k: number(v) for k, v in flat.items()
          if k not in _NOT_THE_TRIAL
          and not k.startswith(('sweep.', 'origin.', 'paper.', 'population.'))
          and not records.is_unset(k, v)}   # a field added later, left off
  return json.dumps(flat, sort_keys=True, default=str)


# A folder with this file (or an ablation's marker) holds runs that are not
# candidates for a paper's cells when a folder above it is tabled: readings
# of a protocol, explorations (``results/ablations``). Tabled directly, they are.
APART = 'tabled_apart.txt'


def tabled_apart(root: str, workdir: str) -> str | None:
  """The folder strictly below ``root`` and at or above ``workdir`` marked
  as tabled on its own (``APART`` or an ablation's marker), or None."""
  root, folder = os.path.realpath(root), os.path.realpath(workdir)
  while folder != root and folder.startswith(root + os.sep):
    if os.path.exists(os.path.join(folder, APART)) or ablation.is_ablation(folder):
      return folder
    folder = os.path.dirname(folder)
  return None


def collect(roots: list[str], skipped: list | None = None) -> list[Cell]:
  """Every member of every finished run under ``roots`` that a table holds;
  ``skipped`` (if given) receives (run folder, why) for every run (or member) left out."""
  cells, seen, first_run = [], set(), {}
  skip = (lambda run, why: skipped.append((run, why))) if skipped is not None else (
      lambda run, why: None)
  for root in roots:
    for path in sorted(glob.glob(os.path.join(root, '**', 'result.json'), recursive=True)):
      if os.path.realpath(path) in seen:           # a folder named twice, or inside another
        continue
      seen.add(os.path.realpath(path))
      workdir = os.path.dirname(path)
      apart = tabled_apart(root, workdir)
      if apart:
        skip(workdir, f'it is under {os.path.relpath(apart, root)}, whose runs are tabled on '
                      'their own (an ablation, or readings of the protocol): table that folder')
        continue
      result = records.read_json(path)
      config = records.read_json(os.path.join(workdir, 'config.json'))
      if not isinstance(result, dict) or 'members' not in result or 'step' not in result:
        skip(workdir, 'result.json is unreadable (cut short or not JSON)')
        continue
      if not isinstance(config, dict):
        skip(workdir, 'config.json is missing or unreadable')
        continue
      if config.get('smoke') or result.get('smoke'):
        skip(workdir, 'a smoke run')
        continue
      try:
        paper = declared(config)
      except Exception as e:                      # an experiment since renamed or removed
        skip(workdir, f'its declaration of what it reproduces is unreadable: {e}')
        continue
      table, row = paper['table'], paper['row']
      if table not in PAPER:
        skip(workdir, f'it declares no table printed here (paper.table={table!r})')
        continue
      try:
        methods = [member_method(config, paper, m.get('hparams', {})) for m in result['members']]
      except (ValueError, KeyError, IndexError) as e:
        skip(workdir, f'its members do not match its declared methods: {e}')
        continue
      columns = PAPER[table].rows.get(row.partition('/')[0])   # a companion row: its paper row's
      if columns is None:
        skip(workdir, f'it declares row {row!r}, which table {table} does not have '
                      f'(rows: {", ".join(PAPER[table].rows)})')
        continue
      unfiled = records.not_filed_why(config, result.get('param_count'))
      if unfiled:            # an override flag changed the task, or a model over the row's size
        skip(workdir, f'it is not the run its declared row {row!r} stands for: {unfiled}')
        continue
      key = PAPER[table].result_key_of(row)
      measure = {'test_bpc': 'bpc', 'test_ppl': 'ppl'}.get(key, 'loss')
      valid = _best_valid(workdir, measure)
      by_loss = valid if measure == 'loss' else _best_valid(workdir, 'loss')
      for i, (m, method) in enumerate(zip(result['members'], methods)):
        if not _agrees(by_loss.get(i), m.get('best_valid_loss'), m.get('best_valid_step')):
          skip(workdir, f'member {i}: result.json records its lowest validation loss as '
                        f'{m["best_valid_loss"]:.6g} at step {m.get("best_valid_step")}, and '
                        f'metrics.jsonl has {by_loss.get(i)} (cut short or edited?)')
          continue
        if method not in columns:
          skip(workdir, f'member {i} declares method {method!r}, which table {table} has no '
                        f'column for in row {row!r} (methods: {", ".join(columns)})')
          continue
        hp = m.get('hparams', {})
        best, best_step = valid.get(i, (None, None))
        if not isinstance(m.get(key), (int, float)):   # never nats under a bpc or perplexity heading
          skip(workdir, f'member {i} has no {key} in result.json (the table reports that, '
                        'not the loss in nats)')
          continue
        final = float(m[key])
        ours = float(m.get(f'{key}_at_best_valid', final))
        trial = trial_key(config, hp)
        error_key = PAPER[table].accuracy_key
        error = m.get(f'{error_key}_at_best_valid', m.get(error_key)) if error_key else None
        seed = hp.get('seed', config.get('seed'))
        twin = first_run.setdefault((table, row, method, trial, seed), workdir)
        if twin != workdir:            # the same settings and seed again: not another seed
          skip(workdir, f'member {i} repeats seed {seed} of a trial that {twin} already has')
          continue
        cells.append(Cell(table, row, method, ours, final, best, best_step, workdir, i,
                          result['step'], result.get('wall_time_s'), result.get('code_version', ''),
                          bool(m.get('diverged')), seed, trial,
                          None if error is None else 100.0 * (1.0 - float(error)),
                          planned_trials(config) if _SWEEP_UNIT.search(workdir) else 0,
                          reduced(config)))
  return cells


def _fmt(x, spec='.2f'):
  return '-' if x is None else f'{x:{spec}}'


def choose_trial(cells: list[Cell]) -> tuple[dict[str, list[Cell]], str | None]:
  """The members of one cell grouped by trial (a trial's seeds are averaged),
  and the trial the cell reports: of several (a sweep's, or a grid run as one
  population), the one with the lowest validation score averaged over its
  seeds, diverged trials last, as the papers select; None for a single trial."""
  trials: dict[str, list[Cell]] = {}
  for c in cells:
    trials.setdefault(c.trial, []).append(c)
  rank = {t: (any(c.diverged for c in cs),
              sum(math.inf if c.best_valid is None else c.best_valid for c in cs) / len(cs))
          for t, cs in trials.items()}
  return trials, (min(trials, key=rank.get) if len(trials) > 1 else None)


def rows_of(cells: list[Cell]) -> list[dict]:
  """One dict per (table, row, method) of the papers, with ours where a run has it."""
  out = []
  for table in PAPER.values():
    for row, by_method in table_rows(table, cells):
      for method, paper in by_method.items():
        mine = [c for c in cells if (c.table, c.row, c.method) == (table.key, row, method)]
        trials, chosen = choose_trial(mine)
        mean = lambda xs: sum(xs) / len(xs)
        alt = table.alternative.get(row, {}).get(method)
        if not mine:
          out.append(dict(table=table.key, row=row, method=method, paper=paper,
                          paper_alternative=alt, ours=None, final=None, diff=None,
                          best_valid=None, accuracy=None,
                          best_valid_step=None, run='', member=None, step=None,
                          wall_time_s=None, code_version='', selected=None, candidates=0,
                          planned=0, diverged=None))
        all_diverged = all(any(x.diverged for x in t) for t in trials.values())
        for c in mine:
          seeds = trials[c.trial]
          ours = [x.ours for x in seeds]
          out.append(dict(table=table.key, row=row, method=method, paper=paper,
                          paper_alternative=alt, ours=c.ours, final=c.final,
                          diff=None if paper is None else c.ours - paper,
                          best_valid=c.best_valid, best_valid_step=c.best_valid_step,
                          accuracy=c.accuracy,
                          run=c.run, member=c.member, step=c.step,
                          wall_time_s=c.wall_time_s, code_version=c.code_version,
                          reduced=c.reduced,
                          selected=None if chosen is None else c.trial == chosen,
                          candidates=len(trials), planned=max(x.planned for x in mine),
                          all_diverged=all_diverged,
                          swept=sum(any(x.planned for x in t) for t in trials.values()),
                          diverged=c.diverged, trial_diverged=any(x.diverged for x in seeds),
                          seed=c.seed,
                          seeds=len(seeds), trial_mean=mean(ours), trial_sd=_sd(ours),
                          trial_min=min(ours), trial_max=max(ours),
                          trial_final=mean([x.final for x in seeds]),
                          trial_accuracy=(None if any(x.accuracy is None for x in seeds)
                                          else mean([x.accuracy for x in seeds])),
                          trial_valid=(None if any(x.best_valid is None for x in seeds)
                                       else mean([x.best_valid for x in seeds])),
                          trial_runs=sorted({x.run for x in seeds}),
                          trial_wall_time_s=_total({x.run: x.wall_time_s for x in seeds}.values()),
                          first_of_trial=c is seeds[0]))
  return out


def _total(seconds) -> float | None:
  """The sum of runs' wall times; None where a run did not record its own."""
  seconds = list(seconds)
  return None if any(x is None for x in seconds) else sum(seconds)


def _sd(xs: list[float]) -> float:
  """The sample standard deviation (0 for one value)."""
  if len(xs) < 2:
    return 0.0
  m = sum(xs) / len(xs)
  return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _duration(seconds: float | None) -> str:
  """A wall time as people say it: '45 s', '8.2 min', '2 h 33 min'."""
  if seconds is None:
    return '-'
  if seconds < 90:
    return f'{seconds:.0f} s'
  if seconds < 90 * 60:
    return f'{seconds / 60:.1f} min'
  hours, minutes = divmod(round(seconds / 60), 60)
  return f'{hours} h {minutes:02d} min'


def _selection(r: dict) -> str:
  """How a cell's number was chosen, for its label: of how many trials, and
  how many of its sweep's are still to run (an unfinished sweep's best so
  far is not yet its row's number). Runs outside the sweep that fill the
  same cell (tabled together with it) are counted apart from its trials."""
  done, planned = r['candidates'], r.get('planned', 0)
  if r['selected'] and r.get('all_diverged'):      # nothing to select on
    return f' (all {done} trials diverged)'
  swept = r.get('swept', done) if planned else done
  if swept < done:          # the sweep's trials and other runs of the cell
    others = f'{done - swept} other run{"s" if done - swept > 1 else ""}'
    search = (f"the search's {planned} trials" if swept >= planned
              else f"{swept} of the search's {planned} trials")
    if r['selected']:
      return f' (best of {done} on valid: {others} and {search})'
    return f" ({swept} of the search's {planned} trials finished)" if swept < planned else ''
  unfinished = f'{done} of {planned} trials finished' if planned > done else ''
  if r['selected']:
    return f' (best of {done} on valid' + (f'; {unfinished})' if unfinished else ')')
  return f' ({unfinished})' if unfinished else ''


def markdown(rows: list[dict], base: str = '.') -> str:
  """The tables as Markdown; runs are linked relative to ``base``.

  A cell's wall time is its run's (training and evaluation, over all
  resumes): members of one population share their run's, and a trial whose
  seeds ran in separate runs shows their sum.
  """
  parts = []
  for table in PAPER.values():
    mine = [r for r in rows if r['table'] == table.key]
    if not any(r['ours'] is not None for r in mine):
      continue                # no run of ours in this table (its paper rows stay in the CSV)
    alt = bool(table.alternative)
    parts.append(f'### {table.title}\n\n{table.metric}; paper: {table.source}'
                 + (f'; alternative: {table.alternative_source}' if alt else '') + '.\n')
    f = table.number_format
    fmt = lambda x: _fmt(x, f)
    paper = table.paper_label
    acc = bool(table.accuracy_key)
    head = ['row', 'method', paper] + ([f'{paper} (alt.)'] if alt else []) + [
        'ours (at best valid)'] + (['expected accuracy, % (at best valid)'] if acc else []) + [
        f'ours - {paper}', 'ours, final parameters', 'our best valid (step)', 'run',
        'wall time of the run']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in mine:
      if r['paper'] is None and r['ours'] is None:
        continue              # neither the paper's number nor a run of ours (in the CSV)
      valid = '-' if r['best_valid'] is None else f'{r["best_valid"]:{f}} ({r["best_valid_step"]})'
      link = os.path.relpath(r['run'], base) if r['run'] else ''
      run = f'[{os.path.basename(link)}]({link}) member {r["member"]}' if link else ''
      if r['selected'] is False:
        continue              # another run of this cell was selected (all are in the CSV)
      label = (table.method_labels[r['method']] + _selection(r)
               + (f', reduced budget: {r["reduced"]}' if r.get('reduced') else ''))
      wall = _duration(r['wall_time_s'])
      ours, final = fmt(r['ours']), fmt(r['final'])
      accuracy = _fmt(r['accuracy'], '.1f')
      diff = None if r['diff'] is None else r['diff']
      if r.get('seeds', 1) > 1:     # one line per trial: the mean over its seeds
        if not r['first_of_trial']:
          continue
        ours = (f'{r["trial_mean"]:{f}} ± {r["trial_sd"]:{f}} (mean of {r["seeds"]} seeds, '
                f'{r["trial_min"]:{f}}-{r["trial_max"]:{f}})')
        final = fmt(r['trial_final'])
        accuracy = _fmt(r['trial_accuracy'], '.1f')
        diff = None if r['paper'] is None else r['trial_mean'] - r['paper']
        valid = fmt(r['trial_valid'])
        links = [os.path.relpath(x, base) for x in r['trial_runs']]
        run = (f'[{os.path.basename(link)}]({link}) {r["seeds"]} members' if len(links) == 1 else
               ', '.join(f'[{os.path.basename(x)}]({x})' for x in links) + ' (one seed each)')
        wall = _duration(r['trial_wall_time_s']) + (f' ({len(links)} runs)' if len(links) > 1 else '')
      cells = [row_name(table, r['row']), label, fmt(r['paper'])]
      if alt:
        cells.append(fmt(r['paper_alternative']))
      if r.get('trial_diverged', r['diverged']):   # any seed's
        ours += ' (diverged)'
      cells += [ours] + ([accuracy] if acc else []) + [
          '-' if diff is None else f'{diff:+{f}}', final, valid, run, wall]
      lines.append('| ' + ' | '.join(cells) + ' |')
    parts.append('\n'.join(lines) + '\n')
  return '\n'.join(parts) or 'No finished run fills a cell of the papers\' tables.\n'


def to_csv(rows: list[dict]) -> str:
  buf = io.StringIO()
  fields = list(dict.fromkeys(k for r in rows for k in r)) or ['table']
  writer = csv.DictWriter(buf, fieldnames=fields, restval='')
  writer.writeheader()
  writer.writerows(rows)
  return buf.getvalue()


def main(roots: list[str]) -> str:
  """Prints the tables and writes tables.md and tables.csv into roots[0]."""
  missing = [r for r in roots if not os.path.isdir(r)]
  if missing:
    raise FileNotFoundError(f'no such folder: {", ".join(missing)}')
  # An ablation's runs are variants of one cell, not candidates for it: they
  # get a table of their own (reporting/ablation.py).
  ablations = [r for r in roots if ablation.is_ablation(r)]
  papers = [r for r in roots if r not in ablations]
  skipped: list = []
  rows = rows_of(collect(papers, skipped)) if papers else []
  text = markdown(rows, base=roots[0]) if papers else ''
  if skipped:
    text += f'\nRuns left out ({len(skipped)}):\n\n' + ''.join(
        f'- {os.path.relpath(run, roots[0])}: {why}\n' for run, why in skipped)
  for r in ablations:
    text += ('\n' if text else '') + ablation.main(r)
  with open(os.path.join(roots[0], 'tables.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(roots[0], 'tables.csv'), 'w', newline='') as f:
    f.write(to_csv(rows))
  print(text)
  return text
