"""Frame-level pitch metrics on two F0 tracks: FFE, GPE, VDE, log-F0 RMSE (cents), F0 correlation.

Conventions (the same in every function here):

* An F0 track is a 1-D array in Hz on a frame grid; ``0`` marks an unvoiced frame. The library's
  tracks come from :func:`prosody_vae.audio.f0_energy` (Harvest + StoneMask, mel frame grid).
* ``ref`` is the reference (ground truth), ``out`` the system output; frame ``t`` of one is compared
  with frame ``t`` of the other, so both must have the same length. :func:`align_tracks` gets them
  there, either along a DTW path or by trimming.
* FFE follows Chu and Alwan (2009), the form used by the Tacotron prosody papers (Skerry-Ryan et al.
  2018, Battenberg et al. 2019)::

      FFE = (1/T) sum_t ( [v_t and v'_t and |f'_t / f_t - 1| > 0.2]  +  [v_t != v'_t] )

  and its two parts are reported on their own: GPE = gross errors / frames voiced in both, VDE =
  voicing disagreements / T. Note the denominators: FFE = GPE * (voiced-both / T) + VDE.
* log-F0 RMSE and F0 correlation use only frames voiced in both tracks.

Metrics that are undefined on the input (no frame voiced in both, a constant track for the
correlation) return ``nan`` rather than raise, so that corpus-level averages can skip them with
``np.nanmean`` and the count of skipped utterances stays visible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "GROSS_PITCH_THRESHOLD",
    "PitchErrors",
    "align_tracks",
    "f0_correlation",
    "f0_frame_errors",
    "log_f0_rmse_cents",
]

# Relative deviation above which a voiced-voiced frame counts as a gross pitch error (20 %).
GROSS_PITCH_THRESHOLD = 0.2


class PitchErrors(NamedTuple):
    """F0 frame error and its parts, all fractions in [0, 1] (``gpe`` may be nan)."""

    ffe: float
    gpe: float  # nan when no frame is voiced in both tracks
    vde: float
    num_frames: int
    num_voiced_both: int


def _as_track(values: np.ndarray, name: str) -> np.ndarray:
    track = np.asarray(values, dtype=np.float64)
    if track.ndim != 1:
        raise ValueError(f"{name} must be a 1-D F0 track (T,), got shape {track.shape}")
    if not np.all(np.isfinite(track)):
        raise ValueError(f"{name} contains NaN or infinite values; mark unvoiced frames with 0")
    if np.any(track < 0):
        raise ValueError(f"{name} contains negative F0 values (min {track.min()}); unvoiced is 0")
    return track


def _as_pair(ref: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref_track, out_track = _as_track(ref, "ref_f0"), _as_track(out, "out_f0")
    if ref_track.shape != out_track.shape:
        raise ValueError(
            f"F0 tracks differ in length (ref {ref_track.shape[0]}, out {out_track.shape[0]} frames); "
            "align them first with align_tracks(ref, out, path=...)"
        )
    if ref_track.shape[0] == 0:
        raise ValueError("F0 tracks are empty (0 frames)")
    return ref_track, out_track


def align_tracks(
    ref: np.ndarray, out: np.ndarray, *, path: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Bring two frame sequences onto a common grid.

    Args:
        ref: (T1, ...) reference frames (an F0 track, or any per-frame features).
        out: (T2, ...) output frames.
        path: optional (N, 2) integer warping path of ``(ref frame, out frame)`` pairs, e.g.
            ``MCDResult.path`` from :func:`prosody_vae.metrics.mel_cepstral_distortion`.

    Returns:
        ``(ref_aligned, out_aligned)``, each (N, ...). With a path, frames are gathered along it
        (a frame can repeat). Without one, both are cut to ``min(T1, T2)`` frames: trimming assumes
        the two start together and differ only at the end (copy-synthesis, teacher-forced output,
        off-by-one frame counts); free-running output needs the DTW path instead.
    """
    ref_arr, out_arr = np.asarray(ref), np.asarray(out)
    if ref_arr.ndim == 0 or out_arr.ndim == 0:
        raise ValueError(f"expected frame sequences, got shapes {ref_arr.shape} and {out_arr.shape}")
    if path is None:
        length = min(ref_arr.shape[0], out_arr.shape[0])
        return ref_arr[:length], out_arr[:length]
    pairs = np.asarray(path)
    if (
        pairs.ndim != 2
        or pairs.shape[1] != 2
        or pairs.shape[0] == 0
        or not np.issubdtype(pairs.dtype, np.integer)
    ):
        raise ValueError(
            f"path must be a non-empty (N, 2) integer array, got shape {pairs.shape}, {pairs.dtype}"
        )
    if pairs.min() < 0 or pairs[:, 0].max() >= ref_arr.shape[0] or pairs[:, 1].max() >= out_arr.shape[0]:
        raise ValueError(
            f"path indexes frames outside ref ({ref_arr.shape[0]}) or out ({out_arr.shape[0]}) "
            "frames; was it computed on the same frame grid?"
        )
    return ref_arr[pairs[:, 0]], out_arr[pairs[:, 1]]


def f0_frame_errors(
    ref_f0: np.ndarray, out_f0: np.ndarray, *, threshold: float = GROSS_PITCH_THRESHOLD
) -> PitchErrors:
    """FFE, GPE and VDE of ``out_f0`` against ``ref_f0`` (same length, 0 = unvoiced).

    Args:
        ref_f0: (T,) reference F0 in Hz.
        out_f0: (T,) output F0 in Hz.
        threshold: relative deviation ``|f'/f - 1|`` above which a pitch error is gross.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    ref, out = _as_pair(ref_f0, out_f0)
    ref_voiced, out_voiced = ref > 0, out > 0
    both = ref_voiced & out_voiced
    num_frames, num_both = ref.shape[0], int(both.sum())
    # Relative deviation with the reference in the denominator, as in the FFE definition.
    ratio = np.divide(out, ref, out=np.ones_like(ref), where=both)
    gross = both & (np.abs(ratio - 1.0) > threshold)
    voicing = ref_voiced != out_voiced
    num_gross, num_voicing = int(gross.sum()), int(voicing.sum())
    return PitchErrors(
        ffe=(num_gross + num_voicing) / num_frames,
        gpe=num_gross / num_both if num_both else float("nan"),
        vde=num_voicing / num_frames,
        num_frames=num_frames,
        num_voiced_both=num_both,
    )


def log_f0_rmse_cents(ref_f0: np.ndarray, out_f0: np.ndarray) -> float:
    """RMSE of ``1200 * log2(out / ref)`` over frames voiced in both; nan if there are none.

    Cents make the error independent of the speaker's register: 100 cents is one semitone.
    """
    ref, out = _as_pair(ref_f0, out_f0)
    both = (ref > 0) & (out > 0)
    if not both.any():
        return float("nan")
    cents = 1200.0 * np.log2(out[both] / ref[both])
    return float(np.sqrt(np.mean(cents**2)))


def f0_correlation(ref_f0: np.ndarray, out_f0: np.ndarray) -> float:
    """Pearson correlation of F0 in Hz over frames voiced in both.

    nan when fewer than two such frames exist or either track is constant on them (the correlation
    of a flat contour is undefined, and reporting 0 or 1 for it would be a guess).
    """
    ref, out = _as_pair(ref_f0, out_f0)
    both = (ref > 0) & (out > 0)
    if both.sum() < 2:
        return float("nan")
    x, y = ref[both] - ref[both].mean(), out[both] - out[both].mean()
    norm = np.sqrt(np.sum(x**2) * np.sum(y**2))
    # Relative tolerance: a track constant up to float rounding has no defined correlation.
    scale = max(np.abs(ref[both]).max(), np.abs(out[both]).max())
    if norm <= (1e-9 * scale) ** 2 * both.sum():
        return float("nan")
    return float(np.clip(np.sum(x * y) / norm, -1.0, 1.0))
