"""reporting/figures/fig7.py on hand-written run records: the criterion it states, the
Wilson intervals against hand computations, and what the drawn axes show."""

import json
import math
import re

import matplotlib
import pytest

from reporting.figures import fig7


def _run(root, name, init, length, solved, success=None, solved_error=0.01):
  """A finished Fig. 7 run's config.json and result.json, written by hand.

  ``solved``: one bool per method (SGD, SGD-C, SGD-CR), or one tuple of
  bools per method, a member per seed."""
  run = root / name
  run.mkdir(parents=True)
  config = {'model': {'init_scheme': init}, 'task': {'min_length': length},
            'train': {'num_steps': 50_000, 'solved_error': solved_error}}
  members = [{'hparams': {'optim.clip_norm': clip, 'reg.omega_alpha': alpha}, 'solved': ok}
             for (_, clip, alpha), oks in zip(fig7.METHOD_ROWS, solved)
             for ok in (oks if isinstance(oks, tuple) else (oks,))]
  result = {'members': members}
  if success:
    result['success'] = success
  (run / 'config.json').write_text(json.dumps(config))
  (run / 'result.json').write_text(json.dumps(result))


def test_the_figure_names_its_criterion(tmp_path):
  _run(tmp_path, 'smart_tanh_T50', 'smart_tanh', 50, (False, False, True), 'authors', 1e-6)
  _run(tmp_path, 'smart_tanh_T100', 'smart_tanh', 100, (False, True, True), 'authors', 1e-6)
  table = fig7.collect(str(tmp_path))
  assert table.criterion == 'authors'
  assert table[('smart_tanh', 'sgd-cr')] == {50: (1, 1, 50_000), 100: (1, 1, 50_000)}
  assert table[('smart_tanh', 'sgd')][100] == (0, 1, 50_000)
  text = fig7.markdown(table)
  assert "0 wrong of 10,000" in text and "authors' code" in text


def test_older_records_are_read_by_their_threshold_and_criteria_never_mix(tmp_path):
  _run(tmp_path, 'basic_tanh_T25', 'basic_tanh', 25, (True, True, True))   # no 'success' field
  assert fig7.collect(str(tmp_path)).criterion == 'paper'
  assert '<1% wrong' in fig7.markdown(fig7.collect(str(tmp_path)))
  _run(tmp_path, 'basic_tanh_T50', 'basic_tanh', 50, (True, True, True), 'authors', 1e-6)
  with pytest.raises(ValueError, match='draw them separately'):
    fig7.collect(str(tmp_path))


def test_wilson_interval_by_hand():
  z2 = 1.959963984540054 ** 2
  # 0/n and n/n: the closed forms [0, z^2/(n + z^2)] and [n/(n + z^2), 1].
  assert fig7.wilson_interval(0, 5) == pytest.approx((0.0, z2 / (5 + z2)), abs=1e-12)
  assert fig7.wilson_interval(5, 5) == pytest.approx((5 / (5 + z2), 1.0), abs=1e-12)
  assert fig7.wilson_interval(0, 5) == pytest.approx((0.0, 0.43449), abs=1e-5)
  assert fig7.wilson_interval(5, 5) == pytest.approx((0.56551, 1.0), abs=1e-5)
  # 2/5, worked by hand: p = 0.4, centre (0.4 + 0.38415) / 1.76829 = 0.44345,
  # half-width 1.10839 * sqrt(0.048 + 0.038415) = 0.32583.
  assert fig7.wilson_interval(2, 5) == pytest.approx((0.11762, 0.76928), abs=1e-5)
  # Symmetry k <-> n - k, and the interval always holds the observed rate.
  lo, hi = fig7.wilson_interval(3, 5)
  assert (lo, hi) == pytest.approx((1 - 0.76928, 1 - 0.11762), abs=1e-5)
  for k in range(11):
    lo, hi = fig7.wilson_interval(k, 10)
    assert 0.0 <= lo <= k / 10 <= hi <= 1.0
  assert fig7.wilson_interval(0, 0) == (0.0, 1.0)


def _five_seeds(tmp_path):
  rates = {25: ((1, 1, 0, 0, 0), (1, 1, 0, 0, 0), (1, 1, 1, 1, 0)),
           50: ((0,) * 5, (0,) * 5, (1, 0, 0, 0, 0)),
           100: ((0,) * 5, (0,) * 5, (0,) * 5),
           200: ((0,) * 5, (0,) * 5, (0,) * 5)}
  for length, solved in rates.items():
    _run(tmp_path, f'basic_tanh_T{length}', 'basic_tanh', length,
         tuple(tuple(bool(x) for x in seeds) for seeds in solved))
  return fig7.collect(str(tmp_path))


def test_the_plot_shows_lengths_seeds_and_intervals(tmp_path, monkeypatch):
  table = _five_seeds(tmp_path)
  assert table[('basic_tanh', 'sgd-cr')][25] == (4, 5, 50_000)
  drawn = {}
  real_close = matplotlib.pyplot.close
  monkeypatch.setattr(matplotlib.pyplot, 'close', lambda fig: drawn.setdefault('fig', fig))
  path = fig7.plot(table, str(tmp_path / 'fig7.png'))
  real_close(drawn['fig'])
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  axes = drawn['fig'].axes
  ax = axes[1]                                   # basic_tanh
  assert ax.get_xscale() == 'log'
  assert list(ax.get_xticks()) == [25, 50, 100, 200]
  assert [t.get_text() for t in ax.get_xticklabels()] == ['25', '50', '100', '200']
  assert len(ax.xaxis.get_minorticklocs()) == 0
  [legend] = drawn['fig'].legends
  assert [t.get_text() for t in legend.get_texts()] == ['SGD', 'SGD-C', 'SGD-CR']
  assert '5 seeds per point' in legend.get_title().get_text()
  assert 'Wilson 95%' in legend.get_title().get_text()
  # SGD and SGD-C have equal rates everywhere: their points sit apart along x.
  lines = {l.get_gid(): l for l in ax.lines if l.get_gid()}
  x_sgd, y_sgd = lines['basic_tanh:sgd'].get_data()
  x_c, y_c = lines['basic_tanh:sgd-c'].get_data()
  assert list(y_sgd) == list(y_c) == [0.4, 0.0, 0.0, 0.0]
  assert all(a < b for a, b in zip(x_sgd, x_c))
  assert lines['basic_tanh:sgd'].get_marker() != lines['basic_tanh:sgd-c'].get_marker()
  # The error bar of SGD-CR at T=25 spans the Wilson interval of 4/5.
  bars = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
  spans = sorted((round(seg[0][1], 6), round(seg[1][1], 6))
                 for c in bars for seg in c.get_segments())
  lo, hi = fig7.wilson_interval(4, 5)
  assert (round(lo, 6), round(hi, 6)) in spans
  assert '<1% wrong' in drawn['fig']._suptitle.get_text()


def test_the_markdown_gives_each_interval(tmp_path):
  text = fig7.markdown(_five_seeds(tmp_path))
  assert '| basic_tanh | SGD-CR | 4/5 [0.38, 0.96] | 1/5 [0.04, 0.62] |' in text
  assert math.isclose(fig7.wilson_interval(4, 5)[0], 0.3755, abs_tol=1e-3)


def _one_method(root, name, init, length, method, solved, steps, first_seed=0):
  """A finished run of one method's seeds alone (``temporal_order.py:method=M,seeds=N``):
  the method is the config's, the members' hparams only their seeds."""
  clip, alpha = {'sgd': (0.0, 0.0), 'sgd-c': (1.0, 0.0), 'sgd-cr': (1.0, 4.0)}[method]
  run = root / name
  run.mkdir(parents=True)
  config = {'model': {'init_scheme': init}, 'task': {'min_length': length},
            'optim': {'clip_norm': clip}, 'reg': {'omega_alpha': alpha},
            'train': {'num_steps': steps, 'solved_error': 0.01}}
  result = {'success': 'paper', 'members': [{'hparams': {'seed': first_seed + i}, 'solved': ok}
                                            for i, ok in enumerate(solved)]}
  (run / 'config.json').write_text(json.dumps(config))
  (run / 'result.json').write_text(json.dumps(result))
  return str(run)


def test_longer_runs_of_a_point_add_up_and_must_share_a_budget(tmp_path):
  runs = [_one_method(tmp_path, 'a', 'smart_tanh', 200, 'sgd-cr', (True, True, False), 500_000),
          _one_method(tmp_path, 'b', 'smart_tanh', 200, 'sgd-cr', (True, False), 500_000, 3),
          # No threshold at all is plain SGD (the figure's SGD clips at 1e30).
          _one_method(tmp_path, 'c', 'basic_tanh', 50, 'sgd', (False,) * 5, 300_000)]
  more = fig7.collect_runs(runs)
  assert more.criterion == 'paper'
  assert more[('smart_tanh', 'sgd-cr')] == {200: (3, 5, 500_000)}
  assert more[('basic_tanh', 'sgd')] == {50: (0, 5, 300_000)}
  late = _one_method(tmp_path, 'd', 'smart_tanh', 200, 'sgd-cr', (True,), 600_000, 5)
  with pytest.raises(ValueError, match='one budget per point'):
    fig7.collect_runs(runs + [late])
  with pytest.raises(ValueError, match='not a Fig. 7 member'):
    fig7.method_of({'optim.clip_norm': 5.0, 'reg.omega_alpha': 0.0})


def test_budget_text():
  assert [fig7.budget_text(n) for n in (150_000, 1_000_000, 2_500_000, 50_500, 999)] == \
      ['150k', '1M', '2.5M', '50,500', '999']


def test_the_longer_runs_are_drawn_beside_the_figure_and_tabulated(tmp_path, monkeypatch):
  table = _five_seeds(tmp_path / 'fig')
  more = fig7.collect_runs([
      _one_method(tmp_path / 'more', 'a', 'basic_tanh', 200, 'sgd-cr', (True, True, True, False, False), 600_000),
      _one_method(tmp_path / 'more', 'b', 'basic_tanh', 50, 'sgd-c', (True, False, False, False, False), 300_000)])
  drawn = {}
  real_close = matplotlib.pyplot.close
  monkeypatch.setattr(matplotlib.pyplot, 'close', lambda fig: drawn.setdefault('fig', fig))
  fig7.plot(table, str(tmp_path / 'more.png'), more)
  real_close(drawn['fig'])
  ax = drawn['fig'].axes[1]                      # basic_tanh
  lines = {l.get_gid(): l for l in ax.lines if l.get_gid()}
  x, y = lines['basic_tanh:sgd-cr:more:200'].get_data()
  assert list(y) == [0.6] and lines['basic_tanh:sgd-cr:more:200'].get_markerfacecolor() == 'white'
  # At the figure's point's x, above its rate (0/5 at T = 200), joined to it by a dotted line.
  x_fig, y_fig = lines['basic_tanh:sgd-cr'].get_data()
  assert x[0] == x_fig[-1] and y_fig[-1] == 0.0
  assert any(list(l.get_ydata()) == [0.0, 0.6] and l.get_linestyle() == ':' for l in ax.lines)
  assert {t.get_text() for t in ax.texts} == {'600k', '300k'}
  assert 'more updates' in drawn['fig'].legends[0].get_texts()[-1].get_text()
  assert 'hollow: more' in drawn['fig']._suptitle.get_text()
  text = fig7.markdown_more(table, more)
  assert '| basic_tanh | SGD-C | 50 | 0/5 [0.00, 0.43] | 1/5 [0.04, 0.62] | 300,000 |' in text
  assert '| basic_tanh | SGD-CR | 200 | 0/5 [0.00, 0.43] | 3/5 [0.23, 0.88] | 600,000 |' in text


def test_main_writes_the_longer_figure_and_refuses_unfinished_runs(tmp_path):
  _five_seeds(tmp_path / 'fig')
  run = _one_method(tmp_path / 'more', 'a', 'basic_tanh', 200, 'sgd-cr', (True,) * 5, 600_000)
  fig7.main(['fig7', str(tmp_path / 'fig'), '--more', run])
  assert (tmp_path / 'fig' / 'fig7_more.png').read_bytes()[:4] == b'\x89PNG'
  assert '5/5 [0.57, 1.00] | 600,000 |' in (tmp_path / 'fig' / 'fig7_more.md').read_text()
  (tmp_path / 'more' / 'b').mkdir()
  with pytest.raises(SystemExit, match='not finished'):
    fig7.main(['fig7', str(tmp_path / 'fig'), '--more', run, str(tmp_path / 'more' / 'b')])
  with pytest.raises(SystemExit, match='names no runs'):
    fig7.main(['fig7', str(tmp_path / 'fig'), '--more'])


@pytest.mark.parametrize('name', ['result.json', 'config.json'])
def test_a_record_that_does_not_parse_is_named_in_the_error(tmp_path, name):
  _run(tmp_path, 'a', 'basic_tanh', 50, [True, False])
  (tmp_path / 'a' / name).write_text('{\n')
  with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path / 'a' / name))}: Expecting"):
    fig7.collect(str(tmp_path))
