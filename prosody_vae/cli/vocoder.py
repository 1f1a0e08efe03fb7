"""``prosody-vae train-vocoder``: train (or resume, or fine-tune) a HiFi-GAN vocoder from a YAML config.

Each checkpoint also exports the generator as ``<out>/g_<step>`` with ``<out>/config.json``, the
original release's format, which ``--vocoder`` of every synthesis command loads. A new run needs an
``--out`` that holds no run: ``--resume`` continues it, ``--force`` moves it to ``<out>.old-<N>/``.
Ctrl-C and SIGTERM write a checkpoint, then exit with 130 and 143.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prosody_vae.cli._registry import add_run_arguments, command, log, start_training_run


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="vocoder YAML (see egs/*/conf/vocoder_*.yaml)")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, g_<step> generators)")
    add_run_arguments(p)
    p.add_argument(
        "--teacher-forced-from",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="fine-tune on this acoustic model's teacher-forced mels (sets data.teacher_forced_from)",
    )


@command("train-vocoder", help="train (or resume, or fine-tune) a HiFi-GAN vocoder", arguments=_arguments)
def train_vocoder(args: argparse.Namespace) -> int:
    from prosody_vae.vocoder.config import load_vocoder_config
    from prosody_vae.vocoder.loop import train_vocoder as run_training

    start_training_run(args, "train-vocoder")
    overrides = list(args.set)
    if args.teacher_forced_from is not None:
        if not args.teacher_forced_from.is_file():
            raise ValueError(f"{args.teacher_forced_from}: --teacher-forced-from: checkpoint not found")
        overrides.append(f"data.teacher_forced_from={args.teacher_forced_from}")
    config = load_vocoder_config(args.config, overrides=overrides)
    result = run_training(
        config,
        args.out,
        resume=args.resume,
        force=args.force,
        device=args.device,
        max_steps=args.max_steps,
        progress=not args.quiet,
    )
    if result.skipped:
        shown = "; ".join(f"{utt_id}: {reason}" for utt_id, reason in list(result.skipped.items())[:3])
        more = f" (and {len(result.skipped) - 3} more, see log.jsonl)" if len(result.skipped) > 3 else ""
        log.warning(f"{len(result.skipped)} utterance(s) left out of training: {shown}{more}")
    state = "interrupted" if result.interrupted else "stopped"
    print(f"{state} at step {result.step}; checkpoint {result.checkpoint}; generator {result.generator}")
    return result.exit_status
