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

Padding-exact: no normalisation across the batch, and every layer's input is zeroed past each item's
length, so an item's refinement does not depend on what it is batched with.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["PitchRefiner"]

_KERNEL = 5
_DILATIONS = (1, 2, 4)


class PitchRefiner(nn.Module):
    """Residual (log-F0, voicing logit) per frame from the sequence of decoder outputs.

    Args:
        in_dim: decoder output size (decoder LSTM size plus the attention context's).
        memory_dim: text encoder output size (with any conditioning it carries).
        dim: channels of the hidden convolutions.
        embedding_dim: token embedding size; 0 reads no embedding.
        r: frames per decoder step.
    """

    def __init__(self, *, in_dim: int, memory_dim: int, dim: int, r: int, embedding_dim: int = 0) -> None:
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
    ) -> Tensor:
        """Refinement of the pitch prediction.

        Args:
            hidden: (B, S, in_dim) decoder outputs, one per decoder step.
            step_mask: (B, S) bool, True on each item's valid steps.
            memory: (B, L, memory_dim) text encoder outputs.
            token_lengths: (B,) valid tokens per item.
            final_embedding: (B, embedding_dim) embedding of each item's last token (None without one).

        Returns:
            (B, S * r, 2) residual (log-F0, voicing logit), zero on padded steps.
        """
        mask = step_mask.unsqueeze(1).to(hidden.dtype)  # (B, 1, S)
        rows = torch.arange(memory.shape[0], device=memory.device)
        last = memory[rows, token_lengths - 1]  # (B, memory_dim): the sentence's last token
        steps = hidden.shape[1]
        x = torch.cat([hidden, last.unsqueeze(1).expand(-1, steps, -1)], dim=-1).transpose(1, 2) * mask
        for k, conv in enumerate(self.convs):
            x = conv(x)
            if k == 0 and self.final_token is not None and final_embedding is not None:
                x = x + self.final_token(final_embedding).unsqueeze(-1)  # (B, dim, 1) over all steps
            x = torch.tanh(x) * mask
        residual = self.out(x) * mask  # (B, 2r, S)
        batch, _, steps = residual.shape
        return residual.transpose(1, 2).reshape(batch, steps * self.r, 2)
