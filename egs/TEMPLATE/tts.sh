#!/usr/bin/env bash
# The stages every corpus recipe shares, after ESPnet's egs2/TEMPLATE/tts1/tts.sh. A recipe's run.sh
# passes its defaults and then the user's arguments (a later option wins):
#
#   exec bash ../TEMPLATE/tts.sh --recipe egs/ljspeech/run.sh --corpus ljspeech \
#       --corpus_dir downloads/LJSpeech-1.1 --train_config conf/train_gpu.yaml "$@"
#
# A corpus without a recipe can start from a filelist (path|text per line):
#
#   egs/TEMPLATE/tts.sh --corpus filelist --corpus_dir my.txt --train_config my.yaml --exp exp/mine
#
# `--help` lists the stages and every option. Paths are relative to the folder it runs in (a recipe's
# run.sh chooses it). PYTHON picks the interpreter (default: the repository's .venv when present).
# Stages 0-1 are idempotent through recipes/prepare_corpus.py's markers in <dump>/.done/, and
# feature extraction resumes where it stopped; training resumes from the latest checkpoint.
# shellcheck disable=SC2154  # the options are assigned by option() in parse_options.sh
set -euo pipefail

template=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$(dirname "$template")")
# shellcheck source=parse_options.sh
. "$template/parse_options.sh"

option recipe egs/TEMPLATE/tts.sh "the calling recipe, named in messages and in the packed model's provenance"
option stage 0 "first stage to run"
option stop_stage 4 "last stage to run"
option corpus "" "reader of recipes/prepare_corpus.py: ljspeech, vctk, blizzard2013, kaldi, filelist, manifest"
option corpus_dir "" "what the reader reads: the corpus folder, a filelist or a manifest"
option local_data "" "a script that builds the corpus in stage 0 (run with bash), read in stage 1"
option local_data_opts "" "arguments of --local_data (split on spaces)"
option dump dump "prepared data: manifest.jsonl, features/, splits/, and .done/ markers"
option nj 2 "feature-extraction processes"
option f0 "" "F0 track of the feature cache: harvest, harvest-decimated or none (empty: the one <dump> was prepared with, else harvest)"
option prepare_opts "" "more recipes/prepare_corpus.py options, e.g. \"--group-by text\" (split on spaces)"
option done_dir "" "if set, stages 0-1 leave markers corpus and prepare here and skip a marked stage"
option train_config "" "experiment config of stage 2"
option exp exp/train "experiment folder: checkpoints/, tensorboard/, log.jsonl, report/, model.pt"
option max_steps "" "stop training at this step and resume later (empty: the config's train.steps)"
option train_opts "" "more prosody-vae train options, e.g. \"--threads 2 --set optim.lr=1e-3\" (split on spaces)"
option report_prefix "" "file-name prefix of the report (empty: the name of --exp)"

usage() {
  local corpus_step="read the ${corpus:-<--corpus>} corpus in ${corpus_dir:-<--corpus_dir>}, validate audio headers"
  corpus_step+=" -> $dump/manifest.jsonl"
  if [[ -n $local_data ]]; then corpus_step="build the corpus: bash $local_data $local_data_opts"; fi
  cat << EOF
usage: $recipe [--option VALUE ...]    (the stages of egs/TEMPLATE/tts.sh)

stages, from --stage to --stop_stage (here $stage to $stop_stage):
  0  corpus    $corpus_step
  1  features  log-mel, F0${f0:+ (--f0 $f0)} and energy -> $dump/features/ (resumable); train/valid/test -> $dump/splits/
  2  train     prosody-vae train --config ${train_config:-<--train_config>} --out $exp --resume (run again to continue)
  3  report    KL and beta against C, validation curves, alignments, mels -> $exp/report/
  4  pack      the last checkpoint, fp16, for synthesis -> $exp/model.pt
EOF
}

parse_options "$@"
require_int stage stop_stage nj
require_int --empty-ok max_steps

runs() { ((stage <= $1 && stop_stage >= $1)); }
if { runs 0 && [[ -z $local_data ]]; } || runs 1; then
  [[ -n $corpus && -n $corpus_dir ]] || usage_error "stages 0-1 need --corpus and --corpus_dir"
fi
if runs 2; then
  [[ -n $train_config ]] || usage_error "stage 2 needs --train_config"
fi

if [[ -n ${PYTHON:-} ]]; then
  python=$PYTHON
elif [[ -x $repo/.venv/bin/python ]]; then
  python=$repo/.venv/bin/python
else
  python=python3
fi
export PYTHON=$python # for --local_data scripts

log() { echo "$(date '+%H:%M:%S') [$recipe] $*"; }
marked() { [[ -n $done_dir && -f $done_dir/$1 ]]; }
mark() { if [[ -n $done_dir ]]; then mkdir -p "$done_dir" && touch "$done_dir/$1"; fi; }
prepare() { # STAGES
  # shellcheck disable=SC2086  # prepare_opts holds several options
  # --f0 goes to every stage: the tracker is part of what <dump> records it was prepared from
  "$python" "$repo/recipes/prepare_corpus.py" --corpus "$corpus" --root "$corpus_dir" --out "$dump" \
    --num-workers "$nj" ${f0:+--f0 "$f0"} $prepare_opts --stages "$1"
}

if runs 0; then
  if marked corpus; then
    log "stage 0: corpus already built ($done_dir/corpus); skipping"
  elif [[ -n $local_data ]]; then
    log "stage 0: building the corpus with $local_data"
    # shellcheck disable=SC2086  # local_data_opts holds several arguments
    bash "$local_data" $local_data_opts
    mark corpus
  else
    log "stage 0: reading the $corpus corpus in $corpus_dir into $dump/manifest.jsonl"
    prepare manifest
    mark corpus
  fi
fi

if runs 1; then
  if marked prepare; then
    log "stage 1: already prepared ($done_dir/prepare); skipping"
  else
    stages=features,splits
    # a corpus that stage 0 built (--local_data) rather than read is read here
    if [[ ! -f $dump/.done/manifest ]]; then stages=manifest,$stages; fi
    log "stage 1: $stages into $dump"
    prepare "$stages"
    mark prepare
  fi
fi

if runs 2; then
  log "stage 2: training with $train_config into $exp (resumes from its latest checkpoint)"
  # shellcheck disable=SC2086  # train_opts holds several options
  "$python" -m prosody_vae.cli train --config "$train_config" --out "$exp" --resume --set "data.root=$dump" \
    ${max_steps:+--max-steps "$max_steps"} $train_opts
fi

if runs 3; then
  log "stage 3: training report into $exp/report"
  "$python" "$repo/recipes/training_report.py" --exp "$exp" --out "$exp/report" \
    --prefix "${report_prefix:-$(basename "$exp")}"
fi

if runs 4; then
  last="" last_step=-1
  for path in "$exp"/checkpoints/step_*.pt; do
    step=${path##*/step_}
    step=${step%.pt}
    if [[ $step =~ ^[0-9]+$ ]] && ((step > last_step)); then last=$path last_step=$step; fi
  done
  if [[ -z $last ]]; then
    echo "$recipe: stage 4: no checkpoint in $exp/checkpoints; run stage 2 first" >&2
    exit 1
  fi
  log "stage 4: packing $last into $exp/model.pt"
  "$python" "$repo/recipes/package_model.py" --checkpoint "$last" --exp "$exp" --out "$exp/model.pt" \
    --note "train=$recipe --train_config $train_config --exp $exp${max_steps:+ --max_steps $max_steps}${train_opts:+ --train_opts \"$train_opts\"}"
fi
