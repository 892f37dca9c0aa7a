#!/usr/bin/env bash
# The grid behind Fig. 7: one population run (3 methods x 5 seeds) per
# (initialisation, length).
# Usage: scripts/fig7_runs.sh OUTDIR STEPS "LENGTHS" ["INITS"] [SUCCESS]
#   SUCCESS: paper (default: fewer than 1% wrong of 10,000 fresh sequences)
#            or authors (0 wrong, the authors' code); use one OUTDIR per
#            criterion: reporting/figures/fig7.py refuses to mix them and names the
#            criterion in the figure's title.
# Rerunning resumes unfinished runs and skips finished ones.
#
# Expected time: ESTIMATES, not measured full runs. Measured (commit
# 8f690fe, 2026-12-01): user CPU seconds of a run of 1,500 updates minus one
# of 500 (same evaluation), one core (taskset -c 1, XLA_FLAGS
# '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'),
# while other jobs loaded both cores (load 5-10; wall time was 2-2.5x the
# CPU time):
#   15 members (Fig. 7 population), T=200: 59.5 ms an update (17 updates/s)
#   15 members, T=25:                        5.2 ms an update (190 updates/s)
#   1 member, temporal order 50-200:         2.1 ms an update (470 updates/s)
#   4 members, addition 50-200 (P=220):     11.8 ms an update (85 updates/s)
# Interpolated linearly in T (T=50: ~13 ms, T=100: ~29 ms), 50,000 updates
# per run: T=25 ~4 min, T=50 ~11 min, T=100 ~24 min, T=200 ~50 min; one
# panel (init) ~1.5 h; the whole grid (3 inits x 4 lengths, 5 seeds x 3
# methods) ~4.5 h of one free core with validation (10,000 sequences every
# 2,000 updates, a few % more), ~2.3 h on both cores, ~10 h on one core
# shared as above. The paper's 5M-update budget is 100 times that.
# For the other runs of issue 10 (same measurement):
#   temporal order 50-200, one model, 336k updates (the authors' log):
#     ~12 min of updates + a few min of validation;
#     launch.py --config=experiments/temporal_order.py:length=50,max_length=200,steps=336000,success=authors
#   addition 50-200, 4 seeds as one population, to 1M updates: ~3.3 h of
#     updates + up to ~15 min of validation;
#     launch.py --config=experiments/pathological.py:problem=addition,seeds=4,steps=1000000
set -u
out=${1:-runs/fig7}; steps=${2:-50000}; lengths=${3:-"25 50 100 200"}
inits=${4:-"smart_tanh basic_tanh sigmoid"}; success=${5:-paper}
py=${PYTHON:-python}
mkdir -p "$out"
for init in $inits; do        # one panel at a time
  for length in $lengths; do
    name=${init}_T${length}
    [ -f "$out/$name/result.json" ] && { echo "done: $name"; continue; }
    echo "=== $name"
    "$py" launch.py --config="experiments/temporal_order_fig7.py:init=$init,length=$length,steps=$steps,success=$success" \
      --workdir="$out/$name" > "$out/$name.log" 2>&1
    tail -1 "$out/$name.log"
  done
done
