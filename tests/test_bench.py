"""The benchmark command: its records, and its errors for bad options."""

import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks import run
from benchmarks import workloads as wl
from orchestration import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The peer's table (../shared/bench/README.md): cell, activation, inputs,
# hidden units, outputs, batch, T.
PEER = {
    'torder_tanh_h50': ('rnn', 'tanh', 6, 50, 4, 20, 200),
    'music_sigmoid_h300': ('rnn', 'sigmoid', 88, 300, 88, 32, 100),
    'music_tanh_h300_fused': ('rnn', 'tanh', 88, 300, 88, 32, 100),
    'charlm_lstm_h512': ('lstm', 'tanh', 50, 512, 50, 32, 150),
    'charlm_gru_h512': ('gru', 'tanh', 50, 512, 50, 32, 150),
    'music_sigmoid_h300_b1': ('rnn', 'sigmoid', 88, 300, 88, 1, 200),
    'ptb_sigmoid_h500_b1': ('rnn', 'sigmoid', 50, 500, 50, 1, 200),
    # the project's bfloat16-compute runs of the char-LMs (the peer runs them in float32)
    'charlm_lstm_h512_bf16': ('lstm', 'tanh', 50, 512, 50, 32, 150),
    'charlm_gru_h512_bf16': ('gru', 'tanh', 50, 512, 50, 32, 150),
}
GATES = {'rnn': 1, 'gru': 3, 'lstm': 4}


def test_the_workloads_are_the_peers():
  assert set(wl.WORKLOADS) == set(PEER)
  assert run.ALL == tuple(wl.WORKLOADS) + tuple(run.POPULATIONS)
  assert set(run.POPULATIONS.values()) <= set(wl.WORKLOADS)


def test_every_workload_has_a_floor():
  from benchmarks import summary     # the floors live there, away from JAX
  assert set(summary.FLOORS) == set(wl.WORKLOADS)


@pytest.mark.parametrize('name', sorted(PEER))
def test_each_workload_has_the_peers_shapes(name):
  """The shapes the trainer reads (a batch of the config's problem) and the
  model's parameters, against the peer's table."""
  import jax
  from training import train
  cell, activation, n_in, hidden, n_out, batch, length = PEER[name]
  w = wl.WORKLOADS[name]
  config = w.config()
  problem = wl.synthetic_task(config)
  got = jax.eval_shape(problem.train_batch, jax.random.key(0), 0)
  assert got['inputs'].shape == (length, batch, n_in)
  assert got['mask'].shape == (length, batch)
  assert (config.model.cell, config.model.activation) == (cell, activation)
  params = jax.eval_shape(train.make_model(config, problem).init, jax.random.key(0),
                          got['inputs'])['params']
  g = GATES[cell] * hidden
  layer = params['layer_0']
  assert (layer['w_in'].shape, layer['w_rec'].shape) == ((n_in, g), (hidden, g))
  assert params['w_out'].shape == (hidden, n_out)
  assert ('b' in layer) == (name != 'ptb_sigmoid_h500_b1')   # Pascanu et al.: no biases
  assert (w.batch, w.length, w.n_in, w.hidden, w.n_out) == (batch, length, n_in, hidden, n_out)
  assert w.timesteps_per_step == batch * length


@pytest.mark.parametrize('name', ['charlm_lstm_h512_bf16', 'charlm_gru_h512_bf16'])
def test_bf16_workloads_are_their_float32_ones_computing_in_bfloat16(name):
  """The same config as the float32 workload but model.compute_dtype, and
  the float32 ones compute in float32."""
  from training import records
  twin = name.removesuffix('_bf16')
  bf16, f32 = wl.WORKLOADS[name].config(), wl.WORKLOADS[twin].config()
  assert (bf16.model.compute_dtype, f32.model.compute_dtype) == ('bfloat16', 'float32')
  differ = {k for k, v in records.flatten(bf16.to_dict()).items()
            if records.flatten(f32.to_dict()).get(k) != v}
  assert differ == {'model.compute_dtype'}
  assert '--config.model.compute_dtype=bfloat16' in wl.WORKLOADS[name].command


@pytest.mark.parametrize('name', ['music_sigmoid_h300', 'ptb_sigmoid_h500_b1'])
def test_synthetic_corpora_score_every_step(name):
  """An epoch of POOL batches, every step scored (a piece's last frame
  aside: it has no next frame), the state reset where a batch of pieces or
  the epoch starts."""
  import jax
  import numpy as np
  problem = wl.synthetic_task(wl.WORKLOADS[name].config())
  assert problem.steps_per_epoch == wl.POOL
  batches = [jax.jit(problem.train_batch)(jax.random.key(3), n) for n in range(wl.POOL)]
  mask = np.stack([b['mask'] for b in batches])
  resets = [bool(b['reset']) for b in batches]
  if name.startswith('music'):
    assert resets == [True, False, False, False] * 2
    assert mask.sum() == mask.size - 2 * problem.splits['train'][0].shape[2]
  else:
    assert resets == [True] + [False] * (wl.POOL - 1)
    assert mask.all()


def small(name, **overrides):
  """A workload's config shrunk to seconds: the plumbing is what is tested."""
  config = wl.WORKLOADS[name].config()
  with config.unlocked():
    config.model.hidden_size = 8
    if config.task.name == 'temporal_order':
      config.task.min_length = config.task.max_length = 20
    else:
      config.task.chunk = 10
    config.train.eval_sequences = config.train.test_sequences = 40
    config.train.eval_batch_size = 20
    config.train.checkpoint_every_s = 1e9
    for k, v in overrides.items():
      config.train[k] = v
  return config


@pytest.mark.slow
def test_the_timed_program_trains_as_the_steps_do():
  """The timed chunk (the population program of one member, compiled ahead
  of time) gives the parameters and losses of ``Trainer.train_chunk`` run
  directly on the member's initial state."""
  import jax
  import numpy as np
  from training import train
  config = small('torder_tanh_h50')
  chunk = wl.trainer_chunk(config)
  initial = jax.tree.map(lambda a: a[0], chunk.state)   # new arrays: the timed call donates its own
  timed = run._Timed(chunk, 3)
  direct, metrics = jax.jit(chunk.trainer.train_chunk, static_argnums=1)(initial, 3)
  np.testing.assert_allclose(np.asarray(timed.metrics['loss'])[0], metrics['loss'], rtol=1e-6)
  for a, b in zip(jax.tree.leaves(timed.state.params), jax.tree.leaves(direct.params)):
    np.testing.assert_allclose(np.asarray(a)[0], b, rtol=1e-5, atol=1e-7)
  assert int(timed.state.step[0]) == 3
  assert not np.allclose(np.asarray(timed.state.params['w_out'])[0], initial.params['w_out'])


@pytest.mark.slow
@pytest.mark.parametrize('name', ['torder_tanh_h50', 'music_sigmoid_h300_b1',
                                  'charlm_gru_h512', 'charlm_lstm_h512_bf16'])
def test_the_benchmark_times_the_trainers_chunk(name, tmp_path):
  """The timed program's first call (the warm-up) trains exactly what
  ``train.train_and_evaluate`` trains in its first chunk: the same loss,
  gradient norm and, after it, spectral radius of W_rec."""
  import numpy as np
  from training import train
  n = 4
  config = small(name, num_steps=n, log_every=n, eval_every=0 if name != 'torder_tanh_h50'
                 else n)
  timed = run._Timed(wl.trainer_chunk(config), n)
  train.train_and_evaluate(config, str(tmp_path), data=wl.synthetic_data(config))
  with open(tmp_path / 'metrics.jsonl') as f:
    first = next(r for r in map(json.loads, f) if r['split'] == 'train')
  assert first['step'] == n
  m = {k: np.asarray(v)[0] for k, v in timed.metrics.items()}
  assert first['loss'] == pytest.approx(train.scored_mean(m['loss'], m['scored']), rel=1e-6)
  assert first['grad_norm'] == pytest.approx(float(np.mean(m['grad_norm'])), rel=1e-6)
  w_rec = np.asarray(timed.state.params['layer_0']['w_rec'])[0]
  assert first['spectral_radius'] == pytest.approx(train.spectral_radius(w_rec), rel=1e-6)


def test_population_members_have_their_own_seeds_and_learning_rates():
  from training import population
  config = wl.WORKLOADS['torder_tanh_h50'].config()
  for members in (1, 2, 3, 8):
    pop = population.make_population(wl.population_config(config, members, seed=5))
    pairs = {(label['seed'], label['optim.learning_rate']) for label in pop.labels}
    assert pop.size == members and len(pairs) == members
    assert min(pop.seeds) == 5
    if members % 2 == 0:
      assert len({lr for _, lr in pairs}) == 2
  whole = population.make_population(wl.population_config(config, 8))
  one = population.make_population(wl.one_member(wl.population_config(config, 8)))
  assert one.labels == whole.labels[:1]


@pytest.mark.slow
def test_records_of_a_workload_and_a_population(capsys):
  records = run.main(run.Options(workloads=('torder_tanh_h50', run.POPULATION),
                                 steps=2, rounds=2, members=2))
  lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
  assert lines == records and len(records) == 3
  single, *layouts = records
  assert single['workload'] == 'torder_tanh_h50' and single['framework'] == 'jax'
  assert single['config'] == wl.WORKLOADS['torder_tanh_h50'].command
  assert len(single['timesteps_per_s_rounds']) == 2
  assert single['timesteps_per_s'] > 0 and single['compile_s'] > 0
  assert single['xla_memory_mb'] > 0 and 'rss_growth_mb' in single
  # The temporal order task has 4 classes: an untrained model scores about ln 4.
  assert abs(single['final_loss'] - math.log(4)) < 1.0
  assert [r['layout'] for r in layouts] == ['vmap', 'map']
  for r in layouts:
    assert r['workload'] == run.POPULATION and r['members'] == 2
    assert r['timesteps_per_s'] > 0 and r['sequential_timesteps_per_s'] > 0
    assert r['speedup'] > 0 and r['compile_s'] > 0 and r['auto_layout'] in ('vmap', 'map')
  assert layouts[0]['sequential_timesteps_per_s'] == layouts[1]['sequential_timesteps_per_s']


# A stand-in for the PyTorch peer: prints the peer's JSON line, with one thread
# twice as fast as two (as the peer is on the small temporal-order RNN).
_FAKE_PEER = """
import json, os, sys
import peer_common                 # a sibling module, as the real peer imports its common.py
threads = int(sys.argv[sys.argv.index('--threads') + 1]) if '--threads' in sys.argv else 2
one = threads == 1 and len(os.sched_getaffinity(0)) == 1      # one thread, pinned
print(json.dumps(dict(timesteps_per_s=2000.0 if one else 1000.0, torch_threads=threads)))
"""


@pytest.mark.slow
def test_ours_in_one_pinned_process_and_the_ratio_of_the_best_of_each(tmp_path, capsys):
  """threads1 times ours in a fresh process that sees one core; the ratio line
  compares the faster configuration of each side, and names every pair."""
  if len(os.sched_getaffinity(0)) < 2:
    pytest.skip('needs two cores: on one, the peer\'s two configurations are the same')
  peer = tmp_path / 'peer.py'
  peer.write_text(_FAKE_PEER)
  (tmp_path / 'peer_common.py').write_text('')
  records = run.main(run.Options(
      workloads=('torder_tanh_h50',), steps=2, rounds=2, ours_configs=('default', 'threads1'),
      peer=True, peer_configs=('default', 'threads1'), peer_python=sys.executable,
      peer_script=str(peer)).validated())
  mine = {r['jax_config']: r for r in records if r.get('framework') == 'jax'}
  theirs = {r['config']: r for r in records if r.get('framework') == 'torch'}
  (ratio,) = [r for r in records if r.get('kind') == 'ratio']
  assert set(mine) == {'default', 'threads1'} and set(theirs) == {'default', 'threads1'}
  assert mine['threads1']['cores_used'] == 1
  # the XLA flags of the process that ran the rounds: single-threaded (sweep's workers')
  assert mine['threads1']['xla_flags'] == sweep.single_thread_env()['XLA_FLAGS']
  assert mine['default']['xla_flags'] == os.environ.get('XLA_FLAGS', '')
  # The peer gets what ours gets: a thread per core we may use, or one thread pinned to one core.
  assert theirs['threads1']['cores_used'] == theirs['threads1']['torch_threads'] == 1
  assert theirs['default']['torch_threads'] == len(os.sched_getaffinity(0))
  for r in mine.values():
    assert len(r['timesteps_per_s_rounds']) == 2 and r['timesteps_per_s'] > 0
    assert abs(r['final_loss'] - math.log(4)) < 1.0     # untrained: about ln 4, as above
  best = max(mine, key=lambda c: mine[c]['timesteps_per_s'])
  assert ratio['jax_config'] == best and ratio['peer_config'] == 'threads1'
  assert ratio['jax_over_torch'] == pytest.approx(mine[best]['timesteps_per_s'] / 2000.0,
                                                  rel=1e-3)
  assert ratio['ratios']['default/default'] == pytest.approx(
      mine['default']['timesteps_per_s'] / 1000.0, rel=1e-3)
  assert ratio['ratios']['threads1/threads1'] == pytest.approx(
      mine['threads1']['timesteps_per_s'] / 2000.0, rel=1e-3)
  assert ratio['jax_over_torch_by_config']['default'] == pytest.approx(
      2 * ratio['jax_over_torch'], rel=1e-3)


@pytest.mark.slow
def test_a_population_at_the_papers_b1_music_shape():
  records = run.main(run.Options(workloads=('population_music_sigmoid_h300_b1',),
                                 steps=2, rounds=1, members=2))
  assert [r['layout'] for r in records] == ['vmap', 'map']
  for r in records:
    assert r['workload'] == 'population_music_sigmoid_h300_b1' and r['members'] == 2
    assert r['config'].startswith(wl.WORKLOADS['music_sigmoid_h300_b1'].command)
    assert r['speedup'] > 0


@pytest.mark.parametrize('options, message', [
    (run.Options(workloads=('lstm',)), "unknown workload 'lstm'"),
    (run.Options(peer_configs=('fast',)), "unknown peer config 'fast'"),
    (run.Options(ours_configs=('fast',)), "unknown configuration of ours 'fast'"),
    (run.Options(ours_configs=('threads1', 'threads1')), 'name each configuration once'),
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
