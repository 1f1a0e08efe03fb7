#!/usr/bin/env python
"""Throughput of ``prepare`` and ``make-corpus`` against a plain librosa mel loop, in one run.

``prepare`` is :func:`prosody_vae.data.prepare_corpus` end to end (validation, tokenizer check,
features, splits) into a fresh folder each time, once per F0 tracker asked for (``--trackers``), and
with ``harvest`` once more on a copy of the corpus that holds the stored reference tracks
(``f0/``, as ``make-corpus`` leaves them; written before timing), which ``prepare`` then reuses.
``make-corpus`` is :func:`prosody_vae.data.espeak.build_corpus` of the first ``--corpus-utts``
utterances of the default corpus (the same plan as ``data/espeak_prosody``: synthesis, labels, stored
tracks) into a fresh folder each time. The baseline is the loop most scripts write: ``librosa.load``
(soxr_hq resampling), ``librosa.feature.melspectrogram`` + log, one file after another in this
process, nothing written, no F0, numpy on one BLAS thread (see below). Each round runs every method
once, in turn, so that load from other processes on a shared machine hits all of them alike; the
table gives the median over ``--rounds`` of seconds of audio (as stored, before trimming) per second
of wall time, and the ratio to the loop's median.

The utterances (the first ``--num-utts`` of ``--manifest``) are copied to a temporary folder first, so
the source corpus is only read. Every method is run once on two files before timing, so imports and
first-call costs are not counted as throughput (``prepare``'s workers are forked from this warmed-up
process; a real run forks them after a warm-up of its own).

    python bench/bench_prepare.py --num-utts 40 --corpus-utts 40 --num-workers 2
    python bench/bench_prepare.py --num-utts 40 --corpus-utts 40 --num-workers 1 --json /tmp/prepare_1.json

``--agreement`` measures instead how closely other F0 tracks follow the reference (Harvest +
StoneMask at the analysis rate, :func:`prosody_vae.audio.f0_energy`) on the trimmed audio of
``--num-utts`` utterances from ``--start``: the cache's ``harvest-decimated``; Harvest on input that
soxr resampled to 11025 Hz (the rate Harvest decimates 22.05 kHz to by itself, so the only change is
the resampling filter: Harvest's own sensitivity); and pyworld DIO + StoneMask. Reported over all
frames pooled: gross pitch error (frames both call voiced that differ by more than 20%), voicing
decision error (frames whose voicing differs), RMSE in cents over frames both call voiced (with and
without the gross errors), CPU time per second of audio, and the voice with the largest GPE / VDE.

    python bench/bench_prepare.py --agreement --num-utts 200
"""

# ruff: noqa: E402  (the BLAS setting below must come before numpy is imported)
from __future__ import annotations

import os

# One BLAS thread for numpy, set before numpy loads its BLAS. The mel loop's filterbank product
# otherwise runs on one BLAS thread per core, which on a machine whose cores are busy ran the loop 16
# times slower and erratically (2.1 s against 0.13 s for 60 files). prepare needs no such setting: its
# extraction holds torch to one thread by itself, so it is timed as the command line runs it.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import pyworld
import soundfile as sf
import torch

from prosody_vae.audio import AudioConfig, decimated_harvest_rate, harvest_f0, load_audio, num_frames
from prosody_vae.data import Utterance, prepare_corpus, read_manifest
from prosody_vae.data.espeak import build_corpus
from prosody_vae.data.f0_store import STORE_FOLDER, track_path, write_track
from prosody_vae.data.feature_cache import F0_TRACKERS

_DEFAULT_MANIFEST = Path("data/espeak_prosody/corpus/manifest.jsonl")
_LOOP = "librosa mel loop"


def copy_corpus(utterances: list[Utterance], folder: Path) -> Path:
    """Copy the audio of ``utterances`` into ``folder`` with a manifest of relative paths; returns it."""
    (folder / "wavs").mkdir(parents=True)
    lines = []
    for utt in utterances:
        source = Path(utt.audio)
        target = folder / "wavs" / f"{utt.id}{source.suffix}"
        shutil.copyfile(source, target)
        lines.append(json.dumps({"id": utt.id, "audio": f"wavs/{target.name}", "text": utt.text}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def store_tracks(manifest: Path, config: AudioConfig) -> None:
    """Write the reference tracks of a copied corpus beside its manifest, as make-corpus does."""
    for utt in read_manifest(manifest):
        f0 = harvest_f0(load_audio(utt.audio, config), config)
        write_track(track_path(manifest.parent / STORE_FOLDER, utt.id), f0, audio=utt.audio, config=config)


def make_corpus(out: Path, utterances: int, workers: int) -> None:
    build_corpus(out, n_utterances=utterances, seed=0, num_workers=max(workers, 1), progress=False)


def stored_audio_seconds(folder: Path) -> float:
    return sum(sf.info(path).duration for path in sorted((folder / "wavs").glob("*.wav")))


def mel_loop(paths: list[str], config: AudioConfig) -> None:
    """The plain per-file loop; results are computed and dropped."""
    for path in paths:
        wav, _ = librosa.load(path, sr=config.sample_rate, res_type="soxr_hq")
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


def run_prepare(manifest: Path, out: Path, config: AudioConfig, tracker: str, workers: int) -> None:
    prepare_corpus(
        "manifest",
        manifest,
        out,
        config=config,
        num_workers=workers,
        f0_tracker=tracker,
        progress=False,
        log=lambda _: None,
    )


def _timed(function: Callable[[], None]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def machine_info() -> dict[str, object]:
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        model = names[0] if names else model
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "librosa": librosa.__version__,
        "pyworld": getattr(pyworld, "__version__", "?"),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _on_grid(f0: np.ndarray, samples: int, config: AudioConfig) -> np.ndarray:
    length = num_frames(samples, config)
    return f0[:length] if f0.shape[0] >= length else np.pad(f0, (0, length - f0.shape[0]))


def _pyworld_track(x: np.ndarray, config: AudioConfig, method: str) -> np.ndarray:
    """Harvest on soxr-resampled 11025 Hz input (``"harvest-11025"``) or DIO (``"dio"``), each refined
    by StoneMask at the analysis rate; for comparison only, the library uses neither."""
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    grid = {"f0_floor": config.f0_min, "f0_ceil": config.f0_max, "frame_period": config.frame_period_ms}
    if method == "dio":
        f0, times = pyworld.dio(x64, config.sample_rate, **grid)
    else:
        y = librosa.resample(x64, orig_sr=config.sample_rate, target_sr=11025, res_type="soxr_hq")
        f0, times = pyworld.harvest(np.ascontiguousarray(y), 11025, **grid)
    return _on_grid(pyworld.stonemask(x64, f0, times, config.sample_rate), x.shape[0], config)


def _agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    both = (reference > 0) & (other > 0)
    ratio = other[both] / reference[both]
    cents = 1200.0 * np.log2(ratio)
    gross = np.abs(ratio - 1.0) > 0.2
    return {
        "gpe": 100.0 * float(np.mean(gross)),
        "vde": 100.0 * float(np.mean((reference > 0) != (other > 0))),
        "rmse_cents": float(np.sqrt(np.mean(cents**2))),
        "rmse_cents_no_gross": float(np.sqrt(np.mean(cents[~gross] ** 2))),
        "voiced": 100.0 * float(np.mean(other > 0)),
    }


def run_agreement(args: argparse.Namespace, config: AudioConfig) -> None:
    utterances = read_manifest(args.manifest)[args.start : args.start + args.num_utts]
    rate = decimated_harvest_rate(config)
    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "harvest (reference)": lambda x: harvest_f0(x, config),
        f"harvest-decimated ({rate} Hz)": lambda x: harvest_f0(x, config, rate=rate),
        "harvest on soxr 11025 Hz input": lambda x: _pyworld_track(x, config, "harvest-11025"),
        "dio + stonemask": lambda x: _pyworld_track(x, config, "dio"),
    }
    tracks: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    cpu = dict.fromkeys(methods, 0.0)
    audio_seconds = 0.0
    for utt in utterances:
        x = load_audio(utt.audio, config)  # trimmed and normalised, as the cache sees it
        audio_seconds += x.shape[0] / config.sample_rate
        for name, method in methods.items():
            start = time.process_time()
            tracks[name].append(np.asarray(method(x), dtype=np.float64))
            cpu[name] += time.process_time() - start
    reference = list(tracks)[0]
    pooled_reference = np.concatenate(tracks[reference])
    print(
        f"{len(utterances)} utterances of {args.manifest} from {args.start}, {audio_seconds:.1f} s after "
        f"trimming, {pooled_reference.size} frames, {np.mean(pooled_reference > 0):.1%} voiced by the reference"
    )
    print(
        "| F0 track | CPU ms / audio s | GPE | VDE | RMSE (cents) | RMSE without gross errors | worst voice |"
    )
    print("|---|---|---|---|---|---|---|")
    results = {}
    for name in list(methods)[1:]:
        pooled = _agreement(pooled_reference, np.concatenate(tracks[name]))
        by_voice: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        for utt, ref_track, track in zip(utterances, tracks[reference], tracks[name], strict=True):
            refs, others = by_voice.setdefault(utt.speaker, ([], []))
            refs.append(ref_track)
            others.append(track)
        voices = {v: _agreement(np.concatenate(r), np.concatenate(o)) for v, (r, o) in by_voice.items()}
        worst_gpe = max(voices, key=lambda v: voices[v]["gpe"])
        worst_vde = max(voices, key=lambda v: voices[v]["vde"])
        results[name] = {**pooled, "cpu_ms_per_s": 1000.0 * cpu[name] / audio_seconds, "voices": voices}
        print(
            f"| {name} | {1000.0 * cpu[name] / audio_seconds:.0f} | {pooled['gpe']:.2f}% | {pooled['vde']:.2f}% "
            f"| {pooled['rmse_cents']:.0f} | {pooled['rmse_cents_no_gross']:.0f} | GPE {worst_gpe} "
            f"{voices[worst_gpe]['gpe']:.1f}%, VDE {worst_vde} {voices[worst_vde]['vde']:.1f}% |"
        )
    print(f"reference: {1000.0 * cpu[reference] / audio_seconds:.0f} CPU ms per audio second")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--manifest", type=Path, default=_DEFAULT_MANIFEST, help="corpus to take utterances from"
    )
    parser.add_argument("--num-utts", type=int, default=40, help="first N utterances of --manifest")
    parser.add_argument("--num-workers", type=int, default=2, help="prepare's feature-extraction processes")
    parser.add_argument(
        "--trackers",
        default=",".join(F0_TRACKERS),
        help=f"comma-separated F0 trackers of prepare to time (of {', '.join(F0_TRACKERS)})",
    )
    parser.add_argument(
        "--corpus-utts", type=int, default=40, help="utterances of the timed make-corpus (0: not timed)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all methods (at least 3)")
    parser.add_argument("--json", type=Path, help="also write every timing here")
    parser.add_argument("--agreement", action="store_true", help="measure F0 agreement instead (see above)")
    parser.add_argument("--start", type=int, default=0, help="with --agreement: first utterance to take")
    args = parser.parse_args()
    if args.agreement:
        run_agreement(args, AudioConfig())
        return
    trackers = [name for name in args.trackers.split(",") if name]
    unknown = [name for name in trackers if name not in F0_TRACKERS]
    if unknown:
        parser.error(f"unknown tracker(s) {unknown}; choose from {F0_TRACKERS}")
    if args.rounds < 3:
        parser.error(f"--rounds must be at least 3, got {args.rounds}")
    config = AudioConfig()
    before = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        tmp_dir = Path(tmp)
        utterances = read_manifest(args.manifest)[: args.num_utts]
        manifest = copy_corpus(utterances, tmp_dir / "corpus")
        copied = read_manifest(manifest)
        paths = [utt.audio for utt in copied]
        audio_seconds = sum(sf.info(path).duration for path in paths)
        print(
            f"{len(paths)} utterances, {audio_seconds:.1f} s of audio; prepare with --num-workers "
            f"{args.num_workers}; load average {before['load_average']}",
            flush=True,
        )

        methods: dict[str, Callable[[Path], None]] = {_LOOP: lambda _: mel_loop(paths, config)}
        for tracker in trackers:
            methods[f"prepare --f0 {tracker}"] = lambda out, tracker=tracker: run_prepare(
                manifest, out, config, tracker, args.num_workers
            )
        stored = None
        if "harvest" in trackers:
            stored = copy_corpus(copied, tmp_dir / "corpus_stored")
            store_tracks(stored, config)  # untimed: make-corpus has already paid for these
            methods["prepare --f0 harvest, stored tracks"] = lambda out: run_prepare(
                stored, out, config, "harvest", args.num_workers
            )
        if args.corpus_utts > 0:
            methods[f"make-corpus --n {args.corpus_utts}"] = lambda out: make_corpus(
                out, args.corpus_utts, args.num_workers
            )
        # Warm-up on two files: imports and first calls, in this process that the workers fork from.
        mel_loop(paths[:2], config)
        small = copy_corpus(copied[:2], tmp_dir / "warm_corpus")
        for tracker in trackers:
            run_prepare(small, tmp_dir / f"warm_{tracker}", config, tracker, args.num_workers)
        if stored is not None:
            small_stored = copy_corpus(copied[:2], tmp_dir / "warm_stored")
            store_tracks(small_stored, config)
            run_prepare(small_stored, tmp_dir / "warm_stored_out", config, "harvest", args.num_workers)
        if args.corpus_utts > 0:
            make_corpus(tmp_dir / "warm_make", 2, args.num_workers)
        # Audio each method processes: the copied files, or what make-corpus builds (set in round 0).
        seconds_of = dict.fromkeys(methods, audio_seconds)

        rates: dict[str, list[float]] = {name: [] for name in methods}
        for round_index in range(args.rounds):
            for index, (name, method) in enumerate(methods.items()):
                out = tmp_dir / f"out_{round_index}_{index}"
                seconds = _timed(lambda method=method, out=out: method(out))
                if name.startswith("make-corpus"):
                    seconds_of[name] = stored_audio_seconds(out)  # what it built (the same every round)
                rates[name].append(seconds_of[name] / seconds)
                print(
                    f"round {round_index} {name}: {seconds:.2f} s ({seconds_of[name] / seconds:.1f}x)",
                    flush=True,
                )
                shutil.rmtree(out, ignore_errors=True)
    after = machine_info()

    loop = statistics.median(rates[_LOOP])
    print(
        f"\nmachine: {before['cpu']}, {before['cpus']} CPUs ({before['cpus_usable']} usable), python "
        f"{before['python']}, torch {before['torch']}, librosa {before['librosa']}, pyworld {before['pyworld']}"
    )
    print(f"load average before {before['load_average']}, after {after['load_average']}")
    print(
        f"{len(paths)} utterances, {audio_seconds:.1f} s of audio, prepare --num-workers {args.num_workers}"
    )
    print("| method | audio s | audio s / wall s (median) | rounds | vs loop |")
    print("|---|---|---|---|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        runs = ", ".join(f"{value:.1f}" for value in values)
        print(f"| {name} | {seconds_of[name]:.1f} | {median:.1f} | {runs} | {median / loop:.3f}x |")
    if args.json:
        record = {
            "utterances": len(paths),
            "audio_seconds": audio_seconds,
            "num_workers": args.num_workers,
            "machine_before": before,
            "machine_after": after,
            "audio_seconds_per_method": seconds_of,
            "rates": rates,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
