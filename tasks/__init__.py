"""Tasks: what the trainer needs of each kind of data, chosen by name.

``make(config, data=None)`` builds the task ``config.task.name`` through
``REGISTRY`` (name -> ``build(config, data) -> Task``). ``data``: the task's
arrays in the form its module's ``load`` (or ``generate``) returns, in place
of reading (or generating) them; every task keeps them as ``task.data``.

- the pathological problems (``tasks.synthetic``; ``datasets.pathological``):
  fresh sequences every step, no data;
- ``music`` (``tasks.music``): piano-rolls, split -> [uint8 [frames, 88]];
- ``ptb_char``, ``ptb_word`` (``tasks.text``): (split -> int ids [N], the
  symbols or their number);
- ``long_series`` (``tasks.long_series``): split -> prices [N, L].

A task that reads files names them in ``DATA_FILES``, so that ``missing_data``
can say what is missing before a plan of runs starts. ``row_task`` names the
fields that make the task a paper's row is about (``experiments.common.declare_paper``
records them; ``training.records.not_filed_why`` finds a run that changed them).
"""

from __future__ import annotations

from typing import Any, Callable

import ml_collections

from datasets import _files, pathological
from tasks import long_series, music, synthetic, text
from tasks.base import KINDS, Task, per_step_loss, windowed_evaluator

REGISTRY: dict[str, Callable[[ml_collections.ConfigDict, Any], Task]] = {
    **{name: synthetic.build for name in pathological.TASKS},
    'music': music.build,
    'ptb_char': text.build,
    'ptb_word': text.build,
    'long_series': long_series.build,
}

# the data files a task reads (tasks not listed read none): config -> [(path, download target)]
DATA_FILES: dict[str, Callable[[ml_collections.ConfigDict], list[tuple[str, str]]]] = {
    'music': music.data_files,
    'ptb_char': text.data_files,
    'ptb_word': text.data_files,
}

# model.output: what each task's model may end in ('linear' where not listed)
OUTPUTS = {'music': ('linear', 'nade'), 'ptb_word': ('class_softmax', 'softmax')}


def make(config: ml_collections.ConfigDict, data: Any = None) -> Task:
  """The task of ``config.task`` (``REGISTRY``), built from ``data`` when given."""
  name = config.task.name
  if name not in REGISTRY:
    raise ValueError(f'task.name={name!r} is not one of {", ".join(sorted(REGISTRY))}')
  output = config.get('model', {}).get('output', 'linear')
  fits = OUTPUTS.get(name, ('linear',))
  if output not in fits:
    raise ValueError(f"task.name={name} needs model.output={' or '.join(map(repr, fits))}, "
                     f'not {output!r}')
  return REGISTRY[name](config, data)


def missing_data(config: ml_collections.ConfigDict) -> str | None:
  """None when the data files ``config``'s task reads are in its data folder;
  else one line naming the missing ones and the command that gets them.
  Cheap (no file is read): ``reproduce`` and ``sweep`` ask it of every run
  before starting any, rather than have each fail on its own."""
  name = config.task.name
  if name not in DATA_FILES:
    return None
  return _files.missing(DATA_FILES[name](config), config.get('data_dir') or None)


# A pathological problem's fields beside its name and kwargs that make its data
# and its metric (and their defaults in a config written before them).
_SYNTHETIC_ROW_FIELDS = (('min_length', None), ('max_length', None), ('regression_error', 'squared'))


def row_task(task) -> dict:
  """The fields of ``task`` (``config.task``: a ConfigDict, or config.json's
  dict) that make the data and the metric a paper's row is about: the name,
  every ``kwargs`` (dataset, characters ahead, a problem's variant), and a
  pathological problem's lengths and regression error. The other fields
  (batch size, window, epochs, shuffling) are how a run trains on it."""
  task = task.to_dict() if hasattr(task, 'to_dict') else dict(task)
  out = {'name': task.get('name'), 'kwargs': dict(task.get('kwargs') or {})}
  if task.get('name') in pathological.TASKS:
    out.update({k: task.get(k, default) for k, default in _SYNTHETIC_ROW_FIELDS})
  return out


__all__ = ['DATA_FILES', 'KINDS', 'OUTPUTS', 'REGISTRY', 'Task', 'make', 'missing_data',
           'per_step_loss', 'row_task', 'windowed_evaluator']
