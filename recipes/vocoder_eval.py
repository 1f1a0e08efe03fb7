"""Copy synthesis, vocoder against vocoder: does the output keep the reference's pitch and voicing?

Each held-out reference's own log-mel (and, for vocoders that take F0, its own F0 track from the
feature analysis: Harvest + StoneMask) is vocoded, and the output is compared with the reference by
librosa's pYIN, an independent tracker (the F0 the WORLD vocoder was given came from Harvest, so
Harvest on the output would partly measure itself): voicing decision error (VDE), gross pitch error
(GPE, 20 %), F0 RMSE in cents over frames voiced in both, and pYIN's voiced share of the output over
the reference's. References are split at the median F0 of the drawn set into low and high voices,
reported separately: the lowest third of the drawn set's median F0s, the middle and the highest third
(Griffin-Lim's trouble is with closely spaced harmonics, so the low third is where vocoders differ);
each cell is a median over its references, plus the worst voiced-share ratio. Real-time factor: vocoding seconds over audio seconds, on this machine's threads.

    python recipes/vocoder_eval.py --corpus data/espeak_prosody/prepared --out exp/vocoder_eval \\
        --vocoders world griffin-lim --n 30

Writes ``OUT/summary.json`` and ``OUT/table.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from prosody_vae.atomic import write_text_atomic
from prosody_vae.audio import AudioConfig, f0_energy, load_audio, log_mel
from prosody_vae.audio.vocoders import load_vocoder, vocode
from prosody_vae.data.manifest import read_manifest
from prosody_vae.metrics.intonation import track_f0, voiced_share
from prosody_vae.metrics.pitch import f0_frame_errors, log_f0_rmse_cents


def _references(corpus: Path, n: int, seed: int) -> list[Path]:
    utterances = read_manifest(corpus / "splits" / "test.jsonl")
    random.Random(seed).shuffle(utterances)
    return [Path(u.audio) for u in utterances[:n]]


def _score(ref_wav: np.ndarray, out_wav: np.ndarray, config: AudioConfig) -> dict[str, float]:
    ref = track_f0(ref_wav, config.sample_rate, tracker="pyin", config=config)
    out = track_f0(out_wav, config.sample_rate, tracker="pyin", config=config)
    frames = min(ref.shape[0], out.shape[0])
    ref, out = ref[:frames], out[:frames]
    errors = f0_frame_errors(ref, out)
    ref_share = voiced_share(ref)
    return {
        "vde": errors.vde,
        "gpe": errors.gpe,
        "f0_rmse_cents": log_f0_rmse_cents(ref, out),
        "voiced_share_ratio": voiced_share(out) / ref_share if ref_share > 0 else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="prepared corpus folder (has splits/)")
    parser.add_argument("--out", type=Path, required=True, help="folder for summary.json and table.md")
    parser.add_argument("--vocoders", nargs="+", default=["world", "griffin-lim"], help="names or files")
    parser.add_argument("--n", type=int, default=30, help="held-out references")
    parser.add_argument("--seed", type=int, default=0, help="which references are drawn")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = AudioConfig()
    paths = _references(args.corpus, args.n, args.seed)
    wavs = [load_audio(path, config) for path in paths]
    tracks = [f0_energy(wav, config)[0] for wav in wavs]
    medians = [float(np.median(track[track > 0])) for track in tracks]
    low_cut, high_cut = (float(q) for q in np.quantile(medians, [1 / 3, 2 / 3]))
    rows: dict[str, dict[str, list[dict[str, float]]]] = {}
    timing: dict[str, float] = {}
    for name in args.vocoders:
        vocoder = load_vocoder(name, config)
        needs_f0 = getattr(vocoder, "needs_f0", False)
        seconds, audio_seconds = 0.0, 0.0
        per_group: dict[str, list[dict[str, float]]] = {"low": [], "mid": [], "high": []}
        for wav, track, median in zip(wavs, tracks, medians, strict=True):
            mel = log_mel(wav, config)
            start = time.perf_counter()
            out = vocode(vocoder, mel, torch.from_numpy(track) if needs_f0 else None).numpy()
            seconds += time.perf_counter() - start
            audio_seconds += wav.shape[0] / config.sample_rate
            group = "low" if median < low_cut else ("high" if median >= high_cut else "mid")
            per_group[group].append(_score(wav, out, config))
        rows[name] = per_group
        timing[name] = seconds / audio_seconds
        print(f"{name}: done (real-time factor {timing[name]:.3f})")
    summary = {
        "references": [str(p) for p in paths],
        "median_f0_cuts_hz": [low_cut, high_cut],
        "real_time_factor": timing,
        "threads": args.threads,
        "results": {
            name: {
                group: {key: float(np.nanmedian([r[key] for r in items])) for key in items[0]}
                | {
                    "n": len(items),
                    "worst_voiced_share_ratio": float(np.nanmin([r["voiced_share_ratio"] for r in items])),
                }
                for group, items in groups.items()
                if items
            }
            for name, groups in rows.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "summary.json", json.dumps(summary, indent=2))
    lines = [
        f"Copy synthesis of {len(paths)} held-out references (pYIN on reference and output; medians; "
        f"thirds by median F0, cuts at {low_cut:.0f} and {high_cut:.0f} Hz)",
        "",
        "| vocoder | voices | n | VDE | GPE | F0 RMSE (cents) | voiced share out/ref (worst) | RTF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, groups in summary["results"].items():
        for group, values in groups.items():
            lines.append(
                f"| {name} | {group} | {values['n']} | {values['vde']:.3f} | {values['gpe'] * 100:.1f} % | "
                f"{values['f0_rmse_cents']:.0f} | {values['voiced_share_ratio']:.2f} "
                f"({values['worst_voiced_share_ratio']:.2f}) | "
                f"{timing[name]:.3f} |"
            )
    write_text_atomic(args.out / "table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
