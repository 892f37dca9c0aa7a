r"""The command line of rnnopt. The only place that reads flags.

    python launch.py --config=experiments/temporal_order.py --workdir=DIR
    python launch.py --config=experiments/temporal_order.py:method=sgd-c,length=100 \
        --workdir=DIR --config.optim.learning_rate=0.02

Rerunning the same command resumes from the workdir's last checkpoint.
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, e.g. experiments/temporal_order.py[:ARGS].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder for metrics, checkpoints and results.')

COMMANDS = ('train',)


def main(argv):
  command = argv[1] if len(argv) > 1 else 'train'
  if command not in COMMANDS or len(argv) > 2:
    raise app.UsageError(f'unknown command {" ".join(argv[1:])!r}; commands: {", ".join(COMMANDS)}')
  if _CONFIG.value is None or _WORKDIR.value is None:
    raise app.UsageError('--config and --workdir are required')

  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)   # orbax logs every file it writes at INFO
  import train   # after flag parsing: importing JAX is slow, and --help should not wait
  try:
    train.check_config(_CONFIG.value)
  except ValueError as e:
    sys.exit(f'config error: {e}')
  except FileNotFoundError as e:   # a corpus that is not there: the message says how to get it
    sys.exit(f'data error: {e}')
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


def _one_line(error: Exception) -> str:
  """The gist of a flag or config error, without the traceback config_flags embeds."""
  text = str(error)
  if len(text) > 1 and text[0] == text[-1] == "'":   # a KeyError's repr, quoted once more
    text = text[1:-1]
  text = text.replace('\\n', '\n').replace("\\'", "'")
  lines = [l.strip() for l in text.splitlines()
           if l.strip() and not l.strip().startswith('Pass --help')]
  if any(l.startswith('Traceback') or 'Errno' in l for l in lines):
    return lines[-1]
  return ': '.join(lines)


def parse_flags(argv):
  """absl's flag parsing, with config mistakes reported in one line."""
  try:
    argv = flags.FLAGS(argv)
    if flags.FLAGS['config'].present:
      _CONFIG.value.keys()   # config_flags defers some load errors to the first use
    return argv
  except Exception as e:  # config files and overrides are user input: report, don't trace
    sys.exit(f'config error: {_one_line(e)}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
