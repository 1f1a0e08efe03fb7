#!/usr/bin/env bash
# VCTK 0.92 recipe (110 speakers, 48 kHz FLAC resampled to the AudioConfig rate): the stages of
# egs/TEMPLATE/tts.sh with this corpus's defaults. `./run.sh --help` lists the stages and options;
# README.md has the data layout and commands (--prepare_opts "--mic mic2" for the second microphone).
set -euo pipefail
cd "$(dirname "$0")" # paths are relative to this folder

exec bash ../TEMPLATE/tts.sh \
  --recipe egs/vctk/run.sh \
  --stop_stage 1 \
  --corpus vctk \
  --corpus_dir downloads/VCTK-Corpus-0.92 \
  --dump dump \
  --train_config conf/train_gpu.yaml \
  --exp exp/train_gpu \
  --report_prefix vctk \
  "$@"
