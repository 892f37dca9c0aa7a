"""reporting/figures/compare.py: several runs' validation curves on one pair of axes.

The drawn lines are checked against the runs' records converted by hand
(perplexity = exp(loss); epochs = step / updates per epoch).
"""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from reporting.figures import compare


def word_run(folder, per_epoch, losses, member=0, members=1, test=None):
  """A PTB-word run folder counting epochs of ``per_epoch`` updates, its
  ``member`` validated at each epoch's end with ``losses``; with ``test``, a
  result.json whose member scored it at its lowest validation."""
  folder.mkdir()
  config = dict(task=dict(name='ptb_word', epochs=len(losses)), train=dict(eval_every=0))
  (folder / 'config.json').write_text(json.dumps(config))
  with open(folder / 'metrics.jsonl', 'w') as f:
    for e, loss in enumerate(losses, 1):
      for k in range(members):
        f.write(json.dumps(dict(step=e * per_epoch, split='train', member=k, loss=loss + 0.1)) + '\n')
        f.write(json.dumps(dict(step=e * per_epoch, split='valid', member=k,
                                loss=loss if k == member else loss + 1.0)) + '\n')
  if test is not None:
    best = int(np.argmin(losses))
    ms = [dict(test_loss_at_best_valid=test, best_valid_step=(best + 1) * per_epoch)
          for _ in range(members)]
    (folder / 'result.json').write_text(json.dumps(dict(members=ms)))
  return str(folder)


def lines(fig, gid):
  [line] = [l for ax in fig.axes for l in ax.lines if l.get_gid() == gid]
  return line.get_data()


def test_runs_of_other_epoch_lengths_share_the_epoch_axis(tmp_path):
  a = word_run(tmp_path / 'w10', 400, [5.7, 5.5, 5.4], test=5.3)
  b = word_run(tmp_path / 'w40', 100, [5.8, 5.6, 5.45, 5.42], member=1, members=2)
  fig = compare.draw([compare.parse_run(a + '=windows of 10'), compare.parse_run(b + '#1')])
  plt.close(fig)
  x, y = lines(fig, 'epoch:0')
  np.testing.assert_allclose(x, [1, 2, 3])
  np.testing.assert_allclose(y, [math.exp(v) for v in (5.7, 5.5, 5.4)])
  x, y = lines(fig, 'epoch:1')          # member 1 of the second run, not member 0
  np.testing.assert_allclose(x, [1, 2, 3, 4])
  np.testing.assert_allclose(y, [math.exp(v) for v in (5.8, 5.6, 5.45, 5.42)])
  x, _ = lines(fig, 'update:1')
  np.testing.assert_allclose(x, [100, 200, 300, 400])
  x, y = lines(fig, 'epoch:0:test')     # the star: at the lowest validation, epoch 3
  np.testing.assert_allclose(x, [3])
  np.testing.assert_allclose(y, [math.exp(5.3)])
  labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
  assert labels == [f'windows of 10: test {math.exp(5.3):.4g}', 'w40 #1']   # no result: no test


def test_a_run_without_epochs_is_drawn_against_updates_only(tmp_path):
  a = word_run(tmp_path / 'a', 100, [5.0, 4.9])
  b = tmp_path / 'b'
  word_run(b, 100, [5.1, 4.8])
  (b / 'config.json').write_text(json.dumps(dict(task=dict(name='ptb_word'),
                                                 train=dict(eval_every=100))))
  fig = compare.draw([compare.parse_run(a), compare.parse_run(str(b))])
  plt.close(fig)
  assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == 'update'


def test_bad_arguments_get_one_line_errors(tmp_path, capsys):
  a = word_run(tmp_path / 'a', 100, [5.0])
  char = tmp_path / 'c'
  word_run(char, 100, [1.0])
  (char / 'config.json').write_text(json.dumps(dict(task=dict(name='ptb_char', epochs=1),
                                                    train=dict(eval_every=0))))
  cases = [([str(tmp_path / 'nowhere')], 'no config.json'),
           ([a + '#x'], 'must be a number'),
           ([a + '#3'], 'member 3 has no validation line'),
           ([a, str(char)], 'different units')]
  for runs, message in cases:
    with pytest.raises(SystemExit) as e:
      compare.main(['--out', str(tmp_path / 'x.png')] + runs)
    assert message in str(e.value), (runs, e.value)
  out = tmp_path / 'ok.png'
  compare.main(['--out', str(out), a])
  assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
