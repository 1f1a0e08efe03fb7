"""Auxiliary Tacotron losses: stop token and guided attention.

The mel reconstruction term lives in :mod:`prosody_vae.prosody.likelihood` (it is the VAE's likelihood); these
two only help the backbone learn when to stop and where to look.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from prosody_vae.prosody.masking import lengths_to_mask

__all__ = ["guided_attention_loss", "guided_attention_weights", "stop_loss", "stop_targets"]


def stop_targets(mel_lengths: Tensor, frames: int) -> Tensor:
    """Stop targets: 1 from each item's last valid frame onwards. (B,) -> (B, frames) float."""
    positions = torch.arange(frames, device=mel_lengths.device)
    return (positions.unsqueeze(0) >= (mel_lengths.unsqueeze(1) - 1)).float()


def stop_loss(stop_logits: Tensor, mel_lengths: Tensor, *, pos_weight: float = 1.0) -> Tensor:
    """Binary cross-entropy of the per-frame stop logits.

    The target is 1 on each item's last valid frame and on every padded frame after it, 0 before
    (NVIDIA's and Coqui's convention): the padded frames are supervised too, which teaches the decoder
    that once it has stopped it stays stopped. Stop frames are rare (about one per utterance in an
    unpadded batch), so ``pos_weight > 1`` up-weights them; Coqui uses 10 for r = 2.

    Args:
        stop_logits: (B, T) logits, one per frame.
        mel_lengths: (B,) valid frames per item.
        pos_weight: weight of the positive (stop) targets.

    Returns:
        Scalar: the mean over all B * T frames.
    """
    if stop_logits.dim() != 2 or mel_lengths.shape != stop_logits.shape[:1]:
        raise ValueError(
            f"stop_logits must be (B, T) and mel_lengths (B,), got {tuple(stop_logits.shape)}, "
            f"{tuple(mel_lengths.shape)}"
        )
    if pos_weight <= 0:
        raise ValueError(f"pos_weight must be > 0, got {pos_weight}")
    targets = stop_targets(mel_lengths, stop_logits.shape[1]).to(stop_logits.dtype)
    weight = stop_logits.new_tensor(pos_weight)
    return F.binary_cross_entropy_with_logits(stop_logits, targets, pos_weight=weight)


def guided_attention_weights(
    token_lengths: Tensor, decoder_lengths: Tensor, tokens: int, steps: int, sigma: float = 0.2
) -> Tensor:
    """Tachibana et al.'s penalty ``W[t, n] = 1 - exp(-(n / N - t / T)^2 / (2 sigma^2))`` per item.

    Positions are taken at cell centres, ``(n + 0.5) / N``, so that the diagonal of a square
    alignment has zero penalty. Zero outside each item's (T, N) block.

    Returns:
        (B, steps, tokens).
    """
    dtype = torch.float32
    n = (torch.arange(tokens, device=token_lengths.device, dtype=dtype) + 0.5).view(1, 1, -1)
    t = (torch.arange(steps, device=token_lengths.device, dtype=dtype) + 0.5).view(1, -1, 1)
    diff = n / token_lengths.view(-1, 1, 1).to(dtype) - t / decoder_lengths.view(-1, 1, 1).to(dtype)
    penalty = 1.0 - torch.exp(-(diff**2) / (2.0 * sigma**2))
    mask = lengths_to_mask(decoder_lengths, steps).unsqueeze(2) & lengths_to_mask(
        token_lengths, tokens
    ).unsqueeze(1)
    return penalty * mask


def guided_attention_loss(
    alignments: Tensor, token_lengths: Tensor, decoder_lengths: Tensor, sigma: float = 0.2
) -> Tensor:
    """Guided attention loss (Tachibana et al. 2017, "Efficiently trainable text-to-speech...").

    Normalisation: the penalised attention mass ``sum_n A[t, n] W[t, n]`` is in [0, 1] for every
    decoder step (each attention row sums to 1), and we average it over all valid decoder steps of
    the batch. The value is therefore the expected off-diagonal penalty per decoder step, comparable
    across batch sizes and text lengths (Tachibana et al. average over all T x N cells, which shrinks
    with the text length).

    Args:
        alignments: (B, T_dec, L) attention weights.
        token_lengths: (B,) valid tokens.
        decoder_lengths: (B,) valid decoder steps (``ceil(mel_lengths / r)``).
        sigma: width of the allowed band, as a fraction of the text and of the utterance.

    Returns:
        Scalar.
    """
    if alignments.dim() != 3:
        raise ValueError(f"alignments must be (B, T_dec, L), got {tuple(alignments.shape)}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    batch, steps, tokens = alignments.shape
    if token_lengths.shape != (batch,) or decoder_lengths.shape != (batch,):
        raise ValueError(
            f"token_lengths and decoder_lengths must be ({batch},), got {tuple(token_lengths.shape)}, "
            f"{tuple(decoder_lengths.shape)}"
        )
    weights = guided_attention_weights(token_lengths, decoder_lengths, tokens, steps, sigma).to(
        alignments.dtype
    )
    return (alignments * weights).sum() / decoder_lengths.clamp(max=steps).sum().clamp(min=1).to(
        alignments.dtype
    )
