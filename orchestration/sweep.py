"""Sweeps: grids and random search, run as populations.

    python launch.py sweep --config=experiments/temporal_order_sweep.py --workdir=DIR

The experiment config declares the sweep in ``config.sweep``:

- ``grid``: ``((key, (v1, v2, ...)), ...)``: every combination of the values;
- ``random``: ``((key, 'log_uniform', low, high), (key, 'uniform', low, high),
  (key, 'choice', (v1, v2, ...)), ...)``: ``trials`` draws, each a trial
  (Bengio et al. 2013 sample their hyperparameters log-uniformly, the
  number of hidden units among them);
- ``seeds``: every trial is trained with each of these seeds;
- ``workers``: worker processes (0: one per core, each pinned to its core,
  on a CPU; one process on an accelerator);
- ``executor``: where the parts run: ``local`` (this host's processes), or
  ``ray`` or ``slurm`` (``orchestration/executors.py``; ``workers`` there is the number of
  parts each group is split into, 0 meaning one);
- ``retries``: a part that fails is run again this many times (resuming
  from its checkpoints), then listed as failed in ``sweep.md`` and
  ``sweep.json``.

Keys are config paths (``optim.learning_rate``, ``model.hidden_size``). A
grid key of several paths joined by ``+`` sets them together, one tuple of
values per grid point: ``('model.num_layers+model.hidden_size', ((1, 256),
(2, 160)))`` pairs each depth with its own width (a width at a fixed number
of parameters) instead of crossing them.
Numeric hyperparameters that a population can vary (``training/population.py``: the
Omega and L1 weights, the BPTT clip, the dropout rates, each where the config
has it on, and any numeric ``optim`` field the optimiser reads) become
members of one vmapped program; every other key (cell, hidden size,
initialisation...) changes what is compiled, so its values form separate
groups. A structural key may be drawn too (``'choice'`` only): each trial
then trains in the group of its draw, so a random search of ``trials``
trials stays ``trials`` runs, as the papers' random searches are, rather
than ``trials`` per grid point. A group's members are split into one *unit* per worker (and
further where ``part_size`` > 0: no unit of more than ``part_size`` members, so a
unit of a long run can finish in one sitting and the sweep resumes unit by
unit); each unit is
an ordinary run (``train.train_and_evaluate``) in its own folder,
``DIR/<group>/part<j>``, with its own checkpoints, so an interrupted sweep
resumes where it stopped when the same command is run again. The split is
fixed by the sweep's first start (``DIR/layout.json``): a rerun with another
worker count keeps it.

On a CPU host, small models train faster as one single-threaded process per
core than as one program using every core, so that is the default layout
there; on an accelerator, one process holds every member of a group.

At the end every trial (its seeds averaged) is ranked on the validation
metric ``select`` (``SELECTS``; lower is better) and the best is reported on test, as
the papers select and report. Trials whose loss is not finite are listed as
diverged, never dropped. ``DIR/sweep.json`` and ``DIR/sweep.md`` hold the
ranking.
"""

from __future__ import annotations

import copy
import ctypes
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import re
import shlex
import signal
import sys
import threading
import time

import ml_collections
import numpy as np

import optim
from orchestration import executors
from training import population as population_lib
from training import records
from training.errors import Interrupted, RunError

DISTRIBUTIONS = ('log_uniform', 'uniform', 'choice')
# What ``sweep.select`` may rank trials by (lower is better): the validation
# loss (at each member's lowest, ``summarize``) or the error rate of the last
# validation (NaN, so every trial diverged, where a task has none: words).
SELECTS = ('loss', 'error')


@dataclasses.dataclass(frozen=True)
class Unit:
  """One run of the sweep: a group's structural values and some of its rows."""
  group: str
  structural: tuple       # ((key, value), ...)
  hparams: tuple          # numeric keys, one value per key in each row
  rows: tuple             # the members' numeric values
  part: int

  @property
  def name(self) -> str:
    return f'{self.group}/part{self.part}'


def _get(config, key: str):
  node = config
  for part in key.split('.'):
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
      raise ValueError(f'sweep key {key!r} is not a config field')
    node = node[part]
  return node


def _paths(key: str, value=None) -> list[tuple[str, object]]:
  """A grid key's (path, value) pairs: one for a path, one per path for
  paths joined by '+' (whose value is a tuple, one value per path)."""
  paths = key.split('+')
  if len(paths) == 1:
    return [(key, value)]
  if value is not None and (not isinstance(value, (tuple, list)) or len(value) != len(paths)):
    raise ValueError(f'sweep key {key!r} sets {len(paths)} fields together: each value must be '
                     f'a tuple of {len(paths)}, not {value!r}')
  return list(zip(paths, value if value is not None else [None] * len(paths)))


def _set(config, key: str, value) -> None:
  if '+' in key:
    for path, v in _paths(key, value):
      _set(config, path, v)
    return
  *path, last = key.split('.')
  node = config
  for part in path:
    node = node[part]
  try:
    node[last] = value
  except TypeError as e:   # ConfigDict keeps each field's type
    raise ValueError(f'sweep value {value!r} does not fit {key}: {e}') from None


def _numbers(values) -> bool:
  return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _variants(config, grid: list, random: list) -> list:
  """``config`` under each combination of the sweep's values that never vary
  within a program (an optimiser's name, a depth with its width: values that
  are not numbers), so that what may vary is judged in every group: a
  momentum drawn under a grid over ``optim.name=('momentum', 'nesterov')`` is
  a member's number although the base config's optimiser has none."""
  fixed = [(k, vs) for k, vs in grid if not _numbers(vs)]
  fixed += [(spec[0], tuple(spec[2])) for spec in random
            if spec[1] == 'choice' and len(spec) == 3 and not _numbers(spec[2])]
  out = []
  for combo in itertools.product(*[vs for _, vs in fixed]):
    c = copy.deepcopy(config)
    for (key, _), value in zip(fixed, combo):
      _set(c, key, value)
    out.append(c)
  return out


def is_numeric(config, key: str, values, rates_in_program: bool = True) -> bool:
  """True when ``key`` can differ between the members of one program. A
  dropout rate is, where the config has it on or the sweep gives it a rate
  above 0 (``unit_config`` then switches it on: a member at 0 gets the numbers
  of the run without it). ``rates_in_program=False``: the dropout rates are
  structure, as they were for sweeps laid out before (``layout``)."""
  if not _numbers(values):
    return False
  if key in population_lib.MODEL_HPARAMS:   # on in the config, or switched on by its units
    return rates_in_program and (bool(_get(config, key)) or any(v > 0 for v in values))
  return key in population_lib.member_hparams(config)


def draw(random: tuple, trials: int, seed: int) -> list[dict]:
  """``trials`` random draws: [{key: value}]."""
  rng = np.random.default_rng(seed)
  out = [{} for _ in range(trials)]
  for spec in random:
    key, dist, *args = spec
    if dist not in DISTRIBUTIONS:
      raise ValueError(f'sweep.random {key!r}: distribution {dist!r} is not one of '
                       f'{", ".join(DISTRIBUTIONS)}')
    if dist == 'choice':
      if len(args) != 1 or not args[0]:
        raise ValueError(f"sweep.random {key!r}: 'choice' takes one tuple of values")
      values = [args[0][i] for i in rng.integers(0, len(args[0]), trials)]
    else:
      if len(args) != 2 or not args[0] < args[1] or (dist == 'log_uniform' and args[0] <= 0):
        raise ValueError(f'sweep.random {key!r}: {dist} takes low < high'
                         + (' (both > 0)' if dist == 'log_uniform' else ''))
      low, high = (math.log(args[0]), math.log(args[1])) if dist == 'log_uniform' else args
      values = rng.uniform(low, high, trials)
      values = np.exp(values) if dist == 'log_uniform' else values
      values = [float(v) for v in values]
    for trial, v in zip(out, values):
      trial[key] = v
  return out


def _slug(structural) -> str:
  if not structural:
    return 'all'
  text = '_'.join(f'{k.split(".")[-1]}-{v}' for key, value in structural
                  for k, v in _paths(key, value))
  return re.sub(r'[^A-Za-z0-9_.-]+', '', text)


def plan(config: ml_collections.ConfigDict, workers: int,
         rates_in_program: bool = True) -> list[Unit]:
  """The units of ``config``'s sweep, split for ``workers`` processes.
  ``rates_in_program``: the dropout rates on in the config vary within a
  program (False: the grouping of sweeps laid out before, ``layout``)."""
  s = config.sweep
  grid = [tuple(g) for g in s.grid]
  random = [tuple(r) for r in s.random]
  for key, values in grid:
    for path, _ in _paths(key):
      _get(config, path)
    if not values:
      raise ValueError(f'sweep.grid {key!r} has no values')
    for v in values:
      _paths(key, v)
  for spec in random:
    for path, _ in _paths(spec[0]):
      _get(config, path)
    if '+' in spec[0]:
      if spec[1] != 'choice':
        raise ValueError(f"sweep.random {spec[0]!r} sets several fields together: draw it "
                         "with 'choice' from a tuple of value tuples")
      for v in (spec[2] if len(spec) == 3 else ()):
        _paths(spec[0], v)
  if random and s.trials < 1:
    raise ValueError('sweep.random is set but sweep.trials < 1')
  trials = draw(random, s.trials, s.seed) if random else [{}]
  variants = _variants(config, grid, random)
  # numeric: a number every group's program can hold per member
  numeric = lambda key, values: all(is_numeric(c, key, values, rates_in_program)
                                    for c in variants)
  structural = [(k, v) for k, v in grid if not numeric(k, v)]
  numeric_grid = [(k, v) for k, v in grid if numeric(k, v)]
  numeric_random = [spec[0] for spec in random
                    if numeric(spec[0], [t[spec[0]] for t in trials])]
  # A drawn key that changes what is compiled (hidden units, leaky fraction...)
  # puts each trial in the group of its draw: the trials are still ``trials``.
  drawn_structural = [spec[0] for spec in random if spec[0] not in numeric_random]
  for spec in random:
    if spec[0] in drawn_structural and spec[1] != 'choice':
      raise ValueError(f'sweep.random {spec[0]!r} is not one of the numbers that vary within one '
                       f'program under this config ({", ".join(population_lib.member_hparams(config))}'
                       '; a regularizer weight must be on in the config, an optimiser field one '
                       f'that optim.name={"/".join(dict.fromkeys(c.optim.name for c in variants))} '
                       'reads): draw it with \'choice\' from '
                       'a tuple of values (a program each), or switch it on in the config')
  hparams = tuple(k for k, _ in numeric_grid) + tuple(numeric_random)
  by_draw: dict[tuple, list] = {}          # structural draw -> its trials, in drawn order
  for t in trials:
    by_draw.setdefault(tuple((k, t[k]) for k in drawn_structural), []).append(t)
  for draw_part, its_trials in by_draw.items():
    rows = [tuple(combo) + tuple(t[k] for k in numeric_random)
            for combo in itertools.product(*[v for _, v in numeric_grid]) for t in its_trials]
    by_draw[draw_part] = rows if hparams else rows[:1]   # without numbers, one member
  units = []
  groups = [(tuple(zip([k for k, _ in structural], combo)) + draw_part, rows)
            for combo in itertools.product(*[v for _, v in structural])
            for draw_part, rows in by_draw.items()]
  part_size = int(s.get('part_size', 0))
  if part_size < 0:
    raise ValueError(f'sweep.part_size={part_size} is negative (0: split over the workers)')
  for g, (values, rows) in enumerate(groups):
    name = f'g{g:02d}_{_slug(values)}'
    count = min(workers, len(rows))
    if part_size:              # no unit larger than part_size members
      count = max(count, -(-len(rows) // part_size))
    parts = np.array_split(np.arange(len(rows)), count)
    for j, idx in enumerate(parts):
      units.append(Unit(name, values, hparams, tuple(rows[i] for i in idx), j))
  return units


def unit_config(config: ml_collections.ConfigDict, unit: Unit) -> ml_collections.ConfigDict:
  """The run of one unit: the sweep's config with the unit's structural values,
  its members' rows, and any dropout its members vary switched on where one
  of them has it above 0 (at the sweep's largest rate for it, so that the
  program draws masks; each member trains at its own rate,
  ``population.rows``). A unit whose members all drew 0 leaves it off:
  nothing is drawn (``population.make_population``)."""
  c = copy.deepcopy(config)
  for key, value in unit.structural:
    _set(c, key, value)
  for key in set(unit.hparams) & set(population_lib.MODEL_HPARAMS):
    column = unit.hparams.index(key)
    if not _get(c, key) and any(row[column] > 0 for row in unit.rows):
      _set(c, key, _largest(config.sweep, key))
  c.population.seeds = tuple(config.sweep.seeds)
  c.population.hparams = unit.hparams
  c.population.rows = unit.rows if unit.hparams else ()
  return c


def _largest(sweep_config, key: str) -> float:
  """The largest value ``key`` takes in the sweep (a grid's, a choice's, a range's end)."""
  values = [v for k, vs in sweep_config.grid if k == key for v in vs]
  for spec in sweep_config.random:
    if spec[0] == key:
      values += list(spec[2]) if spec[1] == 'choice' else [spec[3]]
  return float(max(values))


def _die_with_parent(parent: int) -> None:
  """Ends this worker (SIGTERM: it checkpoints, then stops) when the sweep's
  process ends, however it ends: the kernel's parent-death signal on Linux,
  and a poll of the parent's pid as a fallback everywhere."""
  try:
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass
  if os.getppid() != parent:     # gone before the signal was armed
    os._exit(1)

  def poll():
    while os.getppid() == parent:
      time.sleep(2.0)
    os.kill(os.getpid(), signal.SIGTERM)
  threading.Thread(target=poll, daemon=True).start()


def _run_unit(config_json: str, workdir: str, core: int | None, parent: int | None = None) -> None:
  """A worker process: one unit, its output to ``workdir/log.txt``."""
  if parent is not None:
    _die_with_parent(parent)
  if core is not None and hasattr(os, 'sched_setaffinity'):
    os.sched_setaffinity(0, {core})
  os.makedirs(workdir, exist_ok=True)
  log = os.open(os.path.join(workdir, 'log.txt'), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
  os.dup2(log, 1)
  os.dup2(log, 2)
  from training import train   # JAX starts here: after the affinity and XLA_FLAGS are set
  config = ml_collections.ConfigDict(json.loads(config_json))
  try:
    train.train_and_evaluate(config, workdir)
  except RunError as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(1)


def single_thread_env() -> dict:
  """XLA's flags for one thread. jaxlib 0.10 no longer honours them (its
  products still ran on two threads, 2026-12-04); the pinning to one core is
  what keeps a worker single-threaded, since JAX sizes its thread pool from
  the process's affinity. They stay for the jaxlibs that do."""
  flags = os.environ.get('XLA_FLAGS', '')
  extra = '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'
  return dict(XLA_FLAGS=(flags + ' ' + extra).strip())


def _default_workers(config) -> int:
  if config.sweep.workers:
    return int(config.sweep.workers)
  if _executor(config) != 'local':
    return 1   # one vmapped part per group, so the plan does not hang on a cluster's size
  import jax
  if jax.default_backend() != 'cpu':
    return 1
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return max(1, cores or 1)


def _executor(config) -> str:
  return config.sweep.get('executor', 'local')


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs (or resumes) the sweep; returns and writes its ranking.

  Every unit without a ``result.json`` is run, on ``sweep.executor``; those
  still without one are run again, ``sweep.retries`` times, and the ones
  left are listed as failed.
  """
  workers = _default_workers(config)
  records.make_folder(workdir, 'sweep folder')
  with records.WorkdirLock(workdir, 'sweep'):
    _check_data(config, [u for u in layout(config, workdir, workers, write=False)
                         if not _done(workdir, u)])     # before the layout is recorded
    units = layout(config, workdir, workers)
    _check_recorded(config, workdir, units)
    return _run(config, workdir, workers, units)


def _check_recorded(config, workdir: str, units: list[Unit]) -> None:
  """Refuses a rerun whose units differ from those the folder's runs recorded
  (another sweep config: other draws, another optimiser): a finished unit is
  not run again, so the sweep would rank the old runs as the new ones. What
  may differ is what a single run's rerun may change (``workdir.config_changes``),
  but not a budget below a unit's checkpoint (each unit would fail on it in turn)."""
  from training import workdir as workdir_lib
  kept: dict[str, list[str]] = {}     # a budget or stopping change -> the finished units it misses
  for u in units:
    saved = records.read_json(os.path.join(workdir, u.name, 'config.json'))
    if not isinstance(saved, dict):
      continue
    saved = {k: v for k, v in saved.items() if k != 'origin'}
    new = json.loads(workdir_lib.config_json(unit_config(config, u)))
    if _done(workdir, u):
      a, b = records.flatten(saved), records.flatten(new)
      for k in STOPPING:
        if a.get(k) != b.get(k):
          kept.setdefault(f'{k} {a.get(k)!r} (this config: {b.get(k)!r})', []).append(u.name)
    changed = workdir_lib.config_changes(saved, new)
    if changed:
      shown = workdir_lib.changes_shown(saved, new, changed, limit=4)
      raise RunError(f'{workdir} holds a sweep run with another config ({u.name}: {shown}); '
                     'rerun with its config to resume it, or use a new workdir for the new one')
    steps = workdir_lib.checkpoint_steps(os.path.join(workdir, u.name))
    budget = new['train']['num_steps']   # (a budget in epochs: the unit's trainer checks it)
    if steps and budget and steps[-1] > budget:
      raise RunError(workdir_lib.past_budget(f'{workdir}/{u.name}', steps[-1], budget))
  for change, names in kept.items():
    print(f'Note: {len(names)} finished unit(s) ({", ".join(names[:2])}'
          f'{", ..." if len(names) > 2 else ""}) ran with {change}; finished units are not run '
          'again, so their trials keep it (sweep.md shows each trial\'s updates)', flush=True)


def _check_data(config, units: list[Unit]) -> None:
  """Refuses a sweep whose units to run lack their data files, before any
  starts (each would fail on its own after compiling)."""
  import tasks
  todo = {tasks.missing_data(unit_config(config, u)) for u in units}
  todo.discard(None)
  if todo:
    raise RunError('no unit started; ' + '; '.join(sorted(todo)))


# What a rerun may change (workdir.SAFE_TO_CHANGE) that decides when a run
# stops: a finished unit keeps the value it ran with.
STOPPING = ('train.num_steps', 'task.epochs', 'train.patience', 'train.patience_min_delta')

LAYOUT_FILE = 'layout.json'


def layout(config: ml_collections.ConfigDict, workdir: str, workers: int,
           write: bool = True) -> list[Unit]:
  """The sweep's units as its first start laid them out.

  How a group's members are split into units depends on the worker count
  (and ``part_size``), which may differ on a rerun (``launch.py sweep`` on
  two cores, then ``reproduce`` with one worker, or a GPU): re-planned, a
  finished unit would stand for a larger one and its other trials would
  never run. So the first start records the layout in ``DIR/layout.json``
  and every rerun keeps it (``workers`` then only sets how many units run at
  once). So does the grouping: a sweep laid out before the dropout rates
  could vary within a program (its file has no ``rates_in_program``) keeps
  them as structure. A folder from before that file is matched against its
  units' ``config.json``: the first layout whose units they all are is kept.
  ``write=False`` (``reproduce --status``) reads and writes nothing else."""
  path = os.path.join(workdir, LAYOUT_FILE)
  stored = records.read_json(path)
  part_size = int(config.sweep.get('part_size', 0))
  if isinstance(stored, dict) and 'workers' in stored:
    first_workers, first_part_size = int(stored['workers']), int(stored.get('part_size', 0))
    if write and (first_workers, first_part_size) != (workers, part_size):
      print(f'Units as this sweep\'s first start laid them out ({LAYOUT_FILE}: workers='
            f'{first_workers}, part_size={first_part_size}); sweep.workers={workers} sets only how '
            'many run at once' + (f', sweep.part_size={part_size} is not applied'
                                  if part_size != first_part_size else ''), flush=True)
    return plan(_with_part_size(config, first_part_size), first_workers,
                bool(stored.get('rates_in_program', False)))
  existing = _existing_units(workdir)
  candidates = [(rates, w) for rates in (True, False)
                for w in [workers] + [w for w in range(1, 65) if w != workers]]
  for rates, w in candidates if existing else [(True, workers)]:
    units = plan(config, w, rates)
    planned = {u.name: u for u in units}
    if all(name in planned and _same_rows(rows, planned[name]) for name, rows in existing.items()):
      break
  else:
    raise RunError(f'the units in {workdir} ({", ".join(sorted(existing))}) match no layout of '
                   'this sweep for 1-64 workers: were they made by another sweep config?')
  if write:
    records.write_json(path, {'workers': w, 'part_size': part_size, 'rates_in_program': rates})
  return units


def _with_part_size(config, part_size: int):
  if int(config.sweep.get('part_size', 0)) == int(part_size):
    return config
  c = copy.deepcopy(config)
  c.sweep.part_size = int(part_size)
  return c


def _existing_units(workdir: str) -> dict[str, list | None]:
  """{unit name: its members' rows from its config.json} of the unit folders
  already in ``workdir`` (None where no config.json was written yet)."""
  out = {}
  for group in sorted(os.listdir(workdir)) if os.path.isdir(workdir) else []:
    folder = os.path.join(workdir, group)
    if not (os.path.isdir(folder) and re.fullmatch(r'g\d+_.*', group)):
      continue
    for part in sorted(os.listdir(folder)):
      if re.fullmatch(r'part\d+', part):
        saved = records.read_json(os.path.join(folder, part, 'config.json'))
        rows = saved.get('population', {}).get('rows') if isinstance(saved, dict) else None
        out[f'{group}/{part}'] = rows
  return out


def _same_rows(rows, unit: Unit) -> bool:
  """Whether a unit folder's recorded rows are ``unit``'s (unknown: yes)."""
  if rows is None:
    return True
  want = unit.rows if unit.hparams else ()
  return [list(r) for r in rows] == [list(r) for r in want]


def finished(unit_dir: str) -> dict | None:
  """A unit's result, or None while it has none that reads whole."""
  result = records.read_json(os.path.join(unit_dir, 'result.json'))
  return result if isinstance(result, dict) and 'members' in result else None


def _done(workdir: str, unit: Unit) -> bool:
  return finished(os.path.join(workdir, unit.name)) is not None


def _run(config, workdir: str, workers: int, units: list[Unit]) -> dict:
  executor = _executor(config)
  todo = [u for u in units if not _done(workdir, u)]
  print(f'Sweep: {len(units)} units ({len({u.group for u in units})} groups), '
        f'{sum(len(u.rows) or 1 for u in units)} trials x {max(1, len(config.sweep.seeds))} '
        f'seeds, {workers} {"worker(s)" if executor == "local" else f"part(s) a group on {executor}"}'
        f'; {len(units) - len(todo)} already done. In {workdir}', flush=True)
  retries = int(config.sweep.get('retries', 0))
  for attempt in range(1 + retries):
    if not todo:
      break
    if attempt:
      print(f'  retrying {len(todo)} failed unit(s): attempt {attempt + 1} of {1 + retries}',
            flush=True)
    if executor == 'local':
      _run_local(config, workdir, todo, workers)
    else:
      parts = [executors.Part(u.name, json.dumps(unit_config(config, u).to_dict()),
                              os.path.abspath(os.path.join(workdir, u.name))) for u in todo]
      single = config.sweep.cpus_per_part == 1 and not config.sweep.gpus_per_part
      executors.REGISTRY[executor](parts, config.sweep, os.path.abspath(workdir),
                                   single_thread_env() if single else {})
    todo = [u for u in todo if not _done(workdir, u)]
  summary = summarize(config, workdir, units)
  summary['failed_units'] = [u.name for u in todo]
  records.write_json(os.path.join(workdir, 'sweep.json'), summary)
  records.write_atomic(os.path.join(workdir, 'sweep.md'), markdown(summary))
  print(markdown(summary), flush=True)
  return summary


def _skip_finished(workdir: str, unit: Unit) -> bool:
  """Whether ``unit`` finished after the sweep planned its work (e.g. run by
  hand in another process): it is not started again, which would begin it
  anew over its records."""
  if not _done(workdir, unit):
    return False
  print(f'  {unit.name}: finished meanwhile (its result.json is there); not run again', flush=True)
  return True


def _run_local(config, workdir: str, todo: list[Unit], workers: int) -> list[str]:
  """Runs ``todo`` on this host's processes; returns the failed units' names."""
  failed = []
  t0 = time.time()
  if workers == 1:
    from training import train
    for u in todo:
      if _skip_finished(workdir, u):
        continue
      print(f'  {u.name}: {len(u.rows) or 1} trial(s) ...', flush=True)
      try:
        train.train_and_evaluate(unit_config(config, u), os.path.join(workdir, u.name))
      except Interrupted as e:  # Ctrl-C: the unit saved its checkpoint; the sweep stops
        raise RunError(f'sweep interrupted in {u.name}: {e}') from None
      except Exception as e:   # retried, then listed as failed, by run()
        failed.append(u.name)
        print(f'  {u.name}: FAILED ({type(e).__name__}: {e})', flush=True)
  else:
    ctx = multiprocessing.get_context('spawn')
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else []
    free = list(range(workers))
    active = {}
    queue = list(todo)
    saved = dict(os.environ)
    try:
      os.environ.update(single_thread_env())   # inherited by the spawned workers
      while queue or active:
        while queue and free:
          if _skip_finished(workdir, queue[0]):
            queue.pop(0)
            continue
          u, slot = queue.pop(0), free.pop(0)
          core = cores[slot % len(cores)] if cores else None
          p = ctx.Process(target=_run_unit, args=(
              json.dumps(unit_config(config, u).to_dict()), os.path.join(workdir, u.name), core,
              os.getpid()))
          p.start()
          active[p] = (u, slot)
          print(f'  {u.name}: started on core {core} ({len(u.rows) or 1} trial(s))', flush=True)
        time.sleep(0.5)
        for p in [p for p in active if not p.is_alive()]:
          u, slot = active.pop(p)
          free.append(slot)
          # a unit signalled as it ended exits non-zero with its result written: done
          ok = p.exitcode == 0 or _done(workdir, u)
          if not ok:
            failed.append(u.name)
          print(f'  {u.name}: {"done" if ok else f"FAILED (exit {p.exitcode}; see its log.txt)"}'
                f' after {time.time() - t0:.0f} s', flush=True)
    except KeyboardInterrupt:
      for p in active:            # each saves a checkpoint after its current chunk
        p.terminate()
      for p in active:
        p.join(timeout=120)
      raise RunError(f'sweep interrupted; {len(active)} unit(s) saved a checkpoint: rerun the '
                     'same command to resume') from None
    finally:
      os.environ.clear()
      os.environ.update(saved)
  return failed


def _valid_records(workdir: str) -> dict[int, dict[int, dict]]:
  """{member: {step: validation record}} from a unit's metrics.jsonl, in order."""
  out: dict = {}
  for m in records.read_jsonl(os.path.join(workdir, 'metrics.jsonl')):
    if m.get('split') == 'valid':
      out.setdefault(m.get('member', 0), {})[m.get('step')] = m
  return out


def summarize(config, workdir: str, units: list[Unit]) -> dict:
  """Every trial's validation and test numbers (mean over seeds), ranked.

  With ``select='loss'`` a trial's numbers are those of its parameters at
  its lowest validation loss (the trainer records them); with another metric,
  or for runs from before that record, its last validation and final test.
  """
  select = config.sweep.select
  trials = []
  for u in units:
    result = finished(os.path.join(workdir, u.name))
    if result is None:
      continue
    valid = _valid_records(os.path.join(workdir, u.name))
    by_row: dict = {}
    for i, m in enumerate(result['members']):
      hp = {k: v for k, v in m['hparams'].items() if k != 'seed'}
      key = json.dumps(hp, sort_keys=True)
      by_row.setdefault(key, dict(hparams=hp, valid=[], test=[], test_error=[], seeds=[]))
      row = by_row[key]
      at_best = select == 'loss' and m.get('best_valid_loss') is not None
      mine = valid.get(i, {})       # its validation lines: at its best step, or the last
      scored = mine.get(m.get('best_valid_step'), {}) if at_best else (
          list(mine.values())[-1] if mine else {})
      if at_best:
        # the member's parameters at its lowest validation loss, which the
        # trainer keeps and scores on test (as reporting/tables.py reports them)
        row['valid'].append(m['best_valid_loss'])
        row['test'].append(m.get('test_loss_at_best_valid', m['test_loss']))
        row['test_error'].append(m.get('test_error_at_best_valid', m['test_error']))
      else:     # the last validation and the final parameters
        row['valid'].append(scored.get(select, float('nan')))
        row['test'].append(m['test_loss'])
        row['test_error'].append(m['test_error'])
      row['seeds'].append(m['hparams'].get('seed'))
      row.setdefault('flagged', []).append(bool(m.get('diverged')))   # train.diverged_why
      for unit in REPORTED_AS:      # the text tasks' numbers in the papers' unit too
        if isinstance(m.get(f'test_{unit}'), (int, float)):
          row.setdefault(unit, []).append(
              m.get(f'test_{unit}_at_best_valid', m[f'test_{unit}']) if at_best else m[f'test_{unit}'])
        if isinstance(scored.get(unit), (int, float)):
          row.setdefault(f'valid_{unit}', []).append(scored[unit])
    for row in by_row.values():
      finite = (all(math.isfinite(x) for x in row['valid'] + row['test'])
                and not any(row['flagged']))
      trials.append(dict(unit=u.name, structural=dict(u.structural), hparams=row['hparams'],
                         seeds=row['seeds'], valid=float(np.mean(row['valid'])),
                         test=float(np.mean(row['test'])),
                         test_error=float(np.mean(row['test_error'])), diverged=not finite,
                         valid_per_seed=row['valid'], test_per_seed=row['test'],
                         # what ranks beside what: a unit's updates (its budget, or where its
                         # members stopped) and its code, which may differ between units
                         steps=result.get('step'), code_version=result.get('code_version'),
                         **{f'test_{unit}': float(np.mean(row[unit]))
                            for unit in REPORTED_AS if len(row.get(unit, ())) == len(row['test'])},
                         **{f'valid_{unit}': float(np.mean(row[f'valid_{unit}']))
                            for unit in REPORTED_AS
                            if len(row.get(f'valid_{unit}', ())) == len(row['valid'])}))
  ranked = sorted(trials, key=lambda t: (t['diverged'], t['valid']))
  best = next((t for t in ranked if not t['diverged']), None)
  return dict(select=f'valid {select}', trials=ranked, best=best,
              units=len(units), finished_units=len({t['unit'] for t in trials}),
              diverged=sum(t['diverged'] for t in trials))


# The units a task reports its test in beside the loss (result.json's test_<unit>):
# bits per character, perplexity.
REPORTED_AS = ('bpc', 'ppl')


def overrides(trial: dict) -> list[str]:
  """The ``--config.KEY=VALUE`` flags that make the sweep's config one trial's
  run alone: its group's values (fields drawn together each a flag), its
  numbers, and its seed (its seeds, when it had several, as a population).
  ``launch.py --config=<the sweep's> <these>`` trains what the trial's member
  trained, e.g. at another budget (a dropout the trial has above 0 is on, as
  ``unit_config`` and the member's own rate make it)."""
  pairs = [pair for key, value in trial.get('structural', {}).items() for pair in _paths(key, value)]
  pairs += list(trial['hparams'].items())
  seeds = [s for s in trial.get('seeds', ()) if s is not None]
  if len(seeds) == 1:
    pairs.append(('seed', seeds[0]))
  elif seeds:
    pairs.append(('population.seeds', tuple(seeds)))
  return [shlex.quote(f'--config.{key}={_flag_text(value)}') for key, value in pairs]


def _flag_text(value) -> str:
  """A value as config_flags reads it back: floats to every digit, sequences as tuples."""
  if isinstance(value, (list, tuple)):
    return '(' + ''.join(f'{_flag_text(v)},' for v in value) + ')'
  return repr(value) if isinstance(value, float) else str(value)


def _percent(error) -> str:
  """An error rate as a percentage; '-' where the task has none (the word
  models score log-likelihoods only, their error is NaN)."""
  return '-' if error is None or not math.isfinite(error) else f'{100 * error:.2f}%'


def _count(n) -> str:
  return '-' if n is None else f'{n:,}'


def markdown(summary: dict) -> str:
  columns = [f'{split}_{u}' for u in REPORTED_AS for split in ('valid', 'test')
             if any(f'{split}_{u}' in t for t in summary['trials'])]
  extra = lambda t: ''.join(f' {t[c]:.4f} |' if c in t else ' - |' for c in columns)
  lines = [f'Trials ranked on {summary["select"]} (mean over seeds); the best is reported '
           f'on test. {summary["finished_units"]}/{summary["units"]} units finished, '
           f'{summary["diverged"]} trial(s) diverged.', '',
           '| rank | group | hyperparameters | valid | test | '
           + ''.join('{} ({}) | '.format(*c.split('_')) for c in columns)
           + 'test error | updates | code | run |',
           '|---|---|---|---|---|' + '---|' * len(columns) + '---|---|---|---|']
  for r, t in enumerate(summary['trials'], 1):
    hp = ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                   for k, v in t['hparams'].items())
    valid = 'diverged' if t['diverged'] else records.loss_text(t['valid'])
    lines.append(f'| {r} | {t["unit"].split("/")[0]} | {hp} | {valid} | '
                 f'{records.loss_text(t["test"])} |{extra(t)} '
                 f'{_percent(t["test_error"])} | {_count(t.get("steps"))} | '
                 f'{t.get("code_version") or "-"} | {t["unit"]} |')
  if summary['best']:
    b = summary['best']
    also = lambda split: ''.join(f', {b[f"{split}_{u}"]:.4f} {u}' for u in REPORTED_AS
                                 if f'{split}_{u}' in b)
    lines += ['', f'Best: {b["unit"]} {b["hparams"]}: valid {records.loss_text(b["valid"])}'
              f'{also("valid")}, test {records.loss_text(b["test"])}{also("test")} '
              f'(error {_percent(b["test_error"])}).', '',
              'Alone (e.g. at a longer budget): `python launch.py --config=<the sweep\'s> '
              f'--workdir=<a new folder> {" ".join(overrides(b))}`.']
  if summary.get('failed_units'):
    lines += ['', f'FAILED units (no result after their retries; their trials are missing '
              f'above, see their log.txt): {", ".join(summary["failed_units"])}.']
  return '\n'.join(lines) + '\n'


def check(config: ml_collections.ConfigDict, data=None) -> None:
  """Raises a one-line ValueError for a sweep that cannot run, before any runs:
  no sweep declared, a key that is not a config field, a bad range, or a
  group whose config ``train.check_config`` refuses, or an executor whose
  package is not installed. ``data``: the task's arrays in place of the
  config's (``tasks.make``)."""
  if 'sweep' not in config or not (config.sweep.grid or config.sweep.random):
    raise ValueError('the config declares no sweep: set sweep.grid and/or sweep.random '
                     '(see orchestration/sweep.py)')
  executors.engine(_executor(config))   # a missing Ray or submitit, named in one line
  from training import train
  if config.sweep.select not in SELECTS:
    raise ValueError(f'sweep.select={config.sweep.select!r} is not one of {", ".join(SELECTS)} '
                     '(the validation numbers a trial is ranked by)')
  for field in ('retries', 'workers'):
    train.check_range(f'sweep.{field}', config.sweep.get(field, 0), '>= 0')
  units = plan(config, 1)
  for key, dist, *ends in (tuple(r) for r in config.sweep.random):
    if dist != 'choice' and key in train.RANGES:   # the draws lie between the ends
      for end in ends:
        try:
          train.check_range(key, end)
        except ValueError as e:
          raise ValueError(f'sweep.random {key!r} draws from [{ends[0]}, {ends[1]}]: {e}'
                           ) from None
  for unit in units:
    unit_cfg = unit_config(config, unit)
    try:
      train.check_config(unit_cfg, data)
    except ValueError as e:
      raise ValueError(f'sweep group {unit.group}: {e}') from None
    _check_used(unit_cfg, unit)


def _check_used(config, unit: Unit) -> None:
  """Refuses a unit that varies an optimiser field its optimiser does not
  read (``optim.momentum`` with plain SGD): its runs would differ in name only."""
  used = population_lib.member_hparams(config)
  only_some = optim.optimizer_only_fields()
  for key, _ in unit.structural:
    for field in key.split('+'):
      if field in only_some and field not in used:
        raise ValueError(f'sweep group {unit.group}: it varies {field}, which '
                         f'optim.name={config.optim.name!r} does not use')
