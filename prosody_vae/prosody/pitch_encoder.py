"""Pitch encoder: a reference's frame-level F0 -> a vector added to the reference embedding (B, H).

Our addition to Capacitron's reference encoder (Battenberg et al. 2019 read the mel spectrogram
only). Why: with 80 Slaney mel bins up to 8 kHz the bins below 1 kHz are about 67 Hz apart, so the
harmonics of a voice near 100 Hz are barely resolved and the mel shows the F0 *level* only through
coarse spectral shape. Measured on the built-in multi-voice corpus (docs/transfer.md), a linear probe
reads the speaker-normalised F0 level (r 0.76) and speaking rate (r 0.89) from the posterior mean of
a mel-only model, but neither the F0 spread nor where the pitch peak falls (r <= 0.2): the contour a
listener hears is not in z, so no capacity can transfer it. The decoder of a ``backbone.pitch`` model
renders an explicit F0 contour; this encoder gives the posterior the reference's explicit contour.

Input: F0 in Hz per mel frame, 0 where unvoiced, on the mel's frame grid (the feature cache's F0
in training, the same tracker on the reference audio at inference). Per frame the features are the
voicing flag and, on voiced frames, log2(F0 / 100 Hz) (octaves; 0 on unvoiced frames, which the
flag marks). Two stride-2 convolutions (kernel 5, ReLU) and a GRU read them; the GRU's state at the
last valid frame is projected to H. Padding is handled as in :class:`ReferenceEncoder`: the frames
past each item's length are zeroed before and after every convolution, so the output does not depend
on padding or batch companions.

The output projection starts at zero, so a model gains the encoder without changing: a checkpoint of
a mel-only model loads into one with the pitch encoder (``train.init_from``) and synthesises exactly
as before until fine-tuning teaches the posterior to read the contour.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from prosody_vae.prosody.masking import last_valid, lengths_to_mask

__all__ = ["PitchEncoder"]

_REFERENCE_HZ = 100.0  # log2(F0 / 100 Hz): about -1 to +1.5 octaves over speaking voices


class PitchEncoder(nn.Module):
    """Frame-level F0 (B, T) in Hz with per-item lengths -> (B, out_dim), zero at initialisation.

    Args:
        out_dim: H, the size of the reference embedding it is added to.
        channels: convolution channels (both layers).
        rnn_size: GRU size.
        kernel_size: convolution kernel (frames); stride 2 each, padding ``kernel_size // 2``.
    """

    def __init__(self, *, out_dim: int, channels: int = 32, rnn_size: int = 64, kernel_size: int = 5) -> None:
        super().__init__()
        if min(out_dim, channels, rnn_size, kernel_size) < 1:
            raise ValueError(
                f"out_dim, channels, rnn_size and kernel_size must be >= 1, "
                f"got {out_dim}, {channels}, {rnn_size}, {kernel_size}"
            )
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(2, channels, kernel_size, stride=2, padding=self.padding),
                nn.Conv1d(channels, channels, kernel_size, stride=2, padding=self.padding),
            ]
        )
        self.rnn = nn.GRU(channels, rnn_size, batch_first=True)
        self.projection = nn.Linear(rnn_size, out_dim)
        nn.init.zeros_(self.projection.weight)  # starts as "no contribution": see the module docstring
        nn.init.zeros_(self.projection.bias)
        self.out_dim = out_dim

    def _conv_out(self, size: Tensor) -> Tensor:
        return (size + 2 * self.padding - self.kernel_size) // 2 + 1

    @staticmethod
    def features(f0: Tensor) -> Tensor:
        """(B, T) F0 in Hz -> (B, 2, T): voicing flag and log2(F0 / 100 Hz) on voiced frames (else 0)."""
        voiced = f0 > 0
        octaves = torch.log2(f0.clamp_min(1.0) / _REFERENCE_HZ)
        octaves = torch.where(voiced, octaves, torch.zeros_like(octaves))
        return torch.stack([voiced.to(octaves.dtype), octaves], dim=1)

    def forward(self, f0: Tensor, lengths: Tensor) -> Tensor:
        """Encode a batch of F0 tracks.

        Args:
            f0: (B, T) F0 in Hz per frame, 0 where unvoiced; frames past ``lengths`` are ignored.
            lengths: (B,) integer valid frames, 1 <= lengths <= T.

        Returns:
            (B, H) embedding contribution.
        """
        if f0.dim() != 2 or lengths.shape != (f0.shape[0],):
            raise ValueError(
                f"f0 must be (B, T) with lengths (B,), got {tuple(f0.shape)} and {tuple(lengths.shape)}"
            )
        if not torch.isfinite(f0).all():
            raise ValueError("f0 must be finite (Hz, 0 where unvoiced)")
        lengths = lengths.to(f0.device)
        valid = lengths_to_mask(lengths, f0.shape[1])  # (B, T)
        x = self.features(torch.where(valid, f0, torch.zeros_like(f0)))  # (B, 2, T), padding -> 0
        out_lengths = lengths
        for conv in self.convs:
            x = conv(x)  # (B, C, T')
            out_lengths = self._conv_out(out_lengths)
            mask = lengths_to_mask(out_lengths, x.shape[-1]).to(x.dtype).unsqueeze(1)  # (B, 1, T')
            x = F.relu(x) * mask  # zeros past each item's end, like the next conv's own padding
        outputs, _ = self.rnn(x.transpose(1, 2))  # (B, T', rnn_size)
        return self.projection(last_valid(outputs, out_lengths))  # (B, H)
