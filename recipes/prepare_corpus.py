#!/usr/bin/env python
"""Prepare a corpus: read, validate, write the manifest, extract features, write splits.

A thin front end over :func:`prosody_vae.data.prepare_corpus`; every stage is idempotent (a
``.done/<stage>`` marker in ``--out``), and feature extraction resumes where it stopped.

Examples::

    python recipes/prepare_corpus.py --corpus ljspeech --root /data/LJSpeech-1.1 --out dump/ljspeech
    python recipes/prepare_corpus.py --corpus vctk --root /data/VCTK-Corpus-0.92 --out dump/vctk \
        --group-by speaker --num-workers 8
    python recipes/prepare_corpus.py --corpus manifest --root corpus/manifest.jsonl --out dump/mine \
        --stages features,splits
    python recipes/prepare_corpus.py --corpus manifest --root corpus/manifest.jsonl --out dump/fast \
        --f0 none      # no F0 in the cache: only for models without backbone.pitch and reference_pitch
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prosody_vae.audio import AudioConfig
from prosody_vae.data.feature_cache import F0_TRACKERS
from prosody_vae.data.prepare import CORPORA, STAGES, prepare_corpus, prepared_f0_tracker, read_audio_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, choices=CORPORA, help="corpus layout of --root")
    parser.add_argument("--root", required=True, type=Path, help="corpus folder (or manifest/filelist file)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--num-workers", type=int, default=2, help="feature-extraction processes")
    parser.add_argument("--audio-config", type=Path, help="YAML with AudioConfig fields (default: built-in)")
    parser.add_argument(
        "--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rerun stages already marked done; if --out was prepared from different input, delete "
        "its manifest, features and splits first",
    )
    parser.add_argument(
        "--tokenizer",
        choices=("phonemes", "characters"),
        default="phonemes",
        help="the experiments' text.tokenizer: transcripts it cannot read are dropped and reported",
    )
    parser.add_argument("--min-duration", type=float, default=0.5, help="seconds; shorter files are dropped")
    parser.add_argument("--max-duration", type=float, default=20.0, help="seconds; longer files are dropped")
    parser.add_argument("--valid-fraction", type=float, default=0.02)
    parser.add_argument("--test-fraction", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument(
        "--group-by", choices=("id", "text", "speaker"), default="id", help="keep these groups in one split"
    )
    parser.add_argument("--held-out-texts", type=Path, help="file with one text per line, forced into test")
    parser.add_argument("--mic", default="mic1", choices=("mic1", "mic2"), help="VCTK microphone")
    parser.add_argument(
        "--f0",
        choices=F0_TRACKERS,
        default=None,
        help="F0 track of the feature cache: harvest (the labels' and metrics' track; a manifest "
        "corpus's stored tracks, f0/ beside it, are reused), harvest-decimated (about 1.7x as fast), "
        "none (no F0: fast, but no model with backbone.pitch or prosody.reference_pitch can train on "
        "it). Default: the tracker --out was prepared with, else harvest",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = read_audio_config(args.audio_config) if args.audio_config else AudioConfig()
    held_out: list[str] = []
    if args.held_out_texts:
        held_out = [line.strip() for line in args.held_out_texts.read_text(encoding="utf-8").splitlines()]
        held_out = [text for text in held_out if text]
    prepare_corpus(
        args.corpus,
        args.root,
        args.out,
        config=config,
        num_workers=args.num_workers,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        group_by=args.group_by,
        held_out_texts=held_out,
        mic=args.mic,
        stages=[stage.strip() for stage in args.stages.split(",") if stage.strip()],
        force=args.force,
        tokenizer=args.tokenizer,
        f0_tracker=args.f0 or prepared_f0_tracker(args.out) or "harvest",
        progress=not args.no_progress,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
