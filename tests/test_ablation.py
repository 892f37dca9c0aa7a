"""reporting/ablation.py and the bai2018.ablation target: each row takes out
one ingredient and nothing else; the table's means, spreads and changes."""

import json
import os

import numpy as np
import pytest

from orchestration import reproduce
from reporting import ablation, tables
from training import records


def fake_run(folder, name, tests, valids, wall=60.0):
  d = os.path.join(folder, name)
  os.makedirs(d)
  members = [dict(hparams={'seed': i}, test_loss_at_best_valid=t, best_valid_loss=v,
                  best_valid_step=100 * (i + 1), diverged=False)
             for i, (t, v) in enumerate(zip(tests, valids))]
  with open(os.path.join(d, 'result.json'), 'w') as f:
    json.dump(dict(step=500, wall_time_s=wall, members=members), f)


def test_the_table_gives_mean_spread_and_change_against_the_reference(tmp_path, capsys):
  folder = str(tmp_path / 'abl')
  ablation.write_marker(folder, 'Toy ablation', [('full', 'the recipe'), ('no_ln', 'no layer norm'),
                                                 ('no_x', 'not run')], 'full')
  fake_run(folder, 'full', [8.0, 8.2, 8.4], [7.9, 8.0, 8.1])
  fake_run(folder, 'no_ln', [8.5, 8.9], [8.4, 8.6])
  marker, rows = ablation.rows_of(folder)
  full, no_ln, no_x = rows
  np.testing.assert_allclose([full['test'], full['sd']], [8.2, np.std([8.0, 8.2, 8.4], ddof=1)])
  np.testing.assert_allclose(no_ln['change'], 8.7 - 8.2)
  assert no_x['test'] is None and no_x['change'] is None
  # launch.py table: an ablation's folder gets its own table, not the paper's
  text = tables.main([folder])
  assert '| no layer norm (`no_ln`) | 8.700 ± 0.283 | +0.500 | 8.500 | 2 | 100, 200 | 1.0 min |' in text
  assert '| not run (`no_x`) | not run yet |' in text
  assert 'Bai' not in text and 'Pascanu' not in text


def test_the_figure_is_drawn_from_finished_rows_and_needs_the_reference(tmp_path):
  from reporting.figures import ablation as figure
  folder = str(tmp_path / 'abl')
  ablation.write_marker(folder, 'Toy ablation', [('full', 'the recipe'), ('no_ln', 'no layer norm'),
                                                 ('no_x', 'not run')], 'full')
  fake_run(folder, 'no_ln', [8.5, 8.9], [8.4, 8.6])
  with pytest.raises(ValueError, match="reference row 'full' has not finished"):
    figure.draw(folder)
  fake_run(folder, 'full', [8.0, 8.2, 8.4], [7.9, 8.0, 8.1])
  assert ablation.rows_of(folder)[1][1]['tests'] == [8.5, 8.9]
  path = figure.draw(folder)
  assert path == os.path.join(folder, 'ablation.png') and os.path.getsize(path) > 10_000


def test_a_member_that_never_validated_is_a_diverged_nan_not_a_crash(tmp_path):
  """A member that diverged before its first validation has no best: its
  result has no test at best validation (a KeyError once)."""
  folder = str(tmp_path / 'abl')
  ablation.write_marker(folder, 'Toy', [('full', 'the recipe'), ('no_clip', 'no clipping')], 'full')
  fake_run(folder, 'full', [8.0, 8.2], [7.9, 8.0])
  fake_run(folder, 'no_clip', [8.5, 8.9], [8.4, 8.6])
  path = os.path.join(folder, 'no_clip', 'result.json')
  with open(path) as f:
    result = json.load(f)
  for key in ('test_loss_at_best_valid', 'best_valid_loss', 'best_valid_step'):
    del result['members'][1][key]
  result['members'][1]['diverged'] = True
  with open(path, 'w') as f:
    json.dump(result, f)
  text = tables.main([folder])
  assert '| no clipping (`no_clip`) | nan ± nan | +nan | nan | 2 (1 diverged) |' in text


def test_a_bad_marker_is_named(tmp_path):
  with pytest.raises(ValueError, match="reference row 'ful'"):
    ablation.write_marker(str(tmp_path), 't', [('full', 'x')], 'ful')
  (tmp_path / ablation.MARKER).write_text('{"rows": [')
  with pytest.raises(ValueError, match='missing, empty or torn'):
    ablation.rows_of(str(tmp_path))
  (tmp_path / ablation.MARKER).write_text('{"rows": [["a", "x"]], "reference": "b"}')
  with pytest.raises(ValueError, match="its reference row 'b' is not one of its rows"):
    ablation.rows_of(str(tmp_path))
  (tmp_path / ablation.MARKER).write_text('{"rows": [["a"]], "reference": "a"}')
  with pytest.raises(ValueError, match=r'rows must be \[name, label\] pairs'):
    ablation.rows_of(str(tmp_path))


def test_each_row_of_the_modern_ablation_takes_out_one_ingredient():
  target = reproduce.TARGETS['bai2018.ablation']
  assert len(target.labels) == len(target.jobs) and target.jobs[0].name == 'full'
  flat = {j.name: records.flatten(json.loads(reproduce.load_config(j.config).to_json()))
          for j in target.jobs}
  full = flat['full']
  changed = {name: {k for k in full if full[k] != c[k]} - {'origin.experiment'}
             for name, c in flat.items()}
  assert changed == {
      'full': set(),
      'no_layer_norm': {'model.layer_norm'},
      'no_dropout': {'model.recurrent_dropout'},
      'no_ff_dropout': {'model.dropout'},
      'no_learned_h0': {'model.learned_initial_state'},
      'no_gate_bias': {'model.gate_bias'},
      'no_clipping': {'optim.clip_norm'},
      'no_weight_decay': {'optim.name', 'optim.weight_decay'},
      'no_schedule': {'optim.schedule', 'optim.warmup_steps'},
      'one_layer': {'model.num_layers', 'model.hidden_size'},
      'with_omega': {'reg.omega_alpha'},
      # the budget in updates (300 epochs of 32) so that the windows can be scheduled in updates
      'growing_chunks': {'train.num_steps', 'train.chunk_schedule'},
  }
  assert flat['growing_chunks']['train.num_steps'] == 300 * 32
  assert flat['growing_chunks']['train.chunk_schedule'] == [[0, 25], [1200, 50], [2400, 100]]
  assert full['population.seeds'] == [0, 1, 2]
  # the reference row is the recipe itself
  assert (full['model.layer_norm'], full['model.learned_initial_state'], full['model.gate_bias'],
          full['optim.schedule']) == (True, True, True, 'warmup_cosine')
  assert full['optim.clip_norm'] > 0 and full['model.recurrent_dropout'] > 0 and full['model.dropout'] > 0


def test_ablation_rows_are_distinct_trials():
  """gate_bias=False is a setting, not 'a field recorded before it existed'."""
  assert records.is_unset('model.gate_bias', True)
  assert not records.is_unset('model.gate_bias', False)


@pytest.mark.slow
def test_an_ablation_target_runs_and_ends_with_its_table(tmp_path, monkeypatch, capsys):
  target = reproduce.Target('toy.ablation', 'Toy: clipping taken out', (
      reproduce.Job('full', 'experiments/temporal_order.py:smoke,method=sgd-c'),
      reproduce.Job('no_clipping', 'experiments/temporal_order.py:smoke,method=sgd')),
      figure='ablation', labels=('SGD-C', 'SGD'))
  monkeypatch.setitem(reproduce.TARGETS, target.key, target)
  reproduce.run(target.key, str(tmp_path), workers=1)
  out = capsys.readouterr().out
  folder = str(tmp_path / 'toy_ablation')
  marker, rows = ablation.rows_of(folder)
  assert [r['name'] for r in rows] == ['full', 'no_clipping'] and marker['reference'] == 'full'
  for r in rows:
    result = records.read_json(os.path.join(folder, r['name'], 'result.json'))
    assert r['test'] == pytest.approx(result['members'][0]['test_loss_at_best_valid'])
  assert '#### Toy: clipping taken out' in out and '| SGD (`no_clipping`) |' in out
  assert os.path.exists(os.path.join(folder, 'ablation.png'))
