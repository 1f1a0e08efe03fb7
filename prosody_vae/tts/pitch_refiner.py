"""A non-causal refinement of the decoder's pitch prediction (``backbone.pitch_refiner_dim``).

Why: the decoder predicts log-F0 with a linear projection of its per-step output (the decoder LSTM's
state and the attention context), a state trained mostly by the mel's L1, which outweighs the pitch
terms by about twenty to one. Text-driven movements that the mel barely shows are then learnt only in
part: on the built-in corpus, where every question's last word is raised about 4 semitones, the
teacher-forced prediction of a model fine-tuned 1500 steps ends its questions at -0.8 semitones
against the targets' +2.0 while it fits the statements' fall (-1.2 against -1.3), docs/intonation.md.

What: like Tacotron 2's mel post-net, a stack of 1-D convolutions over the whole decoded sequence,
here at the decoder-step rate over the decoder outputs themselves (which carry the attention context:
which phonemes are being spoken) and, at every step, what the sentence's last token is: its final
punctuation when it has one, which says what kind of sentence it is. The attention reaches that token
only on the last step, after the last word's rise or fall, and the text encoder's output there barely
tells a question from a statement (measured: 5 % apart for "red?" and "red.", against 71 % for the
two tokens' embeddings), so the refiner reads both the encoder's output and the token's embedding
there. Dilations 1, 2, 4 with width 5 see 14 steps either side (42 frames, about 0.5 s at r = 3),
enough to know where in the last word a step is. Its residual is added to the linear projection's (log-F0, voicing) for
each of the step's r frames; the output convolution starts at zero, so a model gains it without
changing (``train.init_from`` on a model without one). It is not in Tacotron 2 or Capacitron.

Where in the utterance (``position=True``, ``backbone.pitch_refiner_position``): the refiner also reads,
at every step, how far through the text the attention is, ``u_t = sum_l alpha_{t,l} (l + 1/2) / L``
(0 at the first token, 1 at the last), as :func:`position_features`. Why: with ``pitch_input:
context`` the conditioning reaches the pitch path only through the attention context, where z is the
same vector at every step (the weights sum to one), so a linear head can move the whole track with z
but not shape it: it cannot put a peak early for one z and late for another. The convolutions see
14 steps either side, not where that is in the sentence. A multi-voice model fine-tuned that way
held F0 level and rate in z but nothing of the contour's height or peak position (a linear probe of
z: r = -0.2 and -0.1; same-text transfer reproduced a 3.7-6.3 semitone spread as 2.5-3.3,
docs/transfer.md). With u, a z-dependent bump at a z-dependent place is a function the tanh layers
can form. It is what lets the decoder render a contour; on its own it did not make the posterior
encode one (probe still |r| <= 0.2 after 1500 steps): that took ``prosody.contour_weight``
(:mod:`~prosody_vae.tts.contour_statistics`). u comes from the alignment, which synthesis has as
well, and padded tokens have weight 0, so it stays padding-exact. Its input layer starts at zero like
the output.

Padding-exact: no normalisation across the batch, and every layer's input is zeroed past each item's
length, so an item's refinement does not depend on what it is batched with.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["PitchRefiner", "attention_position", "position_features"]

_KERNEL = 5
_DILATIONS = (1, 2, 4)
_POSITION_HARMONICS = 4  # sin/cos of k * pi * u for k = 1..4: bumps as narrow as a quarter of the text


def attention_position(weights: Tensor, token_lengths: Tensor) -> Tensor:
    """How far through its text each decoder step attends: (B, S, L) weights, (B,) -> (B, S) in [0, 1].

    ``sum_l weights[b, s, l] * (l + 1/2) / token_lengths[b]``; tokens past an item's length carry no
    weight (the attention masks them), so padding does not move it."""
    positions = torch.arange(weights.shape[-1], device=weights.device, dtype=weights.dtype) + 0.5  # (L,)
    return (weights * positions).sum(dim=-1) / token_lengths.to(weights.dtype).unsqueeze(-1)


def position_features(position: Tensor) -> Tensor:
    """(B, S) fractions u -> (B, S, 1 + 2K) features: u and sin/cos(k pi u) for k = 1..K (K = 4)."""
    k = torch.arange(1, _POSITION_HARMONICS + 1, device=position.device, dtype=position.dtype)
    angle = math.pi * position.unsqueeze(-1) * k  # (B, S, K)
    return torch.cat([position.unsqueeze(-1), torch.sin(angle), torch.cos(angle)], dim=-1)


class PitchRefiner(nn.Module):
    """Residual (log-F0, voicing logit) per frame from the sequence of decoder outputs.

    Args:
        in_dim: decoder output size (decoder LSTM size plus the attention context's).
        memory_dim: text encoder output size (with any conditioning it carries).
        dim: channels of the hidden convolutions.
        embedding_dim: token embedding size; 0 reads no embedding.
        r: frames per decoder step.
        position: also read where in the text each step attends (module docstring).
    """

    def __init__(
        self,
        *,
        in_dim: int,
        memory_dim: int,
        dim: int,
        r: int,
        embedding_dim: int = 0,
        position: bool = False,
    ) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.r = r
        channels = [in_dim + memory_dim] + [dim] * len(_DILATIONS)
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, _KERNEL, padding=_KERNEL // 2 * d, dilation=d)
            for c_in, c_out, d in zip(channels[:-1], channels[1:], _DILATIONS, strict=True)
        )
        # the last token's embedding, added to the first layer; zero at first like the output
        self.final_token: nn.Linear | None = None
        if embedding_dim:
            self.final_token = nn.Linear(embedding_dim, dim, bias=False)
            nn.init.zeros_(self.final_token.weight)
        # where in the text each step is, added to the first layer; zero at first like the output
        self.position: nn.Linear | None = None
        if position:
            self.position = nn.Linear(1 + 2 * _POSITION_HARMONICS, dim, bias=False)
            nn.init.zeros_(self.position.weight)
        self.out = nn.Conv1d(dim, 2 * r, 1)
        nn.init.zeros_(self.out.weight)  # starts as no refinement at all
        nn.init.zeros_(self.out.bias)

    def forward(
        self,
        hidden: Tensor,
        step_mask: Tensor,
        memory: Tensor,
        token_lengths: Tensor,
        final_embedding: Tensor | None = None,
        position: Tensor | None = None,
    ) -> Tensor:
        """Refinement of the pitch prediction.

        Args:
            hidden: (B, S, in_dim) decoder outputs, one per decoder step.
            step_mask: (B, S) bool, True on each item's valid steps.
            memory: (B, L, memory_dim) text encoder outputs.
            token_lengths: (B,) valid tokens per item.
            final_embedding: (B, embedding_dim) embedding of each item's last token (None without one).
            position: (B, S) :func:`attention_position` of each step; needed when built with
                ``position=True``, ignored otherwise.

        Returns:
            (B, S * r, 2) residual (log-F0, voicing logit), zero on padded steps.
        """
        mask = step_mask.unsqueeze(1).to(hidden.dtype)  # (B, 1, S)
        rows = torch.arange(memory.shape[0], device=memory.device)
        last = memory[rows, token_lengths - 1]  # (B, memory_dim): the sentence's last token
        steps = hidden.shape[1]
        x = torch.cat([hidden, last.unsqueeze(1).expand(-1, steps, -1)], dim=-1).transpose(1, 2) * mask
        if self.position is not None and position is None:
            raise ValueError("this refiner reads where each step attends: pass position (B, S)")
        for k, conv in enumerate(self.convs):
            x = conv(x)
            if k == 0 and self.final_token is not None and final_embedding is not None:
                x = x + self.final_token(final_embedding).unsqueeze(-1)  # (B, dim, 1) over all steps
            if k == 0 and self.position is not None:
                x = x + self.position(position_features(position)).transpose(1, 2)  # (B, dim, S)
            x = torch.tanh(x) * mask
        residual = self.out(x) * mask  # (B, 2r, S)
        batch, _, steps = residual.shape
        return residual.transpose(1, 2).reshape(batch, steps * self.r, 2)
