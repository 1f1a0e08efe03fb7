#!/usr/bin/env bash
# Capacity sweep and prior comparison on the built-in corpus, same budget for every run.
#
#   egs/espeak_prosody/run_sweep.sh                      # train every run, then evaluate them all
#   egs/espeak_prosody/run_sweep.sh --stage 2            # evaluation only
#   egs/espeak_prosody/run_sweep.sh --runs "C2 C10 C50"  # a subset
#   egs/espeak_prosody/run_sweep.sh --help               # every stage and option
#
# Needs stages 0-1 of run.sh (the corpus and its features). Each run is the CPU recipe
# (conf/train_cpu.yaml) with one change, trained for --steps steps:
#   C2, C10, C50   capacity C = 2, 10, 50 nats, standard N(0, I) prior
#   C10_acn        C = 10 with the associative (ACN) prior
# shellcheck disable=SC2154  # the options are assigned by option() in parse_options.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." # paths are relative to the repository root
# shellcheck source=../TEMPLATE/parse_options.sh
. egs/TEMPLATE/parse_options.sh

recipe=egs/espeak_prosody/run_sweep.sh
option stage 1 "first stage to run"
option stop_stage 2 "last stage to run"
option exp exp/sweep "one folder per run, and report/"
option steps 2000 "training steps of every run"
option runs "C2 C10 C50 C10_acn" "the runs, separated by spaces"
option n_refs 30 "held-out references per condition"
option threads 2 "torch threads of each process"

usage() {
  cat << EOF
usage: $recipe [--option VALUE ...]

stages, from --stage to --stop_stage (here $stage to $stop_stage):
  1  train     each of --runs, resumable: an interrupted run continues from its last checkpoint; a run
               that has $exp/<run>/checkpoints/step_$steps.pt is skipped (a larger --steps continues it)
  2  evaluate  same-text and inter-text transfer, prior samples on held-out references, model
               diagnostics and the IWAE bound -> $exp/report/ (sweep.md, sweep.json, figures)
EOF
}

# The one setting each run changes, as --set overrides of conf/train_cpu.yaml.
overrides() {
  case "$1" in
    C2) echo "capacity.capacity=2" ;;
    C10) echo "capacity.capacity=10" ;;
    C50) echo "capacity.capacity=50" ;;
    C10_acn) echo "capacity.capacity=10 prosody.prior=associative" ;;
    *) return 1 ;;
  esac
}

parse_options "$@"
require_int stage stop_stage steps n_refs threads
for run in $runs; do
  overrides "$run" > /dev/null || usage_error "--runs: unknown run $run (known: C2 C10 C50 C10_acn)"
done

python="${PYTHON:-.venv/bin/python}"
[[ -x "$python" ]] || python=python3
log() { echo "$(date '+%H:%M:%S') [run_sweep.sh] $*"; }

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  for run in $runs; do
    out="$exp/$run"
    if [[ -f "$out/checkpoints/step_$steps.pt" ]]; then
      log "stage 1: $run already trained to step $steps; skipping"
      continue
    fi
    sets=(--set "train.steps=$steps")
    for kv in $(overrides "$run"); do sets+=(--set "$kv"); done
    # --resume continues the run in $out, or starts it when there is no checkpoint yet (a folder that
    # holds a run without --resume or --force is refused)
    resume=(--resume)
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
