"""Intonation metrics: is there a pitch to hear, and does it move the way the text or reference asks?

Two questions, measured separately because a model can fail either one:

1. *Harmonic detail*: does the audio carry resolved harmonics at all (a pitch a listener can hear)?
   :func:`mel_ripple` / :func:`low_band_ripple` (a quick measure on our log-mel) and
   :func:`cepstral_peak_prominence` (CPP, the standard one).
2. *Contour*: does F0 follow the reference or the sentence type? :func:`contour_correlation`,
   :func:`f0_level_hz`, :func:`f0_range_st`, :func:`final_rise_st`, and :func:`series_trend` for a
   series of outputs (an interpolation).

F0 comes from two trackers so that no conclusion rests on one tracker's voicing decisions:
``"harvest"`` (the library's :func:`prosody_vae.audio.f0_energy`, WORLD Harvest + StoneMask) and
``"pyin"`` (``librosa.pyin``, Mauch and Dixon 2014, with ``frame_length=2048``, librosa's other
defaults, and the analysis's F0 search range, 50-600 Hz by default). Both are sampled on the mel frame
grid (centred frames, frame ``t`` centred on sample ``t * hop``), so one DTW path serves both.

Conventions are those of :mod:`prosody_vae.metrics.pitch`: an F0 track is (T,) in Hz, 0 = unvoiced;
undefined values (too few voiced frames, a flat series) are nan, not errors. Semitones are
``12 * log2`` of a frequency ratio. :func:`f0_range_st` uses the 5th-95th percentiles, wider than
``utterance_prosody``'s 10th-90th (corpus labels): compare ranges measured by one function only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import librosa
import numpy as np

from prosody_vae.audio import AudioConfig, f0_energy, log_mel

from ._analysis import analysis_config
from .pitch import _as_track, align_tracks, f0_correlation
from .spectral import cepstra_from_log_mel, dtw_path

__all__ = [
    "F0_TRACKERS",
    "IntonationAnalysis",
    "SeriesTrend",
    "alignment_path",
    "analyse_intonation",
    "cepstral_peak_prominence",
    "contour_correlation",
    "f0_level_hz",
    "f0_range_st",
    "final_rise_st",
    "low_band_ripple",
    "mel_ripple",
    "series_trend",
    "track_f0",
    "voiced_share",
    "warm_up_trackers",
]

Tracker = Literal["harvest", "pyin"]
F0_TRACKERS: tuple[Tracker, ...] = ("harvest", "pyin")
PYIN_FRAME_LENGTH = 2048  # 93 ms at 22.05 kHz: four periods of the 50 Hz floor
_SEMITONES_PER_NEPER = 12.0 / math.log(2.0)


# ---------------------------------------------------------------------------------- F0 tracks
def track_f0(
    wav: np.ndarray, sample_rate: int, *, tracker: Tracker = "harvest", config: AudioConfig | None = None
) -> np.ndarray:
    """F0 of one waveform, (T,) Hz with 0 = unvoiced and ``T = 1 + N // hop`` (the mel frame grid).

    ``"harvest"``: :func:`prosody_vae.audio.f0_energy`. ``"pyin"``: ``librosa.pyin`` with
    ``fmin=config.f0_min``, ``fmax=config.f0_max``, ``frame_length=2048``, ``hop_length=config.hop_length``,
    ``center=True``; frames its Viterbi decoding calls unvoiced are 0.
    """
    analysis = analysis_config(sample_rate, config)
    x = np.asarray(wav, dtype=np.float32)
    if tracker == "harvest":
        return f0_energy(x, analysis)[0]
    if tracker != "pyin":
        raise ValueError(f"tracker must be one of {F0_TRACKERS}, got {tracker!r}")
    if x.ndim != 1 or x.shape[0] < PYIN_FRAME_LENGTH:
        raise ValueError(f"pyin needs a mono waveform of at least {PYIN_FRAME_LENGTH} samples, got {x.shape}")
    f0, voiced, _ = librosa.pyin(
        x,
        fmin=analysis.f0_min,
        fmax=analysis.f0_max,
        sr=analysis.sample_rate,
        frame_length=PYIN_FRAME_LENGTH,
        hop_length=analysis.hop_length,
        center=True,
    )
    assert f0.shape[0] == 1 + x.shape[0] // analysis.hop_length  # librosa's centred grid is ours
    return np.where(voiced & np.isfinite(f0), f0, 0.0).astype(np.float32)


def warm_up_trackers(sample_rate: int = 22050, config: AudioConfig | None = None) -> None:
    """Run every tracker once on a short tone, in this process, before workers that track F0 start.

    librosa caches pYIN's numba-compiled helpers beside its own files. Worker processes that compile
    them at the same moment can leave a cache that crashes whoever loads it next: on a fresh install
    the test suite died of a segmentation fault inside pYIN's local-minimum search, and ran once the
    cache was removed. Compiled here first, the workers only read the cache.
    """
    t = np.arange(PYIN_FRAME_LENGTH * 4) / sample_rate
    tone = (0.5 * np.sin(2 * np.pi * 120.0 * t)).astype(np.float32)
    for tracker in F0_TRACKERS:
        track_f0(tone, sample_rate, tracker=tracker, config=config)


def _voiced_log(f0: np.ndarray) -> np.ndarray:
    """Natural log of the voiced frames of a track, in time order (validated like pitch.py's tracks)."""
    track = _as_track(f0, "f0")
    return np.log(track[track > 0])


def voiced_share(f0: np.ndarray) -> float:
    """Share of frames voiced (F0 > 0), in [0, 1]; nan for an empty track."""
    track = np.asarray(f0)
    return float(np.mean(track > 0)) if track.size else float("nan")


def f0_level_hz(f0: np.ndarray) -> float:
    """F0 level: median F0 of the voiced frames in Hz (nan if none)."""
    logs = _voiced_log(f0)
    return float(np.exp(np.median(logs))) if logs.size else float("nan")


def f0_range_st(f0: np.ndarray, *, percentiles: tuple[float, float] = (5.0, 95.0)) -> float:
    """F0 range in semitones: ``(P_high - P_low of ln F0 over voiced frames) * 12 / ln 2``.

    Percentiles rather than min/max so that a few octave errors do not set the range; a glide from
    100 to 200 Hz uniform in log-frequency spans 12 semitones, of which the 5-95 range sees 90 %
    (10.8). nan with fewer than two voiced frames.
    """
    low, high = percentiles
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}")
    logs = _voiced_log(f0)
    if logs.size < 2:
        return float("nan")
    p_low, p_high = np.percentile(logs, [low, high])
    return float((p_high - p_low) * _SEMITONES_PER_NEPER)


def final_rise_st(f0: np.ndarray, *, tail: float = 0.2) -> float:
    """Final rise in semitones: median of the last ``tail`` of the voiced frames (by count, in time
    order; at least one frame) minus the median of all voiced frames, both of ``12 log2 F0``.

    Positive: the utterance ends above its own median (a yes-no question's rise in English);
    negative: it ends below (a statement's final fall). A rise on the last syllable only, shorter than
    the tail, is diluted by the frames before it: espeak-ng's questions come out below 0 but well
    above its statements, so compare a question with its statement rather than with 0. nan with
    fewer than two voiced frames.
    """
    if not 0.0 < tail <= 1.0:
        raise ValueError(f"tail must be in (0, 1], got {tail!r}")
    logs = _voiced_log(f0)
    if logs.size < 2:
        return float("nan")
    last = logs[-max(1, math.ceil(tail * logs.size)) :]
    return float((np.median(last) - np.median(logs)) * _SEMITONES_PER_NEPER)


def alignment_path(ref_log_mel: np.ndarray, out_log_mel: np.ndarray) -> np.ndarray:
    """DTW path (N, 2) of ``(ref frame, out frame)`` between two log-mels (T, n_mels), on 13 MFCCs.

    The path :func:`prosody_vae.metrics.compare_prosody` pairs F0 frames along (MCD13's DTW), so contour
    correlations here and FFE there compare the same frames.
    """
    ref = cepstra_from_log_mel(ref_log_mel, convention="mcd13")
    out = cepstra_from_log_mel(out_log_mel, convention="mcd13")
    return dtw_path(ref, out)


def _semitones_re_1hz(f0: np.ndarray) -> np.ndarray:
    return np.where(f0 > 0, 12.0 * np.log2(np.maximum(f0, 1.0)), 0.0)


def contour_correlation(ref_f0: np.ndarray, out_f0: np.ndarray, *, path: np.ndarray | None = None) -> float:
    """Pearson correlation of log-F0 over frames voiced in both, after alignment.

    Tracks are aligned with :func:`~prosody_vae.metrics.align_tracks` (along ``path``, e.g. from
    :func:`alignment_path`, or trimmed to the shorter without one), then
    :func:`~prosody_vae.metrics.f0_correlation` is applied to ``12 log2 F0`` (re 1 Hz, so voiced
    frames stay positive and 0 still marks unvoiced). Log-F0 rather than Hz (as in ``f0_correlation``)
    so that a movement of one semitone weighs the same in a low and in a high voice. Each frame of the
    warping path counts once, so a frame the path repeats weighs more. nan for fewer than two frames
    voiced in both, or a flat contour.
    """
    ref, out = align_tracks(_as_track(ref_f0, "ref_f0"), _as_track(out_f0, "out_f0"), path=path)
    if np.any((ref > 0) & (ref <= 1.0)) or np.any((out > 0) & (out <= 1.0)):
        raise ValueError("F0 tracks hold values in (0, 1] Hz; tracks are in Hz with 0 = unvoiced")
    return f0_correlation(_semitones_re_1hz(ref), _semitones_re_1hz(out))


# ---------------------------------------------------------------------------------- harmonic detail
def _loudest(energy: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the ``ceil(fraction * T)`` frames of highest energy (at least one)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"loud_fraction must be in (0, 1], got {fraction!r}")
    count = max(1, math.ceil(fraction * energy.shape[0]))
    return np.argsort(energy, kind="stable")[-count:]


def mel_ripple(log_mel_frames: np.ndarray, *, max_bin: int = 30, loud_fraction: float = 0.5) -> float:
    """Low-band mel ripple: mean ``|second difference across mel bins 0..max_bin|`` over the loud frames.

    ``log_mel_frames`` is (T, n_mels), the library's natural-log magnitude mel (the unit is nepers of
    magnitude; multiply by ``20 / ln 10`` for dB). Loud frames are the ``loud_fraction`` of frames with
    the most mel power ``sum_m exp(2 * log_mel)``. Our own measure, with no literature convention: with
    the library's analysis (22.05 kHz, 1024-point FFT, 80 Slaney bands to 8 kHz) bins 0-30 span about
    0-1.15 kHz at about 38 Hz per band, where the harmonics of a voice above ~80 Hz are resolved and
    make a peak-valley ripple across neighbouring bands; a smooth (over-averaged, or noise-excited)
    spectrum has little curvature there. It reads a predicted mel directly, before any vocoder.
    """
    frames = np.asarray(log_mel_frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[0] == 0 or not np.all(np.isfinite(frames)):
        raise ValueError(f"log-mel must be finite (T, n_mels) with T > 0, got shape {frames.shape}")
    if not 2 <= max_bin < frames.shape[1]:
        raise ValueError(f"max_bin must be in [2, n_mels={frames.shape[1]}), got {max_bin!r}")
    loud = _loudest(np.exp(2.0 * frames).sum(axis=1), loud_fraction)
    curvature = np.diff(frames[loud, : max_bin + 1], n=2, axis=1)  # (T_loud, max_bin - 1)
    return float(np.mean(np.abs(curvature)))


def low_band_ripple(
    wav: np.ndarray,
    sample_rate: int,
    *,
    config: AudioConfig | None = None,
    max_bin: int = 30,
    loud_fraction: float = 0.5,
) -> float:
    """:func:`mel_ripple` of the library log-mel (:func:`prosody_vae.audio.log_mel`) of a waveform."""
    analysis = analysis_config(sample_rate, config)
    frames = log_mel(np.asarray(wav, dtype=np.float32), analysis).numpy()
    return mel_ripple(frames, max_bin=max_bin, loud_fraction=loud_fraction)


def cepstral_peak_prominence(
    wav: np.ndarray,
    sample_rate: int,
    *,
    config: AudioConfig | None = None,
    f0_range: tuple[float, float] = (60.0, 330.0),
    loud_fraction: float = 0.5,
) -> float:
    """Cepstral peak prominence in dB, averaged over the loud frames (Hillenbrand et al. 1994).

    Per frame (the library's centred Hann frames, ``n_fft`` long, hop ``hop_length``):

    1. log power spectrum ``L_k = 10 log10 P_k`` (dB; floored 100 dB below the utterance's largest
       bin, so digital silence stays finite);
    2. cepstrum ``c_n = irfft(L)_n``, in dB as ``20 log10 |c_n|``, at quefrency ``n / sr``;
    3. peak: the largest value at quefrencies ``1/330 .. 1/60`` s (F0 60-330 Hz, Praat's default
       search range, as in Maryn and Weenink 2015);
    4. a least-squares line of cepstral dB on quefrency over 1 ms .. ``n_fft / (2 sr)`` (the trend
       range of Hillenbrand and of Praat's defaults);
    5. CPP = peak minus the line's value at the peak's quefrency.

    Frames averaged: the ``loud_fraction`` with the most power, standing in for "voiced" without
    depending on a tracker (CPP is itself a voicing measure). Deviations, for comparing with other
    tools: no smoothing across time or quefrency (that is CPPS, Hillenbrand and Houde 1996), no
    parabolic interpolation of the peak, and an ordinary (not Praat's robust) line fit; absolute
    values differ between implementations, so compare CPP measured here with CPP measured here.
    """
    analysis = analysis_config(sample_rate, config)
    low_hz, high_hz = f0_range
    if not 0 < low_hz < high_hz:
        raise ValueError(f"f0_range must satisfy 0 < low < high, got {f0_range!r}")
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1 or x.shape[0] < analysis.n_fft:
        raise ValueError(
            f"CPP needs a mono waveform of at least n_fft={analysis.n_fft} samples, got {x.shape}"
        )
    spectrum = librosa.stft(
        x,
        n_fft=analysis.n_fft,
        hop_length=analysis.hop_length,
        win_length=analysis.win_length,
        window="hann",
        center=True,
        pad_mode="reflect",
    )
    power = (np.abs(spectrum) ** 2).T.astype(np.float64)  # (T, n_fft/2 + 1)
    loud = _loudest(power.sum(axis=1), loud_fraction)
    floor = max(power.max(), 1e-30) * 1e-10
    cepstrum = np.fft.irfft(10.0 * np.log10(np.maximum(power[loud], floor)), n=analysis.n_fft, axis=1)
    cepstrum_db = 20.0 * np.log10(np.abs(cepstrum) + 1e-12)  # (T_loud, n_fft)
    sr = analysis.sample_rate
    first, last = math.ceil(sr / high_hz), math.floor(sr / low_hz)
    trend_first, trend_last = math.ceil(0.001 * sr), analysis.n_fft // 2
    if last >= trend_last:
        raise ValueError(f"f0_range low end {low_hz} Hz needs frames longer than n_fft={analysis.n_fft}")
    quefrency = np.arange(analysis.n_fft) / sr
    trend = slice(trend_first, trend_last + 1)
    slope, intercept = np.polyfit(quefrency[trend], cepstrum_db[:, trend].T, deg=1)  # (T_loud,) each
    peak = first + np.argmax(cepstrum_db[:, first : last + 1], axis=1)  # (T_loud,)
    rows = np.arange(peak.shape[0])
    prominence = cepstrum_db[rows, peak] - (intercept + slope * quefrency[peak])
    return float(np.mean(prominence))


# ---------------------------------------------------------------------------------- one utterance
class IntonationAnalysis(NamedTuple):
    """Everything this module measures on one waveform, computed once."""

    f0: dict[str, np.ndarray]  # tracker name -> (T,) Hz, 0 = unvoiced
    log_mel: np.ndarray  # (T, n_mels), for alignment_path
    ripple: float  # low_band_ripple, nepers
    cpp_db: float  # cepstral_peak_prominence, dB


def analyse_intonation(
    wav: np.ndarray,
    sample_rate: int,
    *,
    config: AudioConfig | None = None,
    trackers: Sequence[Tracker] = F0_TRACKERS,
) -> IntonationAnalysis:
    """F0 by each tracker, the log-mel, the ripple and the CPP of one waveform (N,)."""
    analysis = analysis_config(sample_rate, config)
    x = np.asarray(wav, dtype=np.float32)
    frames = log_mel(x, analysis).numpy()
    return IntonationAnalysis(
        f0={name: track_f0(x, sample_rate, tracker=name, config=analysis) for name in trackers},
        log_mel=frames,
        ripple=mel_ripple(frames),
        cpp_db=cepstral_peak_prominence(x, sample_rate, config=analysis),
    )


# ---------------------------------------------------------------------------------- series of outputs
class SeriesTrend(NamedTuple):
    """How a series of F0 levels (e.g. the steps of an interpolation) moves."""

    steps_st: tuple[float, ...]  # successive differences, semitones
    total_st: float  # last minus first, semitones
    monotone: bool  # every step goes the direction of the total (within the tolerance)
    max_step_share: float  # largest |step| / sum |steps|: 1/(n-1) evenly spaced, 1 all in one step


def series_trend(levels_hz: Sequence[float], *, tolerance_st: float = 0.0) -> SeriesTrend:
    """Direction, monotonicity and spacing of F0 levels (Hz) along a series, in semitones.

    ``monotone``: the total change exceeds ``tolerance_st`` and no step goes against it by more than
    ``tolerance_st`` (a tolerance of a few tenths of a semitone absorbs tracker noise on small steps).
    ``max_step_share`` measures evenness: for ``n`` levels it is ``1/(n-1)`` when the steps are equal
    and 1 when the whole change happens in one step (nan when nothing moves). Any nan level makes
    ``monotone`` False and the spacing nan.
    """
    levels = np.asarray(levels_hz, dtype=np.float64)
    if levels.ndim != 1 or levels.shape[0] < 2:
        raise ValueError(f"a series needs at least two levels, got shape {levels.shape}")
    if np.any(levels <= 0):
        raise ValueError(f"F0 levels must be positive Hz, got {levels.tolist()}")
    if tolerance_st < 0:
        raise ValueError(f"tolerance_st must be >= 0, got {tolerance_st!r}")
    semitones = 12.0 * np.log2(levels)
    steps = np.diff(semitones)
    total = float(semitones[-1] - semitones[0])
    defined = bool(np.all(np.isfinite(steps)))
    monotone = defined and abs(total) > tolerance_st and bool(np.all(steps * np.sign(total) >= -tolerance_st))
    moved = np.abs(steps).sum()
    share = float(np.abs(steps).max() / moved) if defined and moved > 0 else float("nan")
    return SeriesTrend(
        steps_st=tuple(float(s) for s in steps), total_st=total, monotone=monotone, max_step_share=share
    )
