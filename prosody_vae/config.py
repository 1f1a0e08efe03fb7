"""Experiment configuration: YAML mapped onto small validated dataclasses.

Sections mirror the pieces of the system (audio, text, backbone, prosody, capacity, optim, data,
train). Only :func:`prosody_vae.tts.model.build_model` and the training loop read these objects; the
modules themselves take plain typed keyword arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

__all__ = [
    "AudioConfig",
    "BackboneConfig",
    "CapacityConfig",
    "DataConfig",
    "ExperimentConfig",
    "OptimConfig",
    "ProsodyConfig",
    "TextConfig",
    "TrainConfig",
    "load_config",
    "save_config",
]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class AudioConfig:
    """Analysis parameters shared by every module that touches audio.

    Attributes:
        sample_rate: target sample rate in Hz; audio is resampled to it on load.
        n_fft: FFT size (and the frame length of the energy analysis).
        hop_length: frame shift in samples.
        win_length: Hann window length in samples, ``<= n_fft``.
        n_mels: number of mel bands.
        f_min: lowest mel filter edge in Hz.
        f_max: highest mel filter edge in Hz, ``<= sample_rate / 2``.
        log_floor: floor applied to the magnitude mel before the natural log.
        trim_top_db: leading/trailing silence below ``peak - trim_top_db`` dB is cut; None disables.
        peak_normalize: rescale so that ``max |x|`` equals this; None disables.
        f0_min: lowest F0 searched by Harvest, Hz.
        f0_max: highest F0 searched by Harvest, Hz.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-5
    trim_top_db: float | None = 40.0
    peak_normalize: float | None = 0.95
    f0_min: float = 50.0
    f0_max: float = 600.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"AudioConfig.{name} must be a positive int, got {value!r}")
        if self.win_length > self.n_fft:
            raise ValueError(
                f"AudioConfig.win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})"
            )
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.f_min < self.f_max <= nyquist:
            raise ValueError(
                f"AudioConfig needs 0 <= f_min < f_max <= sample_rate/2 ({nyquist}), "
                f"got f_min={self.f_min}, f_max={self.f_max}"
            )
        if not self.log_floor > 0:
            raise ValueError(f"AudioConfig.log_floor must be > 0, got {self.log_floor!r}")
        if self.trim_top_db is not None and not self.trim_top_db > 0:
            raise ValueError(f"AudioConfig.trim_top_db must be > 0 or None, got {self.trim_top_db!r}")
        if self.peak_normalize is not None and not 0 < self.peak_normalize <= 1:
            raise ValueError(
                f"AudioConfig.peak_normalize must be in (0, 1] or None, got {self.peak_normalize!r}"
            )
        if not 0 < self.f0_min < self.f0_max <= nyquist:
            raise ValueError(
                f"AudioConfig needs 0 < f0_min < f0_max <= sample_rate/2 ({nyquist}), "
                f"got f0_min={self.f0_min}, f0_max={self.f0_max}"
            )

    @property
    def frame_period_ms(self) -> float:
        """Frame shift in milliseconds (the WORLD ``frame_period``)."""
        return 1000.0 * self.hop_length / self.sample_rate


@dataclass
class TextConfig:
    tokenizer: str = "phonemes"  # "phonemes" (espeak-ng IPA) or "characters"

    def __post_init__(self) -> None:
        _check(
            self.tokenizer in ("phonemes", "characters"), f"text.tokenizer: unknown kind {self.tokenizer!r}"
        )


@dataclass
class BackboneConfig:
    # "tacotron2" (prosody_vae.tts.backbones) or "torchaudio_tacotron2" (torchaudio.models.Tacotron2 through
    # prosody_vae.integrations; needs r: 1, attention: location and embedding_dim == encoder_dim)
    kind: str = "tacotron2"
    r: int = 2
    attention: str = "dca"
    embedding_dim: int = 256
    encoder_dim: int = 256
    attention_dim: int = 128
    attention_rnn_dim: int = 256
    decoder_dim: int = 512
    prenet_dim: int = 128
    postnet_dim: int = 256
    postnet_n_convs: int = 5

    def __post_init__(self) -> None:
        _check(self.r >= 1, f"backbone.r must be >= 1, got {self.r}")
        _check(self.attention in ("dca", "location"), f"backbone.attention: unknown {self.attention!r}")
        _check(
            self.kind in ("tacotron2", "torchaudio_tacotron2"),
            f"backbone.kind: unknown {self.kind!r} (tacotron2 or torchaudio_tacotron2)",
        )
        if self.kind == "torchaudio_tacotron2":
            _check(
                self.r == 1 and self.attention == "location",
                "backbone.kind torchaudio_tacotron2 has location-sensitive attention and one frame per "
                f"step: set backbone.r: 1 and backbone.attention: location (got {self.r}, {self.attention!r})",
            )
            _check(
                self.embedding_dim == self.encoder_dim,
                "backbone.kind torchaudio_tacotron2 needs embedding_dim == encoder_dim "
                f"(got {self.embedding_dim} and {self.encoder_dim})",
            )


@dataclass
class ProsodyConfig:
    latent_dim: int = 128
    ref_channels: list[int] = field(default_factory=lambda: [32, 32, 64, 64, 128, 128])
    ref_rnn_size: int = 128
    text_summary: bool = True
    text_summary_dim: int = 128
    speaker_dim: int = 0  # speaker embedding size; 0 for single-speaker corpora
    prior: str = "standard"  # "standard" N(0, I) or "associative" (ACN)
    acn_neighbours: int = 5  # K: the prior context is a random one of the K nearest training codes
    acn_refresh_every: int = 0  # steps between full code-bank refreshes; 0 = at each epoch start

    def __post_init__(self) -> None:
        _check(self.latent_dim >= 1, f"prosody.latent_dim must be >= 1, got {self.latent_dim}")
        _check(self.prior in ("standard", "associative"), f"prosody.prior: unknown {self.prior!r}")
        _check(self.acn_neighbours >= 1, f"prosody.acn_neighbours must be >= 1, got {self.acn_neighbours}")
        _check(
            self.acn_refresh_every >= 0,
            f"prosody.acn_refresh_every must be >= 0, got {self.acn_refresh_every}",
        )


@dataclass
class CapacityConfig:
    capacity: float = 50.0  # C, nats per utterance
    beta_init: float = 1.0
    beta_optimizer: str = "adam"  # "adam" (holds KL near C) or "sgd" (the paper's setting)
    beta_lr: float = (
        5e-2  # prosody_vae.prosody.dual_optimizer.RECOMMENDED_BETA_LR; use 1e-5 with "sgd" for the paper
    )
    beta_momentum: float = 0.9

    def __post_init__(self) -> None:
        _check(self.capacity >= 0, f"capacity.capacity must be >= 0, got {self.capacity}")
        _check(self.beta_init > 0, f"capacity.beta_init must be > 0, got {self.beta_init}")
        _check(
            self.beta_optimizer in ("sgd", "adam"),
            f"capacity.beta_optimizer: unknown {self.beta_optimizer!r}",
        )


@dataclass
class OptimConfig:
    lr: float = 1e-3
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-6
    weight_decay: float = 1e-6
    warmup_steps: int = 500
    decay_start: int = 10000  # exponential decay to lr_min from here on
    decay_rate: float = 0.5  # lr multiplier per decay_steps
    decay_steps: int = 20000
    lr_min: float = 1e-5
    max_grad_norm: float = 1.0
    accumulation_steps: int = 1
    amp: str = "none"  # "none", "bf16" or "fp16" (CUDA only)

    def __post_init__(self) -> None:
        _check(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _check(self.amp in ("none", "bf16", "fp16"), f"optim.amp: unknown {self.amp!r}")
        _check(self.accumulation_steps >= 1, "optim.accumulation_steps must be >= 1")


@dataclass
class DataConfig:
    root: str = "data/espeak_prosody/prepared"  # output folder of the prepare stage
    train_split: str = "train"
    valid_split: str = "valid"
    batch_size: int = 16
    num_workers: int = 0
    max_frames: int = 0  # drop training utterances longer than this; 0 keeps all

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, f"data.batch_size must be >= 1, got {self.batch_size}")


@dataclass
class TrainConfig:
    steps: int = 20000
    seed: int = 0
    log_every: int = 25
    valid_every: int = 500
    checkpoint_every: int = 500
    keep_last: int = 3
    stop_weight: float = 1.0
    stop_pos_weight: float = 5.0
    guided_attention_weight: float = 1.0
    guided_attention_sigma: float = 0.2
    guided_attention_until: int = 0  # step after which the guided-attention loss is off; 0 = never off
    max_nonfinite: int = 20  # skipped steps with a non-finite loss before training stops
    valid_audio: bool = True  # Griffin-Lim audio of a validation item in TensorBoard

    def __post_init__(self) -> None:
        _check(self.steps >= 1, f"train.steps must be >= 1, got {self.steps}")


@dataclass
class ExperimentConfig:
    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    prosody: ProsodyConfig = field(default_factory=ProsodyConfig)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> ExperimentConfig:
        return _build(cls, raw, source)


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{where}.{name}")
        elif isinstance(value, list) and hint is tuple:
            values[name] = tuple(value)
        else:
            values[name] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config; ``overrides`` are ``section.key=value`` strings (YAML values)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: invalid YAML ({error})") from None
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"override {item!r}: expected section.key=value")
        section, name = key.split(".", 1)
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    return ExperimentConfig.from_dict(raw, source=str(path))


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
