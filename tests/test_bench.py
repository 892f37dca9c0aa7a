"""The benchmark command: its records, and its errors for bad options."""

import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks import run
from benchmarks import workloads as wl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_records_of_a_workload_and_a_population(capsys):
  records = run.main(run.Options(workloads=('torder_tanh_h50', run.POPULATION),
                                 steps=2, rounds=2, members=2))
  lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
  assert lines == records and len(records) == 2
  single, population = records
  w = wl.WORKLOADS['torder_tanh_h50']
  assert single['workload'] == 'torder_tanh_h50' and single['framework'] == 'jax'
  assert len(single['timesteps_per_s_rounds']) == 2
  assert single['timesteps_per_s'] > 0 and single['compile_s'] > 0
  assert math.isfinite(single['final_loss'])
  # The temporal order task has 4 classes: an untrained model scores about ln 4.
  assert abs(single['final_loss'] - math.log(4)) < 1.0
  assert population['members'] == 2 and population['speedup'] > 0
  assert population['timesteps_per_s'] > 0
  assert w.timesteps_per_step == 20 * 200


@pytest.mark.slow
def test_population_members_follow_their_own_learning_rates():
  """The vmapped population trains each member as the member alone would."""
  import jax
  import numpy as np
  bench = wl.Bench(wl.WORKLOADS['torder_tanh_h50'])
  keys = jax.random.split(jax.random.key(0), 2)
  lrs = np.array([0.01, 0.3], np.float32)
  states = jax.vmap(bench.init)(keys, lrs)
  chunk = lambda s: bench.chunk_generated(s, 3)
  together, losses = jax.jit(jax.vmap(chunk))(states)
  for i in range(2):
    alone, alone_losses = jax.jit(chunk)(bench.init(keys[i], lrs[i]))
    np.testing.assert_allclose(losses[i], alone_losses, rtol=2e-5, atol=2e-6)
    for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(together.params)):
      np.testing.assert_allclose(b[i], a, rtol=2e-4, atol=2e-6)
  assert not np.allclose(losses[0, -1], losses[1, -1])


@pytest.mark.parametrize('options, message', [
    (run.Options(workloads=('lstm',)), "unknown workload 'lstm'"),
    (run.Options(peer_configs=('fast',)), "unknown peer config 'fast'"),
    (run.Options(rounds=0), 'must be >= 1'),
])
def test_bad_options_are_named(options, message):
  with pytest.raises(ValueError, match=message):
    options.validated()


def test_launch_reports_a_bad_workload_in_one_line():
  proc = subprocess.run([sys.executable, 'launch.py', 'bench', '--workloads=lstm'],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines() == [
      "bench error: unknown workload 'lstm'; choose among " + ', '.join(run.ALL)]


def test_roofline_step_times_by_hand():
  """The LSTM step's recurrent products, [32 x 512] x [512 x 2048] over 150
  steps, are 3 x 10.07 GFLOP; its 50-wide input and output projections add
  3 x 2 x 32 x 150 x (50 x 2048 + 512 x 50) flop. Temporal order scores only
  the last step."""
  from benchmarks import roofline
  rates = dict(gemm_large=100.0, gemm_all_steps=80.0, scan_step_matmuls=50.0)
  lstm = wl.WORKLOADS['charlm_lstm_h512']
  recurrent = 2 * 32 * 512 * 2048 * 150 / 1e9
  projections = 3 * 2 * 32 * 150 * (50 * 2048 + 512 * 50) / 1e9
  peer = 4800 / ((3 * recurrent + projections) / 100)        # a peer exactly at the peak
  got = roofline.step_times(lstm, rates, peer_timesteps_per_s=peer)
  assert got['gflop'] == pytest.approx(3 * recurrent + projections, abs=0.01)
  assert got['at_peak_s'] == pytest.approx((3 * recurrent + projections) / 100, abs=1e-5)
  assert got['at_xla_rates_s'] == pytest.approx(2 * recurrent / 50 + (recurrent + projections) / 80,
                                             abs=1e-5)
  assert got['at_peak_over_peer'] == pytest.approx(1.0, abs=0.01)
  torder = roofline.step_flop(wl.WORKLOADS['torder_tanh_h50'])
  assert torder == pytest.approx((2 * 200 * 2 * 20 * 50 * 50 / 1e9,
                                  200 * 2 * 20 * 50 * 50 / 1e9
                                  + 3 * 2 * 20 * (200 * 6 * 50 + 1 * 50 * 4) / 1e9))
  assert 'at_peak_over_peer' not in roofline.step_times(wl.WORKLOADS['charlm_gru_h512'], rates)
