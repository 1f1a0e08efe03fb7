#!/usr/bin/env python3
"""Does prosody transfer? Score a built-in-corpus model against the corpus's known prosody.

For each of ``--n`` held-out reference utterances, synthesise a *different* held-out sentence with
the reference's prosody (posterior mean), and measure the output's F0 level, F0 spread and speaking
rate the same way the corpus labels were measured, and its tempo (the rate relative to the
sentence's neutral duration, :mod:`prosody_vae.evaluation.tempo`: the rate without the two sentences'
own timing). The baseline speaks the same sentences with
prosody drawn from the prior. Transfer works when the outputs' measurements correlate with the
references' and the baseline's do not. References and outputs are measured by the same code
(:func:`prosody_vae.data.espeak.measure_prosody`, Harvest F0), not read from the manifest's labels,
which an older corpus may have measured with another tracker. Outputs are vocoded with the model's
default vocoder (WORLD for a model that predicts pitch, Griffin-Lim otherwise) unless ``--vocoder``.

    .venv/bin/python recipes/transfer_eval.py --checkpoint exp/espeak_cpu/checkpoints/step_2461.pt --n 40

A multi-speaker model is scored on a single-voice corpus with ``--speaker``: the voice the references
were spoken in, which is also the voice the outputs speak in.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from prosody_vae.audio.vocoders import load_vocoder, vocode
from prosody_vae.data.espeak import measure_prosody, phonemes
from prosody_vae.data.manifest import read_manifest
from prosody_vae.evaluation.tempo import tempo
from prosody_vae.inference.synthesizer import Synthesizer

# (reference label, output measurement): the prosody factor each pair checks
_QUANTITIES = (
    ("f0_mean_hz", "F0 level"),
    ("f0_range_st", "F0 spread (semitones)"),
    ("phones_per_s", "speaking rate"),
    ("tempo", "tempo"),  # the rate relative to the sentence's neutral duration (evaluation.tempo)
)


def _measure(synth: Synthesizer, vocoder, result, text: str) -> dict[str, float] | None:
    wav = vocode(vocoder, result.mel, result.f0).float().cpu().numpy()
    try:
        measured = measure_prosody(wav, config=synth.audio)
    except ValueError:  # e.g. an output with too few voiced frames: reported as missing
        return None
    # phones counted exactly as the corpus labels count them, so both sides share one convention
    measured["phones_per_s"] = len(phonemes(text)) / max(measured["duration_s"], 1e-3)
    measured["tempo"] = tempo(text, measured["duration_s"], config=synth.audio)
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--split", type=Path, default=None, help="held-out manifest (default: the model's test split)"
    )
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=None)
    parser.add_argument(
        "--vocoder", default=None, help="world, griffin-lim or a file (default: by the model)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--speaker",
        default=None,
        help="the voice to speak in and the references' voice (multi-speaker models)",
    )
    parser.add_argument(
        "--timing",
        choices=("auto", "z", "reference"),
        default="auto",
        help="the transfers' length: the rate z implies, the reference's measured pace, or auto: the "
        "reference's where the model can (Synthesizer.transfer)",
    )
    parser.add_argument(
        "--no-reference-text",
        action="store_true",
        help="embed the references without their transcripts (models trained with "
        "prosody.text_summary_dropout); the reference's pace then needs prosody.spoken_length",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    synth = Synthesizer.from_checkpoint(args.checkpoint)
    vocoder = load_vocoder(args.vocoder, synth.audio, default=synth.default_vocoder)
    split = args.split or Path(synth.config.data.root) / "splits" / "test.jsonl"
    held_out = [u for u in read_manifest(split) if "phones_per_s" in u.labels]
    rng = np.random.default_rng(args.seed)
    references = [
        held_out[i] for i in rng.choice(len(held_out), size=min(args.n, len(held_out)), replace=False)
    ]
    texts = [u.text for u in held_out]
    rows = []
    voice = {"speaker": args.speaker, "reference_speaker": args.speaker}
    for ref in references:
        text = next(t for t in rng.permutation(texts) if t != ref.text)  # inter-text transfer
        transcript = None if args.no_reference_text else ref.text
        result = synth.transfer(text, ref.audio, reference_text=transcript, timing=args.timing, **voice)
        transfer = _measure(synth, vocoder, result, text)
        prior = _measure(synth, vocoder, synth.sample(text, 1, speaker=args.speaker)[0], text)
        if transfer is None or prior is None:
            print(f"skipped {ref.id}: output could not be measured")
            continue
        measured = measure_prosody(ref.audio, config=synth.audio)
        measured["phones_per_s"] = ref.labels["phones_per_s"]
        measured["tempo"] = tempo(ref.text, measured["duration_s"], config=synth.audio)
        row = {"id": ref.id, "text": text}
        for key, _ in _QUANTITIES:
            row[f"ref_{key}"] = measured[key]
            row[f"transfer_{key}"] = transfer[key]
            row[f"prior_{key}"] = prior[key]
        rows.append(row)
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(f"{len(rows)} references (held out), each transferred to another held-out sentence")
    print("| quantity | Pearson r, reference vs transfer | Pearson r, reference vs prior sample |")
    print("|---|---|---|")
    for key, name in _QUANTITIES:
        ref = np.array([r[f"ref_{key}"] for r in rows])
        tr = np.array([r[f"transfer_{key}"] for r in rows])
        pr = np.array([r[f"prior_{key}"] for r in rows])
        print(f"| {name} (`{key}`) | {np.corrcoef(ref, tr)[0, 1]:+.3f} | {np.corrcoef(ref, pr)[0, 1]:+.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
