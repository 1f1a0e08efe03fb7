"""HiFi-GAN's discriminators (Kong et al. 2020, section 2.2): multi-period and multi-scale.

Each sub-discriminator returns its score map and the feature maps of its hidden layers (the feature
matching loss compares those between real and generated audio). Following the paper:

* Multi-period (MPD): one sub-discriminator per period p (2, 3, 5, 7, 11): the waveform of length N
  is reflect-padded to a multiple of p and folded into a 2-D map (N / p, p), so that each column holds
  every p-th sample; 2-D convolutions with kernel (5, 1) and stride (3, 1) then see only samples p
  apart. Weight norm on every layer; leaky ReLU slope 0.1.
* Multi-scale (MSD), from MelGAN: three sub-discriminators on the raw audio, x2 and x4 average-pooled
  audio (kernel 4, stride 2, padding 2 per halving), each a stack of grouped strided 1-D
  convolutions; the first (raw audio) uses spectral norm, the others weight norm.

Deviation: the channel widths (and the scale stack's groups) are arguments instead of constants, so
that a CPU recipe can train narrower discriminators; the paper's are the defaults of
:class:`~prosody_vae.vocoder.config.DiscriminatorConfig`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

__all__ = [
    "DiscriminatorOutput",
    "Discriminators",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
]

_SLOPE = 0.1
# The scale sub-discriminator's layers (MelGAN's, as in the paper): kernel and stride of each of
# the seven convolutions before the one-channel output.
_SCALE_KERNELS = (15, 41, 41, 41, 41, 41, 5)
_SCALE_STRIDES = (1, 2, 2, 4, 4, 1, 1)


class DiscriminatorOutput(NamedTuple):
    """Scores and hidden feature maps of every sub-discriminator, in a fixed order."""

    scores: list[Tensor]  # one (B, ...) score map per sub-discriminator
    features: list[list[Tensor]]  # per sub-discriminator, the output of each hidden layer


class _PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels: tuple[int, ...]):
        super().__init__()
        self.period = period
        inputs = (1, *channels[:-1])
        last = len(channels) - 1
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (3 if i < last else 1, 1), padding=(2, 0)))
            for i, (c_in, c_out) in enumerate(zip(inputs, channels, strict=True))
        )
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B, N) -> score (B, N') and the hidden feature maps."""
        batch, length = wav.shape
        pad = (-length) % self.period
        if pad:  # reflect needs pad < length, which any real segment satisfies
            wav = F.pad(wav.unsqueeze(1), (0, pad), mode="reflect").squeeze(1)
        x = wav.view(batch, 1, -1, self.period)  # (B, 1, N / p, p): column j holds samples j, j + p, ...
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), _SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features


class _ScaleDiscriminator(nn.Module):
    def __init__(self, channels: tuple[int, ...], groups: tuple[int, ...], *, spectral: bool):
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        inputs = (1, *channels[:-1])
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(c_in, c_out, k, s, groups=g, padding=(k - 1) // 2))
            for c_in, c_out, k, s, g in zip(
                inputs, channels, _SCALE_KERNELS, _SCALE_STRIDES, groups, strict=True
            )
        )
        self.conv_post = norm(nn.Conv1d(channels[-1], 1, 3, 1, padding=1))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B, N) -> score (B, N') and the hidden feature maps."""
        x = wav.unsqueeze(1)  # (B, 1, N)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), _SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    """One period sub-discriminator per entry of ``periods``.

    Args:
        periods: the periods p, e.g. (2, 3, 5, 7, 11) (primes, so that the periods overlap little).
        channels: output channels of the strided 2-D convolutions; every layer but the last has
            stride 3 along time, as in the paper's (32, 128, 512, 1024, 1024).
    """

    def __init__(self, *, periods: tuple[int, ...], channels: tuple[int, ...]):
        super().__init__()
        if not periods or not channels:
            raise ValueError(f"periods and channels must be non-empty, got {periods!r} and {channels!r}")
        self.discriminators = nn.ModuleList(_PeriodDiscriminator(p, tuple(channels)) for p in periods)

    def forward(self, wav: Tensor) -> DiscriminatorOutput:
        """(B, N) waveform -> one score map and feature list per period."""
        scores, features = zip(*(d(wav) for d in self.discriminators), strict=True)
        return DiscriminatorOutput(list(scores), list(features))


class MultiScaleDiscriminator(nn.Module):
    """``scales`` scale sub-discriminators on the audio average-pooled by 1, 2, 4, ...

    Args:
        scales: number of sub-discriminators (the paper's 3); 0 disables the multi-scale part.
        channels: output channels of the seven convolutions.
        groups: groups of those convolutions; each must divide its layer's input and output channels.
    """

    def __init__(self, *, scales: int, channels: tuple[int, ...], groups: tuple[int, ...]):
        super().__init__()
        if len(channels) != len(_SCALE_KERNELS) or len(groups) != len(_SCALE_KERNELS):
            raise ValueError(f"channels and groups need {len(_SCALE_KERNELS)} entries each")
        self.discriminators = nn.ModuleList(
            _ScaleDiscriminator(tuple(channels), tuple(groups), spectral=i == 0) for i in range(scales)
        )

    def forward(self, wav: Tensor) -> DiscriminatorOutput:
        """(B, N) waveform -> one score map and feature list per scale."""
        scores, features = [], []
        for index, discriminator in enumerate(self.discriminators):
            if index > 0:  # each further scale sees the previous one's audio halved in rate
                wav = F.avg_pool1d(wav.unsqueeze(1), 4, 2, padding=2).squeeze(1)
            score, maps = discriminator(wav)
            scores.append(score)
            features.append(maps)
        return DiscriminatorOutput(scores, features)


class Discriminators(nn.Module):
    """The MPD and the MSD as one module: one optimiser owns both, as in the paper."""

    def __init__(self, period: MultiPeriodDiscriminator, scale: MultiScaleDiscriminator):
        super().__init__()
        self.period = period
        self.scale = scale

    def forward(self, wav: Tensor) -> DiscriminatorOutput:
        """(B, N) waveform -> the period sub-discriminators' outputs, then the scale ones'."""
        by_period, by_scale = self.period(wav), self.scale(wav)
        return DiscriminatorOutput(by_period.scores + by_scale.scores, by_period.features + by_scale.features)
