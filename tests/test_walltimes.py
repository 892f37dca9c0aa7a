"""reporting/walltimes.py: each reproduce job's time is the sum of its records' wall times."""

import json
import os

from orchestration import reproduce
from reporting import walltimes


def write_result(d, wall, step, code):
  os.makedirs(d, exist_ok=True)
  with open(os.path.join(d, 'result.json'), 'w') as f:
    json.dump(dict(wall_time_s=wall, step=step, code_version=code, members=[]), f)


def test_jobs_and_sweeps_are_summed_and_unfinished_ones_counted(tmp_path, monkeypatch):
  target = reproduce.Target('toy.t', 'toy', (
      reproduce.Job('run', 'experiments/temporal_order.py:smoke'),
      reproduce.Job('search', 'experiments/temporal_order_sweep.py', command='sweep'),
      reproduce.Job('later', 'experiments/temporal_order.py:smoke')))
  monkeypatch.setattr(reproduce, 'TARGETS', {target.key: target})
  folder = tmp_path / 'toy_t'
  write_result(str(folder / 'run'), 90.0, 1000, 'abc')
  for g, wall in (('g00/part0', 120.0), ('g01/part0', 60.0)):
    write_result(str(folder / 'search' / g), wall, 500, 'def')
  (folder / 'search' / 'sweep.json').write_text('{}')
  write_result(str(folder / 'later' / 'g00'), 30.0, 10, 'x')   # no result.json of its own: not finished
  rows = {r['job']: r['time'] for r in walltimes.rows(str(tmp_path))}
  assert rows['run'] == dict(minutes=1.5, runs=1, updates=1000, code=['abc'])
  assert rows['search'] == dict(minutes=3.0, runs=2, updates=1000, code=['def'])
  assert rows['later'] is None
  text = walltimes.markdown(walltimes.rows(str(tmp_path)))
  assert '| `toy.t` | search | 3.0 min | 2 | 1,000 | 6 | def |' in text
  assert '| `toy.t` | 0.1 h | 1 |' in text      # 4.5 min in all; one job not finished
