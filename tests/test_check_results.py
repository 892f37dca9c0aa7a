"""reporting/check_results.py: a quoted table row that no longer matches its records is found."""

import json
import os

import pytest

from reporting import check_results
from reporting import tables
from tests.test_tables import all_methods, fake_run, music_config


def _records(root):
  c = music_config('nottingham')
  all_methods(c, clip=8.0, alpha=0.5)
  fake_run(os.path.join(root, 'pascanu2013_table1', 'nott'), c, [3.71, 3.44, 3.35])


def _quote(printed: str, drop_column: str | None = None) -> str:
  """RESULTS.md as a session writes it: prose, the printed table, a hand-made table."""
  lines = printed.strip().splitlines()
  if drop_column:
    header = [c.strip() for c in lines[[l.startswith('|') for l in lines].index(True)].strip('|').split('|')]
    i = header.index(drop_column)
    lines = ['|'.join(p for j, p in enumerate(l.split('|')) if j != i + 1) if l.startswith('|') else l
             for l in lines]
  return ('# Results\n\nAs `launch.py table\n--workdir=results/pascanu2013_table1` prints it:\n\n'
          + '\n'.join(lines) + '\n\n| row | command | wall time |\n|---|---|---|\n'
          '| Nottingham | `launch.py --config=experiments/music.py` | 2 h |\n')


def test_a_fresh_quote_agrees_and_a_changed_record_is_named(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  _records('results')
  printed = tables.markdown(tables.rows_of(tables.collect(['results/pascanu2013_table1'])))
  assert '3.71' in printed and 'results/pascanu2013_table1/nott' in printed   # links from the root
  quoted = _quote(printed)
  (tmp_path / 'RESULTS.md').write_text(quoted)
  stale, agree, hand = check_results.check(quoted, check_results.folders('results', quoted))
  body = [l for l in printed.splitlines() if l.startswith('| ') and not l.startswith('| row ')]
  assert (stale, agree, hand) == ([], len(body), 1)
  assert check_results.main(['RESULTS.md']) == 0

  # The SGD+C member is rescored after the quote: its row, and only its, goes stale.
  path = 'results/pascanu2013_table1/nott/result.json'
  with open(path) as f:
    result = json.load(f)
  result['members'][1]['test_loss'] = 3.52
  with open(path, 'w') as f:
    json.dump(result, f)
  assert check_results.main(['RESULTS.md']) == 1
  out = capsys.readouterr().out
  line = quoted.splitlines().index(next(l for l in quoted.splitlines() if l.startswith('| Nottingham | SGD+C |'))) + 1
  assert f'RESULTS.md:{line}: Nottingham | SGD+C\n' in out
  assert "ours (at best valid): quoted '3.44', printed now '3.52'" in out
  assert "quoted '-0.04', printed now '+0.04'" in out       # ours - paper, against 3.48
  assert '| SGD+CR' not in out and 'Nottingham | SGD\n' not in out


def test_a_column_added_after_the_quote_is_not_a_difference(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  _records('results')
  printed = tables.markdown(tables.rows_of(tables.collect(['results/pascanu2013_table1'])))
  quoted = _quote(printed, drop_column='ours, final parameters')
  assert 'ours, final parameters' not in quoted
  stale, agree, _ = check_results.check(quoted, check_results.folders('results', quoted))
  assert stale == [] and agree > 0
  # ... while a quoted number that differs still is one.
  wrong = quoted.replace('| 3.35 |', '| 3.30 |', 1)
  assert wrong != quoted
  stale, _, _ = check_results.check(wrong, check_results.folders('results', wrong))
  assert [(s.quoted.key, s.differ) for s in stale] == [(('Nottingham', 'SGD+CR'), ['ours (at best valid)'])]


def test_a_quoted_row_that_nothing_prints_now_fails(tmp_path, monkeypatch, capsys):
  """A renamed method (or a moved record) must not pass as a hand-made row."""
  monkeypatch.chdir(tmp_path)
  _records('results')
  printed = tables.markdown(tables.rows_of(tables.collect(['results/pascanu2013_table1'])))
  quoted = _quote(printed).replace('| Nottingham | SGD+CR |', '| Nottingham | SGD+CRX |', 1)
  assert 'SGD+CRX' in quoted
  (tmp_path / 'RESULTS.md').write_text(quoted)
  stale, agree, hand = check_results.check(quoted, check_results.folders('results', quoted))
  assert [(s.quoted.key, s.closest) for s in stale] == [(('Nottingham', 'SGD+CRX'), None)]
  assert hand == 1                           # the commands table is still passed over
  assert check_results.main(['RESULTS.md']) == 1
  out = capsys.readouterr().out
  assert 'Nottingham | SGD+CRX\n    printed by no folder now' in out
  # An ablation-shaped row (``members``) is checked the same way.
  ablation_row = '\n| row | test | members |\n|---|---|---|\n| gone (`gone`) | 8.1 | 3 |\n'
  stale, _, _ = check_results.check(ablation_row, [])
  assert [s.quoted.key for s in stale] == [('gone (`gone`)', '')]


def test_a_quoted_list_of_folders_is_tabled_together(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for d in ('results/x', 'results/ablations/y', 'a', 'b', 'c'):
    os.makedirs(d)
  quoted = ('As `launch.py table --workdir=a,b` prints it, and `launch.py table\n--workdir=c`; '
            '`launch.py table --workdir=missing` is not a folder here')
  assert check_results.folders('results', quoted) == [
      ['results/ablations/y'], ['results/x'], ['a', 'b'], ['c']]


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_results_md_quotes_what_launch_py_table_prints_today(monkeypatch, capsys):
  """The repository's own RESULTS.md against its committed records."""
  if not os.path.isdir(os.path.join(ROOT, 'results')):
    pytest.skip('no results/ folder in this checkout')
  monkeypatch.chdir(ROOT)
  code = check_results.main(['RESULTS.md'])
  assert code == 0, capsys.readouterr().out
