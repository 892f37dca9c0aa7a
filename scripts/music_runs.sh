#!/usr/bin/env bash
# Pascanu et al. Table 1 runs: on each dataset, SGD, SGD-C and SGD-CR as one
# population (experiments/music.py method=all), one dataset after the other;
# with CELLS="rnn lstm gru", also the companion rows (same techniques, gated cell).
# Usage: scripts/music_runs.sh OUTDIR EPOCHS "DATASETS" ["CELLS"]   (needs the corpora: RNNOPT_DATA)
# Rerunning resumes unfinished runs and skips finished ones; then
#   python launch.py table --workdir=OUTDIR
set -u
out=${1:-runs/music}; epochs=${2:-60}; datasets=${3:-"nottingham piano musedata"}
cells=${4:-rnn}
py=${PYTHON:-python}
mkdir -p "$out"
for dataset in $datasets; do
  for cell in $cells; do
    name=${dataset}_all; [ "$cell" = rnn ] || name=${dataset}_${cell}_all
    [ -f "$out/$name/result.json" ] && { echo "done: $name"; continue; }
    echo "=== $name"
    "$py" launch.py --config="experiments/music.py:dataset=$dataset,method=all,epochs=$epochs,cell=$cell" \
      --workdir="$out/$name" > "$out/$name.log" 2>&1
    tail -4 "$out/$name.log"
  done
done
