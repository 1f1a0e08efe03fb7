"""Random warp of the reference's frequency axis in training: the posterior hears more voices.

Our addition (``prosody.reference_warp``; Capacitron trains the posterior on the corpus's own voices).
Why: on the built-in multi-voice corpus a posterior that reads F0 relative to the voice
(:mod:`prosody_vae.tts.voice_pitch`) carries the level relative to the voice at r 0.92 from the 22
training voices but 0.80 from the 4 held-out ones, and naming a training voice buys only 0.04 of that
(docs/transfer.md): what it has not heard is the held-out voices' timbre, their formants. Scaling a
spectrum's frequency axis by a factor alpha is the classic model of a longer or shorter vocal tract
(vocal tract length perturbation, VTLP); drawn per utterance it makes virtual speakers for the
posterior at no synthesis cost.

What: each training item's reference log-mel (B, T, M) is resampled along frequency so that the
energy at f moves to alpha * f, with log alpha uniform in [-log(1 + w), log(1 + w)], w =
``prosody.reference_warp``; bins whose source lies outside the filterbank take the edge bin. Only the
posterior's input is warped: the decoder's target, the F0 the posterior reads (relative to the voice,
so a warp of the formants leaves it as it is) and everything at inference are untouched. Each frame is
warped on its own, so padding frames (zeros) stay zeros and the posterior stays padding-exact.
"""

from __future__ import annotations

import math

import librosa
import torch
from torch import Tensor, nn

__all__ = ["ReferenceWarp"]


class ReferenceWarp(nn.Module):
    """Random per-item frequency warp of log-mels (B, T, M) in training; the identity in eval mode.

    Args:
        n_mels, f_min, f_max: the mel filterbank of the features (Slaney's mel scale, as the
            features use).
        max_warp: w; alpha lies in [1 / (1 + w), 1 + w]. 0 disables the warp.
    """

    def __init__(self, *, n_mels: int, f_min: float, f_max: float, max_warp: float) -> None:
        super().__init__()
        if not 0.0 <= max_warp < 0.5:
            raise ValueError(f"max_warp must lie in [0, 0.5), got {max_warp}")
        centres = librosa.mel_frequencies(n_mels + 2, fmin=f_min, fmax=f_max, htk=False)[1:-1]
        # not in the state dict: it follows from the audio config, and old checkpoints lack it
        self.register_buffer("centres", torch.tensor(centres, dtype=torch.float32), persistent=False)
        self.max_warp = max_warp

    def warp(self, mels: Tensor, alpha: Tensor) -> Tensor:
        """Log-mels (B, T, M) with each item's frequency axis scaled by alpha (B,): f -> alpha * f."""
        centres = self.centres.to(mels.device)  # (M,) Hz
        n = centres.numel()
        source = centres[None, :] / alpha[:, None].to(
            centres.dtype
        )  # (B, M): where each bin's energy comes from
        right = torch.searchsorted(centres, source.contiguous()).clamp(1, n - 1)  # (B, M)
        left = right - 1
        frac = ((source - centres[left]) / (centres[right] - centres[left])).clamp(
            0.0, 1.0
        )  # edges: edge bin
        frames = mels.shape[1]
        below = mels.gather(2, left[:, None, :].expand(-1, frames, -1))  # (B, T, M)
        above = mels.gather(2, right[:, None, :].expand(-1, frames, -1))  # (B, T, M)
        weight = frac[:, None, :].to(mels.dtype)
        return below * (1.0 - weight) + above * weight

    def forward(self, mels: Tensor) -> Tensor:
        """A random warp per item in training mode; ``mels`` unchanged in eval mode or with w = 0."""
        if not self.training or self.max_warp == 0.0:
            return mels
        bound = math.log1p(self.max_warp)
        log_alpha = (torch.rand(mels.shape[0], device=mels.device) * 2.0 - 1.0) * bound  # (B,)
        return self.warp(mels, torch.exp(log_alpha))
