"""Vocoders: mel (B, T, n_mels) -> waveform (B, N).

Griffin-Lim is the default: no weights, runs on the mel's device. A neural vocoder can be plugged in
as a TorchScript file; its audio parameters must match the acoustic model's, checked on load, since a
vocoder trained on another mel definition produces noise without any error (see :func:`load_vocoder`
for how a vocoder declares them).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
import torchaudio
from torch import Tensor, nn

from prosody_vae.audio import AudioConfig

__all__ = ["GriffinLimVocoder", "TorchScriptVocoder", "VocoderError", "load_vocoder"]

# Audio fields a vocoder must agree on with the acoustic model.
_MEL_FIELDS = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "f_min", "f_max", "log_floor")
# ... of which a vocoder must declare at least these: without them nothing is known about its mels.
_REQUIRED_FIELDS = ("sample_rate", "hop_length", "n_mels")


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
    """A user-supplied TorchScript vocoder taking (B, T, n_mels) log-mels and returning (B, N).

    The mels are the acoustic model's: natural log of a Slaney-normalised magnitude mel, floored at
    ``log_floor`` (see :class:`~prosody_vae.audio.AudioConfig`).
    """

    def __init__(self, module: torch.jit.ScriptModule, config: AudioConfig):
        super().__init__()
        self.module = module
        self.config = config

    @torch.no_grad()
    def forward(self, mels: Tensor) -> Tensor:
        """(B, T, n_mels) or (T, n_mels) log-mels -> (B, N) or (N,) waveform."""
        single = mels.dim() == 2
        wav = self.module(mels.unsqueeze(0) if single else mels)
        if wav.dim() == 3 and wav.shape[1] == 1:  # (B, 1, N), the layout of many GAN vocoders
            wav = wav[:, 0]
        if wav.dim() != 2:
            raise VocoderError(f"vocoder returned shape {tuple(wav.shape)}, expected (B, N) or (B, 1, N)")
        return wav[0] if single else wav


def _declared_parameters(module: torch.jit.ScriptModule, path: Path) -> dict:
    """Audio parameters a vocoder declares: module attributes first, then ``<file>.json``."""
    declared = {name: getattr(module, name) for name in _MEL_FIELDS if hasattr(module, name)}
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        try:
            extra = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise VocoderError(f"{sidecar}: audio parameters are not valid JSON ({error})") from None
        if not isinstance(extra, dict):
            raise VocoderError(f"{sidecar}: expected a JSON object of audio parameters")
        for name in _MEL_FIELDS:
            if name in extra and name not in declared:  # the module's own attributes win
                declared[name] = extra[name]
    return declared


def load_vocoder(path: str | Path | None, config: AudioConfig, *, n_iter: int = 32) -> nn.Module:
    """Griffin-Lim when ``path`` is None; otherwise a TorchScript vocoder checked against ``config``.

    How a TorchScript vocoder declares its audio parameters: as attributes of the scripted module
    (``self.sample_rate = 22050`` etc. in ``__init__``; ``torch.jit.script`` keeps int and float
    attributes), or, for a file that cannot be re-scripted (e.g. a traced module, which keeps no
    attributes), in a JSON object in ``<file>.json`` beside it. ``sample_rate``, ``hop_length`` and
    ``n_mels`` are required; ``n_fft``, ``win_length``, ``f_min``, ``f_max`` and ``log_floor`` are
    checked when declared. Any difference from the acoustic model's value is a
    :class:`VocoderError`: a vocoder trained on another mel definition produces noise, not an error.
    The module is loaded on the CPU; move the returned vocoder with ``.to(device)``.
    """
    if path is None:
        return GriffinLimVocoder(config, n_iter=n_iter)
    path = Path(path)
    if not path.is_file():
        raise VocoderError(f"{path}: vocoder file not found")
    try:
        with warnings.catch_warnings():
            # recent torch marks TorchScript deprecated; it is still the one portable vocoder format
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:  # torch raises several types for non-TorchScript files
        raise VocoderError(f"{path}: not a TorchScript vocoder ({type(error).__name__})") from None
    declared = _declared_parameters(module, path)
    missing = [name for name in _REQUIRED_FIELDS if name not in declared]
    if missing:
        raise VocoderError(
            f"{path}: vocoder does not declare {', '.join(missing)} (module attributes or {path.name}.json)"
        )
    mismatched = [
        f"{name} {declared[name]!r} (model {getattr(config, name)!r})"
        for name in _MEL_FIELDS
        if name in declared and not _same(declared[name], getattr(config, name))
    ]
    if mismatched:
        raise VocoderError(
            f"{path}: vocoder audio parameters differ from the model's: {', '.join(mismatched)}"
        )
    return TorchScriptVocoder(module, config)


def _same(a, b) -> bool:
    try:
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    except (TypeError, ValueError):
        return False
