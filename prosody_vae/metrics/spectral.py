"""Mel-cepstral distortion with DTW alignment, in three conventions: two of ours, one standard.

Which is which:

* ``"mcd13"`` and ``"mcd_db"`` are computed from the library's log-mel (the model's own features);
  they compare our systems with each other, quickly and on the frames the model uses.
* ``mcd_world_db`` (:func:`world_mel_cepstral_distortion`) is the mel-cepstral distortion that TTS and
  voice-conversion papers publish: SPTK mel-cepstra of a WORLD envelope. Quote it when comparing
  with numbers from other work. ``mcd_db`` uses the same formula, but on a DCT of the log-mel: it is
  *not* that MCD (on espeak-ng pairs it came out 0.3 to 1.2 dB away from it, in either direction).

The first two start from the library's log-mel (natural log of the Slaney-normalised magnitude mel,
see :mod:`prosody_vae.audio`), so a waveform and a mel matrix give the same number. With
``ln P = 2 * log_mel`` the log mel *power*:

``"mcd13"`` (Skerry-Ryan et al. 2018; Battenberg et al. 2019, "MCD13")
    13 MFCCs including c0: librosa's MFCC (DCT-II, orthonormal) of the dB mel power
    ``10 * log10(P)``; frame distance ``||c - c'||_2``; no dB factor. Deviation from
    ``librosa.feature.mfcc(y=...)``: no ``top_db=80`` clipping relative to each utterance's peak
    (it would make the floor depend on the utterance); the mel floor is the library's ``log_floor``.
    c0 is the mean level, so a gain change moves this number.

``"mcd_db"`` (Kubichek 1993's formula on our log-mel)
    ``(10 / ln 10) * sqrt(2 * sum_{d>=1} (c_d - c'_d)^2)``, c0 excluded, over ``n_coeffs`` cepstra
    (default 25: c0..c24). The cepstrum is that of ``ln P`` in the cosine-series convention
    ``ln P_k = c_0 + 2 sum_{d>=1} c_d cos(pi d (k + 1/2) / M)`` over the M mel bands, i.e.
    ``c = DCT-II(ln P) / (2M)`` (scipy, unnormalised). In that convention the formula is exactly the
    RMS difference in dB, over mel bands, of the two cepstrally smoothed spectra with their mean
    level removed (Parseval), which is what the 10/ln10 and the factor 2 are for. SPTK's
    mel-cepstra follow the same convention on an all-pass-warped linear axis; ours are on the 80-band
    mel filterbank up to 8 kHz, of a 1024-point STFT magnitude rather than a pitch-adaptive envelope.

``mcd_world_db`` (the standard; "MCD (WORLD mel-cepstrum, SPTK convention, 24th order, alpha for the
rate, c0 excluded, DTW)")
    The same formula over c1..c24 of the SPTK mel-cepstrum (order 24, all-pass constant 0.455 at
    22.05 kHz, 0.41 at 16 kHz, 0.466 at 24 kHz: :func:`~prosody_vae.metrics.mel_cepstrum.mcep_alpha`)
    of the WORLD CheapTrick envelope (Dio + StoneMask F0, 5 ms frames), as nnmnkwii's examples compute
    it (``sp2mc(cheaptrick(...), order=24, alpha=mcepalpha(fs))``, c0 dropped, ``melcd``). Frames:
    all of them, voiced and unvoiced, pauses inside the utterance included, between the first and
    the last non-silent frame (leading and trailing silence below ``peak - 40 dB`` is trimmed first,
    as :func:`prosody_vae.audio.load_audio` does). Differences from other published recipes:
    ESPnet's WORLD ``mcd_calculate.py`` keeps c0, uses Harvest, keeps voiced frames only, high-passes
    at 70 Hz, takes order and alpha as arguments (defaults 41 and 0.41) and aligns with FastDTW;
    ESPnet2's ``evaluate_mcd.py`` keeps c0 and takes SPTK ``mcep`` of Hamming-windowed frames (order
    34, alpha 0.45 at 22.05 kHz). On espeak-ng pairs, keeping c0 added 0.5 to 4 dB, voiced frames
    only 0.2 to 0.9 dB, and Harvest instead of Dio moved the value by less than 0.25 dB: say which
    convention a comparison uses. The 5 ms grid sets a floor: the same audio delayed by half a frame
    scores about 1-1.8 dB.

Alignment: ``librosa.sequence.dtw`` (steps (1,1), (1,0), (0,1), unit weights) on the very distance
being averaged (c0 excluded for ``mcd_db`` and ``mcd_world_db``), so DTW finds the path that
minimises the summed distortion (exact DTW, where ESPnet and nnmnkwii use FastDTW's approximation).
The reported value is the mean frame distance over the pairs on the path.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import librosa
import numpy as np
import scipy.fft

from prosody_vae.audio import AudioConfig, log_mel

from ._analysis import analysis_config
from .mel_cepstrum import F0Method, world_mel_cepstra
from .pitch import align_tracks

__all__ = [
    "MCDResult",
    "cepstra_from_log_mel",
    "cepstral_distortion",
    "dtw_path",
    "mel_cepstral_distortion",
    "world_mel_cepstral_distortion",
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
    """MCD-DTW between two waveforms or two library log-mels, in one of our log-mel conventions.

    Neither convention is the MCD other work publishes: for that, use
    :func:`world_mel_cepstral_distortion` (module docstring).

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


def _trim(wav: np.ndarray, sample_rate: int, top_db: float | None) -> np.ndarray:
    """Leading/trailing silence cut as :func:`prosody_vae.audio.load_audio` cuts it."""
    x = np.asarray(wav, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty mono waveform (N,), got shape {x.shape}")
    if top_db is None:
        return x
    if not top_db > 0:
        raise ValueError(f"trim_top_db must be > 0 or None, got {top_db!r}")
    frames = analysis_config(sample_rate)
    trimmed, _ = librosa.effects.trim(
        x, top_db=top_db, frame_length=frames.n_fft, hop_length=frames.hop_length
    )
    return trimmed


def world_mel_cepstral_distortion(
    ref_wav: np.ndarray,
    out_wav: np.ndarray,
    sample_rate: int,
    *,
    order: int = 24,
    alpha: float | None = None,
    f0_method: F0Method = "dio",
    frame_period_ms: float = 5.0,
    trim_top_db: float | None = 40.0,
    path: np.ndarray | None = None,
) -> MCDResult:
    """MCD in dB on SPTK mel-cepstra of the WORLD envelope (``mcd_world_db``, the standard convention).

    ``(10 / ln 10) * sqrt(2 * sum_{d=1}^{order} (c_d - c'_d)^2)`` per aligned frame pair, averaged
    over the DTW path; c0 (the level) excluded, so gain does not matter. The analysis is
    :func:`~prosody_vae.metrics.mel_cepstrum.world_mel_cepstra`; the frames are all frames after
    trimming leading and trailing silence (module docstring, with the differences from ESPnet).

    Args:
        ref_wav: (N1,) reference waveform at ``sample_rate``.
        out_wav: (N2,) output waveform at ``sample_rate``.
        sample_rate: Hz (no resampling here: both must already be at this rate).
        order: mel-cepstral order (24: c1..c24 enter the distance).
        alpha: all-pass constant; pysptk's ``mcepalpha`` of the rate if None (0.455 at 22.05 kHz).
        f0_method: ``"dio"`` (nnmnkwii) or ``"harvest"`` (ESPnet's WORLD recipe), + StoneMask.
        frame_period_ms: WORLD frame period (5 ms).
        trim_top_db: leading/trailing silence below ``peak - trim_top_db`` dB is cut first (frames
            of 1024 samples, hop 256, as ``load_audio``); None for audio that is already trimmed.
        path: optional (N, 2) ``(ref frame, out frame)`` pairs on the 5 ms grid instead of DTW.

    Returns:
        :class:`MCDResult`; ``path`` indexes the 5 ms WORLD frames, not the mel frames.
    """
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
        raise ValueError(f"order must be an int >= 1 (c0 is excluded), got {order!r}")
    analysis = {"order": order, "alpha": alpha, "frame_period_ms": frame_period_ms, "f0_method": f0_method}
    # (T1, order + 1) and (T2, order + 1) on the 5 ms grid
    ref = world_mel_cepstra(_trim(ref_wav, sample_rate, trim_top_db), sample_rate, **analysis)
    out = world_mel_cepstra(_trim(out_wav, sample_rate, trim_top_db), sample_rate, **analysis)
    return cepstral_distortion(ref, out, convention="mcd_db", path=path)
