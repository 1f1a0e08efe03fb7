"""``prosody-vae train``: train or resume a model from a YAML config.

A new run needs an ``--out`` that holds no run: ``--resume`` continues the run there, ``--force``
moves its files to ``<out>.old-<N>/``. Ctrl-C and SIGTERM write a checkpoint, then exit with 130 and 143.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prosody_vae.cli._registry import add_run_arguments, command, start_training_run


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="experiment YAML (see egs/*/conf/)")
    p.add_argument("--out", required=True, type=Path, help="experiment folder")
    add_run_arguments(p)


@command("train", help="train (or resume) a model from a YAML config", arguments=_arguments)
def train(args: argparse.Namespace) -> int:
    from prosody_vae.config import load_config
    from prosody_vae.training.loop import train as run_training

    start_training_run(args, "train")
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
