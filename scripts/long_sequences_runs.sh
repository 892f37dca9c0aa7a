#!/usr/bin/env bash
# The long-sequence study (Muccino 2019) of RESULTS.md, reduced: 3 optimisers x
# whole series / chunk-length schedule, each run a population of clip off / on.
# Usage: scripts/long_sequences_runs.sh [OUTDIR] [ARGS]   (ARGS default: length=1000,epochs=200)
# Rerunning skips finished runs and resumes unfinished ones; then
#   python -m reporting.figures.long_sequences OUTDIR
set -u
out=${1:-runs/long_sequences}; args=${2:-length=1000,epochs=200}
py=${PYTHON:-python}
mkdir -p "$out"
for opt in sgd rmsprop adam; do
  for sched in "" ",schedule"; do
    name=$opt; [ -n "$sched" ] && name=${opt}_sched
    [ -f "$out/$name/result.json" ] && { echo "done: $name"; continue; }
    echo "=== $name"
    "$py" launch.py --config="experiments/long_sequences.py:optimizer=$opt,$args$sched" \
      --workdir="$out/$name" > "$out/$name.log" 2>&1
    tail -2 "$out/$name.log"
  done
done
