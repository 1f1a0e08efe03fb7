"""Lengths-to-mask helper: the one place masks are derived from lengths."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["lengths_to_mask"]


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
