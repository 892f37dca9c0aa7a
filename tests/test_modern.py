"""experiments/modern.py: the default models fit the study's parameter
budgets, the arguments are checked, the sweep pairs depth with width, and
each dataset's smoke config trains (on toy corpora of the real shapes)."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import modern
from orchestration import sweep
from training import train

DATASETS = tuple(modern.BUDGETS)


def built_param_count(config) -> int:
  """Parameters of the model the trainer builds from ``config``, counted
  from its initialised shapes (nothing computed)."""
  inputs, outputs = modern.SHAPES[config.paper.row]
  task = types.SimpleNamespace(model_kwargs={}, output_size=outputs)
  model = train.make_model(config, task)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((3, 2, inputs)))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes['params']))


@pytest.mark.parametrize('dataset', DATASETS)
@pytest.mark.parametrize('cell', modern.CELLS)
def test_default_models_are_within_the_study_budget(dataset, cell):
  config = modern.get_config(f'dataset={dataset},cell={cell}')
  n = built_param_count(config)
  assert n == modern.param_count(cell, config.model.num_layers, config.model.hidden_size,
                                 *modern.SHAPES[dataset])
  assert n <= modern.BUDGETS[dataset]
  # the widest that fits: one more tile of width is over the budget
  wider = modern.param_count(cell, config.model.num_layers,
                             config.model.hidden_size + modern.WIDTH_MULTIPLE,
                             *modern.SHAPES[dataset])
  assert wider > modern.BUDGETS[dataset]
  assert (config.paper.table, config.paper.row, config.paper.methods) == (
      'bai2018', dataset, (cell,))


def test_ptbs_dropout_spares_the_one_hot_characters():
  """The music's dropout drops input notes too; PTB's would drop whole
  characters, so there it is between layers and before the head only."""
  assert not modern.get_config('dataset=ptb_char,cell=gru,ff_dropout=0.25').model.dropout_on_inputs
  for dataset in ('jsb', 'nottingham', 'adding600'):
    assert modern.get_config(f'dataset={dataset},cell=gru').model.dropout_on_inputs


@pytest.mark.parametrize('cell', modern.CELLS)
def test_every_depth_of_the_search_is_within_the_budget(cell):
  for dataset in DATASETS:
    config = modern.get_config(f'dataset={dataset},cell={cell}')
    units = sweep.plan(config, 1)
    assert sum(len(u.rows) for u in units) == config.sweep.trials     # trials in all
    assert len({u.group for u in units}) <= len(modern.LAYERS)   # the dropouts are members
    depths = set()
    for u in units:
      c = sweep.unit_config(config, u)
      layers, width = dict(u.structural)['model.num_layers+model.hidden_size']
      depths.add(layers)
      assert (c.model.num_layers, c.model.hidden_size) == (layers, width)
      assert width == modern.widest(dataset, cell, layers)
      assert built_param_count(c) <= modern.BUDGETS[dataset]
      if dataset == 'adding600':     # fresh data: neither dropout is searched, both off
        assert u.hparams == ('optim.learning_rate',)
        assert c.model.dropout == c.model.recurrent_dropout == 0
      else:                          # each member's rates, drawn from the search's choices
        assert u.hparams == ('optim.learning_rate', 'model.recurrent_dropout', 'model.dropout')
        assert {r[1] for r in u.rows} <= set(modern.DROPOUTS)
        assert {r[2] for r in u.rows} <= set(modern.FF_DROPOUTS)
        assert c.model.dropout > 0 and c.model.recurrent_dropout > 0   # on: masks drawn
    assert depths == set(modern.LAYERS)     # 16 draws of 3 depths reach every one here


def test_the_adding_sweep_passes_the_checks():
  sweep.check(modern.get_config('dataset=adding600,cell=lstm,trials=2'))


def test_joined_sweep_keys_need_one_value_per_field():
  config = modern.get_config('dataset=adding600')
  config.sweep.grid = (('model.num_layers+model.hidden_size', ((1, 8), (2,))),)
  with pytest.raises(ValueError, match='tuple of 2'):
    sweep.plan(config, 1)
  config.sweep.grid = (('model.num_layers+model.widht', ((1, 8),)),)
  with pytest.raises(ValueError, match='not a config field'):
    sweep.plan(config, 1)


def test_arguments_are_checked():
  with pytest.raises(ValueError, match='over the study'):
    modern.get_config('dataset=jsb,width=400')
  with pytest.raises(ValueError, match='dataset'):
    modern.get_config('dataset=piano')
  with pytest.raises(ValueError, match='cell'):
    modern.get_config('cell=rnn')
  c = modern.get_config('dataset=adding600')
  assert c.task.kwargs.variant == 'bai2018' and c.task.min_length == c.task.max_length == 600
  # not given: the dataset's default; 0 is a value of its own (off, never, no warm-up)
  jsb = modern.get_config('dataset=jsb')
  assert (jsb.model.recurrent_dropout, jsb.model.dropout, jsb.optim.warmup_steps,
          jsb.train.patience) == (0.25, 0.3, 100, 20)
  off = modern.get_config('dataset=jsb,dropout=0,ff_dropout=0,warmup=0,patience=0')
  assert (off.model.recurrent_dropout, off.model.dropout, off.optim.warmup_steps,
          off.train.patience) == (0, 0, 0, 0)


def test_a_growing_window_is_scheduled_in_updates():
  c = modern.get_config('dataset=jsb,steps=9600,chunks=25@0/50@1200/100@2400')
  assert c.train.num_steps == 9600 and c.task.chunk == 100
  assert tuple(map(tuple, c.train.chunk_schedule)) == ((0, 25), (1200, 50), (2400, 100))
  assert train.chunk_phases(c) == [(0, 25), (1200, 50), (2400, 100)]
  train.check_config(c, toy_data('jsb', np.random.default_rng(0)))
  assert modern.get_config('dataset=jsb').train.chunk_schedule == ()
  with pytest.raises(ValueError, match='needs steps='):
    modern.get_config('dataset=jsb,chunks=25@0/100@1200')
  with pytest.raises(ValueError, match='LENGTH@START'):
    modern.get_config('dataset=jsb,steps=9600,chunks=25@0/fifty@1200')
  with pytest.raises(ValueError, match='adding600 has whole sequences'):
    modern.get_config('dataset=adding600,steps=100,chunks=25@0')
  with pytest.raises(ValueError, match='multiples of train.log_every'):    # the trainer's own check
    train.chunk_phases(modern.get_config('dataset=jsb,steps=9600,chunks=25@0/100@1210'))


def toy_data(dataset: str, rng):
  if dataset == 'ptb_char':
    ids = lambda n: rng.integers(0, 50, n).astype(np.int32)
    return {'train': ids(40_000), 'valid': ids(6_000), 'test': ids(6_000)}, 50
  rolls = lambda lengths: [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in lengths]
  return {'train': rolls([40, 70, 55, 60, 45, 80, 50, 65, 42, 58]), 'valid': rolls([30, 50]),
          'test': rolls([44])}
  

@pytest.mark.slow
@pytest.mark.parametrize('dataset', DATASETS)
def test_smoke_config_trains(dataset, tmp_path):
  config = modern.get_config(f'dataset={dataset},cell=lstm,smoke')
  data = None if dataset == 'adding600' else toy_data(dataset, np.random.default_rng(0))
  train.check_config(config, data)
  result = train.train_and_evaluate(config, str(tmp_path), data=data)
  assert result['step'] == config.train.num_steps and result['smoke']
  member = result['members'][0]
  assert np.isfinite(member['test_loss']) and not member['diverged']


def test_a_run_off_its_rows_task_or_over_its_size_is_told_and_records_its_size(tmp_path, capsys):
  """A run whose task an override changed after the experiment declared its row,
  or whose model is over the row's size, says at its start that the table will not
  file it there; result.json records one member's parameters, counted here from
  the built model's shapes."""
  config = modern.get_config('dataset=jsb,cell=gru,smoke')
  config.task.kwargs.dataset = 'nottingham'          # an override flag after the declaration
  config.paper.max_params = 100
  data = toy_data('jsb', np.random.default_rng(0))
  result = train.train_and_evaluate(config, str(tmp_path), data=data)
  n = built_param_count(config)
  assert result['param_count'] == n > 100
  out = capsys.readouterr().out
  assert ("Note: launch.py table will not file this run under bai2018 row 'jsb': "
          f"task.kwargs.dataset='nottingham' (the row's: 'jsb'); {n:,} parameters, over the "
          "row's 100") in out


@pytest.mark.slow
@pytest.mark.realdata
def test_a_smoke_search_on_ptb_trains_each_trials_dropouts_in_one_program_per_depth(tmp_path,
                                                                                   real_data):
  """The PTB characters search, end to end at the smoke size on the real corpus:
  trials of a depth are members of one program, each at its own learning rate
  and dropouts (PTB's dropout between layers, off in its config, switched on in
  the program), and the ranking has every trial."""
  from datasets import ptb
  real_data(*(f'ptb/{ptb.file_name("char", s)}' for s in ptb.SPLITS))
  config = modern.get_config('dataset=ptb_char,cell=gru,smoke')
  config.sweep.workers = 1
  config.sweep.seed = 2      # draws of both dropouts at 0 and above (seed 0's four are alike)
  summary = sweep.run(config, str(tmp_path))
  assert len(summary['trials']) == config.sweep.trials and not summary['diverged']
  groups = {t['unit'].split('/')[0] for t in summary['trials']}
  assert len(groups) <= 2 and all('dropout' not in g for g in groups)   # one per depth
  drawn = {(t['hparams']['model.recurrent_dropout'], t['hparams']['model.dropout'])
           for t in summary['trials']}
  assert len(drawn) > 1                            # the members differ in their dropouts
  for t in summary['trials']:
    assert 'valid_bpc' in t and 'test_bpc' in t
