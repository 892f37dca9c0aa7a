"""Gradient accumulation (``optim.accumulate_steps``, optax.MultiSteps).

k micro-batches of B sequences, one update: the same parameters as one
update on the batch of k B, checked at the optimiser (against the chain
without accumulation fed the mean gradient), through the trainer (against
one step on the large batch, and for SGD against p - lr * the gradient of
the large batch's loss written out directly), for a vmapped population, and
across a checkpoint taken between two updates. Tolerances: float32, and the
accumulated mean is a running (Welford) mean, so rtol 1e-5 / atol 1e-6 where
the paths differ in summation order, exact where they do not.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import optim
import tasks
from experiments import common, temporal_order
from reporting import tables
from training import records, train
from training import workdir as workdir_lib

RTOL, ATOL = 1e-5, 1e-6


def chain_config(k: int) -> ml_collections.ConfigDict:
  """Adam, clipping and warm-up cosine: every count inside the chain matters."""
  cfg = optim.default_config()
  cfg.name = 'adam'
  cfg.learning_rate = 0.1
  cfg.clip_norm = 0.5
  cfg.schedule = 'warmup_cosine'
  cfg.warmup_steps = 2
  cfg.accumulate_steps = k
  return cfg


def params_like(rng):
  return {'a': jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
          'b': jnp.asarray(rng.normal(size=(4,)), jnp.float32)}


def test_k_micro_updates_equal_one_update_on_the_mean_gradient():
  k, updates = 3, 4
  rng = np.random.default_rng(0)
  params = params_like(rng)
  grads = [params_like(rng) for _ in range(k * updates)]
  acc, plain = optim.make_optimizer(chain_config(k), 10), optim.make_optimizer(chain_config(1), 10)
  p_acc, s_acc = params, acc.init(params)
  p_plain, s_plain = params, plain.init(params)
  for u in range(updates):
    for j in range(k):
      step, s_acc = acc.update(grads[u * k + j], s_acc, p_acc)
      if j < k - 1:   # nothing moves before the k-th micro-batch
        assert all(float(jnp.max(jnp.abs(x))) == 0.0 for x in jax.tree.leaves(step))
      p_acc = optax.apply_updates(p_acc, step)
    mean = jax.tree.map(lambda *g: sum(g) / k, *grads[u * k:(u + 1) * k])
    step, s_plain = plain.update(mean, s_plain, p_plain)
    p_plain = optax.apply_updates(p_plain, step)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL),
                 p_acc, p_plain)
  # the schedule counted updates, not micro-batches
  assert float(optim.inspect(s_acc)['learning_rate']) == pytest.approx(
      float(optim.inspect(s_plain)['learning_rate']))


def test_one_step_is_no_accumulation():
  params = params_like(np.random.default_rng(1))
  one = optim.make_optimizer(chain_config(1), 10).init(params)
  plain = chain_config(1)
  del plain['accumulate_steps']      # a config from before the field
  assert (jax.tree.structure(one)
          == jax.tree.structure(optim.make_optimizer(plain, 10).init(params)))
  assert not any(isinstance(s, optax.MultiStepsState)
                 for s in jax.tree.leaves(one, is_leaf=lambda s: isinstance(s, tuple)))


def test_population_members_keep_their_own_numbers_through_the_accumulator():
  k = 2
  rng = np.random.default_rng(2)
  params = params_like(rng)
  grads = [params_like(rng) for _ in range(2 * k)]
  opt = optim.make_optimizer(chain_config(k), 10)
  lrs = jnp.asarray([0.1, 0.01])
  init = lambda p, lr: optim.set_hyperparams(opt.init(p), learning_rate=lr)
  stacked = jax.tree.map(lambda x: jnp.stack([x, x]), params)
  states = jax.vmap(init)(stacked, lrs)
  for g in grads:
    g2 = jax.tree.map(lambda x: jnp.stack([x, x]), g)
    steps, states = jax.vmap(opt.update)(g2, states, stacked)
    stacked = optax.apply_updates(stacked, steps)
  for i, lr in enumerate(lrs):
    p, s = params, init(params, lr)
    for g in grads:
      step, s = opt.update(g, s, p)
      p = optax.apply_updates(p, step)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x[i], y, rtol=RTOL, atol=ATOL),
                 stacked, p)


def trainer_config(k: int, batch: int, name: str = 'adam') -> ml_collections.ConfigDict:
  c = common.base_config()
  c.task.name = 'addition'            # one scored step per sequence: equal weights
  c.task.batch_size = batch
  c.task.min_length, c.task.max_length = 10, 14
  c.model.cell = 'gru'
  c.model.init_scheme = 'default'
  c.model.hidden_size = 6
  c.model.layer_norm = True
  c.model.learned_initial_state = True
  c.optim = chain_config(k)
  c.optim.name = name
  if name == 'sgd':
    c.optim.clip_norm = 0.0
    c.optim.schedule = 'constant'
  c.train.num_steps = 12
  return c


def big_batch(key, size: int) -> dict:
  problem = tasks.make(trainer_config(1, size)).problem
  return problem.sample(key, size, 12, 14)


# Both in CI (the slow set); the everyday set keeps the accumulator's own equivalences
# (test_k_micro_updates_equal_one_update_on_the_mean_gradient and the population's).
@pytest.mark.slow
@pytest.mark.parametrize('name', ['sgd', 'adam'])
def test_k_micro_batches_through_the_trainer_equal_one_batch_k_times_the_size(name):
  k, b, updates = 3, 4, 2
  acc = train.build(trainer_config(k, b, name))
  plain = train.build(trainer_config(1, k * b, name))
  key = jax.random.key(0)
  s_acc = acc.init(key, {}, {})
  s_plain = plain.init(key, {}, {})
  jax.tree.map(np.testing.assert_array_equal, s_acc.params, s_plain.params)
  step_acc, step_plain = jax.jit(acc.train_step), jax.jit(plain.train_step)
  drop = jax.random.key(1)           # no dropout: unused
  for u in range(updates):
    batch = big_batch(jax.random.key(10 + u), k * b)
    before = s_plain.params
    for j in range(k):
      micro = {n: v[:, j * b:(j + 1) * b] for n, v in batch.items()}
      s_acc, _ = step_acc(s_acc, micro, drop)
    s_plain, _ = step_plain(s_plain, batch, drop)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL),
                 s_acc.params, s_plain.params)
    if name == 'sgd':    # against the update written out: p - lr * grad of the batch's mean loss
      def loss(p):
        out, _ = plain.model.apply({'params': p}, batch['inputs'])
        per_step = (out[..., 0] - batch['targets']) ** 2
        return jnp.sum(per_step * batch['mask']) / jnp.sum(batch['mask'])
      g = jax.grad(loss)(before)
      expected = jax.tree.map(lambda p, g: p - 0.1 * g, before, g)
      jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL),
                   s_acc.params, expected)


@pytest.mark.parametrize('bad', [0, -2, True])
def test_check_config_refuses_a_bad_accumulation_in_one_line(bad):
  c = trainer_config(1, 4)
  c.optim.accumulate_steps = bad
  with pytest.raises(ValueError, match=r'optim.accumulate_steps=.* integer >= 1') as e:
    train.check_config(c)
  assert '\n' not in str(e.value)


def test_runs_recorded_before_the_field_keep_their_trial_and_may_resume():
  new = trainer_config(1, 4).to_dict()
  old = trainer_config(1, 4).to_dict()
  del old['optim']['accumulate_steps']
  assert tables.trial_key(old, {}) == tables.trial_key(new, {})
  assert workdir_lib.config_changes(old, new) == []
  new['optim']['accumulate_steps'] = 2
  assert tables.trial_key(old, {}) != tables.trial_key(new, {})
  assert workdir_lib.config_changes(old, new) == ['optim.accumulate_steps']
  assert records.is_unset('optim.accumulate_steps', 1)


@pytest.mark.slow
def test_a_population_resumed_between_two_updates_gives_the_same_run(tmp_path):
  """Two learning rates as one vmapped program, 2 micro-batches per update,
  stopped at step 15 (after a micro-batch whose update is still due)."""
  config = temporal_order.get_config('smoke')
  with config.unlocked():
    config.optim.accumulate_steps = 2
    config.optim.name = 'adam'
    config.population.hparams = ('optim.learning_rate',)
    config.population.rows = ((0.01,), (0.003,))
    config.train.num_steps = 30
    config.train.log_every = 5
    config.train.eval_every = 30
    config.train.stop_when_solved = False
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  with config.unlocked():
    config.train.num_steps = 15
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  with config.unlocked():
    config.train.num_steps = 30
  resumed = train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  losses = [m['test_loss'] for m in straight['members']]
  assert losses[0] != losses[1]
  assert [m['test_loss'] for m in resumed['members']] == pytest.approx(losses, rel=1e-6)
