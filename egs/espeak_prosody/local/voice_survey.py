#!/usr/bin/env python
"""How distinct the corpus's espeak-ng voices are: F0, tracker slips and spectral envelope per voice.

Speaks the same sentences in every voice of a corpus config (espeak-ng's defaults: -p 50, -s 175,
its own tune) and prints a Markdown table: median F0, the share of voiced frames Harvest puts an
octave off the utterance's median (slips), the spectral centroid of the mean voiced log-mel, the
frequency warp that best maps en-us's mean log-mel onto the voice's (a vocal-tract-length proxy),
and the RMS distance of the voice's mean log-mel (level removed) to the nearest training voice.

    python egs/espeak_prosody/local/voice_survey.py --config egs/espeak_prosody/conf/corpus_multivoice.yaml
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import librosa
import numpy as np
import yaml

from prosody_vae.audio import AudioConfig, load_audio, log_mel
from prosody_vae.data.espeak import generate_sentences, synthesize
from prosody_vae.data.espeak.labels import f0_contour

CONFIG = AudioConfig()
_WARPS = np.linspace(0.80, 1.35, 56)


def _one(job: tuple[str, str, Path]) -> tuple[str, np.ndarray, np.ndarray]:
    """F0 track and mean voiced log-mel (n_mels,) of one sentence in one voice."""
    voice, text, path = job
    synthesize(text, pitch=50, pitch_range=50, rate=175, voice=voice, out_path=path)
    f0 = f0_contour(path, config=CONFIG)
    mel = log_mel(load_audio(path, CONFIG), CONFIG).numpy()
    return voice, f0, mel[f0 > 0].mean(axis=0)


def _slips(f0: np.ndarray) -> float:
    """Share of voiced frames 8-16 semitones from the utterance's median F0 (an octave off)."""
    st = 12.0 * np.log2(f0[f0 > 0])
    distance = np.abs(st - np.median(st))
    return float(np.mean((distance > 8.0) & (distance < 16.0)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, required=True, help="corpus config with voices and held_out_voices"
    )
    parser.add_argument("--sentences", type=int, default=8, help="sentences per voice")
    parser.add_argument("--num-workers", type=int, default=2, help="worker processes")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    training, held_out = list(config.get("voices", ["en-us"])), list(config.get("held_out_voices", []))
    reference = "en-us"
    voices = list(dict.fromkeys([reference, *training, *held_out]))
    texts = generate_sentences(args.sentences, seed=51)
    with tempfile.TemporaryDirectory() as folder:
        jobs = [
            (v, t, Path(folder) / f"{i}_{j}.wav") for i, v in enumerate(voices) for j, t in enumerate(texts)
        ]
        with ProcessPoolExecutor(args.num_workers) as pool:
            results = list(pool.map(_one, jobs, chunksize=4))
    tracks = {voice: [f0 for v, f0, _ in results if v == voice] for voice in voices}
    envelopes = {}
    for voice in voices:
        mean = np.mean([mel for v, _, mel in results if v == voice], axis=0)
        envelopes[voice] = mean - mean.mean()  # level removed: loudness is not identity
    freqs = librosa.mel_frequencies(n_mels=CONFIG.n_mels + 2, fmin=CONFIG.f_min, fmax=CONFIG.f_max)[1:-1]
    below = freqs < 5000.0

    def warp(voice: str) -> float:
        errors = [
            np.mean((envelopes[voice] - np.interp(freqs / a, freqs, envelopes[reference]))[below] ** 2)
            for a in _WARPS
        ]
        return float(_WARPS[int(np.argmin(errors))])

    def distance(a: str, b: str) -> float:
        return float(np.sqrt(np.mean((envelopes[a] - envelopes[b]) ** 2)))

    print(
        "| voice | held out | median F0 (Hz) | octave slips | centroid (Hz) | warp vs en-us | nearest training voice |"
    )
    print("|---|---|---|---|---|---|---|")
    for voice in [*training, *held_out]:
        f0 = np.concatenate(tracks[voice])
        magnitude = np.exp(envelopes[voice])
        others = [v for v in training if v != voice]
        nearest = min(others, key=lambda other: distance(voice, other)) if others else None
        print(
            f"| {voice} | {'yes' if voice in held_out else ''} | {np.median(f0[f0 > 0]):.0f} "
            f"| {np.mean([_slips(t) for t in tracks[voice]]):.1%} | {(magnitude * freqs).sum() / magnitude.sum():.0f} "
            f"| {warp(voice):.2f} | {f'{nearest} ({distance(voice, nearest):.2f})' if nearest else '-'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
