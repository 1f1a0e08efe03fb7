"""Timing metrics: non-silent duration, duration ratio, speaking rate from syllable nuclei.

Conventions:

* **Non-silent duration** is the extent from the first to the last frame whose RMS lies within
  ``top_db`` (default 40 dB, the library's ``AudioConfig.trim_top_db``) of the loudest frame, as cut
  by ``librosa.effects.trim`` with the analysis frame and hop, less one frame length (``n_fft``):
  a frame counts as sound as soon as its window reaches the sound, so the cut extent overshoots by
  half a frame at each end; without the correction every duration carries a constant +n_fft bias
  (64 ms at 16 kHz) that pulls duration ratios towards 1. Leading and trailing silence is
  excluded; pauses *inside* the utterance are kept, because pause length is part of prosody (a
  slower or more hesitant rendition should show a larger ratio). The threshold is relative to the
  utterance's own peak, so the measure does not depend on gain.
* **Duration ratio** is output / reference of those durations: > 1 means the output is slower.
* **Speaking rate** is syllable nuclei per second of non-silent duration. Nuclei follow de Jong and
  Wempe (2009, "Praat script to detect syllable nuclei"), simplified: peaks of the frame energy in
  dB that (1) lie above a silence threshold of ``silence_db`` (25 dB) below the energy's 0.99
  quantile, (2) stand out by at least ``min_dip_db`` (2 dB) from the dips that separate them from
  neighbouring peaks (scipy's peak prominence; de Jong and Wempe require the dip before the peak),
  and (3) are voiced. Unlike a count of voiced segments, this counts several syllables inside one
  continuously voiced stretch, which is how connected speech (and espeak-ng) sounds.
"""

from __future__ import annotations

import librosa
import numpy as np
import scipy.signal

from prosody_vae.audio import SILENCE_PEAK, AudioConfig

from ._analysis import analysis_config

__all__ = ["duration_ratio", "energy_db", "nonsilent_duration", "speaking_rate", "syllable_nuclei"]

# RMS floor before the log: -100 dBFS, the same floor as the library's log-mel (1e-5 magnitude).
_ENERGY_FLOOR = 1e-5


def energy_db(energy: np.ndarray) -> np.ndarray:
    """Frame RMS (linear, as from :func:`prosody_vae.audio.f0_energy`) to dBFS, floored at -100."""
    values = np.asarray(energy, dtype=np.float64)
    return 20.0 * np.log10(np.maximum(values, _ENERGY_FLOOR))


def _check_top_db(top_db: float) -> None:
    if not top_db > 0:
        raise ValueError(f"top_db must be > 0, got {top_db!r}")


def nonsilent_duration(
    wav: np.ndarray, sample_rate: int, *, config: AudioConfig | None = None, top_db: float = 40.0
) -> float:
    """Seconds from the first to the last non-silent frame (``librosa.effects.trim``).

    Args:
        wav: (N,) float waveform.
        sample_rate: its rate in Hz.
        config: analysis (frame = ``n_fft``, hop = ``hop_length``); library defaults if None.
        top_db: frames more than this many dB below the loudest frame are silence.

    Returns 0.0 for a signal whose peak is below ``prosody_vae.audio.SILENCE_PEAK`` (-80 dBFS): a
    silent system output is a result to score, not an input error.
    """
    _check_top_db(top_db)
    analysis = analysis_config(sample_rate, config)
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"wav must be a non-empty (N,) waveform, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("wav contains NaN or infinite samples")
    if np.max(np.abs(x)) < SILENCE_PEAK:
        return 0.0  # digital silence (below -80 dBFS): trim's peak-relative threshold would keep it all
    _, (start, end) = librosa.effects.trim(
        x, top_db=top_db, frame_length=analysis.n_fft, hop_length=analysis.hop_length
    )
    # librosa's frames are rectangular, n_fft long and centred, and a frame counts as non-silent
    # as soon as it reaches the sound, so the cut overshoots by n_fft / 2 on each side (+- one hop).
    return max(0.0, float(end - start - analysis.n_fft)) / analysis.sample_rate


def duration_ratio(
    ref_wav: np.ndarray,
    out_wav: np.ndarray,
    sample_rate: int,
    *,
    config: AudioConfig | None = None,
    top_db: float = 40.0,
) -> float:
    """Non-silent duration of ``out_wav`` divided by that of ``ref_wav`` (nan if ref is all silence)."""
    ref = nonsilent_duration(ref_wav, sample_rate, config=config, top_db=top_db)
    out = nonsilent_duration(out_wav, sample_rate, config=config, top_db=top_db)
    return out / ref if ref > 0 else float("nan")


def syllable_nuclei(
    f0: np.ndarray, energy: np.ndarray, *, min_dip_db: float = 2.0, silence_db: float = 25.0
) -> np.ndarray:
    """Frame indices of syllable nuclei (module docstring, after de Jong and Wempe 2009).

    Args:
        f0: (T,) F0 in Hz, 0 = unvoiced.
        energy: (T,) frame RMS, linear (as from :func:`prosody_vae.audio.f0_energy`).
        min_dip_db: least prominence, in dB, for a peak to count as its own nucleus.
        silence_db: peaks more than this far below the 0.99 energy quantile are ignored.

    Returns:
        (K,) int64 frame indices in increasing order.
    """
    f0_arr, level = np.asarray(f0, dtype=np.float64), energy_db(energy)
    if f0_arr.ndim != 1 or f0_arr.shape != level.shape:
        raise ValueError(
            f"f0 and energy must be (T,) tracks of one length, got {f0_arr.shape}, {level.shape}"
        )
    if not min_dip_db > 0 or not silence_db > 0:
        raise ValueError(f"min_dip_db and silence_db must be > 0, got {min_dip_db!r}, {silence_db!r}")
    if level.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    threshold = np.quantile(level, 0.99) - silence_db
    peaks, _ = scipy.signal.find_peaks(level, height=threshold, prominence=min_dip_db)
    return peaks[f0_arr[peaks] > 0].astype(np.int64)


def speaking_rate(
    f0: np.ndarray,
    energy: np.ndarray,
    *,
    duration_s: float,
    min_dip_db: float = 2.0,
    silence_db: float = 25.0,
) -> float:
    """Syllable nuclei per second of ``duration_s`` (the non-silent duration); nan if it is 0.

    Args:
        f0: (T,) F0 in Hz, 0 = unvoiced.
        energy: (T,) frame RMS, linear.
        duration_s: non-silent duration from :func:`nonsilent_duration`.
        min_dip_db, silence_db: see :func:`syllable_nuclei`.
    """
    if not duration_s >= 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")
    count = len(syllable_nuclei(f0, energy, min_dip_db=min_dip_db, silence_db=silence_db))
    return count / duration_s if duration_s > 0 else float("nan")
