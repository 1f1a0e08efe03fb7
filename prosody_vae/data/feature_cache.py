"""The feature cache: one ``<cache_dir>/<utt_id>.pt`` per utterance with mel, energy and F0.

Extraction is resumable and fault tolerant:

* each file is written to a hidden temporary file in the same folder and moved into place with
  ``os.replace`` (atomic on POSIX), so a killed run never leaves a truncated ``.pt``; stray
  temporary files from a killed run are removed at the start of the next one;
* utterances whose ``.pt`` already exists are skipped, so rerunning continues where it stopped;
* an utterance that fails (silent, corrupt, NaN, too short after trimming, ...) is listed in the
  :class:`ExtractionReport` with its reason and never stops the job.

The cache remembers the :class:`AudioConfig` it was built with (``audio_config.json``) and the F0
tracker (``f0_tracker.json``, one of :data:`F0_TRACKERS`); extracting into it with a different config
or tracker is an error naming the folder, because mixing analyses would silently corrupt training.
A cache written before trackers were recorded holds Harvest's F0 (the only tracker then) and is read
as ``"harvest"``. Do not run two extractions into the same folder at the same time.

F0 trackers, in falling cost (measured in docs/benchmarks.md, "Data preparation"):

* ``"harvest"``: :func:`prosody_vae.audio.f0_energy`'s track, the one that corpus labels and metrics
  use. It is nearly all of the extraction's cost (about 7x real time on one core).
* ``"harvest-decimated"``: the same Harvest + StoneMask with Harvest run at
  :func:`~prosody_vae.audio.features.decimated_harvest_rate` (4 kHz by default), about 1.7 times as fast.
  It agrees with ``"harvest"`` about as well as Harvest agrees with itself on resampled input (table in
  docs/corpus.md), but it is not the labels' track, hence its own name.
* ``"none"``: no F0 at all, for models that do not predict pitch; extraction then costs a few
  milliseconds per second of audio. A model with ``backbone.pitch`` cannot train on such a cache.

With ``"harvest"``, ``f0_store`` names a folder of stored reference tracks (:mod:`prosody_vae.data.f0_store`,
e.g. the ``f0/`` that the built-in corpus keeps beside its manifest): an utterance whose stored track
provably is the one Harvest would give here (same audio bytes, same analysis, same code versions)
takes it instead of running Harvest, bit for bit the same cache at the cost of the mel alone.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from prosody_vae.atomic import write_text_atomic
from prosody_vae.audio import (
    AudioConfig,
    decimated_harvest_rate,
    frame_energy,
    harvest_f0,
    load_audio,
    log_mel,
    process_audio,
)
from prosody_vae.data.f0_store import read_track, track_path
from prosody_vae.data.manifest import Utterance

__all__ = [
    "F0_TRACKERS",
    "ExtractionReport",
    "F0Tracker",
    "extract_features",
    "f0_method",
    "feature_path",
    "load_features",
    "read_f0_tracker",
]

F0Tracker = Literal["harvest", "harvest-decimated", "none"]
F0_TRACKERS: tuple[str, ...] = get_args(F0Tracker)

_CONFIG_FILE = "audio_config.json"
_TRACKER_FILE = "f0_tracker.json"
# Caches written before the tracker was recorded: their F0 came from f0_energy, i.e. Harvest.
_UNRECORDED_TRACKER = "harvest"
_TMP_PREFIX = ".partial-"


@dataclass
class ExtractionReport:
    """Outcome of :func:`extract_features` (lists of utterance ids)."""

    ok: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    reused_f0: list[str] = field(default_factory=list)  # of ``ok``: F0 taken from a stored track

    def summary(self) -> str:
        lines = [
            f"extracted {len(self.ok)}, already cached {len(self.skipped_existing)}, failed {len(self.failed)}"
        ]
        if self.reused_f0:
            lines[0] += f"; F0 of {len(self.reused_f0)} from stored tracks"
        lines += [f"  {utt_id}: {reason}" for utt_id, reason in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def feature_path(cache_dir: str | Path, utt_id: str) -> Path:
    """``<cache_dir>/<utt_id>.pt``; ids with path separators are rejected."""
    if not utt_id or "/" in utt_id or "\\" in utt_id or utt_id in (".", ".."):
        raise ValueError(f"utterance id {utt_id!r} cannot be used as a file name")
    return Path(cache_dir) / f"{utt_id}.pt"


def load_features(cache_dir: str | Path, utt_id: str) -> dict[str, Tensor]:
    """Load ``{"mel": (T, n_mels), "energy": (T,), "f0": (T,)}`` (float32, on the CPU).

    ``"f0"`` is absent when the cache was built with the ``"none"`` tracker (see
    :func:`read_f0_tracker`). Uses ``torch.load(..., weights_only=True)``: a cache file can never run
    code.
    """
    path = feature_path(cache_dir, utt_id)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no cached features for {utt_id!r} (run feature extraction)")
    try:
        features = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged zip/pickle
        raise ValueError(f"{path}: cannot load cached features ({error})") from error
    if not isinstance(features, dict) or not {"mel", "energy"} <= set(features):
        raise ValueError(f"{path}: not a feature file (expected keys mel, energy and optionally f0)")
    return features


def f0_method(tracker: F0Tracker, config: AudioConfig) -> str:
    """How ``tracker`` computes F0 under ``config``, in words (recorded beside the tracker's name)."""
    if tracker == "harvest":
        return f"pyworld harvest + stonemask at {config.sample_rate} Hz (prosody_vae.audio.f0_energy)"
    if tracker == "harvest-decimated":
        return (
            f"pyworld harvest at {decimated_harvest_rate(config)} Hz (soxr_hq resampling), "
            f"stonemask at {config.sample_rate} Hz"
        )
    if tracker == "none":
        return "no F0"
    raise ValueError(f"F0 tracker must be one of {F0_TRACKERS}, got {tracker!r}")


def read_f0_tracker(cache_dir: str | Path) -> str | None:
    """The F0 tracker a feature cache was built with; None when ``cache_dir`` holds no cache yet.

    A cache written before trackers were recorded (features or ``audio_config.json`` but no
    ``f0_tracker.json``) is reported as ``"harvest"``, the only tracker of those versions.
    """
    cache_dir = Path(cache_dir)
    path = cache_dir / _TRACKER_FILE
    if path.is_file():
        try:
            tracker = json.loads(path.read_text(encoding="utf-8")).get("tracker")
        except (ValueError, AttributeError) as error:
            raise ValueError(f"{path}: unreadable F0 tracker record ({error})") from error
        if tracker not in F0_TRACKERS:
            raise ValueError(f"{path}: unknown F0 tracker {tracker!r}; expected one of {F0_TRACKERS}")
        return tracker
    if (cache_dir / _CONFIG_FILE).is_file() or any(cache_dir.glob("*.pt")):
        return _UNRECORDED_TRACKER
    return None


def _harvest_rate(tracker: F0Tracker, config: AudioConfig) -> int | None:
    """The rate ``harvest_f0`` runs Harvest at for ``tracker`` (None: the analysis rate)."""
    return decimated_harvest_rate(config) if tracker == "harvest-decimated" else None


def _compute(
    audio: str, config: AudioConfig, tracker: F0Tracker, stored_f0: str | None = None
) -> tuple[dict[str, Tensor], bool]:
    """The features of one file, and whether its F0 came from the stored track ``stored_f0``
    (checked by :func:`~prosody_vae.data.f0_store.read_track`; only given with ``"harvest"``)."""
    wav = load_audio(audio, config)
    features = {"mel": log_mel(wav, config).contiguous()}  # (T, n_mels)
    reused = False
    if tracker != "none":
        f0 = None
        if stored_f0 is not None:
            f0 = read_track(stored_f0, audio=audio, config=config, frames=features["mel"].shape[0])
            reused = f0 is not None
        if f0 is None:
            f0 = harvest_f0(wav, config, rate=_harvest_rate(tracker, config))
        features["f0"] = torch.from_numpy(f0)  # (T,)
    features["energy"] = torch.from_numpy(frame_energy(wav, config))  # (T,)
    assert all(value.shape[0] == features["mel"].shape[0] for value in features.values()), "one frame grid"
    return features, reused


def _save_atomic(features: dict[str, Tensor], path: Path) -> None:
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=_TMP_PREFIX, suffix=".tmp", delete=False)
    try:
        with handle:
            torch.save(features, handle)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


class _Job(NamedTuple):
    utt_id: str
    audio: str
    path: str
    config: AudioConfig
    tracker: F0Tracker
    stored_f0: str | None  # a stored track to try before running Harvest


def _extract_one(job: _Job) -> tuple[str, str | None, bool]:
    """Compute and save one utterance; returns ``(id, None, F0 reused)`` or ``(id, reason, False)``."""
    try:
        features, reused = _compute(job.audio, job.config, job.tracker, job.stored_f0)
        _save_atomic(features, Path(job.path))
    except Exception as error:  # one bad file must never end the job; its reason is reported
        return job.utt_id, f"{type(error).__name__}: {error}", False
    return job.utt_id, None, reused


def _warm_up(config: AudioConfig, tracker: F0Tracker) -> None:
    """Run the analysis once on a synthetic tone so lazy imports and JIT happen before forking."""
    samples = max(config.sample_rate // 4, 2 * config.n_fft)  # long enough for any valid config
    tone = 0.5 * np.sin(2 * np.pi * 200.0 * np.arange(samples) / config.sample_rate)
    wav = process_audio(tone.astype(np.float32), config.sample_rate, config, source="<warm-up>")
    log_mel(wav, config)
    frame_energy(wav, config)
    if tracker != "none":
        harvest_f0(wav, config, rate=_harvest_rate(tracker, config))


def _init_worker() -> None:
    # Each process handles whole utterances; intra-op threads would only fight over the cores.
    torch.set_num_threads(1)


def _check_config(cache_dir: Path, config: AudioConfig) -> None:
    wanted = dataclasses.asdict(config)
    stored_path = cache_dir / _CONFIG_FILE
    if stored_path.is_file():
        stored = json.loads(stored_path.read_text(encoding="utf-8"))
        if stored != wanted:
            changed = sorted(key for key in set(stored) | set(wanted) if stored.get(key) != wanted.get(key))
            raise ValueError(
                f"{cache_dir}: feature cache was built with a different AudioConfig (differs in {changed}); "
                "use a new cache folder"
            )
    else:
        write_text_atomic(stored_path, json.dumps(wanted, indent=2) + "\n")


def _check_tracker(cache_dir: Path, tracker: F0Tracker, config: AudioConfig) -> None:
    """Refuse to add ``tracker``'s F0 to a cache built with another tracker.

    Runs before anything is written, so that a fresh folder is not mistaken for an unrecorded one.
    """
    f0_method(tracker, config)  # validates the name
    stored = read_f0_tracker(cache_dir)
    if stored is not None and stored != tracker:
        unrecorded = "" if (cache_dir / _TRACKER_FILE).is_file() else " (built before trackers were recorded)"
        raise ValueError(
            f"{cache_dir}: feature cache was built with F0 tracker {stored!r}{unrecorded}, not {tracker!r}; "
            f"mixing trackers would give training two kinds of F0 targets. Use a new cache folder, or "
            f"extract with {stored!r}"
        )


def _record_tracker(cache_dir: Path, tracker: F0Tracker, config: AudioConfig) -> None:
    path = cache_dir / _TRACKER_FILE
    if not path.is_file():
        record = {"tracker": tracker, "method": f0_method(tracker, config)}
        write_text_atomic(path, json.dumps(record, indent=2) + "\n")


def extract_features(
    utterances: Sequence[Utterance],
    cache_dir: str | Path,
    config: AudioConfig,
    num_workers: int = 2,
    progress: bool = True,
    *,
    f0_tracker: F0Tracker = "harvest",
    f0_store: str | Path | None = None,
) -> ExtractionReport:
    """Compute log-mel, energy and (unless ``f0_tracker="none"``) F0 for every utterance not yet in
    ``cache_dir``.

    Args:
        utterances: utterances to process (ids must be unique).
        cache_dir: output folder, created if needed.
        config: audio analysis parameters; must match the cache's stored config.
        num_workers: worker processes (the platform's default start method, one torch thread
            each); ``<= 1`` runs in this process, also on one torch thread, which is easier to debug.
        progress: show a tqdm progress bar.
        f0_tracker: one of :data:`F0_TRACKERS` (see the module docstring); must match the tracker
            the cache was built with.
        f0_store: with ``"harvest"``, a folder of stored reference tracks
            (:mod:`prosody_vae.data.f0_store`, ``<store>/<id>.npz``) to take each utterance's F0
            from when its record matches this audio and config; otherwise Harvest runs. Ignored by
            the other trackers, whose F0 is another computation.

    Returns:
        An :class:`ExtractionReport`; ``ok``, ``failed`` and ``reused_f0`` follow the input order.

    Raises:
        ValueError: naming ``cache_dir``, when it was built with another config or F0 tracker.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _check_tracker(cache_dir, f0_tracker, config)
    _check_config(cache_dir, config)
    _record_tracker(cache_dir, f0_tracker, config)
    for stray in cache_dir.glob(f"{_TMP_PREFIX}*.tmp"):
        stray.unlink(missing_ok=True)  # left by a killed run; never a complete result

    store = Path(f0_store) if f0_store is not None and f0_tracker == "harvest" else None
    report = ExtractionReport()
    jobs: list[_Job] = []
    seen: set[str] = set()
    for utt in utterances:
        if utt.id in seen:
            raise ValueError(f"duplicate utterance id {utt.id!r} in extraction input")
        seen.add(utt.id)
        path = feature_path(cache_dir, utt.id)
        if path.is_file():
            report.skipped_existing.append(utt.id)
        else:
            stored = None if store is None else str(track_path(store, utt.id))
            jobs.append(_Job(utt.id, utt.audio, str(path), config, f0_tracker, stored))

    results: dict[str, tuple[str | None, bool]] = {}
    bar = tqdm(total=len(jobs), desc="features", unit="utt", disable=not progress)
    if num_workers <= 1 or len(jobs) <= 1:
        # One torch thread here too, as in the workers: the per-utterance STFTs are too small to split,
        # and on a machine whose other core is busy two threads made this loop 10 to 40 times slower
        # (docs/benchmarks.md, "Data preparation"). The caller's setting is restored afterwards.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for job in jobs:
                utt_id, reason, reused = _extract_one(job)
                results[utt_id] = reason, reused
                bar.update()
        finally:
            torch.set_num_threads(threads)
    else:
        # The platform default, as torch's DataLoader does: fork on Linux (before Python 3.14), where
        # workers then inherit the warmed-up imports below instead of paying seconds each for
        # torch/librosa/scipy; spawn or forkserver elsewhere. Forked workers use one torch thread,
        # which is what keeps them clear of the parent's OpenMP pool (the DataLoader rule).
        context = multiprocessing.get_context()
        if context.get_start_method() == "fork":
            _warm_up(config, f0_tracker)
        with context.Pool(processes=min(num_workers, len(jobs)), initializer=_init_worker) as pool:
            for utt_id, reason, reused in pool.imap_unordered(_extract_one, jobs, chunksize=1):
                results[utt_id] = reason, reused
                bar.update()
    bar.close()
    for job in jobs:
        reason, reused = results[job.utt_id]
        if reason is None:
            report.ok.append(job.utt_id)
            if reused:
                report.reused_f0.append(job.utt_id)
        else:
            report.failed.append((job.utt_id, reason))
    return report
