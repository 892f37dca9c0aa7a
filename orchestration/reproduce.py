"""One command per paper table and figure.

    python launch.py reproduce pascanu2013.table1 [--workdir=runs]
    python launch.py reproduce             # lists the targets
    python launch.py reproduce --status [TARGET ...]   # where each job stands; runs nothing

runs every cell of the table at the paper's settings (the experiment
configs' defaults: their docstrings hold the fidelity tables), then prints
the table beside the paper's numbers (``reporting/tables.py``) and draws each run's
learning curves. Each job is an ordinary ``launch.py`` run (or sweep) in
``WORKDIR/<target, dots as _>/<job>`` (``runs/pascanu2013_table1/nottingham``; the project's
own records are the same layout under ``results/``), so

- before it starts it says what it will run and how long that took here
  (``Job.minutes``: wall time measured on one core of our 2-core machine);
- the jobs are spread over one single-threaded process per core on a CPU
  (one at a time on an accelerator), each pinned to its core, its output in
  its folder's ``log.txt``;
- rerunning the command resumes: finished jobs are skipped, unfinished ones
  go on from their last checkpoint, and a job another process is running
  (its workdir's lock held) is left to it;
- ``--executor=ray|slurm`` (the flags of ``launch.py sweep``) sends the
  whole table to a cluster instead: training jobs as Ray tasks or Slurm
  jobs, sweeps with their parts there (``orchestration/executors.py``).

``TARGETS`` below is the registry: what each table or figure runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

from training import records
from training.errors import RunError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository
# kept for jaxlibs that honour it; on 0.10 the pinning to one core is what makes a job single-threaded
SINGLE_THREAD = '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'


@dataclasses.dataclass(frozen=True)
class Job:
  """One run of a target: ``launch.py COMMAND --config=CONFIG --workdir=<target>/<name>``."""
  name: str
  config: str                 # experiments/FILE.py[:ARGS]
  command: str = 'train'      # train | sweep
  minutes: float | None = None   # measured on one core here (None: not measured yet)

  def finished(self, workdir: str) -> bool:
    """Whether the job has its final record (one that reads whole); a sweep
    whose ranking lists failed units is not finished: a rerun retries them."""
    from orchestration import sweep
    if self.command == 'sweep':
      summary = records.read_json(os.path.join(workdir, 'sweep.json'))
      return isinstance(summary, dict) and not summary.get('failed_units')
    return sweep.finished(workdir) is not None

  def verdict(self, workdir: str) -> str:
    """'done' for a finished job; a sweep's says how many trials diverged,
    if any did (a row whose every trial diverged has no number to show)."""
    path = os.path.join(workdir, 'sweep.json')
    if self.command != 'sweep' or not os.path.exists(path):
      return 'done'
    with open(path) as f:
      summary = json.load(f)
    diverged, trials = int(summary.get('diverged') or 0), len(summary.get('trials') or ())
    if not diverged:
      return 'done'
    return (f'done; {diverged} of {trials} trials diverged'
            + (', so it has no result' if diverged == trials else ''))

  def started(self, workdir: str) -> bool:
    """Whether an earlier, unfinished run left something here (records,
    checkpoints, a sweep's units; a lock file alone does not count)."""
    return _started(workdir)

  def progress(self, workdir: str) -> tuple[str, float, float | None]:
    """Where the unfinished job in ``workdir`` stands, in words; the
    fraction of its work left (a sweep: of its trials, ``sweep_progress``;
    a run: 1, since its budget may be epochs or a stopping rule); and, for a
    sweep with finished units, the minutes the rest would take at its
    trials' pace so far (None without finished units)."""
    if self.command != 'sweep':
      return run_state(workdir), 1.0, None
    return sweep_progress(load_config(self.config), workdir)


def sweep_progress(config, workdir: str) -> tuple[str, float, float | None]:
  """Where the sweep of ``config`` in ``workdir`` stands, in words; the
  fraction of its trials left; and the minutes the rest would take on one
  worker at its trials' pace so far (None without finished units).

  The pace is the finished units' recorded wall time a trial, or a started
  unit's time a trial at its latest checkpoint where that is already more
  (a started unit is often the slow one: its trials have not stopped
  early, so the finished units alone would promise too little). The
  started units' minutes already spent come off the rest."""
  from orchestration import sweep
  from training import workdir as workdir_lib
  # as _start runs it (one worker), or as the sweep's first start laid it out
  try:
    units = sweep.layout(config, workdir, 1, write=False)
  except RunError as e:      # the sweep itself will refuse to run: say why here
    return f'cannot resume: {e}', 1.0, None
  trials = lambda us: sum(len(u.rows) or 1 for u in us)
  results = {u.name: sweep.finished(os.path.join(workdir, u.name)) for u in units}
  done = [u for u in units if results[u.name] is not None]
  seconds = [results[u.name].get('wall_time_s') for u in done]
  started = {u.name: workdir_lib.checkpoint_elapsed(os.path.join(workdir, u.name))
             for u in units if u not in done and _started(os.path.join(workdir, u.name))}
  spent = [u for u in units if started.get(u.name)]
  timed = done and all(isinstance(s, (int, float)) and s > 0 for s in seconds)
  per_trial = (max([sum(seconds) / trials(done)] + [started[u.name] / trials([u])
                                                      for u in spent]) / 60 if timed else None)
  words = [f'{trials(done)} of {trials(units)} trials done'
           + (f' ({per_trial:.0f} min a trial)' if per_trial is not None else '')]
  for name, elapsed in started.items():
    words.append(f'{name} {run_state(os.path.join(workdir, name), elapsed)}')
  rest = None if per_trial is None else (
      per_trial * (trials(units) - trials(done)) - sum(started[u.name] for u in spent) / 60)
  return '; '.join(words), 1.0 - trials(done) / trials(units), rest


def sweep_status(config, workdir: str) -> str:
  """``launch.py sweep --status``: where the sweep stands (``sweep_progress``)
  and its finished trials ranked on validation, as sweep.md will rank them
  all (a search that runs over sessions, seen between them); runs nothing."""
  from orchestration import sweep
  if not _started(workdir):
    return f'{workdir}: not started (the same command without --status starts it)'
  words, _, rest = sweep_progress(config, workdir)
  lines = [f'{workdir}: {words}']
  if rest is not None:
    lines.append(f"About {max(rest, 0):.0f} min of one worker left at its trials' pace so far.")
  if not words.startswith('cannot resume'):
    summary = sweep.summarize(config, workdir, sweep.layout(config, workdir, 1, write=False))
    if summary['trials']:
      lines += ['', sweep.markdown(summary).rstrip()]
  return '\n'.join(lines)


def _started(workdir: str) -> bool:
  return os.path.isdir(workdir) and any(entry not in (records.LOCK_FILE, 'log.txt')
                                        for entry in os.listdir(workdir))


def run_state(workdir: str, elapsed: float | None = None) -> str:
  """How an unfinished run would go on: from its latest checkpoint, or from
  step 0 when it left records but no checkpoint (the records are then
  trimmed and written again); or, while a process holds its lock, that it
  is running. ``elapsed``: the seconds its latest checkpoint had trained."""
  from training import workdir as workdir_lib
  steps = workdir_lib.checkpoint_steps(workdir)
  spent = f'{elapsed / 60:.0f} min in' if elapsed else ''
  if records.lock_holder(workdir) is not None:
    said = [f'latest checkpoint: step {steps[-1]:,}'] if steps else []
    said += [spent] if spent else []
    return 'running' + (f' ({", ".join(said)})' if said else '')
  if steps:
    return f'resumes at step {steps[-1]:,}' + (f' ({spent})' if spent else '')
  logged = [r.get('step', 0) for r in records.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))]
  if logged:
    return f'restarts from step 0 (records to step {max(logged):,}, no checkpoint)'
  return 'restarts from step 0 (no checkpoint)'


@dataclasses.dataclass(frozen=True)
class Target:
  key: str
  title: str
  jobs: tuple[Job, ...]
  figure: str = ''            # 'curves': a paper table and each run's learning curves;
                              # 'fig7': Fig. 7; 'fig7_more': Fig. 7 with longer runs of
                              # some points; 'solved': whether each member solved its task;
                              # 'ablation': the table of reporting/ablation.py
  labels: tuple[str, ...] = ()   # 'ablation': each job's row label (the first job: the reference)
  joins: tuple[str, ...] = ()    # other targets' runs (folders under the root) in this table


# Wall minutes measured here (one pinned core of the AMD EPYC VM, the other
# core busy) for jobs of the comprehensions below; the rest are not measured yet.
MEASURED_MINUTES = {
    # Fig. 7: smart tanh T = 50 from its record; T = 100 after solved members skipped
    # their steps (its record's 50.5 min include 26 min paused)
    'smart_tanh_T25': 7, 'smart_tanh_T50': 13, 'smart_tanh_T100': 25,
    # smart tanh T = 200 with the core shared three to five ways; basic tanh
    # T = 25 resumed at 4,000 (its record times the rest); the rest from their
    # records, on cores shared with two other runs
    'smart_tanh_T200': 158, 'basic_tanh_T25': 4, 'basic_tanh_T50': 15, 'basic_tanh_T100': 44,
    'basic_tanh_T200': 51, 'sigmoid_T25': 7, 'sigmoid_T50': 11, 'sigmoid_T100': 20,
    'sigmoid_T200': 57,
    # Bengio Table 1, JSB rows (16 trials each; sgd and c before stopped
    # members skipped their steps)
    'jsb_sgd': 16, 'jsb_c': 15, 'jsb_cl': 13, 'jsb_clr': 13, 'jsb_crm': 8,
    'nottingham_sgd': 197, 'nottingham_c': 118, 'nottingham_cl': 77, 'nottingham_clr': 88,
    'nottingham_crm': 57, 'jsb_nade-sgd': 43, 'jsb_nade-cr': 38, 'jsb_nade-crm': 42,
    'piano_sgd': 7, 'piano_c': 16, 'piano_cl': 18, 'piano_clr': 25, 'piano_crm': 18,
    'musedata_sgd': 122, 'musedata_c': 107, 'musedata_cl': 81, 'musedata_clr': 110,
    'musedata_crm': 64, 'nottingham_nade-sgd': 248,
    # Intel Xeon VM (the two Nottingham rows include about 4.5 min of SIGSTOP
    # pauses each)
    'nottingham_nade-cr': 195, 'nottingham_nade-crm': 156,
    'piano_nade-sgd': 22, 'piano_nade-cr': 36,
    # piano_nade-crm: its 200-unit group shared its core with two ablation runs for about 25 min
    'piano_nade-crm': 52, 'musedata_nade-sgd': 178,
    # AMD EPYC VM, over three sessions, two groups partly on a core shared with a third run
    'musedata_nade-cr': 535,
    # AMD EPYC VM, over three sessions, one pinned core (the other busy)
    'musedata_nade-crm': 397,
    # Bengio Table 2, PTB words (six one-member units; the last two side by side)
    'word_sgd-c': 488, 'word_sgd': 210,
    # half the units leaky: members 1-3 on the Intel Xeon VM before the class softmax's
    # vmap of one (2026-12-04), 4-6 on the AMD EPYC VM
    'word_sgd-cl': 381,
    # rectifiers (AMD EPYC VM): both lr 0.1 members diverged within a minute
    'word_sgd-clr': 135,
    # PTB characters (three one-member units; lr 0.5 and 0.1 blew up, then recovered under the halving)
    'char_sgd': 113,
    # clipped at 50: lr 0.5 over two sessions (resumed from its checkpoint)
    'char_sgd-c': 124,
    # half the units leaky; lr 0.1 over two sessions (resumed from its checkpoint),
    # the last member on the AMD EPYC VM. SGD+CLR: every rate of the grid diverged
    # within 500 updates (RESULTS.md), so its row ends at once
    'char_sgd-cl': 143, 'char_sgd-clr': 1,
    # the rectifier row with the cost averaged over the window (AMD EPYC VM; lr 0.01
    # over two sessions, resumed from its checkpoint, all 20 epochs)
    'char_sgd-clr_mean': 161,
    # the words' rectifier row with the mean cost: AMD EPYC VM (members 1-3), Intel
    # Xeon VM (4-6); the lr 0.001 members stopped by RNNLM's rule after 3 epochs
    'word_sgd-clr_mean': 161,
    # Bai et al., the modern recipe's JSB searches (16 trials each; the GRU's
    # first units before recurrent dropout took the hand-written backward pass)
    'jsb_gru': 38, 'jsb_lstm': 32,
    # the Nottingham searches: their units' records summed (two sessions, both VMs, pauses included)
    'nottingham_gru': 776, 'nottingham_lstm': 737,
    # the adding searches at T = 600 (16 trials, each a unit: their records summed, over
    # five sessions on the AMD EPYC VM, cores often shared with tests; the LSTM's last
    # four trials on a slower EPYC VM, 93-99 min each)
    'adding600_gru': 702, 'adding600_lstm': 1106,
}

# pascanu2013.fig7_more: some of Fig. 7's points again, one method's seeds alone
# with more updates: (initialisation, length, method, updates, (first seed,
# seeds), wall minutes measured here on one pinned core, the other busy). The
# T = 200 SGD-CR points ran as seeds 0-2 and 3-4 on the two cores (with tanh
# units another member count changes the floating-point order, so the split is
# part of what the records are).
FIG7_MORE = (
    ('sigmoid', 25, 'sgd-cr', 1_000_000, (0, 5), 11),
    ('sigmoid', 50, 'sgd-cr', 1_000_000, (0, 5), 51),
    # Intel Xeon VM, two sittings (resumed from their committed checkpoints)
    ('sigmoid', 100, 'sgd-cr', 2_000_000, (0, 3), 156),
    ('sigmoid', 100, 'sgd-cr', 2_000_000, (3, 2), 101),
    ('basic_tanh', 100, 'sgd-cr', 300_000, (0, 5), 8),
    ('smart_tanh', 200, 'sgd-cr', 500_000, (0, 3), 23),
    ('smart_tanh', 200, 'sgd-cr', 500_000, (3, 2), 15),
    # Intel Xeon VM (the rest: AMD EPYC VM)
    ('basic_tanh', 200, 'sgd-cr', 600_000, (0, 3), 36),
    ('basic_tanh', 200, 'sgd-cr', 600_000, (3, 2), 20),
    ('basic_tanh', 50, 'sgd-c', 300_000, (0, 5), 12),
    ('smart_tanh', 100, 'sgd-c', 250_000, (0, 5), 11),
    ('smart_tanh', 200, 'sgd-c', 250_000, (0, 5), 52),
    ('basic_tanh', 50, 'sgd', 300_000, (0, 5), 16),
    ('smart_tanh', 50, 'sgd', 300_000, (0, 5), 16),
)


def _fig7_more_job(init, length, method, steps, seeds, minutes) -> Job:
  """``smart_tanh_T200_sgdcr_500k`` (seeds from 0) or ``..._seeds34`` (seeds 3 and 4)."""
  first, count = seeds
  budget = f'{steps // 1_000_000}M' if steps % 1_000_000 == 0 else f'{steps // 1000}k'
  name = f'{init}_T{length}_{method.replace("-", "")}_{budget}'
  name += f'_seeds{"".join(str(i) for i in range(first, first + count))}' if first else ''
  args = f'seed={first},seeds={count}' if first else f'seeds={count}'
  return Job(name, f'experiments/temporal_order.py:method={method},init={init},length={length},'
                   f'{args},steps={steps}', minutes=minutes)


# pascanu2013.table1_tuned: the step chosen on validation. Each method's
# learning rate from the paper's and its halvings (clipping at the paper's 8)
# and, for the clipped methods, the clipping threshold from 0.5 / 1 / 2 (at
# the paper's rate), one population per method and seed; `launch.py table`
# reports, of all of a method's trials, the one with the lowest validation
# averaged over its seeds. (dataset, method, grid argument, seed, wall minutes
# of the record: Intel Xeon VM, one pinned core, the other busy; MuseData's
# seed-2 rate grids beside three other processes, SGD's seed 2 mostly beside
# a two-thread PTB run.) MuseData's SGD at seed 0 also ran 0.125.
TUNED_GRIDS = (
    tuple(('piano', m, 'lrs=0.25/0.5/1', s, t) for m, ts in (
        ('sgd', (5, 5, 5)), ('sgd-c', (4, 4, 4)), ('sgd-cr', (5, 5, 6))) for s, t in enumerate(ts))
    + tuple(('piano', m, 'clips=0.5/1/2', s, t) for m, ts in (
        ('sgd-c', (3, 3, 3)), ('sgd-cr', (4, 4, 4))) for s, t in enumerate(ts))
    + (('musedata', 'sgd', 'lrs=0.125/0.25/0.5', 0, 26), ('musedata', 'sgd', 'lrs=0.25/0.5', 1, 18),
       ('musedata', 'sgd', 'lrs=0.25/0.5', 2, 142))
    + tuple(('musedata', m, 'lrs=0.25/0.5', s, t) for m, ts in (
        ('sgd-c', (12, 12, 25)), ('sgd-cr', (15, 15, 34))) for s, t in enumerate(ts))
    + tuple(('musedata', m, 'clips=0.5/1/2', s, t) for m, ts in (
        ('sgd-c', (18, 19, 18)), ('sgd-cr', (24, 25, 24))) for s, t in enumerate(ts)))


def _tuned_job(dataset, method, grid, seed, minutes) -> Job:
  """``musedata_sgdc_clip_seed2``: MuseData, SGD+C, the threshold grid, seed 2."""
  knob = 'lr' if grid.startswith('lrs=') else 'clip'
  return Job(f'{dataset}_{method.replace("-", "")}_{knob}_seed{seed}',
             f'experiments/music.py:dataset={dataset},method={method},seed={seed},{grid}',
             minutes=minutes)


# bai2018.ablation: (job, what it adds to modern.py's arguments, row label, wall
# minutes of its record: results/bai2018_ablation/*/result.json's wall_time_s)
ABLATION = (
    ('full', '', 'the recipe (experiments/modern.py defaults)', 8),
    ('no_layer_norm', ',ln=0', 'no layer norm', 8),
    ('no_dropout', ',dropout=0', 'no recurrent dropout', 3),
    ('no_ff_dropout', ',ff_dropout=0', 'no dropout between layers', 2),
    ('no_learned_h0', ',h0=0', 'zero initial state, not learned', 4),
    ('no_gate_bias', ',gate_bias=0', 'forget-gate bias 0, not 1', 4),
    ('no_clipping', ',clip=0', 'no gradient clipping', 8),
    ('no_weight_decay', ',wd=0', 'Adam, no decoupled weight decay', 4),
    ('no_schedule', ',schedule=constant', 'constant learning rate, no warm-up or decay', 4),
    ('one_layer', ',layers=1', 'one layer at the budget, not two summed', 4),
    # two ingredients the recipe leaves out, added one at a time: does either pay?
    ('with_omega', ',omega=0.5', 'Omega added (weight 0.5, constant)', 9),
    ('growing_chunks', ',steps=9600,chunks=25@0/50@1200/100@2400',
     'window growing 25, 50, 100 frames (from updates 0, 1,200, 2,400)', 5),
)

TARGETS = {t.key: t for t in (
    Target('pascanu2013.table1',
           'Pascanu et al. (2013) Table 1: polyphonic music, SGD / SGD+C / SGD+CR',
           (Job('nottingham', 'experiments/music.py:dataset=nottingham,method=all,seeds=3',
                minutes=124),
            Job('piano', 'experiments/music.py:dataset=piano,method=all', minutes=26),
            # more seeds as separate runs (reporting/tables.py groups runs differing
            # only in the seed)
            Job('piano_seed1', 'experiments/music.py:dataset=piano,method=all,seed=1', minutes=13),
            Job('piano_seed2', 'experiments/music.py:dataset=piano,method=all,seed=2', minutes=8),
            Job('musedata', 'experiments/music.py:dataset=musedata,method=all', minutes=75),
            Job('musedata_seed1', 'experiments/music.py:dataset=musedata,method=all,seed=1',
                minutes=63),
            Job('musedata_seed2', 'experiments/music.py:dataset=musedata,method=all,seed=2',
                minutes=41)),
           figure='curves'),
    Target('pascanu2013.table1_tuned',
           'Pascanu et al. (2013) Table 1 with the step chosen on validation: Piano-midi.de and '
           "MuseData, each method's learning rate and clipping threshold from a grid, 3 seeds; "
           "Nottingham from pascanu2013.table1 (the paper's settings)",
           tuple(_tuned_job(*grid) for grid in TUNED_GRIDS),
           figure='curves', joins=('pascanu2013_table1/nottingham',)),
    Target('pascanu2013.table2',
           'Pascanu et al. (2013) Table 2: Penn Treebank characters, next and 5th ahead',
           # the RNNLM schedule (the default); the record is a branch from the
           # constant-rate run at epoch 11 (its config.json says so; RESULTS.md)
           # minutes: the records' wall times (next_rnnlm's includes the constant-rate
           # run's first 11 epochs, which its checkpoint carried)
           (Job('next_rnnlm', 'experiments/ptb_char.py:ahead=1,method=all', minutes=304),
            # SGD alone past the 20 epochs, until the RNNLM rule stops it: in
            # next_rnnlm its validation still gained 0.4% an epoch at epoch 20,
            # so its rate never halved (RESULTS.md)
            Job('next_sgd', 'experiments/ptb_char.py:ahead=1,method=sgd,schedule=rnnlm,epochs=60',
                minutes=74),
            Job('ahead5', 'experiments/ptb_char.py:ahead=5,method=all', minutes=168)),
           figure='curves'),
    Target('pascanu2013.fig7',
           'Pascanu et al. (2013) Fig. 7: temporal order, rate of success against length, '
           'three initialisations, SGD / SGD-C / SGD-CR x 5 seeds, 50,000 updates a member',
           tuple(Job(f'{init}_T{length}',
                     f'experiments/temporal_order_fig7.py:init={init},length={length}',
                     minutes=MEASURED_MINUTES.get(f'{init}_T{length}'))
                 for init in ('smart_tanh', 'basic_tanh', 'sigmoid')
                 for length in (25, 50, 100, 200)),
           figure='fig7'),
    Target('pascanu2013.fig7_more',
           'Pascanu et al. (2013) Fig. 7 with more updates: eleven of its points again, one '
           "method's 5 seeds alone at 5-40 times the figure's budget (needs pascanu2013.fig7's "
           'runs for the figure)',
           tuple(_fig7_more_job(*point) for point in FIG7_MORE),
           figure='fig7_more'),
    Target('pascanu2013.pathological',
           'Pascanu et al. (2013) sec. 4.1: temporal order at T = 200 (SGD-CR), one model '
           'on lengths 50-200, addition 50-200 with 4 seeds',
           (Job('temporal_order_T200', 'experiments/temporal_order.py:length=200', minutes=12),
            # at the authors' code's defaults: the supplementary's lr 0.001 and clip 6
            # stayed at chance for 767,500 updates here (RESULTS.md)
            # this job solved it at update 604,000 over three sittings (the last on the
            # Intel Xeon VM); 3 of 5 runs at these defaults solved it (at 84,000,
            # 156,000 and 604,000 updates), 2 not within 257,500-446,000 (RESULTS.md)
            Job('temporal_order_50_200', 'experiments/temporal_order.py:length=50,'
                'max_length=200,success=authors,setup=authors', minutes=57),
            # its record: three sessions, 96 updates/s alone, 30-86 on a shared core
            Job('addition_50_200', 'experiments/pathological.py:problem=addition,seeds=4,'
                'steps=1000000', minutes=330)),
           figure='solved'),
    Target('bengio2013.table1',
           'Bengio et al. (2013) Table 1: polyphonic music, RNN and RNN-NADE rows, each row '
           'a random search of 16 trials selected on validation',
           tuple(Job(f'{d}_{m}', f'experiments/music_bengio.py:dataset={d},method={m},trials=16',
                     command='sweep', minutes=MEASURED_MINUTES.get(f'{d}_{m}'))
                 for d in ('jsb', 'nottingham', 'piano', 'musedata')
                 for m in ('sgd', 'c', 'cl', 'clr', 'crm', 'nade-sgd', 'nade-cr', 'nade-crm')),
           figure='curves'),
    Target('bengio2013.table2',
           'Bengio et al. (2013) Table 2: Penn Treebank words and characters, the grid of '
           'sec. 4.2.1 per row',
           tuple(Job(f'{level}_{m}', f'experiments/ptb_bengio.py:level={level},method={m}',
                     command='sweep', minutes=MEASURED_MINUTES.get(f'{level}_{m}'))
                 for level in ('word', 'char') for m in ('sgd', 'sgd-c', 'sgd-cl', 'sgd-clr'))
           # the rectifier rows with the cost averaged over the window, rows of their
           # own: with the summed cost every rate of the paper's character grid
           # diverges, and the words' lr 0.1 (RESULTS.md)
           + tuple(Job(f'{level}_sgd-clr_mean',
                       f'experiments/ptb_bengio.py:level={level},method=sgd-clr,cost=mean',
                       command='sweep', minutes=MEASURED_MINUTES.get(f'{level}_sgd-clr_mean'))
                   for level in ('word', 'char')),
           figure='curves'),
    Target('bai2018',
           'Bai, Kolter, Koltun (2018) Table 1, recurrent rows: GRU and LSTM with the modern '
           'recipe (experiments/modern.py), each a random search selected on validation',
           tuple(Job(f'{d}_{cell}', f'experiments/modern.py:dataset={d},cell={cell}',
                     command='sweep', minutes=MEASURED_MINUTES.get(f'{d}_{cell}'))
                 for d in ('adding600', 'jsb', 'nottingham', 'ptb_char')
                 for cell in ('gru', 'lstm')),
           figure='curves'),
    Target('bai2018.ablation',
           'The modern recipe on JSB Chorales (LSTM, 300K parameters, 3 seeds a row): the full '
           'recipe, then each ingredient taken out, and two added',
           tuple(Job(name, f'experiments/modern.py:dataset=jsb,cell=lstm,seeds=3{args}',
                     minutes=minutes) for name, args, _, minutes in ABLATION),
           figure='ablation', labels=tuple(label for _, _, label, _ in ABLATION)),
)}


def _plan(jobs, workers: int) -> list[float]:
  """Longest-first assignment of the jobs' minutes to workers: each worker's total."""
  loads = [0.0] * workers
  for m in sorted((j.minutes or 0.0 for j in jobs), reverse=True):
    loads[loads.index(min(loads))] += m
  return loads


def default_workers() -> int:
  """One process per core on a CPU, one on an accelerator."""
  import jax
  if jax.default_backend() != 'cpu':
    return 1
  return max(1, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
             else os.cpu_count() or 1)


def describe(target: Target, root: str, workers: int) -> str:
  """What will run, how far each job got, and how long the rest took here."""
  lines = [f'{target.title}: {len(target.jobs)} job(s) in {root}, {workers} worker(s)']
  todo, resumes, elsewhere, rows = [], [], [], []
  for job in target.jobs:
    workdir = os.path.join(root, job.name)
    if job.finished(workdir):
      rows.append((job, job.verdict(workdir)))
      continue
    status = f'{job.minutes:.0f} min' if job.minutes is not None else 'not measured yet'
    minutes_left = job.minutes
    holder = records.lock_holder(workdir)
    if holder is not None:
      elsewhere.append(f'{job.name} (process {holder})')
      status = f'in process {holder}: {status}'
    if job.started(workdir):
      if holder is None:
        resumes.append(job.name)
      where, left, rest = job.progress(workdir)
      if job.minutes is not None and left < 1.0:
        minutes_left = job.minutes * left
        status = f'{job.minutes:.0f} min in all, about {minutes_left:.0f} left'
      elif rest is not None:        # a search not timed whole: timed by its own trials so far
        minutes_left = rest
        status = f'not measured whole, about {rest:.0f} min left at its trials\' pace so far'
      status += f', {where}'
    todo.append(dataclasses.replace(job, minutes=minutes_left))
    rows.append((job, status))
  width = max(len(job.name) for job in target.jobs)
  for job, status in rows:
    # the command as one would type it (README's form), with its folder
    command = 'launch.py sweep' if job.command == 'sweep' else 'launch.py'
    lines.append(f'  {job.name:<{width}} {command} --config={job.config} '
                 f'--workdir={os.path.join(root, job.name)}')
    lines.append(f'  {"":<{width}}   {status}')
  unknown = [j.name for j in todo if j.minutes is None]
  if len(unknown) < len(todo):
    lines.append(f'Expected: about {max(_plan(todo, workers)):.0f} min of wall time for the '
                 'measured jobs (one core each, measured on this project\'s 2-core VMs; a '
                 'resumed run needs less)')
  if unknown:
    lines.append(f'Not measured yet: {", ".join(unknown)}')
  if resumes:
    lines.append(f'Started by an earlier run: {", ".join(resumes)}')
  if elsewhere:
    lines.append(f'Running now in another process (left to it): {", ".join(elsewhere)}')
  return '\n'.join(lines)


def status(keys: list[str], root: str, workers: int | None = None) -> str:
  """``describe`` for each target (every target when ``keys`` is empty); runs nothing."""
  for key in keys:
    if key not in TARGETS:
      raise ValueError(f'unknown target {key!r}; one of: {", ".join(TARGETS)}')
  workers = workers or default_workers()
  return '\n\n'.join(describe(TARGETS[k], os.path.join(root, k.replace('.', '_')), workers)
                      for k in keys or TARGETS)


def _start(job: Job, workdir: str, core: int | None) -> subprocess.Popen:
  os.makedirs(workdir, exist_ok=True)
  cmd = [sys.executable, os.path.join(ROOT, 'launch.py')] + (
      ['sweep'] if job.command == 'sweep' else []) + [
      f'--config={job.config}', f'--workdir={workdir}']
  if job.command == 'sweep':
    cmd.append('--config.sweep.workers=1')     # the sweep runs in this job's process
  env = dict(os.environ)
  if core is not None:                         # one single-threaded process per core
    env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') + ' ' + SINGLE_THREAD).strip()
  with open(os.path.join(workdir, 'log.txt'), 'a') as log:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
  if core is not None:     # pinned from here (no preexec_fn: this process runs JAX's threads)
    os.sched_setaffinity(proc.pid, {core})
  return proc


def load_config(spec: str):
  """The config of ``experiments/FILE.py[:ARGS]``, as ``--config=`` loads it."""
  path, _, arg = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('experiment', os.path.join(ROOT, path))
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def run_on_engine(target: Target, folder: str, options, sweep_flags: list[str]) -> list[str]:
  """The jobs on Ray or Slurm (``orchestration/executors.py``; ``options``: a config's
  ``sweep`` fields): training jobs as parts of one batch, then each sweep,
  whose own parts go to the same engine. Returns the names that failed."""
  from orchestration import executors
  todo = [j for j in target.jobs if not j.finished(os.path.join(folder, j.name))]
  parts = [executors.Part(j.name, json.dumps(load_config(j.config).to_dict()),
                          os.path.abspath(os.path.join(folder, j.name)))
           for j in todo if j.command == 'train']
  failed = []
  if parts:
    env = {'XLA_FLAGS': SINGLE_THREAD} if options.cpus_per_part == 1 else {}
    failed += list(executors.REGISTRY[options.executor](parts, options, folder, env))
  for job in (j for j in todo if j.command == 'sweep'):
    workdir = os.path.join(folder, job.name)
    os.makedirs(workdir, exist_ok=True)
    code = subprocess.call([sys.executable, os.path.join(ROOT, 'launch.py'), 'sweep',
                            f'--config={job.config}', f'--workdir={workdir}'] + sweep_flags,
                           cwd=ROOT)
    if code:
      failed.append(job.name)
  return failed


def run(key: str, root: str, workers: int | None = None, options=None,
        sweep_flags: list[str] = ()) -> str:
  """Runs (or resumes) every job of target ``key`` under ``root/<key>``; then
  prints the table and draws the figures. Returns the table's Markdown.

  ``options`` (a config's ``sweep`` fields) with ``executor`` 'ray' or
  'slurm' sends the jobs there (``run_on_engine``; ``sweep_flags`` are the
  command-line flags that choose the engine for the sweep jobs); otherwise
  they run on this host.
  """
  if key not in TARGETS:
    raise ValueError(f'unknown target {key!r}; one of: {", ".join(TARGETS)}')
  target = TARGETS[key]
  folder = os.path.join(root, key.replace('.', '_'))
  if target.figure == 'ablation':    # marks the folder: launch.py table prints it as one
    from reporting import ablation
    ablation.write_marker(folder, target.title, list(zip([j.name for j in target.jobs],
                                                         target.labels)), target.jobs[0].name)
  if options is not None and options.executor != 'local':
    print(describe(target, folder, 1).split('Expected')[0].rstrip(), flush=True)
    print(f'On {options.executor}: the jobs run where the engine puts them.', flush=True)
    return _finish(target, folder, run_on_engine(target, folder, options, list(sweep_flags)))
  workers = workers or default_workers()
  print(describe(target, folder, workers), flush=True)
  cores = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else []
  # a job another process is running (its workdir's lock held) is left to it
  queue = [j for j in target.jobs if not j.finished(os.path.join(folder, j.name))
           and records.lock_holder(os.path.join(folder, j.name)) is None]
  queue.sort(key=lambda j: -(j.minutes or 0.0))      # longest first
  _check_data(key, queue)
  free, running, failed = list(range(workers)), {}, []
  t0 = time.time()
  # `kill PID` (SIGTERM) stops the jobs as Ctrl-C does: a command started in
  # the background (`nohup ... &`) ignores SIGINT, so TERM is how it is stopped.
  previous = (signal.signal(signal.SIGTERM, _raise_interrupt)
              if threading.current_thread() is threading.main_thread() else None)
  try:
    while queue or running:
      while queue and free:
        job, slot = queue.pop(0), free.pop(0)
        core = cores[slot % len(cores)] if cores and workers > 1 else None
        running[_start(job, os.path.join(folder, job.name), core)] = (job, slot, time.time())
        print(f'  {job.name}: started{f" on core {core}" if core is not None else ""}; '
              f'log in {os.path.join(folder, job.name, "log.txt")}', flush=True)
      time.sleep(1.0)
      for proc in [p for p in running if p.poll() is not None]:
        job, slot, started = running.pop(proc)
        free.append(slot)
        # a job signalled as it ended exits non-zero with its result written: done
        ok = not proc.returncode or job.finished(os.path.join(folder, job.name))
        if not ok:
          failed.append(job.name)
        print(f'  {job.name}: {"done" if ok else f"FAILED (exit {proc.returncode})"}'
              f' after {(time.time() - started) / 60:.1f} min (its own time; '
              f'{(time.time() - t0) / 60:.1f} min since this command started)', flush=True)
        if not ok:        # why, as its log ends (a missing corpus, a config error)
          print(f'    {_last_line(os.path.join(folder, job.name, "log.txt"))}', flush=True)
  except KeyboardInterrupt:
    for proc in running:
      proc.terminate()        # each run stops after its chunk and saves a checkpoint
    for proc in running:
      try:
        proc.wait(timeout=600)
      except subprocess.TimeoutExpired:
        proc.kill()
    names = ', '.join(job.name for job, _, _ in running.values())
    raise RunError(f'{key}: interrupted; ' + (f'{names} saved a checkpoint; ' if names else '')
                   + 'rerun the same command to resume') from None
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
  return _finish(target, folder, failed)


def _check_data(key: str, jobs: list[Job]) -> None:
  """Refuses, before any job starts, jobs whose data files are missing (each
  would fail on its own after compiling, a plan of them one after another)."""
  import tasks
  missing: dict[str, list[str]] = {}
  for job in jobs:
    why = tasks.missing_data(load_config(job.config))
    if why:
      missing.setdefault(why, []).append(job.name)
  if missing:
    raise RunError(f'{key}: nothing started; ' + '; '.join(
        f'{len(names)} job(s) ({", ".join(names[:3])}{", ..." if len(names) > 3 else ""}): {why}'
        for why, names in missing.items()))


def _last_line(path: str) -> str:
  """The last non-empty line of a job's log (where its one-line error is)."""
  try:
    with open(path, errors='replace') as f:
      lines = [line.strip() for line in f.read()[-4000:].splitlines() if line.strip()]
  except OSError:
    return f'(no log at {path})'
  return lines[-1] if lines else f'(its log {path} is empty)'


def _raise_interrupt(signum, frame):
  raise KeyboardInterrupt


def _finish(target: Target, folder: str, failed: list[str]) -> str:
  """The table and the figures of whatever has finished."""
  if failed:
    print(f'Failed: {", ".join(failed)} (each one\'s error above, the whole output in its log.txt); '
          'rerun the command, once fixed, to resume them.')
  os.makedirs(folder, exist_ok=True)
  text = ''
  if target.figure == 'curves':      # a paper table: printed beside the paper's numbers
    from reporting import tables
    joined = [os.path.join(os.path.dirname(folder), j) for j in target.joins]
    missing = [j for j in joined if not os.path.isdir(j)]
    if missing:
      print(f'Not in this table, not run here yet: {", ".join(missing)} (its own target runs it)')
    text = tables.main([folder] + [j for j in joined if os.path.isdir(j)])
  finished = [j for j in target.jobs if j.finished(os.path.join(folder, j.name))]
  if target.figure == 'ablation':
    from reporting import ablation
    from reporting.figures import ablation as ablation_figure
    text = ablation.main(folder)
    print(text)
    if any(j.name == target.jobs[0].name for j in finished):    # the reference row
      print(ablation_figure.draw(folder))
  if target.figure == 'fig7' and finished:
    from reporting.figures import fig7
    fig7.main(['fig7', folder])
  if target.figure == 'fig7_more' and finished:   # beside the figure's own runs
    from reporting.figures import fig7
    table = fig7.collect(os.path.join(os.path.dirname(folder), 'pascanu2013_fig7'))
    if table:
      text = fig7.draw_more(table, [os.path.join(folder, j.name) for j in finished], folder)
    else:
      print('pascanu2013.fig7 has no finished runs here: run it for the figure to compare with')
  if target.figure == 'solved':        # the pathological tasks: solved or not, and when
    for job in target.jobs:
      path = os.path.join(folder, job.name, 'result.json')
      if os.path.exists(path):
        with open(path) as f:
          result = json.load(f)
        for m in result['members']:
          print(f'  {job.name} {m["hparams"]}: {"solved" if m["solved"] else "not solved"}'
                f' at step {m["solved_at_step"] or result["step"]}, test error '
                f'{100 * m["test_error"]:.2f}%')
  if any(j.command == 'sweep' for j in target.jobs):    # the searches' trials, one figure
    from reporting.figures import search
    try:
      print(search.draw(folder))
    except FileNotFoundError:          # no search has finished yet
      pass
  if target.figure in ('curves', 'solved'):
    from reporting.figures import curves
    for job in target.jobs:
      workdir = os.path.join(folder, job.name)
      if os.path.exists(os.path.join(workdir, 'metrics.jsonl')):
        print(curves.plot_run(workdir))
  return text


def listing() -> str:
  width = max(len(key) for key in TARGETS)
  return '\n'.join(['Targets (python launch.py reproduce TARGET):'] + [
      f'  {t.key:<{width}} {t.title}' for t in TARGETS.values()])
