"""HiFi-GAN generators (Kong et al., 2020) in the layout of the original release.

The original release, which most toolkits follow, stores a generator as ``torch.save({"generator":
state_dict}, "g_02500000")`` (the step number as the name) with a ``config.json`` beside it. This module reads that pair: the
config's architecture fields build :class:`HifiGanGenerator`, whose module names (``conv_pre``,
``ups``, ``resblocks``, ``convs1``/``convs2``/``convs``, ``conv_post``) are the release's, so its state
dict loads key for key once weight norm is folded away (:func:`fold_weight_norm`).

The generator, as in the paper and the release: a kernel-7 convolution from the mels to
``upsample_initial_channel`` channels; per upsampling stage a leaky ReLU (slope 0.1), a transposed
convolution (stride ``u``, kernel ``k``, padding ``(k - u) // 2``) halving the channels, and the mean of
one residual block per ``resblock_kernel_sizes`` entry (type "1": three pairs of a dilated and an
undilated convolution, each behind a leaky ReLU, with a residual around each pair; type "2": two
dilated convolutions with a residual around each); then a leaky ReLU with torch's default slope 0.01
(the release's, not 0.1), a kernel-7 convolution to one channel and tanh. Weight norm is a training
device: inference uses ``weight = g * v / ||v||``, computed once on load.

Front end. The release's mels: magnitude STFT with a periodic Hann window, Slaney mel filterbank with
Slaney area normalisation (librosa's default, as ours), natural log of ``max(mel, 1e-5)``, peak level
0.95 in training (ours too). Two differences, neither of which needs a conversion:

* Frame grid. The release pads ``(n_fft - hop) / 2`` samples on each side and does not centre, so its
  frame ``t`` is centred on sample ``t * hop + hop / 2`` and a signal of N samples has ``N // hop``
  frames; ours are centred on ``t * hop`` (``center=True``, ``1 + N // hop`` frames). The window
  contents are the same up to this half-hop shift, so the generator renders our frames faithfully
  but half a hop late: the output is delayed by ``hop / 2`` samples (5.8 ms at 22050 Hz, hop 256)
  against the mel's timing, and has ``T * hop`` samples for T frames. We do not shift it back: the
  delay is constant, inaudible, and below any frame-level timing measure.
* The release adds 1e-9 under the square root of the magnitude, which lifts silent bins to about
  3e-5; a Slaney-normalised filter sums its bins with weights totalling ``n_fft / sample_rate``
  (0.046 at the defaults), so silence stays near 1.5e-6 after the filterbank, below the 1e-5 floor.

A config whose audio fields differ from the acoustic model's (:meth:`HifiGanConfig.front_end_mismatches`)
is refused: a vocoder trained on another mel definition turns correct mels into noise without error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from prosody_vae.audio.vocoders import VocoderError
from prosody_vae.config import AudioConfig

__all__ = [
    "HIFIGAN_LOG_FLOOR",
    "HifiGanConfig",
    "HifiGanGenerator",
    "HifiGanVocoder",
    "fold_weight_norm",
    "load_hifigan",
]

# The release's dynamic range compression: log(clamp(x, min=1e-5) * C) with C = 1, natural log.
HIFIGAN_LOG_FLOOR = 1e-5
_LRELU_SLOPE = 0.1
_POST_SLOPE = 0.01  # F.leaky_relu's default, which the release uses before conv_post
# (gain, direction) key suffixes of a weight-normed weight: torch.nn.utils.weight_norm's (the
# release's), then torch.nn.utils.parametrizations.weight_norm's.
_WEIGHT_NORM_SPELLINGS = (
    (".weight_g", ".weight_v"),
    (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
)


@dataclass(frozen=True)
class HifiGanConfig:
    """The fields of a release-style ``config.json`` that the generator and its mels depend on.

    Names are the release's. Training-only keys (``segment_size``, ``learning_rate``, ...) are ignored.
    """

    resblock: str
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    num_mels: int
    n_fft: int
    hop_size: int
    win_size: int
    sampling_rate: int
    fmin: float
    fmax: float

    @classmethod
    def from_dict(cls, data: object, source: str | Path) -> HifiGanConfig:
        """Convert and check a parsed ``config.json``; a bad value is a VocoderError naming ``source``."""
        if not isinstance(data, dict):
            raise VocoderError(f"{source}: expected a JSON object, got {type(data).__name__}")
        missing = [name for name in cls.__dataclass_fields__ if name not in data and name != "fmax"]
        if missing:
            raise VocoderError(f"{source}: HiFi-GAN config lacks {', '.join(missing)}")

        def integer(name: str, value: object) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise VocoderError(f"{source}: {name} must be a positive integer, got {value!r}")
            return value

        def integers(name: str, value: object) -> tuple[int, ...]:
            if not isinstance(value, list) or not value:
                raise VocoderError(f"{source}: {name} must be a non-empty list of integers, got {value!r}")
            return tuple(integer(name, item) for item in value)

        def number(name: str, value: object) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise VocoderError(f"{source}: {name} must be a number >= 0, got {value!r}")
            return float(value)

        resblock = str(data["resblock"])
        if resblock not in ("1", "2"):
            raise VocoderError(f'{source}: resblock must be "1" or "2", got {data["resblock"]!r}')
        dilations = data["resblock_dilation_sizes"]
        if not isinstance(dilations, list) or not dilations:
            raise VocoderError(
                f"{source}: resblock_dilation_sizes must be a list of lists, got {dilations!r}"
            )
        sampling_rate = integer("sampling_rate", data["sampling_rate"])
        fmax = data.get("fmax")  # null: librosa's default, the Nyquist frequency
        config = cls(
            resblock=resblock,
            upsample_rates=integers("upsample_rates", data["upsample_rates"]),
            upsample_kernel_sizes=integers("upsample_kernel_sizes", data["upsample_kernel_sizes"]),
            upsample_initial_channel=integer("upsample_initial_channel", data["upsample_initial_channel"]),
            resblock_kernel_sizes=integers("resblock_kernel_sizes", data["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(integers("resblock_dilation_sizes", d) for d in dilations),
            num_mels=integer("num_mels", data["num_mels"]),
            n_fft=integer("n_fft", data["n_fft"]),
            hop_size=integer("hop_size", data["hop_size"]),
            win_size=integer("win_size", data["win_size"]),
            sampling_rate=sampling_rate,
            fmin=number("fmin", data["fmin"]),
            fmax=sampling_rate / 2 if fmax is None else number("fmax", fmax),
        )
        config._check_architecture(source)
        return config

    @classmethod
    def from_json(cls, path: str | Path) -> HifiGanConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise VocoderError(f"{path}: cannot read the HiFi-GAN config ({error})") from None
        return cls.from_dict(data, path)

    def _check_architecture(self, source: str | Path) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise VocoderError(f"{source}: upsample_rates and upsample_kernel_sizes differ in length")
        for rate, kernel in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            if kernel < rate or (kernel - rate) % 2:
                raise VocoderError(
                    f"{source}: upsample kernel {kernel} for rate {rate} must be >= the rate and differ "
                    "from it by an even number (else the output is not frames * hop_size long)"
                )
        if math.prod(self.upsample_rates) != self.hop_size:
            raise VocoderError(
                f"{source}: upsample_rates multiply to {math.prod(self.upsample_rates)}, "
                f"not hop_size {self.hop_size}"
            )
        if self.upsample_initial_channel < 2 ** len(self.upsample_rates):
            raise VocoderError(f"{source}: upsample_initial_channel is too small to halve per stage")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise VocoderError(
                f"{source}: resblock_kernel_sizes and resblock_dilation_sizes differ in length"
            )
        needed = 3 if self.resblock == "1" else 2
        if any(len(d) != needed for d in self.resblock_dilation_sizes):
            raise VocoderError(f"{source}: resblock {self.resblock} needs {needed} dilations per block")

    def front_end_mismatches(self, audio: AudioConfig) -> list[str]:
        """Where the mels this generator expects differ from ``audio``'s, one phrase per field."""
        pairs = (
            ("sampling_rate", self.sampling_rate, "sample_rate"),
            ("n_fft", self.n_fft, "n_fft"),
            ("hop_size", self.hop_size, "hop_length"),
            ("win_size", self.win_size, "win_length"),
            ("num_mels", self.num_mels, "n_mels"),
            ("fmin", self.fmin, "f_min"),
            ("fmax", self.fmax, "f_max"),
            ("log floor (fixed in HiFi-GAN)", HIFIGAN_LOG_FLOOR, "log_floor"),
        )
        return [
            f"{name} {value!r} (model {ours} {getattr(audio, ours)!r})"
            for name, value, ours in pairs
            if not math.isclose(float(value), float(getattr(audio, ours)), rel_tol=1e-9)
        ]


def _padding(kernel_size: int, dilation: int) -> int:
    """'Same' padding of an odd kernel with this dilation."""
    return (kernel_size - 1) * dilation // 2


class _ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs, each pair behind leaky ReLUs and inside a residual."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size, 1)) for _ in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, N) -> (B, C, N)."""
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, _LRELU_SLOPE)), _LRELU_SLOPE))
        return x


class _ResBlock2(nn.Module):
    """Two dilated convs, each behind a leaky ReLU and inside a residual (the lighter V3 block)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, N) -> (B, C, N)."""
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, _LRELU_SLOPE))
        return x


class HifiGanGenerator(nn.Module):
    """HiFi-GAN generator in inference form (weight norm folded): log-mels -> waveform.

    Args:
        n_mels: mel bands of the input (the release hard-codes 80 in ``conv_pre``).
        upsample_rates: stride of each transposed convolution; their product is the hop length.
        upsample_kernel_sizes: kernel of each transposed convolution.
        upsample_initial_channel: channels after ``conv_pre``, halved by every upsampling stage.
        resblock: "1" (V1/V2 blocks) or "2" (V3 blocks).
        resblock_kernel_sizes: one residual block per kernel size at every stage, averaged.
        resblock_dilation_sizes: dilations of each block (three for type "1", two for type "2").
    """

    def __init__(
        self,
        *,
        n_mels: int,
        upsample_rates: tuple[int, ...],
        upsample_kernel_sizes: tuple[int, ...],
        upsample_initial_channel: int,
        resblock: str,
        resblock_kernel_sizes: tuple[int, ...],
        resblock_dilation_sizes: tuple[tuple[int, ...], ...],
    ):
        super().__init__()
        if resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {resblock!r}")
        block = _ResBlock1 if resblock == "1" else _ResBlock2
        self.blocks_per_stage = len(resblock_kernel_sizes)
        self.hop_length = math.prod(upsample_rates)
        self.conv_pre = nn.Conv1d(n_mels, upsample_initial_channel, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes, strict=True):
            self.ups.append(
                nn.ConvTranspose1d(channels, channels // 2, kernel, stride=rate, padding=(kernel - rate) // 2)
            )
            channels //= 2
            self.resblocks.extend(
                block(channels, k, tuple(d))
                for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True)
            )
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3)

    @classmethod
    def from_config(cls, config: HifiGanConfig) -> HifiGanGenerator:
        """The generator a release-style config describes."""
        return cls(
            n_mels=config.num_mels,
            upsample_rates=config.upsample_rates,
            upsample_kernel_sizes=config.upsample_kernel_sizes,
            upsample_initial_channel=config.upsample_initial_channel,
            resblock=config.resblock,
            resblock_kernel_sizes=config.resblock_kernel_sizes,
            resblock_dilation_sizes=config.resblock_dilation_sizes,
        )

    def forward(self, mels: Tensor) -> Tensor:
        """(B, T, n_mels) natural-log mels -> (B, T * hop_length) waveform in [-1, 1].

        The release's generator takes (B, n_mels, T) and returns (B, 1, N); this one follows the
        library's frames-first layout.
        """
        x = self.conv_pre(mels.transpose(1, 2))  # (B, C, T)
        k = self.blocks_per_stage
        for stage, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, _LRELU_SLOPE))  # (B, C / 2, T * rate): one stage of upsampling
            blocks = self.resblocks[stage * k : (stage + 1) * k]
            x = sum(block(x) for block in blocks) / k  # mean of the multi-receptive-field blocks
        x = torch.tanh(self.conv_post(F.leaky_relu(x, _POST_SLOPE)))  # (B, 1, N)
        return x[:, 0]


def fold_weight_norm(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Replace each weight-norm pair by the weight it stands for: ``w = g * v / ||v||``.

    Accepts both spellings: ``X.weight_g``/``X.weight_v`` (``torch.nn.utils.weight_norm``, the
    release's) and ``X.parametrizations.weight.original0``/``original1`` (the parametrisation that
    replaces it in recent torch). The norm is over every dimension but the first (weight norm's
    default ``dim=0``, used throughout the release, also for the transposed convolutions, where the
    first dimension is the input channel). Other entries pass through unchanged.

    Raises:
        KeyError: naming the missing half of a pair.
    """
    folded: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        pair = next(((g, v) for g, v in _WEIGHT_NORM_SPELLINGS if key.endswith((g, v))), None)
        if pair is None:
            folded[key] = value
            continue
        g_suffix, v_suffix = pair
        prefix = key.removesuffix(g_suffix).removesuffix(v_suffix)
        if prefix + ".weight" in folded:
            continue  # the other half of a pair already folded
        for suffix in pair:
            if prefix + suffix not in state_dict:
                raise KeyError(prefix + suffix)
        g, v = state_dict[prefix + g_suffix].float(), state_dict[prefix + v_suffix].float()
        # torch's own kernel for g * v / ||v|| over all dims but 0, the one both weight norms call, so
        # that the folded weight is bit for bit the weight the generator was trained and run with.
        folded[prefix + ".weight"] = torch._weight_norm(v, g, 0)
    return folded


class HifiGanVocoder(nn.Module):
    """A loaded generator as a vocoder: (B, T, n_mels) or (T, n_mels) -> (B, T * hop) or (T * hop,)."""

    def __init__(self, generator: HifiGanGenerator, config: HifiGanConfig):
        super().__init__()
        self.generator = generator.eval()
        self.config = config

    @torch.no_grad()
    def forward(self, mels: Tensor) -> Tensor:
        """Natural-log mels on the model's frame grid -> waveform in [-1, 1], ``hop / 2`` samples late."""
        single = mels.dim() == 2
        wav = self.generator((mels.unsqueeze(0) if single else mels).float())
        return wav[0] if single else wav


def _config_beside(path: Path) -> Path:
    """The generator's config: ``<stem>.json`` beside it, else the release's ``config.json``."""
    for candidate in (path.with_suffix(".json"), path.with_name("config.json")):
        if candidate.is_file() and candidate != path:
            return candidate
    raise VocoderError(
        f"{path}: HiFi-GAN generator without its config: put the config.json it was trained with "
        f"beside it (or name it {path.with_suffix('.json').name})"
    )


def _describe(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_hifigan(path: str | Path, checkpoint: dict, audio: AudioConfig) -> HifiGanVocoder:
    """Build the generator a release-style checkpoint describes and load its weights.

    Args:
        path: the generator file (for messages and to find its config).
        checkpoint: what ``torch.load(path, weights_only=True)`` returned, with a ``"generator"`` entry.
        audio: the acoustic model's audio parameters; the config's must equal them.

    Raises:
        VocoderError: one line naming the file and the problem: no config, a bad config, a front end
            that differs from ``audio`` (naming each field), or weights that do not fit the config.
    """
    path = Path(path)
    config_path = _config_beside(path)
    config = HifiGanConfig.from_json(config_path)
    mismatched = config.front_end_mismatches(audio)
    if mismatched:
        raise VocoderError(
            f"{path}: HiFi-GAN mels ({config_path.name}) differ from the model's: {', '.join(mismatched)}"
        )
    weights = checkpoint["generator"]
    if not isinstance(weights, dict) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise VocoderError(f"{path}: the 'generator' entry is not a state dict of tensors")
    try:
        weights = fold_weight_norm(weights)
    except KeyError as error:
        raise VocoderError(
            f"{path}: generator weight-norm pair incomplete, {error.args[0]} missing"
        ) from None
    generator = HifiGanGenerator.from_config(config)
    expected = generator.state_dict()
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    if missing or unexpected:
        parts = [f"missing {_describe(missing)}"] if missing else []
        parts += [f"unexpected {_describe(unexpected)}"] if unexpected else []
        raise VocoderError(f"{path}: generator weights do not fit {config_path.name}: {'; '.join(parts)}")
    for key, value in expected.items():
        if weights[key].shape != value.shape:
            raise VocoderError(
                f"{path}: generator weight {key} has shape {tuple(weights[key].shape)}, "
                f"{config_path.name} implies {tuple(value.shape)}"
            )
    generator.load_state_dict(weights)
    return HifiGanVocoder(generator, config)
