"""The readings figure (reporting/figures/readings.py) places each reading's
runs in the paper's table and summarises each cell over the reading's seeds:
mean, lowest and highest test at the best validation, beside the paper."""

import json
import os

import pytest

from experiments import music
from reporting.figures import readings

CLIP, ALPHA = 'optim.clip_norm', 'reg.omega_alpha'


def fake_run(folder, dataset, seed, tests, diverged=(False, False, False)):
  """A finished ``method=all`` run (SGD, SGD+C, SGD+CR members) as the tables read it."""
  os.makedirs(folder)
  config = music.get_config(f'dataset={dataset},method=all,seed={seed}').to_dict()
  with open(os.path.join(folder, 'config.json'), 'w') as f:
    json.dump(config, f)
  rows = config['population']['rows']
  members = [dict(hparams={'seed': seed, CLIP: row[0], ALPHA: row[1]}, test_loss=t + 0.05,
                  test_loss_at_best_valid=t, diverged=d)
             for row, t, d in zip(rows, tests, diverged)]
  with open(os.path.join(folder, 'result.json'), 'w') as f:
    json.dump(dict(step=100, wall_time_s=1.0, code_version='x', members=members), f)
  with open(os.path.join(folder, 'metrics.jsonl'), 'w') as f:
    for i, t in enumerate(tests):
      f.write(json.dumps(dict(step=50, split='valid', member=i, loss=t + 0.5)) + '\n')
  return str(folder)


def test_each_cell_is_the_mean_and_range_over_a_readings_seeds(tmp_path):
  a0 = fake_run(tmp_path / 'a0', 'piano', 0, [7.6, 7.7, 7.65])
  a1 = fake_run(tmp_path / 'a1', 'piano', 1, [7.7, 7.6, 7.55])
  b0 = fake_run(tmp_path / 'b0', 'musedata', 0, [7.2, 7.1, 9.0], diverged=(False, False, True))
  b1 = fake_run(tmp_path / 'b1', 'musedata', 1, [7.3, 7.0, 7.1])
  collected = [(label, readings.tables.collect(runs)) for label, runs in
               [('default', [a0, a1]), ('other', [b0, b1])]]
  got = {(p.reading, p.row, p.method): p for p in readings.points(collected)}
  assert set(got) == {('default', 'piano', m) for m in ('sgd', 'sgd-c', 'sgd-cr')} | {
      ('other', 'musedata', m) for m in ('sgd', 'sgd-c', 'sgd-cr')}
  p = got['default', 'piano', 'sgd-cr']
  assert (p.mean, p.low, p.high, p.members) == (pytest.approx(7.6), 7.55, 7.65, 2)
  assert p.paper == 7.46                                  # arXiv v2, Table 1
  q = got['other', 'musedata', 'sgd-cr']                  # the diverged member is left out
  assert (q.mean, q.members) == (pytest.approx(7.1), 1)
  assert got['other', 'musedata', 'sgd'].mean == pytest.approx(7.25)
  fig = readings.draw([('default', [a0, a1]), ('other', [b0, b1])])
  gids = {a.get_gid() for ax in fig.axes for a in ax.get_children() if a.get_gid()}
  assert {'piano:default', 'musedata:other', 'piano:paper:sgd-cr', 'musedata:paper:sgd'} <= gids


def test_a_reading_names_its_runs(tmp_path):
  with pytest.raises(ValueError, match='LABEL=RUN'):
    readings.parse_reading('results/pascanu2013_table1/piano')
  assert readings.parse_reading('a=x,y') == ('a', ['x', 'y'])
  with pytest.raises(ValueError, match='no finished run'):
    readings.draw([('empty', [str(tmp_path)])])


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path, capsys):
  with pytest.raises(SystemExit, match='error: .*LABEL=RUN'):
    readings.main(['--out', str(tmp_path / 'x.png'), 'no-label'])
  run = fake_run(tmp_path / 'a', 'piano', 0, [7.6, 7.7, 7.65])
  readings.main(['--out', str(tmp_path / 'y.png'), f'default={run}'])
  assert os.path.getsize(tmp_path / 'y.png') > 10_000
  assert capsys.readouterr().out.strip() == str(tmp_path / 'y.png')


def fake_grid_run(folder, seed, valid_and_test):
  """A finished SGD+C run whose members are clipping thresholds (a grid as one
  population, as `--config.population.rows` makes it); one (valid, test) each."""
  os.makedirs(folder)
  config = music.get_config(f'dataset=piano,method=sgd-c,seed={seed}').to_dict()
  config['population'].update(hparams=[CLIP], rows=[[t] for t in (0.5, 1.0, 2.0)])
  with open(os.path.join(folder, 'config.json'), 'w') as f:
    json.dump(config, f)
  members = [dict(hparams={'seed': seed, CLIP: t}, test_loss=test, test_loss_at_best_valid=test)
             for t, (_, test) in zip((0.5, 1.0, 2.0), valid_and_test)]
  with open(os.path.join(folder, 'result.json'), 'w') as f:
    json.dump(dict(step=100, wall_time_s=1.0, code_version='x', members=members), f)
  with open(os.path.join(folder, 'metrics.jsonl'), 'w') as f:
    for i, (valid, _) in enumerate(valid_and_test):
      f.write(json.dumps(dict(step=50, split='valid', member=i, loss=valid)) + '\n')
  return str(folder)


def test_a_grid_reading_shows_the_trial_the_table_selects_not_the_mean_of_all(tmp_path):
  # Threshold 1.0 has the lowest validation averaged over the two seeds
  # ((8.30 + 8.40) / 2 against (8.20 + 8.60) / 2 for 0.5), though 0.5 wins seed 0.
  s0 = fake_grid_run(tmp_path / 's0', 0, [(8.20, 7.50), (8.30, 7.60), (8.90, 7.90)])
  s1 = fake_grid_run(tmp_path / 's1', 1, [(8.60, 7.80), (8.40, 7.70), (8.95, 8.00)])
  (p,) = readings.points([('grid', readings.tables.collect([s0, s1]))])
  assert (p.method, p.members) == ('sgd-c', 2)
  assert (p.mean, p.low, p.high) == (pytest.approx(7.65), 7.60, 7.70)
  # ... the same number `launch.py table` prints for the cell
  (row,) = [r for r in readings.tables.rows_of(readings.tables.collect([s0, s1]))
            if r['selected'] and r['first_of_trial']]
  assert row['trial_mean'] == pytest.approx(p.mean) and row['seeds'] == 2


def test_every_reading_has_a_look_of_its_own():
  """More readings than colours (Table 1 has 13): the colours come round
  again with another marker."""
  looks = [readings.style(j) for j in range(30)]
  assert len(set(looks)) == 30
  assert looks[0][0] == looks[10][0] and looks[0][1] != looks[10][1]
