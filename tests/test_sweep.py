"""orchestration/sweep.py: planning grids and random draws, ranking trials, running and resuming."""

import json
import math
import os

import numpy as np
import pytest

from orchestration import sweep
from experiments import common, temporal_order, temporal_order_sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_with(grid=(), random=(), trials=0, seeds=(), **sweep_fields):
  c = temporal_order.get_config('method=sgd-cr,smoke')
  c.sweep.grid = grid
  c.sweep.random = random
  c.sweep.trials = trials
  c.sweep.seeds = seeds
  for field, value in sweep_fields.items():
    c.sweep[field] = value
  return c


def test_structural_choices_are_groups_numbers_are_members():
  c = config_with(grid=(('model.cell', ('rnn', 'gru')), ('reg.omega_alpha', (1.0, 4.0))),
                  random=(('optim.learning_rate', 'log_uniform', 1e-3, 1e-1),), trials=3)
  units = sweep.plan(c, workers=1)
  assert [u.group for u in units] == ['g00_cell-rnn', 'g01_cell-gru']
  assert all(u.hparams == ('reg.omega_alpha', 'optim.learning_rate') for u in units)
  assert all(len(u.rows) == 2 * 3 for u in units)        # numeric grid x random trials
  assert [r[0] for r in units[0].rows] == [1.0, 1.0, 1.0, 4.0, 4.0, 4.0]
  assert units[0].rows == units[1].rows                   # the same draws in every group
  uc = sweep.unit_config(c, units[1])
  assert uc.model.cell == 'gru' and uc.population.rows == units[1].rows
  assert c.model.cell == 'rnn'                            # the sweep's config is untouched


def test_drawn_structural_keys_put_each_trial_in_the_group_of_its_draw():
  random = (('optim.learning_rate', 'log_uniform', 1e-3, 1e-1),
            ('model.hidden_size', 'choice', (8, 16, 32)))
  c = config_with(grid=(('reg.omega_alpha', (1.0, 4.0)),), random=random, trials=7)
  draws = sweep.draw(random, 7, c.sweep.seed)       # the trials, drawn independently
  units = sweep.plan(c, workers=1)
  sizes = [d['model.hidden_size'] for d in draws]
  assert [dict(u.structural)['model.hidden_size'] for u in units] == list(dict.fromkeys(sizes))
  assert len({u.group for u in units}) == len(units)
  for u in units:
    h = dict(u.structural)['model.hidden_size']
    mine = [d['optim.learning_rate'] for d in draws if d['model.hidden_size'] == h]
    assert u.hparams == ('reg.omega_alpha', 'optim.learning_rate')
    assert list(u.rows) == [(a, lr) for a in (1.0, 4.0) for lr in mine]
    assert sweep.unit_config(c, u).model.hidden_size == h
  # 7 trials in all (x 2 grid points), not 7 per hidden size
  assert sum(len(u.rows) for u in units) == 7 * 2
  # only structural draws: one member per group
  only = config_with(random=(('model.hidden_size', 'choice', (8, 16)),), trials=5)
  assert all(len(u.rows) == 1 and u.hparams == () for u in sweep.plan(only, workers=1))


def test_joined_keys_may_be_drawn_together():
  """A depth drawn with its own width: the two fields are set as a pair."""
  pairs = ((1, 8), (2, 16))
  random = (('optim.learning_rate', 'log_uniform', 1e-3, 1e-1),
            ('model.num_layers+model.hidden_size', 'choice', pairs))
  c = config_with(random=random, trials=6)
  draws = sweep.draw(random, 6, c.sweep.seed)
  units = sweep.plan(c, workers=1)
  assert sum(len(u.rows) for u in units) == 6
  for u in units:
    pair = dict(u.structural)['model.num_layers+model.hidden_size']
    uc = sweep.unit_config(c, u)
    assert (uc.model.num_layers, uc.model.hidden_size) == pair
    assert [r[0] for r in u.rows] == [d['optim.learning_rate'] for d in draws
                                     if d['model.num_layers+model.hidden_size'] == pair]
  assert {u.group.split('_', 1)[1] for u in units} <= {'num_layers-1_hidden_size-8',
                                                       'num_layers-2_hidden_size-16'}


def test_members_are_split_over_workers_without_loss():
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=5)
  units = sweep.plan(c, workers=2)
  assert [len(u.rows) for u in units] == [3, 2]
  assert [u.name for u in units] == ['g00_all/part0', 'g00_all/part1']
  whole = sweep.plan(c, workers=1)[0].rows
  assert units[0].rows + units[1].rows == whole


def _unit_folder(workdir, unit, config):
  folder = workdir / unit.group / f'part{unit.part}'
  folder.mkdir(parents=True)
  (folder / 'config.json').write_text(sweep.unit_config(config, unit).to_json())
  return folder


def test_the_first_start_fixes_the_layout_and_a_rerun_keeps_it(tmp_path, capsys):
  """Planned for 2 workers, the 5 trials are units of 3 and 2; a rerun with
  1 worker (reproduce's) must keep them, not plan one unit of 5 whose name
  is the finished 3-trial unit's (2 trials would never run). A rerun whose
  settings differ from the first start's says so (a part_size given then
  does nothing); --status (write=False) prints nothing."""
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=5)
  two = sweep.plan(c, workers=2)
  assert sweep.layout(c, str(tmp_path), 2) == two
  assert json.loads((tmp_path / sweep.LAYOUT_FILE).read_text()) == {
      'workers': 2, 'part_size': 0, 'rates_in_program': True}
  assert sweep.layout(c, str(tmp_path), 2) == two
  assert capsys.readouterr().out == ''           # the same settings: nothing to say
  assert sweep.layout(c, str(tmp_path), 1) == two
  assert capsys.readouterr().out == (
      "Units as this sweep's first start laid them out (layout.json: workers=2, part_size=0); "
      'sweep.workers=1 sets only how many run at once\n')
  c.sweep.part_size = 1                        # a changed part_size is kept out too
  assert sweep.layout(c, str(tmp_path), 1) == two
  assert capsys.readouterr().out.endswith(', sweep.part_size=1 is not applied\n')
  assert sweep.layout(c, str(tmp_path), 1, write=False) == two
  assert capsys.readouterr().out == ''


def test_a_folder_from_before_the_layout_file_is_matched_by_its_units(tmp_path):
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=5)
  two = sweep.plan(c, workers=2)
  _unit_folder(tmp_path, two[0], c)            # its first unit (3 trials) was started
  assert sweep.layout(c, str(tmp_path), 1, write=False) == two
  assert not (tmp_path / sweep.LAYOUT_FILE).exists()      # write=False: --status writes nothing
  assert sweep.layout(c, str(tmp_path), 1) == two
  assert json.loads((tmp_path / sweep.LAYOUT_FILE).read_text())['workers'] == 2


def test_dropout_rates_on_in_the_config_are_members_and_earlier_sweeps_keep_their_groups(tmp_path):
  """The modern recipe's searches draw depth, rates and dropouts: the dropouts
  are members' numbers, so a search is one program per depth (3, not up to 27).
  PTB's config has no dropout between layers: its units switch it on at the
  search's largest rate where a member drew it (each member trains at its
  own); one at a trial a unit, those that drew 0 leave it off. The committed
  searches, laid out when the dropouts were structure, keep their groups: the
  JSB folders (from before layout.json) are matched by their units,
  Nottingham's by its layout.json."""
  from experiments import modern
  from training import population
  root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'results',
                      'bai2018')
  for dataset in ('jsb', 'nottingham', 'ptb_char'):
    for cell in ('gru', 'lstm'):
      c = modern.get_config(f'dataset={dataset},cell={cell}')
      units = sweep.plan(c, 1)
      assert len({u.group for u in units}) <= len(modern.LAYERS)
      assert all(set(u.hparams) == {'optim.learning_rate', 'model.recurrent_dropout',
                                    'model.dropout'} for u in units)
      assert sum(len(u.rows) for u in units) == c.sweep.trials
      one = c.copy_and_resolve_references()
      one.sweep.part_size = 1        # this CPU's searches: a trial a unit
      units += sweep.plan(one, 1)
      for u in units:
        uc = sweep.unit_config(c, u)
        column = u.hparams.index('model.dropout')
        drawn = [r[column] for r in u.rows]
        assert uc.model.dropout == (c.model.dropout or (max(modern.FF_DROPOUTS) if max(drawn) > 0
                                                        else 0.0))
        assert uc.model.recurrent_dropout == c.model.recurrent_dropout > 0
        rates = population.make_population(uc).loss_hp
        if uc.model.dropout:
          np.testing.assert_allclose(rates['dropout'], drawn)
        else:      # every member at 0 of a dropout that is off: nothing drawn
          assert 'dropout' not in rates
      folder = os.path.join(root, f'{dataset}_{cell}')
      if not os.path.isdir(folder):
        continue
      kept = sweep.layout(c, folder, 1, write=False)
      groups = {u.group for u in kept}
      assert groups == {g for g in os.listdir(folder) if g.startswith('g')}, groups
      assert all('dropout-' in g for g in groups) and len(groups) > len(modern.LAYERS)
  # A new folder records the grouping it was laid out with.
  c = modern.get_config('dataset=jsb,cell=gru')
  assert sweep.layout(c, str(tmp_path), 1) == sweep.plan(c, 1)
  assert json.loads((tmp_path / sweep.LAYOUT_FILE).read_text())['rates_in_program'] is True


def test_units_of_another_sweep_are_refused_in_one_line(tmp_path):
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=5)
  other = config_with(random=(('optim.learning_rate', 'uniform', 0.03, 0.04),), trials=5)
  _unit_folder(tmp_path, sweep.plan(other, workers=1)[0], other)
  with pytest.raises(sweep.RunError, match='match no layout of this sweep'):
    sweep.layout(c, str(tmp_path), 1)


def test_a_rerun_under_another_sweep_config_is_refused_not_ranked_as_the_old(tmp_path, capsys):
  """A finished unit is not run again: a rerun with more trials or another
  optimiser once ranked the old runs as the new sweep's. A change a single
  run's rerun may make (the budget) still resumes."""
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=2)
  sweep.layout(c, str(tmp_path), 1)
  for unit in sweep.plan(c, workers=1):
    folder = _unit_folder(tmp_path, unit, c)
    members = [dict(hparams=dict(zip(unit.hparams, row), seed=0), test_loss=0.5, test_error=0.1,
                    best_valid_loss=0.4) for row in unit.rows]
    (folder / 'result.json').write_text(json.dumps(dict(step=60, members=members)))
  more = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=4)
  with pytest.raises(sweep.RunError, match=r'holds a sweep run with another config \(g00.*'
                                           r'population.rows'):
    sweep.run(more, str(tmp_path))
  momentum = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=2)
  momentum.optim.name = 'momentum'
  with pytest.raises(sweep.RunError, match="optim.name 'sgd' -> 'momentum'"):
    sweep.run(momentum, str(tmp_path))
  longer = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=2)
  longer.train.num_steps = 120
  longer.train.patience = 7
  assert len(sweep.run(longer, str(tmp_path))['trials']) == 2
  notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith('Note: ')]
  assert len(notes) == 2      # both finished units ran with the old budget and patience
  assert notes[0].startswith('Note: 1 finished unit(s) (g00') and 'train.num_steps 60 (this config: 120)' in notes[0]
  assert 'train.patience 0 (this config: 7)' in notes[1]
  # a budget below a unit's checkpoint: refused once, up front (each unit failed on it in turn)
  (tmp_path / sweep.plan(c, workers=1)[0].name / 'checkpoints' / '60').mkdir(parents=True)
  shorter = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=2)
  shorter.train.num_steps = 30
  with pytest.raises(sweep.RunError, match=r'g00\S* holds a checkpoint at step 60, past this '
                                           r"config's budget of 30 steps"):
    sweep.run(shorter, str(tmp_path))


@pytest.mark.parametrize('workers,part_size,sizes', [
    (1, 0, [5]), (1, 1, [1, 1, 1, 1, 1]), (1, 2, [2, 2, 1]), (2, 4, [3, 2]), (2, 2, [2, 2, 1])])
def test_part_size_caps_the_members_of_a_unit(workers, part_size, sizes):
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=5)
  c.sweep.part_size = part_size
  units = sweep.plan(c, workers=workers)
  assert [len(u.rows) for u in units] == sizes
  assert [u.name for u in units] == [f'g00_all/part{j}' for j in range(len(sizes))]
  assert sum((u.rows for u in units), ()) == sweep.plan(config_with(
      random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=5), workers=1)[0].rows


def test_log_uniform_draws_have_the_closed_form_moments():
  lo, hi, n = 1e-4, 1e-1, 4000
  draws = sweep.draw((('k', 'log_uniform', lo, hi),), n, seed=1)
  logs = np.log([d['k'] for d in draws])
  assert logs.min() >= math.log(lo) and logs.max() <= math.log(hi)
  # log X ~ U(log lo, log hi): mean (log lo + log hi) / 2, std (log hi - log lo) / sqrt(12)
  np.testing.assert_allclose(logs.mean(), (math.log(lo) + math.log(hi)) / 2, atol=0.06)
  np.testing.assert_allclose(logs.std(), (math.log(hi) - math.log(lo)) / math.sqrt(12), rtol=0.03)
  # Half the draws below the geometric mean, not the arithmetic one.
  assert abs(np.mean(np.exp(logs) < math.sqrt(lo * hi)) - 0.5) < 0.03
  choice = sweep.draw((('c', 'choice', (3, 5)),), 1000, seed=2)
  assert {d['c'] for d in choice} == {3, 5}


def test_a_number_every_optimiser_of_a_grid_reads_is_a_members_number():
  """A momentum drawn under a grid over optim.name=('momentum', 'nesterov'):
  both read it, so it varies within each optimiser's program although the
  base config's plain SGD has none."""
  from training import population
  c = config_with(grid=(('optim.name', ('momentum', 'nesterov')),),
                  random=(('optim.momentum', 'uniform', 0.5, 0.99),), trials=3)
  units = sweep.plan(c, workers=1)
  assert [u.group for u in units] == ['g00_name-momentum', 'g01_name-nesterov']
  drawn = [t['optim.momentum'] for t in sweep.draw(c.sweep.random, 3, c.sweep.seed)]
  for u in units:
    assert u.hparams == ('optim.momentum',) and [r[0] for r in u.rows] == drawn
    np.testing.assert_allclose(population.make_population(sweep.unit_config(c, u)).opt_hp['momentum'],
                               np.repeat(drawn, max(1, len(c.sweep.seeds))), rtol=1e-6)


@pytest.mark.parametrize('kwargs, message', [
    (dict(grid=(('model.cel', ('rnn',)),)), "'model.cel' is not a config field"),
    (dict(random=(('model.hidden_size', 'uniform', 10, 20),), trials=2),
     r"'model.hidden_size' is not one of the numbers that vary within one program under this "
     r"config \(reg.omega_alpha, optim.learning_rate, optim.clip_norm\b.* draw it with 'choice'"),
    # an optimiser field the config's optimiser does not read: named, with what may vary;
    # under a grid over optim.name, one that not every optimiser of the grid reads
    (dict(random=(('optim.adam_b1', 'uniform', 0.8, 0.95),), trials=2),
     r"'optim.adam_b1' is not one of .* an optimiser field one that optim.name=sgd reads"),
    (dict(grid=(('optim.name', ('sgd', 'adam')),),
          random=(('optim.adam_b1', 'uniform', 0.8, 0.95),), trials=2),
     r"'optim.adam_b1' is not one of .* an optimiser field one that optim.name=sgd/adam reads"),
    (dict(random=(('optim.learning_rate', 'log_uniform', 0.0, 1.0),), trials=2), 'both > 0'),
    (dict(random=(('optim.learning_rate', 'normal', 0.0, 1.0),), trials=2), 'is not one of'),
    (dict(random=(('model.num_layers+model.hidden_siz', 'choice', ((1, 8),)),), trials=2),
     "'model.hidden_siz' is not a config field"),
    (dict(random=(('model.num_layers+model.hidden_size', 'choice', ((1, 8, 3),)),), trials=2),
     'sets 2 fields together'),
    (dict(random=(('model.num_layers+model.hidden_size', 'uniform', 1, 2),), trials=2),
     'sets several fields together'),
    (dict(random=(('optim.learning_rate', 'uniform', 0.1, 1.0),)), 'trials < 1'),
    (dict(), 'declares no sweep'),
    (dict(grid=(('model.cell', ('rnn', 'lstmm')),)), "sweep group g01_cell-lstmm: model.cell='lstmm'"),
    # select=accuracy ranked every trial as diverged; workers=-1 crashed in numpy
    (dict(grid=(('model.cell', ('rnn',)),), select='accuracy'),
     "sweep.select='accuracy' is not one of loss, error"),
    (dict(grid=(('model.cell', ('rnn',)),), retries=-1), 'sweep.retries=-1 must be >= 0'),
    (dict(grid=(('model.cell', ('rnn',)),), workers=-1), 'sweep.workers=-1 must be >= 0'),
    (dict(random=(('optim.learning_rate', 'uniform', -1.0, 1.0),), trials=2),
     r"'optim.learning_rate' draws from \[-1.0, 1.0\]: optim.learning_rate=-1.0 must be >= 0"),
    (dict(grid=(('reg.omega_alpha', (2.0, -1.0)),)),
     'sweep group g00_all: population.rows: reg.omega_alpha=-1.0 must be >= 0'),
    # a field the optimiser does not read: runs that differ in name only
    (dict(random=(('optim.momentum', 'choice', (0.1, 0.9)),), trials=2),
     "it varies optim.momentum, which optim.name='sgd' does not use"),
])
def test_bad_sweeps_are_named_before_anything_runs(kwargs, message):
  with pytest.raises(ValueError, match=message):
    sweep.check(config_with(**kwargs))


def fake_unit(root, name, members, valid, **result):
  d = os.path.join(root, name)
  os.makedirs(d)
  with open(os.path.join(d, 'result.json'), 'w') as f:
    json.dump(dict(members=members, **result), f)
  with open(os.path.join(d, 'metrics.jsonl'), 'w') as f:
    for i, v in enumerate(valid):
      f.write(json.dumps(dict(step=10, split='valid', member=i, loss=v + 1.0)) + '\n')
      f.write(json.dumps(dict(step=20, split='valid', member=i, loss=v)) + '\n')


def test_ranking_averages_seeds_selects_on_valid_and_keeps_the_diverged(tmp_path):
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=3,
                  seeds=(0, 1))
  units = sweep.plan(c, workers=1)
  member = lambda lr, seed, test: dict(hparams={'seed': seed, 'optim.learning_rate': lr},
                                       test_loss=test, test_error=0.1)
  fake_unit(str(tmp_path), units[0].name,
            [member(0.1, 0, 0.5), member(0.1, 1, 0.7),      # valid 0.4, 0.6 -> 0.5
             member(0.2, 0, 0.9), member(0.2, 1, 0.9),      # valid 0.3, 0.5 -> 0.4: best
             member(0.3, 0, float('nan')), member(0.3, 1, 0.1)],   # diverged
            valid=[0.4, 0.6, 0.3, 0.5, 0.01, 0.01])
  s = sweep.summarize(c, str(tmp_path), units)
  assert [t['hparams']['optim.learning_rate'] for t in s['trials']] == [0.2, 0.1, 0.3]
  assert s['best']['hparams'] == {'optim.learning_rate': 0.2}
  assert s['best']['valid'] == pytest.approx(0.4) and s['best']['test'] == pytest.approx(0.9)
  assert s['trials'][-1]['diverged'] and s['diverged'] == 1
  assert 'diverged' in sweep.markdown(s)


def test_trials_are_ranked_and_reported_at_their_lowest_validation_loss(tmp_path):
  """Where the trainer recorded each member's best parameters, a trial is
  judged by them: its lowest validation loss ranks it, and its test score
  there is reported, not the final one."""
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=2)
  units = sweep.plan(c, workers=1)
  member = lambda lr, best, test_best, test_final: dict(
      hparams={'seed': 0, 'optim.learning_rate': lr}, test_loss=test_final, test_error=0.5,
      best_valid_loss=best, best_valid_step=10, test_loss_at_best_valid=test_best,
      test_error_at_best_valid=0.2)
  # last validation: 0.7 (lr 0.1) and 0.25 (lr 0.2); lowest: 0.15 and 0.2
  fake_unit(str(tmp_path), units[0].name,
            [member(0.1, 0.15, 0.18, 0.9), member(0.2, 0.2, 0.25, 0.3)],
            valid=[0.7, 0.25])
  s = sweep.summarize(c, str(tmp_path), units)
  assert [t['hparams']['optim.learning_rate'] for t in s['trials']] == [0.1, 0.2]
  assert (s['best']['valid'], s['best']['test'], s['best']['test_error']) == (0.15, 0.18, 0.2)


@pytest.mark.slow
@pytest.mark.parametrize('workers', [1, 2])
def test_a_sweep_runs_resumes_and_ranks(tmp_path, workers, capsys):
  c = temporal_order_sweep.get_config(f'smoke,workers={workers}')
  c.sweep.grid = ()                         # one group, two trials
  c.train.num_steps = 20
  c.train.log_every = c.train.eval_every = 20
  sweep.check(c)
  s = sweep.run(c, str(tmp_path))
  assert s['finished_units'] == s['units'] == workers and len(s['trials']) == 2
  assert not s['failed_units']
  assert all(math.isfinite(t['valid']) for t in s['trials'])
  assert os.path.exists(tmp_path / 'sweep.md')
  first = json.loads((tmp_path / 'sweep.json').read_text())
  again = sweep.run(c, str(tmp_path))       # every unit done: nothing reruns
  assert f'{workers} already done' in capsys.readouterr().out
  assert again['trials'] == first['trials']


def test_an_interrupted_unit_stops_a_one_worker_sweep(tmp_path, monkeypatch):
  """Ctrl-C in a unit (which saves its checkpoint and raises Interrupted) stops
  the sweep: the next unit does not start and nothing is retried."""
  from training import train
  from training.errors import Interrupted, RunError
  c = config_with(grid=(('model.cell', ('rnn', 'gru')),))
  c.sweep.retries = 2
  started = []

  def fake(config, workdir, *args, **kwargs):
    started.append(workdir)
    raise Interrupted('interrupted (SIGINT) at step 3 of 60; the checkpoint is saved')

  monkeypatch.setattr(train, 'train_and_evaluate', fake)
  with pytest.raises(RunError, match='sweep interrupted in g00_cell-rnn/part0'):
    sweep._run_local(c, str(tmp_path), sweep.plan(c, 1), workers=1)
  assert len(started) == 1


def inline_workers(monkeypatch, run):
  """The sweep's spawned workers, run here, in order: ``run(unit workdir)``
  does a worker's work and returns its exit code."""
  class Inline:
    def __init__(self, target, args):
      self.workdir, self.exitcode = args[1], None

    def start(self):
      self.exitcode = run(self.workdir)

    def is_alive(self):
      return False

  monkeypatch.setattr(sweep.multiprocessing, 'get_context',
                      lambda how: type('Ctx', (), {'Process': staticmethod(Inline)}))
  monkeypatch.setattr(sweep.time, 'sleep', lambda s: None)


@pytest.mark.parametrize('workers', [1, 2])
def test_a_unit_finished_meanwhile_is_not_run_again(tmp_path, monkeypatch, capsys, workers):
  """A unit that another process finished after the sweep made its plan keeps
  its records: the sweep does not start it anew."""
  from training import train
  c = config_with(grid=(('model.cell', ('rnn', 'gru', 'lstm')),))
  units = sweep.plan(c, 1)
  finished_meanwhile = os.path.join(str(tmp_path), units[1].name)
  started = []

  def fake(config, workdir, *args, **kwargs):    # unit 0 runs; meanwhile unit 1 ends elsewhere
    started.append(os.path.relpath(workdir, str(tmp_path)))
    os.makedirs(finished_meanwhile, exist_ok=True)
    with open(os.path.join(finished_meanwhile, 'result.json'), 'w') as f:
      json.dump({'members': [{'hparams': {}, 'test_loss': 1.0}]}, f)

  if workers == 1:
    monkeypatch.setattr(train, 'train_and_evaluate', fake)
  else:   # the spawned worker's entry point, run here and in order
    inline_workers(monkeypatch, lambda workdir: fake(None, workdir) or 0)
  sweep._run_local(c, str(tmp_path), units, workers=workers)
  assert started == [units[0].name, units[2].name]
  assert f'{units[1].name}: finished meanwhile' in capsys.readouterr().out


def test_a_sweep_whose_data_is_missing_starts_no_unit(tmp_path, monkeypatch):
  from experiments import modern
  monkeypatch.setenv('RNNOPT_DATA', str(tmp_path / 'data'))
  config = modern.get_config('dataset=nottingham,smoke')
  config.sweep.workers = 1
  with pytest.raises(sweep.RunError, match=r"^no unit started; missing data file\(s\) "
                     r"'music/Nottingham.pickle' in .*python -m datasets.download music"):
    sweep.run(config, str(tmp_path / 'sweep'))
  assert [p.name for p in (tmp_path / 'sweep').iterdir()] == ['lock']   # not even its layout


def test_a_task_without_an_error_rate_prints_a_dash_not_nan():
  trial = dict(unit='g00_all/part0', hparams={'optim.learning_rate': 0.1}, diverged=False,
               valid=5.0, test=4.9, test_error=float('nan'))
  text = sweep.markdown(dict(select='loss', trials=[trial], best=trial, units=1,
                             finished_units=1, diverged=0))
  assert 'nan' not in text
  assert '| 4.9000 | - |' in text and '(error -)' in text
  trial['test_error'] = 0.25
  assert '| 25.00% |' in sweep.markdown(dict(select='loss', trials=[trial], best=trial, units=1,
                                              finished_units=1, diverged=0))


def test_small_losses_keep_their_digits_in_the_ranking():
  """The adding search's MSEs (1e-5 and below) all read 0.0000, so the
  ranking showed no difference between its trials."""
  trials = [dict(unit=f'g00_all/part{i}', hparams={'optim.learning_rate': lr}, diverged=False,
                 valid=v, test=t, test_error=0.0)
            for i, (lr, v, t) in enumerate(((1.3e-3, 3.89e-6, 4.73e-6), (5e-4, 2.5e-5, 3.2e-5)))]
  text = sweep.markdown(dict(select='loss', trials=trials, best=trials[0], units=2,
                             finished_units=2, diverged=0))
  assert '| 3.89e-06 | 4.73e-06 |' in text and '| 2.5e-05 | 3.2e-05 |' in text
  assert 'valid 3.89e-06, test 4.73e-06 (error 0.00%)' in text


def test_the_ranking_shows_each_trials_updates_and_code(tmp_path):
  """A search continued over sessions ranks units that ran different code
  and, where a unit stopped on patience or a budget changed, different
  numbers of updates: sweep.md shows both beside each trial."""
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=2)
  c.sweep.part_size = 1
  units = sweep.plan(c, workers=1)
  member = lambda lr, v: dict(hparams={'seed': 0, 'optim.learning_rate': lr}, test_loss=v,
                              test_error=0.0, best_valid_loss=v, best_valid_step=10,
                              test_loss_at_best_valid=v, test_error_at_best_valid=0.0)
  fake_unit(str(tmp_path), units[0].name, [member(0.011, 0.2)], [0.2], step=20000,
            code_version='47dcbe8')
  fake_unit(str(tmp_path), units[1].name, [member(0.015, 0.3)], [0.3], step=7248,
            code_version='0fa97c9')
  text = sweep.markdown(sweep.summarize(c, str(tmp_path), units))
  rows = [l for l in text.splitlines() if l.startswith('| 1 ') or l.startswith('| 2 ')]
  assert rows[0].endswith(f'| 0.00% | 20,000 | 47dcbe8 | {units[0].name} |'), rows
  assert rows[1].endswith(f'| 0.00% | 7,248 | 0fa97c9 | {units[1].name} |'), rows


def test_a_text_searchs_ranking_shows_the_test_in_bits_per_character(tmp_path):
  """The PTB character searches report bits per character (the papers' unit)
  beside the loss in nats: sweep.md shows the test in bpc at the same
  parameters as the loss (at the lowest validation)."""
  c = config_with(random=(('optim.learning_rate', 'uniform', 0.01, 0.02),), trials=2)
  c.sweep.part_size = 1
  units = sweep.plan(c, workers=1)
  member = lambda lr, v: dict(hparams={'seed': 0, 'optim.learning_rate': lr}, test_loss=v + 0.1,
                              test_error=0.5, best_valid_loss=v, best_valid_step=10,
                              test_loss_at_best_valid=v, test_error_at_best_valid=0.5,
                              test_bpc=(v + 0.1) / math.log(2), test_bpc_at_best_valid=v / math.log(2))
  fake_unit(str(tmp_path), units[0].name, [member(0.011, 0.95)], [0.95], step=100)
  fake_unit(str(tmp_path), units[1].name, [member(0.015, 0.93)], [0.93], step=100)
  text = sweep.markdown(sweep.summarize(c, str(tmp_path), units))
  assert '| rank | group | hyperparameters | valid | test | test (bpc) | test error |' in text
  first = next(l for l in text.splitlines() if l.startswith('| 1 '))
  assert f'| 0.9300 | {0.93 / math.log(2):.4f} | 50.00% |' in first, first
  best = next(l for l in text.splitlines() if l.startswith('Best:'))
  assert best.endswith(f'test 0.9300, {0.93 / math.log(2):.4f} bpc (error 50.00%).'), best
  # The validation in bpc too, where the trainer logged it: the line at the member's
  # lowest validation loss (step 10 here), not the last one.
  for unit, v in ((units[0], 0.95), (units[1], 0.93)):
    with open(os.path.join(str(tmp_path), unit.name, 'metrics.jsonl'), 'w') as f:
      for step, loss in ((10, v), (20, v + 0.5)):
        f.write(json.dumps(dict(step=step, split='valid', member=0, loss=loss,
                                bpc=loss / math.log(2))) + '\n')
  text = sweep.markdown(sweep.summarize(c, str(tmp_path), units))
  assert '| valid | test | valid (bpc) | test (bpc) | test error |' in text
  first = next(l for l in text.splitlines() if l.startswith('| 1 '))
  bpc = f'{0.93 / math.log(2):.4f}'
  assert f'| 0.9300 | 0.9300 | {bpc} | {bpc} | 50.00% |' in first, first
  assert f'valid 0.9300, {bpc} bpc, test 0.9300, {bpc} bpc (error 50.00%).' in text



def test_a_worker_signalled_as_its_unit_ended_counts_as_done(tmp_path, monkeypatch, capsys):
  """A worker whose unit got a SIGTERM during its final test writes its
  result, then exits 1 (train.Interrupted): done, not FAILED; a worker that
  exits 1 without a result is FAILED."""
  c = config_with(grid=(('model.cell', ('rnn', 'gru')),))
  units = sweep.plan(c, 1)

  def worker(workdir):
    if workdir.endswith(units[0].name):
      os.makedirs(workdir)
      with open(os.path.join(workdir, 'result.json'), 'w') as f:
        json.dump({'members': [{'hparams': {}, 'test_loss': 1.0}]}, f)
    return 1

  inline_workers(monkeypatch, worker)
  assert sweep._run_local(c, str(tmp_path), units, workers=2) == [units[1].name]
  out = capsys.readouterr().out
  assert f'{units[0].name}: done after' in out
  assert f'{units[1].name}: FAILED (exit 1; see its log.txt)' in out


def _parsed(config_arg: str, flags_text: str):
  """The config ``launch.py --config=<config_arg> <flags_text>`` trains, read
  by the loader launch.py uses (a shell's word splitting first)."""
  import shlex
  from absl import flags
  from ml_collections import config_flags
  argv = ['launch.py', f'--config={config_arg}', *shlex.split(flags_text)]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', flag_values=values, lock_config=True, sys_argv=argv)
  values(argv)
  return values.config


def _alone_flags(text: str) -> str:
  line = next(l for l in text.splitlines() if l.startswith('Alone'))
  command = line.rsplit('`', 2)[1]
  assert command.startswith("python launch.py --config=<the sweep's> --workdir=<a new folder> ")
  return command.split('<a new folder> ', 1)[1]


def test_the_best_trial_alone_is_the_sweeps_config_with_its_flags():
  """sweep.md's flags for the best trial, given to launch.py with the sweep's
  --config, make the config its member trained: the group's values (a pair
  drawn together), its numbers (a dropout the config has off switched on at
  the member's rate), and its seeds."""
  from experiments import modern
  arg = f'{ROOT}/experiments/modern.py:dataset=ptb_char,cell=gru,epochs=2'
  c = modern.get_config('dataset=ptb_char,cell=gru,epochs=2')
  assert c.model.dropout == 0          # off in the config: a member's rate turns it on
  units = sweep.plan(c, workers=1)
  for seeds in ((3,), (0, 2)):
    for u in units[:2]:
      for row in u.rows[:2]:
        hp = dict(zip(u.hparams, row))
        trial = dict(unit=u.name, structural=dict(u.structural), hparams=hp, seeds=list(seeds),
                     valid=1.0, test=1.0, test_error=0.3, diverged=False)
        text = sweep.markdown(dict(select='loss', trials=[trial], best=trial, units=1,
                                   finished_units=1, diverged=0))
        alone = _parsed(arg, _alone_flags(text))
        expected = sweep.unit_config(c, u)          # the unit's program, then its member
        for key, value in hp.items():
          sweep._set(expected, key, value)
        (num_layers, hidden), = [v for k, v in u.structural if '+' in k]
        assert (alone.model.num_layers, alone.model.hidden_size) == (num_layers, hidden)
        if len(seeds) == 1:
          assert alone.seed == seeds[0] and not alone.population.seeds
        else:
          assert tuple(alone.population.seeds) == seeds
        mine, theirs = alone.to_dict(), expected.to_dict()
        for d in (mine, theirs):
          d.pop('population'), d.pop('seed')
        assert mine == theirs


@pytest.mark.slow
def test_the_best_trial_alone_trains_what_its_member_trained(tmp_path):
  """Not just the config: the run launch.py makes from sweep.md's flags scores
  what the best trial's member scored in the sweep's program."""
  from training import train

  def shortened(c):
    c.train.num_steps = 20
    c.train.log_every = c.train.eval_every = 20
    return c
  c = shortened(temporal_order_sweep.get_config('smoke,seeds=2'))
  s = sweep.run(c, str(tmp_path / 'sweep'))
  best = s['best']
  flags_text = _alone_flags((tmp_path / 'sweep' / 'sweep.md').read_text())
  assert 'init_scheme' in flags_text and 'population.seeds' in flags_text
  alone = shortened(_parsed(f'{ROOT}/experiments/temporal_order_sweep.py:smoke,seeds=2',
                            flags_text))
  result = train.train_and_evaluate(alone, str(tmp_path / 'alone'))
  np.testing.assert_allclose([m.get('test_loss_at_best_valid', m['test_loss']) for m in result['members']],
                             best['test_per_seed'], rtol=1e-5)
