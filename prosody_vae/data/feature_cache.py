"""The feature cache: one ``<cache_dir>/<utt_id>.pt`` per utterance with mel, F0 and energy.

Extraction is resumable and fault tolerant:

* each file is written to a hidden temporary file in the same folder and moved into place with
  ``os.replace`` (atomic on POSIX), so a killed run never leaves a truncated ``.pt``; stray
  temporary files from a killed run are removed at the start of the next one;
* utterances whose ``.pt`` already exists are skipped, so rerunning continues where it stopped;
* an utterance that fails (silent, corrupt, NaN, too short after trimming, ...) is listed in the
  :class:`ExtractionReport` with its reason and never stops the job.

The cache remembers the :class:`AudioConfig` it was built with (``audio_config.json``); extracting
into it with a different config is an error, because mixing analyses would silently corrupt training.
Do not run two extractions into the same folder at the same time.
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

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from prosody_vae.atomic import write_text_atomic
from prosody_vae.audio import AudioConfig, f0_energy, load_audio, log_mel, process_audio
from prosody_vae.data.manifest import Utterance

__all__ = ["ExtractionReport", "extract_features", "feature_path", "load_features"]

_CONFIG_FILE = "audio_config.json"
_TMP_PREFIX = ".partial-"


@dataclass
class ExtractionReport:
    """Outcome of :func:`extract_features` (lists of utterance ids)."""

    ok: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"extracted {len(self.ok)}, already cached {len(self.skipped_existing)}, failed {len(self.failed)}"
        ]
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
    """Load ``{"mel": (T, n_mels), "f0": (T,), "energy": (T,)}`` (float32, on the CPU).

    Uses ``torch.load(..., weights_only=True)``: a cache file can never run code.
    """
    path = feature_path(cache_dir, utt_id)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no cached features for {utt_id!r} (run feature extraction)")
    try:
        features = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged zip/pickle
        raise ValueError(f"{path}: cannot load cached features ({error})") from error
    if not isinstance(features, dict) or not {"mel", "f0", "energy"} <= set(features):
        raise ValueError(f"{path}: not a feature file (expected keys mel, f0, energy)")
    return features


def _compute(audio: str, config: AudioConfig) -> dict[str, Tensor]:
    wav = load_audio(audio, config)
    mel = log_mel(wav, config)  # (T, n_mels)
    f0, energy = f0_energy(wav, config)  # (T,), (T,)
    assert mel.shape[0] == f0.shape[0] == energy.shape[0], "mel, F0 and energy share one frame grid"
    return {"mel": mel.contiguous(), "f0": torch.from_numpy(f0), "energy": torch.from_numpy(energy)}


def _save_atomic(features: dict[str, Tensor], path: Path) -> None:
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=_TMP_PREFIX, suffix=".tmp", delete=False)
    try:
        with handle:
            torch.save(features, handle)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _extract_one(job: tuple[str, str, str, AudioConfig]) -> tuple[str, str | None]:
    """Compute and save one utterance; returns ``(id, None)`` or ``(id, reason)``."""
    utt_id, audio, path, config = job
    try:
        _save_atomic(_compute(audio, config), Path(path))
    except Exception as error:  # one bad file must never end the job; its reason is reported
        return utt_id, f"{type(error).__name__}: {error}"
    return utt_id, None


def _warm_up(config: AudioConfig) -> None:
    """Run the analysis once on a synthetic tone so lazy imports and JIT happen before forking."""
    samples = max(config.sample_rate // 4, 2 * config.n_fft)  # long enough for any valid config
    tone = 0.5 * np.sin(2 * np.pi * 200.0 * np.arange(samples) / config.sample_rate)
    wav = process_audio(tone.astype(np.float32), config.sample_rate, config, source="<warm-up>")
    log_mel(wav, config)
    f0_energy(wav, config)


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


def extract_features(
    utterances: Sequence[Utterance],
    cache_dir: str | Path,
    config: AudioConfig,
    num_workers: int = 2,
    progress: bool = True,
) -> ExtractionReport:
    """Compute log-mel, F0 and energy for every utterance not yet in ``cache_dir``.

    Args:
        utterances: utterances to process (ids must be unique).
        cache_dir: output folder, created if needed.
        config: audio analysis parameters; must match the cache's stored config.
        num_workers: worker processes (the platform's default start method, one torch thread
            each); ``<= 1`` runs in this process, which is easier to debug.
        progress: show a tqdm progress bar.

    Returns:
        An :class:`ExtractionReport`; ``ok`` and ``failed`` follow the input order.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _check_config(cache_dir, config)
    for stray in cache_dir.glob(f"{_TMP_PREFIX}*.tmp"):
        stray.unlink(missing_ok=True)  # left by a killed run; never a complete result

    report = ExtractionReport()
    jobs: list[tuple[str, str, str, AudioConfig]] = []
    seen: set[str] = set()
    for utt in utterances:
        if utt.id in seen:
            raise ValueError(f"duplicate utterance id {utt.id!r} in extraction input")
        seen.add(utt.id)
        path = feature_path(cache_dir, utt.id)
        if path.is_file():
            report.skipped_existing.append(utt.id)
        else:
            jobs.append((utt.id, utt.audio, str(path), config))

    results: dict[str, str | None] = {}
    bar = tqdm(total=len(jobs), desc="features", unit="utt", disable=not progress)
    if num_workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            utt_id, reason = _extract_one(job)
            results[utt_id] = reason
            bar.update()
    else:
        # The platform default, as torch's DataLoader does: fork on Linux (before Python 3.14), where
        # workers then inherit the warmed-up imports below instead of paying seconds each for
        # torch/librosa/scipy; spawn or forkserver elsewhere. Forked workers use one torch thread,
        # which is what keeps them clear of the parent's OpenMP pool (the DataLoader rule).
        context = multiprocessing.get_context()
        if context.get_start_method() == "fork":
            _warm_up(config)
        with context.Pool(processes=min(num_workers, len(jobs)), initializer=_init_worker) as pool:
            for utt_id, reason in pool.imap_unordered(_extract_one, jobs, chunksize=1):
                results[utt_id] = reason
                bar.update()
    bar.close()
    for utt_id, _, _, _ in jobs:
        reason = results[utt_id]
        if reason is None:
            report.ok.append(utt_id)
        else:
            report.failed.append((utt_id, reason))
    return report
