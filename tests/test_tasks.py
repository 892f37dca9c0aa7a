"""The task layer: every registered family builds from arrays and has what
``tasks.Task`` names; names and epoch-counting settings are checked with
one-line errors; the shared windowed evaluator adds its windows' sums."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from training import train
from experiments import long_sequences, music, ptb_bengio, ptb_char, temporal_order

PROTOCOL = sorted(set(tasks.Task.__annotations__) |
                  {n for n in vars(tasks.Task) if not n.startswith('_')})


def toy_data(name: str, rng: np.random.Generator):
  """Small arrays in the form of each family's ``load``."""
  if name == 'music':
    return {s: [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in (9, 14)]
            for s in ('train', 'valid', 'test')}
  if name.startswith('ptb_'):
    return {s: rng.integers(0, 12, n).astype(np.int32)
            for s, n in (('train', 500), ('valid', 60), ('test', 40))}, 12
  return None


CONFIGS = {
    'temporal_order': lambda: temporal_order.get_config('smoke'),
    'music': lambda: music.get_config('smoke'),
    'ptb_char': lambda: ptb_char.get_config('smoke'),
    'ptb_word': lambda: ptb_bengio.get_config('level=word,smoke'),
    'long_series': lambda: long_sequences.get_config('smoke'),
}


def test_every_registered_family_has_a_config_here():
  """A task family added to ``tasks.REGISTRY`` (its build function) is
  exercised below only with a config in ``CONFIGS`` (and its arrays in
  ``toy_data``): it fails here until it has one."""
  covered = {tasks.REGISTRY[name] for name in CONFIGS}
  assert [n for n, build in sorted(tasks.REGISTRY.items()) if build not in covered] == []


def test_a_corpus_nothing_downloads_is_placed_not_downloaded(tmp_path):
  """The data errors offer ``datasets.download`` only for what it fetches; a
  user's own corpus is told where its files go (the download command would
  fail on its name)."""
  from datasets import _files
  why = _files.missing([('mine/train.txt', 'mine'), ('music/JSB Chorales.pickle', 'music')],
                       tmp_path)
  assert f"nothing downloads mine: place your own files in {tmp_path / 'mine'} (the data folder is" in why
  assert f'get them with: python -m datasets.download music --data_dir {tmp_path}' in why
  both = _files.missing([('ptb/ptb.train.txt', 'ptb'), ('music/JSB Chorales.pickle', 'music')],
                        tmp_path)
  assert both.endswith(f'get them with: python -m datasets.download all --data_dir {tmp_path}')
  with pytest.raises(_files.DataFileMissing, match=r"^missing data file 'mine/valid.txt'.*"
                                                   r'nothing downloads mine: place your own'):
    _files.require('mine/valid.txt', tmp_path, 'mine')
  assert 'python -m datasets.download' not in _files.how_to_fix('mine', tmp_path)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_every_family_builds_from_arrays_and_has_the_interface(name):
  config = CONFIGS[name]()
  assert config.task.name == name
  task = tasks.make(config, toy_data(name, np.random.default_rng(0)))
  missing = [m for m in PROTOCOL if not hasattr(task, m)]
  assert not missing, missing
  assert task.kind in tasks.KINDS
  assert (task.steps_per_epoch is None) == (name == 'temporal_order')
  assert task.carries == (name != 'temporal_order')
  batch = jax.eval_shape(task.train_batch, jax.random.key(0), 0)
  assert batch['mask'].shape == batch['inputs'].shape[:2]
  assert ('reset' in batch) == task.carries
  # rebuilt from its own data (a chunk-schedule phase), nothing is read again
  again = tasks.make(config, task.data).data
  assert all(a is b for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(task.data),
                                     strict=True))


@pytest.mark.realdata
@pytest.mark.parametrize('name', ['music', 'ptb_char', 'ptb_word'])
def test_the_data_files_a_task_names_are_what_it_reads(name, tmp_path, monkeypatch, real_data):
  """``tasks.DATA_FILES`` (what ``missing_data`` checks before a plan starts)
  against the loaders: a folder holding just those files builds the task,
  and without any one of them ``missing_data`` names it (and the loader
  fails on a missing file)."""
  config = CONFIGS[name]()
  files = tasks.DATA_FILES[name](config)
  real = real_data(*[path for path, _ in files])
  for path, _ in files:
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).symlink_to(real / path)
  monkeypatch.setenv('RNNOPT_DATA', str(tmp_path))
  assert tasks.missing_data(config) is None
  tasks.make(config)
  for path, corpus in files:
    (tmp_path / path).rename(tmp_path / 'aside')
    why = tasks.missing_data(config)
    assert f"'{path}'" in why and f'python -m datasets.download {corpus} --data_dir' in why
    with pytest.raises(FileNotFoundError):
      tasks.make(config)
    (tmp_path / 'aside').rename(tmp_path / path)


def test_tasks_without_files_miss_none(tmp_path, monkeypatch):
  monkeypatch.setenv('RNNOPT_DATA', str(tmp_path))      # an empty data folder
  for name in ('temporal_order', 'long_series'):
    assert tasks.missing_data(CONFIGS[name]()) is None
  why = tasks.missing_data(CONFIGS['music']())
  assert why.startswith("missing data file(s) 'music/JSB Chorales.pickle' in ")


def test_an_unknown_task_names_the_known_ones():
  config = temporal_order.get_config('smoke')
  with config.unlocked():
    config.task.name = 'temporal_ordre'
  with pytest.raises(ValueError, match="task.name='temporal_ordre' is not one of .*music.*"
                                       "ptb_char.*temporal_order"):
    tasks.make(config)


def test_an_output_that_does_not_fit_the_task_is_refused():
  config = temporal_order.get_config('smoke')
  with config.unlocked():
    config.model.output = 'nade'
  with pytest.raises(ValueError, match="task.name=temporal_order needs model.output='linear'"):
    tasks.make(config)


@pytest.mark.parametrize('field,value,named', [
    ('reg.omega_schedule_unit', 'epoch', "reg.omega_schedule_unit='epoch'"),
    ('train.eval_every', 0, 'train.eval_every=0'),
    ('train.num_steps', 0, 'train.num_steps=0'),
])
def test_settings_that_count_epochs_are_refused_on_fresh_data(field, value, named):
  config = temporal_order.get_config('smoke')
  section, key = field.split('.')
  with config.unlocked():
    config[section][key] = value
  with pytest.raises(ValueError, match=f"{named}.* counts epochs, and task 'temporal_order' "
                                       r'draws fresh data every step \(no epochs\)'):
    train.build(config)


def test_windowed_evaluator_adds_the_windows_sums_with_the_state_carried():
  """Window n of a split scores loss n + carry, errors 1 and count 2 + n; the
  carry counts the windows before (it starts at the initial carry)."""
  def score_window(params, split, n, carry):
    loss = params * (n + carry[0, 0])
    return carry + 1.0, (loss, 1.0, 2.0 + n)

  initial = lambda params, batch: jnp.zeros((batch, 1))
  evaluate = tasks.windowed_evaluator(score_window, {'valid': (4, 3)}, initial,
                                      lambda loss: dict(twice=2 * loss))
  got = evaluate(jnp.asarray([1.0, 0.5]), 'valid')
  count = sum(2 + n for n in range(4))
  loss = sum(2 * n for n in range(4)) / count      # n + carry, carry = n
  assert [g['count'] for g in got] == [count, count]
  np.testing.assert_allclose([g['loss'] for g in got], [loss, 0.5 * loss], rtol=1e-6)
  np.testing.assert_allclose([g['error'] for g in got], 4 / count, rtol=1e-6)
  np.testing.assert_allclose(got[1]['twice'], loss, rtol=1e-6)
