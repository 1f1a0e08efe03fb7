#!/usr/bin/env bash
# Capacity sweep and prior comparison on the built-in corpus, same budget for every run.
#
#   egs/espeak_prosody/run_sweep.sh                      # train every run, then evaluate them all
#   egs/espeak_prosody/run_sweep.sh --stage 2            # evaluation only
#   egs/espeak_prosody/run_sweep.sh --runs "C2 C10 C50"  # a subset
#
# Needs stages 0-1 of run.sh (the corpus and its features). Each run is the CPU recipe
# (conf/train_cpu.yaml) with one change, trained for $steps steps:
#   C2, C10, C50   capacity C = 2, 10, 50 nats, standard N(0, I) prior
#   C10_acn        C = 10 with the associative (ACN) prior
# Stages:
#   1  train (resumable: an interrupted run continues from its last checkpoint; a run that has
#      $exp/<run>/checkpoints/step_$steps.pt is skipped, so a larger --steps continues every run)
#   2  evaluate: same-text transfer, inter-text transfer and prior samples on held-out references,
#      model diagnostics and the IWAE bound -> $exp/report/ (sweep.md, sweep.json, figures)
set -euo pipefail

stage=1
stop_stage=2
exp=exp/sweep
steps=2000
runs="C2 C10 C50 C10_acn"
n_refs=30                          # held-out references per condition
threads=2

usage() {
  echo "usage: $0 [--stage N] [--stop_stage N] [--exp DIR] [--steps N] [--runs \"C2 C10 ...\"]" >&2
  echo "          [--n_refs N] [--threads N]" >&2
  exit 1
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop_stage) stop_stage="$2"; shift 2 ;;
    --exp) exp="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --n_refs) n_refs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python="${PYTHON:-.venv/bin/python}"
[[ -x "$python" ]] || python=python3
log() { echo "$(date '+%H:%M:%S') [run_sweep.sh] $*"; }

# The one setting each run changes, as --set overrides of conf/train_cpu.yaml.
overrides() {
  case "$1" in
    C2) echo "capacity.capacity=2" ;;
    C10) echo "capacity.capacity=10" ;;
    C50) echo "capacity.capacity=50" ;;
    C10_acn) echo "capacity.capacity=10 prosody.prior=associative" ;;
    *) echo "unknown run: $1 (known: C2 C10 C50 C10_acn)" >&2; exit 1 ;;
  esac
}

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  for run in $runs; do
    out="$exp/$run"
    if [[ -f "$out/checkpoints/step_$steps.pt" ]]; then
      log "stage 1: $run already trained to step $steps; skipping"
      continue
    fi
    sets=(--set "train.steps=$steps")
    for kv in $(overrides "$run"); do sets+=(--set "$kv"); done
    resume=()
    compgen -G "$out/checkpoints/step_*.pt" > /dev/null && resume=(--resume)
    log "stage 1: training $run (${sets[*]}) ${resume[*]}"
    "$python" -m prosody_vae.cli train --config egs/espeak_prosody/conf/train_cpu.yaml --out "$out" \
      --threads "$threads" "${sets[@]}" "${resume[@]}"
  done
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  checkpoints=()
  for run in $runs; do checkpoints+=("$run=$exp/$run/checkpoints/step_$steps.pt"); done
  log "stage 2: evaluating ${checkpoints[*]}"
  "$python" recipes/capacity_sweep.py --out "$exp/report" --n "$n_refs" --threads "$threads" "${checkpoints[@]}"
fi
