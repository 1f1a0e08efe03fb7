#!/usr/bin/env bash
# LJSpeech 1.1 recipe (single speaker, about 24 h): the stages of egs/TEMPLATE/tts.sh with this corpus's
# defaults. `./run.sh --help` lists the stages and options; README.md has the data layout and commands.
set -euo pipefail
cd "$(dirname "$0")" # paths are relative to this folder

exec bash ../TEMPLATE/tts.sh \
  --recipe egs/ljspeech/run.sh \
  --stop_stage 1 \
  --corpus ljspeech \
  --corpus_dir downloads/LJSpeech-1.1 \
  --dump dump \
  --train_config conf/train_gpu.yaml \
  --exp exp/train_gpu \
  --report_prefix ljspeech \
  "$@"
