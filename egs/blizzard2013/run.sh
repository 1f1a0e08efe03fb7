#!/usr/bin/env bash
# Blizzard Challenge 2013 recipe (Lessac audiobooks, segmented release): the stages of
# egs/TEMPLATE/tts.sh with this corpus's defaults. `./run.sh --help` lists the stages and options;
# README.md has the data layout and commands.
set -euo pipefail
cd "$(dirname "$0")" # paths are relative to this folder

exec bash ../TEMPLATE/tts.sh \
  --recipe egs/blizzard2013/run.sh \
  --stop_stage 1 \
  --corpus blizzard2013 \
  --corpus_dir downloads/BC2013_segmented \
  --dump dump \
  --train_config conf/train_gpu.yaml \
  --exp exp/train_gpu \
  --report_prefix blizzard2013 \
  "$@"
