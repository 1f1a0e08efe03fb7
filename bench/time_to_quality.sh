#!/usr/bin/env bash
# time to quality: run a recipe until its validation postnet L1 reaches the first release's 8947, or a time limit
# usage: bench/time_to_quality.sh OUT THREADS LIMIT_S   (then: python3 bench/ttq_curve.py OUT OUT.csv LIMIT_S beside it)
cd "$(dirname "$0")/.."  # paths are relative to the repository root
set -u
out=$1; threads=$2; limit=$3
start=$(date +%s)
OMP_NUM_THREADS=$threads .venv/bin/prosody-vae train --config egs/espeak_prosody/conf/train_cpu.yaml --out $out --threads $threads -q > $out.train.log 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null; do
  sleep 10
  now=$(date +%s)
  if python3 -c "
import json,sys
try:
    rs=[json.loads(l) for l in open('$out/log.jsonl') if 'valid/postnet_l1' in l]
except FileNotFoundError: sys.exit(1)
sys.exit(0 if rs and rs[-1]['valid/postnet_l1'] <= 8947 else 1)"; then echo "reached at $((now-start)) s"; kill -TERM $pid; break; fi
  if [ $((now-start)) -ge $limit ]; then echo "limit at $((now-start)) s"; kill -TERM $pid; break; fi
done
wait $pid
echo "done $(date)"
