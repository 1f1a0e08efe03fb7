"""``prosody-vae``: a thin command-line front end over the library.

Each subcommand parses its arguments, calls one library function, and prints a short result. User
errors (bad files, bad options) print one line ``error: ...`` and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]):
        _COMMANDS[name] = fn
        return fn

    return register


def _threads(args: argparse.Namespace) -> None:
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


@_command("make-corpus")
def _make_corpus(args: argparse.Namespace) -> int:
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


@_command("prepare")
def _prepare(args: argparse.Namespace) -> int:
    from prosody_vae.data import prepare_corpus

    prepare_corpus(corpus=args.corpus, root=args.root, out=args.out, num_workers=args.num_workers)
    return 0


@_command("train")
def _train(args: argparse.Namespace) -> int:
    from prosody_vae.config import load_config
    from prosody_vae.training.loop import train

    _threads(args)
    config = load_config(args.config, overrides=args.set)
    result = train(config, args.out, resume=args.resume, device=args.device, max_steps=args.max_steps)
    state = "interrupted" if result.interrupted else "stopped"
    print(f"{state} at step {result.step}; checkpoint {result.checkpoint}")
    return 0


@_command("demo")
def _demo(args: argparse.Namespace) -> int:
    from prosody_vae.demo import run_demo

    run_demo(args.out, n_utterances=args.n, seed=args.seed, num_workers=args.num_workers)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prosody-vae", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "make-corpus", help="synthesise the built-in espeak-ng corpus with known prosody labels"
    )
    p.add_argument("--out", type=Path, default=Path("data/espeak_prosody/corpus"))
    p.add_argument("--n", type=int, default=1200, help="number of utterances")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--multi-speaker", action="store_true", help="draw an espeak-ng voice variant per utterance"
    )
    p.add_argument("--num-workers", type=int, default=2)

    p = sub.add_parser("prepare", help="read a corpus, validate it, extract features and write splits")
    p.add_argument(
        "--corpus",
        required=True,
        choices=["ljspeech", "vctk", "kaldi", "filelist", "blizzard2013", "manifest"],
    )
    p.add_argument("--root", required=True, type=Path, help="corpus folder, or a manifest/filelist path")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--num-workers", type=int, default=2)

    p = sub.add_parser("train", help="train (or resume) a model from a YAML config")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="experiment folder")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--max-steps", type=int, default=None, help="stop at this step (resume later)")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p = sub.add_parser("demo", help="the built-in demo: corpus with known prosody, features, label check")
    p.add_argument("--out", type=Path, default=Path("demo_out"))
    p.add_argument("--n", type=int, default=300, help="utterances to synthesise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=2)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get("PROSODY_VAE_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
