#!/usr/bin/env python
"""Synthesise the built-in espeak-ng corpus with known prosody labels.

Thin wrapper over :func:`prosody_vae.data.espeak.build_corpus`. Settings come from ``--config`` (a YAML
file such as ``egs/espeak_prosody/conf/corpus.yaml``) and/or the flags; a flag given on the command
line wins over the file.

    python recipes/make_espeak_corpus.py --out data/espeak_prosody/corpus --n 1200 --num-workers 2
    python recipes/make_espeak_corpus.py --out data/espeak_multivoice/corpus \
        --config egs/espeak_prosody/conf/corpus_multivoice.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from prosody_vae.data.espeak import EspeakError, build_corpus
from prosody_vae.data.espeak.intonation import INTONATIONS

# YAML key -> build_corpus keyword and the type its value must have; the same names as the flags
# (with '_' for '-').
_TYPES: dict[str, type | tuple[type, ...]] = {
    "n_utterances": int,
    "seed": int,
    "multi_speaker": bool,
    "num_workers": int,
    "held_out_fraction": (int, float),
    "voices": list,
    "held_out_voices": list,
    "intonation": str,
}
_KEYS = tuple(_TYPES)


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
    for key, value in data.items():
        # YAML reads `true` as a bool, which is also an int: only multi_speaker may be one.
        wrong_bool = isinstance(value, bool) and _TYPES[key] is not bool
        if wrong_bool or not isinstance(value, _TYPES[key]):
            raise ValueError(f"{path}: {key} must be of type {_type_name(_TYPES[key])}, got {value!r}")
    return data


def _type_name(expected: type | tuple[type, ...]) -> str:
    return " or ".join(kind.__name__ for kind in (expected if isinstance(expected, tuple) else (expected,)))


def _voice_names(text: str) -> list[str]:
    """A comma-separated list of voices from the command line."""
    return [name.strip() for name in text.split(",") if name.strip()]


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
    parser.add_argument(
        "--voices",
        type=_voice_names,
        default=None,
        help="training voices, comma-separated, e.g. en-us,en-us+f4 (en-us; overrides --multi-speaker)",
    )
    parser.add_argument(
        "--held-out-voices",
        type=_voice_names,
        default=None,
        help="voices kept out of training entirely, comma-separated (none)",
    )
    parser.add_argument(
        "--intonation",
        choices=INTONATIONS,
        default=None,
        help="tune: espeak-ng's own, range-scaled (the default corpus); contour: stylised per-word contour",
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
