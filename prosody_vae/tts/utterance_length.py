"""How long an utterance should last: a length model from its tokens and the conditioning [z, speaker].

The Tacotron decoder times an utterance through its attention, one decoder step (``r`` frames) at a
time, and each token gets a whole number of steps. Measured on the built-in multi-voice corpus
(docs/transfer.md, "The speaking rate"), the free-running decoder's length for a given sentence
and prosody is off by about 8 % (s.d. of the log length, 0.075-0.09), on training and held-out texts
alike and with the reference's own z, so the speaking rate a reference carries over is blurred by
the sentence the output speaks. This module predicts the length directly:

    log T = log( sum_l softplus(w[token_l]) ) + v^T c + b

a learned duration per token type, summed over the utterance (what a rule-based synthesiser's
duration model amounts to at a fixed rate), times a factor exp(v^T c) that the conditioning
c = [z, speaker] sets (the speaking rate the prosody embedding carries, and the voice's own pace).
At synthesis the decoder's output is resampled in time to the predicted length
(:func:`prosody_vae.inference.timing.stretch`), which keeps the decoder's local timing and
corrects its total. Not in Capacitron, which leaves timing to the attention.

It is trained on the posterior *mean* of each item, detached (:meth:`loss`): the prosody module and
the decoder are not changed by it, and it learns what the mean that synthesis uses implies, not a
noisy sample's shrunken version of it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UtteranceLength"]


class UtteranceLength(nn.Module):
    """log frames (B,) of tokens (B, L) with lengths (B,) and a conditioning vector (B, C).

    Args:
        n_symbols: token vocabulary size (id 0 is padding and never counted).
        conditioning_dim: size C of [z, speaker].
        frames_per_token: the initial duration of every token, in frames.
    """

    def __init__(self, *, n_symbols: int, conditioning_dim: int, frames_per_token: float = 4.0):
        super().__init__()
        if n_symbols < 2 or conditioning_dim < 1 or not frames_per_token > 0:
            raise ValueError(
                f"UtteranceLength needs n_symbols >= 2, conditioning_dim >= 1 and frames_per_token > 0, "
                f"got {n_symbols}, {conditioning_dim}, {frames_per_token}"
            )
        inverse_softplus = frames_per_token + torch.log(-torch.expm1(torch.tensor(-frames_per_token)))
        self.token_frames = nn.Parameter(torch.full((n_symbols,), float(inverse_softplus)))
        self.rate = nn.Linear(conditioning_dim, 1)
        nn.init.zeros_(self.rate.weight)
        nn.init.zeros_(self.rate.bias)

    def forward(self, tokens: Tensor, token_lengths: Tensor, conditioning: Tensor) -> Tensor:
        """Predicted log length in frames (B,)."""
        return self.text_term(tokens, token_lengths) + self.rate_term(conditioning)

    def rate_term(self, conditioning: Tensor) -> Tensor:
        """v^T c + b (B,): the conditioning's share of the log length."""
        return self.rate(conditioning).squeeze(-1)

    def text_term(self, tokens: Tensor, token_lengths: Tensor) -> Tensor:
        """log sum_l d(token_l) (B,): the sentence's share of the log length, without the conditioning."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        valid = positions[None, :] < token_lengths[:, None]  # (B, L): padding never counts
        durations = F.softplus(self.token_frames)[tokens] * valid.to(self.token_frames.dtype)  # (B, L)
        return torch.log(durations.sum(dim=1).clamp_min(1e-3))

    def loss(
        self, tokens: Tensor, token_lengths: Tensor, conditioning: Tensor, mel_lengths: Tensor
    ) -> Tensor:
        """Squared error of the log length (B,), reaching this module's weights only (the
        conditioning is detached)."""
        predicted = self(tokens, token_lengths, conditioning.detach())
        return (predicted - torch.log(mel_lengths.to(predicted.dtype))).square()
