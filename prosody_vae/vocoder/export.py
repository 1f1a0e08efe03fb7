"""The trained generator in and out of the original HiFi-GAN release's file format.

Training uses :class:`~prosody_vae.audio.hifigan.HifiGanGenerator` with weight norm on every
convolution (``torch.nn.utils.parametrizations.weight_norm``, ``dim=0`` as in the release, also for
the transposed convolutions); initialisation is torch's default, then weight norm (g = ||v||, so the
starting weights are unchanged).

Export writes what :func:`prosody_vae.audio.hifigan.load_hifigan` (``--vocoder FILE``) and the
release's own inference code read: ``torch.save({"generator": state_dict}, "<out>/g_<step, 8 digits>")``
with the weight-norm pairs under the release's names (``X.weight_g``, ``X.weight_v``), and
``<out>/config.json`` in the release's layout (architecture, mel front end and training keys), both
written atomically. Folding the pairs on load gives the weights training ran with, bit for bit.

``train.init_from`` reads the other way: a release-style generator (any of the weight-norm
spellings, or plain folded weights) or one of our vocoder checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from prosody_vae.atomic import atomic_path, write_text_atomic
from prosody_vae.audio.hifigan import HifiGanGenerator, load_hifigan
from prosody_vae.checkpoint import describe_load_error
from prosody_vae.vocoder.config import VocoderConfig

__all__ = [
    "build_generator",
    "export_generator",
    "exported_generators",
    "load_generator_weights",
    "release_state_dict",
]

_OURS = (".parametrizations.weight.original0", ".parametrizations.weight.original1")
_RELEASE = (".weight_g", ".weight_v")


def build_generator(config: VocoderConfig) -> HifiGanGenerator:
    """The generator ``config`` describes, with weight norm on every convolution (training form)."""
    g = config.generator
    generator = HifiGanGenerator(
        n_mels=config.audio.n_mels,
        upsample_rates=g.upsample_rates,
        upsample_kernel_sizes=g.upsample_kernel_sizes,
        upsample_initial_channel=g.upsample_initial_channel,
        resblock=g.resblock,
        resblock_kernel_sizes=g.resblock_kernel_sizes,
        resblock_dilation_sizes=g.resblock_dilation_sizes,
    )
    for module in list(generator.modules()):
        if isinstance(module, nn.Conv1d | nn.ConvTranspose1d):
            weight_norm(module, dim=0)
    return generator


def release_state_dict(generator: nn.Module) -> dict[str, Tensor]:
    """The generator's weights under the release's names (weight-norm pairs as ``weight_g/_v``)."""
    out = {}
    for key, value in generator.state_dict().items():
        for ours, theirs in zip(_OURS, _RELEASE, strict=True):
            key = key.replace(ours, theirs)
        out[key] = value.detach().cpu().clone()
    return out


def exported_generators(out_dir: str | Path) -> list[Path]:
    """The ``g_<step>`` files in ``out_dir``, oldest step first."""
    found = [p for p in Path(out_dir).glob("g_*") if p.name[2:].isdigit() and p.is_file()]
    return sorted(found, key=lambda p: int(p.name[2:]))


def export_generator(
    generator: nn.Module,
    config: VocoderConfig,
    out_dir: str | Path,
    step: int,
    *,
    keep_last: int | None = None,
) -> Path:
    """Write ``<out_dir>/g_<step>`` and ``<out_dir>/config.json``; keep the last ``keep_last`` files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "config.json", json.dumps(config.release_dict(), indent=4) + "\n")
    path = out_dir / f"g_{step:08d}"
    with atomic_path(path) as temporary:
        torch.save({"generator": release_state_dict(generator)}, temporary)
    if keep_last is not None:
        for old in exported_generators(out_dir)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def _to_training_names(weights: dict[str, Tensor], generator: nn.Module) -> dict[str, Tensor]:
    """Any weight-norm spelling (or folded weights) -> the parametrised names of ``generator``."""
    own = generator.state_dict()
    out = {}
    for key, value in weights.items():
        for theirs, ours in zip(_RELEASE, _OURS, strict=True):
            if key.endswith(theirs):
                key = key.removesuffix(theirs) + ours
        if key.endswith(".weight") and key.removesuffix(".weight") + _OURS[0] in own:
            # a folded weight w: weight norm with v = w and g = ||w|| (over all dims but 0) is w again
            prefix = key.removesuffix(".weight")
            norm = value.flatten(1).norm(dim=1).view(-1, *([1] * (value.dim() - 1)))
            out[prefix + _OURS[0]], out[prefix + _OURS[1]] = norm, value
            continue
        out[key] = value
    return out


def load_generator_weights(generator: nn.Module, path: str | Path, config: VocoderConfig) -> None:
    """Load ``train.init_from`` into ``generator`` (training form); ``ValueError`` naming ``path``
    when it is unreadable or describes another generator or another mel front end."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: train.init_from: generator file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for foreign or damaged files
        raise ValueError(
            f"{path}: train.init_from: not a readable generator ({type(error).__name__})"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("generator"), dict):
        raise ValueError(f"{path}: train.init_from: expected a dict with a 'generator' entry")
    if "format_version" in state and "config" in state:  # one of our vocoder checkpoints
        audio = VocoderConfig.from_dict(state["config"], source=f"{path} (config)").audio
        if audio != config.audio:
            raise ValueError(
                f"{path}: train.init_from: the checkpoint's audio section differs from this config's"
            )
        weights = state["generator"]
    else:  # a release-style generator: load_hifigan checks its config.json, mels and shapes
        load_hifigan(path, state, config.audio)
        weights = state["generator"]
    try:
        generator.load_state_dict(_to_training_names(weights, generator))
    except RuntimeError as error:
        raise ValueError(
            f"{path}: train.init_from: the weights do not fit the generator section "
            f"({describe_load_error(error)})"
        ) from None
