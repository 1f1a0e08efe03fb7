"""Utterance-level prosody statistics and the full reference-vs-output comparison.

:func:`utterance_prosody` summarises one waveform (what a prosody-transfer evaluation correlates
between references and outputs); :func:`compare_prosody` computes every pairwise metric of this
package for one (reference, output) pair, analysing each waveform once.

Conventions of the statistics (all over the analysis of :mod:`prosody_vae.metrics._analysis`):

* F0 statistics use voiced frames only (F0 > 0, Harvest + StoneMask). ``f0_mean_hz`` and
  ``f0_std_hz`` are in Hz (population std); ``f0_range_st`` is the 90th minus the 10th percentile in
  semitones, ``12 * log2(p90 / p10)``: percentiles rather than min/max so that a few octave errors
  of the tracker do not set the range.
* Energy statistics are the mean and std of frame RMS in dBFS over non-silent frames (within
  ``top_db`` of the loudest frame), so leading/trailing silence does not dominate them.
* ``duration_s`` and ``speaking_rate`` are defined in :mod:`prosody_vae.metrics.duration`.

Undefined values (no voiced frame) are nan, as everywhere in this package.
"""

from __future__ import annotations

import numpy as np

from prosody_vae.audio import AudioConfig

from ._analysis import analysis_config, waveform_features
from .duration import energy_db, nonsilent_duration, speaking_rate
from .pitch import align_tracks, f0_correlation, f0_frame_errors, log_f0_rmse_cents
from .spectral import cepstra_from_log_mel, cepstral_distortion

__all__ = ["compare_prosody", "utterance_prosody"]


def _f0_statistics(f0: np.ndarray) -> dict[str, float]:
    voiced = f0[f0 > 0].astype(np.float64)
    if voiced.size == 0:
        return {"f0_mean_hz": float("nan"), "f0_std_hz": float("nan"), "f0_range_st": float("nan")}
    p10, p90 = np.percentile(voiced, [10.0, 90.0])
    return {
        "f0_mean_hz": float(voiced.mean()),
        "f0_std_hz": float(voiced.std()),
        "f0_range_st": float(12.0 * np.log2(p90 / p10)),
    }


def _energy_statistics(energy: np.ndarray, top_db: float) -> dict[str, float]:
    level = energy_db(energy)
    loud = level[level > level.max() - top_db]  # never empty: contains the maximum
    return {"energy_mean_db": float(loud.mean()), "energy_std_db": float(loud.std())}


def _summary(
    wav: np.ndarray, f0: np.ndarray, energy: np.ndarray, config: AudioConfig, top_db: float
) -> dict[str, float]:
    duration = nonsilent_duration(wav, config.sample_rate, config=config, top_db=top_db)
    return {
        "duration_s": duration,
        "speaking_rate": speaking_rate(f0, energy, duration_s=duration),
        **_f0_statistics(f0),
        **_energy_statistics(energy, top_db),
    }


def utterance_prosody(
    wav: np.ndarray, sample_rate: int, *, config: AudioConfig | None = None, top_db: float = 40.0
) -> dict[str, float]:
    """Prosody statistics of one utterance.

    Args:
        wav: (N,) float waveform.
        sample_rate: its rate in Hz.
        config: analysis (F0 search range ``f0_min``/``f0_max``, frames); library defaults if None.
        top_db: silence threshold below the loudest frame, for duration and energy.

    Returns:
        ``duration_s``, ``speaking_rate`` (syllable nuclei per second), ``f0_mean_hz``,
        ``f0_std_hz``, ``f0_range_st``, ``energy_mean_db``, ``energy_std_db``.
    """
    analysis = analysis_config(sample_rate, config)
    f0, energy, _ = waveform_features(wav, analysis)
    return _summary(np.asarray(wav), f0, energy, analysis, top_db)


def compare_prosody(
    ref_wav: np.ndarray,
    out_wav: np.ndarray,
    sample_rate: int,
    *,
    config: AudioConfig | None = None,
    top_db: float = 40.0,
) -> dict[str, float]:
    """Every pairwise metric of ``out_wav`` against ``ref_wav``.

    The frame-level F0 metrics (FFE, GPE, VDE, log-F0 RMSE, F0 correlation) are taken along the
    DTW path of the 13-MFCC distortion, so reference and output may differ in length and timing.
    (That path follows the spectral envelope; with a very different pitch, harmonic detail in the
    MFCCs can bend it, so pass two waveforms of similar voice quality, or align explicitly with
    :func:`~prosody_vae.metrics.align_tracks` and the pitch functions.)
    ``mcd_db`` is aligned by its own DTW on c1..c24 (its convention excludes c0).

    Returns:
        ``mcd13``, ``mcd_db``, ``ffe``, ``gpe``, ``vde``, ``log_f0_rmse_cents``, ``f0_correlation``,
        ``duration_ratio`` (out / ref), ``speaking_rate_ratio`` (out / ref), and each utterance's
        statistics prefixed ``ref_`` and ``out_`` (see :func:`utterance_prosody`).
    """
    analysis = analysis_config(sample_rate, config)
    ref_f0, ref_energy, ref_mel = waveform_features(ref_wav, analysis)
    out_f0, out_energy, out_mel = waveform_features(out_wav, analysis)
    mcd13 = cepstral_distortion(
        cepstra_from_log_mel(ref_mel, convention="mcd13"),
        cepstra_from_log_mel(out_mel, convention="mcd13"),
        convention="mcd13",
    )
    mcd_db = cepstral_distortion(
        cepstra_from_log_mel(ref_mel, convention="mcd_db"),
        cepstra_from_log_mel(out_mel, convention="mcd_db"),
        convention="mcd_db",
    )
    ref_aligned, out_aligned = align_tracks(ref_f0, out_f0, path=mcd13.path)
    errors = f0_frame_errors(ref_aligned, out_aligned)
    ref_stats = _summary(np.asarray(ref_wav), ref_f0, ref_energy, analysis, top_db)
    out_stats = _summary(np.asarray(out_wav), out_f0, out_energy, analysis, top_db)

    def ratio(key: str) -> float:
        return out_stats[key] / ref_stats[key] if ref_stats[key] > 0 else float("nan")

    return {
        "mcd13": mcd13.value,
        "mcd_db": mcd_db.value,
        "ffe": errors.ffe,
        "gpe": errors.gpe,
        "vde": errors.vde,
        "log_f0_rmse_cents": log_f0_rmse_cents(ref_aligned, out_aligned),
        "f0_correlation": f0_correlation(ref_aligned, out_aligned),
        "duration_ratio": ratio("duration_s"),
        "speaking_rate_ratio": ratio("speaking_rate"),
        **{f"ref_{key}": value for key, value in ref_stats.items()},
        **{f"out_{key}": value for key, value in out_stats.items()},
    }
