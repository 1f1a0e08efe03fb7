"""Numeric diagnostics that say whether attention has aligned.

All take alignments (B, T_dec, L) with the valid token and decoder-step counts, and return one
number per item (B,). Read them together:

* :func:`diagonality` -- fraction of attention mass in a band around the straight diagonal. A
  uniform (untrained) alignment scores about twice the band; an aligned model scores near 1
  (speech is not perfectly linear in the text, so a band of 0.2 leaves room for pauses).
* :func:`align_error` -- the reference implementation's (Coqui's) "align error": 1 minus the mean
  over decoder steps of the largest attention weight. Sharp attention scores near 0, diffuse attention
  near 1 - 1/L; Coqui's untrained model sits around 0.94 and a real alignment is well below 0.5.
  It says nothing about *where* the attention is, hence diagonality.
* :func:`attention_monotonic_score` -- fraction of decoder steps on which the attention centroid does
  not move backwards. Attention stuck on one token also scores 1; diagonality catches that.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from prosody_vae.prosody.masking import lengths_to_mask

__all__ = ["AlignmentStats", "align_error", "alignment_stats", "attention_monotonic_score", "diagonality"]


class AlignmentStats(NamedTuple):
    diagonality: Tensor  # (B,)
    align_error: Tensor  # (B,)
    monotonic: Tensor  # (B,)


def _masks(
    alignments: Tensor, token_lengths: Tensor, decoder_lengths: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    if alignments.dim() != 3:
        raise ValueError(f"alignments must be (B, T_dec, L), got {tuple(alignments.shape)}")
    batch, steps, tokens = alignments.shape
    if token_lengths.shape != (batch,) or decoder_lengths.shape != (batch,):
        raise ValueError(
            f"token_lengths and decoder_lengths must be ({batch},), got {tuple(token_lengths.shape)}, "
            f"{tuple(decoder_lengths.shape)}"
        )
    step_mask = lengths_to_mask(decoder_lengths.clamp(max=steps), steps)  # (B, T_dec)
    token_mask = lengths_to_mask(token_lengths.clamp(max=tokens), tokens)  # (B, L)
    weights = alignments * (step_mask.unsqueeze(2) & token_mask.unsqueeze(1)).to(alignments.dtype)
    return weights, step_mask, token_mask


def _mean_over_steps(values: Tensor, step_mask: Tensor) -> Tensor:
    """(B, T_dec) values, (B, T_dec) mask -> (B,) masked mean."""
    mask = step_mask.to(values.dtype)
    return (values * mask).sum(1) / mask.sum(1).clamp(min=1)


def diagonality(
    alignments: Tensor, token_lengths: Tensor, decoder_lengths: Tensor, *, band: float = 0.2
) -> Tensor:
    """Fraction of attention mass with ``|(n + 0.5) / N - (t + 0.5) / T| <= band``.

    Args:
        alignments: (B, T_dec, L).
        token_lengths: (B,) valid tokens N.
        decoder_lengths: (B,) valid decoder steps T.
        band: half-width of the band, as a fraction of the text and the utterance.

    Returns:
        (B,) in [0, 1].
    """
    if not 0 < band <= 1:
        raise ValueError(f"band must be in (0, 1], got {band}")
    weights, step_mask, _ = _masks(alignments, token_lengths, decoder_lengths)
    _, steps, tokens = alignments.shape
    dtype = weights.dtype
    n = (torch.arange(tokens, device=weights.device, dtype=dtype) + 0.5).view(1, 1, -1)
    t = (torch.arange(steps, device=weights.device, dtype=dtype) + 0.5).view(1, -1, 1)
    distance = (
        n / token_lengths.view(-1, 1, 1).to(dtype) - t / decoder_lengths.view(-1, 1, 1).to(dtype)
    ).abs()
    in_band = (weights * (distance <= band).to(dtype)).sum(2)  # (B, T_dec)
    total = weights.sum(2).clamp(min=torch.finfo(dtype).tiny)
    return _mean_over_steps(in_band / total, step_mask)


def align_error(alignments: Tensor, token_lengths: Tensor, decoder_lengths: Tensor) -> Tensor:
    """1 - mean over valid decoder steps of the largest attention weight. (B, T_dec, L) -> (B,)."""
    weights, step_mask, _ = _masks(alignments, token_lengths, decoder_lengths)
    return 1.0 - _mean_over_steps(weights.amax(dim=2), step_mask)


def attention_monotonic_score(
    alignments: Tensor, token_lengths: Tensor, decoder_lengths: Tensor, *, tolerance: float = 0.5
) -> Tensor:
    """Fraction of step-to-step moves of the attention centroid that go back less than ``tolerance`` tokens.

    Items with a single decoder step score 1.

    Returns:
        (B,) in [0, 1].
    """
    weights, step_mask, _ = _masks(alignments, token_lengths, decoder_lengths)
    positions = torch.arange(alignments.shape[2], device=weights.device, dtype=weights.dtype)
    centroid = (weights * positions).sum(2) / weights.sum(2).clamp(min=torch.finfo(weights.dtype).tiny)
    forward = (centroid[:, 1:] - centroid[:, :-1]) >= -tolerance  # (B, T_dec - 1)
    pair_mask = step_mask[:, 1:]  # both steps of a pair are valid iff the later one is
    score = _mean_over_steps(forward.to(weights.dtype), pair_mask)
    return torch.where(pair_mask.any(1), score, torch.ones_like(score))


def alignment_stats(alignments: Tensor, token_lengths: Tensor, decoder_lengths: Tensor) -> AlignmentStats:
    """All three diagnostics with their default settings, each (B,)."""
    return AlignmentStats(
        diagonality(alignments, token_lengths, decoder_lengths),
        align_error(alignments, token_lengths, decoder_lengths),
        attention_monotonic_score(alignments, token_lengths, decoder_lengths),
    )
