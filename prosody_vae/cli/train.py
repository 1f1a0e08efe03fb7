"""``prosody-vae train``: train or resume a model from a YAML config.

A new run needs an ``--out`` that holds no run: ``--resume`` continues the run there, ``--force``
moves its files to ``<out>.old-<N>/``. Ctrl-C and SIGTERM write a checkpoint, then exit with 130 and 143.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prosody_vae.cli._registry import command, set_threads


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="experiment YAML (see egs/*/conf/)")
    p.add_argument("--out", required=True, type=Path, help="experiment folder")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    mode.add_argument(
        "--force",
        action="store_true",
        help="start a new run although --out holds one: the old run's files are moved to <out>.old-<N>/",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--max-steps", type=int, default=None, help="stop at this step (resume later)")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


@command("train", help="train (or resume) a model from a YAML config", arguments=_arguments)
def train(args: argparse.Namespace) -> int:
    from prosody_vae.config import load_config
    from prosody_vae.training.loop import train as run_training

    set_threads(args)
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, got {args.max_steps}")
    config = load_config(args.config, overrides=args.set)
    result = run_training(
        config,
        args.out,
        resume=args.resume,
        force=args.force,
        device=args.device,
        max_steps=args.max_steps,
        progress=not args.quiet,  # the bar also hides itself when stderr is not a terminal
    )
    state = "interrupted" if result.interrupted else "stopped"
    print(f"{state} at step {result.step}; checkpoint {result.checkpoint}")
    return result.exit_status  # 130 after Ctrl-C, 143 after SIGTERM: a checkpoint was written first
