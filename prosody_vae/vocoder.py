"""Vocoders: mel (B, T, n_mels) -> waveform (B, N).

Griffin-Lim is the default: no weights, runs on the mel's device. A neural vocoder can be plugged in
as a TorchScript file; its audio parameters must match the acoustic model's, checked on load, since a
vocoder trained on another mel definition produces noise without any error.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torchaudio
from torch import Tensor, nn

from prosody_vae.audio import AudioConfig

__all__ = ["GriffinLimVocoder", "TorchScriptVocoder", "VocoderError", "load_vocoder"]

# Audio fields a vocoder must agree on with the acoustic model.
_MEL_FIELDS = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "f_min", "f_max", "log_floor")


class VocoderError(ValueError):
    """A vocoder file is unusable or does not match the acoustic model's audio parameters."""


class GriffinLimVocoder(nn.Module):
    """Log-mel -> linear magnitude (pseudo-inverse of the mel filterbank) -> Griffin-Lim phase recovery.

    Args:
        config: the audio parameters the mels were computed with.
        n_iter: Griffin-Lim iterations (32 is quick and intelligible; 60+ is cleaner).
        power: exponent applied to the magnitude before phase recovery; values a little above 1
            sharpen harmonics, a common trick with Griffin-Lim.
    """

    def __init__(self, config: AudioConfig, *, n_iter: int = 32, power: float = 1.2):
        super().__init__()
        self.config = config
        fb = torchaudio.functional.melscale_fbanks(
            n_freqs=config.n_fft // 2 + 1,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            sample_rate=config.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )  # (n_freq, n_mels)
        self.register_buffer("inverse_fb", torch.linalg.pinv(fb), persistent=False)  # (n_mels, n_freq)
        self.power = power
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.win_length,
            power=1.0,
            n_iter=n_iter,
        )

    @torch.no_grad()
    def forward(self, mels: Tensor) -> Tensor:
        """(B, T, n_mels) or (T, n_mels) natural-log mels -> (B, N) or (N,) waveform in [-1, 1]."""
        single = mels.dim() == 2
        if single:
            mels = mels.unsqueeze(0)
        magnitude = torch.exp(mels.float()) @ self.inverse_fb  # (B, T, n_freq)
        magnitude = magnitude.clamp_min(0.0).pow(self.power).transpose(1, 2)  # (B, n_freq, T)
        wav = self.griffin_lim(magnitude)
        wav = wav / wav.abs().amax(dim=-1, keepdim=True).clamp_min(1e-6) * 0.95
        return wav[0] if single else wav


class TorchScriptVocoder(nn.Module):
    """A user-supplied TorchScript vocoder taking (B, T, n_mels) log-mels and returning (B, N)."""

    def __init__(self, module: torch.jit.ScriptModule, config: AudioConfig):
        super().__init__()
        self.module = module
        self.config = config

    @torch.no_grad()
    def forward(self, mels: Tensor) -> Tensor:
        single = mels.dim() == 2
        wav = self.module(mels.unsqueeze(0) if single else mels)
        return wav[0] if single else wav


def load_vocoder(path: str | Path | None, config: AudioConfig, *, n_iter: int = 32) -> nn.Module:
    """Griffin-Lim when ``path`` is None; otherwise a TorchScript file with audio parameters beside it.

    The parameters come from ``<path>.json`` (or ``extra_files['audio.json']`` inside the archive), a
    mapping with the fields of :class:`AudioConfig` the mels depend on.
    """
    if path is None:
        return GriffinLimVocoder(config, n_iter=n_iter)
    path = Path(path)
    if not path.is_file():
        raise VocoderError(f"{path}: vocoder file not found")
    extra = {"audio.json": ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as error:
        raise VocoderError(f"{path}: not a TorchScript vocoder ({type(error).__name__})") from None
    raw = extra["audio.json"]
    sidecar = path.with_suffix(path.suffix + ".json")
    if not raw and sidecar.is_file():
        raw = sidecar.read_text()
    if not raw:
        raise VocoderError(f"{path}: no audio parameters (expected {sidecar.name} or an embedded audio.json)")
    try:
        theirs = json.loads(raw)
    except json.JSONDecodeError as error:
        raise VocoderError(f"{path}: audio parameters are not valid JSON ({error})") from None
    mismatched = [
        f"{name}: model {getattr(config, name)!r} vs vocoder {theirs.get(name)!r}"
        for name in _MEL_FIELDS
        if name in theirs and theirs[name] != getattr(config, name)
    ]
    missing = [name for name in _MEL_FIELDS if name not in theirs]
    if mismatched or missing:
        detail = "; ".join(mismatched + [f"{name}: missing" for name in missing])
        raise VocoderError(f"{path}: audio parameters do not match the acoustic model ({detail})")
    return TorchScriptVocoder(module, config)
