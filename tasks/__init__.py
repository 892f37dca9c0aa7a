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
"""

from __future__ import annotations

from typing import Any, Callable

import ml_collections

from datasets import pathological
from tasks import long_series, music, synthetic, text
from tasks.base import KINDS, Task, per_step_loss, windowed_evaluator

REGISTRY: dict[str, Callable[[ml_collections.ConfigDict, Any], Task]] = {
    **{name: synthetic.build for name in pathological.TASKS},
    'music': music.build,
    'ptb_char': text.build,
    'ptb_word': text.build,
    'long_series': long_series.build,
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


__all__ = ['KINDS', 'OUTPUTS', 'REGISTRY', 'Task', 'make', 'per_step_loss',
           'windowed_evaluator']
