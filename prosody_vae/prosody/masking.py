"""Padding helpers: the one place masks are derived from lengths, and the read-out of a padded RNN."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["last_valid", "lengths_to_mask"]


def lengths_to_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """Boolean mask that is True on valid positions.

    Args:
        lengths: (B,) integer lengths.
        max_length: size of the time axis; defaults to ``lengths.max()``.

    Returns:
        (B, max_length) bool tensor on ``lengths.device``.
    """
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (B,), got shape {tuple(lengths.shape)}")
    if max_length is None:
        max_length = int(lengths.max().item()) if lengths.numel() else 0
    positions = torch.arange(max_length, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def last_valid(outputs: Tensor, lengths: Tensor) -> Tensor:
    """Each item's output at its last valid step: outputs (B, T, H), lengths (B,) -> (B, H).

    For a unidirectional RNN run over a padded batch this is the final state of a run over the item's
    valid steps alone (the padding only comes after it), without ``pack_padded_sequence``, which needs
    the lengths on the host and is data-dependent (tracing bakes it in). Lengths must be >= 1.
    """
    index = (lengths.long() - 1).clamp_min(0).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])  # (B, 1, H)
    return outputs.gather(1, index).squeeze(1)
