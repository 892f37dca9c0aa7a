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
