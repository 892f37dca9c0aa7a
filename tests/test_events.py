"""training/events.py: TensorBoard event files written by hand, read back."""

import glob
import os

import pytest

from training import events


def test_crc32c_check_value():
  assert events.crc32c(b'123456789') == 0xE3069283      # the CRC-32C catalogue's check


def test_scalars_round_trip(tmp_path):
  w = events.EventWriter(str(tmp_path))
  w.scalars(10, {'train/loss': 1.5, 'valid/error': 0.25})
  w.scalars(300, {'train/loss': 1.25})
  assert events.read_scalars(w.path) == [(10, 'train/loss', 1.5), (10, 'valid/error', 0.25),
                                         (300, 'train/loss', 1.25)]


def test_tensorboard_reads_them(tmp_path):
  accumulator = pytest.importorskip('tensorboard.backend.event_processing.event_accumulator')
  w = events.EventWriter(str(tmp_path))
  for step in (10, 20):
    w.scalars(step, {'train/loss': step / 10})
  acc = accumulator.EventAccumulator(str(tmp_path))
  acc.Reload()
  assert [(e.step, e.value) for e in acc.Scalars('train/loss')] == [(10, 1.0), (20, 2.0)]


@pytest.mark.slow
def test_a_run_writes_one_event_file_per_member(tmp_path):
  from training import train
  from experiments import temporal_order_fig7
  config = temporal_order_fig7.get_config('seeds=2,smoke')
  config.model.hidden_size = 8
  config.train.num_steps = 20
  config.train.eval_sequences = config.train.test_sequences = 100
  train.train_and_evaluate(config, str(tmp_path))
  for member in (0, 1):
    (path,) = glob.glob(str(tmp_path / 'tensorboard' / f'member{member}' / 'events.*'))
    got = {(step, tag) for step, tag, _ in events.read_scalars(path)}
    assert {(20, 'train/loss'), (20, 'valid/loss'), (20, 'test/loss')} <= got
