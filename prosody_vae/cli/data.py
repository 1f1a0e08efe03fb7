"""Data subcommands: ``make-corpus``, ``prepare`` and ``demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from prosody_vae.cli._registry import command


def _make_corpus_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("data/espeak_prosody/corpus"))
    p.add_argument("--n", type=int, default=1200, help="number of utterances")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--multi-speaker", action="store_true", help="draw an espeak-ng voice variant per utterance"
    )
    p.add_argument("--num-workers", type=int, default=2)


@command(
    "make-corpus",
    help="synthesise the built-in espeak-ng corpus with known prosody labels",
    arguments=_make_corpus_arguments,
)
def make_corpus(args: argparse.Namespace) -> int:
    from prosody_vae.corpus.espeak import build_corpus

    manifest = build_corpus(
        args.out,
        n_utterances=args.n,
        seed=args.seed,
        multi_speaker=args.multi_speaker,
        num_workers=args.num_workers,
    )
    print(f"corpus manifest: {manifest}")
    return 0


def _prepare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corpus",
        required=True,
        choices=["ljspeech", "vctk", "kaldi", "filelist", "blizzard2013", "manifest"],
    )
    p.add_argument("--root", required=True, type=Path, help="corpus folder, or a manifest/filelist path")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--num-workers", type=int, default=2)


@command(
    "prepare",
    help="read a corpus, validate it, extract features and write splits",
    arguments=_prepare_arguments,
)
def prepare(args: argparse.Namespace) -> int:
    from prosody_vae.data import prepare_corpus

    prepare_corpus(corpus=args.corpus, root=args.root, out=args.out, num_workers=args.num_workers)
    return 0


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("demo_out"))
    p.add_argument("--n", type=int, default=300, help="utterances to synthesise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=2)


@command(
    "demo",
    help="the built-in demo: corpus with known prosody, features, label check",
    arguments=_demo_arguments,
)
def demo(args: argparse.Namespace) -> int:
    from prosody_vae.demo import run_demo

    run_demo(args.out, n_utterances=args.n, seed=args.seed, num_workers=args.num_workers)
    return 0
