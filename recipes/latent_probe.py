#!/usr/bin/env python3
"""Which prosody factors does the posterior hold? A linear probe from z to the corpus's labels.

Transfer can only carry what the posterior mean holds. This recipe embeds ``--n`` training-split
utterances of a labelled corpus (their posterior means, each read with its own transcript and voice)
and fits a ridge regression from the means to each measured label, five-fold cross-validated, so the
reported r is on utterances the probe did not fit. Labels are speaker-normalised (each voice's mean
subtracted) on a multi-voice corpus, so the voice itself is not what is predicted:

* F0 level: log of the utterance's mean F0;
* F0 spread: ``f0_spread_st`` (the stylised contour's spread, semitones), and the 10-90 percentile
  range ``f0_range_st``;
* speaking rate: log phones per second;
* peak position: ``f0_peak_position`` (where in the utterance the F0 peak falls, 0-1).

    .venv/bin/python recipes/latent_probe.py --checkpoint exp/espeak_multivoice/checkpoints/best.pt \
        --corpus data/espeak_multivoice/prepared --n 400
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from prosody_vae.atomic import write_text_atomic
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer

LABELS = {  # name -> (label key, transform)
    "F0 level": ("f0_mean_hz", np.log),
    "F0 spread (stylised)": ("f0_spread_st", lambda v: v),
    "F0 range (10-90 %)": ("f0_range_st", lambda v: v),
    "speaking rate": ("phones_per_s", np.log),
    "peak position": ("f0_peak_position", lambda v: v),
}


def posterior_means(synth: Synthesizer, utterances, batch: int = 32) -> np.ndarray:
    """(N, D) posterior means, each utterance read with its transcript and, if known, its voice."""
    means = []
    for start in range(0, len(utterances), batch):
        chunk = utterances[start : start + batch]
        features = [synth.reference_features(str(u.audio)) for u in chunk]
        speakers = (
            [u.speaker if u.speaker in synth.speakers else None for u in chunk] if synth.speakers else None
        )
        posterior = synth.embed_batch(
            [mel for mel, _ in features],
            texts=[u.text for u in chunk],
            speakers=speakers,
            f0s=[f0 for _, f0 in features],
        )
        means.append(posterior.mean.float().cpu().numpy())
    return np.concatenate(means)


def probe_r(z: np.ndarray, y: np.ndarray, folds: int = 5, ridge: float = 1e-2) -> float:
    """Pearson r between ``y`` (N,) and its cross-validated ridge prediction from ``z`` (N, D)."""
    x = np.c_[z, np.ones(len(z))]
    fold = np.arange(len(z)) % folds
    predicted = np.zeros(len(z))
    for f in range(folds):
        fit, held = fold != f, fold == f
        w = np.linalg.solve(x[fit].T @ x[fit] + ridge * np.eye(x.shape[1]), x[fit].T @ y[fit])
        predicted[held] = x[held] @ w
    return float(np.corrcoef(predicted, y)[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, nargs="+", required=True)
    parser.add_argument("--corpus", type=Path, default=Path("data/espeak_multivoice/prepared"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the table and JSON here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    utterances = [
        u
        for u in read_manifest(args.corpus / "splits" / f"{args.split}.jsonl")
        if all(k in u.labels for k, _ in LABELS.values())
    ]
    order = np.random.default_rng(args.seed).permutation(len(utterances))[: args.n]
    utterances = [utterances[i] for i in order]
    voices = np.array([str(u.speaker) for u in utterances])
    targets = {}
    for name, (key, transform) in LABELS.items():
        y = transform(np.array([u.labels[key] for u in utterances], dtype=float))
        for voice in set(voices):  # speaker-normalised: the voice is not the prosody
            y[voices == voice] -= y[voices == voice].mean()
        targets[name] = y
    results = {}
    for checkpoint in args.checkpoint:
        z = posterior_means(Synthesizer.from_checkpoint(checkpoint), utterances)
        results[str(checkpoint)] = {name: probe_r(z, y) for name, y in targets.items()}
    header = "| checkpoint | " + " | ".join(LABELS) + " |"
    lines = [
        f"{len(utterances)} {args.split}-split utterances, 5-fold ridge probe, seed {args.seed}.",
        "",
        header,
        "|" + "---|" * (len(LABELS) + 1),
    ]
    for checkpoint, row in results.items():
        lines.append(f"| `{checkpoint}` | " + " | ".join(f"{row[n]:+.2f}" for n in LABELS) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "probe.md", table)
        write_text_atomic(args.out / "probe.json", json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
