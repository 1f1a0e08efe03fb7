#!/usr/bin/env bash
# Our own HiFi-GAN vocoder for the built-in corpus (docs/vocoder.md, "Training our own vocoder"):
# train it on the recorded mels, fine-tune it on an acoustic model's teacher-forced mels, and score
# both against WORLD by copy synthesis.
#
#   egs/espeak_prosody/run_vocoder.sh                          # stages 1-3
#   egs/espeak_prosody/run_vocoder.sh --stage 2 --stop_stage 2 # fine-tuning only
#   egs/espeak_prosody/run_vocoder.sh --help                   # every stage and option
#
# Needs stages 0-1 of run.sh (the corpus and its features). Training resumes from the latest
# checkpoint of its folder, so running a stage again continues it.
# shellcheck disable=SC2154  # the options are assigned by option() in parse_options.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." # paths are relative to the repository root
# shellcheck source=../TEMPLATE/parse_options.sh
. egs/TEMPLATE/parse_options.sh

recipe=egs/espeak_prosody/run_vocoder.sh
option stage 1 "first stage to run"
option stop_stage 3 "last stage to run"
option data data/espeak_prosody/prepared "the prepared corpus (run.sh stage 1)"
option config egs/espeak_prosody/conf/vocoder_cpu.yaml "vocoder config of stages 1 and 2"
option exp exp/espeak_vocoder "stage 1's run folder; stage 2 writes <exp>_ft, stage 3 <exp>/eval"
option acoustic prosody_vae/assets/espeak_prosody.pt "acoustic checkpoint or packed model whose teacher-forced mels stage 2 uses"
option max_steps "" "stop stage 1 at this step and resume later (empty: the config's train.steps)"
option ft_steps 5000 "steps of stage 2 (counted from 0: it is a new run)"
option threads 1 "torch CPU threads (one is fastest on a 2-core machine)"
option n_refs 30 "held-out references of stage 3"

usage() {
  cat << EOF
usage: $recipe [--option VALUE ...]

stages, from --stage to --stop_stage (here $stage to $stop_stage):
  1  train     prosody-vae train-vocoder --config $config --out $exp --resume
  2  finetune  from stage 1's last generator, on the teacher-forced mels of $acoustic -> ${exp}_ft
  3  evaluate  copy synthesis of $n_refs test references: WORLD and both generators -> $exp/eval
EOF
}

parse_options "$@"
require_int stage stop_stage ft_steps threads n_refs
require_int --empty-ok max_steps

python="${PYTHON:-.venv/bin/python}"
[[ -x "$python" ]] || python=python3
log() { echo "$(date '+%H:%M:%S') [$recipe] $*"; }
runs() { ((stage <= $1 && stop_stage >= $1)); }
last_generator() { # FOLDER: its exported generator of the highest step, or nothing
  find "$1" -maxdepth 1 -name 'g_[0-9]*' -type f 2> /dev/null | sort | tail -n 1
}

if runs 1; then
  log "stage 1: training the vocoder with $config into $exp (resumes from its latest checkpoint)"
  "$python" -m prosody_vae.cli train-vocoder --config "$config" --out "$exp" --resume \
    --set "data.root=$data" --threads "$threads" ${max_steps:+--max-steps "$max_steps"}
fi

if runs 2; then
  start=$(last_generator "$exp")
  [[ -n $start ]] || { echo "$recipe: stage 2: no generator in $exp; run stage 1 first" >&2; exit 1; }
  log "stage 2: fine-tuning $start on the teacher-forced mels of $acoustic into ${exp}_ft"
  "$python" -m prosody_vae.cli train-vocoder --config "$config" --out "${exp}_ft" --resume \
    --teacher-forced-from "$acoustic" --set "train.init_from=$start" --set "train.steps=$ft_steps" \
    --set "data.root=$data" --threads "$threads"
fi

if runs 3; then
  vocoders=(world)
  for folder in "$exp" "${exp}_ft"; do
    generator=$(last_generator "$folder")
    if [[ -n $generator ]]; then vocoders+=("$generator"); fi
  done
  log "stage 3: copy synthesis with ${vocoders[*]} into $exp/eval"
  "$python" recipes/vocoder_eval.py --corpus "$data" --out "$exp/eval" --vocoders "${vocoders[@]}" \
    --n "$n_refs" --threads "$threads"
fi
