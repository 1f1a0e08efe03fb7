#!/usr/bin/env python3
"""Pack a training checkpoint into the compact inference file that ships with the package.

    .venv/bin/python recipes/package_model.py --checkpoint exp/espeak_cpu/checkpoints/step_2461.pt \
        --exp exp/espeak_cpu --out prosody_vae/assets/espeak_prosody.pt

The provenance record (step, wall-clock training time summed from ``log.jsonl``, the commands that
reproduce the model, the corpus seed) is stored in the file and printed; ``--note KEY=VALUE`` adds
more.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from prosody_vae.inference.packed import pack_model


def _training_seconds(log: Path, up_to_step: int) -> float | None:
    """Seconds of training up to ``up_to_step``: the logged mean seconds per step times the steps."""
    if not log.is_file():
        return None
    total, previous = 0.0, 0
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if "seconds" not in record or "step" not in record or record["step"] > up_to_step:
            continue
        total += record["seconds"] * (record["step"] - previous)
        previous = record["step"]
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--exp", type=Path, default=None, help="experiment folder (for log.jsonl)")
    parser.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16)")
    parser.add_argument("--note", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--default-speaker", default=None, help="multi-speaker models: the voice used when none is named"
    )
    args = parser.parse_args(argv)

    import torch

    from prosody_vae.checkpoint import load_checkpoint

    state = load_checkpoint(args.checkpoint)
    step = int(state.get("step", 0))
    seconds = _training_seconds(args.exp / "log.jsonl", step) if args.exp else None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    provenance = {
        "step": step,
        "training_seconds": round(seconds) if seconds is not None else None,
        "packed_at_commit": commit or None,
        "source_checkpoint": str(args.checkpoint),
    }
    for note in args.note:
        key, sep, value = note.partition("=")
        if not sep:
            parser.error(f"--note {note!r}: expected KEY=VALUE")
        provenance[key] = value
    out = pack_model(
        args.checkpoint,
        args.out,
        dtype=torch.float32 if args.fp32 else torch.float16,
        provenance=provenance,
        default_speaker=args.default_speaker,
    )
    size = out.stat().st_size / 2**20
    print(f"wrote {out} ({size:.1f} MiB)")
    print(json.dumps(provenance, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
