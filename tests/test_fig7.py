"""figures/fig7.py on hand-written run records: the criterion it states."""

import json

import pytest

from figures import fig7


def _run(root, name, init, length, solved, success=None, solved_error=0.01):
  """A finished Fig. 7 run's config.json and result.json, written by hand."""
  run = root / name
  run.mkdir()
  config = {'model': {'init_scheme': init}, 'task': {'min_length': length},
            'train': {'num_steps': 50_000, 'solved_error': solved_error}}
  members = [{'hparams': {'optim.clip_norm': clip, 'reg.omega_alpha': alpha}, 'solved': ok}
             for (_, clip, alpha), ok in zip(fig7.METHOD_ROWS, solved)]
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
