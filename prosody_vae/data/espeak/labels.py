"""Realised prosody of an utterance: F0 level and spread, duration, voicing.

The built-in corpus stores these measurements beside the factors it asked espeak-ng for, so that a
user can check that the labels are real; the same function measures any audio (for example a
synthesised transfer output) on the same scale.

F0 is tracked exactly as everywhere else in the library: :func:`prosody_vae.audio.f0_energy`, WORLD
Harvest refined by StoneMask, on the mel frame grid, with the analysis's F0 search range. There is no
fallback tracker, so a label, a cached feature and a metric computed from the same samples share one
F0 track; :data:`F0_METHOD` names it for the tables and files that record how labels were made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prosody_vae.audio import AudioConfig, AudioError, f0_energy, load_audio, process_audio

__all__ = ["F0_METHOD", "f0_contour", "measure_prosody"]

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


def measure_prosody(audio: str | Path | np.ndarray, *, config: AudioConfig) -> dict[str, float]:
    """Realised prosody of one utterance, as the training front end sees it.

    Args:
        audio: an audio file, read with :func:`prosody_vae.audio.load_audio`; or (N,) samples at
            ``config.sample_rate``, passed through :func:`prosody_vae.audio.process_audio`. Either
            way leading and trailing silence is trimmed exactly as in training.
        config: analysis parameters (sample rate, trimming, F0 search range, frame grid).

    F0 is :func:`prosody_vae.audio.f0_energy`'s (Harvest + StoneMask, see :data:`F0_METHOD`), the
    tracker of the feature cache and of :mod:`prosody_vae.metrics`: on the same samples a label and a
    metric see the same F0 frames. Harvest costs about 0.25 s per second of audio on one core; the
    built-in corpus pays that once, when it is built.

    Returns:
        ``f0_mean_hz`` and ``f0_std_hz`` over voiced frames; ``f0_range_st``, the 90th over the 10th
        percentile of voiced F0 in semitones (a spread robust to stray octave errors and comparable
        across pitch levels); ``voiced_fraction``; ``duration_s`` after trimming.

    Raises:
        prosody_vae.audio.AudioError: unreadable or silent audio, or fewer than two voiced frames.
    """
    source = "<array>" if isinstance(audio, np.ndarray) else str(audio)
    wav = _trimmed(audio, config)
    f0 = f0_energy(wav, config)[0]
    voiced = f0[f0 > 0].astype(np.float64)
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
