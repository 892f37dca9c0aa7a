r"""The command line of rnnopt. The only place that reads flags.

    python launch.py --config=experiments/temporal_order.py --workdir=DIR
    python launch.py --config=experiments/temporal_order.py:method=sgd-c,length=100 \
        --workdir=DIR --config.optim.learning_rate=0.02

    python launch.py bench [--peer] [--workloads=NAME,...] [--steps=N] [--rounds=N]
        [--ours_configs=default,threads1] [--peer_configs=default,threads1]
    python launch.py bench --profile [--workloads=NAME,...]     # time per XLA operation
    python launch.py sweep --config=experiments/temporal_order_sweep.py --workdir=DIR
    python launch.py sweep --config=... --workdir=DIR --status   # where it stands, trials so far
    python launch.py sweep --config=... --workdir=SHARED_DIR --executor=ray [--ray_address=auto]
    python launch.py sweep --config=... --workdir=SHARED_DIR --executor=slurm \
        --slurm_partition=P --slurm_time_min=M
    python launch.py table --workdir=DIR[,DIR...]
    python launch.py reproduce [TARGET ...] [--workdir=runs]   # a paper table, end to end
    python launch.py reproduce --status [TARGET ...]   # where each job stands; runs nothing
    python launch.py reproduce TARGET --executor=ray|slurm [...]   # ... on a cluster

    python launch.py --config=... --workdir=SHARED_DIR --distributed    # one process per host
    python launch.py --config=... --workdir=SHARED_DIR --coordinator_address=HOST0:PORT \
        --num_processes=N --process_id=I

Rerunning the same training command resumes from the workdir's last
checkpoint; ``--branch_from=DIR[@STEP]`` starts a new workdir from another
run's checkpoint (its config may change what leaves the state's shape alone). ``bench`` measures training throughput (``benchmarks/run.py``); ``sweep`` runs the grid or random search the config declares
(``orchestration/sweep.py``), its parts on this host's processes, on Ray or on Slurm
(``orchestration/executors.py``); ``reproduce`` runs a paper table end to end
(``orchestration/reproduce.py``); ``table``
prints the papers' tables with the finished runs under the folders beside
them (``reporting/tables.py``). With ``--distributed`` (a cluster JAX detects: SLURM,
Open MPI, Cloud TPU) or the three coordinator flags, every process of a
multi-host run joins one mesh over all their devices (``training/distributed.py``).
"""

import ast
import copy
import dataclasses
import re
import signal
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from training.errors import RunError

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, e.g. experiments/temporal_order.py[:ARGS].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder for metrics, checkpoints and results.')
_BRANCH_FROM = flags.DEFINE_string(
    'branch_from', None, 'Train: start a new workdir from another run\'s checkpoint, DIR or '
    'DIR@STEP (e.g. to change its learning-rate schedule from there); recorded in config.json.')

_BENCH_WORKLOADS = flags.DEFINE_list(
    'workloads', None, 'bench: workloads to time (default: all; see benchmarks/run.py).')
_BENCH_STEPS = flags.DEFINE_integer(
    'steps', None, 'bench: timed optimiser steps per round (default: per workload).')
_BENCH_ROUNDS = flags.DEFINE_integer('rounds', 5, 'bench: timed rounds (medians are reported).')
_BENCH_MEMBERS = flags.DEFINE_integer('members', 8, 'bench: population size.')
_BENCH_PEER = flags.DEFINE_bool('peer', False, 'bench: alternate with the PyTorch peer.')
_BENCH_PROFILE = flags.DEFINE_bool(
    'profile', False, 'bench: where an update\'s time goes, per XLA operation (jax.profiler), '
    'instead of timing (benchmarks/profile.py).')
_BENCH_PEER_CONFIGS = flags.DEFINE_list(
    'peer_configs', None, 'bench: peer configurations (default, passive, threads1).')
_BENCH_PEER_PYTHON = flags.DEFINE_string(
    'peer_python', '', 'bench: python of a virtual environment with torch.')
_BENCH_OURS_CONFIGS = flags.DEFINE_list(
    'ours_configs', None, 'bench: our configurations (default: this process, every core; '
    'threads1: a process pinned to one core, as sweep workers run). Default: default.')

_STATUS = flags.DEFINE_bool(
    'status', False, 'reproduce: where each job of the targets (all when none are named) '
    'stands, and the time left; sweep: where the sweep stands, the time left and its '
    'finished trials ranked; runs nothing.')
_EXECUTOR = flags.DEFINE_enum(
    'executor', None, ['local', 'ray', 'slurm'],
    'sweep: where the parts run (default: the config\'s sweep.executor, "local").')
_RAY_ADDRESS = flags.DEFINE_string(
    'ray_address', None, 'sweep --executor=ray: "auto" or HOST:PORT of a running cluster '
    '(default: sweep.ray_address; empty: start Ray on this host).')
_SLURM_PARTITION = flags.DEFINE_string(
    'slurm_partition', None, 'sweep --executor=slurm: partition (default: sweep.slurm.partition).')
_SLURM_TIME = flags.DEFINE_integer(
    'slurm_time_min', None, 'sweep --executor=slurm: time limit of each part, minutes '
    '(default: sweep.slurm.time_min). Other options: --config.sweep.slurm.*.')

_SWEEP_OPTIONS = flags.DEFINE_multi_string(
    'sweep_option', [], 'sweep and reproduce: KEY=VALUE, a field of the config\'s sweep '
    '(e.g. slurm.account=A, slurm.mem_gb=16, gpus_per_part=1, retries=3); repeatable. reproduce '
    'takes no --config, so this is how it gets the options --config.sweep.KEY gives a sweep.')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Join a multi-host run, the cluster detected by jax.distributed.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Multi-host run by hand: HOST:PORT of process 0.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-host run: processes in all.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Multi-host run: this process, from 0.')

COMMANDS = ('train', 'sweep', 'bench', 'table', 'reproduce')
# The commands each flag above is for (absl's own, e.g. --verbosity, are for every
# command): one given to another command is refused, not ignored.
_FLAG_COMMANDS = {
    'config': ('train', 'sweep'), 'workdir': ('train', 'sweep', 'table', 'reproduce'),
    'branch_from': ('train',), 'status': ('reproduce', 'sweep'),
    **dict.fromkeys(('workloads', 'steps', 'rounds', 'members', 'peer', 'profile',
                     'peer_configs', 'peer_python', 'ours_configs'), ('bench',)),
    **dict.fromkeys(('executor', 'ray_address', 'slurm_partition', 'slurm_time_min',
                     'sweep_option'), ('sweep', 'reproduce')),
    **dict.fromkeys(('distributed', 'coordinator_address'), ('train', 'sweep')),
    **dict.fromkeys(('num_processes', 'process_id'), ('train',)),
}


def bench():
  from benchmarks import run   # imports JAX
  if _BENCH_PROFILE.value:
    from benchmarks import profile
    names = _BENCH_WORKLOADS.value or ['ptb_sigmoid_h500_b1']
    unknown = [n for n in names if n not in profile.wl.WORKLOADS]
    if unknown:
      sys.exit(f'bench error: cannot profile {", ".join(unknown)}; choose among '
               f'{", ".join(profile.wl.WORKLOADS)}')
    profile.main(names, _BENCH_STEPS.value, _BENCH_ROUNDS.value)
    return
  options = run.Options(rounds=_BENCH_ROUNDS.value, steps=_BENCH_STEPS.value,
                        members=_BENCH_MEMBERS.value, peer=_BENCH_PEER.value,
                        peer_python=_BENCH_PEER_PYTHON.value)
  if _BENCH_WORKLOADS.value:
    options = dataclasses.replace(options, workloads=tuple(_BENCH_WORKLOADS.value))
  if _BENCH_PEER_CONFIGS.value:
    options = dataclasses.replace(options, peer_configs=tuple(_BENCH_PEER_CONFIGS.value))
  if _BENCH_OURS_CONFIGS.value:
    options = dataclasses.replace(options, ours_configs=tuple(_BENCH_OURS_CONFIGS.value))
  try:
    options = options.validated()
  except ValueError as e:
    sys.exit(f'bench error: {e}')
  run.main(options)


def table():
  if not _WORKDIR.value:
    _usage('table needs --workdir=DIR[,DIR...]: folders holding finished runs')
  from reporting import tables
  try:
    tables.main([d for d in _WORKDIR.value.split(',') if d])
  except (FileNotFoundError, ValueError) as e:    # a missing folder, a bad ablation marker
    sys.exit(f'table error: {e}')


# Where ``reproduce`` puts its runs without --workdir: a folder of the user's own,
# not results/, which holds the project's committed records (--workdir=results
# shows them, and continues the ones not finished).
REPRODUCE_DIR = 'runs'


def reproduce(targets: list[str]):
  from orchestration import reproduce as reproduce_lib
  if not targets and not _STATUS.value:
    print(reproduce_lib.listing())
    return
  for key in targets:
    if key not in reproduce_lib.TARGETS:
      sys.exit(f'unknown target {key!r}\n{reproduce_lib.listing()}')
  if _STATUS.value:
    logging.set_verbosity(logging.WARNING)   # not JAX's backend probing
    print(reproduce_lib.status(targets, _WORKDIR.value or REPRODUCE_DIR))
    return
  from experiments import common
  options = sweep_config(common.base_config()).sweep    # --executor and its options
  flags_given = [f'--{f.name}={f.value}' for f in (_EXECUTOR, _RAY_ADDRESS, _SLURM_PARTITION,
                                                  _SLURM_TIME) if f.value is not None]
  flags_given += [f'--sweep_option={o}' for o in _SWEEP_OPTIONS.value]
  if options.executor != 'local':
    from orchestration import executors
    try:
      executors.engine(options.executor)
    except ValueError as e:
      sys.exit(f'config error: {e}')
  for key in targets:
    try:
      reproduce_lib.run(key, _WORKDIR.value or REPRODUCE_DIR, options=options,
                        sweep_flags=flags_given)
    except RunError as e:
      sys.exit(f'error: {e}')
    except KeyboardInterrupt:
      sys.exit('interrupted: rerun the same command to resume')


def sweep_status():
  """``launch.py sweep --status``: reads the sweep's folder, runs nothing."""
  from orchestration import reproduce as reproduce_lib
  from orchestration import sweep
  config = sweep_config(_CONFIG.value)
  try:
    sweep.check(config)
  except ValueError as e:
    sys.exit(f'config error: {e}')
  print(reproduce_lib.sweep_status(config, _WORKDIR.value))


def sweep_config(config):
  """The config with the sweep flags written into its ``sweep`` fields."""
  overrides = {'executor': _EXECUTOR.value, 'ray_address': _RAY_ADDRESS.value,
               'slurm.partition': _SLURM_PARTITION.value, 'slurm.time_min': _SLURM_TIME.value}
  overrides = {k: v for k, v in overrides.items() if v is not None}
  for option in _SWEEP_OPTIONS.value:
    key, sep, raw = option.partition('=')
    if not sep:
      sys.exit(f'config error: --sweep_option={option!r} is not KEY=VALUE')
    overrides[key.strip()] = raw.strip()
  if not overrides:
    return config
  if 'sweep' not in config:
    sys.exit('config error: the config declares no sweep (see orchestration/sweep.py)')
  config = copy.deepcopy(config)
  for key, value in overrides.items():
    node, _, field = key.rpartition('.')
    parent = config.sweep[node] if node and node in config.sweep else config.sweep
    if (node and node not in config.sweep) or field not in parent:
      sys.exit(f'config error: sweep has no field {key!r}; its fields: '
               f'{", ".join(sorted(k for k in config.sweep.keys()))}, slurm.'
               f'{{{", ".join(sorted(config.sweep.slurm.keys()))}}}')
    parent[field] = _typed(key, value, parent[field])
  return config


def _typed(key: str, value, like):
  """A --sweep_option's text as the type of the field it sets."""
  if not isinstance(value, str) or isinstance(like, str):
    return value
  from experiments import common
  try:
    if isinstance(like, (tuple, list)):       # e.g. slurm.additional=(('qos','high'),)
      parsed = ast.literal_eval(value)
      if not isinstance(parsed, (tuple, list)):
        raise ValueError
      return tuple(parsed)
    if isinstance(like, bool):
      return common.parse_bool(value)
    return type(like)(value)
  except (TypeError, ValueError):
    sys.exit(f'config error: --sweep_option {key}={value!r} is not a {type(like).__name__}')


def _usage(message: str):
  """A usage mistake in one line (absl's UsageError prints the whole help first)."""
  sys.exit(f'usage error: {message} (python launch.py --help: the commands and flags)')


def main(argv):
  command = argv[1] if len(argv) > 1 else 'train'
  if command not in COMMANDS or (len(argv) > 2 and command != 'reproduce'):
    _usage(f'unknown command {" ".join(argv[1:])!r}; commands: {", ".join(COMMANDS)}')
  for name, commands in _FLAG_COMMANDS.items():
    if flags.FLAGS[name].present and command not in commands:
      _usage(f'--{name} is for {" and ".join(commands)}, not {command}')
  if command == 'bench':
    return bench()
  if command == 'table':
    return table()
  if command == 'reproduce':
    return reproduce(argv[2:])
  if _CONFIG.value is None or _WORKDIR.value is None:
    _usage('--config and --workdir are required')

  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)   # orbax logs every file it writes at INFO
  if command == 'sweep' and _STATUS.value:
    return sweep_status()
  # After flag parsing: importing JAX is slow, and --help should not wait.
  from training import distributed
  try:
    distributed.initialize(_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value,
                           _PROCESS_ID.value)
  except ValueError as e:
    sys.exit(f'flag error: {e}')
  from training import train
  try:
    data = train.check_config(_CONFIG.value)   # the corpus, read once: the run takes it
  except (FileNotFoundError, RunError) as e:   # a corpus that is missing or not the original:
    sys.exit(f'data error: {e}')               # the message says how to get it
  except ValueError as e:
    sys.exit(f'config error: {e}')
  misdeclared = _misdeclared(_CONFIG.value, origin()['overrides'])
  if misdeclared:
    sys.exit(f'config error: {misdeclared}')
  if command == 'sweep':
    if _DISTRIBUTED.value or _COORDINATOR.value:
      sys.exit('a sweep is spread over hosts by --executor=ray|slurm, not --distributed; '
               'train one config at a time across hosts')
    from orchestration import sweep
    config = sweep_config(_CONFIG.value)
    try:
      sweep.check(config)
    except ValueError as e:
      sys.exit(f'config error: {e}')
  # Problems a user can fix (a workdir in use or holding another config's run,
  # changed data, Ctrl-C) end in one line, the checkpoint saved where there is one.
  if _SIGINTS:                  # a Ctrl-C during the setup that was swallowed
    sys.exit('interrupted')
  try:
    if command == 'sweep':
      sweep.run(config, _WORKDIR.value)
    else:
      train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, origin=origin(), data=data,
                               branch_from=_BRANCH_FROM.value)
  except RunError as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    sys.exit('interrupted: rerun the same command to resume from the last checkpoint')


_SIGINTS = []


def _note_sigint(signum, frame):
  """Ctrl-C while the flags and the config load: noted, acted on once they have
  loaded. Loading a config imports JAX, and a KeyboardInterrupt raised there
  crashed jaxlib's initialisation (SIGSEGV) or was swallowed by its
  garbage-collection callback ("Exception ignored in ..."): the run went on."""
  _SIGINTS.append(signum)


def _sigint(signum, frame):
  """Ctrl-C after that and before a run's own handling (``training.train``): a
  KeyboardInterrupt, and noted, in case a garbage-collection callback swallows it."""
  _SIGINTS.append(signum)
  raise KeyboardInterrupt


def origin() -> dict:
  """What made the config: the experiment file with its arguments and the
  --config.KEY overrides (recorded in the run's config.json)."""
  flag = flags.FLAGS['config']
  return dict(experiment=config_flags.get_config_filename(flag),
              overrides=config_flags.get_override_values(flag))


# Overrides that change what a run is (its task, its data, its cell).
_IDENTITY = ('task.name', 'task.kwargs', 'model.cell')


def _misdeclared(config, overrides: dict) -> str | None:
  """Why a config that declares a paper's table row cannot take ``overrides``
  that change what the run is: its records would be filed under that row
  (``launch.py table``) with another task's or cell's numbers. None when it
  can: no row declared, a smoke run (never tabled), or the overrides
  declare the run themselves (``paper.*``)."""
  paper = config.get('paper')
  if not paper or not paper.get('table') or config.get('smoke') or any(
      k.startswith('paper.') for k in overrides):
    return None
  changed = [k for k in overrides if any(k == i or k.startswith(i + '.') for i in _IDENTITY)]
  if not changed:
    return None
  return (f'--config.{changed[0]} changes what this config declares it reproduces (table '
          f'{paper.table!r}, row {paper.row!r}): use the experiment\'s own argument for it '
          '(its docstring lists them), or declare the run with --config.paper.row=... and '
          "--config.paper.methods=..., or with --config.paper.table='' as no table's")


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


_REPEATABLE = ('sweep_option', 'flagfile')


def _given_twice(argv) -> str | None:
  """The first flag given twice (absl keeps the last silently, so
  ``--config.optim.learning_rate=0.1 ... --config.optim.learning_rate=0.01``
  ran at 0.01), in any of absl's spellings (``-name``, ``--name``,
  ``--noname`` for a boolean), other than the repeatable ones."""
  seen = set()
  for arg in argv[1:]:
    if arg == '--':
      break
    name = arg.split('=', 1)[0].lstrip('-')
    if not arg.startswith('-') or not name[:1].isalpha() or name in _REPEATABLE:
      continue      # a value ('-1' included) or a repeatable flag
    if name.startswith('no') and (name[2:] in flags.FLAGS or name[2:].startswith('config.')):
      name = name[2:]
    if name in seen:
      return name
    seen.add(name)
  return None


def parse_flags(argv):
  """absl's flag parsing, with config mistakes reported in one line."""
  twice = _given_twice(argv)
  if twice:
    _usage(f'--{twice} is given twice; give each flag once')
  try:
    argv = flags.FLAGS(argv)
    if flags.FLAGS['config'].present:
      _CONFIG.value.keys()   # config_flags defers some load errors to the first use
    if _SIGINTS:
      sys.exit('interrupted')
    signal.signal(signal.SIGINT, _sigint)
    return argv
  except Exception as e:  # config files and overrides are user input: report, don't trace
    if _SIGINTS:           # a Ctrl-C that an import turned into its own error
      sys.exit('interrupted')
    sys.exit(f'config error: {_unknown_field(e, argv) or _one_line(e)}')


def _unknown_field(error: Exception, argv) -> str | None:
  """For an override of a field the config does not have (config_flags says
  only its name): which flag it was and the fields at that level."""
  name = _one_line(error).strip('"\'')
  if not isinstance(error, (KeyError, AttributeError)) or not re.fullmatch(r'\w+', name):
    return None
  spec = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), None)
  flag = next((a.split('=', 1)[0] for a in argv if a.startswith('--config.')
               and a.split('=', 1)[0].rsplit('.', 1)[-1] == name), None)
  if spec is None or flag is None:
    return None
  try:
    from orchestration import reproduce
    node = reproduce.load_config(spec)
    for part in flag[len('--config.'):].split('.')[:-1]:
      node = node[part]
    fields = ', '.join(sorted(node.keys()))
  except Exception:   # the message stays useful without the list
    fields = None
  where = flag[len('--config.'):].rpartition('.')[0] or 'the config'
  return (f'{flag}: {where} has no field {name!r}'
          + (f'; its fields: {fields}' if fields else ''))


if __name__ == '__main__':
  signal.signal(signal.SIGINT, _note_sigint)
  try:
    app.run(main, flags_parser=parse_flags)
  except KeyboardInterrupt:     # before a run starts (parsing, importing JAX): nothing to save
    sys.exit('interrupted')
