"""Mel-cepstral distortion with DTW alignment, in the two conventions found in the literature.

Both conventions start from the library's log-mel (natural log of the Slaney-normalised magnitude
mel, see :mod:`prosody_vae.audio`), so a waveform and a mel matrix give the same number. With
``ln P = 2 * log_mel`` the log mel *power*:

``"mcd13"`` (Skerry-Ryan et al. 2018; Battenberg et al. 2019, "MCD13")
    13 MFCCs including c0: librosa's MFCC (DCT-II, orthonormal) of the dB mel power
    ``10 * log10(P)``; frame distance ``||c - c'||_2``; no dB factor. Deviation from
    ``librosa.feature.mfcc(y=...)``: no ``top_db=80`` clipping relative to each utterance's peak
    (it would make the floor depend on the utterance); the mel floor is the library's ``log_floor``.
    c0 is the mean level, so a gain change moves this number.

``"mcd_db"`` (Kubichek 1993, the classic "MCD in dB")
    ``(10 / ln 10) * sqrt(2 * sum_{d>=1} (c_d - c'_d)^2)``, c0 excluded, over ``n_coeffs`` cepstra
    (default 25: c0..c24). The cepstrum is that of ``ln P`` in the cosine-series convention
    ``ln P_k = c_0 + 2 sum_{d>=1} c_d cos(pi d (k + 1/2) / M)`` over the M mel bands, i.e.
    ``c = DCT-II(ln P) / (2M)`` (scipy, unnormalised). In that convention the formula is exactly the
    RMS difference in dB, over mel bands, of the two cepstrally smoothed spectra with their mean
    level removed (Parseval), which is what the 10/ln10 and the factor 2 are for. SPTK's
    mel-cepstra follow the same convention on a warped linear axis; ours are on the mel filterbank,
    so numbers are close to, not identical with, SPTK-based tools.

Alignment: ``librosa.sequence.dtw`` (steps (1,1), (1,0), (0,1), unit weights) on the very distance
being averaged (c0 excluded for ``mcd_db``), so DTW finds the path that minimises the summed
distortion. The reported value is the mean frame distance over the pairs on the path.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import librosa
import numpy as np
import scipy.fft

from prosody_vae.audio import AudioConfig, log_mel

from ._analysis import analysis_config
from .pitch import align_tracks

__all__ = [
    "MCDResult",
    "cepstra_from_log_mel",
    "cepstral_distortion",
    "dtw_path",
    "mel_cepstral_distortion",
]

MCDConvention = Literal["mcd13", "mcd_db"]
_DEFAULT_COEFFS = {"mcd13": 13, "mcd_db": 25}
_DB_FACTOR = 10.0 / np.log(10.0)


class MCDResult(NamedTuple):
    """A distortion and the alignment it was measured on."""

    value: float
    path: np.ndarray  # (N, 2) int64 (ref frame, out frame) pairs in increasing time


def _check_convention(convention: str) -> None:
    if convention not in _DEFAULT_COEFFS:
        raise ValueError(f"convention must be one of {sorted(_DEFAULT_COEFFS)}, got {convention!r}")


def cepstra_from_log_mel(
    log_mel_frames: np.ndarray, *, convention: MCDConvention = "mcd13", n_coeffs: int | None = None
) -> np.ndarray:
    """Cepstra of a library log-mel in the given convention (see the module docstring).

    Args:
        log_mel_frames: (T, n_mels) natural log of the magnitude mel (the library's layout).
        convention: ``"mcd13"`` (MFCCs of the dB power) or ``"mcd_db"`` (cosine-series cepstrum of
            the natural-log power).
        n_coeffs: number of coefficients kept, c0 included; defaults to 13 / 25.

    Returns:
        (T, n_coeffs) float64.
    """
    _check_convention(convention)
    frames = np.asarray(log_mel_frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[0] == 0:
        raise ValueError(f"log-mel must be (T, n_mels) with T > 0, got shape {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise ValueError("log-mel contains NaN or infinite values")
    n_mels = frames.shape[1]
    n_coeffs = _DEFAULT_COEFFS[convention] if n_coeffs is None else n_coeffs
    if not 2 <= n_coeffs <= n_mels:
        raise ValueError(f"n_coeffs must be in [2, n_mels={n_mels}], got {n_coeffs!r}")
    log_power = 2.0 * frames  # ln P from ln |M|
    if convention == "mcd13":
        mfcc = librosa.feature.mfcc(S=_DB_FACTOR * log_power.T, n_mfcc=n_coeffs, dct_type=2, norm="ortho")
        return mfcc.T
    return scipy.fft.dct(log_power, type=2, axis=-1)[:, :n_coeffs] / (2.0 * n_mels)


def _frame_features(cepstra: np.ndarray, convention: MCDConvention) -> np.ndarray:
    """The coordinates whose Euclidean distance is (proportional to) the frame distortion."""
    return cepstra if convention == "mcd13" else cepstra[:, 1:]


def dtw_path(ref_features: np.ndarray, out_features: np.ndarray) -> np.ndarray:
    """Euclidean DTW path between two feature sequences (``librosa.sequence.dtw``).

    Args:
        ref_features: (T1, C) reference frames.
        out_features: (T2, C) output frames.

    Returns:
        (N, 2) int64 ``(ref frame, out frame)`` pairs from (0, 0) to (T1-1, T2-1).
    """
    ref, out = np.asarray(ref_features, dtype=np.float64), np.asarray(out_features, dtype=np.float64)
    if ref.ndim != 2 or out.ndim != 2 or ref.shape[1] != out.shape[1] or 0 in (ref.shape[0], out.shape[0]):
        raise ValueError(f"expected (T1, C) and (T2, C) features with T > 0, got {ref.shape} and {out.shape}")
    _, path = librosa.sequence.dtw(X=ref.T, Y=out.T, metric="euclidean", backtrack=True)
    return np.ascontiguousarray(path[::-1], dtype=np.int64)  # librosa returns it end-to-start


def cepstral_distortion(
    ref_cepstra: np.ndarray,
    out_cepstra: np.ndarray,
    *,
    convention: MCDConvention = "mcd13",
    path: np.ndarray | None = None,
) -> MCDResult:
    """Distortion between two cepstral sequences, DTW-aligned unless ``path`` is given.

    Args:
        ref_cepstra: (T1, C) reference cepstra, c0 in column 0 (from :func:`cepstra_from_log_mel`
            or any tool using the same convention).
        out_cepstra: (T2, C) output cepstra.
        convention: ``"mcd13"`` (Euclidean over all columns) or ``"mcd_db"`` (dB form, column 0
            excluded).
        path: optional (N, 2) ``(ref frame, out frame)`` pairs to use instead of DTW.
    """
    _check_convention(convention)
    ref, out = np.asarray(ref_cepstra, dtype=np.float64), np.asarray(out_cepstra, dtype=np.float64)
    if ref.ndim != 2 or out.ndim != 2 or ref.shape[1] != out.shape[1]:
        raise ValueError(f"cepstra must be (T1, C) and (T2, C), got {ref.shape} and {out.shape}")
    ref_feat, out_feat = _frame_features(ref, convention), _frame_features(out, convention)
    if path is None:
        path = dtw_path(ref_feat, out_feat)
    ref_aligned, out_aligned = align_tracks(ref_feat, out_feat, path=path)  # (N, C) each
    distances = np.linalg.norm(ref_aligned - out_aligned, axis=-1)  # (N,)
    if convention == "mcd_db":
        distances = _DB_FACTOR * np.sqrt(2.0) * distances
    return MCDResult(value=float(distances.mean()), path=np.asarray(path, dtype=np.int64))


def mel_cepstral_distortion(
    ref: np.ndarray,
    out: np.ndarray,
    *,
    convention: MCDConvention = "mcd13",
    sample_rate: int | None = None,
    config: AudioConfig | None = None,
    n_coeffs: int | None = None,
    path: np.ndarray | None = None,
) -> MCDResult:
    """MCD-DTW between two waveforms or two library log-mels.

    Args:
        ref: (N1,) waveform, or (T1, n_mels) log-mel (natural log of the magnitude mel).
        out: same kind as ``ref``: (N2,) or (T2, n_mels).
        convention: ``"mcd13"`` or ``"mcd_db"`` (module docstring).
        sample_rate: required for waveforms; the analysis is ``config`` or the library defaults at
            this rate (1024-point FFT, hop 256, 80 Slaney mel bands up to 8 kHz).
        config: optional analysis for waveforms; must match ``sample_rate``.
        n_coeffs: cepstra kept, c0 included (13 / 25 by default).
        path: optional (N, 2) alignment to use instead of DTW.
    """
    ref_arr, out_arr = np.asarray(ref), np.asarray(out)
    if ref_arr.ndim != out_arr.ndim or ref_arr.ndim not in (1, 2):
        raise ValueError(
            "ref and out must both be waveforms (N,) or both log-mels (T, n_mels), "
            f"got shapes {ref_arr.shape} and {out_arr.shape}"
        )
    if ref_arr.ndim == 1:
        if sample_rate is None:
            raise ValueError("sample_rate is required when ref and out are waveforms")
        analysis = analysis_config(sample_rate, config)
        ref_arr = log_mel(ref_arr.astype(np.float32), analysis).numpy()
        out_arr = log_mel(out_arr.astype(np.float32), analysis).numpy()
    ref_cep = cepstra_from_log_mel(ref_arr, convention=convention, n_coeffs=n_coeffs)
    out_cep = cepstra_from_log_mel(out_arr, convention=convention, n_coeffs=n_coeffs)
    return cepstral_distortion(ref_cep, out_cep, convention=convention, path=path)
