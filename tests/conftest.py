"""Test-session setup: cheaper XLA compiles, shared by every test process.

Most of the suite's time is XLA compiling small programs that then run for a
fraction of a second. Two settings, for tests only (runs are compiled as
usual):

- ``--xla_backend_optimization_level=0``: LLVM without its optimisation
  passes. A temporal-order train chunk compiles in 6 s instead of 10 s and
  runs in 0.18 s instead of 0.07 s; the everyday suite (``-m "not slow"``, two
  xdist workers, idle 2-core AMD EPYC) fell from 263 s to 172 s. The programs
  compute the same thing, so every reference and equivalence test holds.
- A persistent compilation cache: each ``train_and_evaluate`` builds fresh
  jitted functions, so two runs of one config compile twice, and every
  subprocess (the command-line tests) starts cold. Keyed by the program text,
  the cache turns the repeats into disk reads (135 s -> 82 s for one test of
  four runs of one config).

The cache lives in a fresh temporary folder per session, named through the
environment so that pytest-xdist workers and the tests' subprocesses share
it, and is removed when the session that made it ends. Set
``RNNOPT_TEST_JAX_CACHE`` yourself to keep a cache between sessions.

The real corpora (tests marked ``realdata``) are found one way everywhere:
the ``real_data`` fixture (``find_real_data``).
"""

import atexit
import os
import pathlib
import shutil
import tempfile

import jax
import pytest

from datasets import _files

_VAR = 'RNNOPT_TEST_JAX_CACHE'

if _VAR not in os.environ:           # the first process of the session (not an xdist worker)
  os.environ[_VAR] = tempfile.mkdtemp(prefix='rnnopt-jax-cache-')
  atexit.register(shutil.rmtree, os.environ[_VAR], ignore_errors=True)

# Before any backend starts; subprocesses read the same settings from the environment.
_FAST = '--xla_backend_optimization_level=0'
if _FAST not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST}".strip()
os.environ['JAX_COMPILATION_CACHE_DIR'] = os.environ[_VAR]
os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '-1'
jax.config.update('jax_compilation_cache_dir', os.environ[_VAR])
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
jax.config.update('jax_persistent_cache_min_entry_size_bytes', -1)


# --- the real corpora ----------------------------------------------------------

# The reference copy beside the checkout (``shared/data`` next to the repository).
SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data'


def find_real_data(files) -> pathlib.Path:
  """The data folder holding every one of ``files`` (paths inside it, e.g.
  ``'ptb/ptb.valid.txt'``: exactly the files the test reads).

  - ``$RNNOPT_DATA`` set: that folder, and a file it lacks fails the test
    (the variable says the corpora are there: a mistyped or half-copied
    folder must not pass as skipped tests);
  - unset: ``../shared/data`` beside the repository, then the loaders' own
    default ``~/.cache/rnnopt``, the first that holds every file; where
    neither does, the test is skipped, saying where it looked.
  """
  files = [str(f) for f in files]

  def lacking(folder):
    return [f for f in files if not (folder / f).is_file()]

  named = os.environ.get(_files.ENV_VAR)
  if named:                          # as the loaders: an empty value counts as unset
    folder = pathlib.Path(named).expanduser().resolve()
    if missing := lacking(folder):
      pytest.fail(f'${_files.ENV_VAR}={named} lacks {", ".join(missing)}: point it at a '
                  f'complete data folder (python -m datasets.download all --data_dir '
                  f'{named}), or unset it to skip the tests that need the corpora',
                  pytrace=False)
    return folder
  looked = []
  for folder in (SHARED_DATA, pathlib.Path(_files.DEFAULT_DATA_DIR).expanduser()):
    if not (missing := lacking(folder)):
      return folder
    more = f' and {len(missing) - 1} more' if len(missing) > 1 else ''
    looked.append(f'{folder} lacks {missing[0]}{more}')
  pytest.skip(f'real corpora not found ({"; ".join(looked)}): set ${_files.ENV_VAR} to the '
              'data folder, or run python -m datasets.download all')


@pytest.fixture
def real_data(monkeypatch):
  """``real_data(*files) -> folder``: ``find_real_data(files)``, made the
  test's ``$RNNOPT_DATA``, so that the loaders and a config's default
  ``data_dir`` read the folder the test checked."""
  def find(*files):
    folder = find_real_data(files)
    monkeypatch.setenv(_files.ENV_VAR, str(folder))
    return folder
  return find
