"""Are RESULTS.md's tables still what ``launch.py table`` prints from the records?

    python -m reporting.check_results [RESULTS.md] [--results=results]

RESULTS.md quotes tables "as ``launch.py table --workdir=...`` prints them".
Records change after a table is pasted (a sweep finishes another trial, a
run is resumed), so a quoted row can go stale. This tables every folder of
records again, with its links relative to the repository root as RESULTS.md
quotes them, and compares each quoted row with the printed row of the same
(row, method): column by column, over the columns both tables have (a
column added to ``launch.py table`` after a row was quoted is not a
difference). It prints the rows that differ, and exits 1 if there are any.
A quoted row of a printed table's shape (a ``row`` column and a ``method``
column, or an ablation's ``members``) that no folder prints any more (a
row or method renamed, a record moved) is named too, and fails the check
as well. Rows of hand-made tables (commands, wall times) are passed over
and counted.

The folders tabled: each folder under ``results/`` (and each one under
``results/ablations/``, whose runs are variants of one cell, not candidates
for it), and every folder RESULTS.md names after ``launch.py table
--workdir=``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys

from reporting import ablation
from reporting import tables

# A method's trailing note on its selection: " (best of 16 on valid)", " (3 of 16 trials finished)".
_SELECTION = re.compile(r' \((best of \d+|\d+ of \d+ trials)[^()]*\)$')
_WORKDIR = re.compile(r'launch\.py table\s+--workdir=([^\s`]+)')


@dataclasses.dataclass
class Row:
  cells: dict[str, str]     # header -> cell
  line: int = 0             # where it stands in RESULTS.md (1-based; 0 for a printed row)

  @property
  def printed_shape(self) -> bool:
    """Whether its table is one ``launch.py table`` prints (a paper's, or an ablation's)."""
    return 'row' in self.cells and ('method' in self.cells or 'members' in self.cells)

  @property
  def key(self) -> tuple[str, str] | None:
    if 'row' not in self.cells:
      return None             # not a table launch.py table prints
    # (an ablation's table has rows and no methods)
    return self.cells['row'], _SELECTION.sub('', self.cells.get('method', ''))


def _cells(line: str) -> list[str]:
  return [c.strip() for c in line.strip().strip('|').split('|')]


def parse_tables(text: str) -> list[Row]:
  """Every body row of every Markdown table in ``text``, keyed by its table's header."""
  rows, header, lines = [], None, text.splitlines()
  for i, line in enumerate(lines):
    if not line.startswith('|'):
      header = None
      continue
    if header is None:
      nxt = lines[i + 1] if i + 1 < len(lines) else ''
      if re.fullmatch(r'\|(\s*:?-+:?\s*\|)+', nxt.strip()):
        header = _cells(line)
      continue
    if re.fullmatch(r'\|(\s*:?-+:?\s*\|)+', line.strip()):
      continue
    cells = _cells(line)
    if len(cells) == len(header):
      rows.append(Row(dict(zip(header, cells)), i + 1))
  return rows


def folders(results: str, quoted: str) -> list[list[str]]:
  """The groups of folders to table: each of results' own and its ablations', and each
  comma-separated list that ``quoted`` names after ``launch.py table --workdir=``
  (tabled together, as that command does: their runs are candidates for the same cells)."""
  out = []
  for name in sorted(os.listdir(results)):
    path = os.path.join(results, name)
    if not os.path.isdir(path):
      continue
    if name == 'ablations':
      out += [[os.path.join(path, a)] for a in sorted(os.listdir(path))
              if os.path.isdir(os.path.join(path, a))]
    else:
      out.append([path])
  for m in _WORKDIR.finditer(quoted):
    group = [os.path.normpath(d) for d in m.group(1).split(',') if d]
    if group and all(os.path.isdir(d) for d in group):
      out.append(group)
  groups = {tuple(os.path.normpath(d) for d in g): None for g in out}
  return [list(g) for g in groups]


def printed(group: list[str]) -> str:
  """What ``launch.py table --workdir=`` the group prints, links relative to the current folder."""
  papers = [d for d in group if not ablation.is_ablation(d)]
  text = tables.markdown(tables.rows_of(tables.collect(papers)), base='.') if papers else ''
  return text + ''.join('\n' + ablation.main(d) for d in group if d not in papers)


@dataclasses.dataclass
class Stale:
  quoted: Row
  closest: Row | None       # None: no folder prints its (row, method) now
  differ: list[str]         # the shared columns that differ


def check(text: str, tabled: list[list[str]]) -> tuple[list[Stale], int, int]:
  """(stale rows, rows that agree, rows of hand-made tables) of ``text`` against
  the tables printed from each group of folders in ``tabled``. A row of a printed
  table's shape that nothing prints now is stale, with no closest row."""
  fresh: dict[tuple[str, str], list[Row]] = {}
  for group in tabled:
    for row in parse_tables(printed(group)):
      if row.key:
        fresh.setdefault(row.key, []).append(row)
  stale, agree, hand = [], 0, 0
  for row in parse_tables(text):
    candidates = fresh.get(row.key) if row.key else None
    if not candidates:
      if row.printed_shape:
        stale.append(Stale(row, None, []))      # printed nowhere now
      else:
        hand += 1
      continue
    diffs = []
    for c in candidates:
      shared = [h for h in row.cells if h in c.cells]
      diffs.append(([h for h in shared if row.cells[h] != c.cells[h]], c))
    differ, closest = min(diffs, key=lambda d: len(d[0]))
    if differ:
      stale.append(Stale(row, closest, differ))
    else:
      agree += 1
  return stale, agree, hand


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('results_md', nargs='?', default='RESULTS.md')
  parser.add_argument('--results', default='results', help='the folder of run records')
  args = parser.parse_args(argv)
  with open(args.results_md) as f:
    text = f.read()
  stale, agree, hand = check(text, folders(args.results, text))
  for s in stale:
    print(f'{args.results_md}:{s.quoted.line}: ' + ' | '.join(s.quoted.key))
    if s.closest is None:
      print('    printed by no folder now (a renamed row or method, or a moved record?)')
    for h in s.differ:
      print(f'    {h}: quoted {s.quoted.cells[h]!r}, printed now {s.closest.cells[h]!r}')
  print(f'{agree} quoted rows agree with launch.py table, {len(stale)} differ; '
        f'{hand} rows of other tables passed over.')
  return 1 if stale else 0


if __name__ == '__main__':
  sys.exit(main())
