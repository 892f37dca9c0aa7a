"""The pathological configs carry the paper's settings and a named success criterion."""

import jax
import numpy as np
import pytest

import tasks
from training import train
from experiments import pathological, temporal_order, temporal_order_fig7


def test_fixed_length_is_fig7_and_random_length_is_the_supplementary():
  fig7 = temporal_order.get_config('length=100')
  assert (fig7.optim.learning_rate, fig7.optim.clip_norm, fig7.reg.omega_alpha) == (0.01, 1.0, 4.0)
  assert fig7.model.init_scheme == 'smart_tanh' and fig7.task.batch_size == 20
  one_model = temporal_order.get_config('length=50,max_length=200')
  assert (one_model.optim.learning_rate, one_model.optim.clip_norm,
          one_model.reg.omega_alpha) == (0.001, 6.0, 2.0)
  assert one_model.model.init_scheme == 'basic_tanh'
  assert temporal_order.get_config('init=sigmoid').model.activation == 'sigmoid'


@pytest.mark.parametrize('make', [
    lambda s: temporal_order.get_config(f'success={s}'),
    lambda s: temporal_order_fig7.get_config(f'success={s}'),
    lambda s: pathological.get_config(f'problem=addition,success={s}'),
])
def test_every_config_offers_both_criteria(make):
  assert (make('paper').train.success, make('paper').train.solved_error) == ('paper', 0.01)
  assert (make('authors').train.success, make('authors').train.solved_error) == ('authors', 1e-6)
  with pytest.raises(ValueError, match='not one of paper, authors'):
    make('lenient')


def test_lengths_are_drawn_as_the_authors_code_draws_them():
  """One length per minibatch, min + randint(max - min): 50..199, never 200;
  validation spreads its batches over the same range."""
  c = temporal_order.get_config('length=50,max_length=200')
  p = tasks.make(c)
  last_step = jax.jit(jax.vmap(lambda k: p.train_batch(k, 0)['mask'][:, 0].argmax()))
  lengths = set(np.asarray(last_step(jax.random.split(jax.random.key(0), 1000))) + 1)
  assert min(lengths) == 50 and max(lengths) == 199
  assert p.eval_lengths(10)[0] == 50 and p.eval_lengths(10)[-1] == 199
  fixed = tasks.make(temporal_order.get_config('length=60'))
  assert fixed.eval_lengths(3) == [60, 60, 60]


@pytest.mark.slow
def test_result_json_names_the_criterion(tmp_path):
  config = temporal_order.get_config('success=authors,smoke')
  with config.unlocked():
    config.train.num_steps = config.train.log_every = config.train.eval_every = 20
  result = train.train_and_evaluate(config, str(tmp_path))
  assert (result['success'], result['solved_error']) == ('authors', 1e-6)
