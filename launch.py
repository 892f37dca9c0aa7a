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
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
