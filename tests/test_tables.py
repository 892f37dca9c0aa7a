"""reporting/tables.py: finished runs placed in the papers' tables, beside the papers' numbers."""

import csv
import io
import json
import os

import pytest

from reporting import tables
from experiments import common


def fake_run(folder, config, test_losses, valid=(), result_extra=None, **extra):
  os.makedirs(folder)
  with open(os.path.join(folder, 'config.json'), 'w') as f:
    json.dump(config.to_dict(), f)
  labels = [dict(zip(config.population.hparams, row)) for row in config.population.rows] or [{}]
  members = [dict(hparams=lab, test_loss=loss, test_error=0.3, **extra)
             for lab, loss in zip(labels, test_losses)]
  with open(os.path.join(folder, 'result.json'), 'w') as f:
    json.dump(dict(step=100, wall_time_s=12.5, code_version='abc', members=members,
                   **(result_extra or {})), f)
  with open(os.path.join(folder, 'metrics.jsonl'), 'w') as f:
    for line in valid:
      f.write(json.dumps(line) + '\n')


def music_config(dataset):
  c = common.base_config()
  c.task.name = 'music'
  c.task.kwargs = {'dataset': dataset}
  return c


def all_methods(c, clip, alpha, cell='rnn'):
  """The three methods as one population, declared as Pascanu Table 1's row."""
  methods = common.apply_all_methods(c, clip=clip, alpha=alpha)
  common.apply_cell(c, cell)
  common.declare_paper(c, 'pascanu_table1', c.task.kwargs['dataset'], methods)


def one_method(c, method, clip, alpha, table='pascanu_table1', row=None):
  common.apply_method(c, method, clip=clip, alpha=alpha)
  common.declare_paper(c, table, row or c.task.kwargs['dataset'], method)


def test_music_population_lands_in_table1_with_differences(tmp_path):
  c = music_config('nottingham')
  all_methods(c, clip=8.0, alpha=0.5)
  valid = [dict(step=s, split='valid', member=2, loss=v) for s, v in ((10, 4.0), (20, 3.5),
                                                                        (30, 3.7))]
  fake_run(str(tmp_path / 'runs' / 'nott'), c, [4.0, 3.6, 3.5], valid)
  rows = tables.rows_of(tables.collect([str(tmp_path / 'runs')]))
  got = {(r['row'], r['method']): r for r in rows if r['ours'] is not None}
  assert set(got) == {('nottingham', 'sgd'), ('nottingham', 'sgd-c'), ('nottingham', 'sgd-cr')}
  # Paper numbers typed from published_numbers.md (arXiv v2 Table 1, test).
  assert got['nottingham', 'sgd']['diff'] == pytest.approx(4.0 - 3.80)
  assert got['nottingham', 'sgd-c']['diff'] == pytest.approx(3.6 - 3.48)
  assert got['nottingham', 'sgd-cr']['diff'] == pytest.approx(3.5 - 3.46)
  assert got['nottingham', 'sgd-cr']['paper_alternative'] == 3.36      # ICML
  assert (got['nottingham', 'sgd-cr']['best_valid'], got['nottingham', 'sgd-cr']['best_valid_step']) == (3.5, 20)
  assert got['nottingham', 'sgd']['best_valid'] is None
  # Every paper cell is listed, with or without a run.
  assert len([r for r in rows if r['table'] == 'pascanu_table1']) == 9


def test_runs_marked_apart_are_not_candidates_when_a_folder_above_is_tabled(tmp_path):
  """results/ holds the targets' folders and results/ablations (readings of a
  protocol) and the ablations' variants: tabling results/ must not fill a
  paper cell with them; tabling their own folder does."""
  c = music_config('nottingham')
  one_method(c, 'sgd', clip=0.0, alpha=0.0)
  fake_run(str(tmp_path / 'results' / 'table1' / 'run'), c, [3.9])
  fake_run(str(tmp_path / 'results' / 'ablations' / 'reading'), c, [3.5])
  (tmp_path / 'results' / 'ablations' / tables.APART).write_text('readings\n')
  fake_run(str(tmp_path / 'results' / 'abl' / 'variant'), c, [3.4])
  (tmp_path / 'results' / 'abl' / 'ablation.json').write_text('{}')
  ours = lambda root: [r['ours'] for r in tables.rows_of(tables.collect([str(root)]))
                       if (r['row'], r['method']) == ('nottingham', 'sgd') and r['ours']]
  skipped = []
  tables.collect([str(tmp_path / 'results')], skipped)
  assert ours(tmp_path / 'results') == [3.9]
  assert sorted(os.path.basename(run) for run, _ in skipped) == ['reading', 'variant']
  assert ours(tmp_path / 'results' / 'ablations') == [3.5]
  assert ours(tmp_path / 'results' / 'ablations' / 'reading') == [3.5]


def test_a_cell_whose_every_trial_diverged_says_so_and_any_diverged_seed_flags_its_trial(tmp_path):
  c = music_config('nottingham')
  one_method(c, 'sgd', clip=0.0, alpha=0.0)
  for name, lr, valid in (('a', 0.5, 9.0), ('b', 1.0, 7.0)):   # two trials, both diverged
    c.optim.learning_rate = lr
    fake_run(str(tmp_path / 'div' / name), c, [float('nan')],
             [dict(step=10, split='valid', member=0, loss=valid)], diverged=True)
  text = tables.markdown(tables.rows_of(tables.collect([str(tmp_path / 'div')])))
  assert 'SGD (all 2 trials diverged) | 3.80 | 3.80 | nan (diverged)' in text
  assert '| 7.00 (10) | [b](' in text          # diverged trials too rank by validation
  c.optim.learning_rate = 0.25                      # one trial, two seeds; the second diverged
  for seed, loss, diverged in ((0, 3.9, False), (1, 9.9, True)):
    c.seed = seed
    fake_run(str(tmp_path / 'seeds' / f's{seed}'), c, [loss], diverged=diverged)
  text = tables.markdown(tables.rows_of(tables.collect([str(tmp_path / 'seeds')])))
  assert '6.90 ± 4.24 (mean of 2 seeds, 3.90-9.90) (diverged)' in text


def test_a_record_without_the_tables_metric_or_its_wall_time_is_handled(tmp_path):
  """A PTB character run whose result.json lacks test_bpc is left out with a
  reason (never its nats under the bpc heading); one without wall_time_s
  shows '-' for it, not a KeyError."""
  c = common.base_config()
  c.task.name = 'ptb_char'
  one_method(c, 'sgd-c', clip=1.0, alpha=0.0, table='pascanu_table2', row='ahead1')
  fake_run(str(tmp_path / 'nobpc'), c, [1.0])             # test_loss only, no test_bpc
  skipped = []
  cells = tables.collect([str(tmp_path)], skipped)
  assert cells == [] and 'has no test_bpc' in skipped[0][1]
  music = music_config('nottingham')
  one_method(music, 'sgd', clip=0.0, alpha=0.0)
  fake_run(str(tmp_path / 'nowall'), music, [3.9])
  path = tmp_path / 'nowall' / 'result.json'
  result = json.loads(path.read_text())
  del result['wall_time_s']
  path.write_text(json.dumps(result))
  text = tables.markdown(tables.rows_of(tables.collect([str(tmp_path / 'nowall')])))
  assert '| Nottingham | SGD | 3.80 | 3.80 | 3.90 | +0.10 | 3.90 | - | [nowall](' in text


def test_gru_and_lstm_runs_fill_companion_rows_not_the_papers(tmp_path):
  for cell, losses in (('rnn', [3.9, 3.6, 3.5]), ('lstm', [3.4, 3.3, 3.2])):
    c = music_config('nottingham')
    all_methods(c, clip=8.0, alpha=0.5, cell=cell)
    fake_run(str(tmp_path / cell), c, losses)
  rows = tables.rows_of(tables.collect([str(tmp_path)]))
  got = {(r['row'], r['method']): r for r in rows if r['ours'] is not None}
  assert got['nottingham', 'sgd-cr']['ours'] == 3.5          # the paper's RNN row
  assert got['nottingham/lstm', 'sgd-cr']['ours'] == 3.2     # beside it
  assert got['nottingham/lstm', 'sgd-cr']['paper'] is None
  order = [r['row'] for r in rows if r['table'] == 'pascanu_table1']
  assert order.index('nottingham/lstm') == order.index('nottingham') + 3   # right after it
  text = tables.markdown(rows, base=str(tmp_path))
  assert 'Nottingham (LSTM, ours only) | SGD+CR | - | - | 3.20' in text   # no paper numbers


def test_single_runs_and_ptb_bits_per_character(tmp_path):
  c = music_config('piano')
  one_method(c, 'sgd', clip=8.0, alpha=0.5)
  fake_run(str(tmp_path / 'piano_sgd'), c, [7.9])
  p = common.base_config()
  p.task.name = 'ptb_char'
  p.task.kwargs = {'ahead': 5}
  one_method(p, 'sgd-c', clip=45.0, alpha=0.0, table='pascanu_table2', row='ahead5')
  fake_run(str(tmp_path / 'ptb5'), p, [2.9], test_bpc=4.1)
  temporal = common.base_config()       # declares no table
  fake_run(str(tmp_path / 'torder'), temporal, [0.1])
  skipped = []
  cells = tables.collect([str(tmp_path)], skipped)
  assert {(x.table, x.row, x.method, x.ours) for x in cells} == {
      ('pascanu_table1', 'piano', 'sgd', 7.9), ('pascanu_table2', 'ahead5', 'sgd-c', 4.1)}
  assert [(os.path.basename(r), 'declares no table' in why) for r, why in skipped] == [
      ('torder', True)]


def test_the_declared_method_not_the_hyperparameters_decides_the_cell(tmp_path):
  """config.paper says what a run reproduces: a clipping run declared as the
  paper's SGD row (say, a threshold too high to act) stays in the SGD row, and
  a record without the declaration gets its experiment's, rebuilt from
  origin.experiment."""
  c = music_config('piano')
  one_method(c, 'sgd-c', clip=8.0, alpha=0.0)
  c.paper.methods = ('sgd',)
  fake_run(str(tmp_path / 'declared'), c, [7.7])
  from experiments import music
  old = music.get_config('dataset=musedata,method=sgd-cr').to_dict()
  del old['paper']                        # written before configs declared it
  old['origin'] = {'experiment': 'experiments/music.py:dataset=musedata,method=sgd-cr'}
  os.makedirs(tmp_path / 'old')
  (tmp_path / 'old' / 'config.json').write_text(json.dumps(old))
  (tmp_path / 'old' / 'result.json').write_text(json.dumps(dict(
      step=5, wall_time_s=1.0, members=[dict(hparams={}, test_loss=7.1)])))
  (tmp_path / 'old' / 'metrics.jsonl').write_text('')
  cells = tables.collect([str(tmp_path)])
  assert {(x.row, x.method, x.ours) for x in cells} == {('piano', 'sgd', 7.7),
                                                        ('musedata', 'sgd-cr', 7.1)}
  with pytest.raises(ValueError, match='one method per row'):
    common.declare_paper(music.get_config('method=all'), 'pascanu_table1', 'x', ('sgd', 'sgd-c'))


def test_ours_is_the_test_at_the_lowest_validation_loss_when_recorded(tmp_path):
  c = music_config('nottingham')
  one_method(c, 'sgd-c', clip=8.0, alpha=0.0)
  fake_run(str(tmp_path / 'n'), c, [4.9], test_loss_at_best_valid=4.3)
  (row,) = [r for r in tables.rows_of(tables.collect([str(tmp_path)])) if r['ours'] is not None]
  assert (row['ours'], row['final']) == (4.3, 4.9)
  assert row['diff'] == pytest.approx(4.3 - 3.48)


def test_a_metrics_file_that_disagrees_with_the_result_leaves_its_member_out(tmp_path):
  """The best validation and the trial chosen are read from metrics.jsonl;
  one cut short (or edited) would change them silently. Where result.json
  records the member's lowest validation loss, the two must agree."""
  valid = [dict(step=s, split='valid', member=0, loss=v) for s, v in ((10, 3.9), (20, 3.7))]
  for name, lines in (('whole', valid), ('cut', valid[:1])):
    c = music_config('nottingham')
    one_method(c, 'sgd', clip=0.0, alpha=0.0)
    fake_run(str(tmp_path / name), c, [3.8], lines, best_valid_loss=3.7, best_valid_step=20)
  skipped = []
  cells = tables.collect([str(tmp_path)], skipped)
  assert [(os.path.basename(c.run), c.best_valid, c.best_valid_step) for c in cells] == [
      ('whole', 3.7, 20)]
  assert [(os.path.basename(r), w) for r, w in skipped] == [
      ('cut', 'member 0: result.json records its lowest validation loss as 3.7 at step 20, and '
              'metrics.jsonl has (3.9, 10) (cut short or edited?)')]


def test_markdown_and_csv_written(tmp_path, capsys):
  c = music_config('musedata')
  one_method(c, 'sgd-cr', clip=8.0, alpha=0.1)
  fake_run(str(tmp_path / 'm'), c, [7.25])
  tables.main([str(tmp_path)])
  md = (tmp_path / 'tables.md').read_text()
  assert '| MuseData | SGD+CR | 6.99 | 6.97 | 7.25 | +0.26 | 7.25 | - | [m](m) member 0 |' in md
  assert md in capsys.readouterr().out
  # Only the tables our runs fill are printed.
  assert 'Table 1: polyphonic music' in md and 'Table 2' not in md and 'Bai' not in md
  rows = list(csv.DictReader(io.StringIO((tmp_path / 'tables.csv').read_text())))
  mine = [r for r in rows if r['ours']]
  assert len(mine) == 1 and float(mine[0]['diff']) == pytest.approx(0.26)
  # every cell of every table (Pascanu Tables 1, 2; Bengio Table 1, 2 words, chars; Bai et al.
  # Table 1), counted from PAPER, and by hand as they stand
  assert len(rows) == sum(len(m) for t in tables.PAPER.values() for m in t.rows.values())
  assert len(rows) == 9 + 6 + 4 * 8 + 4 + 4 + 12


def test_missing_folder_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='no such folder'):
    tables.main([str(tmp_path / 'nope')])


def test_a_folder_without_runs_says_so(tmp_path):
  assert tables.main([str(tmp_path)]).startswith('No finished run fills a cell')


def test_bengio_music_rows_and_the_trial_selected_on_validation(tmp_path):
  from experiments import music_bengio
  for name, arg, test, best_valid in (('clr_a', 'method=clr', 5.0, 4.4),
                                      ('clr_b', 'method=clr', 4.6, 4.5),
                                      ('crm', 'method=crm', 4.2, 4.1),
                                      ('nade', 'method=nade-cr', 3.9, 3.8),
                                      ('leaky', 'method=cl,leaky=0.25', 4.8, 4.7)):
    c = music_bengio.get_config(arg)
    if name == 'clr_b':       # another trial of the row's search: other hyperparameters
      c.optim.learning_rate /= 2
    # the paper's second column, expected accuracy: 1 - the error at best valid where recorded
    extra = dict(test_error_at_best_valid=0.25) if name == 'clr_a' else {}
    fake_run(str(tmp_path / name), c, [test],
             [dict(step=10, split='valid', member=0, loss=best_valid)], **extra)
  rows = [r for r in tables.rows_of(tables.collect([str(tmp_path)])) if r['ours'] is not None]
  got = {(r['table'], r['row'], r['method'], r['ours']): r['selected'] for r in rows}
  assert got == {('bengio_table1', 'nottingham', 'clr', 5.0): True,    # valid 4.4 < 4.5
                 ('bengio_table1', 'nottingham', 'clr', 4.6): False,
                 ('bengio_table1', 'nottingham', 'crm', 4.2): None,    # one run: no choice
                 ('bengio_table1', 'nottingham', 'nade-cr', 3.9): None,
                 ('bengio_table1', 'nottingham', 'cl', 4.8): None}
  text = tables.markdown(rows, base=str(tmp_path))
  assert '| Nottingham | RNN (SGD+CLR) (best of 2 on valid) | - | 5.00 | 75.0 | - |' in text
  assert '4.60' not in text                   # the trial not selected: in the CSV only
  assert '| Nottingham | RNN-NADE (SGD+CR) | - | 3.90 | 70.0 | - |' in text   # test_error 0.3
  assert 'RNN (SGD+C) |' not in text          # no paper number and no run: not printed


def test_a_sweep_groups_trials_of_one_method_as_population_members(tmp_path):
  """A sweep's group: one declared method, its trials as population rows (learning
  rates). Every member is a trial of that method; the lowest validation wins."""
  from experiments import music_bengio
  c = music_bengio.get_config('dataset=jsb,method=c')
  c.population.hparams = ('optim.learning_rate',)
  c.population.rows = ((0.1,), (0.01,), (0.001,))
  fake_run(str(tmp_path / 'g00'), c, [9.0, 8.8, 9.5],
           [dict(step=10, split='valid', member=i, loss=v) for i, v in enumerate((8.9, 8.7, 9.4))])
  rows = [r for r in tables.rows_of(tables.collect([str(tmp_path)])) if r['ours'] is not None]
  assert sorted((r['ours'], r['selected']) for r in rows) == [(8.8, True), (9.0, False),
                                                              (9.5, False)]
  assert {r['method'] for r in rows} == {'c'}


def test_runs_outside_a_sweep_are_counted_apart_from_its_trials(tmp_path):
  """A cell filled by two single runs and by a sweep's units (tabled
  together, as RESULTS' bai2018 table joins results/modern): the label counts
  the single runs apart from the search's trials, finished or not."""
  from experiments import music_bengio
  from orchestration import sweep
  c = music_bengio.get_config('dataset=jsb,method=c')
  c.sweep.grid = (('optim.learning_rate', (0.1, 0.01, 0.001)),)
  c.sweep.random, c.sweep.part_size = (), 1
  units = sweep.plan(c, workers=1)
  search, singles = tmp_path / 'search', tmp_path / 'singles'
  for k, (lr, valid) in enumerate(((0.05, 0.5), (0.2, 0.7))):    # two other settings
    single = c.copy_and_resolve_references()
    single.optim.learning_rate = lr
    fake_run(str(singles / f'run{k}'), single, [8.0 + valid],
             [dict(step=10, split='valid', member=0, loss=valid)])

  def finish(k, valid):
    fake_run(str(search / units[k].name), sweep.unit_config(c, units[k]), [8.0 + valid],
             [dict(step=10, split='valid', member=0, loss=valid)])

  def labels():
    rows = tables.rows_of(tables.collect([str(search), str(singles)]))
    text = tables.markdown(rows, base=str(tmp_path))
    return [line.split(' | ')[1] for line in text.splitlines() if 'RNN (SGD+C)' in line]

  finish(0, 0.6)
  assert labels() == ["RNN (SGD+C) (best of 3 on valid: 2 other runs and 1 of the search's 3 trials)"]
  finish(1, 0.3)
  finish(2, 0.9)
  assert labels() == ["RNN (SGD+C) (best of 5 on valid: 2 other runs and the search's 3 trials)"]


def test_an_unfinished_sweep_says_how_many_of_its_trials_have_finished(tmp_path):
  """A sweep of 3 x 2 trials (units of one member, as `launch.py sweep` writes
  them): while some units have no result, the row's label says so; once all
  have, it is the plain best of the grid."""
  from experiments import music_bengio
  from orchestration import sweep
  c = music_bengio.get_config('dataset=jsb,method=c')
  c.sweep.grid = (('optim.learning_rate', (0.1, 0.01, 0.001)), ('optim.clip_norm', (1.0, 5.0)))
  c.sweep.random, c.sweep.part_size = (), 1
  units = sweep.plan(c, workers=1)
  assert len(units) == 6

  def finish(k, valid):
    fake_run(str(tmp_path / units[k].name), sweep.unit_config(c, units[k]), [8.0 + valid],
             [dict(step=10, split='valid', member=0, loss=valid)])

  def label():
    text = tables.markdown(tables.rows_of(tables.collect([str(tmp_path)])), base=str(tmp_path))
    return next(line for line in text.splitlines() if 'RNN (SGD+C)' in line).split(' | ')[1]

  finish(0, 0.5)
  assert label() == 'RNN (SGD+C) (1 of 6 trials finished)'
  finish(1, 0.3)
  assert label() == 'RNN (SGD+C) (best of 2 on valid; 2 of 6 trials finished)'
  for k in range(2, 6):
    finish(k, 0.4 + k)
  assert label() == 'RNN (SGD+C) (best of 6 on valid)'
  assert tables.planned_trials({'sweep': {'grid': [], 'random': [['x', 'choice', [1, 2]]],
                                          'trials': 16}}) == 16
  assert tables.planned_trials({'sweep': {'grid': [], 'random': []}}) == 0


def test_seeds_of_one_trial_are_averaged_with_their_spread(tmp_path):
  """Three seeds x three methods in one run: each cell is the mean of its
  three seeds, with the sample standard deviation and the range."""
  c = music_config('nottingham')
  all_methods(c, clip=8.0, alpha=0.5)
  c.population.seeds = (0, 1, 2)
  rows = c.population.rows
  folder = tmp_path / 'nott'
  os.makedirs(folder)
  (folder / 'config.json').write_text(json.dumps(c.to_dict()))
  losses = {'sgd': (3.9, 4.0, 4.1), 'sgd-c': (3.4, 3.5, 3.9), 'sgd-cr': (3.3, 3.5, 3.7)}
  members = [dict(hparams=dict(seed=seed, **dict(zip(c.population.hparams, row))),
                  test_loss=losses[method][seed], test_error=0.3)
             for seed in (0, 1, 2) for row, method in zip(rows, c.paper.methods)]
  (folder / 'result.json').write_text(json.dumps(dict(step=9, wall_time_s=1.0, members=members)))
  (folder / 'metrics.jsonl').write_text('')
  got = [r for r in tables.rows_of(tables.collect([str(tmp_path)])) if r['ours'] is not None]
  sgdc = [r for r in got if r['method'] == 'sgd-c']
  assert len(sgdc) == 3 and all(r['seeds'] == 3 and r['selected'] is None for r in sgdc)
  assert sgdc[0]['trial_mean'] == pytest.approx(3.6)
  assert sgdc[0]['trial_sd'] == pytest.approx(0.26457513, rel=1e-6)    # numpy.std(ddof=1)
  text = tables.markdown(got, base=str(tmp_path))
  assert '| Nottingham | SGD+C | 3.48 | 3.48 | 3.60 ± 0.26 (mean of 3 seeds, 3.40-3.90) | +0.12 |' in text
  assert text.count('| Nottingham | SGD+C |') == 1


def test_seeds_run_in_separate_folders_are_one_trial(tmp_path):
  """The same config with another seed, in another folder (or laid out or
  reported differently), is another seed of the same trial; another
  learning rate is another trial."""
  def run(folder, seed, loss, lr=1.0, log_every=200):
    c = music_config('piano')
    c.seed, c.optim.learning_rate, c.train.log_every = seed, lr, log_every
    one_method(c, 'sgd', clip=0.0, alpha=0.0)
    fake_run(tmp_path / folder, c, [loss])
  run('piano', 0, 7.5)
  run('piano_seed1', 1, 7.7, log_every=100)
  run('piano_lr', 0, 9.0, lr=0.5)
  got = [r for r in tables.rows_of(tables.collect([str(tmp_path)])) if r['ours'] is not None]
  by_run = {os.path.basename(r['run']): r for r in got}
  assert by_run['piano']['seeds'] == by_run['piano_seed1']['seeds'] == 2
  assert by_run['piano']['trial_mean'] == pytest.approx(7.6)
  assert by_run['piano_lr']['seeds'] == 1 and by_run['piano_lr']['candidates'] == 2
  text = tables.markdown(got, base=str(tmp_path))
  assert '7.60 ± 0.14 (mean of 2 seeds' in text
  assert '[piano](piano), [piano_seed1](piano_seed1) (one seed each) | 25 s (2 runs) |' in text


def test_each_cell_says_how_long_its_run_took(tmp_path):
  """The wall time column: one run's own, in the unit people would say it."""
  for folder, seconds in (('piano', 9189.3), ('nottingham', 492.0)):
    c = music_config(folder)
    one_method(c, 'sgd', clip=0.0, alpha=0.0)
    fake_run(tmp_path / folder, c, [7.5])
    result = json.loads((tmp_path / folder / 'result.json').read_text())
    result['wall_time_s'] = seconds
    (tmp_path / folder / 'result.json').write_text(json.dumps(result))
  text = tables.markdown(tables.rows_of(tables.collect([str(tmp_path)])), base=str(tmp_path))
  header = next(line for line in text.splitlines() if line.startswith('| row |'))
  assert header.endswith('| run | wall time of the run |')
  assert '[piano](piano) member 0 | 2 h 33 min |' in text          # 9189 s = 153 min
  assert '[nottingham](nottingham) member 0 | 8.2 min |' in text
  assert '| Nottingham | SGD+C | 3.48 | 3.48 | - | - | - | - |  | - |' in text   # no run: no time
  assert [tables._duration(x) for x in (44.6, 5400.0, 5401.0, 3600 * 25)] == [
      '45 s', '1 h 30 min', '1 h 30 min', '25 h 00 min']


def test_a_members_trial_is_its_settings_not_the_grid_it_ran_in(tmp_path):
  """Grid runs over different rates share the rates they have in common (seed
  0 ran 0.125 / 0.25 / 0.5, seed 1 0.25 / 0.5); a rate set as a member's
  hyperparameter and the same rate set in the config are one trial; a folder
  named twice counts once."""
  LR = 'optim.learning_rate'
  def grid(folder, seed, rates, losses):
    c = music_config('musedata')
    c.seed = seed
    one_method(c, 'sgd', clip=0.0, alpha=0.0)
    c.population.hparams, c.population.rows = (LR,), tuple((r,) for r in rates)
    valid = [dict(step=10, split='valid', member=i, loss=v) for i, v in enumerate(losses)]
    fake_run(tmp_path / folder, c, [v + 0.1 for v in losses], valid)
  grid('s0', 0, (0.125, 0.25, 0.5), (7.3, 7.0, 7.2))
  grid('s1', 1, (0.25, 0.5), (7.2, 7.0))
  c = music_config('musedata')           # rate 0.25 in the config, seed 2
  c.seed, c.optim.learning_rate = 2, 0.25
  one_method(c, 'sgd', clip=0.0, alpha=0.0)
  fake_run(tmp_path / 's2', c, [7.2], [dict(step=10, split='valid', member=0, loss=7.1)])
  folders = [str(tmp_path / f) for f in ('s0', 's1', 's2', 's1')]
  got = [r for r in tables.rows_of(tables.collect(folders)) if r['ours'] is not None]
  assert len(got) == 6                   # 3 + 2 + 1 members, s1 once
  chosen = [r for r in got if r['selected']]
  # 0.25: valid (7.0 + 7.2 + 7.1) / 3 = 7.1 beats 0.5's (7.2 + 7.0) / 2 and 0.125's 7.3
  assert {os.path.basename(r['run']) for r in chosen} == {'s0', 's1', 's2'}
  assert all(r['seeds'] == 3 and r['candidates'] == 3 for r in chosen)
  assert chosen[0]['trial_mean'] == pytest.approx((7.1 + 7.3 + 7.2) / 3)
  # a run of the same settings and seed in another folder is not a fourth seed
  fake_run(tmp_path / 'again', c, [9.9], [dict(step=10, split='valid', member=0, loss=9.9)])
  c.seed = 3
  fake_run(tmp_path / 'seed3', c, [7.0], [dict(step=10, split='valid', member=0, loss=7.0)])
  skipped = []
  cells = tables.collect([str(tmp_path / f) for f in ('s0', 's1', 's2', 'again', 'seed3')], skipped)
  assert len(cells) == 7
  assert skipped == [(str(tmp_path / 'again'),
                      f'member 0 repeats seed 2 of a trial that {tmp_path / "s2"} already has')]


def test_bai2018_runs_fill_the_column_of_their_cell(tmp_path):
  from experiments import modern
  runs = tmp_path / 'runs'
  jsb = modern.get_config('dataset=jsb,cell=gru')
  fake_run(str(runs / 'jsb_gru'), jsb, [8.30],
           [dict(step=s, split='valid', member=0, loss=v) for s, v in ((10, 8.9), (20, 8.6))])
  ptb = modern.get_config('dataset=ptb_char,cell=lstm')
  fake_run(str(runs / 'ptb_lstm'), ptb, [0.97], [dict(step=5, split='valid', member=0, loss=0.98,
                                                      bpc=1.41)], test_bpc=1.40)
  add = modern.get_config('dataset=adding600,cell=lstm')
  fake_run(str(runs / 'add_lstm'), add, [1.2e-4])
  fake_run(str(runs / 'smoke'), modern.get_config('dataset=jsb,cell=lstm,smoke'), [9.0])
  # A cell or a dataset the study's table has no place for: listed as left out, not dropped.
  mgu = modern.get_config('dataset=jsb,cell=gru')
  mgu.paper.methods = ('mgu',)
  fake_run(str(runs / 'jsb_mgu'), mgu, [8.2])
  piano = modern.get_config('dataset=jsb,cell=gru')
  piano.paper.row = 'piano'
  fake_run(str(runs / 'piano_gru'), piano, [7.9])
  skipped = []
  rows = tables.rows_of(tables.collect([str(runs)], skipped))
  why = {os.path.basename(r): w for r, w in skipped}
  assert sorted(why) == ['jsb_mgu', 'piano_gru', 'smoke']
  assert "member 0 declares method 'mgu', which table bai2018 has no column for in row 'jsb' " \
         "(methods: lstm, gru, tcn)" == why['jsb_mgu']
  assert why['piano_gru'].startswith("it declares row 'piano', which table bai2018 does not have")
  mine = {(r['row'], r['method']): r for r in rows if r['table'] == 'bai2018'}
  # Every cell of the study's table is there, numbers typed from published_numbers.md.
  assert len(mine) == 12
  assert (mine['jsb', 'gru']['paper'], mine['jsb', 'lstm']['paper'], mine['jsb', 'tcn']['paper']) \
      == (8.43, 8.45, 8.10)
  assert mine['adding600', 'gru']['paper'] == 5.3e-5
  assert mine['nottingham', 'lstm']['paper'] == 3.29
  assert mine['ptb_char', 'tcn']['paper'] == 1.31
  # Ours in the column of the cell type; PTB reports bits per character.
  assert mine['jsb', 'gru']['ours'] == 8.30 and mine['jsb', 'gru']['diff'] == pytest.approx(-0.13)
  assert mine['jsb', 'gru']['best_valid'] == 8.6
  assert mine['jsb', 'lstm']['ours'] is None and mine['jsb', 'tcn']['ours'] is None
  assert mine['ptb_char', 'lstm']['ours'] == 1.40 and mine['ptb_char', 'lstm']['best_valid'] == 1.41
  assert mine['adding600', 'lstm']['ours'] == 1.2e-4
  assert not any(r['ours'] is not None for (row, m), r in mine.items() if m == 'tcn')
  text = tables.markdown(rows, base=str(runs))
  section = text[text.index('Bai, Kolter, Koltun'):]
  assert "| row | method | study's (Table 1) | ours (at best valid) | ours - study's (Table 1)" \
      in section
  assert '| JSB Chorales, NLL (300K) | GRU | 8.43 | 8.3 | -0.13 |' in section
  assert '| adding problem T=600, MSE (70K) | LSTM | 0.164 | 0.00012 |' in section
  assert '| adding problem T=600, MSE (70K) | GRU | 5.3e-05 | - |' in section
  assert '| PTB characters, bpc (3M) | TCN (study only) | 1.31 | - |' in section


def test_a_run_given_less_than_its_declared_budget_is_labelled_reduced(tmp_path):
  """A reduced-budget run says so in the table, with what was cut: fewer epochs
  (given as an argument, or by an override flag the arguments do not show), or a
  cap in updates; a record written before configs declared a budget gets its
  experiment's. A run at the full budget carries no label."""
  from experiments import modern
  runs = tmp_path / 'runs'
  valid = [dict(step=5, split='valid', member=0, loss=0.98, bpc=1.41)]

  def run(name, arg, bpc, edit=lambda c: None, drop_budget=False):
    c = modern.get_config(arg)
    c.origin = {'experiment': f'experiments/modern.py:{arg}'}
    edit(c)
    if drop_budget:
      del c.paper['budget']
    fake_run(str(runs / name), c, [0.9], valid, test_bpc=bpc)

  def label():
    rows = tables.rows_of(tables.collect([str(runs)]))
    shown = tables.markdown(rows, base=str(runs))
    return [line.split(' | ')[1] for line in shown.splitlines() if line.startswith('| PTB ')
            and 'study only' not in line]

  run('lstm_e10', 'dataset=ptb_char,cell=lstm,epochs=10', 1.33)
  run('gru_full', 'dataset=ptb_char,cell=gru', 1.30)
  assert label() == ['LSTM, reduced budget: 10 of 30 epochs', 'GRU']
  # an override flag, recorded in the config but not in origin.experiment; an old record
  for name in ('lstm_e10', 'gru_full'):
    for f in ('config.json', 'result.json', 'metrics.jsonl'):
      (runs / name / f).unlink()
    (runs / name).rmdir()
  run('lstm_flag', 'dataset=ptb_char,cell=lstm', 1.33,
      edit=lambda c: setattr(c.task, 'epochs', 4))
  run('gru_old', 'dataset=ptb_char,cell=gru,epochs=14', 1.30, drop_budget=True)
  assert label() == ['LSTM, reduced budget: 4 of 30 epochs', 'GRU, reduced budget: 14 of 30 epochs']
  run('gru_capped', 'dataset=ptb_char,cell=gru,seed=1', 1.29,       # other seeds: not repeats
      edit=lambda c: setattr(c.train, 'num_steps', 1000))
  run('gru_capped_old', 'dataset=ptb_char,cell=gru,steps=500,seed=2', 1.28, drop_budget=True)
  shown = [r for r in tables.rows_of(tables.collect([str(runs)])) if r['row'] == 'ptb_char']
  cut = {os.path.basename(r['run']): r['reduced'] for r in shown if r['ours'] is not None}
  assert cut == {'lstm_flag': '4 of 30 epochs', 'gru_old': '14 of 30 epochs',
                 'gru_capped': 'at most 1,000 updates of the 30 epochs',
                 'gru_capped_old': 'at most 500 updates of the 30 epochs'}
  # The adding problem's budget is in updates.
  run('add', 'dataset=adding600,cell=gru,steps=5000', None)
  assert tables.reduced(json.loads((runs / 'add' / 'config.json').read_text())) == \
      '5,000 of 20,000 updates'


def test_a_run_off_its_rows_task_or_over_its_size_is_left_out_with_why(tmp_path):
  """Override flags apply after the experiment declared its row: the adding problem
  run at T = 100, or Nottingham under JSB's row, is not that row's run; nor is a
  model over the study's size (result.json's param_count). Each is left out with
  the reason; a run at exactly the size, and a record without a count, are filed."""
  from experiments import modern
  runs = tmp_path / 'runs'
  short = modern.get_config('dataset=adding600,cell=gru')
  short.task.min_length = short.task.max_length = 100
  fake_run(str(runs / 'add_t100'), short, [1e-7])
  other = modern.get_config('dataset=jsb,cell=gru')
  other.task.kwargs.dataset = 'nottingham'
  fake_run(str(runs / 'jsb_but_nottingham'), other, [3.0])
  limit = modern.BUDGETS['jsb']
  fake_run(str(runs / 'jsb_big'), modern.get_config('dataset=jsb,cell=gru,seed=1'), [7.0],
           result_extra=dict(param_count=limit + 1))
  fake_run(str(runs / 'jsb_at_size'), modern.get_config('dataset=jsb,cell=gru,seed=2'), [8.3],
           result_extra=dict(param_count=limit))
  fake_run(str(runs / 'add_ok'), modern.get_config('dataset=adding600,cell=gru'), [4e-6])
  skipped = []
  rows = tables.rows_of(tables.collect([str(runs)], skipped))
  why = {os.path.basename(r): w for r, w in skipped}
  assert why == {
      'add_t100': "it is not the run its declared row 'adding600' stands for: "
                  "task.max_length=100 (the row's: 600); task.min_length=100 (the row's: 600)",
      'jsb_but_nottingham': "it is not the run its declared row 'jsb' stands for: "
                            "task.kwargs.dataset='nottingham' (the row's: 'jsb')",
      'jsb_big': "it is not the run its declared row 'jsb' stands for: "
                 f"{limit + 1:,} parameters, over the row's {limit:,}"}
  ours = {(r['row'], r['method']): r['ours'] for r in rows if r['table'] == 'bai2018'}
  assert ours['adding600', 'gru'] == 4e-6 and ours['jsb', 'gru'] == 8.3
