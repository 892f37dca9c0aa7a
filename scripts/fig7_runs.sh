#!/usr/bin/env bash
# The grid behind Fig. 7: one population run per (initialisation, length).
# Usage: scripts/fig7_runs.sh OUTDIR STEPS "LENGTHS" ["INITS"]
# Rerunning resumes unfinished runs and skips finished ones.
set -u
out=${1:-runs/fig7}; steps=${2:-50000}; lengths=${3:-"25 50 100 200"}
inits=${4:-"smart_tanh basic_tanh sigmoid"}
py=${PYTHON:-python}
mkdir -p "$out"
for init in $inits; do        # one panel at a time
  for length in $lengths; do
    name=${init}_T${length}
    [ -f "$out/$name/result.json" ] && { echo "done: $name"; continue; }
    echo "=== $name"
    "$py" launch.py --config="experiments/temporal_order_fig7.py:init=$init,length=$length,steps=$steps" \
      --workdir="$out/$name" > "$out/$name.log" 2>&1
    tail -1 "$out/$name.log"
  done
done
