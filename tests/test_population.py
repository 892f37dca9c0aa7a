"""Populations: a population (mapped or vmapped) equals separate runs; members stop
independently; a sharded run equals the unsharded one (forced CPU devices)."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from training import population
from training import train
from experiments import temporal_order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def population_config(seeds=(0, 1), lrs=(0.01, 0.05), steps=40):
  config = temporal_order.get_config(f'smoke,steps={steps}')
  with config.unlocked():
    config.train.num_steps = steps
    config.population.seeds = seeds
    config.population.hparams = ('optim.learning_rate', 'reg.omega_alpha')
    config.population.rows = tuple((lr, 2.0 + i) for i, lr in enumerate(lrs))
  return config


def test_members_are_the_product_of_seeds_and_rows():
  pop = population.make_population(population_config(seeds=(3, 4), lrs=(0.1, 0.2, 0.3)))
  assert pop.size == 6
  assert pop.seeds == (3, 4, 3, 4, 3, 4)
  np.testing.assert_allclose(pop.opt_hp['learning_rate'], [0.1, 0.1, 0.2, 0.2, 0.3, 0.3])
  np.testing.assert_allclose(pop.loss_hp['omega_alpha'], [2, 2, 3, 3, 4, 4])
  assert pop.labels[2] == {'seed': 3, 'optim.learning_rate': 0.2, 'reg.omega_alpha': 3.0}


@pytest.mark.parametrize('hparams,message', [
    (('optim.name',), 'not a numeric hyperparameter'),
    (('model.hidden_size',), 'not a numeric hyperparameter'),
    (('reg.l1_weight',), 'off (0) in the config'),
    (('model.dropout',), 'off (0) in the config'),
    (('optim.momentum',), 'not a numeric hyperparameter'),   # plain SGD has no momentum
])
def test_invalid_population_names_are_one_line_errors(hparams, message):
  config = population_config()
  with config.unlocked():
    config.population.hparams = hparams
    config.population.rows = ((1.0,),)
  with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
    population.make_population(config)


def test_population_gives_the_numbers_of_separate_runs(tmp_path):
  config = population_config()
  together = train.train_and_evaluate(config, str(tmp_path / 'pop'))
  pop_metrics = [json.loads(l) for l in (tmp_path / 'pop' / 'metrics.jsonl').read_text().splitlines()]
  labels = population.make_population(config).labels
  for i in (0, 3):                    # seed 0 with the first row, seed 1 with the second
    label = labels[i]
    single = temporal_order.get_config('smoke,steps=40')
    with single.unlocked():
      single.train.num_steps = 40
      single.seed = label['seed']
      single.optim.learning_rate = label['optim.learning_rate']
      single.reg.omega_alpha = label['reg.omega_alpha']
    alone = train.train_and_evaluate(single, str(tmp_path / f'single{i}'))
    np.testing.assert_allclose(together['members'][i]['test_loss'],
                               alone['members'][0]['test_loss'], rtol=1e-5)
    mine = [r['loss'] for r in pop_metrics if r['split'] == 'train' and r['member'] == i]
    theirs = [json.loads(l)['loss'] for l in (tmp_path / f'single{i}' / 'metrics.jsonl').read_text().splitlines()
              if json.loads(l)['split'] == 'train']
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)


@pytest.mark.parametrize('layout', ['map', pytest.param('vmap', marks=pytest.mark.slow)])
def test_members_own_dropout_rates_give_the_numbers_of_separate_runs(layout, tmp_path):
  """model.dropout and model.recurrent_dropout, on in the config, are each
  member's own numbers: a member equals the run at its rates, a rate of 0 the
  run with that dropout off."""
  config = population_config(seeds=(0,), steps=30)
  with config.unlocked():
    config.model.dropout = config.model.recurrent_dropout = 0.3
    config.population.layout = layout
    config.population.hparams = ('model.dropout', 'model.recurrent_dropout')
    config.population.rows = ((0.1, 0.0), (0.4, 0.2))
  together = train.train_and_evaluate(config, str(tmp_path / 'pop'))
  lines = [json.loads(l) for l in (tmp_path / 'pop' / 'metrics.jsonl').read_text().splitlines()]
  for i, (ff, rec) in enumerate(config.population.rows):
    single = population_config(seeds=(0,), steps=30)
    with single.unlocked():
      single.population.hparams, single.population.rows = (), ()
      single.optim.learning_rate, single.reg.omega_alpha = 0.01, 2.0    # the base row's
      single.model.dropout, single.model.recurrent_dropout = ff, rec
    alone = train.train_and_evaluate(single, str(tmp_path / f'single{i}'))
    np.testing.assert_allclose(together['members'][i]['test_loss'],
                               alone['members'][0]['test_loss'], rtol=1e-4)
    mine = [r['loss'] for r in lines if r['split'] == 'train' and r['member'] == i]
    theirs = [json.loads(l)['loss'] for l in (tmp_path / f'single{i}' / 'metrics.jsonl')
              .read_text().splitlines() if json.loads(l)['split'] == 'train']
    np.testing.assert_allclose(mine, theirs, rtol=1e-4)
  assert together['members'][0]['hparams'] == {'seed': 0, 'model.dropout': 0.1,
                                               'model.recurrent_dropout': 0.0}


@pytest.mark.slow
def test_members_in_sequence_give_the_numbers_of_the_vmapped_population():
  """population.layout: 'map' (lax.map, the CPU default) and 'vmap' run the
  same chunk: the same losses and parameters, member by member."""
  config = population_config(seeds=(0, 1), lrs=(0.01, 0.05), steps=40)
  steps = train.build(config)
  pop = population.make_population(config)
  mesh = population.make_mesh(pop.size, 1, jax.devices()[:1])
  assert population.layout(mesh) == 'map'
  out = {}
  for how in ('vmap', 'map'):
    state = train.init_population(steps, pop, mesh)
    chunk = jax.jit(population.over_members(steps.train_chunk, how), static_argnums=1)
    state, metrics = chunk(state, 20)
    out[how] = (metrics['loss'], state.params)
  assert out['map'][0].shape == (4, 20)
  # vmap batches each product and lax.map does not, so the sums round in another
  # order. At lr 0.05 that moves a loss by 2e-7 and a weight by 1e-6 of its
  # array's largest entry after 20 updates (AMD EPYC, compiled as the tests
  # compile); at lr 0.3 the rounding grew to 1e-3 of a weight, so the rows keep
  # to small rates. Members differ at the first digit (own seeds).
  np.testing.assert_allclose(out['map'][0], out['vmap'][0], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(
                   a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max())),
               out['map'][1], out['vmap'][1])
  with pytest.raises(ValueError, match='population.layout'):
    population.layout(mesh, 'pmap')


def test_a_diverged_member_stops_without_stopping_the_others():
  config = population_config(seeds=(0,), lrs=(0.01, float('inf')))
  with config.unlocked():
    config.optim.guard_max_norm = 0.0      # let the second member blow up
  steps = train.build(config)
  pop = population.make_population(config)
  mesh = population.make_mesh(pop.size, config.task.batch_size)
  state = train.init_population(steps, pop, mesh)
  chunk = jax.jit(jax.vmap(steps.train_chunk, in_axes=(0, None)), static_argnums=1)
  state, metrics = chunk(state, 20)
  assert bool(state.active[0]) and not bool(state.active[1])
  # The healthy member's trajectory is the one it would have had alone.
  alone = steps.init(jax.random.key(0), {k: v[0] for k, v in pop.loss_hp.items()},
                     {k: v[0] for k, v in pop.opt_hp.items()})
  alone, _ = jax.jit(steps.train_chunk, static_argnums=1)(alone, 20)
  np.testing.assert_allclose(state.params['w_out'][0], alone.params['w_out'], rtol=1e-5, atol=1e-7)
  # Once inactive, a member's parameters no longer change.
  frozen = jax.tree.map(lambda x: np.asarray(x[1]), state.params)
  state, _ = chunk(state, 5)
  jax.tree.map(np.testing.assert_array_equal, frozen,
               jax.tree.map(lambda x: np.asarray(x[1]), state.params))


def test_mesh_puts_members_first_then_data():
  devices = [object()] * 4
  assert dict(population.make_mesh(4, 20, devices).shape) == {'pop': 4, 'data': 1}
  assert dict(population.make_mesh(2, 20, devices).shape) == {'pop': 2, 'data': 2}
  assert dict(population.make_mesh(1, 20, devices).shape) == {'pop': 1, 'data': 4}
  assert dict(population.make_mesh(3, 20, devices).shape) == {'pop': 1, 'data': 4}
  assert dict(population.make_mesh(1, 3, devices).shape) == {'pop': 1, 'data': 1}


SHARDED_SCRIPT = r'''
import json, sys
import jax
from training import train
from tests.test_population import population_config
seeds, lrs, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
assert len(jax.devices()) == 4, jax.devices()
config = population_config(tuple(seeds), tuple(lrs), steps=20)
if sys.argv[4] == 'dropout':     # each member's own rates, masks drawn on sharded batches
  config.model.dropout = config.model.recurrent_dropout = 0.3
  config.population.hparams += ('model.dropout', 'model.recurrent_dropout')
  config.population.rows = tuple(r + (0.1 * (i + 1), 0.2 * i)
                                 for i, r in enumerate(config.population.rows))
sharded = train.train_and_evaluate(config, out + '/sharded')
plain = train.train_and_evaluate(config, out + '/plain', devices=jax.devices()[:1])
print(json.dumps([sharded, plain]))
'''


@pytest.mark.parametrize('seeds,lrs,layout,dropout', [
    ((0, 1), (0.01, 0.05), 'pop=4 x data=1', ''),       # members over devices
    ((0,), (0.01, 0.05), 'pop=2 x data=2', ''),         # members and each member's batch
    ((0,), (0.01, 0.05), 'pop=2 x data=2', 'dropout'),  # with each member's dropout rates
])
@pytest.mark.slow
def test_sharded_run_equals_unsharded(seeds, lrs, layout, dropout, tmp_path):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu')
  proc = subprocess.run([sys.executable, '-c', SHARDED_SCRIPT, json.dumps(seeds),
                         json.dumps(lrs), str(tmp_path), dropout or '-'],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  sharded, plain = json.loads(proc.stdout.strip().splitlines()[-1])
  assert layout in sharded['devices'] and 'pop=1 x data=1' in plain['devices']
  if dropout:
    assert [m['hparams']['model.dropout'] for m in sharded['members']] == [0.1, 0.2]
  for a, b in zip(sharded['members'], plain['members']):
    np.testing.assert_allclose(a['test_loss'], b['test_loss'], rtol=1e-5)


def test_one_rule_decides_what_members_may_vary():
  """population.member_hparams: the optimiser's injected numbers, and the
  loss weights and dropout rates that are on; the sweep asks the same rule."""
  from orchestration import sweep
  config = population_config()
  assert 'optim.momentum' not in population.member_hparams(config)     # plain SGD
  assert not sweep.is_numeric(config, 'optim.momentum', [0.5, 0.9])
  with config.unlocked():
    config.optim.name = 'nesterov'
  assert 'optim.momentum' in population.member_hparams(config)
  assert sweep.is_numeric(config, 'optim.momentum', [0.5, 0.9])
  assert {'optim.learning_rate', 'reg.omega_alpha'} <= set(population.member_hparams(config))
  assert 'reg.l1_weight' not in population.member_hparams(config)     # off: structure
  # a dropout off in the config: not a population's number; a sweep that gives it a
  # rate switches it on in its units (sweep.unit_config), so there it is one
  assert 'model.dropout' not in population.member_hparams(config)
  assert sweep.is_numeric(config, 'model.dropout', [0.0, 0.5])
  assert not sweep.is_numeric(config, 'model.dropout', [0.0, 0.5], rates_in_program=False)
  with config.unlocked():
    config.model.dropout = 0.25
  assert 'model.dropout' in population.member_hparams(config)
  assert 'model.recurrent_dropout' not in population.member_hparams(config)


def test_an_off_dropout_whose_members_are_all_at_0_is_left_out_of_the_program():
  """A sweep's unit whose trials all drew dropout 0 where the config has it
  off: the population keeps each member's 0 in its label but gives the model
  no rate (nothing is drawn), and the sweep leaves the dropout off in that
  unit; one member above 0 switches it on (at the sweep's largest rate)."""
  from orchestration import sweep
  config = population_config(lrs=(0.01, 0.02))
  with config.unlocked():
    config.population.hparams = ('optim.learning_rate', 'model.dropout')
    config.population.rows = ((0.01, 0.0), (0.02, 0.0))
  pop = population.make_population(config)
  assert 'dropout' not in pop.loss_hp
  assert [m['model.dropout'] for m in pop.labels] == [0.0] * 4
  with config.unlocked():
    config.population.rows = ((0.01, 0.0), (0.02, 0.3))
  with pytest.raises(ValueError, match='off \\(0\\) in the config'):
    population.make_population(config)
  with config.unlocked():
    config.sweep.random = (('model.dropout', 'choice', (0.0, 0.3, 0.5)),)
  hparams = ('optim.learning_rate', 'model.dropout')
  idle = sweep.unit_config(config, sweep.Unit('g00_all', (), hparams, ((0.01, 0.0), (0.02, 0.0)), 0))
  on = sweep.unit_config(config, sweep.Unit('g00_all', (), hparams, ((0.01, 0.0), (0.02, 0.3)), 0))
  assert idle.model.dropout == 0.0 and on.model.dropout == 0.5
  pop = population.make_population(on)
  np.testing.assert_allclose(pop.loss_hp['dropout'], [m['model.dropout'] for m in pop.labels])
  assert sorted(set(pop.loss_hp['dropout'].round(3))) == [0.0, 0.3]


def test_auto_layout_on_one_cpu_device():
  """map at every batch size and thread count (see population.layout)."""
  one = population.make_mesh(4, 1, jax.devices()[:1])
  assert population.layout(one) == 'map'
  assert population.layout(one, 'vmap') == 'vmap'           # as asked


# 'map' is the CPU layout; vmapped members (and a stopped one among them) are
# also in test_a_diverged_member_stops_without_stopping_the_others
@pytest.mark.parametrize('how', ['map', pytest.param('vmap', marks=pytest.mark.slow)])
def test_a_stopped_member_only_counts_its_steps(how):
  """Trainer.train_chunk: a member with active False is not trained (mapped,
  its steps are not computed at all); its state moves only its step, and its
  metrics score nothing. The member beside it trains as it would alone."""
  config = population_config(seeds=(0,), lrs=(0.01, 0.02))
  steps = train.build(config)
  pop = population.make_population(config)
  mesh = population.make_mesh(pop.size, 1, jax.devices()[:1])
  state = train.init_population(steps, pop, mesh)
  state = state.replace(active=jnp.array([True, False]))
  second = lambda state: jax.tree.map(
      lambda x: np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
                           else x)[1], state)
  before = second(state)
  chunk = jax.jit(population.over_members(steps.train_chunk, how), static_argnums=1)
  state, metrics = chunk(state, 7)
  after = second(state)
  assert int(after.step) == int(before.step) + 7
  jax.tree.map(np.testing.assert_array_equal, before.replace(step=after.step), after)
  assert not np.any(np.asarray(metrics['active'])[1])
  assert np.all(np.asarray(metrics['scored'])[1] == 0)
  assert np.all(np.asarray(metrics['scored'])[0] > 0)
  alone = steps.init(jax.random.key(0), {k: v[0] for k, v in pop.loss_hp.items()},
                     {k: v[0] for k, v in pop.opt_hp.items()})
  alone, solo = jax.jit(steps.train_chunk, static_argnums=1)(alone, 7)
  np.testing.assert_allclose(np.asarray(metrics['loss'])[0], solo['loss'], rtol=1e-5)


def test_a_stopped_members_lines_say_so_and_its_verdict_stands(tmp_path):
  config = population_config(seeds=(0,), lrs=(0.01, float('inf')), steps=60)
  with config.unlocked():
    config.optim.guard_max_norm = 0.0      # the second member blows up in its first chunk
    config.train.eval_every = 20           # three validations
  result = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert [m['diverged'] for m in result['members']] == [False, True]
  lines = [json.loads(l) for l in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  second = [r for r in lines if r['split'] == 'train' and r['member'] == 1]
  assert len(second) >= 2 and not second[0].get('stopped')
  assert all(r['stopped'] and 'loss' not in r and not r['active'] for r in second[1:])
  first = [r for r in lines if r['split'] == 'train' and r['member'] == 0]
  assert all(np.isfinite(r['loss']) and not r.get('stopped') for r in first)
  # validation: the stopped member is scored once (the first validation of
  # this process), the other every time
  valid = [r['member'] for r in lines if r['split'] == 'valid']
  assert valid.count(0) == 3 and valid.count(1) == 1


def test_validation_scores_the_members_still_training():
  """train._validate_members: the active members (and any never scored) are
  scored, gathered and padded to a power of two; a stopped member keeps its
  last numbers."""
  import types
  seen = []

  def evaluate(params, split, step):
    seen.append(np.asarray(params['w']).tolist())
    return [dict(loss=float(w), error=0.0) for w in np.asarray(params['w'])]

  run = types.SimpleNamespace(state=types.SimpleNamespace(params={'w': jnp.arange(5.0) * 10}),
                              last_valid=None)
  active = np.array([True, False, True, False, False])
  valid, scored = train._validate_members(run, evaluate, 0, active)
  assert seen[-1] == [0, 10, 20, 30, 40]          # never scored: all of them
  assert scored.all() and [v['loss'] for v in valid] == [0, 10, 20, 30, 40]
  run.state.params = {'w': jnp.arange(5.0) * 10 + 1}   # the active ones trained on
  valid, scored = train._validate_members(run, evaluate, 1, active)
  assert seen[-1] == [1, 21]                        # members 0 and 2 only
  assert scored.tolist() == [True, False, True, False, False]
  assert [v['loss'] for v in valid] == [1, 10, 21, 30, 40]
  valid, _ = train._validate_members(run, evaluate, 2, np.array([False, False, True, False, False]))
  assert seen[-1] == [21]
  run.last_valid = [None, dict(loss=0.0, error=0.0), None, None, dict(loss=0.0, error=0.0)]
  train._validate_members(run, evaluate, 3, np.array([True, False, False, False, False]))
  assert seen[-1] == [1, 21, 31, 1]                 # 3 members padded to 4


def test_every_number_a_population_may_vary_has_a_range():
  """``train.check_config`` holds each population row's values to their fields'
  ranges (``train.RANGES``); a field missing there would go unchecked."""
  varied = set(population.LOSS_HPARAMS) | set(population.MODEL_HPARAMS)
  for name in optim.OPTIMIZERS:
    for auto in (0, 10):
      config = population_config()
      with config.unlocked():
        config.optim.update(name=name, clip_norm=0.0 if auto else 1.0, clip_norm_auto_steps=auto,
                            clip_value=1.0, weight_decay=0.1)
      varied |= {f'optim.{k}' for k in optim.numeric_hyperparams(config.optim)}
  assert varied <= set(train.RANGES), varied - set(train.RANGES)
