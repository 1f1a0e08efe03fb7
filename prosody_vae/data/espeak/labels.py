"""Realised prosody of an utterance: F0 level and spread, duration, voicing.

The built-in corpus stores these measurements beside the factors it asked espeak-ng for, so that a
user can check that the labels are real; the same function measures any audio (for example a
synthesised transfer output) on the same scale.

F0 is tracked exactly as everywhere else in the library: :func:`prosody_vae.audio.f0_energy`, WORLD
Harvest refined by StoneMask, on the mel frame grid, with the analysis's F0 search range. There is no
fallback tracker, so a label, a cached feature and a metric computed from the same samples share one
F0 track; :data:`F0_METHOD` names it for the tables and files that record how labels were made.

:func:`measure_prosody` tracks and measures in one call; :func:`track_labels` measures a track that
the caller already has, so that the corpus build can keep the track it measured
(:mod:`prosody_vae.data.f0_store`) instead of tracking twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from prosody_vae.audio import AudioConfig, AudioError, f0_energy, load_audio, process_audio

__all__ = ["F0_METHOD", "clean_f0", "f0_contour", "intonation_labels", "measure_prosody", "track_labels"]

# How the labels' F0 is tracked, in words, for corpus descriptions and result tables.
F0_METHOD = "pyworld harvest + stonemask (prosody_vae.audio.f0_energy), trimmed audio, mel frame grid"


def _trimmed(audio: str | Path | np.ndarray, config: AudioConfig) -> np.ndarray:
    """(N,) float32 samples of a file or of samples at ``config.sample_rate``, trimmed as in training."""
    if isinstance(audio, np.ndarray):
        return process_audio(audio, config.sample_rate, config, source="<array>")
    return load_audio(audio, config)


def f0_contour(audio: str | Path | np.ndarray, *, config: AudioConfig) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) on the mel frame grid of the trimmed audio, as :func:`measure_prosody` uses.

    Returns:
        (T,) float32 with ``T = 1 + N // hop`` for the trimmed length ``N``.
    """
    return f0_energy(_trimmed(audio, config), config)[0]


def measure_prosody(
    audio: str | Path | np.ndarray, *, config: AudioConfig, intonation: bool = False
) -> dict[str, float]:
    """Realised prosody of one utterance, as the training front end sees it.

    Args:
        audio: an audio file, read with :func:`prosody_vae.audio.load_audio`; or (N,) samples at
            ``config.sample_rate``, passed through :func:`prosody_vae.audio.process_audio`. Either
            way leading and trailing silence is trimmed exactly as in training.
        config: analysis parameters (sample rate, trimming, F0 search range, frame grid).
        intonation: add :func:`intonation_labels` of the same F0 track (no second tracking).

    F0 is :func:`prosody_vae.audio.f0_energy`'s (Harvest + StoneMask, see :data:`F0_METHOD`), the
    tracker of the feature cache and of :mod:`prosody_vae.metrics`: on the same samples a label and a
    metric see the same F0 frames. Harvest costs about 0.25 s per second of audio on one core; the
    built-in corpus pays that once, when it is built.

    Returns:
        ``f0_mean_hz`` and ``f0_std_hz`` over voiced frames; ``f0_range_st``, the 90th over the 10th
        percentile of voiced F0 in semitones (a spread robust to stray octave errors and comparable
        across pitch levels); ``voiced_fraction``; ``duration_s`` after trimming; with
        ``intonation``, also ``f0_spread_st`` and ``f0_peak_position``.

    Raises:
        prosody_vae.audio.AudioError: unreadable or silent audio, or fewer than two voiced frames
            (with ``intonation``: fewer than 5 frames left after :func:`clean_f0`).
    """
    source = "<array>" if isinstance(audio, np.ndarray) else str(audio)
    wav = _trimmed(audio, config)
    duration_s = wav.shape[0] / config.sample_rate
    return track_labels(
        f0_energy(wav, config)[0], duration_s=duration_s, intonation=intonation, source=source
    )


def track_labels(
    f0: np.ndarray, *, duration_s: float, intonation: bool = False, source: str = "<array>"
) -> dict[str, float]:
    """:func:`measure_prosody`'s labels of a reference F0 track that the caller already has.

    Args:
        f0: (T,) F0 in Hz (0 = unvoiced) of the trimmed audio, as :func:`prosody_vae.audio.f0_energy`
            returns it.
        duration_s: the trimmed audio's duration in seconds.
        intonation: add :func:`intonation_labels`.
        source: what the track belongs to, for the error message.

    Raises:
        prosody_vae.audio.AudioError: as :func:`measure_prosody`.
    """
    voiced = f0[f0 > 0].astype(np.float64)
    if voiced.size < 2:
        raise AudioError(source, f"{voiced.size} voiced frames found; cannot measure F0")
    p10, p90 = np.percentile(voiced, [10.0, 90.0])
    labels = {
        "f0_mean_hz": float(voiced.mean()),
        "f0_std_hz": float(voiced.std()),
        "f0_range_st": float(12.0 * np.log2(p90 / p10)),
        "voiced_fraction": float(voiced.size / f0.size),
        "duration_s": float(duration_s),
    }
    if intonation:
        labels.update(intonation_labels(f0, source=source))
    return labels


# Cleaning of a track before the intonation labels (see clean_f0). Semitone thresholds: a slip is an
# octave (12 st); the stylised contour moves at most about 8 st in all, and less between neighbours.
_OCTAVE_BAND_ST = (8.0, 16.0)
_MEDIAN_FRAMES = 5
_EDGE_FRAMES = 1
_LOCAL_FRAMES = 31
_MAX_LOCAL_DEVIATION_ST = 5.0
_MIN_CLEAN_FRAMES = 5
_PEAK_SHARE = 0.2


def clean_f0(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The voiced frames of a track with tracker slips repaired or removed.

    Steps, on ``12 log2 F0`` of the voiced frames:

    1. octave slips: a frame 8-16 semitones below (above) the utterance's median is moved up (down)
       an octave;
    2. each voiced run is median-filtered over 5 frames and loses its first and last frame (onsets
       and offsets, where Harvest's estimates wander); runs shorter than 5 frames are dropped;
    3. frames more than 5 semitones from the running median of 31 voiced frames are dropped.

    Args:
        f0: (T,) F0 in Hz, 0 = unvoiced.

    Returns:
        ``(frames, semitones)``: indices into ``f0`` of the frames kept, in time order, and their
        cleaned ``12 log2 F0`` values; both empty when nothing is left.
    """
    track = np.asarray(f0, dtype=np.float64)
    voiced = np.flatnonzero(track > 0)
    if voiced.size == 0:
        return voiced, np.zeros(0)
    semitones = 12.0 * np.log2(track[voiced])
    distance = semitones - np.median(semitones)
    low, high = _OCTAVE_BAND_ST
    semitones = semitones + 12.0 * ((-high < distance) & (distance < -low))
    semitones = semitones - 12.0 * ((low < distance) & (distance < high))
    run_of_frame, _ = ndimage.label(track > 0)
    runs = run_of_frame[voiced]  # which voiced run each voiced frame belongs to, in time order
    kept_frames, kept_values = [], []
    for run in np.unique(runs):
        members = np.flatnonzero(runs == run)
        if members.size < 2 * _EDGE_FRAMES + 3:
            continue
        smooth = ndimage.median_filter(semitones[members], size=_MEDIAN_FRAMES, mode="nearest")
        inner = slice(_EDGE_FRAMES, members.size - _EDGE_FRAMES)
        kept_frames.append(voiced[members][inner])
        kept_values.append(smooth[inner])
    if not kept_frames:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    frames, values = np.concatenate(kept_frames), np.concatenate(kept_values)
    window = min(_LOCAL_FRAMES, values.size) | 1  # odd, at most the number of frames
    local = ndimage.median_filter(values, size=window, mode="nearest")
    near = np.abs(values - local) <= _MAX_LOCAL_DEVIATION_ST
    return frames[near], values[near]


def intonation_labels(f0: np.ndarray, *, source: str = "<array>") -> dict[str, float]:
    """Spread and peak position of an utterance's intonation, from its :func:`clean_f0` frames.

    Args:
        f0: (T,) F0 in Hz (0 = unvoiced), e.g. :func:`f0_contour` of the utterance.
        source: what the track belongs to, for the error message.

    Returns:
        ``f0_spread_st``: the 90th over the 10th percentile of the cleaned F0, in semitones (the
        quantity of ``f0_range_st`` without its octave slips); ``f0_peak_position``: where the
        highest fifth of the cleaned frames lies, as the mean of their times with the first cleaned
        frame at 0 and the last at 1 (0 = a fall from the start, 1 = a rise to the end).

    Raises:
        prosody_vae.audio.AudioError: fewer than 5 frames left after cleaning.
    """
    frames, semitones = clean_f0(f0)
    if frames.size < _MIN_CLEAN_FRAMES:
        raise AudioError(source, f"{frames.size} clean voiced frames; cannot measure intonation")
    p10, p90 = np.percentile(semitones, [10.0, 90.0])
    times = (frames - frames[0]) / (frames[-1] - frames[0])
    top = semitones >= np.percentile(semitones, 100.0 * (1.0 - _PEAK_SHARE))
    return {"f0_spread_st": float(p90 - p10), "f0_peak_position": float(times[top].mean())}
