"""Muccino (2019)'s long-sequence study: the series generator, LongSeriesTask's
chunks, and the trainer's chunk-length schedule (phases, compiles, resume)."""

import json
import os

import numpy as np
import pytest

from training import train
from datasets import long_series
from experiments import long_sequences
from reporting.figures import cli
from reporting.figures import long_sequences as long_sequences_figure
from tasks.long_series import LongSeriesTask, generate


def plain_loop_series(seed, index, length, noise_std=0.01, w=0.0002):
  """The post's code, one step at a time (with each step's amplitudes kept)."""
  rng = np.random.default_rng([seed, index])
  angle = rng.uniform(-np.pi, np.pi)
  walk = [[abs(np.cos(angle)), abs(np.sin(angle))]]
  directions = rng.uniform(-1, 1, length - 1)
  for i in range(length - 1):
    angle += 0.01 * directions[i]
    walk.append([abs(np.cos(angle)), abs(np.sin(angle))])
  noise = rng.normal(0, noise_std, length)
  return np.array([np.round(-walk[i][0] * np.sin(w * i) + walk[i][1] * np.sin(w * i) + 100
                            + noise[i], decimals=2) for i in range(length)])


def test_series_is_the_posts_formula_and_its_amplitudes_walk_on_the_unit_circle():
  prices, amps = long_series.generate_series(3, 1, long_series.SeriesSpec(length=3000))
  np.testing.assert_allclose(prices, plain_loop_series(3, 1, 3000), atol=1e-9)
  np.testing.assert_allclose(np.sum(amps ** 2, -1), 1.0, atol=1e-12)
  assert np.all(amps >= 0)
  # theta moves by at most 0.01 a step, so each amplitude does too
  assert np.max(np.abs(np.diff(amps, axis=0))) <= 0.01 + 1e-12
  # slow: the walk wanders, but over 3000 steps the angle moves at most 30 rad
  assert 95 < prices.min() and prices.max() < 105


def test_targets_are_discounted_future_returns():
  prices = long_series.generate_series(0, 0, long_series.SeriesSpec(length=300))[0]
  gamma = 0.9
  expected = np.zeros(300)
  for t in range(300):
    expected[t] = sum(gamma ** k * (prices[t + k + 1] - prices[t + k]) for k in range(299 - t))
  np.testing.assert_allclose(long_series.discounted_returns(prices, gamma), expected, atol=1e-10)
  p = LongSeriesTask(generate(num_series=2, length=300), 50, lags=4, discount=gamma,
                     eval_chunk=100)
  splits = long_series.make_splits(0, 2, 3, 3, long_series.SeriesSpec(length=300))
  assert np.array_equal(splits['train'][0], prices)
  np.testing.assert_allclose(np.asarray(p.targets['train'])[:, 0] * p.target_scale, expected,
                             atol=1e-5)


def test_validation_and_test_series_do_not_depend_on_the_number_of_training_series():
  """Runs with ``series=2`` and ``series=6`` are scored on the same series, none of
  which is a training series of either (they once were series 2..7 of one stream)."""
  spec = long_series.SeriesSpec(length=50)
  few, many = (long_series.make_splits(0, n, 2, 2, spec) for n in (2, 6))
  for split in ('valid', 'test'):
    np.testing.assert_array_equal(few[split], many[split])
  np.testing.assert_array_equal(few['train'], many['train'][:2])
  np.testing.assert_allclose(many['train'][1], plain_loop_series(0, 1, 50), atol=1e-9)
  rows = np.concatenate([many['train'], many['valid'], many['test']])
  assert len({r.tobytes() for r in rows}) == len(rows)


def test_chunks_concatenated_are_the_series_and_reset_only_at_its_start():
  length, chunk, lags = 200, 40, 6
  p = LongSeriesTask(generate(num_series=3, length=length), chunk, lags=lags, eval_chunk=100)
  prices = long_series.make_splits(0, 3, 3, 3, long_series.SeriesSpec(length=length))['train']
  feats = np.zeros((3, length, lags))        # x_{t,k} = p_t - p_{t-k}, p_j = p_0 for j < 0
  for b in range(3):
    for t in range(length):
      for k in range(1, lags + 1):
        feats[b, t, k - 1] = prices[b, t] - prices[b, max(t - k, 0)]
  batches = [p.train_batch(None, step) for step in range(2 * p.steps_per_epoch)]
  assert [bool(b['reset']) for b in batches] == [s % 5 == 0 for s in range(10)]
  for epoch in range(2):
    part = batches[5 * epoch:5 * epoch + 5]
    inputs = np.concatenate([b['inputs'] for b in part])          # [L, N, lags]
    np.testing.assert_allclose(inputs * p.input_scale, feats.transpose(1, 0, 2), atol=2e-4)
    targets = np.concatenate([b['targets'] for b in part])
    np.testing.assert_allclose(
        targets * p.target_scale, long_series.discounted_returns(prices, 0.99).T, atol=1e-4)
  assert all(b['inputs'].shape == (chunk, 3, lags) for b in batches)


def schedule_config(num_steps):
  c = long_sequences.get_config('smoke,clip=on')
  with c.unlocked():
    c.train.chunk_schedule = ((0, 10), (20, 50), (40, 100))    # 10, 2, 1 chunks a series
    c.train.num_steps = num_steps
    c.train.log_every = 10
    c.train.eval_every = 20
  return c


def read_metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f]


@pytest.mark.slow
def test_chunk_schedule_phases_compiles_and_resume(tmp_path, monkeypatch):
  traced, phases = [], []
  batch_fn = LongSeriesTask.train_batch
  phase_fn = train.phase_trainer

  def counting_batch(self, key, step):
    traced.append(self.chunk)         # runs once per trace, never per step
    return batch_fn(self, key, step)

  def recording_phase(config, steps, start, chunk):
    phases.append((start, chunk))
    return phase_fn(config, steps, start, chunk)

  monkeypatch.setattr(LongSeriesTask, 'train_batch', counting_batch)
  monkeypatch.setattr(train, 'phase_trainer', recording_phase)
  config = schedule_config(60)
  train.check_config(config)
  assert phases == [(0, 10), (20, 50), (40, 100)]       # the check builds each phase's task
  phases.clear()
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  assert phases == [(0, 10), (20, 50), (40, 100)]
  assert traced == [100, 10, 50, 100]      # init (task.chunk), then one trace per phase
  assert [phase[2] for phase in map(lambda s: train.phase_at(
      train.chunk_phases(config), s), (0, 19, 20, 39, 40, 59))] == [10, 10, 50, 50, 100, 100]
  # the smoke model learns: 32 epochs later the loss is well below the first epoch's
  losses = [r['loss'] for r in read_metrics(tmp_path / 'straight') if r['split'] == 'train']
  assert losses[-1] < 0.8 * losses[0] and np.isfinite(straight['members'][0]['test_loss'])

  # Stopped at 30 (inside the second phase), resumed to 60: the same run.
  phases.clear()
  with config.unlocked():
    config.train.num_steps = 30
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  with config.unlocked():
    config.train.num_steps = 60
  resumed = train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  assert phases == [(0, 10), (20, 50), (20, 50), (40, 100)]
  loss = lambda d: [(r['step'], r['loss']) for r in read_metrics(d) if r['split'] == 'train']
  assert loss(tmp_path / 'resumed') == loss(tmp_path / 'straight')
  assert resumed['members'][0]['test_loss'] == straight['members'][0]['test_loss']


def test_every_epoch_of_a_phased_run_has_its_own_number():
  """Phases of one epoch of 4 updates, then epochs of 2: the halving rule on
  the training loss must see a new epoch at step 4 (the indices alone, 0
  and 0, ran the two together) and at every epoch after."""
  ids = [train.epoch_id(s, 0, 4) for s in range(4)] + [train.epoch_id(s, 4, 2)
                                                       for s in range(4, 10)]
  assert ids == [0, 0, 0, 0, 4, 4, 5, 5, 6, 6]
  assert [train.epoch_id(s, 0, 3) for s in range(7)] == [0, 0, 0, 1, 1, 1, 2]   # no schedule


def test_schedule_mistakes_are_one_line_errors():
  c = schedule_config(60)
  with c.unlocked():
    c.train.chunk_schedule = ((0, 10), (25, 50))
  with pytest.raises(ValueError, match='multiples of train.log_every'):
    train.check_config(c)
  with c.unlocked():
    c.train.chunk_schedule = ((10, 10),)
  with pytest.raises(ValueError, match='increasing starts'):
    train.check_config(c)
  with c.unlocked():                # a later phase's window that does not divide the series:
    c.train.chunk_schedule = ((0, 10), (20, 30))      # refused before the run, not at step 20
  with pytest.raises(ValueError, match=r'the phase from step 20 \(chunk 30\)'):
    train.check_config(c)
  with c.unlocked():
    c.train.chunk_schedule = ()
    c.train.log_every = -10
    c.train.eval_every = 0
  with pytest.raises(ValueError, match='train.log_every=-10 must be >= 1'):
    train.check_config(c)


def test_smoke_config_has_the_posts_schedule():
  c = long_sequences.get_config('smoke,schedule,optimizer=sgd')
  train.check_config(c)
  # 100, 50, 10, 2, 1 chunks of a 100-step series, 2 epochs each
  assert c.train.chunk_schedule == ((0, 1), (200, 2), (300, 10), (320, 50), (324, 100))
  assert c.train.num_steps == 326 and c.population.rows == ((1e30,), (1.0,))


def test_splits_of_different_lengths_are_refused():
  """Evaluation cuts every split into windows of the training series' length:
  a shorter test series would be read past its end (padded silently)."""
  series = generate(num_series=2, length=300)
  series['test'] = series['test'][:, :200]
  with pytest.raises(ValueError, match='every split must have series of one length'):
    LongSeriesTask(series, 50, lags=4, eval_chunk=100)


def test_the_figure_goes_into_the_folder_given_and_a_folder_without_runs_is_an_error(
    tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)       # the old default was relative: keep it out of the repository
  (tmp_path / 'empty').mkdir()
  with pytest.raises(SystemExit, match='no runs .* under .*empty'):
    cli(long_sequences_figure.main, [str(tmp_path / 'empty')])
  run = tmp_path / 'root' / 'adam'
  run.mkdir(parents=True)
  (run / 'config.json').write_text(json.dumps({
      'task': {'kwargs': {'length': 100}, 'chunk': 100}, 'train': {'chunk_schedule': None},
      'optim': {'name': 'adam', 'clip_norm': 1.0}, 'population': {}}))
  (run / 'metrics.jsonl').write_text(''.join(
      json.dumps(dict(split=split, step=step, loss=1.0 / step)) + '\n'
      for step in (1, 2) for split in ('train', 'valid')))
  long_sequences_figure.main([str(tmp_path / 'root')])
  assert (tmp_path / 'root' / 'long_sequences.png').read_bytes()[:4] == b'\x89PNG'
  assert not (tmp_path / 'reporting').exists()
