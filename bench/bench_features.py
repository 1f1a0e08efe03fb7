#!/usr/bin/env python
"""Feature-extraction throughput: ``extract_features`` against a plain per-file librosa + pyworld loop.

Throughput is seconds of audio processed per second of wall time for log-mel + F0 + energy, the
median over ``--repeats`` runs, each into a fresh cache (so nothing is skipped). Wall time of
``extract_features`` includes starting its worker processes. The baseline is the loop most
scripts write: ``librosa.load`` (soxr_hq resampling), ``librosa.feature.melspectrogram`` + log,
``pyworld.harvest`` + ``stonemask`` and ``librosa.feature.rms``, one file after another in this
process, results kept in memory (no files written), and no trimming or peak normalisation.

Without ``--manifest`` about 60 short utterances are synthesised with espeak-ng into a temporary
folder. Run: ``python bench/bench_features.py [--manifest M] [--workers 0,2] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import pyworld
import soundfile as sf

from prosody_vae.audio import AudioConfig
from prosody_vae.data import Utterance, extract_features, load_features, read_manifest

_SUBJECTS = [
    "The old clock",
    "A quiet river",
    "Every teacher",
    "My neighbour",
    "The red kite",
    "This small town",
]
_VERBS = ["remembers", "carried", "followed", "forgot", "painted", "opened"]
_OBJECTS = [
    "the winter road",
    "a basket of apples",
    "seven letters",
    "the northern lights",
    "our garden gate",
]


def synthesise_corpus(folder: Path, count: int, seed: int = 0) -> list[Utterance]:
    """``count`` espeak-ng utterances with varied pitch and rate (generated sentences)."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found; install it or pass --manifest")
    rng = random.Random(seed)
    utts = []
    for index in range(count):
        # Half the sentences without an object: about 1 to 2 s each, so the run stays within minutes.
        objects = f" {rng.choice(_OBJECTS)}" if index % 2 else ""
        text = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)}{objects}."
        path = folder / f"bench{index:03d}.wav"
        pitch, rate = rng.randint(20, 80), rng.randint(170, 260)
        subprocess.run(["espeak-ng", "-p", str(pitch), "-s", str(rate), "-w", str(path), text], check=True)
        utts.append(Utterance(id=path.stem, audio=str(path), text=text))
    return utts


def baseline_loop(utts: list[Utterance], config: AudioConfig) -> None:
    """The plain per-file loop; results are computed and dropped."""
    for utt in utts:
        wav, _ = librosa.load(utt.audio, sr=config.sample_rate, res_type="soxr_hq")
        mel = librosa.feature.melspectrogram(
            y=wav,
            sr=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.win_length,
            n_mels=config.n_mels,
            fmin=config.f_min,
            fmax=config.f_max,
            power=1.0,
            pad_mode="reflect",
        )
        np.log(np.maximum(mel, config.log_floor))
        x = wav.astype(np.float64)
        f0, times = pyworld.harvest(
            x,
            config.sample_rate,
            f0_floor=config.f0_min,
            f0_ceil=config.f0_max,
            frame_period=config.frame_period_ms,
        )
        pyworld.stonemask(x, f0, times, config.sample_rate)
        librosa.feature.rms(y=wav, frame_length=config.n_fft, hop_length=config.hop_length)


def _timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, help="use this corpus instead of synthesising one")
    parser.add_argument("--num-utts", type=int, default=60, help="utterances to synthesise (or take)")
    parser.add_argument("--workers", default="2", help="comma-separated num_workers values to measure")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    config = AudioConfig()
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        tmp_dir = Path(tmp)
        if args.manifest:
            utts = read_manifest(args.manifest)[: args.num_utts]
        else:
            utts = synthesise_corpus(tmp_dir, args.num_utts)
        audio_seconds = sum(sf.info(utt.audio).duration for utt in utts)
        print(f"{len(utts)} utterances, {audio_seconds:.1f} s of audio, config {config}")

        baseline_loop(utts[:2], config)  # warm-up: first-call costs (imports, JIT) are not throughput
        worker_counts = [int(w) for w in args.workers.split(",")]
        names = {w: f"extract_features(num_workers={w})" for w in worker_counts}
        results: dict[str, list[float]] = {
            "librosa+pyworld loop": [],
            **{name: [] for name in names.values()},
        }
        analysed_seconds = 0.0
        # Interleave the methods so that load from other processes on a shared machine hits all alike.
        for repeat in range(args.repeats):
            seconds = _timed(baseline_loop, utts, config)
            results["librosa+pyworld loop"].append(audio_seconds / seconds)
            print(f"run {repeat} librosa+pyworld loop: {seconds:.1f} s", flush=True)
            for workers, name in names.items():
                cache = tmp_dir / f"cache_{workers}_{repeat}"
                seconds = _timed(extract_features, utts, cache, config, num_workers=workers, progress=False)
                results[name].append(audio_seconds / seconds)
                print(f"run {repeat} {name}: {seconds:.1f} s", flush=True)
        # Trimming means extract_features analyses fewer samples than the loop; say how many.
        frames = sum(load_features(cache, utt.id)["mel"].shape[0] - 1 for utt in utts)
        analysed_seconds = frames * config.hop_length / config.sample_rate

    baseline = statistics.median(results["librosa+pyworld loop"])
    print(
        f"\nmachine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, python {platform.python_version()}"
    )
    print(f"extract_features analysed about {analysed_seconds:.1f} s after silence trimming")
    print("| method | audio s / wall s (median) | runs | vs loop |")
    print("|---|---|---|---|")
    for name, values in results.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {median:.1f} | {runs} | {median / baseline:.2f}x |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "audio_seconds": audio_seconds,
                    "analysed_seconds": analysed_seconds,
                    "utterances": len(utts),
                    **results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
