"""Mel-cepstral analysis in the SPTK convention: a WORLD envelope, frequency-warped to the mel scale.

This is the analysis behind the mel-cepstral distortion that TTS and voice-conversion papers publish
(nnmnkwii's examples, ESPnet's WORLD-based ``mcd_calculate.py``), written in numpy so that it needs
neither SPTK nor pysptk. The functions reproduce pysptk's ``mcepalpha``, ``freqt``, ``sp2mc`` and
``mc2sp``.

Convention (SPTK). The all-pass substitution ``z~^-1 = (z^-1 - alpha) / (1 - alpha z^-1)`` maps the
frequency ``w`` (radians, 0..pi) to the warped frequency

    beta(w) = arctan((1 - alpha^2) sin w / ((1 + alpha^2) cos w - 2 alpha)),

which for ``alpha > 0`` stretches the low frequencies, close to the mel scale when alpha fits the
sample rate (:func:`mcep_alpha`). The mel-cepstrum ``c~_0..c~_M`` (order M, M + 1 coefficients) of a
power spectrum ``P`` is the cepstrum of its log *amplitude* on the warped axis:

    ln P(w) / 2 = ln |H(w)| = sum_{m=0}^{M} c~_m cos(m beta(w))      (truncated at order M)

so ``c~_0`` is the log gain and ``c~_1..c~_M`` the shape; with ``alpha = 0`` it is the ordinary real
cepstrum of ``ln |H|``. :func:`sp2mc` computes it as SPTK does: the real cepstrum of ``ln P`` by an
inverse FFT, ``c_0`` halved (so it is the one-sided cepstrum of ``ln |H|``), then frequency-warped by
Oppenheim and Johnson's recursion (:func:`freqt`). The warping is exact up to the truncation at the
FFT's ``fft_size / 2`` quefrencies. (pysptk also feeds the mirrored upper half of the inverse FFT to
``freqt``; at order <= 40 and alpha <= 0.554 its weight is below 1e-60, so the two agree to
rounding: 1e-14 on a CheapTrick envelope.)

WORLD analysis (:func:`world_mel_cepstra`): F0 by Dio (default, as in nnmnkwii's examples) or Harvest
(as in ESPnet's ``mcd_calculate.py``), refined by StoneMask, then the CheapTrick envelope with
WORLD's default FFT size for the rate (1024 points at 16 to 24 kHz, as ESPnet's ``--fftl 1024``),
frame period 5 ms, order 24 (c0..c24), alpha from :func:`mcep_alpha`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import pyworld

__all__ = ["F0Method", "freqt", "mc2sp", "mcep_alpha", "sp2mc", "world_mel_cepstra"]

F0Method = Literal["dio", "harvest"]


@lru_cache(maxsize=64)
def mcep_alpha(sample_rate: int) -> float:
    """The all-pass constant whose warping best fits the mel scale at ``sample_rate`` (pysptk's
    ``mcepalpha``).

    Candidates 0.000, 0.001, ..., 0.999; the chosen one minimises the mean squared difference, on
    1000 points from 0 up to (not including) the Nyquist frequency, between the normalised warped
    frequency ``beta(w) / beta(w_last)`` and the normalised mel scale
    ``m(f) = (1000 / ln 2) ln(1 + f / 1000)``. Results: 0.410 at 16 kHz, 0.455 at 22.05 kHz, 0.466 at
    24 kHz, 0.544 at 44.1 kHz, 0.554 at 48 kHz. (SPTK's manual tabulates rounded values, e.g. 0.42 at
    16 kHz and 0.45 at 22.05 kHz, which ESPnet's SPTK-based ``evaluate_mcd.py`` uses.)
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    points = 1000
    hz = (sample_rate / 2.0) / points * np.arange(points)
    mel = np.log1p(hz / 1000.0)  # the constant 1000 / ln 2 cancels in the normalisation
    mel = mel / mel[-1]
    omega = np.pi / points * np.arange(points)  # (P,)
    candidates = np.arange(0.0, 1.0, 0.001)[:, None]  # (A, 1)
    warped = np.arctan2(
        (1 - candidates**2) * np.sin(omega), (1 + candidates**2) * np.cos(omega) - 2 * candidates
    )  # (A, P) in [0, pi]: the numerator is >= 0
    warped = warped / warped[:, -1:]
    best = int(np.argmin(np.mean((warped - mel) ** 2, axis=1)))
    return round(best * 0.001, 3)


@lru_cache(maxsize=16)
def _warping_matrix(in_length: int, order: int, alpha: float) -> np.ndarray:
    """(in_length, order + 1) matrix W with ``freqt(c) = c @ W``: SPTK's ``freqt`` recursion run on
    every unit vector at once (the recursion is linear in its input)."""
    b = 1.0 - alpha * alpha
    g = np.zeros((order + 1, in_length))  # column k: the state for input unit vector e_k
    for i in range(in_length - 1, -1, -1):  # SPTK feeds c[m1], ..., c[0]
        d = g.copy()  # the previous state
        g[0] = alpha * d[0]
        g[0, i] += 1.0
        if order >= 1:
            g[1] = b * d[0] + alpha * d[1]
        for j in range(2, order + 1):
            g[j] = d[j - 1] + alpha * (d[j] - g[j - 1])  # g[j - 1] is already the new value
    matrix = g.T.copy()
    matrix.setflags(write=False)
    return matrix


def freqt(cepstrum: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """Frequency-warp a cepstrum with the all-pass constant ``alpha`` (SPTK's ``freqt``).

    Oppenheim and Johnson's recursion: a one-sided cepstrum ``c_0..c_M1`` of ``ln |H(w)|`` becomes
    the cepstrum of order ``order`` of the same function of ``beta(w)``; ``-alpha`` undoes ``alpha``
    (up to truncation).

    Args:
        cepstrum: (..., M1 + 1) cepstra, c0 first.
        order: output order (``order + 1`` coefficients).
        alpha: all-pass constant, ``|alpha| < 1``.

    Returns:
        (..., order + 1) float64.
    """
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 0:
        raise ValueError(f"order must be an int >= 0, got {order!r}")
    if not -1.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (-1, 1), got {alpha!r}")
    c = np.asarray(cepstrum, dtype=np.float64)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError(f"cepstrum must have at least one coefficient, got shape {c.shape}")
    return c @ _warping_matrix(c.shape[-1], int(order), float(alpha))


def sp2mc(power_spectrum: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """Mel-cepstrum of a power spectrum (pysptk's ``sp2mc``; module docstring for the convention).

    Args:
        power_spectrum: (..., fft_size // 2 + 1) power spectra (e.g. a CheapTrick envelope), > 0.
        order: mel-cepstral order M (M + 1 coefficients, c0 included).
        alpha: all-pass constant (:func:`mcep_alpha` for the sample rate).

    Returns:
        (..., M + 1) float64 mel-cepstra.
    """
    spectrum = np.asarray(power_spectrum, dtype=np.float64)
    if spectrum.ndim == 0 or spectrum.shape[-1] < 2:
        raise ValueError(f"power spectrum must have >= 2 bins on its last axis, got shape {spectrum.shape}")
    if not np.all(np.isfinite(spectrum)) or np.any(spectrum <= 0):
        raise ValueError("power spectrum must be finite and > 0 (take the envelope, not a raw periodogram)")
    bins = spectrum.shape[-1]
    cepstrum = np.fft.irfft(np.log(spectrum), n=2 * (bins - 1), axis=-1)[..., :bins]  # c_0..c_{N/2}
    cepstrum[..., 0] /= 2.0  # one-sided cepstrum of ln |H| = ln P / 2
    return freqt(cepstrum, order, alpha)


def mc2sp(mel_cepstrum: np.ndarray, alpha: float, fft_size: int) -> np.ndarray:
    """Power spectrum of a mel-cepstrum (pysptk's ``mc2sp``), the inverse of :func:`sp2mc`.

    Args:
        mel_cepstrum: (..., M + 1) mel-cepstra, c0 first.
        alpha: the all-pass constant they were computed with.
        fft_size: even FFT size; the spectrum has ``fft_size // 2 + 1`` bins from 0 to Nyquist.

    Returns:
        (..., fft_size // 2 + 1) float64 power spectra: ``exp(2 sum_m c~_m cos(m beta(w)))``.
    """
    if (
        isinstance(fft_size, bool)
        or not isinstance(fft_size, int | np.integer)
        or fft_size < 2
        or fft_size % 2
    ):
        raise ValueError(f"fft_size must be an even int >= 2, got {fft_size!r}")
    cepstrum = freqt(mel_cepstrum, fft_size // 2, -alpha)  # (..., N/2 + 1)
    cepstrum[..., 0] *= 2.0  # back to the cepstrum of ln P
    return np.exp(np.fft.hfft(cepstrum, n=fft_size, axis=-1)[..., : fft_size // 2 + 1])


def world_mel_cepstra(
    wav: np.ndarray,
    sample_rate: int,
    *,
    order: int = 24,
    alpha: float | None = None,
    frame_period_ms: float = 5.0,
    f0_method: F0Method = "dio",
    f0_floor: float = 71.0,
    f0_ceil: float = 800.0,
) -> np.ndarray:
    """Mel-cepstra of a WORLD (CheapTrick) envelope, every frame, c0 included.

    Args:
        wav: (N,) float waveform at ``sample_rate``; its scale only moves c0.
        sample_rate: Hz.
        order: mel-cepstral order (default 24: c0..c24).
        alpha: all-pass constant; :func:`mcep_alpha` of the rate if None.
        frame_period_ms: WORLD frame period.
        f0_method: ``"dio"`` or ``"harvest"``, each refined by StoneMask. CheapTrick uses F0 only to
            size its pitch-adaptive window (unvoiced frames get WORLD's default).
        f0_floor: lowest F0 searched (pyworld's default, 71 Hz).
        f0_ceil: highest F0 searched (pyworld's default, 800 Hz).

    Returns:
        (T, order + 1) float64, T = ``1 + floor(duration_ms / frame_period_ms)``.
    """
    if f0_method not in ("dio", "harvest"):
        raise ValueError(f"f0_method must be 'dio' or 'harvest', got {f0_method!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    x = np.ascontiguousarray(wav, dtype=np.float64)  # pyworld works in float64
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty mono waveform (N,), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("waveform contains NaN or infinite samples")
    track = pyworld.dio if f0_method == "dio" else pyworld.harvest
    f0, times = track(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period_ms)
    f0 = pyworld.stonemask(x, f0, times, sample_rate)
    envelope = pyworld.cheaptrick(x, f0, times, sample_rate)  # (T, fft_size // 2 + 1) power
    return sp2mc(envelope, order, mcep_alpha(int(sample_rate)) if alpha is None else alpha)
