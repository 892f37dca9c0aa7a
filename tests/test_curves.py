"""figures/curves.py: reading metrics.jsonl, labelling members, drawing."""

import json

import numpy as np

from experiments import common
from figures import curves


def write_run(tmp_path, lines, config):
  (tmp_path / 'config.json').write_text(json.dumps(config.to_dict()))
  with open(tmp_path / 'metrics.jsonl', 'w') as f:
    for line in lines:
      f.write(json.dumps(line) + '\n')
  return str(tmp_path)


def three_methods():
  c = common.base_config()
  common.apply_all_methods(c, clip=8.0, alpha=0.5)
  return c


def test_resumed_steps_keep_the_last_line_and_splits_are_apart(tmp_path):
  lines = [
      dict(step=10, split='train', member=0, loss=3.0, error=0.5, grad_norm=1.0),
      dict(step=20, split='train', member=0, loss=2.0, error=0.4, grad_norm=2.0),
      dict(step=20, split='train', member=0, loss=1.5, error=0.3, grad_norm=2.5),  # resumed
      dict(step=20, split='valid', member=0, loss=2.2, error=0.45, count=100),
      dict(step=10, split='train', member=1, loss=9.0, error=0.9, grad_norm=7.0, active=True),
  ]
  m = curves.read_metrics(write_run(tmp_path, lines, three_methods()))
  np.testing.assert_array_equal(m[0]['train']['step'], [10, 20])
  np.testing.assert_array_equal(m[0]['train']['loss'], [3.0, 1.5])
  np.testing.assert_array_equal(m[0]['valid']['error'], [0.45])
  np.testing.assert_array_equal(m[1]['train']['grad_norm'], [7.0])
  assert 'active' not in m[1]['train']      # booleans are not curves


def test_three_methods_are_named_with_their_thresholds():
  labels, clips = curves.member_labels(three_methods().to_dict())
  assert labels == ['SGD', 'SGD-C', 'SGD-CR']
  assert clips == [np.inf, 8.0, 8.0]


def test_seeds_and_learning_rates_name_members():
  c = common.base_config()
  c.population.seeds = (0, 1)
  c.population.hparams = ('optim.learning_rate',)
  c.population.rows = ((0.01,), (0.1,))
  labels, _ = curves.member_labels(c.to_dict())
  assert labels == ['optim.learning_rate=0.01, seed 0', 'optim.learning_rate=0.01, seed 1',
                    'optim.learning_rate=0.1, seed 0', 'optim.learning_rate=0.1, seed 1']


def test_plot_writes_a_png(tmp_path):
  lines = [dict(step=s, split=sp, member=k, loss=1.0 / s, error=0.5, grad_norm=s,
                grad_norm_max=2.0 * s)
           for s in (10, 20, 30) for sp in ('train', 'valid') for k in range(3)]
  lines.append(dict(step=30, split='test', member=0, loss=0.02, error=0.1, count=10))
  path = curves.plot_run(write_run(tmp_path, lines, three_methods()))
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
