"""Tests for datasets/pathological.py against independent numpy decodings."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from datasets import pathological

ALL_TASKS = sorted(pathological.TASKS)
# One compiled sampler per task serves every test (and every length).
BATCH_SIZE, MAX_LENGTH = 1000, 60
TRACES = {}


@functools.cache
def _sampler(task):
  """task.sample jitted with a traced length: (key, length) -> numpy batch."""
  TRACES[task] = 0

  @jax.jit
  def sample(key, length):
    TRACES[task] += 1
    return task.sample(key, BATCH_SIZE, length, MAX_LENGTH)

  return lambda key, length: jax.tree.map(np.asarray, sample(key, length))


def _draw(task, length, seed=0):
  return _sampler(task)(jax.random.key(seed), length)


def _decode(inputs):
  """One-hot [P, B, K] -> symbols [P, B], -1 where the row is all zero."""
  assert set(np.unique(inputs)) <= {0.0, 1.0}
  assert set(np.unique(inputs.sum(-1))) <= {0.0, 1.0}
  return np.where(inputs.sum(-1) == 1, inputs.argmax(-1), -1)


def _scored_steps(batch):
  """The scored step of each sequence [B], checking there is exactly one."""
  mask = batch['mask']
  assert set(np.unique(mask)) == {0.0, 1.0}
  np.testing.assert_array_equal(mask.sum(0), 1.0)
  return mask.argmax(0)


@pytest.mark.parametrize('name', ALL_TASKS)
def test_shapes_dtypes_and_one_compile_for_every_length(name):
  task = pathological.make_task(name)
  p = task.padded_length(MAX_LENGTH)
  target_dtype = np.int32 if task.kind == 'classification' else np.float32
  traced = [_draw(task, length) for length in (20, 50)]
  assert TRACES[task] == 1
  assert not np.array_equal(traced[0]['mask'], traced[1]['mask'])
  fixed = jax.eval_shape(  # a Python int length, traced for shapes only
      lambda key: task.sample(key, BATCH_SIZE, 20, MAX_LENGTH),
      jax.random.key(0))
  for batch in traced + [fixed]:
    assert batch['inputs'].shape == (p, BATCH_SIZE, task.input_size)
    assert batch['inputs'].dtype == np.float32
    assert batch['targets'].shape == batch['mask'].shape == (p, BATCH_SIZE)
    assert batch['targets'].dtype == target_dtype
    assert batch['mask'].dtype == np.float32


def test_padded_lengths():
  make = pathological.make_task
  assert make('addition').padded_length(200) == 220
  assert make('multiplication').padded_length(55) == 60
  assert make('temporal_order').padded_length(200) == 200
  assert make('temporal_order_3bit').padded_length(200) == 200
  assert make('random_permutation').padded_length(200) == 200
  assert make('memorization').padded_length(200) == 210
  assert make('memorization', pattern_length=10).padded_length(200) == 220


@pytest.mark.parametrize('name,combine', [
    ('addition', lambda a, b: (a + b) / 2),
    ('multiplication', lambda a, b: a * b),
])
def test_marked_pair(name, combine):
  length = 50  # T' in [50, 55], well inside P = 66.
  batch = _draw(pathological.make_task(name), length)
  values, markers = batch['inputs'][..., 0], batch['inputs'][..., 1]
  ends = _scored_steps(batch) + 1  # T', scored at its last step
  assert ends.min() == 50 and ends.max() == 55
  t = np.arange(values.shape[0])[:, None]
  after = t >= ends
  assert np.all(values[after] == 0) and np.all(markers[after] == 0)
  assert np.all((values[~after] >= 0) & (values[~after] < 1))
  assert abs(values[~after].mean() - 0.5) < 0.01
  assert set(np.unique(markers)) == {0.0, 1.0}
  np.testing.assert_array_equal(markers.sum(0), 2)

  first = markers.argmax(0)
  second = markers.shape[0] - 1 - markers[::-1].argmax(0)
  tenth, half = ends // 10, ends // 2  # 5, and 25..27
  assert np.all((0 <= first) & (first < tenth))
  assert np.all((tenth <= second) & (second < half))
  assert first.min() == 0 and np.any(first == tenth - 1)
  assert np.any(second == tenth) and np.any(second == half - 1)

  cols = np.arange(values.shape[1])
  expected = combine(values[first, cols], values[second, cols])
  np.testing.assert_allclose(batch['targets'][ends - 1, cols], expected,
                             rtol=1e-6)
  np.testing.assert_array_equal(batch['targets'][batch['mask'] == 0], 0)


@pytest.mark.parametrize('name,windows', [
    ('temporal_order', [(5, 10), (20, 25)]),  # [T/10, 2T/10], ... for T=50
    ('temporal_order_3bit', [(5, 10), (15, 20), (30, 35)]),
])
def test_temporal_order(name, windows):
  task = pathological.make_task(name)
  length = 50
  batch = _draw(task, length)
  symbols = _decode(batch['inputs'])
  assert task.output_size == 2 ** len(windows)
  np.testing.assert_array_equal(_scored_steps(batch), length - 1)
  assert np.all(symbols[length:] == -1) and np.all(symbols[:length] >= 0)

  inside = symbols[:length]
  distractors = inside[inside >= 2]
  assert distractors.max() == 5
  counts = np.bincount(distractors)[2:]
  assert np.all(np.abs(counts / counts.sum() - 0.25) < 0.01)

  np.testing.assert_array_equal((inside < 2).sum(0), len(windows))
  expected = np.zeros(symbols.shape[1], np.int64)
  for lo, hi in windows:
    window = inside[lo:hi + 1]
    np.testing.assert_array_equal((window < 2).sum(0), 1)
    position = lo + (window < 2).argmax(0)
    assert position.min() == lo and position.max() == hi
    bit = window[position - lo, np.arange(symbols.shape[1])]  # A=0, B=1
    expected = 2 * expected + bit
  targets = batch['targets'][length - 1]
  np.testing.assert_array_equal(targets, expected)
  assert set(np.unique(targets)) == set(range(task.output_size))


def test_random_permutation():
  """The authors' layout: T input symbols, the first predicted at the last."""
  task = pathological.make_task('random_permutation')
  length = 20
  batch = _draw(task, length)
  symbols = _decode(batch['inputs'])
  assert symbols.shape[0] == MAX_LENGTH
  np.testing.assert_array_equal(_scored_steps(batch), length - 1)
  assert np.all(symbols[length:] == -1)
  first, middle = symbols[0], symbols[1:length]
  assert set(np.unique(first)) == {0, 1}
  assert middle.min() == 2 and middle.max() == 99
  np.testing.assert_array_equal(batch['targets'][length - 1], first)


@pytest.mark.parametrize('pattern_length,num_symbols', [(5, 2), (10, 5)])
def test_memorization(pattern_length, num_symbols):
  """The authors' layout: go at step L + T, the pattern due from it on, a
  blank class everywhere before, every step scored."""
  task = pathological.make_task('memorization', pattern_length=pattern_length,
                                num_symbols=num_symbols)
  assert task.input_size == num_symbols + 2
  assert task.output_size == num_symbols + 1
  length, n = 20, pattern_length
  blank, go = num_symbols, num_symbols + 1
  batch = _draw(task, length)
  symbols = _decode(batch['inputs'])
  pattern = symbols[:n]
  assert set(np.unique(pattern)) == set(range(num_symbols))
  assert np.all(symbols[n:n + length] == blank)
  assert np.all(symbols[n + length] == go)
  assert np.all(symbols[n + length + 1:2 * n + length] == blank)
  assert np.all(symbols[2 * n + length:] == -1)

  end = 2 * n + length
  expected_mask = np.zeros_like(batch['mask'])
  expected_mask[:end] = 1
  np.testing.assert_array_equal(batch['mask'], expected_mask)
  targets = batch['targets']
  np.testing.assert_array_equal(targets[:n + length], blank)
  np.testing.assert_array_equal(targets[n + length:end], pattern)
  np.testing.assert_array_equal(targets[end:], 0)


def test_concrete_length_out_of_range():
  task = pathological.make_task('temporal_order')
  with pytest.raises(ValueError, match='outside'):
    task.sample(jax.random.key(0), 2, 31, 30)
  with pytest.raises(ValueError, match='outside'):
    task.sample(jax.random.key(0), 2, 9, 30)


def test_sequence_errors_classification():
  targets = np.array([[0, 0, 0], [2, 1, 0]], np.int32)  # [P=2, B=3]
  mask = np.array([[0, 0, 0], [1, 1, 1]], np.float32)
  logits = 10.0 * np.eye(3, dtype=np.float32)[targets]  # perfect
  batch = {'targets': targets, 'mask': mask}
  errors = pathological.sequence_errors(logits, batch, 'classification')
  np.testing.assert_array_equal(errors, [False, False, False])
  logits[0, 0] = [0, 9, 0]  # wrong, but not scored
  logits[1, 1] = [0, 0, 9]  # wrong and scored
  errors = pathological.sequence_errors(logits, batch, 'classification')
  np.testing.assert_array_equal(errors, [False, True, False])


@pytest.mark.parametrize('trailing_axis', [False, True])
def test_sequence_errors_regression(trailing_axis):
  targets = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], np.float32)
  mask = np.array([[0, 0, 0], [1, 1, 1]], np.float32)
  # Sequence 0 perfect (unscored step far off), 1 at squared error 0.039,
  # 2 at 0.041.
  outputs = targets + np.array([[5, 0, 0], [0, 0.039**0.5, -0.041**0.5]],
                               np.float32)
  if trailing_axis:
    outputs = outputs[..., None]
  errors = pathological.sequence_errors(
      jnp.asarray(outputs), {'targets': targets, 'mask': mask}, 'regression')
  np.testing.assert_array_equal(errors, [False, False, True])


def test_the_absolute_reading_of_the_regression_criterion_is_five_times_stricter():
  """|error| 0.039 and 0.041: right and wrong under the absolute reading;
  both right under the squared one (0.0015, 0.0017 <= 0.04). |error| 0.19:
  right only under the squared reading; 0.21 wrong under both."""
  targets = np.full((1, 4), 0.5, np.float32)
  mask = np.ones((1, 4), np.float32)
  outputs = jnp.asarray(targets + np.array([[0.039, -0.041, 0.19, -0.21]], np.float32))
  batch = {'targets': targets, 'mask': mask}
  np.testing.assert_array_equal(
      pathological.sequence_errors(outputs, batch, 'regression', 'absolute'),
      [False, True, True, True])
  np.testing.assert_array_equal(
      pathological.sequence_errors(outputs, batch, 'regression', 'squared'),
      [False, False, False, True])
  with pytest.raises(ValueError, match="regression_error='abs' is not one of squared, absolute"):
    pathological.sequence_errors(outputs, batch, 'regression', 'abs')
  import tasks                                   # the config field reaches the task
  from experiments import pathological as experiment
  config = experiment.get_config('problem=addition,smoke')
  assert tasks.make(config).regression_error == 'squared'     # the authors' code, the default
  config.task.regression_error = 'absolute'
  assert tasks.make(config).regression_error == 'absolute'
  config.task.regression_error = 'abs'
  with pytest.raises(ValueError, match="task.regression_error='abs'"):
    tasks.make(config)


def test_make_task_errors():
  with pytest.raises(ValueError) as info:
    pathological.make_task('adition')
  message = str(info.value)
  assert '\n' not in message
  for name in ALL_TASKS:
    assert name in message
  with pytest.raises(ValueError, match='pattern_length'):
    pathological.make_task('memorization', pattern_lenght=10)


@pytest.mark.parametrize('wrong,paper,authors', [
    (0, True, True),          # no wrong sequence: solved under both
    (1, True, False),         # 1 of 10,000 = 0.01%: the authors' code goes on
    (99, True, False),        # 0.99%: fewer than 1%
    (100, False, False),      # exactly 1%: not fewer than 1%
    (2500, False, False),
])
def test_success_criteria_by_hand(wrong, paper, authors):
  """10,000 sequences of which `wrong` are wrong, against hand-worked
  verdicts; training/train.py's rule (error < train.solved_error) gives the same."""
  error = wrong / 10_000
  assert pathological.solved(error, 'paper') == paper
  assert pathological.solved(error, 'authors') == authors
  for name, verdict in (('paper', paper), ('authors', authors)):
    assert (error < pathological.SUCCESS_CRITERIA[name]) == verdict
  with pytest.raises(ValueError, match='not one of'):
    pathological.solved(error, 'lenient')


@pytest.mark.parametrize('length,max_length', [(600, 600), (40, 50)])
def test_bai2018_adding_problem_against_numpy(length, max_length):
  """Bai, Kolter & Koltun (2018): length T for every sequence, two distinct
  marked positions anywhere in it, the target their sum, scored at T - 1."""
  task = pathological.make_task('addition', variant='bai2018')
  assert task.padded_length(max_length) == max_length
  b = 256
  batch = jax.device_get(task.sample(jax.random.key(3), b, length, max_length))
  x, y, mask = (np.asarray(batch[k], np.float64) for k in ('inputs', 'targets', 'mask'))
  assert x.shape == (max_length, b, 2)
  values, markers = x[..., 0], x[..., 1]
  assert np.all((values[:length] >= 0) & (values[:length] < 1))
  assert np.all(x[length:] == 0)
  for s in range(b):
    marked = np.flatnonzero(markers[:, s])
    assert len(marked) == 2 and marked.max() < length
    assert set(np.unique(markers[:, s])) == {0.0, 1.0}
    np.testing.assert_allclose(y[length - 1, s], values[marked, s].sum(), rtol=1e-6)
  expected_mask = np.zeros((max_length, b))
  expected_mask[length - 1] = 1
  np.testing.assert_array_equal(mask, expected_mask)
  assert np.all(y[mask == 0] == 0)


def test_bai2018_positions_cover_the_whole_sequence_and_predicting_one_has_mse_one_sixth():
  task = pathological.make_task('addition', variant='bai2018')
  batch = jax.device_get(task.sample(jax.random.key(4), 20_000, 20, 20))
  markers = np.asarray(batch['inputs'][..., 1])
  first = np.argmax(markers, axis=0)                  # the earlier of the two
  last = 19 - np.argmax(markers[::-1], axis=0)
  assert np.all(first < last)
  assert (first >= 10).any() and (last < 10).any()   # not one per half
  # every position is marked about equally often (2 of 20)
  np.testing.assert_allclose(markers.mean(axis=1), 0.1, atol=0.01)
  # The study quotes about 0.1767 for predicting 1; the closed form is Var = 1/6.
  mse_of_one = np.mean((np.asarray(batch['targets'][-1], np.float64) - 1.0) ** 2)
  assert mse_of_one == pytest.approx(1 / 6, abs=0.005)


def test_addition_variants_are_checked():
  with pytest.raises(ValueError, match='variant'):
    pathological.make_task('addition', variant='bai')
  with pytest.raises(ValueError, match='Multiplication'):
    pathological.make_task('multiplication', variant='bai2018')
  assert pathological.make_task('addition').variant == 'pascanu2013'
