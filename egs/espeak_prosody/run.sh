#!/usr/bin/env bash
# Built-in espeak-ng corpus with known prosody: synthesise it, prepare features and splits, train.
#
#   egs/espeak_prosody/run.sh                         # stages 0-3: data, features, training, report
#   egs/espeak_prosody/run.sh --stage 1 --stop_stage 1
#
# Stages (each leaves a marker in $data/.done and is skipped when it exists; delete it to redo):
#   0  synthesise the corpus with espeak-ng      -> $data/corpus/{wavs/,manifest.jsonl,corpus.json}
#   1  validate, extract features, write splits  -> $data/prepared/ (held-out utterances -> test)
#   2  train (resumable)                        -> $exp/{checkpoints/,tensorboard/,log.jsonl}
#   3  training report                          -> $exp/report/*.png and a Markdown summary
#   4  pack the last checkpoint for synthesis   -> $exp/model.pt (fp16, what the package ships)
#
# The shipped model (prosody_vae/assets/espeak_prosody.pt) is stages 0-4 with --max_steps 2461;
# try it with: .venv/bin/prosody-vae demo --model exp/espeak_cpu/model.pt
set -euo pipefail

stage=0
stop_stage=4
data=data/espeak_prosody          # relative to the repository root; data/ is git-ignored
config=egs/espeak_prosody/conf/corpus.yaml
num_workers=                      # empty: stage 0 takes it from $config, stage 1 uses 2
train_config=egs/espeak_prosody/conf/train_cpu.yaml
exp=exp/espeak_cpu                # experiment folder (checkpoints, logs)
max_steps=                        # empty: train to the config's train.steps

usage() {
  echo "usage: $0 [--stage N] [--stop_stage N] [--data DIR] [--config YAML] [--num_workers N]" >&2
  echo "          [--train_config YAML] [--exp DIR] [--max_steps N]" >&2
  exit 1
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop_stage) stop_stage="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --num_workers) num_workers="$2"; shift 2 ;;
    --train_config) train_config="$2"; shift 2 ;;
    --exp) exp="$2"; shift 2 ;;
    --max_steps) max_steps="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done

# Paths above are relative to the repository root, wherever the script is called from.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [[ -n "${PYTHON:-}" ]]; then
  python="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
  python=.venv/bin/python
else
  python=python3
fi
mkdir -p "$data/.done"
log() { echo "$(date '+%H:%M:%S') [run.sh] $*"; }

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  if [[ -f "$data/.done/corpus" ]]; then
    log "stage 0: corpus already built ($data/.done/corpus); skipping"
  else
    log "stage 0: synthesising the espeak-ng corpus into $data/corpus"
    extra=()
    [[ -n "$num_workers" ]] && extra+=(--num-workers "$num_workers")
    "$python" recipes/make_espeak_corpus.py --out "$data/corpus" --config "$config" "${extra[@]}"
    touch "$data/.done/corpus"
  fi
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  if [[ -f "$data/.done/prepare" ]]; then
    log "stage 1: already prepared ($data/.done/prepare); skipping"
  else
    log "stage 1: validating, extracting features and splitting into $data/prepared"
    # held_out_texts.txt lists the text of every held-out utterance (held-out sentences and the
    # held-out prosody corner; training texts are distinct), so all of them go to the test split.
    "$python" recipes/prepare_corpus.py --corpus manifest --root "$data/corpus/manifest.jsonl" \
      --out "$data/prepared" --held-out-texts "$data/corpus/held_out_texts.txt" --group-by text \
      --num-workers "${num_workers:-2}"
    touch "$data/.done/prepare"
  fi
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  # Training resumes from the latest checkpoint in $exp when there is one, so this stage can be
  # interrupted (Ctrl-C writes a checkpoint) and run again to continue.
  log "stage 2: training with $train_config into $exp"
  "$python" -m prosody_vae.cli train --config "$train_config" --out "$exp" --resume ${max_steps:+--max-steps "$max_steps"}
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
  log "stage 3: training report (KL/beta curves, validation curves, alignment, mels) into $exp/report"
  "$python" recipes/training_report.py --exp "$exp" --out "$exp/report" --prefix "$(basename "$exp")"
fi

if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
  last=$(ls "$exp"/checkpoints/step_*.pt | sed 's/.*step_\([0-9]*\)\.pt/\1 &/' | sort -n | tail -1 | cut -d' ' -f2)
  log "stage 4: packing $last into $exp/model.pt"
  "$python" recipes/package_model.py --checkpoint "$last" --exp "$exp" --out "$exp/model.pt" \
    --note "train=egs/espeak_prosody/run.sh --train_config $train_config --exp $exp ${max_steps:+--max_steps $max_steps}"
fi
