"""The per-operation profile of a training update (benchmarks/profile.py)."""

import gzip
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from benchmarks import profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_trace(folder, events):
  os.makedirs(os.path.join(folder, 'plugins', 'profile', 'run'))
  with gzip.open(os.path.join(folder, 'plugins', 'profile', 'run', 'perfetto_trace.json.gz'),
                 'wt') as f:
    json.dump({'traceEvents': events}, f)


def test_events_are_summed_per_update_and_runtime_spans_left_out(tmp_path):
  events = ([{'ph': 'X', 'name': 'dot.1', 'dur': 3.0}] * 8 +
            [{'ph': 'X', 'name': 'fusion.2', 'dur': 10.0}] * 2 +
            [{'ph': 'X', 'name': 'ThunkExecutor::Execute', 'dur': 500.0},
             {'ph': 'X', 'name': 'while.3', 'dur': 400.0},
             {'ph': 'X', 'name': 'end: dot.1', 'dur': 1.0},
             {'ph': 'B', 'name': 'dot.1'}])          # not a complete event
  _write_trace(str(tmp_path), events)
  ops = profile.operations(profile.read_trace(str(tmp_path)), updates=2)
  assert [(op.name, op.us, op.calls) for op in ops] == [('dot.1', 12.0, 4.0),
                                                       ('fusion.2', 10.0, 1.0)]


def test_a_scan_of_t_steps_runs_its_product_t_times_a_call(tmp_path):
  """An independent count: a scan of 7 matrix-vector products, called 3 times."""
  w = jnp.ones((64, 64)) / 64

  @jax.jit
  def f(h):
    return jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), h, None, length=7)[0]

  h = jnp.ones((1, 64))
  f(h).block_until_ready()
  with jax.profiler.trace(str(tmp_path), create_perfetto_trace=True):
    for _ in range(3):
      h = f(h).block_until_ready()
  ops = profile.operations(profile.read_trace(str(tmp_path)), updates=3)
  dots = [op for op in ops if op.name.startswith('dot')]
  assert len(dots) == 1 and dots[0].calls == 7 and dots[0].us > 0


@pytest.mark.slow
def test_launch_profiles_a_workload():
  out = subprocess.run(
      [sys.executable, 'launch.py', 'bench', '--profile', '--workloads=torder_tanh_h50',
       '--steps=2', '--rounds=1'], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'torder_tanh_h50:' in out.stdout and 'once a timestep (T = 200)' in out.stdout
  rows = [l for l in out.stdout.splitlines() if l.startswith('| `')]
  assert rows and any('| 200 |' in r for r in rows)


def test_launch_names_a_workload_it_cannot_profile():
  out = subprocess.run([sys.executable, 'launch.py', 'bench', '--profile',
                        '--workloads=population_torder_tanh_h50'], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode != 0
  assert 'cannot profile population_torder_tanh_h50' in out.stderr
  assert 'Traceback' not in out.stderr
