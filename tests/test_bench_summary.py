"""benchmarks.summary: the bench run's table, from JSON lines written here.

Expected numbers are worked out by hand in the comments, not by the module.
"""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XEON = os.path.join(ROOT, 'benchmarks', 'results', 'cpu_2026-12-05c_xeon.jsonl')


def _jax(name, config, rounds, median, **extra):
  return dict(workload=name, framework='jax', jax_config=config, timesteps_per_s=median,
              timesteps_per_s_rounds=rounds, rounds=len(rounds), cpus=2,
              **({'cores_used': 1} if config == 'threads1' else {}), **extra)


def _torch(name, config, rounds, median, threads):
  return dict(workload=name, framework='torch', config=config, timesteps_per_s=median,
              timesteps_per_s_rounds=rounds, rounds=len(rounds), torch_threads=threads)


def _ratio(name, jax_config, peer_config, mine, theirs, ratios=None):
  return dict(workload=name, kind='ratio', jax_config=jax_config, peer_config=peer_config,
              jax_timesteps_per_s=mine, torch_timesteps_per_s=theirs,
              jax_over_torch=round(mine / theirs, 3), ratios=ratios or {})


def _two_threads_each(tmp_path, name, ours_rounds, theirs_rounds):
  """The row printed for a workload timed only in ``default`` on both sides (two
  threads each), the medians the middle of three rounds."""
  ours, theirs = sorted(ours_rounds)[1], sorted(theirs_rounds)[1]
  records = [_jax(name, 'default', ours_rounds, ours),
             _torch(name, 'default', theirs_rounds, theirs, threads=2),
             _ratio(name, 'default', 'default', ours, theirs)]
  return _row(summary.summarize(_write(tmp_path, records)), name)


def _write(tmp_path, records, name='run.jsonl'):
  path = tmp_path / name
  path.write_text(''.join(json.dumps(r) + '\n' for r in records))
  return str(path)


def _row(text, workload):
  """The cells of a Markdown row whose first cell names the workload."""
  for line in text.splitlines():
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    if cells[0].startswith(f'`{workload}`'):
      return cells
  raise AssertionError(f'no row for {workload} in\n{text}')


# One workload, each side faster in a different configuration: ours on one
# core (120k > 100k), PyTorch on two threads (50k > 40k).
TORDER = [
    _jax('torder_tanh_h50', 'default', [100000.0, 90000.0, 105000.0], 100000.0),
    _jax('torder_tanh_h50', 'threads1', [110000.0, 120000.0, 130000.0], 120000.0),
    _torch('torder_tanh_h50', 'default', [55000.0, 50000.0, 40000.0], 50000.0, threads=2),
    _torch('torder_tanh_h50', 'threads1', [40000.0, 40000.0, 41000.0], 40000.0, threads=1),
    _ratio('torder_tanh_h50', 'threads1', 'default', 120000.0, 50000.0,
           {'threads1/threads1': 3.0, 'threads1/default': 2.4}),
]


def test_the_row_takes_the_ratio_records_configurations(tmp_path, capsys):
  assert summary.main([_write(tmp_path, TORDER)]) == 0
  cells = _row(capsys.readouterr().out, 'torder_tanh_h50')
  assert cells[1] == '120.0k (1 core)'
  assert cells[2] == '50.0k (2 threads)'
  assert cells[3] == '**2.40**'                   # 120k / 50k
  # round by round, threads1 over default: 110/55 = 2.00, 120/50 = 2.40, 130/40 = 3.25
  assert cells[4] == '2.00-3.25'
  assert cells[5] == '4: missed'                  # every round below 4
  assert cells[6] == '3.00'                       # 120k / 40k, both threads1


def test_the_per_round_range_pairs_round_i_with_round_i():
  assert summary.round_ratios([10.0, 30.0, 20.0], [5.0, 10.0, 20.0]) == [2.0, 3.0, 1.0]


def test_a_range_across_the_floor_is_within_noise(tmp_path):
  # medians 200k / 100k = 2.00 (floor 2: met by the medians), but round by round
  # 180/100 = 1.80, 200/100 = 2.00, 230/100 = 2.30: the rounds straddle it.
  cells = _two_threads_each(tmp_path, 'music_sigmoid_h300', [180000.0, 200000.0, 230000.0],
                            [100000.0, 100000.0, 100000.0])
  assert cells[3:6] == ['**2.00**', '1.80-2.30', '2: within noise']
  assert cells[6] == '–'                           # no threads1 on either side


def test_verdicts():
  assert summary.verdict(2.1, 2.05, 2.3, 2.0) == 'met'
  assert summary.verdict(1.9, 1.7, 1.95, 2.0) == 'missed'
  assert summary.verdict(1.95, 1.62, 2.17, 2.0) == 'within noise'
  assert summary.verdict(1.61, 1.46, 1.94, 1.5) == 'within noise'
  assert summary.verdict(0.76, 0.75, 0.79, 0.75) == 'met'          # every round at or above
  assert summary.verdict(0.98, 0.95, 1.0, 1.0) == 'within noise'   # one round reaches it
  assert summary.verdict(1.0, None, None, 1.0) == 'met'            # no rounds: the ratio alone


def test_bf16_rows_say_what_is_compared(tmp_path):
  cells = _two_threads_each(tmp_path, 'charlm_gru_h512_bf16', [44000.0, 43000.0, 45000.0],
                            [22000.0, 22000.0, 22000.0])
  assert cells[0] == '`charlm_gru_h512_bf16` (ours bf16 / PyTorch fp32)'
  # 44/22 = 2.00; rounds 43/22 = 1.95 .. 45/22 = 2.05 straddle the floor 2.0
  assert cells[3:6] == ['**2.00**', '1.95-2.05', '2: within noise']
  assert '(ours bf16' not in _row(summary.summarize(_write(tmp_path, TORDER, 'b.jsonl')),
                                  'torder_tanh_h50')[0]


def test_rates_and_ratios_are_written_as_results_writes_them():
  assert summary.fmt_rate(2275133.8) == '2.28M'
  assert summary.fmt_rate(1994000.0) == '1.99M'
  assert summary.fmt_rate(291439.2) == '291.4k'
  assert summary.fmt_rate(7784.5) == '7.8k'
  assert summary.fmt_rate(999960.0) == '1.00M'     # not '1000.0k'
  assert summary.fmt_rate(950.4) == '950'
  assert summary.fmt_ratio(7.807) == '7.81'
  assert summary.fmt_ratio(0.5568) == '0.56'
  # a range's bound that 2 decimals would print as the floor gets a third
  assert summary.fmt_bound(0.753, 0.75) == '0.753'
  assert summary.fmt_bound(0.788, 0.75) == '0.79'
  assert summary.fmt_bound(0.75, 0.75) == '0.75'
  assert summary.fmt_bound(1.4996, 1.5) == '1.4996'


def test_ratios_come_from_the_medians_not_the_records_rounding(tmp_path):
  # 64561.8 / 9010.9 = 7.16486 (the record's 3 decimals: 7.165, which would round to 7.17);
  # 64561.8 / 8314.2 = 7.76525 (record 7.765, float-rounded to 7.76)
  name = 'music_sigmoid_h300_b1'
  records = [
      _jax(name, 'threads1', [61641.9, 64561.8, 65527.2], 64561.8),
      _torch(name, 'default', [9577.5, 8418.5, 9010.9], 9010.9, threads=2),
      _torch(name, 'threads1', [10181.3, 7699.2, 8314.2], 8314.2, threads=1),
      _ratio(name, 'threads1', 'default', 64561.8, 9010.9, {'threads1/threads1': 7.765}),
  ]
  cells = _row(summary.summarize(_write(tmp_path, records)), name)
  assert cells[3] == '**7.16**'
  assert cells[6] == '7.77'


def test_populations_and_a_run_without_the_peer(tmp_path):
  pop = 'population_torder_tanh_h50'
  records = [
      _jax('torder_tanh_h50', 'default', [2.0e6, 2.1e6, 1.9e6], 2.0e6),
      dict(workload=pop, framework='jax', layout='vmap', members=8, auto_layout='map',
           speedup=0.878, timesteps_per_s=1.8e6, timesteps_per_s_rounds=[1.8e6]),
      dict(workload=pop, framework='jax', layout='map', members=8, auto_layout='map',
           speedup=0.995, timesteps_per_s=2.0e6, timesteps_per_s_rounds=[2.0e6]),
  ]
  text = summary.summarize(_write(tmp_path, records))
  assert _row(text, 'torder_tanh_h50') == [
      '`torder_tanh_h50`', '2.00M (2 threads)', '–', '–', '–', '4', '–']
  # the floor of 1.0 judged on the layout 'auto' takes: map, 0.995 < 1
  assert _row(text, pop) == [f'`{pop}` (8 members)', '0.88', '0.99', 'map', '1: missed']


def test_floors_are_issue_14s():
  assert summary.FLOORS == {
      'torder_tanh_h50': 4, 'music_sigmoid_h300': 2, 'music_tanh_h300_fused': 1.5,
      'charlm_lstm_h512': 0.75, 'charlm_gru_h512': 1.5, 'charlm_lstm_h512_bf16': 1.0,
      'charlm_gru_h512_bf16': 2.0, 'music_sigmoid_h300_b1': 4, 'ptb_sigmoid_h500_b1': 4}
  assert summary.POPULATION_FLOOR == 1.0


def test_no_jax_is_imported():
  code = 'import sys, benchmarks.summary; sys.exit("jax" in sys.modules)'
  assert subprocess.run([sys.executable, '-c', code], cwd=ROOT).returncode == 0


# RESULTS.md, "Every workload on the Intel Xeon VM again, today's code (2026-12-05,
# 19:33 UTC)": rnnopt / PyTorch and one core against one thread.
XEON_RATIOS = {
    'torder_tanh_h50': ('7.81', '7.81'),
    'music_sigmoid_h300': ('2.33', '3.31'),
    'music_tanh_h300_fused': ('0.94', '1.20'),
    'charlm_lstm_h512': ('0.56', '0.74'),
    'charlm_gru_h512': ('1.10', '1.19'),        # 18848.8 / 15778.5 = 1.1946
    'charlm_lstm_h512_bf16': ('0.96', '1.35'),
    'charlm_gru_h512_bf16': ('1.84', '2.17'),
    'music_sigmoid_h300_b1': ('6.30', '6.99'),
    'ptb_sigmoid_h500_b1': ('4.74', '9.28'),
}


@pytest.mark.skipif(not os.path.exists(XEON), reason='the Xeon run\'s raw lines are not here')
def test_the_committed_xeon_run_prints_the_ratios_results_quotes():
  text = summary.summarize(XEON)
  for name, (ratio, one_core) in XEON_RATIOS.items():
    cells = _row(text, name)
    assert (cells[3], cells[6]) == (f'**{ratio}**', one_core), name
  assert _row(text, 'torder_tanh_h50')[1:3] == ['2.28M (1 core)', '291.4k (1 thread)']


def test_ours_label_counts_the_cores_the_process_had_not_the_machines():
  """A run under ``taskset -c 0`` on a 2-core machine used one thread, whatever
  ``cpus`` (the machine's count) says; records from before ``cores_used`` fall back to it."""
  assert summary.ours_label({'jax_config': 'default', 'cpus': 2, 'cores_used': 1}) == '1 thread'
  assert summary.ours_label({'jax_config': 'default', 'cpus': 2}) == '2 threads'
  assert summary.ours_label({'jax_config': 'threads1', 'cpus': 2}) == '1 core'
