"""An utterance-level F0 contour set by the conditioning vector (``backbone.pitch_contour``).

Why: the prosody latent z reaches the decoder as part of the attention memory, so every step reads the
same z, and a context-only pitch head (``pitch_input: context``) moves the whole F0 track with z but
cannot shape it. The gradient that would teach the posterior to encode a contour then vanishes: an
error pattern that is high at the peak and low elsewhere sums to about zero over the steps, and the
pitch head's response to z is the same at every step. Measured on the built-in multi-voice corpus,
whose stylised contour varies in height (the range factor) and peak position from utterance to
utterance (docs/corpus.md): after 1500 steps of fine-tuning, with the pitch refiner reading the
position too, at C = 10 or 20, or with the pitch term weighted five times more, a linear probe found
neither the contour's height nor its peak position in z (|r| <= 0.2) while F0 level and rate were
there (r 0.93 and 0.89), and the decoder's F0 fitted the targets no better than a flat line at each
utterance's median (validation log-F0 term 260-270 nats per utterance against 274 for the line).

What: a residual log-F0 ``c_t = phi(u_t) . (A [z; speaker])``, where ``u_t`` is how far through the
text step t attends (:func:`~prosody_vae.tts.pitch_refiner.attention_position`, 0 to 1) and
``phi`` its Fourier features (:func:`~prosody_vae.tts.pitch_refiner.position_features`: u and sin/cos
of k pi u for k = 1..4). The response to z now differs from step to step by construction, so an
error pattern along the utterance has a gradient into z from the first step: the posterior can learn
to encode where the pitch peaks and how far it moves, and ``A`` to render it. It is bilinear, so z
scales and places a contour over the utterance's relative time (declination, an early or late peak,
a final rise), not the syllable-level detail, which stays with the text-driven heads. The speaker
part of the conditioning lets each voice have its own typical shape.

Initialisation: ``A`` is drawn with a small standard deviation (1e-3), not zero, so that the gradient
into z exists from the first step; a model gains the contour through ``train.init_from`` with its F0
moved by a fraction of a semitone. It is not in Tacotron 2 or Capacitron.

Measured: on its own it did not make the posterior encode a contour either. After 500 steps ``A``
had grown from 1e-3 to 0.007 at most, and the gradient into z scales with ``A``, so the mel's
gradient still drowned it. With ``prosody.contour_weight``
(:mod:`~prosody_vae.tts.contour_statistics`), z carries the contour, and this head and the
position-aware refiner render it (docs/transfer.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from prosody_vae.tts.pitch_refiner import position_features

__all__ = ["UtteranceContour"]

_N_FEATURES = 9  # position_features' size: u and sin/cos(k pi u) for k = 1..4
_INIT_STD = 1e-3


class UtteranceContour(nn.Module):
    """Residual (log-F0, voicing logit) per frame from the conditioning and each step's position.

    Args:
        conditioning_dim: C, the size of the conditioning vector [z, speaker].
        r: frames per decoder step.
    """

    def __init__(self, *, conditioning_dim: int, r: int) -> None:
        super().__init__()
        if conditioning_dim < 1 or r < 1:
            raise ValueError(f"conditioning_dim and r must be >= 1, got {conditioning_dim} and {r}")
        self.r = r
        self.coefficients = nn.Linear(conditioning_dim, _N_FEATURES, bias=False)  # A
        nn.init.normal_(self.coefficients.weight, std=_INIT_STD)

    def forward(self, conditioning: Tensor, position: Tensor, step_mask: Tensor) -> Tensor:
        """The contour.

        Args:
            conditioning: (B, C) the decoder's conditioning vector.
            position: (B, S) how far through the text each decoder step attends, 0 to 1.
            step_mask: (B, S) bool, True on valid steps.

        Returns:
            (B, S * r, 2): the contour on the log-F0 channel, 0 on the voicing channel and on padded
            steps.
        """
        coefficients = self.coefficients(conditioning)  # (B, 9)
        contour = torch.einsum("bsf,bf->bs", position_features(position), coefficients)  # (B, S)
        contour = contour * step_mask.to(contour.dtype)
        residual = torch.stack([contour, torch.zeros_like(contour)], dim=-1)  # (B, S, 2)
        return residual.repeat_interleave(self.r, dim=1)  # (B, S * r, 2)
