"""Explicit pitch: the likelihood of frame-level log-F0 and voicing, and decoding predictions to Hz.

A decoder built with ``pitch=True`` (:class:`~prosody_vae.tts.backbones.tacotron2.Tacotron2`) emits,
per frame, a log-F0 prediction mu (natural log of Hz) and a voicing logit v. The targets are the
feature cache's F0 track (Harvest + StoneMask on the mel frame grid, 0 = unvoiced; see
:func:`prosody_vae.audio.f0_energy`).

Terms, in nats per utterance so that they add to the mel L1 (a unit-scale Laplace NLL) and the
capacity C keeps its meaning as information about everything the decoder reconstructs:

* log-F0: a Laplace likelihood with a fixed scale b on the frames voiced in the target,
  ``sum_t |log f0_t - mu_t| / b``. Like :func:`~prosody_vae.prosody.likelihood.masked_l1`, the constant
  ``log 2b`` per voiced frame is left out (it does not depend on the model). b sets how much a pitch
  error costs against a mel error: with b = 0.05 (0.87 semitones) an error of one semitone costs
  about 1.2 nats per frame, against about 20-25 nats for a typical frame's mel L1.
* voicing: the Bernoulli likelihood, ``sum_t BCE(v_t, voiced_t)``.

Unvoiced target frames carry no log-F0 term: their F0 is undefined, and the vocoder ignores the
predicted F0 where the voicing decision says unvoiced.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from prosody_vae.prosody.masking import lengths_to_mask

__all__ = ["PitchNLL", "decode_pitch", "pitch_nll", "smooth_f0"]


class PitchNLL(NamedTuple):
    log_f0: Tensor  # (B,) Laplace NLL of log-F0 over target-voiced frames, nats (no constant)
    voicing: Tensor  # (B,) Bernoulli NLL of the voicing decision over valid frames, nats


def pitch_nll(pitch: Tensor, f0: Tensor, lengths: Tensor, *, scale: float = 0.05) -> PitchNLL:
    """Per-utterance negative log-likelihoods of the target F0 track.

    Args:
        pitch: (B, T, 2) predictions: log-F0 (natural log of Hz) and voicing logit.
        f0: (B, T) target F0 in Hz, 0 where unvoiced (and in padding).
        lengths: (B,) valid frames.
        scale: b, the Laplace scale of log-F0 (natural-log units).

    Returns:
        :class:`PitchNLL` with two (B,) tensors in nats.
    """
    if pitch.dim() != 3 or pitch.shape[-1] != 2:
        raise ValueError(f"pitch must be (B, T, 2), got {tuple(pitch.shape)}")
    if f0.shape != pitch.shape[:2]:
        raise ValueError(
            f"f0 must be {tuple(pitch.shape[:2])} like pitch's first two axes, got {tuple(f0.shape)}"
        )
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    valid = lengths_to_mask(lengths, f0.shape[1]).to(pitch.dtype)  # (B, T)
    voiced = (f0 > 0).to(pitch.dtype) * valid
    log_target = torch.log(f0.clamp_min(1.0))  # unvoiced frames are masked out below
    log_f0 = ((log_target - pitch[..., 0]).abs() / scale * voiced).sum(dim=1)
    bce = F.binary_cross_entropy_with_logits(pitch[..., 1], voiced, reduction="none")
    return PitchNLL(log_f0=log_f0, voicing=(bce * valid).sum(dim=1))


def decode_pitch(pitch: Tensor, lengths: Tensor | None = None, *, threshold: float = 0.5) -> Tensor:
    """Predictions to an F0 track in Hz, 0 where the voicing probability is below ``threshold``.

    Args:
        pitch: (B, T, 2) or (T, 2) predictions.
        lengths: (B,) valid frames; frames past them are 0. None: all frames valid.

    Returns:
        (B, T) or (T,) F0 in Hz.
    """
    f0 = torch.exp(pitch[..., 0]) * (torch.sigmoid(pitch[..., 1]) > threshold).to(pitch.dtype)
    if lengths is not None:
        f0 = f0 * lengths_to_mask(lengths, f0.shape[-1]).to(f0.dtype)
    return f0


def smooth_f0(f0: Tensor, width: int = 5) -> Tensor:
    """Running median of log-F0 over each voiced frame's voiced neighbours; unvoiced frames stay 0.

    The targets come from Harvest, whose track jumps for a frame or two at voicing onsets and offsets
    (a period-doubling or halving guess on an unstable cycle); the decoder learns those jumps too, and
    a pulse train that follows them is heard as a click. A median over ``width`` frames (5 = 58 ms at
    hop 256 / 22.05 kHz) removes one- or two-frame excursions and leaves slower movement (a rise or a
    fall over a syllable spans 10+ frames) as it is.

    Args:
        f0: (T,) or (B, T) F0 in Hz, 0 = unvoiced.
        width: odd window length in frames; 1 returns ``f0`` unchanged.
    """
    if width < 1 or width % 2 == 0:
        raise ValueError(f"width must be a positive odd number, got {width}")
    if width == 1:
        return f0
    single = f0.dim() == 1
    track = f0.unsqueeze(0) if single else f0
    half = width // 2
    voiced = track > 0
    log_f0 = torch.where(voiced, torch.log(track.clamp_min(1e-3)), torch.full_like(track, float("nan")))
    windows = torch.nn.functional.pad(log_f0, (half, half), value=float("nan")).unfold(
        -1, width, 1
    )  # (B, T, w)
    smoothed = torch.where(voiced, torch.exp(windows.nanmedian(dim=-1).values), torch.zeros_like(track))
    return smoothed[0] if single else smoothed
