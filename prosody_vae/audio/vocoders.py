"""Vocoders: mel (B, T, n_mels) [+ F0 (B, T)] -> waveform (B, N).

Built in: WORLD (:class:`~prosody_vae.audio.world.WorldVocoder`), which takes the F0 track a pitch
predicting model outputs and renders exactly that pitch, the default for such models; and Griffin-Lim,
which needs no F0 and no weights, the default otherwise. A neural vocoder can be plugged in as a
HiFi-GAN generator checkpoint in the original release's format (:mod:`prosody_vae.audio.hifigan`) or
as a TorchScript file; its audio parameters must match the acoustic model's, checked on load, since a
vocoder trained on another mel definition produces noise without any error (see :func:`load_vocoder`
for how a vocoder declares them). :func:`vocode` is the one call that feeds any of them.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import torch
import torchaudio
from torch import Tensor, nn

from prosody_vae.audio import AudioConfig
from prosody_vae.audio.features import mel_filterbank

__all__ = [
    "BUILTIN_VOCODERS",
    "MAX_VOCODE_FRAMES",
    "GriffinLimVocoder",
    "TorchScriptVocoder",
    "VocoderError",
    "load_vocoder",
    "vocode",
]

# Names ``--vocoder`` accepts besides a file path.
BUILTIN_VOCODERS = ("world", "griffin-lim")

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
        fb = mel_filterbank(config)  # (n_freq, n_mels)
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


def load_vocoder(
    path: str | Path | None, config: AudioConfig, *, n_iter: int = 32, default: str = "griffin-lim"
) -> nn.Module:
    """A built-in vocoder by name (``"world"``, ``"griffin-lim"``; None: ``default``), or a file.

    ``default`` is what None means: callers pass ``"world"`` for a model that predicts pitch.

    A file is recognised by its content, not its name: a TorchScript archive, or a PyTorch file holding
    a dict with a ``"generator"`` entry, which is read as a HiFi-GAN generator checkpoint in the
    original release's format (``torch.save({"generator": state_dict}, "g_02500000")``, loaded with
    ``weights_only=True``) with the release's ``config.json`` beside it, or a ``.json`` of the same
    stem (``g_02500000.json``) when several generators share a folder. The config's mel fields
    (``sampling_rate``, ``n_fft``, ``hop_size``, ``win_size``, ``num_mels``, ``fmin``, ``fmax``, and the
    release's fixed natural log with floor 1e-5) must equal the model's; see
    :func:`prosody_vae.audio.hifigan.load_hifigan`.

    How a TorchScript vocoder declares its audio parameters: as attributes of the scripted module
    (``self.sample_rate = 22050`` etc. in ``__init__``; ``torch.jit.script`` keeps int and float
    attributes), or, for a file that cannot be re-scripted (e.g. a traced module, which keeps no
    attributes), in a JSON object in ``<file>.json`` beside it. ``sample_rate``, ``hop_length`` and
    ``n_mels`` are required; ``n_fft``, ``win_length``, ``f_min``, ``f_max`` and ``log_floor`` are
    checked when declared. Any difference from the acoustic model's value is a
    :class:`VocoderError`: a vocoder trained on another mel definition produces noise, not an error.
    The module is loaded on the CPU; move the returned vocoder with ``.to(device)``.
    """
    name = default if path is None else str(path)
    if name == "griffin-lim":
        return GriffinLimVocoder(config, n_iter=n_iter)
    if name == "world":
        from prosody_vae.audio.world import WorldVocoder

        return WorldVocoder(config)
    path = Path(path)
    if not path.is_file():
        raise VocoderError(f"{path}: vocoder file not found")
    if not _is_torchscript(path):
        return _load_checkpoint(path, config)
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


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive: a zip file with a ``constants.pkl`` record."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.rsplit("/", 1)[-1] == "constants.pkl" for name in archive.namelist())


def _load_checkpoint(path: Path, config: AudioConfig) -> nn.Module:
    """A vocoder from a PyTorch (pickle) file; today only HiFi-GAN generator checkpoints qualify."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling raises many types for foreign or unsafe files
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        raise VocoderError(
            f"{path}: not a TorchScript vocoder nor a HiFi-GAN generator checkpoint "
            f"({type(error).__name__}{': ' + reason if reason else ''})"
        ) from None
    if not isinstance(checkpoint, dict) or "generator" not in checkpoint:
        found = (
            f"keys {', '.join(map(str, list(checkpoint)[:5]))}" if isinstance(checkpoint, dict) else "no dict"
        )
        raise VocoderError(
            f"{path}: not a HiFi-GAN generator checkpoint: expected a dict with a 'generator' entry, found {found}"
        )
    from prosody_vae.audio.hifigan import load_hifigan

    return load_hifigan(path, checkpoint, config)


def _same(a, b) -> bool:
    try:
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    except (TypeError, ValueError):
        return False


# One utterance longer than this is vocoded in pieces, each cut at the quietest frame of the second
# half of its window, so that memory stays bounded whatever the length (about 24 s at 22.05 kHz and
# hop 256; long texts are synthesised with pauses between sentences, where the cuts then fall).
MAX_VOCODE_FRAMES = 2048


def _quiet_cuts(mel: Tensor, max_frames: int) -> list[int]:
    """Frame indices that cut ``mel`` (T, n_mels) into pieces of at most ``max_frames`` frames."""
    energy = mel.float().mean(dim=-1)  # (T,) mean log-mel: lowest in pauses
    cuts, start = [0], 0
    while mel.shape[0] - start > max_frames:
        low = start + max_frames // 2
        start = low + int(torch.argmin(energy[low : start + max_frames]))
        cuts.append(start)
    return [*cuts, mel.shape[0]]


def _vocode_once(vocoder: nn.Module, mel: Tensor, f0: Tensor | None) -> Tensor:
    if getattr(vocoder, "needs_f0", False):
        if f0 is None:
            raise VocoderError(
                f"the {type(vocoder).__name__} needs an F0 track, and this model predicts none "
                "(backbone.pitch is off): use --vocoder griffin-lim or a neural vocoder"
            )
        return vocoder(mel, f0)
    return vocoder(mel)


def vocode(
    vocoder: nn.Module, mel: Tensor, f0: Tensor | None = None, *, max_frames: int = MAX_VOCODE_FRAMES
) -> Tensor:
    """Waveform of one utterance or a batch: (T, n_mels) -> (N,), (B, T, n_mels) -> (B, N).

    ``f0`` ((T,) or (B, T) Hz, 0 = unvoiced) goes to vocoders that declare ``needs_f0``; for one that
    does, a missing F0 is a :class:`VocoderError` (the model predicts no pitch). One utterance longer
    than ``max_frames`` is vocoded in pieces cut at quiet frames and joined (:data:`MAX_VOCODE_FRAMES`).
    A waveform with a NaN or infinite sample is a :class:`VocoderError`: it would be written as a
    file that plays as silence or a click, with nothing to say it is broken.
    """
    if mel.dim() == 2 and mel.shape[0] > max_frames:
        cuts = _quiet_cuts(mel, max_frames)
        wav = torch.cat(
            [
                _vocode_once(vocoder, mel[a:b], None if f0 is None else f0[a:b])
                for a, b in zip(cuts[:-1], cuts[1:], strict=True)
            ]
        )
    else:
        wav = _vocode_once(vocoder, mel, f0)
    if not bool(torch.isfinite(wav).all()):
        bad = int((~torch.isfinite(wav)).sum())
        raise VocoderError(
            f"the {type(vocoder).__name__} returned {bad} NaN or infinite sample(s) of {wav.numel()}; "
            "no audio was made from it"
        )
    return wav
