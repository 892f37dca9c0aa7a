"""Figures: of Pascanu et al. (2013) computed from the single-unit RNN, and of
the runs' records (curves, searches, comparisons, readings)."""

from __future__ import annotations

import argparse
import sys
from typing import Callable


def draw_to_file(argv: list[str], prog: str, description: str, metavar: str,
                 parse: Callable, draw: Callable) -> None:
  """The command line of a figure drawn from a list of arguments: ``--out FILE.png``
  and the arguments (each through ``parse``) to ``draw``, whose ValueError is a
  one-line error, not a stack trace."""
  import matplotlib.pyplot as plt    # the figure modules set the Agg backend first
  parser = argparse.ArgumentParser(prog=prog, description=description)
  parser.add_argument('--out', required=True, help='the PNG to write')
  parser.add_argument('items', nargs='+', metavar=metavar)
  args = parser.parse_args(argv)
  try:
    fig = draw([parse(a) for a in args.items])
  except ValueError as e:
    sys.exit(f'error: {e}')
  fig.savefig(args.out, dpi=110)
  plt.close(fig)
  print(args.out)


def cli(main: Callable, argv: list[str], parses_flags: bool = False) -> None:
  """Runs a figure module's ``main``: a record it cannot use (a missing or
  unreadable file, a folder with nothing to draw, runs that do not belong
  together) is a one-line error naming the module, not a stack trace.
  ``-h`` / ``--help`` prints the module's docstring, unless its ``main``
  parses flags itself (``parses_flags``: argparse's help); a module's
  arguments are folders, so it was taken for one (a folder named --help)."""
  module = sys.modules.get('__main__')
  name = module.__spec__.name if getattr(module, '__spec__', None) else 'figure'
  if not parses_flags and any(a in ('-h', '--help') for a in argv):
    print(f'python -m {name}\n\n{(module.__doc__ or "").strip()}')
    return
  try:
    main(argv)
  except (ValueError, OSError) as e:
    sys.exit(f'{name}: error: {e}')
