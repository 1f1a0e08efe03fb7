"""``prosody-vae export``: the prosody encoder as a deployable module (see prosody_vae.inference.export)."""

from __future__ import annotations

import argparse
from pathlib import Path

from prosody_vae.cli._registry import command, model_path, set_threads


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="training checkpoint or packed model (default: the shipped model)",
    )
    p.add_argument("--out", required=True, type=Path, help="output file (e.g. prosody_encoder.pt or .onnx)")
    p.add_argument(
        "--format",
        choices=("torchscript", "onnx"),
        default="torchscript",
        help="onnx needs the [onnx] extra",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


@command(
    "export",
    help="write the reference encoder + posterior as TorchScript or ONNX: mel, lengths -> (mean, std)",
    arguments=_export_arguments,
)
def export(args: argparse.Namespace) -> int:
    from prosody_vae.inference.export import export_checkpoint, read_export_metadata

    set_threads(args)
    path = export_checkpoint(model_path(args.checkpoint), args.out, format=args.format)
    meta = read_export_metadata(path)
    audio = meta["audio"]
    print(f"wrote {path} ({args.format}; inputs: {', '.join(name.split()[0] for name in meta['inputs'])})")
    print(
        f"expects log-mels at {audio['sample_rate']} Hz, n_fft {audio['n_fft']}, hop {audio['hop_length']}, "
        f"{audio['n_mels']} mel bins; returns mean and std of a {meta['latent_dim']}-dim posterior"
    )
    return 0
