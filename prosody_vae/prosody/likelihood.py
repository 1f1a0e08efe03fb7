"""Reconstruction losses per utterance, in units that match the KL (nats per utterance).

Capacitron (Battenberg et al. 2019) trains with an L1 spectrogram loss, which is the negative
log-likelihood of a Laplace decoder with unit scale. Summing (not averaging) over frames and mel bins
makes that NLL a per-utterance quantity in nats, the same units as the KL, so that the capacity C has
its meaning. (The reference implementation trains Tacotron 2 with MSE, not L1: a defect we avoid.)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from prosody_vae.prosody.masking import lengths_to_mask

__all__ = ["laplace_nll", "masked_l1"]


def _check(pred: Tensor, target: Tensor, lengths: Tensor) -> None:
    if pred.dim() != 3 or pred.shape != target.shape:
        raise ValueError(
            f"pred and target must both be (B, T, n_mels), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if lengths.dim() != 1 or lengths.shape[0] != pred.shape[0]:
        raise ValueError(f"lengths must have shape ({pred.shape[0]},), got {tuple(lengths.shape)}")


def masked_l1(pred: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
    """L1 distance summed over each utterance's valid frames and all mel bins.

    Args:
        pred: (B, T, n_mels) predicted frames.
        target: (B, T, n_mels) target frames.
        lengths: (B,) valid frames per utterance; frames past it contribute nothing (even NaN).

    Returns:
        (B,) per-utterance sums.
    """
    _check(pred, target, lengths)
    valid = lengths_to_mask(lengths.to(pred.device), pred.shape[1]).unsqueeze(-1)  # (B, T, 1)
    # where(), not a multiply: garbage (inf/NaN) in the padding must not poison the sum or its gradient.
    diff = torch.where(valid, (pred - target).abs(), pred.new_zeros(()))
    return diff.sum(dim=(1, 2))


def laplace_nll(pred: Tensor, target: Tensor, lengths: Tensor, scale: float = 1.0) -> Tensor:
    """Negative log-likelihood of target under a Laplace(pred, scale) decoder, nats per utterance.

    ``sum |x - pred| / scale + T_i * n_mels * log(2 * scale)``: the masked L1 plus the normalising
    constant, so values are true nats (as the IWAE bound needs), not "L1 up to a constant".

    Args:
        pred: (B, T, n_mels) decoder output (the Laplace location).
        target: (B, T, n_mels) observed frames.
        lengths: (B,) valid frames per utterance.
        scale: the Laplace scale b > 0.

    Returns:
        (B,) NLL per utterance.
    """
    if not (isinstance(scale, int | float) and scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    l1 = masked_l1(pred, target, lengths)
    n_values = lengths.to(device=pred.device, dtype=l1.dtype) * pred.shape[-1]
    return l1 / scale + n_values * math.log(2.0 * scale)
