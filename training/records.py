"""How a run's records reach the disk: atomically, under a lock, and read
back in a way that survives a kill at any instant.

A kill -9 can land anywhere. Every record that is rewritten (``config.json``,
``result.json``, ``sweep.json``, ``metrics.jsonl`` when a resume trims it) is
written to a temporary file in the same folder, flushed to the disk and
renamed over the old one (``os.replace`` is atomic on POSIX), so a reader
sees the old file or the new one, never a mixture. ``metrics.jsonl`` is
otherwise appended one line at a time; only its last line can be torn, and
``read_jsonl`` drops such a line.

A workdir is held by one process at a time: ``WorkdirLock`` takes an
``fcntl.flock`` on ``<workdir>/lock``, which the kernel releases when the
process ends however it ends, so a killed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile

from training.errors import RunError

LOCK_FILE = 'lock'
_UMASK = os.umask(0o22)
os.umask(_UMASK)


def write_atomic(path: str, text: str) -> None:
  """Replaces ``path`` by ``text`` in one step (temporary file, fsync, rename)."""
  folder = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  try:
    os.fchmod(fd, 0o666 & ~_UMASK)     # mkstemp's 0600 would hide records from others
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
  try:   # the rename itself reaches the disk with the folder's entry
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
      os.fsync(dir_fd)
    finally:
      os.close(dir_fd)
  except OSError:
    pass


def write_json(path: str, obj, **kwargs) -> None:
  write_atomic(path, json.dumps(obj, indent=2, **kwargs) + '\n')


def flatten(d: dict, prefix: str = '') -> dict:
  """A nested config dict as {'dotted.name': value} (empty dicts kept as values)."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict) and v:
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def not_filed_why(config: dict, size: int | None) -> str:
  """Why a run is not filed under the paper row it declares (``config.paper``,
  ``experiments.common.declare_paper``): a field of its task changed since the
  declaration (an override flag; ``paper.task`` holds the task as declared,
  ``tasks.row_task``), or its model of ``size`` parameters is over the row's
  ``paper.max_params``. '' when it is filed, or when it declares no table.
  The trainer says it when a run starts; ``launch.py table`` leaves such a
  record out with it. A record from before the declaration carried these
  has nothing to compare with."""
  paper = config.get('paper') or {}
  if not paper.get('table'):
    return ''
  then = flatten(paper.get('task') or {}, 'task.')
  now = flatten(config.get('task') or {}, 'task.')
  why = [f'{k}={now.get(k)!r} (the row\'s: {v!r})' for k, v in sorted(then.items())
         if now.get(k) != v]
  limit = paper.get('max_params') or 0
  if limit and size is not None and size > limit:
    why.append(f'{size:,} parameters, over the row\'s {limit:,}')
  return '; '.join(why)


# A config field added to the code after a run was recorded is absent from
# that run's config.json. Absent counts as its value when the value is "off"
# or, for a field whose default is on (a form, a name), that default: a new
# field whose default is on needs its line here, or every earlier run would
# refuse to resume (tests/test_faults.py fails until it has one).
_OFF = (None, False, 0, '', [], {})
_DEFAULTS_ON = {'reg.omega_form': 'squared', 'optim.accumulate_steps': 1,
                'model.compute_dtype': 'float32', 'train.anneal_min_improvement': 0.003,
                'model.gate_bias': True, 'task.regression_error': 'squared',
                'model.dropout_on_inputs': True}


def is_unset(key: str, value) -> bool:
  """Whether a config field at ``value`` is what a run recorded before the
  field existed did (off, or its default where that is on)."""
  if key in _DEFAULTS_ON:          # off is a setting of its own here (gate_bias=False)
    return _DEFAULTS_ON[key] == value
  return value in _OFF


def read_json(path: str):
  """The JSON object in ``path``, or None when it is absent, empty or torn."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def read_jsonl(path: str) -> list[dict]:
  """The records of a JSON-lines file; a line that does not parse (a write
  cut short by a kill) is dropped. An absent file has no records."""
  out = []
  try:
    with open(path) as f:
      lines = f.readlines()
  except FileNotFoundError:
    return out
  for line in lines:
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError:
      continue
    if isinstance(record, dict):
      out.append(record)
  return out


def make_folder(path: str, what: str = 'workdir') -> None:
  """Creates ``path`` (and its parents); a one-line RunError where it cannot be."""
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    reason = 'is a file' if isinstance(e, FileExistsError) else e.strerror
    raise RunError(f'cannot use {path} as the {what}: {reason}; '
                   'choose a folder you can write to') from None


def loss_text(x: float) -> str:
  """A loss as the progress lines and ``sweep.md`` show it: four decimals
  (an NLL's 3.0456), four significant digits below 0.01, where four
  decimals would read 0.0000 (the adding problem's MSE of 4.732e-06)."""
  return f'{x:.4g}' if math.isfinite(x) and abs(x) < 0.01 and x != 0 else f'{x:.4f}'


def _holder(fd: int) -> str:
  """The pid a lock's holder wrote into the lock file ('?' if none yet)."""
  return os.pread(fd, 64, 0).decode(errors='replace').strip() or '?'


def lock_holder(workdir: str) -> str | None:
  """The process that holds ``workdir``'s lock (its pid, as the holder wrote
  it), or None where none does: no lock file, or one left by a run that has
  ended (the kernel dropped its lock). Asks with a shared lock held for an
  instant, so it never waits."""
  try:
    fd = os.open(os.path.join(workdir, LOCK_FILE), os.O_RDONLY)
  except OSError:
    return None
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except BlockingIOError:
    return _holder(fd)
  finally:
    os.close(fd)       # drops the shared lock, if it was taken
  return None


class WorkdirLock:
  """An exclusive lock on a workdir for the life of this object (or of the
  process): a second process is refused with a one-line RunError naming the
  holder. Use as a context manager or call ``release``."""

  def __init__(self, workdir: str, what: str = 'run'):
    self.path = os.path.join(workdir, LOCK_FILE)
    self.previous_config = None   # a resumed run's config.json before this start (workdir.open_workdir)
    try:
      self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise RunError(f'cannot write in the workdir {workdir}: {e.strerror}; '
                     'choose a folder you can write to') from None
    try:
      fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _holder(self.fd)
      os.close(self.fd)
      raise RunError(f'the workdir {workdir} is in use by process {holder} (another {what} of '
                     'it); wait for it to end, or stop it, then rerun') from None
    os.ftruncate(self.fd, 0)
    os.pwrite(self.fd, f'{os.getpid()}\n'.encode(), 0)

  def release(self) -> None:
    if self.fd is not None:
      os.close(self.fd)    # closing drops the flock; the file stays (harmless, reused)
      self.fd = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()
