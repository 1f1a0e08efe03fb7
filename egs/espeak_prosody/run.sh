#!/usr/bin/env bash
# Built-in espeak-ng corpus with known prosody: synthesise it, prepare features and splits, train.
#
#   egs/espeak_prosody/run.sh                         # stages 0-1
#   egs/espeak_prosody/run.sh --stage 1 --stop_stage 1
#
# Stages (each leaves a marker in $data/.done and is skipped when it exists; delete it to redo):
#   0  synthesise the corpus with espeak-ng      -> $data/corpus/{wavs/,manifest.jsonl,corpus.json}
#   1  validate, extract features, write splits  -> $data/prepared/ (held-out utterances -> test)
#   2+ training: not here yet (see the end of this file)
set -euo pipefail

stage=0
stop_stage=1
data=data/espeak_prosody          # relative to the repository root; data/ is git-ignored
config=egs/espeak_prosody/conf/corpus.yaml
num_workers=                      # empty: stage 0 takes it from $config, stage 1 uses 2

usage() {
  echo "usage: $0 [--stage N] [--stop_stage N] [--data DIR] [--config YAML] [--num_workers N]" >&2
  exit 1
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop_stage) stop_stage="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --num_workers) num_workers="$2"; shift 2 ;;
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

# Stage 2 and later (training, transfer evaluation against the known labels) are added together
# with the training recipe; this recipe stops after data preparation until then.
if [[ $stop_stage -ge 2 ]]; then
  log "stages 2+ (training) are not part of this recipe yet; stopped after stage 1"
fi
