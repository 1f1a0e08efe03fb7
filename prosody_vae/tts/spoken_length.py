"""How much text a reference speaks, read from its mel alone: the length model's text term without a transcript.

A transfer that takes the reference's pace (``Synthesizer.transfer(timing="reference")``) divides the
reference's length by the length model's length for its transcript,

    log T_ref - [ log( sum_l d(token_l) ) + v^T c_ref + b ]      (tts/utterance_length.py),

so that what z says of its own sentence's timing cancels and only the pace is left. Without a
transcript, the sentence term log sum_l d(token_l) is what is missing. This module estimates it from
the reference's log-mel: a stack of dilated convolutions gives each frame a non-negative density,
how many frames of neutral speech the audio around it stands for, and their sum over the utterance is
the estimate. It is a count, so it reads what is said (how many segments, how long each is by
nature), not how long it takes to say it: training stretches the mel in time by a random factor
(:meth:`loss`) and keeps the target, which teaches the estimate to ignore the pace. Each utterance's
mel is centred on its own mean per channel, so that a voice's timbre shifts nothing.

Not in Capacitron, which has no length model; trained on the length model's token durations,
detached, so that nothing else changes (docs/transfer.md, "A reference's pace without its transcript").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

__all__ = ["SpokenLength"]


class SpokenLength(nn.Module):
    """log sum_l d(token_l) (B,) of what a log-mel (B, T, n_mels) with lengths (B,) speaks.

    Args:
        n_mels: mel channels of the input.
        channels: width of each convolution.
        dilations: one convolution (kernel 5) per entry, with that dilation; the default's receptive
            field is 37 frames, about a syllable or two.
        max_stretch: training stretches each mel in time by a factor drawn log-uniformly from
            [1 / max_stretch, max_stretch]; 1 turns it off.
        max_warp: training also warps each mel's frequency axis by a factor drawn the same way (a
            longer or shorter vocal tract: vocal tract length perturbation, Jaitly & Hinton 2013), so
            that the count does not lean on one voice's formants; 1 (the default) turns it off.
    """

    def __init__(
        self,
        *,
        n_mels: int,
        channels: int = 128,
        dilations: tuple[int, ...] = (1, 2, 4, 1),
        max_stretch: float = 1.4,
        max_warp: float = 1.0,
    ) -> None:
        super().__init__()
        if n_mels < 1 or channels < 1 or not dilations or not max_stretch >= 1.0 or not max_warp >= 1.0:
            raise ValueError(
                f"SpokenLength needs n_mels >= 1, channels >= 1, dilations, max_stretch >= 1 and "
                f"max_warp >= 1, got {n_mels}, {channels}, {dilations}, {max_stretch}, {max_warp}"
            )
        widths = [n_mels] + [channels] * len(dilations)
        self.convs = nn.ModuleList(
            nn.Conv1d(widths[i], channels, 5, padding=2 * d, dilation=d) for i, d in enumerate(dilations)
        )
        # normalised over the channels of each frame, never over time, so that padding cannot leak in
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in dilations)
        self.density = nn.Conv1d(channels, 1, 1)
        self.max_stretch = float(max_stretch)
        self.max_warp = float(max_warp)

    def forward(self, mels: Tensor, mel_lengths: Tensor) -> Tensor:
        """Estimated log sum of token durations, in frames (B,)."""
        x = mels.transpose(1, 2).float()  # (B, M, T)
        valid = (torch.arange(x.shape[2], device=x.device)[None, :] < mel_lengths[:, None]).to(x.dtype)
        mean = (x * valid[:, None]).sum(2, keepdim=True) / mel_lengths[:, None, None].to(x.dtype)
        x = (x - mean) * valid[:, None]  # each utterance on its own mean: the voice's timbre cancels
        for conv, norm in zip(self.convs, self.norms, strict=True):
            # zeroed past the end after every layer: what a frame sees there is the zero padding the
            # convolution itself adds, however much padding the batch has
            x = norm(F.relu(conv(x)).transpose(1, 2)).transpose(1, 2) * valid[:, None]
        density = F.softplus(self.density(x).squeeze(1)) * valid  # (B, T)
        return torch.log(density.sum(1).clamp_min(1e-3))

    def loss(self, mels: Tensor, mel_lengths: Tensor, target: Tensor) -> Tensor:
        """Squared error (B,) of the log length against ``target`` (B,), the length model's text term
        of each item's transcript; in training each mel is first stretched in time (the target stays)."""
        if self.training and self.max_warp > 1.0:
            mels = self.warped(mels.detach(), mel_lengths)
        if self.training and self.max_stretch > 1.0:
            mels, mel_lengths = self.stretched(mels.detach(), mel_lengths)
        return (self(mels.detach(), mel_lengths) - target.detach()).square()

    def stretched(self, mels: Tensor, mel_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Each mel (B, T, M) resampled in time by its own log-uniform factor; with the new lengths."""
        log_max = math.log(self.max_stretch)
        factors = torch.exp(torch.empty(mels.shape[0]).uniform_(-log_max, log_max)).tolist()
        pieces = []
        for mel, length, factor in zip(mels, mel_lengths.tolist(), factors, strict=True):
            frames = max(2, round(length * factor))
            pieces.append(
                F.interpolate(mel[:length].T[None], size=frames, mode="linear", align_corners=False)[0].T
            )
        lengths = torch.tensor([p.shape[0] for p in pieces], device=mels.device)
        return pad_sequence(pieces, batch_first=True), lengths

    def warped(self, mels: Tensor, mel_lengths: Tensor) -> Tensor:
        """Each mel (B, T, M) with its channel axis resampled by its own log-uniform factor a: channel
        m takes what channel m / a had (linear interpolation; past the top, the top channel). The mel
        scale is near logarithmic above 1 kHz, so this is close to scaling every formant by one factor.
        Padding frames stay zero."""
        if mels.shape[2] < 2:
            return mels
        log_max = math.log(self.max_warp)
        factors = torch.exp(torch.empty(mels.shape[0], device=mels.device).uniform_(-log_max, log_max))
        n_mels = mels.shape[2]
        source = (torch.arange(n_mels, device=mels.device)[None, :] / factors[:, None]).clamp(max=n_mels - 1)
        low = source.floor().long().clamp(max=n_mels - 2)
        frac = (source - low).to(mels.dtype)[:, None, :]  # (B, 1, M)
        index = low[:, None, :].expand(-1, mels.shape[1], -1)
        out = mels.gather(2, index) * (1 - frac) + mels.gather(2, index + 1) * frac
        valid = torch.arange(mels.shape[1], device=mels.device)[None, :] < mel_lengths[:, None]
        return out * valid[..., None].to(mels.dtype)
