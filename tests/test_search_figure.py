"""The random-search figure (reporting/figures/search.py) reads what each
search recorded: every trial with a learning rate, the selected one, the
diverged ones, under the tables' row and method names."""

import json
import math
import os
import subprocess
import sys

import pytest

from experiments import modern
from experiments import music_bengio
from reporting.figures import search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_search(folder, arg, trials, best):
  """A finished ``launch.py sweep`` as the figure reads it: sweep.json and one
  unit's config.json (the search's declaration)."""
  unit = os.path.join(folder, 'g00_hidden_size-100', 'part0')
  os.makedirs(unit)
  with open(os.path.join(unit, 'config.json'), 'w') as f:
    json.dump(music_bengio.get_config(arg).to_dict(), f)
  rows = [dict(unit='g00_hidden_size-100/part0', structural={'model.hidden_size': h},
               hparams={'optim.learning_rate': lr}, valid=v, diverged=d)
          for lr, v, h, d in trials]
  with open(os.path.join(folder, 'sweep.json'), 'w') as f:
    json.dump(dict(select='valid loss', trials=rows, best=rows[best]), f)


def test_search_points_and_figure(tmp_path):
  fake_search(str(tmp_path / 'jsb_c'), 'dataset=jsb,method=c',
              [(0.01, 8.7, 100, False), (0.001, 9.9, 200, False), (0.05, None, 100, True)], 0)
  fake_search(str(tmp_path / 'jsb_sgd'), 'dataset=jsb,method=sgd',
              [(0.02, 8.8, 300, False), (0.004, 8.75, 100, False)], 1)
  fake_search(str(tmp_path / 'nottingham_nade-sgd'), 'dataset=nottingham,method=nade-sgd',
              [(0.03, 2.5, 100, False)], 0)
  got = search.searches(str(tmp_path))
  assert list(got) == ['Nottingham', 'JSB Chorales']       # the table's row order
  assert list(got['JSB Chorales']) == ['RNN (SGD)', 'RNN (SGD+C)']
  c = got['JSB Chorales']['RNN (SGD+C)']
  assert [(t.learning_rate, t.hidden, t.diverged, t.selected) for t in c] == [
      (0.01, 100, False, True), (0.001, 200, False, False), (0.05, 100, True, False)]
  assert c[0].valid == 8.7 and math.isnan(c[2].valid)
  assert [t.selected for t in got['JSB Chorales']['RNN (SGD)']] == [False, True]
  assert list(got['Nottingham']) == ['RNN-NADE (SGD)']
  path = search.draw(str(tmp_path))
  assert path == str(tmp_path / 'search.png') and os.path.getsize(path) > 10_000


def _unit(search_dir, name, config, members=None):
  """A sweep's unit folder: its config.json, and its result.json once it has
  finished (``members``: (learning rate, lowest validation loss, diverged))."""
  unit = os.path.join(search_dir, name, 'part0')
  os.makedirs(unit)
  with open(os.path.join(unit, 'config.json'), 'w') as f:
    json.dump(config, f)
  if members is not None:
    result = dict(members=[dict(hparams={'seed': 0, 'optim.learning_rate': lr},
                                best_valid_loss=v, test_loss=v + 0.2, test_error=0.3,
                                test_loss_at_best_valid=v + 0.1, test_error_at_best_valid=0.3,
                                diverged=d) for lr, v, d in members])
    with open(os.path.join(unit, 'result.json'), 'w') as f:
      json.dump(result, f)


def test_a_search_still_running_is_drawn_from_its_finished_units(tmp_path):
  """No sweep.json until a search ends: its finished units are its trials so
  far (the best of them ringed), a started unit is not one, and the panel
  says how many of the planned trials that is. Hidden units are read also
  where the search draws depth and width together."""
  config = modern.get_config('dataset=nottingham,cell=lstm,trials=6').to_dict()
  search_dir = str(tmp_path / 'nottingham_lstm')
  one = dict(config, model=dict(config['model'], num_layers=1, hidden_size=440))
  two = dict(config, model=dict(config['model'], num_layers=2, hidden_size=264))
  _unit(search_dir, 'g00_num_layers-1_hidden_size-440', one, [(1e-3, 3.1, False), (2e-3, 3.0, False)])
  _unit(search_dir, 'g01_num_layers-2_hidden_size-264', two, [(5e-4, 3.3, False), (3e-3, 3.2, True)])
  _unit(search_dir, 'g02_num_layers-3_hidden_size-208', two)          # started, not finished
  jsb = modern.get_config('dataset=jsb,cell=gru').to_dict()           # a finished search
  _unit(str(tmp_path / 'jsb_gru'), 'g00_num_layers-2_hidden_size-160', jsb)
  trial = dict(unit='g00_num_layers-2_hidden_size-160/part0', hparams={'optim.learning_rate': 1e-3},
               structural={'model.num_layers+model.hidden_size': [2, 160]}, valid=8.2,
               diverged=False)
  with open(tmp_path / 'jsb_gru' / 'sweep.json', 'w') as f:
    json.dump(dict(select='valid loss', trials=[trial], best=trial), f)

  found, unfinished, _ = search._collect(str(tmp_path))
  assert list(found) == ['JSB Chorales, NLL (300K)', 'Nottingham, NLL (1M)']
  assert [(t.learning_rate, t.hidden) for t in found['JSB Chorales, NLL (300K)']['GRU']] == [(1e-3, 160)]
  lstm = sorted(found['Nottingham, NLL (1M)']['LSTM'], key=lambda t: t.learning_rate)
  assert [(t.learning_rate, t.hidden, t.diverged, t.selected) for t in lstm] == [
      (5e-4, 264, False, False), (1e-3, 440, False, False), (2e-3, 440, False, True),
      (3e-3, 264, True, False)]
  assert lstm[2].valid == 3.0
  assert unfinished == {'Nottingham, NLL (1M)': {'LSTM': (4, 6)}}    # the finished search: not listed
  path = search.draw(str(tmp_path))
  assert os.path.getsize(path) > 10_000


def test_a_panel_whose_scores_span_decades_is_drawn_on_a_log_scale(tmp_path):
  """The adding problem's trials: MSE 4e-6 to 2e-4 where learned, 0.17 on
  the plateau (a decade and more: log); the music NLLs, 3.0 to 3.7: linear."""
  assert search.y_scale([1e-5, 3e-5, 0.17, math.nan]) == 'log'
  assert search.y_scale([3.89e-6, 2.15e-4]) == 'log'
  assert search.y_scale([3.0, 3.2, 3.7]) == 'linear'
  assert search.y_scale([1e-3, 0.0099]) == 'linear'       # under a factor of 10
  assert search.y_scale([0.0, 1.0]) == 'linear' and search.y_scale([]) == 'linear'
  config = modern.get_config('dataset=adding600,cell=gru,trials=3').to_dict()
  one = dict(config, model=dict(config['model'], num_layers=1, hidden_size=144))
  _unit(str(tmp_path / 'adding600_gru'), 'g00_num_layers-1_hidden_size-144', one,
        [(1e-3, 1e-5, False), (3e-4, 0.167, False), (2e-3, 2e-5, False)])
  found = search.searches(str(tmp_path))
  assert list(found) == ['adding problem T=600, MSE (70K)']
  assert os.path.getsize(search.draw(str(tmp_path))) > 10_000


def test_a_ptb_search_is_drawn_in_bits_per_character_with_its_reduced_budget(tmp_path):
  """The PTB characters search records each trial's validation in bits per
  character beside the loss (nats): its panel is drawn in bpc (the loss over
  ln 2), and a search at 2 of the recipe's 30 epochs a trial says so. A
  panel where a trial lacks the unit (a search from before) stays in the loss."""
  from orchestration import sweep
  assert search.PAPER_UNITS == sweep.REPORTED_AS
  config = modern.get_config('dataset=ptb_char,cell=gru,epochs=2').to_dict()
  search_dir = tmp_path / 'ptb_char_gru_e2'
  _unit(str(search_dir), 'g00_num_layers-1_hidden_size-960', config)
  nats = [0.98, 1.05, 1.2]
  rows = [dict(unit='g00_num_layers-1_hidden_size-960/part0', structural={},
               hparams={'optim.learning_rate': lr}, valid=v, valid_bpc=v / math.log(2),
               diverged=False) for lr, v in zip((1e-3, 2e-3, 3e-4), nats)]
  (search_dir / 'sweep.json').write_text(json.dumps(dict(select='valid loss', trials=rows,
                                                         best=rows[0])))
  found, _, _ = search._collect(str(tmp_path))
  trials = found['PTB characters, bpc (3M)']['GRU']
  assert search.panel_unit(trials) == 'bpc'
  for t, v in zip(trials, nats):
    assert t.score('loss') == v and t.score('bpc') == pytest.approx(v / math.log(2))
    assert t.reduced == '2 of 30 epochs'
  assert search.panel_unit(trials + [search.Trial(1e-3, 1.0, None, False, False)]) == 'loss'
  assert os.path.getsize(search.draw(str(tmp_path))) > 10_000


@pytest.mark.parametrize('module,message', [
    ('search', 'no search (sweep.json or finished units, with learning-rate trials)'),
    ('ablation', 'missing, empty or torn'),
])
def test_a_figure_of_records_it_cannot_use_is_a_one_line_error(module, message, tmp_path):
  """The figure commands (reporting.figures.cli): a folder with nothing to
  draw is one line naming the module, not a stack trace."""
  proc = subprocess.run([sys.executable, '-m', f'reporting.figures.{module}', str(tmp_path)],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith(f'reporting.figures.{module}: error: '), lines
  assert message in lines[0], lines


def test_searches_of_no_paper_table_are_told_apart_from_no_search(tmp_path):
  fake_search(str(tmp_path), 'dataset=jsb,method=sgd', [(1e-3, 8.5, 100, False)], 0)
  path = tmp_path / 'g00_hidden_size-100' / 'part0' / 'config.json'
  config = json.loads(path.read_text())
  config['paper']['table'] = 'pascanu_pathological'     # temporal_order_sweep's: not in PAPER
  path.write_text(json.dumps(config))
  with pytest.raises(FileNotFoundError, match=r'the searches under .* fill no paper table '
                                              r'\(tables.PAPER\); the figure draws those'):
    search.draw(str(tmp_path))


@pytest.mark.parametrize('module', ['plots', 'search'])
def test_help_prints_the_modules_docstring_and_draws_nothing(module, tmp_path):
  """The figure modules take folders: --help was one (plots drew into a new
  folder named --help; search failed on it)."""
  proc = subprocess.run([sys.executable, '-m', f'reporting.figures.{module}', '--help'],
                        cwd=tmp_path, capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, PYTHONPATH=ROOT))
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.startswith(f'python -m reporting.figures.{module}\n\n')
  assert len(proc.stdout.splitlines()) > 3 and list(tmp_path.iterdir()) == []


def test_panel_notes_name_a_shared_budget_once():
  """Two methods cut to the same budget share one note (the old title repeated the
  budget per method and ran off a 4-inch panel); different budgets stay apart."""
  t = lambda cut: search.Trial(1e-3, 1.0, 100, False, False, reduced=cut)
  both = {'LSTM': [t('2 of 30 epochs')], 'GRU': [t('2 of 30 epochs')]}
  assert search.panel_notes(both, {'LSTM': (1, 16)}) == [
      'running; trials so far: LSTM 1 of 16',
      'reduced budget a trial: 2 of 30 epochs (LSTM, GRU)']
  apart = {'LSTM': [t('10 of 30 epochs')], 'GRU': [t('2 of 30 epochs')], 'TCN': [t('')]}
  assert search.panel_notes(apart, {}) == [
      'reduced budget a trial: 10 of 30 epochs (LSTM); 2 of 30 epochs (GRU)']
  assert search.panel_notes({'GRU': [t('')]}, {}) == []
