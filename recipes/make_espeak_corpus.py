#!/usr/bin/env python
"""Synthesise the built-in espeak-ng corpus with known prosody labels.

Thin wrapper over :func:`prosody_vae.data.espeak.build_corpus`. Settings come from ``--config`` (a YAML
file such as ``egs/espeak_prosody/conf/corpus.yaml``) and/or the flags; a flag given on the command
line wins over the file.

    python recipes/make_espeak_corpus.py --out data/espeak_prosody/corpus --n 1200 --num-workers 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from prosody_vae.data.espeak import EspeakError, build_corpus

# YAML key -> build_corpus keyword; the same names as the flags (with '_' for '-').
_KEYS = ("n_utterances", "seed", "multi_speaker", "num_workers", "held_out_fraction")


def _read_config(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot read corpus config ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of {list(_KEYS)}")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {list(_KEYS)}")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (wavs/, manifest.jsonl, corpus.json)"
    )
    parser.add_argument("--config", type=Path, default=None, help="YAML with any of: " + ", ".join(_KEYS))
    parser.add_argument(
        "--n", dest="n_utterances", type=int, default=None, help="number of utterances (1200)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of sentences and factor draws (0)")
    parser.add_argument(
        "--multi-speaker",
        action="store_true",
        default=None,
        help="draw an espeak-ng voice variant per utterance",
    )
    parser.add_argument("--num-workers", type=int, default=None, help="worker processes (2)")
    parser.add_argument(
        "--held-out-fraction",
        type=float,
        default=None,
        help="share of utterances on held-out sentences (0.05)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        settings = _read_config(args.config) if args.config is not None else {}
        settings.update({key: getattr(args, key) for key in _KEYS if getattr(args, key) is not None})
        manifest = build_corpus(args.out, progress=not args.no_progress, **settings)
    except (ValueError, EspeakError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"corpus manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
