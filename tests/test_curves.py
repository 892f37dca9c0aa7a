"""reporting/figures/curves.py: reading metrics.jsonl, labelling members, drawing.

The drawn figures are checked on their matplotlib Axes: the data of each
plotted line (found by its gid), the axis labels, the legend and the title.
"""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from experiments import common
from experiments import music
from experiments import ptb_bengio
from experiments import ptb_char
from reporting.figures import curves


def write_run(tmp_path, lines, config, result=None, tail=''):
  """A run folder: config.json, metrics.jsonl (``tail`` appended raw, e.g. a
  torn line) and, when given, result.json."""
  config = config.to_dict() if hasattr(config, 'to_dict') else config
  (tmp_path / 'config.json').write_text(json.dumps(config))
  with open(tmp_path / 'metrics.jsonl', 'w') as f:
    for line in lines:
      f.write(json.dumps(line) + '\n')
    f.write(tail)
  if result is not None:
    (tmp_path / 'result.json').write_text(json.dumps(result))
  return str(tmp_path)


def epoch_lines(members, epochs=3, per_epoch=100, log_every=50, seed=0):
  """Metric lines of a corpus run: training every ``log_every`` updates,
  validation at each epoch's end, test after the last."""
  rng = np.random.default_rng(seed)
  lines = []
  for step in range(log_every, epochs * per_epoch + 1, log_every):
    for k in range(members):
      lines.append(dict(step=step, split='train', member=k, loss=float(rng.uniform(1, 3)),
                        error=float(rng.uniform(0.2, 0.8)), grad_norm=float(rng.uniform(1, 9)),
                        grad_norm_max=10.0))
      if step % per_epoch == 0:
        lines.append(dict(step=step, split='valid', member=k, loss=float(rng.uniform(1, 3)),
                          error=0.5, count=1000))
  for k in range(members):
    lines.append(dict(step=epochs * per_epoch, split='test', member=k, loss=1.5 + k,
                      error=0.4, count=1000))
  return lines


def drawn(workdir):
  fig = curves.draw(workdir)
  plt.close(fig)
  return fig


def line(ax, gid):
  [found] = [l for l in ax.lines if l.get_gid() == gid]
  return found.get_data()


def three_methods():
  c = common.base_config()
  methods = common.apply_all_methods(c, clip=8.0, alpha=0.5)
  common.declare_paper(c, 'pascanu_pathological', 'temporal_order T=50', methods)
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
  assert labels == ['SGD', 'SGD+C', 'SGD+CR']      # as the tables name them
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


def test_a_torn_last_line_and_blank_lines_are_skipped(tmp_path):
  lines = [dict(step=10, split='train', member=0, loss=3.0, error=0.5),
           dict(step=20, split='train', member=0, loss=2.0, error=0.4)]
  workdir = write_run(tmp_path, lines, three_methods(),
                      tail='\n{"step": 30, "split": "train", "member": 0, "lo')
  m = curves.read_metrics(workdir)
  np.testing.assert_array_equal(m[0]['train']['step'], [10, 20])
  np.testing.assert_array_equal(m[0]['train']['loss'], [3.0, 2.0])


def test_ptb_characters_are_drawn_in_bits_per_character_against_epochs(tmp_path):
  config = ptb_char.get_config('method=all')
  config.task.epochs = 3
  lines = epoch_lines(3)
  workdir = write_run(tmp_path, lines, config)
  fig = drawn(workdir)
  loss_ax, error_ax, grad_ax = fig.axes
  assert loss_ax.get_ylabel() == 'bits per character'
  assert loss_ax.get_xlabel() == 'epoch'
  for member in range(3):
    for split in ('train', 'valid', 'test'):
      mine = [l for l in lines if l['member'] == member and l['split'] == split]
      x, y = line(loss_ax, f'loss:{split}:{member}')
      np.testing.assert_allclose(y, [l['loss'] / math.log(2) for l in mine], rtol=1e-12)
      np.testing.assert_allclose(x, [l['step'] / 100 for l in mine], rtol=1e-12)
      # The error rate is drawn as it is.
      np.testing.assert_allclose(line(error_ax, f'error:{split}:{member}')[1],
                                 [l['error'] for l in mine])
  assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ['SGD', 'SGD+C', 'SGD+CR']
  title = fig._suptitle.get_text()
  assert title == ('Pascanu et al. Table 2 (Penn Treebank characters), next character: '
                   'SGD / SGD+C / SGD+CR')
  assert '{' not in title


def test_a_result_with_test_bpc_is_enough_to_draw_bits(tmp_path):
  config = three_methods()          # a task name the figure does not know
  workdir = write_run(tmp_path, epoch_lines(3), config,
                      result={'members': [{'test_bpc': 2.0, 'test_loss': 1.386}]})
  assert drawn(workdir).axes[0].get_ylabel() == 'bits per character'


def test_music_is_in_nats_per_frame_with_methods_once_and_seeds_by_line_style(tmp_path):
  config = music.get_config('dataset=nottingham,method=all,seeds=3')
  config.task.epochs = 3
  lines = epoch_lines(9)
  workdir = write_run(tmp_path, lines, config)
  fig = drawn(workdir)
  loss_ax = fig.axes[0]
  assert loss_ax.get_ylabel() == 'NLL per frame (nats)'
  assert loss_ax.get_xlabel() == 'epoch'
  mine = [l['loss'] for l in lines if l['member'] == 4 and l['split'] == 'valid']
  np.testing.assert_allclose(line(loss_ax, 'loss:valid:4')[1], mine)      # nats, unchanged
  assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == [
      'SGD', 'SGD+C', 'SGD+CR', 'seed 0', 'seed 1', 'seed 2']
  assert fig._suptitle.get_text() == ('Pascanu et al. Table 1 (polyphonic music), Nottingham: '
                                      'SGD / SGD+C / SGD+CR (3 seeds each)')
  # Members are method-major (rows x seeds): 3, 4, 5 are SGD+C's seeds 0, 1, 2.
  by_gid = {l.get_gid(): l for l in loss_ax.lines}
  colours = {k: by_gid[f'loss:valid:{k}'].get_color() for k in range(9)}
  styles = {k: by_gid[f'loss:valid:{k}'].get_linestyle() for k in range(9)}
  assert colours[3] == colours[4] == colours[5] != colours[0] != colours[6]
  assert styles[3] == styles[0] == styles[6] != styles[4] != styles[5] != styles[3]


def test_ptb_words_are_drawn_as_perplexity_on_a_log_axis(tmp_path):
  config = ptb_bengio.get_config('level=word')
  config.task.epochs = 3
  lines = epoch_lines(1)
  for l in lines:
    l['error'] = float('nan')       # the class softmax computes no error rate
  fig = drawn(write_run(tmp_path, lines, config))
  loss_ax = fig.axes[0]
  assert loss_ax.get_ylabel() == 'perplexity (per word)'
  assert loss_ax.get_yscale() == 'log'
  mine = [l['loss'] for l in lines if l['split'] == 'valid']
  np.testing.assert_allclose(line(loss_ax, 'loss:valid:0')[1], np.exp(mine), rtol=1e-12)
  assert fig._suptitle.get_text().startswith('Bengio et al. Table 2 (Penn Treebank words)')


def test_updates_when_the_run_does_not_count_epochs(tmp_path):
  # A step budget (1,000) shorter than an epoch: the only validation is at
  # the budget's end, which is no epoch's end.
  config = ptb_char.get_config('method=all')
  config.train.num_steps = 1000
  lines = [dict(step=s, split=sp, member=k, loss=2.0, error=0.5, grad_norm=1.0)
           for s in (500, 1000) for sp in ('train',) for k in range(3)]
  lines += [dict(step=1000, split='valid', member=k, loss=2.0, error=0.5) for k in range(3)]
  fig = drawn(write_run(tmp_path, lines, config))
  assert fig.axes[0].get_xlabel() == 'update'
  np.testing.assert_array_equal(line(fig.axes[0], 'loss:train:0')[0], [500, 1000])
  # A synthetic task (fresh data every step) has no epochs either.
  assert curves.steps_per_epoch(three_methods().to_dict(), curves.read_metrics(
      write_run(tmp_path, epoch_lines(3), three_methods()))) is None


def test_steps_per_epoch_from_validation_at_epoch_ends():
  config = {'task': {'epochs': 5}, 'train': {'num_steps': 0, 'eval_every': 0}}
  valid = {0: {'valid': {'step': np.array([117., 234., 351.])}}}
  assert curves.steps_per_epoch(config, valid) == 117
  config['train']['eval_every'] = 50                # validation not at epochs' ends
  assert curves.steps_per_epoch(config, valid) is None
  config['train'].update(eval_every=0, num_steps=300)
  # Two epochs, then the budget's end at 300: still 117 a epoch.
  assert curves.steps_per_epoch(config, {0: {'valid': {'step': np.array([117., 234., 300.])}}}
                                ) == 117


def test_a_synthetic_task_is_titled_by_its_name_and_length(tmp_path):
  c = three_methods()
  c.task.min_length = c.task.max_length = 200
  fig = drawn(write_run(tmp_path, epoch_lines(3), c))
  assert fig._suptitle.get_text() == 'temporal order, T = 200: SGD / SGD+C / SGD+CR'
  assert fig.axes[0].get_xlabel() == 'update'


def test_the_origin_record_in_config_json_is_no_obstacle(tmp_path):
  config = three_methods().to_dict()
  config['origin'] = {'experiment': 'experiments/temporal_order.py',
                      'overrides': {'train.num_steps': 1000}}
  path = curves.plot_run(write_run(tmp_path, epoch_lines(3), config))
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.parametrize('seeds', [3, 6])
def test_a_clipping_threshold_is_drawn_once(tmp_path, seeds):
  c = three_methods()
  c.population.seeds = tuple(range(seeds))
  fig = drawn(write_run(tmp_path, epoch_lines(3 * seeds), c))
  grad_ax = fig.axes[2]
  horizontal = [l for l in grad_ax.lines if l.get_gid() is None
                and len(set(l.get_ydata())) == 1 and l.get_color() == 'black']
  assert [l.get_ydata()[0] for l in horizontal] == [8.0]
  legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
  assert legend[:3] == ['SGD', 'SGD+C', 'SGD+CR']
  # More seeds than line styles: the legend says how many instead of listing them.
  assert len(legend) == (6 if seeds == 3 else 3)
