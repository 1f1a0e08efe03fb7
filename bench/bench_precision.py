"""How far bf16 and int8 decoding land from fp32, set against what the prenet's dropout alone changes.

Tacotron 2 keeps the prenet's dropout on at synthesis, so two fp32 runs with different seeds already
differ; a reduced precision is close enough when it moves the output much less than that. For each
sentence and precision the model decodes with the same seed as an fp32 run and the script reports,
against that run: equal length (share of sentences), the mean and largest absolute log-mel difference
over the shorter length, and the predicted F0's RMS difference in cents over frames voiced in both;
and the same for fp32 with another seed (the yardstick). Decoder step time is measured by
``bench/compare_coqui.py --ours-precision`` at the size where it matters (the compact model's cells
fit in the cache and gain nothing).

    .venv/bin/python bench/bench_precision.py                                   # the shipped model
    .venv/bin/python bench/bench_precision.py --checkpoint exp/espeak_pitch/model.pt --n 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prosody_vae.data.espeak.grammar import held_out_sentences  # noqa: E402
from prosody_vae.inference.packed import builtin_model_path  # noqa: E402
from prosody_vae.inference.synthesizer import Synthesizer  # noqa: E402


def _decode(synth: Synthesizer, text: str, precision: str, seed: int):
    synth.precision = precision
    torch.manual_seed(seed)
    return synth.synthesize([text], torch.zeros(1, synth.latent_dim))[0]


def _distance(a, b) -> dict:
    frames = min(a.mel.shape[0], b.mel.shape[0])
    diff = (a.mel[:frames] - b.mel[:frames]).abs()
    record = {
        "same_length": a.mel.shape[0] == b.mel.shape[0],
        "mel_mean": float(diff.mean()),
        "mel_max": float(diff.max()),
    }
    if a.f0 is not None and b.f0 is not None:
        fa, fb = a.f0[:frames].numpy(), b.f0[:frames].numpy()
        both = (fa > 0) & (fb > 0)
        cents = 1200 * np.log2(fa[both] / fb[both]) if both.any() else np.array([np.nan])
        record["f0_rms_cents"] = float(np.sqrt(np.mean(cents**2)))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--n", type=int, default=10, help="held-out sentences")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    synth = Synthesizer.from_checkpoint(args.checkpoint or builtin_model_path())
    rows: dict[str, list[dict]] = {"bf16": [], "int8": [], "fp32, other seed": []}
    for i, text in enumerate(held_out_sentences()[: args.n]):
        exact = _decode(synth, text, "fp32", seed=i)
        rows["bf16"].append(_distance(_decode(synth, text, "bf16", seed=i), exact))
        rows["int8"].append(_distance(_decode(synth, text, "int8", seed=i), exact))
        rows["fp32, other seed"].append(_distance(_decode(synth, text, "fp32", seed=i + 1000), exact))
    summary = {}
    print(f"{args.n} held-out sentences, z = 0, each against fp32 with the same seed")
    print(f"{'run':<18} {'same length':>11} {'mel mean':>9} {'mel max':>8} {'F0 RMS (cents)':>15}")
    for name, records in rows.items():
        summary[name] = {
            "same_length": float(np.mean([r["same_length"] for r in records])),
            "mel_mean": statistics.median(r["mel_mean"] for r in records),
            "mel_max": statistics.median(r["mel_max"] for r in records),
            "f0_rms_cents": statistics.median(r.get("f0_rms_cents", float("nan")) for r in records),
        }
        s = summary[name]
        print(
            f"{name:<18} {s['same_length']:>11.2f} {s['mel_mean']:>9.4f} {s['mel_max']:>8.3f} {s['f0_rms_cents']:>15.1f}"
        )
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
