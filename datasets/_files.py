"""Shared file helpers for the data loaders: where the data lives, what to say
when a file is missing or not the original, how to check a file cheaply,
and how to read a downloaded pickle safely.

Every file is checked against its known checksum when it is loaded (the PTB
files' MD5s in ``ptb.MD5``, the music pickles' content digests in
``music.FINGERPRINTS``). Digests are cached by the file's size, modification
time, change time and inode in ``CACHE_FILE``, so a file is hashed again
only after it changed: a rewrite of the same size whose modification time
was kept (``cp -p``, ``rsync -t``, ``touch -r``) still changes the change
time, which no user can set (before Linux 6.13 file times move once a kernel
tick, 1-10 ms: only a rewrite within the tick of the check would keep it).

Data folder layout (the same as the reference copy in ``shared/data``)::

    <data_dir>/music/<Name>.pickle      e.g. 'JSB Chorales.pickle'
    <data_dir>/ptb/ptb.{train,valid,test}.txt
    <data_dir>/ptb/ptb.char.{train,valid,test}.txt
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import pickle
import shlex
import stat
import tempfile

from training.errors import RunError

ENV_VAR = 'RNNOPT_DATA'
DEFAULT_DATA_DIR = '~/.cache/rnnopt'
CACHE_FILE = '~/.cache/rnnopt/checked.json'   # {path: [size, mtime_ns, ctime_ns, inode, kind, digest]}
# What ``python -m datasets.download`` fetches; any other corpus is the user's to place.
DOWNLOADABLE = ('music', 'ptb', 'all')
WHERE = f'the data folder is --config.data_dir, else ${ENV_VAR}, else {DEFAULT_DATA_DIR}'


def get_it(corpus: str, root, them: str = 'it') -> str:
  """How to get ``corpus``'s files into the data folder ``root``: the download
  command, or, for a corpus nothing downloads (a user's own), where they go."""
  if corpus in DOWNLOADABLE:
    return f'get {them} with: python -m datasets.download {corpus} --data_dir {shlex.quote(str(root))}'
  return (f'nothing downloads {corpus}: place your own files in '
          f'{shlex.quote(str(pathlib.Path(root) / corpus))} ({WHERE})')


class DataError(RunError, ValueError):
  """A data file that cannot be used as it is; the message (one line) says
  what is wrong and how to get the original."""


class DataFileMissing(RunError, FileNotFoundError):
  """A data file is not in the data folder; the message says how to get it."""


def how_to_fix(corpus: str, data_dir=None) -> str:
  """The end of every data error: how to get the original files back."""
  root = resolve_data_dir(data_dir)
  if corpus not in DOWNLOADABLE:
    return f'replace it with a good copy ({WHERE})'
  return (f're-download with: python -m datasets.download {corpus} --data_dir '
          f'{shlex.quote(str(root))}, or place the original files there ({WHERE})')


def cached_digest(path, kind: str, compute) -> str:
  """``compute()`` (a digest of the file at ``path``), or the one cached for
  this path at its current size, modification and change times and inode.
  The cache is a small JSON file; when it cannot be read or written the
  digest is just computed."""
  st = os.stat(path)
  key = os.path.abspath(path)
  stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, kind]
  cache_path = os.path.expanduser(CACHE_FILE)
  try:
    with open(cache_path) as f:
      cache = json.load(f)
    if not isinstance(cache, dict):
      cache = {}
  except (OSError, ValueError):
    cache = {}
  entry = cache.get(key)
  if isinstance(entry, list) and len(entry) == len(stamp) + 1 and entry[:-1] == stamp:
    return entry[-1]
  digest = compute()
  cache[key] = stamp + [digest]
  try:
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cache_path), suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
      json.dump(cache, f)
    os.replace(tmp, cache_path)
  except OSError:
    pass
  return digest


def unreadable(path, error: OSError, corpus: str, data_dir=None) -> DataError:
  """The one-line error for a data file (or folder) the system will not let us read."""
  why = error.strerror or type(error).__name__
  return DataError(f'{path} cannot be read ({why}): check its permissions (and its folder\'s); '
                   f'if it is damaged, {how_to_fix(corpus, data_dir)}')


def check_md5(path, expected: str, corpus: str, data_dir=None) -> None:
  """Raises DataError unless the file's MD5 is ``expected`` (cached)."""
  try:
    got = cached_digest(path, 'md5', lambda: md5sum(path))
  except OSError as e:
    raise unreadable(path, e, corpus, data_dir) from None
  if got != expected:
    raise DataError(f'{path} is not the original file (md5 {got}, expected {expected}): it was '
                    f'changed or cut short; {how_to_fix(corpus, data_dir)}')


def resolve_data_dir(data_dir: str | os.PathLike | None = None
                     ) -> pathlib.Path:
  """Returns the data folder: `data_dir` > $RNNOPT_DATA > ~/.cache/rnnopt.

  An empty string counts as unset, so a config field may default to ''.
  """
  return pathlib.Path(_resolve(data_dir)[0]).expanduser()


def _resolve(data_dir):
  if data_dir:
    return os.fspath(data_dir), 'argument'
  if os.environ.get(ENV_VAR):
    return os.environ[ENV_VAR], f'${ENV_VAR}'
  return DEFAULT_DATA_DIR, 'default'


def require(relpath: str, data_dir=None, corpus: str = 'all') -> pathlib.Path:
  """Returns `<data folder>/relpath`, or raises DataFileMissing (one line), or
  DataError (one line) when the system will not say (a folder we may not enter).

  Args:
    relpath: path inside the data folder, e.g. 'ptb/ptb.train.txt'.
    data_dir: explicit data folder (from the config); see resolve_data_dir.
    corpus: the `datasets.download` target that fetches it ('music', 'ptb').
  """
  root = resolve_data_dir(data_dir)
  path = root / relpath
  try:
    is_file = stat.S_ISREG(os.stat(path).st_mode)
  except (FileNotFoundError, NotADirectoryError):
    is_file = False
  except OSError as e:          # e.g. a folder on the way we may not enter
    raise unreadable(path, e, corpus, data_dir) from None
  if not is_file:
    source = _resolve(data_dir)[1]
    raise DataFileMissing(
        f'missing data file {relpath!r}: looked for {path} (data folder from '
        f'{source}); {get_it(corpus, root)}')
  return path


def missing(files, data_dir=None) -> str | None:
  """None when every ``(path in the data folder, datasets.download target)``
  of ``files`` is a file there; else one line naming those that are not and
  the command that gets them (what a run would stop on after compiling, said
  before anything starts)."""
  root = resolve_data_dir(data_dir)
  absent = sorted({(rel, corpus) for rel, corpus in files if not (root / rel).is_file()})
  if not absent:
    return None
  corpora = sorted({corpus for _, corpus in absent})
  if len(corpora) > 1 and set(corpora) <= set(DOWNLOADABLE):
    corpora = ['all']                     # one download command fetches them all
  return (f'missing data file(s) {", ".join(repr(rel) for rel, _ in absent)} in {root} (data folder '
          f'from {_resolve(data_dir)[1]}); ' + '; '.join(get_it(c, root, 'them') for c in corpora))


def md5sum(path: str | os.PathLike) -> str:
  """Hex MD5 of a file, read in 1 MiB blocks."""
  digest = hashlib.md5()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


class SafeUnpickler(pickle.Unpickler):
  """Unpickler that refuses every global: only builtin containers and scalars
  (dict, list, tuple, int, str, ...) can be built, never a call to a function.

  The music pickles hold only dicts, lists, tuples and ints, so this loses
  nothing, while a tampered download cannot run code (plain `pickle.load`
  would call whatever `__reduce__` names, e.g. `os.system`).
  """

  def find_class(self, module, name):
    raise pickle.UnpicklingError(
        f'refusing to load global {module}.{name}: this pickle should hold '
        'only dicts, lists, tuples and ints')


def safe_load(path: str | os.PathLike):
  """Loads a pickle file with SafeUnpickler (Python 2 pickles included)."""
  with open(path, 'rb') as f:
    return SafeUnpickler(f, encoding='latin1').load()


def safe_loads(data: bytes):
  """Like safe_load, from bytes."""
  return SafeUnpickler(io.BytesIO(data), encoding='latin1').load()
