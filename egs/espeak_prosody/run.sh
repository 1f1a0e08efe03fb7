#!/usr/bin/env bash
# The built-in espeak-ng corpus with known prosody: synthesise it (stage 0, local/data.sh), then the
# shared stages of egs/TEMPLATE/tts.sh: features and splits (1), training (2), report (3), packing (4).
#
#   egs/espeak_prosody/run.sh                         # stages 0-4
#   egs/espeak_prosody/run.sh --stage 1 --stop_stage 1
#   egs/espeak_prosody/run.sh --help                  # every stage and option
#   egs/espeak_prosody/run.sh --stage 1 --stop_stage 1 --f0 none   # features without F0
#
# Stage 0 keeps the reference F0 track it measures the labels on (<data>/corpus/f0/), and stage 1's
# default tracker (--f0 harvest) takes those tracks instead of running Harvest again; --f0 none leaves
# F0 out (enough for train_cpu.yaml, not for the pitch configs).
# Stages 0 and 1 leave a marker in <data>/.done/ and are skipped when it exists; delete it to redo one.
# The shipped model (prosody_vae/assets/espeak_prosody.pt) is stages 0-4 with --max_steps 2461.
# shellcheck disable=SC2154  # the options are assigned by option() in parse_options.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." # paths are relative to the repository root, wherever it is called from
# shellcheck source=../TEMPLATE/parse_options.sh
. egs/TEMPLATE/parse_options.sh

recipe=egs/espeak_prosody/run.sh
option data data/espeak_prosody "holds corpus/ (stage 0), prepared/ (stage 1) and the stage markers .done/"
option config egs/espeak_prosody/conf/corpus.yaml "corpus settings of stage 0"
option num_workers "" "processes of stages 0-1 (empty: stage 0 takes them from --config, stage 1 uses 2)"
parse_options --pass "$@" # the shared options are left for tts.sh
require_int --empty-ok num_workers
[[ $data$config != *[[:space:]]* ]] || usage_error "--data and --config must not contain spaces"

shared=(
  --recipe "$recipe"
  --stop_stage 4
  --local_data egs/espeak_prosody/local/data.sh
  --local_data_opts "--out $data/corpus --config $config${num_workers:+ --num-workers $num_workers}"
  --corpus manifest
  --corpus_dir "$data/corpus/manifest.jsonl"
  --dump "$data/prepared"
  --done_dir "$data/.done"
  --nj "${num_workers:-2}"
  # held_out_texts.txt lists the text of every held-out utterance (held-out sentences and the held-out
  # prosody corner; training texts are distinct), so all of them go to the test split
  --prepare_opts "--held-out-texts $data/corpus/held_out_texts.txt --group-by text"
  --train_config egs/espeak_prosody/conf/train_cpu.yaml
  # one thread: this compact model's steps are 2-3x faster on one than on two (docs/benchmarks.md)
  --train_opts "--threads 1"
  --exp exp/espeak_cpu
)
if ((help_requested)); then
  bash egs/TEMPLATE/tts.sh "${shared[@]}" "${passed_options[@]}" --help
  echo
  print_options "options of this recipe"
  exit 0
fi
exec bash egs/TEMPLATE/tts.sh "${shared[@]}" "${passed_options[@]}"
