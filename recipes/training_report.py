#!/usr/bin/env python3
"""Figures and numbers for a training run: KL vs C and beta, validation curves, alignment, mels.

    .venv/bin/python recipes/training_report.py --exp exp/espeak_cpu --out docs/figures --prefix espeak_cpu

Reads ``<exp>/log.jsonl`` and the latest checkpoint; synthesises one held-out test sentence with the
prosody of a held-out reference to show the free-running alignment. Prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from prosody_vae.checkpoint import CheckpointManager
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer
from prosody_vae.plots import plot_alignment, plot_mels, plot_training_curves
from prosody_vae.tts.attention_metrics import diagonality


def _records(log: Path) -> tuple[list[dict], list[dict]]:
    train, valid = [], []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        (valid if any(k.startswith("valid/") for k in record) else train).append(record)
    return train, valid


def _valid_figure(valid: list[dict]):
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in valid]
    fig, left = plt.subplots(figsize=(7, 3.5))
    left.plot(
        steps, [r["valid/diagonality"] for r in valid], color="tab:green", marker="o", label="diagonality"
    )
    left.set_ylim(0, 1.02)
    left.set_xlabel("step")
    left.set_ylabel("attention diagonality (valid)")
    right = left.twinx()
    right.plot(
        steps, [r["valid/postnet_l1"] for r in valid], color="tab:purple", marker=".", label="postnet L1"
    )
    right.set_ylabel("postnet L1, nats per utterance (valid)")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="center right", fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prefix", default="run")
    parser.add_argument("--threshold", type=float, default=0.8, help="diagonality that counts as aligned")
    parser.add_argument("--test-split", type=Path, default=None, help="manifest of held-out utterances")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    train, valid = _records(args.exp / "log.jsonl")
    capacity = train[-1]["capacity"]
    steps = np.array([r["step"] for r in train])
    kl = np.array([r["kl"] for r in train])
    beta = np.array([r["beta"] for r in train])
    fig = plot_training_curves(steps, kl, beta, capacity, title=f"{args.prefix}: KL held at C by beta")
    fig.savefig(args.out / f"{args.prefix}_kl_beta.png", dpi=110)
    _valid_figure(valid).savefig(args.out / f"{args.prefix}_valid.png", dpi=110)

    tail = steps > steps[-1] - 500
    aligned = next((r["step"] for r in valid if r["valid/diagonality"] >= args.threshold), None)
    print(f"| steps | {int(steps[-1])} |")
    print(f"| seconds per step (median of logged means) | {np.median([r['seconds'] for r in train]):.2f} |")
    print(f"| first validation with diagonality >= {args.threshold} | step {aligned} |")
    print(f"| final validation diagonality | {valid[-1]['valid/diagonality']:.3f} |")
    print(
        f"| final validation postnet L1 (nats/utt) | {valid[-1]['valid/postnet_l1']:.0f} (first: {valid[0]['valid/postnet_l1']:.0f}) |"
    )
    print(
        f"| KL over the last 500 steps (C = {capacity:g}) | {kl[tail].mean():.2f} +- {kl[tail].std():.2f} nats |"
    )
    print(f"| beta over the last 500 steps | {beta[tail].mean():.2f} |")

    checkpoint = CheckpointManager(args.exp / "checkpoints").latest()
    synth = Synthesizer.from_checkpoint(checkpoint)
    test_split = args.test_split or Path(synth.config.data.root) / "splits" / "test.jsonl"
    held_out = read_manifest(test_split)
    reference, target = held_out[0], held_out[1]
    out = synth.transfer(target.text, reference.audio, reference_text=reference.text)
    steps_l = torch.tensor([out.alignment.shape[0]])
    score = diagonality(out.alignment.unsqueeze(0), torch.tensor([out.alignment.shape[1]]), steps_l)
    print(
        f"| free-running diagonality, held-out text + held-out reference | {float(score[0]):.3f} (stopped: {out.stopped}) |"
    )
    fig = plot_alignment(out.alignment, title=f"free running, held-out sentence, step {int(steps[-1])}")
    fig.savefig(args.out / f"{args.prefix}_alignment.png", dpi=110)
    ref_mel = synth.reference_mel(reference.audio)
    fig = plot_mels(
        [ref_mel, out.mel],
        [f"reference (held out): {reference.text}", f"output with its prosody: {target.text}"],
        sample_rate=synth.audio.sample_rate,
        hop_length=synth.audio.hop_length,
    )
    fig.savefig(args.out / f"{args.prefix}_mels.png", dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
