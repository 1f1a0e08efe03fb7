#!/usr/bin/env bash
# Stage 0 of egs/espeak_prosody (egs/TEMPLATE/tts.sh --local_data): synthesise the built-in corpus with
# espeak-ng. The arguments are those of recipes/make_espeak_corpus.py (--out, --config, --num-workers);
# an interrupted build continues where it stopped. PYTHON is set by tts.sh.
set -euo pipefail
"${PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/../../../recipes/make_espeak_corpus.py" "$@"
