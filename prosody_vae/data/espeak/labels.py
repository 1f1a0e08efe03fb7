"""Realised prosody of an utterance: F0 level and spread, duration, voicing.

The built-in corpus stores these measurements beside the factors it asked espeak-ng for, so that a
user can check that the labels are real; the same function measures any audio (for example a
synthesised transfer output) on the same scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyworld

from prosody_vae.audio import AudioConfig, AudioError, load_audio, process_audio

__all__ = ["f0_contour", "measure_prosody"]

# espeak-ng speech is typically 60-85% voiced after trimming. DIO occasionally loses the voicing of
# most of a short utterance (about 1 in 1000 in the default corpus found no voiced frame at all);
# below this voiced fraction the slower but more reliable Harvest tracker is used instead.
_MIN_DIO_VOICED_FRACTION = 0.25


def _track_f0(wav: np.ndarray, config: AudioConfig) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) on the mel frame grid: DIO + StoneMask, Harvest + StoneMask as fallback."""
    options = {"f0_floor": config.f0_min, "f0_ceil": config.f0_max, "frame_period": config.frame_period_ms}
    f0, times = pyworld.dio(wav, config.sample_rate, **options)
    if np.mean(f0 > 0) < _MIN_DIO_VOICED_FRACTION:
        f0, times = pyworld.harvest(wav, config.sample_rate, **options)
    return pyworld.stonemask(wav, f0, times, config.sample_rate)


def _trimmed_f0(audio: str | Path | np.ndarray, config: AudioConfig) -> tuple[np.ndarray, np.ndarray]:
    """(F0 track, trimmed float64 waveform) of a file or of samples at ``config.sample_rate``."""
    if isinstance(audio, np.ndarray):
        wav = process_audio(audio, config.sample_rate, config, source="<array>")
    else:
        wav = load_audio(audio, config)
    wav = wav.astype(np.float64)  # pyworld works in float64
    return _track_f0(wav, config), wav


def f0_contour(audio: str | Path | np.ndarray, *, config: AudioConfig) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) on the mel frame grid, tracked as :func:`measure_prosody` tracks it."""
    return _trimmed_f0(audio, config)[0]


def measure_prosody(audio: str | Path | np.ndarray, *, config: AudioConfig) -> dict[str, float]:
    """Realised prosody of one utterance, as the training front end sees it.

    Args:
        audio: an audio file, read with :func:`prosody_vae.audio.load_audio`; or (N,) samples at
            ``config.sample_rate``, passed through :func:`prosody_vae.audio.process_audio`. Either
            way leading and trailing silence is trimmed exactly as in training.
        config: analysis parameters (sample rate, trimming, F0 search range, frame grid).

    F0 comes from WORLD DIO refined by StoneMask on the mel frame grid, not from Harvest as in
    :func:`prosody_vae.audio.f0_energy`: Harvest costs about 0.25 s per second of audio, most of the
    corpus build on two cores, while DIO is about twenty times faster. Where DIO finds less than a
    quarter of the frames voiced, Harvest is used for that utterance. ``docs/corpus.md`` reports how
    closely the DIO labels agree with Harvest on this corpus.

    Returns:
        ``f0_mean_hz`` and ``f0_std_hz`` over voiced frames; ``f0_range_st``, the 90th over the 10th
        percentile of voiced F0 in semitones (a spread robust to stray octave errors and comparable
        across pitch levels); ``voiced_fraction``; ``duration_s`` after trimming.

    Raises:
        prosody_vae.audio.AudioError: unreadable or silent audio, or fewer than two voiced frames.
    """
    source = "<array>" if isinstance(audio, np.ndarray) else str(audio)
    f0, wav = _trimmed_f0(audio, config)
    voiced = f0[f0 > 0]
    if voiced.size < 2:
        raise AudioError(source, f"{voiced.size} voiced frames found; cannot measure F0")
    p10, p90 = np.percentile(voiced, [10.0, 90.0])
    return {
        "f0_mean_hz": float(voiced.mean()),
        "f0_std_hz": float(voiced.std()),
        "f0_range_st": float(12.0 * np.log2(p90 / p10)),
        "voiced_fraction": float(voiced.size / f0.size),
        "duration_s": float(wav.shape[0] / config.sample_rate),
    }
