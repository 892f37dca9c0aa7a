#!/usr/bin/env bash
# Pascanu et al. Table 1 runs: every method on each dataset, one after the other.
# Usage: scripts/music_runs.sh OUTDIR EPOCHS "DATASETS"   (needs the corpora: RNNOPT_DATA)
# Rerunning resumes unfinished runs and skips finished ones.
set -u
out=${1:-runs/music}; epochs=${2:-60}; datasets=${3:-"nottingham piano musedata"}
py=${PYTHON:-python}
mkdir -p "$out"
for dataset in $datasets; do
  for method in sgd-cr sgd-c sgd; do
    name=${dataset}_${method//-/}
    [ -f "$out/$name/result.json" ] && { echo "done: $name"; continue; }
    echo "=== $name"
    "$py" launch.py --config="experiments/music.py:dataset=$dataset,method=$method,epochs=$epochs" \
      --workdir="$out/$name" > "$out/$name.log" 2>&1
    tail -1 "$out/$name.log"
  done
done
