"""Stored reference F0 tracks: computed once, where a corpus is built, and reused by the feature cache.

The built-in corpus measures its prosody labels on the reference F0 track
(:func:`prosody_vae.audio.harvest_f0` at the analysis rate, which is what
:func:`prosody_vae.audio.f0_energy` returns) of each trimmed utterance. Harvest is nearly all of the
cost of building the corpus and of preparing its feature cache, and both compute the same track from
the same samples, so the build keeps it: ``<corpus>/f0/<id>.npz``. ``prepare`` with the ``harvest``
tracker then takes the stored track instead of running Harvest again.

A stored track is only reused when it provably is what the cache would compute. Each file carries,
beside the (T,) float32 track, the SHA-256 of the audio file it was computed from and a description
of the computation (:func:`reference_computation`): the whole :class:`AudioConfig` (sample rate,
trimming, peak normalisation, F0 search range, frame grid) and the versions of the code that decodes,
trims and tracks. A track whose audio bytes, config or versions differ is ignored and the F0
computed, so a reused track is bitwise the track that computing it gives. A content hash rather than
size and modification time: a copied corpus keeps its tracks, and a file rewritten with other samples
of the same length does not.

One ``.npz`` per utterance keeps the record and the track in one file, written atomically
(:func:`prosody_vae.atomic.atomic_path`): an interrupted build leaves whole tracks or none.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from prosody_vae.atomic import atomic_path
from prosody_vae.config import AudioConfig

__all__ = [
    "STORE_FOLDER",
    "file_digest",
    "read_track",
    "reference_computation",
    "track_path",
    "write_track",
]

# The folder of a corpus (beside its manifest.jsonl) that holds the tracks.
STORE_FOLDER = "f0"
# Bump when harvest_f0 or load_audio change what they compute without a version change below.
_FORMAT = 1
_METHOD = (
    "prosody_vae.audio.harvest_f0 at the analysis rate (pyworld harvest + stonemask) of "
    "prosody_vae.audio.load_audio's trimmed, peak-normalised samples, on the mel frame grid"
)
# Distributions whose code turns the file's bytes into the track: decoding (soundfile, libsndfile),
# resampling and trimming (librosa, soxr), arithmetic (numpy), tracking (pyworld), and this package.
_PACKAGES = ("prosody_vae", "numpy", "soundfile", "librosa", "soxr", "pyworld")


@functools.cache
def _versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    versions["libsndfile"] = soundfile.__libsndfile_version__
    return versions


def reference_computation(config: AudioConfig) -> dict[str, Any]:
    """What a stored track is: method, analysis config and code versions (JSON-ready).

    Two tracks with equal descriptions computed from equal audio bytes are bitwise equal.
    """
    return {
        "format": _FORMAT,
        "method": _METHOD,
        "audio_config": dataclasses.asdict(config),
        "versions": dict(_versions()),
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=8)
def _recorded_computation(config: AudioConfig) -> str:
    """The ``computation`` text a track computed under ``config`` records (cached: it is compared
    once per utterance)."""
    return _canonical(reference_computation(config))


def track_path(store: str | Path, utt_id: str) -> Path:
    """``<store>/<utt_id>.npz``; ids with path separators are rejected."""
    if not utt_id or "/" in utt_id or "\\" in utt_id or utt_id in (".", ".."):
        raise ValueError(f"utterance id {utt_id!r} cannot be used as a file name")
    return Path(store) / f"{utt_id}.npz"


def file_digest(path: str | Path) -> str:
    """SHA-256 of the file's bytes, hex (about 0.2 ms for a few seconds of 16-bit audio)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_track(path: str | Path, f0: np.ndarray, *, audio: str | Path, config: AudioConfig) -> Path:
    """Store the reference track ``f0`` of ``audio`` under ``config`` at ``path`` (atomically).

    Args:
        path: the track file, e.g. ``track_path(store, utt_id)``.
        f0: (T,) float32 F0 in Hz, exactly as :func:`prosody_vae.audio.harvest_f0` returned it for
            ``load_audio(audio, config)``.
        audio: the audio file it was computed from; its bytes are hashed now.
        config: the analysis config it was computed with.
    """
    track = np.asarray(f0)
    if track.ndim != 1 or track.dtype != np.float32:
        raise ValueError(f"{path}: a track is (T,) float32, got {track.dtype} {track.shape}")
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(  # the record is mostly text, stored as 4-byte characters
            handle,
            f0=track,
            audio_sha256=np.array(file_digest(audio)),
            computation=np.array(_recorded_computation(config)),
        )
    return path


def read_track(path: str | Path, *, audio: str | Path, config: AudioConfig, frames: int) -> np.ndarray | None:
    """The stored track at ``path`` when it provably is the reference track of ``audio``, else None.

    Args:
        path: the track file (absent is fine).
        audio: the audio file the caller is about to analyse; its bytes must hash to the stored digest.
        config: the caller's analysis config; the stored computation must equal this config's.
        frames: the number of frames the caller's analysis has (a track of another length is refused).

    Returns:
        (T,) float32 F0 in Hz, or None when the file is absent, unreadable or records another
        computation or other audio: the caller then computes the track itself.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            computation = str(stored["computation"])
            digest = str(stored["audio_sha256"])
            track = stored["f0"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # damaged or foreign: recomputing is always correct
    # Both sides are _canonical text (sorted keys, fixed separators), so equal text is an equal record;
    # a record written any other way is only ever recomputed, never wrongly reused.
    if computation != _recorded_computation(config):
        return None
    if track.dtype != np.float32 or track.shape != (frames,):
        return None
    if digest != file_digest(audio):
        return None
    return track
