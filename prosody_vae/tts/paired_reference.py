"""Paired references: in training, the posterior reads another sentence spoken with the same prosody.

Capacitron trains q(z | x, y_T, y_S) on the utterance x it reconstructs, so nothing stops z from also
holding what is particular to x's sentence: how long *this* sentence's words came out, where *its*
F0 peaked. At inter-text transfer that part is carried to another sentence as noise. Measured on the
shipped model (docs/transfer.md, "The speaking rate: a length model"): across sentences spoken at one
espeak-ng setting, the speaking rate read from z varies by 4-6 %, enough to hold the cross-voice rate
correlation below espeak-ng's own.

With ``prosody.paired_reference`` p > 0, an item that has a partner (:mod:`prosody_vae.data.partners`:
the same voice and prosody settings on another sentence) has, with probability p, its posterior read
the partner (its mel, F0 and transcript) while the decoder, the length model and the auxiliary heads
still target the item itself. Only what the two sentences share then lowers the loss, so z is pushed
towards the prosody of the setting rather than of the sentence: the inter-text transfer that the model
is used for, made a training case.

Deviation from the paper: for those items the objective is no longer the ELBO of x (q reads x', the
decoder reconstructs x); the KL term and its capacity are unchanged. Items without a partner, and every
item at evaluation, are trained as in Capacitron.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from prosody_vae.data.dataset import PartnerBatch

__all__ = ["Reference", "choose_references"]


class Reference(NamedTuple):
    """What the posterior reads: mels (B, T, n_mels), mel_lengths (B,), tokens (B, L),
    token_lengths (B,), f0 (B, T) or None."""

    mels: Tensor
    mel_lengths: Tensor
    tokens: Tensor
    token_lengths: Tensor
    f0: Tensor | None


def _rows(swap: Tensor, own: Tensor, other: Tensor) -> Tensor:
    """Rows of ``other`` where ``swap`` (B,), else of ``own``, both zero-padded on dim 1 to one length."""
    length = max(own.shape[1], other.shape[1])
    pad = [0, 0] * (own.dim() - 2)
    own = F.pad(own, [*pad, 0, length - own.shape[1]])
    other = F.pad(other, [*pad, 0, length - other.shape[1]])
    mask = swap.view(-1, *([1] * (own.dim() - 1)))
    return torch.where(mask, other, own)


def choose_references(own: Reference, partner: PartnerBatch, swap: Tensor) -> Reference:
    """The partner's reference for items where ``swap`` (B,) bool is set, the item's own elsewhere.

    Rows are padded with zeros to the longer of the two; padding is masked by the lengths everywhere
    the posterior reads it, so a row's embedding does not depend on it.
    """
    if own.f0 is None or partner.f0 is None:
        f0 = None
    else:
        f0 = _rows(swap, own.f0, partner.f0)
    return Reference(
        mels=_rows(swap, own.mels, partner.mels),
        mel_lengths=torch.where(swap, partner.mel_lengths, own.mel_lengths),
        tokens=_rows(swap, own.tokens, partner.tokens),
        token_lengths=torch.where(swap, partner.token_lengths, own.token_lengths),
        f0=f0,
    )
