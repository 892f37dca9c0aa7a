#!/bin/bash
# Idle A/B of XLA:CPU's YNNPACK fusions (jaxlib 0.10), two threads, two variants (default: single dots through YNNPACK; off)
# three passes; JSON lines to ${OUT:-/tmp}/ynn_ab.jsonl (one "variant" key added).
cd "$(dirname "$0")/.."
W=torder_tanh_h50,music_sigmoid_h300,music_tanh_h300_fused,charlm_lstm_h512,charlm_gru_h512,music_sigmoid_h300_b1,ptb_sigmoid_h500_b1
for pass in 1 2 3; do
for v in default off; do
  case $v in
    default) F='';;
    off) F='--xla_cpu_experimental_ynn_fusion_type=';;
  esac
  XLA_FLAGS="$F" .venv/bin/python launch.py bench --workloads=$W --rounds=3 2>>${OUT:-/tmp}/ynn_ab.err \
    | grep '^{' | sed "s/^{/{\"variant\": \"$v\", \"pass\": $pass, /" >> ${OUT:-/tmp}/ynn_ab.jsonl
done
done
