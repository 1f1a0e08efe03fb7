"""Resample a synthesised utterance in time to a given length (the length model's, tts/utterance_length.py).

The decoder's mel is interpolated linearly along time, bin by bin; the F0 track and the alignment
take their nearest source frame, so voiced and unvoiced stretches keep their edges (a linear blend
would invent F0 values between a voiced frame and an unvoiced 0). The vocoder then renders the
resampled frames as they are: the pitch is unchanged, only the timing moves.

The change of length is bounded (:data:`MAX_STRETCH`): the length model corrects the decoder's
timing by a few per cent, and a prediction far from the decoder's own length (a text unlike any the
model was trained on) is not trusted beyond that bound.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from prosody_vae.inference.synthesizer import Synthesis

__all__ = ["MAX_STRETCH", "stretch", "stretched_length"]

# The largest factor by which the length model may lengthen or shorten the decoder's output.
MAX_STRETCH = 1.25


def stretched_length(decoded: int, predicted: float) -> int:
    """The output length in frames: ``predicted`` kept within a factor :data:`MAX_STRETCH` of ``decoded``."""
    if decoded < 1:
        raise ValueError(f"decoded length must be >= 1 frame, got {decoded}")
    if not math.isfinite(predicted):
        return decoded
    low, high = decoded / MAX_STRETCH, decoded * MAX_STRETCH
    return max(1, round(min(max(predicted, low), high)))


def _nearest(n_out: int, n_in: int, device: torch.device) -> Tensor:
    """Source index (n_out,) of each output frame: the nearest frame on the same relative time."""
    if n_out == 1 or n_in == 1:
        return torch.zeros(n_out, dtype=torch.long, device=device)
    return torch.round(torch.arange(n_out, device=device) * ((n_in - 1) / (n_out - 1))).long()


def stretch(synthesis: Synthesis, frames: int, *, r: int) -> Synthesis:
    """``synthesis`` resampled to ``frames`` mel frames; ``r`` is the decoder's frames per step.

    mel (T, n_mels) -> (frames, n_mels) by linear interpolation; f0 (T,) -> (frames,) and the
    alignment (ceil(T / r), L) -> (ceil(frames / r), L) by nearest frame.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    mel = synthesis.mel
    length = mel.shape[0]
    if frames == length:
        return synthesis
    if length == 1:
        resampled = mel.expand(frames, -1).clone()
    else:
        resampled = F.interpolate(mel.t()[None], size=frames, mode="linear", align_corners=True)[0].t()
    f0 = synthesis.f0
    if f0 is not None:
        f0 = f0[_nearest(frames, f0.shape[0], f0.device)]
    alignment = synthesis.alignment
    steps = -(-frames // r)
    alignment = alignment[_nearest(steps, alignment.shape[0], alignment.device)]
    return dataclasses.replace(synthesis, mel=resampled.contiguous(), f0=f0, alignment=alignment)
