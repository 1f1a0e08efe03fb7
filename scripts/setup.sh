#!/usr/bin/env bash
# Set up prosody_vae on a fresh Debian/Ubuntu machine: espeak-ng (system package) and a
# virtual environment in .venv with the package and its dev extras. Safe to run again: it
# reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v espeak-ng >/dev/null 2>&1; then
    echo "[setup] installing espeak-ng (Debian package)" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q espeak-ng >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q espeak-ng >/dev/null; }
fi

# jemalloc: the training commands' memory allocator (prosody_vae/training/allocator.py); optional
if ! ldconfig -p 2>/dev/null | grep libjemalloc.so.2 >/dev/null; then
    echo "[setup] installing jemalloc (Debian package libjemalloc2)" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q libjemalloc2 >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q libjemalloc2 >/dev/null; } \
        || echo "[setup] jemalloc not installed: training uses the C library's allocator" >&2
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    for candidate in python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
    done
fi
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $PYTHON" >&2
    "$PYTHON" -m venv .venv
fi

stamp=".venv/.setup-stamp"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing prosody_vae and its dependencies (torch is large: a few minutes)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, torchaudio; print(f"torch {torch.__version__}, torchaudio {torchaudio.__version__}")')" >&2
