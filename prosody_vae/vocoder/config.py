"""Vocoder training configuration: YAML mapped onto small frozen, validated dataclasses.

The same door as the acoustic model's (:mod:`prosody_vae.config`): every value, from a file, a
``--set`` override or a checkpoint, is converted to its field's annotated type by
:mod:`prosody_vae._typed` and refused with a one-line ``ValueError`` naming the key; unknown keys are
errors and missing keys take their defaults. Ranges are checked in each section's ``__post_init__``.

The defaults are HiFi-GAN V1 (Kong et al. 2020, Table 1 and the original release's ``config_v1``):
the generator, both discriminators at full width, LSGAN with feature matching (weight 2) and mel L1
(weight 45), AdamW (lr 2e-4, betas 0.8/0.99, weight decay 0.01) and segments of 8192 samples.
Only the set-up (:mod:`prosody_vae.vocoder.state`, :mod:`prosody_vae.vocoder.export`) reads these
objects; the networks and datasets take plain keyword arguments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from prosody_vae._typed import build, check, check_counts, check_numbers, plain
from prosody_vae.config import AudioConfig, read_config_sections, save_config

__all__ = [
    "DiscriminatorConfig",
    "GeneratorConfig",
    "VocoderConfig",
    "VocoderDataConfig",
    "VocoderLossConfig",
    "VocoderOptimConfig",
    "VocoderTrainConfig",
    "load_vocoder_config",
    "save_vocoder_config",
]


def _positive_ints(values: tuple[int, ...], key: str) -> None:
    check(
        len(values) > 0 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values),
        f"{key} must be a non-empty list of ints >= 1, got {list(values)!r}",
    )


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator's architecture, in the release's field names (V1 by default)."""

    resblock: Literal["1", "2"] = "1"  # "1": V1/V2 residual blocks, "2": the lighter V3 blocks
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)  # their product must be audio.hop_length
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    def __post_init__(self) -> None:
        check(self.resblock in ("1", "2"), f"generator.resblock must be '1' or '2', got {self.resblock!r}")
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            _positive_ints(getattr(self, name), f"generator.{name}")
        for dilations in self.resblock_dilation_sizes:
            _positive_ints(dilations, "generator.resblock_dilation_sizes")
        check_counts(self, "generator", 2, "upsample_initial_channel")
        # the remaining architecture checks (rates against kernels, one dilation list per kernel,
        # dilations per block type) are HifiGanConfig's, run by VocoderConfig on the whole


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Sizes of the multi-period and multi-scale discriminators (the paper's by default)."""

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)  # one period sub-discriminator each
    period_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)  # stride 3 in all but the last layer
    scales: int = 3  # scale sub-discriminators: raw audio, then x2 and x4 average-pooled
    scale_channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024)  # its seven layers
    scale_groups: tuple[int, ...] = (1, 4, 16, 16, 16, 16, 1)  # grouped convolutions of those layers

    def __post_init__(self) -> None:
        _positive_ints(self.periods, "discriminator.periods")
        _positive_ints(self.period_channels, "discriminator.period_channels")
        _positive_ints(self.scale_channels, "discriminator.scale_channels")
        _positive_ints(self.scale_groups, "discriminator.scale_groups")
        check_counts(self, "discriminator", 0, "scales")
        check(
            len(self.scale_channels) == len(self.scale_groups) == 7,
            "discriminator.scale_channels and scale_groups need 7 entries each (the paper's layers), "
            f"got {len(self.scale_channels)} and {len(self.scale_groups)}",
        )
        inputs = (1, *self.scale_channels[:-1])
        for index, (c_in, c_out, groups) in enumerate(
            zip(inputs, self.scale_channels, self.scale_groups, strict=True)
        ):
            check(
                c_in % groups == 0 and c_out % groups == 0,
                f"discriminator.scale_groups[{index}] = {groups} does not divide the layer's "
                f"{c_in} input and {c_out} output channels",
            )


@dataclass(frozen=True)
class VocoderLossConfig:
    mel_weight: float = 45.0  # lambda_mel of the paper
    feature_weight: float = 2.0  # lambda_fm of the paper
    mel_f_max: float | None = None  # top of the loss's mel filterbank in Hz; None: Nyquist (the release's)

    def __post_init__(self) -> None:
        check_numbers(self, "loss", "mel_weight", "feature_weight", zero_ok=True)
        if self.mel_f_max is not None:
            check_numbers(self, "loss", "mel_f_max")


@dataclass(frozen=True)
class VocoderOptimConfig:
    lr: float = 2e-4  # AdamW, generator and discriminators alike
    adam_betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    lr_decay: float = 0.999  # learning-rate multiplier applied every lr_decay_every steps
    lr_decay_every: int = 800  # steps; the paper decays once per epoch (800 steps of LJSpeech at batch 16)

    def __post_init__(self) -> None:
        check_numbers(self, "optim", "lr")
        check_numbers(self, "optim", "weight_decay", zero_ok=True)
        check(
            len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
            f"optim.adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}",
        )
        check(0 < self.lr_decay <= 1, f"optim.lr_decay must be in (0, 1], got {self.lr_decay!r}")
        check_counts(self, "optim", 1, "lr_decay_every")


@dataclass(frozen=True)
class VocoderDataConfig:
    root: str = "data/espeak_prosody/prepared"  # output folder of the prepare stage
    train_split: str = "train"
    valid_split: str = "valid"
    segment_size: int = 8192  # samples per training item; a multiple of audio.hop_length
    batch_size: int = 16
    num_workers: int = 0
    teacher_forced_from: str = ""  # an acoustic checkpoint whose teacher-forced mels replace the inputs
    teacher_forced_batch_size: int = 8  # utterances per pass when caching those mels

    def __post_init__(self) -> None:
        for name in ("root", "train_split", "valid_split"):
            value = getattr(self, name)
            check(
                isinstance(value, str) and value != "",
                f"data.{name} must be a non-empty string, got {value!r}",
            )
        check(isinstance(self.teacher_forced_from, str), "data.teacher_forced_from must be a string")
        check_counts(self, "data", 1, "segment_size", "batch_size", "teacher_forced_batch_size")
        check_counts(self, "data", 0, "num_workers")


@dataclass(frozen=True)
class VocoderTrainConfig:
    steps: int = 2_500_000  # the paper's V1 budget
    seed: int = 0
    log_every: int = 100
    valid_every: int = 1000  # a validation also writes a checkpoint and exports the generator
    checkpoint_every: int = 5000
    keep_last: int = 3  # step checkpoints and exported generators kept (plus best.pt)
    valid_items: int = (
        4  # whole validation utterances vocoded per validation; the first one is logged as audio
    )
    max_nonfinite: int = 20  # skipped steps with a non-finite loss before training stops
    discriminator_start: int = 0  # steps of mel loss only before the adversarial game starts (paper: 0)
    init_from: str = ""  # a generator (release format, or one of our vocoder checkpoints) to start from

    def __post_init__(self) -> None:
        check_counts(self, "train", 1, "steps", "log_every", "valid_every", "checkpoint_every")
        check_counts(self, "train", 1, "keep_last", "valid_items", "max_nonfinite")
        check_counts(self, "train", 0, "seed", "discriminator_start")
        check(isinstance(self.init_from, str), "train.init_from must be a string")


@dataclass(frozen=True)
class VocoderConfig:
    """The whole vocoder experiment; an empty section takes its defaults."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: VocoderLossConfig = field(default_factory=VocoderLossConfig)
    optim: VocoderOptimConfig = field(default_factory=VocoderOptimConfig)
    data: VocoderDataConfig = field(default_factory=VocoderDataConfig)
    train: VocoderTrainConfig = field(default_factory=VocoderTrainConfig)

    def __post_init__(self) -> None:
        from prosody_vae.audio.hifigan import HifiGanConfig  # torch: only once a config is built

        hop = self.audio.hop_length
        check(
            math.prod(self.generator.upsample_rates) == hop,
            f"generator.upsample_rates multiply to {math.prod(self.generator.upsample_rates)}, "
            f"not audio.hop_length {hop}",
        )
        check(
            self.data.segment_size % hop == 0,
            f"data.segment_size {self.data.segment_size} is not a multiple of audio.hop_length {hop}",
        )
        check(
            self.data.segment_size >= self.audio.n_fft,
            f"data.segment_size {self.data.segment_size} is shorter than one frame "
            f"(audio.n_fft {self.audio.n_fft})",
        )
        nyquist = self.audio.sample_rate / 2
        check(
            self.loss.mel_f_max is None or self.audio.f_min < self.loss.mel_f_max <= nyquist,
            f"loss.mel_f_max must lie in (audio.f_min, {nyquist}], got {self.loss.mel_f_max!r}",
        )
        HifiGanConfig.from_dict(self.release_dict(), "generator")  # the architecture checks

    def release_dict(self) -> dict[str, Any]:
        """The generator as the original release's ``config.json`` describes it (training keys too)."""
        g, a = self.generator, self.audio
        return {
            **plain(asdict(g)),
            "segment_size": self.data.segment_size,
            "batch_size": self.data.batch_size,
            "learning_rate": self.optim.lr,
            "adam_b1": self.optim.adam_betas[0],
            "adam_b2": self.optim.adam_betas[1],
            "lr_decay": self.optim.lr_decay,
            "seed": self.train.seed,
            "num_mels": a.n_mels,
            "num_freq": a.n_fft // 2 + 1,
            "n_fft": a.n_fft,
            "hop_size": a.hop_length,
            "win_size": a.win_length,
            "sampling_rate": a.sample_rate,
            "fmin": a.f_min,
            "fmax": a.f_max,
            "fmax_for_loss": self.loss.mel_f_max,
        }

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (tuples as lists): what checkpoints and ``config.yaml`` hold."""
        return plain(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> VocoderConfig:
        """Convert and check a nested mapping (errors are one line: ``<source>: <key>: <problem>``)."""
        try:
            return build(cls, raw)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None


def load_vocoder_config(path: str | Path, overrides: list[str] | None = None) -> VocoderConfig:
    """Read a vocoder YAML config; ``overrides`` are ``section.key=value`` strings (YAML values)."""
    return VocoderConfig.from_dict(read_config_sections(path, overrides, VocoderConfig), source=str(path))


def save_vocoder_config(config: VocoderConfig, path: str | Path) -> None:
    """Write ``config`` as YAML (atomically); :func:`load_vocoder_config` reads it back equal."""
    save_config(config, path)
