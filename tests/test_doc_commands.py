"""Every ``launch.py`` command that README.md, RESULTS.md and the experiment
files' docstrings quote still runs as written: a command launch.py has, a
``--config`` spec that loads, ``--config.KEY`` overrides of fields that
config has, flags launch.py defines for that command, and ``reproduce``
targets that exist. Renaming a field, an experiment argument, a flag or a
target leaves the quoted commands behind; this lists them, with where they
are quoted. Nothing trains and no data is read."""

import ast
import glob
import os
import re
import shlex

from absl import flags

import launch
from orchestration import reproduce

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ('README.md', 'RESULTS.md')

SPAN = re.compile(r'`([^`]+)`')                          # inline code, may run over lines
CODE_LINE = re.compile(r'^\s*(?:\w+=\S*\s+)*(?:python3?\s+)?launch\.py\b')   # a code block's

# What the docs write for "a value of your choice" or "more of the same":
# - OPTIONAL: a part in brackets, ``method=all[,seed=S]``, ``[--config.KEY=VALUE ...]``:
#   the command is checked without it;
# - ANGLED: ``--peer_python=<venv with torch 2.13.0>``: a value, not checked;
# - ELIDED: ``...`` as an argument, or in one (``--config=...``, ``--workloads=...``,
#   ``sweep ...:dataset=jsb``): dropped, a --config spec holding it is not loaded;
# - WORDS: a capitalised word for a value (``--workdir=DIR``, ``reproduce TARGET``,
#   ``--config=FILE[:ARGS]``): a flag's value is not checked anyway, a target or a
#   spec's file that is one is skipped;
# - SUBSTITUTES: such a word as an experiment argument's value (``seed=S``,
#   ``method=M``): the spec is loaded with one value it stands for.
OPTIONAL = re.compile(r'\[[^\]]*\]')
ANGLED = re.compile(r'<[^>]*>')
ELIDED = '...'
WORDS = ('FILE', 'ARGS', 'DIR', 'TARGET', 'KEY', 'VALUE')
SUBSTITUTES = {'S': '0', 'M': 'sgd-c', 'I': 'sigmoid', 'T': '50', 'N': '1000',
               'C': 'gru', 'ROW': 'c', 'DATASET': 'piano'}


def paragraphs(lines: list[str], first: int):
  """(number of its first line, its lines) of each run of non-blank lines."""
  start = None
  for i, line in enumerate(lines + ['']):
    if line.strip() and start is None:
      start = i
    elif not line.strip() and start is not None:
      yield first + start, lines[start:i]
      start = None


def quoted_commands(text: str, first: int = 1) -> list[tuple[int, str]]:
  """(line, command) of each command in ``text``: an inline code span that
  holds ``launch.py``, or a code line that runs it, joined over ``\\``
  continuations; ``first``: the number of the text's first line."""
  found = []
  for start, lines in paragraphs(text.split('\n'), first):
    block = '\n'.join(lines)
    for m in SPAN.finditer(block):
      if 'launch.py' in m.group(1):
        found.append((start + block.count('\n', 0, m.start()), ' '.join(m.group(1).split())))
    rest = SPAN.sub(lambda m: re.sub(r'[^\n]', ' ', m.group(0)), block).split('\n')
    i = 0
    while i < len(rest):
      if CODE_LINE.match(rest[i]):
        j = i
        while rest[j].rstrip().endswith('\\') and j + 1 < len(rest):
          j += 1
        joined = ' '.join(l.rstrip().rstrip('\\') for l in rest[i:j + 1])
        found.append((start + i, ' '.join(joined.split())))
        i = j
      i += 1
  return sorted(found)


def docstring_commands(path: str) -> list[tuple[int, str]]:
  """The commands of a Python file's module docstring (RST's ``x`` read as `x`)."""
  with open(path) as f:
    source = f.read()
  body = ast.parse(source).body
  if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
    return []
  return quoted_commands('\n'.join(source.split('\n')[:body[0].end_lineno]).replace('``', '`'))


def arguments(command: str) -> list[str]:
  """What follows ``launch.py``, shell-split, placeholders handled (above)."""
  command = ANGLED.sub('PLACEHOLDER', OPTIONAL.sub('', command))
  try:
    words = shlex.split(command, comments=True)
  except ValueError:               # an unmatched quote in a prose span
    words = command.split()
  start = next(i for i, w in enumerate(words) if w.endswith('launch.py')) + 1
  return [w for w in words[start:] if w.startswith('-') or ELIDED not in w]


_CONFIGS = {}


def load(spec: str):
  """The config of a spec, or the error that loading it raised (each spec once)."""
  if spec not in _CONFIGS:
    try:
      _CONFIGS[spec] = reproduce.load_config(spec)
    except (Exception, SystemExit) as e:
      _CONFIGS[spec] = e
  return _CONFIGS[spec]


def substituted(spec: str) -> str | None:
  """The spec with placeholder argument values replaced; None when its file is one."""
  path, sep, args = spec.partition(':')
  if ELIDED in spec or path in WORDS:
    return None
  args = ','.join(k + '=' + SUBSTITUTES.get(v, v) if e else k
                  for k, e, v in (a.partition('=') for a in args.split(',')))
  return path + sep + args


def has_field(config, key: str) -> bool:
  node = config
  for part in key.split('.'):
    if not hasattr(node, 'keys') or part not in node:
      return False
    node = node[part]
  return True


def is_flag(name: str) -> bool:
  """A flag of launch.py, or one absl gives every program (--verbosity, --flagfile)."""
  if name in launch._FLAG_COMMANDS:
    return True
  return name in flags.FLAGS and flags.FLAGS.find_module_defining_flag(name, '').startswith('absl')


def problems(args: list[str]) -> list[str]:
  """Why launch.py would refuse ``args`` before running anything; [] when it would not."""
  positional = [a for a in args if not a.startswith('-')]
  command = positional[0] if positional else 'train'
  if command not in launch.COMMANDS:
    return [f'no command {command!r}; commands: {", ".join(launch.COMMANDS)}']
  found = []
  if command == 'reproduce':
    found += [f'no reproduce target {t!r}' for t in positional[1:]
              if t not in WORDS and t not in reproduce.TARGETS]
  elif positional[1:]:
    found.append(f'{command} takes no arguments: {" ".join(positional[1:])}')
  spec, overrides = None, []
  for arg in args:
    if not arg.startswith('-'):
      continue
    name, _, value = arg.lstrip('-').partition('=')
    if name.startswith('config.'):
      overrides.append(name[len('config.'):])
      continue
    spec = value if name == 'config' else spec
    flag = name[2:] if name.startswith('no') and name[2:] in launch._FLAG_COMMANDS else name
    if not is_flag(flag):
      found.append(f'launch.py has no flag --{name}')
    elif flag in launch._FLAG_COMMANDS and command not in launch._FLAG_COMMANDS[flag]:
      found.append(f'--{flag} is not for {command}')
  spec = spec and substituted(spec)
  if spec:
    config = load(spec)
    if isinstance(config, BaseException):
      found.append(f'--config={spec} does not load: {type(config).__name__}: {config}')
    else:
      found += [f'{spec} has no field {k!r}' for k in overrides if not has_field(config, k)]
      misdeclared = launch._misdeclared(config, dict.fromkeys(overrides))   # a paper's row
      found += [misdeclared] if misdeclared else []
  return found


def all_commands() -> list[tuple[str, str]]:
  """(file:line, command) of every quoted command."""
  found = []
  for page in PAGES:
    with open(os.path.join(ROOT, page)) as f:
      found += [(f'{page}:{n}', c) for n, c in quoted_commands(f.read())]
  for path in sorted(glob.glob(os.path.join(ROOT, 'experiments', '*.py'))):
    name = os.path.relpath(path, ROOT)
    found += [(f'{name}:{n}', c) for n, c in docstring_commands(path)]
  return found


def test_quoted_commands_by_hand():
  text = ('Run\n\n'
          '    python launch.py sweep --config=experiments/x.py:a=1 \\\n'
          '        --workdir=D   # what `launch.py reproduce t` runs\n\n'
          'as `launch.py\n    table --workdir=D` prints.\n')
  assert quoted_commands(text) == [
      (3, 'python launch.py sweep --config=experiments/x.py:a=1 --workdir=D # what runs'),
      (4, 'launch.py reproduce t'),
      (6, 'launch.py table --workdir=D')]
  assert arguments('python launch.py sweep --config=x.py:a=1 --workdir=D # what runs') == [
      'sweep', '--config=x.py:a=1', '--workdir=D']
  assert arguments('launch.py --config=e.py:m=all[,seed=S] --peer_python=<a venv> ...') == [
      '--config=e.py:m=all', '--peer_python=PLACEHOLDER']
  assert substituted('experiments/music.py:method=M,seed=S,smoke') == \
      'experiments/music.py:method=sgd-c,seed=0,smoke'
  assert substituted('FILE') is None and substituted('...') is None


def test_the_checks_catch_what_launch_py_refuses():
  """The checks themselves: each kind of stale command is reported."""
  spec = '--config=experiments/temporal_order.py'
  assert problems([spec, '--workdir=D', '--config.optim.learning_rate=0.1']) == []
  assert problems(['reproduce', 'TARGET', '--status']) == []
  assert problems(['fit', spec]) == ["no command 'fit'; commands: " + ', '.join(launch.COMMANDS)]
  assert problems(['reproduce', 'pascanu2013.table9']) == ["no reproduce target 'pascanu2013.table9'"]
  assert problems([spec, '--config.optim.learning_rat=0.1']) == [
      "experiments/temporal_order.py has no field 'optim.learning_rat'"]
  assert problems([spec, '--work_dir=D']) == ['launch.py has no flag --work_dir']
  assert problems(['bench', '--workdir=D']) == ['--workdir is not for bench']
  assert problems(['bench', '--verbosity=1', '--nopeer']) == []
  assert problems(['--config=experiments/music.py', '--config.model.cell=gru'])[0].startswith(
      '--config.model.cell changes what this config declares it reproduces')
  assert problems(['--config=experiments/temporal_order.py:lenght=5'])[0].startswith(
      '--config=experiments/temporal_order.py:lenght=5 does not load')


def test_every_mention_of_launch_py_on_the_pages_is_checked():
  """The extraction misses no command on the pages: one per ``launch.py``."""
  for page in PAGES:
    with open(os.path.join(ROOT, page)) as f:
      text = f.read()
    assert len(quoted_commands(text)) == text.count('launch.py'), (
        f'{page}: a mention of launch.py neither in backticks nor a code line starting with it')


def test_every_quoted_command_runs_as_written():
  """No quoted command is one launch.py refuses before it starts (all listed at once)."""
  stale = [f'{where}: {command.strip()}\n    ' + '\n    '.join(why)
           for where, command in all_commands() if (why := problems(arguments(command)))]
  assert not stale, f'{len(stale)} quoted commands launch.py would refuse:\n' + '\n'.join(stale)
