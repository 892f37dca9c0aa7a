"""A run's workdir: a rerun resumes the run it names, and nothing else.

- ``open_workdir`` creates and locks the folder (``records.WorkdirLock``)
  and writes ``config.json``. A rerun whose config differs from the recorded
  one in anything a rerun may not change (``SAFE_TO_CHANGE``: the budget and
  how often it reports or saves) is refused with a one-line error naming
  the fields, so that no run's records mix two configs.
- ``MetricWriter`` appends ``metrics.jsonl`` and, on resume, trims it to the
  restored step, so that the repeated steps are not logged twice.
- ``branch`` starts a new workdir from another run's checkpoint
  (``launch.py --branch_from``), with that run's history up to it.

The checkpoints themselves are orbax's (``training/train.py``); the atomic
writes and the lock are ``training/records.py``'s.
"""

from __future__ import annotations

import json
import math
import os
import shutil

import ml_collections

from training import events
from training import records
from training.errors import RunError


# Fields a rerun may change: how long the run goes on and how often it reports
# or saves, not what it computes (the step is the random stream's index, so
# chunks of another length give the same run). The step budget also sets the
# length of a warmup_cosine schedule, and is then not safe to change.
SAFE_TO_CHANGE = ('train.num_steps', 'task.epochs', 'train.log_every', 'train.eval_every',
                  'train.checkpoint_every_s', 'train.patience', 'train.patience_min_delta',
                  'data_dir', 'population.layout')
# How a sweep is laid out and dispatched, and what a run declares it reproduces
# (config.paper), do not change what it computes.
SAFE_PREFIXES = ('sweep.', 'paper.')
_BUDGET = ('train.num_steps', 'task.epochs')
# Fields that act only where another field has a value: added to the code
# later, they do not count against a run that records none of them and
# where they could not have acted (the RNN rows of Bengio Table 1 were run
# before validation's NADE sampling had its own count).
ACTS_ONLY_WHERE = {'train.valid_accuracy_samples': ('model.output', 'nade')}


def config_changes(old: dict, new: dict) -> list[str]:
  """The dotted fields whose values differ between two configs (as JSON), less
  those a rerun may change. A field on one side only counts when it is on
  (a field added to the code later, left at its off default, does not) and
  could act (``ACTS_ONLY_WHERE``)."""
  safe = set(SAFE_TO_CHANGE)
  if new.get('optim', {}).get('schedule', 'constant') != 'constant':
    safe -= set(_BUDGET)
  a, b = records.flatten(old), records.flatten(new)
  missing = object()
  unset = lambda k, v: v is missing or records.is_unset(k, v)
  inert = lambda k: k in ACTS_ONLY_WHERE and all(
      c.get(ACTS_ONLY_WHERE[k][0]) != ACTS_ONLY_WHERE[k][1] for c in (a, b))
  return sorted(k for k in a.keys() | b.keys() if k not in safe and not k.startswith(SAFE_PREFIXES)
                and a.get(k, missing) != b.get(k, missing)
                and not ((k not in a or k not in b) and (inert(k) or unset(k, a.get(k, missing))
                                                         and unset(k, b.get(k, missing)))))


def changes_shown(old: dict, new: dict, changed: list[str], limit: int = 6) -> str:
  """'field old -> new, ...' for the first ``limit`` of ``changed``, then how many more."""
  a, b = records.flatten(old), records.flatten(new)
  more = f' and {len(changed) - limit} more' if len(changed) > limit else ''
  return ', '.join(f'{k} {a.get(k)!r} -> {b.get(k)!r}' for k in changed[:limit]) + more


def config_json(config: ml_collections.ConfigDict) -> str:
  return config.to_json_best_effort(indent=2) + '\n'


def checkpoint_steps(workdir: str) -> list[int]:
  """The steps of the checkpoints in ``workdir``, in order (none: [])."""
  folder = os.path.join(workdir, 'checkpoints')
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def has_checkpoint(workdir: str) -> bool:
  return bool(checkpoint_steps(workdir))


def checkpoint_elapsed(workdir: str) -> float | None:
  """Seconds of wall time the run in ``workdir`` had spent when it wrote its
  latest checkpoint (over all its resumes), from that checkpoint's ``meta``
  item; None without a checkpoint or where the item cannot be read."""
  steps = checkpoint_steps(workdir)
  if not steps:
    return None
  path = os.path.join(workdir, 'checkpoints', str(steps[-1]), 'meta', 'metadata')
  try:
    with open(path) as f:
      elapsed = json.load(f).get('elapsed')
  except (OSError, ValueError, AttributeError):
    return None
  return float(elapsed) if isinstance(elapsed, (int, float)) else None


def branch(config: ml_collections.ConfigDict, workdir: str, source: str) -> dict:
  """Starts ``workdir`` from another run's checkpoint: ``source`` is
  ``DIR`` (its latest checkpoint) or ``DIR@STEP``. Copies that checkpoint
  and the source's metrics up to it, so that the new run's records hold its
  whole history; returns what ``config.json`` records under
  ``origin.branched_from`` (the source, the step, and the fields the new
  config changes). The configs may differ in anything that leaves the train
  state's structure as it was (a learning-rate schedule, patience, ...)."""
  folder, sep, at = source.partition('@')
  if sep and not at:
    raise RunError(f'--branch_from={source}: no step after \'@\' (DIR@STEP names a checkpoint, '
                   f'DIR alone its latest)')
  ckpts = os.path.join(folder, 'checkpoints')
  steps = checkpoint_steps(folder)
  if not steps:
    raise RunError(f'--branch_from={source}: {folder} has no checkpoint to start from')
  if at and (not at.isdigit() or int(at) not in steps):
    raise RunError(f'--branch_from={source}: no checkpoint at step {at!r} in {folder} '
                   f'(it has {", ".join(map(str, steps))})')
  step = int(at) if at else steps[-1]
  old = records.read_json(os.path.join(folder, 'config.json'))
  if not isinstance(old, dict):
    raise RunError(f'--branch_from={source}: {folder}/config.json is missing or unreadable')
  if has_checkpoint(workdir):
    raise RunError(f'{workdir} holds a run already; --branch_from starts a new workdir '
                   '(rerun without it to resume this one)')
  shutil.copytree(os.path.join(ckpts, str(step)), os.path.join(workdir, 'checkpoints', str(step)))
  metrics = os.path.join(folder, 'metrics.jsonl')
  if os.path.exists(metrics):
    with open(metrics) as f:
      keep = [line for line in f if keep_line(line, step, retest=True)]   # not its test
    records.write_atomic(os.path.join(workdir, 'metrics.jsonl'), ''.join(keep))
  changed = config_changes({k: v for k, v in old.items() if k != 'origin'},
                           json.loads(config_json(config)))
  return dict(workdir=folder, step=step, changed=changed)


def past_budget(folder: str, step: int, budget: int) -> str:
  """The refusal of a rerun whose budget is below the step its checkpoint reached."""
  return (f'{folder} holds a checkpoint at step {step}, past this config\'s budget of {budget} '
          'steps; rerun with its own budget (or a larger one) to go on with it, or branch a new '
          'workdir from an earlier step (--branch_from=DIR@STEP)')


def undo_branch(workdir: str) -> None:
  """Removes what a refused branch wrote (``branch``'s checkpoint and
  metrics, ``open_workdir``'s config.json), so that the folder can be
  branched into again with another config."""
  shutil.rmtree(os.path.join(workdir, 'checkpoints'), ignore_errors=True)
  for name in ('metrics.jsonl', 'config.json'):
    if os.path.exists(os.path.join(workdir, name)):
      os.remove(os.path.join(workdir, name))


def open_workdir(config: ml_collections.ConfigDict, workdir: str,
                  origin: dict | None = None, branch_from: str | None = None
                  ) -> records.WorkdirLock:
  """Creates and locks the workdir, refuses a rerun under another config, and
  writes config.json (atomically; only once nothing differs), with ``origin``
  (what made the config; not compared) under the key 'origin'. With
  ``branch_from``, a new workdir first gets another run's checkpoint (``branch``)."""
  records.make_folder(workdir)
  lock = records.WorkdirLock(workdir)
  try:
    path = os.path.join(workdir, 'config.json')
    text = config_json(config)
    if branch_from:
      origin = dict(origin or {}, branched_from=branch(config, workdir, branch_from))
    old = records.read_json(path)
    if isinstance(old, dict):
      before = old.get('origin') or {}
      origin = origin or before
      if 'branched_from' in before:    # a branched run resumed: still where it came from
        origin = dict(origin, branched_from=before['branched_from'])
      old = {k: v for k, v in old.items() if k != 'origin'}
    started = has_checkpoint(workdir) and not branch_from
    if not started and not branch_from and records.read_json(
        os.path.join(workdir, 'result.json')) is not None:
      raise RunError(f'{workdir} holds a finished run (result.json) and no checkpoint to go on '
                     'from: starting it again would overwrite its records; use a new workdir '
                     '(or delete its result.json to start it over)')
    if started and old is None:
      raise RunError(f'{path} is missing or unreadable, so this rerun cannot be checked '
                     f'against the run it would resume; restore it, or use a new workdir')
    if old is not None and started:
      changed = config_changes(old, json.loads(text))
      if changed:
        shown = changes_shown(old, json.loads(text), changed)
        schedule = records.flatten(json.loads(text)).get('optim.schedule', 'constant')
        why = (f'; the budget sets the {schedule} schedule, so it cannot change mid-run'
               if set(changed) & set(_BUDGET) and schedule != 'constant' else '')
        raise RunError(f'{workdir} holds a run with another config ({shown}){why}; rerun '
                       'with its config to resume it, or use a new workdir for the new one')
    if origin:                           # none given or kept: no key, not an empty one
      text = json.dumps(dict(json.loads(text), origin=origin), indent=2) + '\n'
    # kept, so that a refusal the trainer can only make later (a budget below
    # the checkpoint's step) puts the record back as it was
    if started and os.path.exists(path):
      with open(path) as f:
        lock.previous_config = f.read()
    records.write_atomic(path, text)
  except BaseException:
    lock.release()
    raise
  return lock


class MetricWriter:
  """Appends JSON lines, one flushed write per record.

  On resume it keeps the lines up to the restored step (the steps after it
  are trained again and logged again; so is the test of a finished run that
  is run again, ``retest``) and drops a line torn by a kill; the trimmed file replaces the
  old one atomically, so a kill during the trim loses nothing. With no path
  (a process other than the main one) it writes nothing.

  Each member's numbers also go to TensorBoard event files in
  ``tensorboard/member<i>/`` beside the file (``training/events.py``); a resumed run
  starts new ones, and TensorBoard drops the steps a restart repeats.
  """

  def __init__(self, path: str | None, resume_step: int, retest: bool = False):
    self.path = path
    self.events = {}
    if path is not None and os.path.exists(path):
      with open(path) as f:
        lines = f.readlines()
      keep = [line if line.endswith('\n') else line + '\n' for line in lines
              if keep_line(line, resume_step, retest)]
      if keep != lines:
        records.write_atomic(path, ''.join(keep))

  def write(self, record: dict):
    if self.path is None:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    member = record.get('member', 0)
    if member not in self.events:
      self.events[member] = events.EventWriter(
          os.path.join(os.path.dirname(self.path), 'tensorboard', f'member{member}'))
    split = record.get('split', 'train')
    self.events[member].scalars(record['step'], {
        f'{split}/{k}': v for k, v in record.items()
        if k not in ('step', 'member', 'split', 'active', 'count')
        and isinstance(v, (int, float)) and not isinstance(v, bool)})

  def close(self):
    self.events.clear()


def keep_line(line: str, resume_step: int, retest: bool) -> bool:
  try:
    r = json.loads(line)
  except ValueError:
    return False       # torn by a kill mid-write
  step = r.get('step', 0) if isinstance(r, dict) else math.inf
  return step < resume_step or (step == resume_step and not (retest and r.get('split') == 'test'))
