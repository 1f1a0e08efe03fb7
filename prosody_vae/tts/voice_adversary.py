"""A voice classifier on the prosody latent, trained adversarially so that z forgets the voice.

Our addition to Capacitron's multi-speaker setup (V+T+S). Conditioning the posterior on the
reference's voice lets z encode prosody *relative* to that voice, but nothing asks it to: measured
on the built-in multi-voice corpus (docs/transfer.md), a linear classifier names the reading voice
from the posterior mean for 26 % of utterances (chance 6 %), and transfer into another voice keeps
half of the reference's relative F0 level. Domain-adversarial training (Ganin & Lempitsky 2015) is
the standard way to remove a factor from a representation: a small classifier predicts the voice
from the posterior mean and is trained to do so, while a gradient-reversal layer between z and the
classifier makes the prosody encoder *increase* the classifier's loss.

The loss is the classifier's cross-entropy in nats per utterance; the training objective adds it,
times ``prosody.voice_adversary_weight``, beside the stop and guided-attention terms (outside the
capacity Lagrangian: it says nothing about how much z carries, only what). Multi-speaker models only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["VoiceAdversary", "reverse_gradient"]


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``-scale``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: Tensor, scale: float = 1.0) -> Tensor:
    """``x`` unchanged; gradients flowing back through it are multiplied by ``-scale``."""
    return _ReverseGradient.apply(x, scale)


class VoiceAdversary(nn.Module):
    """Voice classifier behind a gradient reversal: z (B, D), voice ids (B,) -> cross-entropy (B,), nats.

    Args:
        latent_dim: D, the size of z.
        n_speakers: voices in the speaker table (classes).
        hidden_dim: width of its one hidden layer.
    """

    def __init__(self, *, latent_dim: int, n_speakers: int, hidden_dim: int = 64) -> None:
        super().__init__()
        if latent_dim < 1 or n_speakers < 2 or hidden_dim < 1:
            raise ValueError(
                f"VoiceAdversary needs latent_dim >= 1, n_speakers >= 2 and hidden_dim >= 1, "
                f"got {latent_dim}, {n_speakers}, {hidden_dim}"
            )
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, n_speakers)
        )

    def forward(self, z: Tensor, speakers: Tensor) -> Tensor:
        """Cross-entropy (B,) of the voice given z (B, D); the gradient reaching z is reversed."""
        logits = self.net(reverse_gradient(z))  # (B, n_speakers)
        return F.cross_entropy(logits.float(), speakers, reduction="none")
