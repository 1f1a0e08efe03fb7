#!/usr/bin/env bash
# LJSpeech 1.1 recipe (single speaker, about 24 h).
#
#   stage 0: read metadata.csv, validate audio headers, write $dump/manifest.jsonl
#   stage 1: extract log-mel/F0/energy to $dump/features/ and write $dump/splits/*.jsonl
#   stage 2: train conf/train_gpu.yaml (resumable)
#   stage 3: training report (curves, alignment, mels)
#
# Usage: ./run.sh [--stage N] [--stop_stage N] [--corpus_dir DIR] [--dump DIR] [--nj N] [--prepare_opts STR]
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=1
corpus_dir=downloads/LJSpeech-1.1   # holds metadata.csv and wavs/
dump=dump                            # everything this recipe writes
nj=2                                 # feature-extraction processes
prepare_opts=""                      # extra prepare_corpus.py options, e.g. "--group-by text"
train_config=conf/train_gpu.yaml
exp=exp/train_gpu
python=${PYTHON:-python}

while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) name=${1%%=*}; value=${1#*=}; shift ;;
    --*) name=$1; value=${2:?"$1 needs a value"}; shift 2 ;;
    *) echo "$0: unexpected argument $1" >&2; exit 1 ;;
  esac
  case "${name#--}" in
    stage|stop_stage|corpus_dir|dump|nj|prepare_opts|train_config|exp) declare "${name#--}=$value" ;;
    *) echo "$0: unknown option $name" >&2; exit 1 ;;
  esac
done

prepare() { "$python" ../../recipes/prepare_corpus.py --corpus ljspeech --root "$corpus_dir" --out "$dump" \
  --num-workers "$nj" $prepare_opts "$@"; }  # prepare_opts unquoted on purpose: several options

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "stage 0: manifest"
  prepare --stages manifest
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "stage 1: features and splits"
  prepare --stages features,splits
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "stage 2: training (resumes from the latest checkpoint in $exp)"
  "$python" -m prosody_vae.cli train --config "$train_config" --out "$exp" --resume --set "data.root=$dump"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "stage 3: training report"
  "$python" ../../recipes/training_report.py --exp "$exp" --out "$exp/report" --prefix ljspeech
fi
