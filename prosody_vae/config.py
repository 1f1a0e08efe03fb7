"""Experiment configuration: YAML mapped onto small frozen, validated dataclasses.

Sections mirror the pieces of the system (audio, text, backbone, prosody, capacity, optim, data,
train). Only :func:`prosody_vae.tts.model.build_model` and the training loop read these objects; the
modules themselves take plain typed keyword arguments.

Values are typed at the door: :func:`load_config` and :meth:`ExperimentConfig.from_dict` convert each
value, from a YAML file, a ``--set`` override or a checkpoint, to its field's annotated type
(:mod:`prosody_vae._typed`: ``1e-3`` is 0.001 for a float field although YAML 1.1 reads it as a string;
an int field refuses ``16.5``; lists become tuples) and refuse what does not fit with a one-line
``ValueError`` naming the key. Unknown keys are errors; missing keys take their defaults, so
checkpoints written before a field existed still load. Ranges are checked in each section's
``__post_init__``, so they hold for sections built in Python too. Sections are frozen: derive a changed
copy with :func:`dataclasses.replace`.

Only PyYAML is imported here: no audio library is loaded to read a config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from prosody_vae._typed import (
    build,
    check,
    check_bools,
    check_choice,
    check_counts,
    check_numbers,
    field_type,
    plain,
)

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


@dataclass(frozen=True)
class TextConfig:
    tokenizer: Literal["phonemes", "characters"] = "phonemes"  # espeak-ng IPA phonemes, or characters

    def __post_init__(self) -> None:
        check_choice(self, "text", "tokenizer")


@dataclass(frozen=True)
class BackboneConfig:
    # "tacotron2" (prosody_vae.tts.backbones) or "torchaudio_tacotron2" (torchaudio.models.Tacotron2 through
    # prosody_vae.integrations; needs r: 1, attention: location and embedding_dim == encoder_dim)
    kind: Literal["tacotron2", "torchaudio_tacotron2"] = "tacotron2"
    r: int = 2  # frames per decoder step, 1..8
    attention: Literal["dca", "location"] = "dca"
    embedding_dim: int = 256
    encoder_dim: int = 256
    attention_dim: int = 128
    attention_rnn_dim: int = 256
    decoder_dim: int = 512
    prenet_dim: int = 128
    postnet_dim: int = 256
    postnet_n_convs: int = 5  # >= 2: the last convolution maps back to n_mels
    pitch: bool = False  # also predict frame-level log-F0 and voicing (prosody_vae.tts.pitch)
    pitch_init_hz: float = 100.0  # initial F0 prediction, about the corpus's median
    # > 0: channels of a non-causal convolutional refinement of the pitch prediction over the decoded
    # sequence (prosody_vae.tts.pitch_refiner); 0: the linear projection alone. Needs pitch: true.
    pitch_refiner_dim: int = 0
    # what the pitch heads read: "decoder" (the decoder LSTM's state and the attention context) or
    # "context" (the attention context alone: no teacher-forcing shortcut, see Tacotron2._pitch_step)
    pitch_input: Literal["decoder", "context"] = "decoder"
    # the pitch refiner also reads how far through the text each step attends, so that z can place
    # and size a contour, not only shift it (prosody_vae.tts.pitch_refiner). Needs pitch_refiner_dim.
    pitch_refiner_position: bool = False
    # an utterance-level F0 contour over the text's relative time that the conditioning [z, speaker]
    # sets, so that z can shape the F0, not only shift it (prosody_vae.tts.pitch_contour). Needs pitch.
    pitch_contour: bool = False

    def __post_init__(self) -> None:
        check_choice(self, "backbone", "kind")
        check_numbers(self, "backbone", "pitch_init_hz")
        check_choice(self, "backbone", "attention")
        check_choice(self, "backbone", "pitch_input")
        check_counts(self, "backbone", 1, "r", "embedding_dim", "encoder_dim", "attention_dim")
        check_counts(self, "backbone", 1, "attention_rnn_dim", "decoder_dim", "prenet_dim", "postnet_dim")
        check_counts(self, "backbone", 2, "postnet_n_convs")
        check(self.r <= 8, f"backbone.r must be in 1..8, got {self.r}")
        check(
            isinstance(self.pitch_refiner_dim, int)
            and not isinstance(self.pitch_refiner_dim, bool)
            and self.pitch_refiner_dim >= 0,
            f"backbone.pitch_refiner_dim must be an int >= 0, got {self.pitch_refiner_dim!r}",
        )
        check(
            self.pitch or not self.pitch_refiner_dim,
            "backbone.pitch_refiner_dim refines the pitch prediction: it needs backbone.pitch: true",
        )
        check_bools(self, "backbone", "pitch_refiner_position", "pitch_contour")
        check(
            self.pitch or not self.pitch_contour,
            "backbone.pitch_contour shapes the pitch prediction: it needs backbone.pitch: true",
        )
        check(
            self.pitch_refiner_dim or not self.pitch_refiner_position,
            "backbone.pitch_refiner_position is read by the pitch refiner: it needs backbone.pitch_refiner_dim > 0",
        )
        if self.kind == "torchaudio_tacotron2":
            check(
                not self.pitch,
                "backbone.kind torchaudio_tacotron2 does not predict pitch: set backbone.pitch: false",
            )
            check(
                self.r == 1 and self.attention == "location",
                "backbone.kind torchaudio_tacotron2 has location-sensitive attention and one frame per "
                f"step: set backbone.r: 1 and backbone.attention: location (got {self.r}, {self.attention!r})",
            )
            check(
                self.embedding_dim == self.encoder_dim,
                "backbone.kind torchaudio_tacotron2 needs embedding_dim == encoder_dim "
                f"(got {self.embedding_dim} and {self.encoder_dim})",
            )


@dataclass(frozen=True)
class ProsodyConfig:
    latent_dim: int = 128
    ref_channels: tuple[int, ...] = (32, 32, 64, 64, 128, 128)  # reference encoder conv2d stack
    ref_rnn_size: int = 128
    text_summary: bool = True
    text_summary_dim: int = 128
    speaker_dim: int = 0  # speaker embedding size; 0 for single-speaker corpora
    prior: Literal["standard", "associative"] = "standard"  # N(0, I) or the ACN prior
    acn_neighbours: int = 5  # K: the prior context is a random one of the K nearest training codes
    acn_refresh_every: int = 0  # steps between full code-bank refreshes; 0 = at each epoch start
    # share of training items whose text summary is replaced by a learned null summary, so that the
    # model also embeds references without a transcript; 0: none, and transfer needs the transcript
    text_summary_dropout: float = 0.0
    # share of training items whose posterior is not told the speaker (a learned unknown-speaker
    # vector instead; the decoder always hears it), for references from voices outside the speaker
    # table; multi-speaker models only
    speaker_dropout: float = 0.0
    # Capacitron's hierarchical decomposition of capacity (docs/hierarchical.md): a high-level latent
    # z_s of high_latent_dim over z_p (latent_dim, what the decoder reads); capacity.capacity then
    # holds the low-level rate at C_p and capacity.high_capacity the high-level one at C_s
    hierarchical: bool = False
    high_latent_dim: int = 16
    hierarchy_hidden_dim: int = 64  # width of the q(z_s | z_p) and p(z_p | z_s) heads
    # the posterior also reads the reference's frame-level F0 (prosody/pitch_encoder.py): the pitch
    # contour the mel's coarse low bins barely show; training reads it from the feature cache
    reference_pitch: bool = False
    # the F0 the posterior reads is relative to the reference voice's own mean F0 (log2(F0 / voice
    # mean) instead of log2(F0 / 100 Hz)), so that z holds the level relative to the voice: "low for
    # this voice" reads the same in any voice; the model keeps each training voice's mean, and a voice
    # outside the table gives its mean at transfer (prosody_vae/tts/voice_pitch.py); needs
    # reference_pitch and a multi-speaker corpus
    reference_pitch_relative: bool = False
    # training only: each reference mel the posterior reads has its frequency axis scaled by a random
    # alpha in [1 / (1 + w), 1 + w] (a longer or shorter vocal tract), so the posterior hears more
    # voices than the corpus has (prosody_vae/tts/reference_warp.py); 0 = off
    reference_warp: float = 0.0
    # weight of an adversarial voice classifier on z (prosody_vae/tts/voice_adversary.py): z is trained
    # to forget the reading voice, so that transfer carries prosody relative to the voice; 0 = off;
    # multi-speaker models only
    voice_adversary_weight: float = 0.0
    # share of training items whose decoder gets the prior mean (z = 0) instead of the posterior's z,
    # so that z = 0 renders what the text alone implies (questions rising, statements falling) rather
    # than an average of prosodies the posterior tells apart (prosody_vae/tts/model.py); 0 = off;
    # standard prior, flat module only
    latent_dropout: float = 0.0
    # weight of an auxiliary decoder that predicts the utterance's F0 spread and peak position from z
    # (prosody_vae/tts/contour_statistics.py), so that z carries the contour, not only its level;
    # 0 = off; needs F0 in the feature cache
    contour_weight: float = 0.0
    # the same auxiliary decoder also predicts the utterance's speaking rate, log(tokens / frames),
    # from z; needs contour_weight > 0
    contour_rate: bool = False
    # a length model that predicts the utterance's length in frames from its tokens and [z, speaker]
    # (prosody_vae/tts/utterance_length.py), trained on the detached posterior mean, so that the
    # synthesised length follows the speaking rate z carries rather than the attention's step count;
    # synthesis resamples the decoder's output to it (prosody_vae/inference/timing.py)
    utterance_length: bool = False
    # a head that estimates the length model's text term from a reference's mel alone
    # (prosody_vae/tts/spoken_length.py), so that a transfer without the reference's transcript can
    # still take the reference's pace (Synthesizer.transfer, timing "reference"); trained on the
    # detached mel against the length model's token durations; needs utterance_length
    spoken_length: bool = False
    # training only: share of the items that have a partner (the same voice and prosody settings on
    # another sentence: the manifest label setting_group, prosody_vae/data/partners.py) whose posterior
    # reads the partner while the decoder targets the item, so that z keeps the prosody rather than
    # its sentence's particulars (prosody_vae/tts/paired_reference.py); 0 = off
    paired_reference: float = 0.0

    def __post_init__(self) -> None:
        check_bools(
            self,
            "prosody",
            "reference_pitch",
            "reference_pitch_relative",
            "contour_rate",
            "utterance_length",
            "spoken_length",
        )
        check(
            not self.spoken_length or self.utterance_length,
            "prosody.spoken_length estimates the length model's text term: it needs prosody.utterance_length: true",
        )
        check(
            not self.reference_pitch_relative or (self.reference_pitch and self.speaker_dim > 0),
            "prosody.reference_pitch_relative reads the reference's F0 relative to its voice: it needs "
            "prosody.reference_pitch: true and a speaker table (prosody.speaker_dim > 0)",
        )
        check_counts(self, "prosody", 1, "latent_dim", "ref_rnn_size", "text_summary_dim", "acn_neighbours")
        check_numbers(
            self,
            "prosody",
            "text_summary_dropout",
            "speaker_dropout",
            "voice_adversary_weight",
            "latent_dropout",
            "reference_warp",
            "contour_weight",
            "paired_reference",
            zero_ok=True,
        )
        check(
            self.paired_reference <= 1.0,
            f"prosody.paired_reference must lie in [0, 1], got {self.paired_reference!r}",
        )
        check(
            not self.contour_rate or self.contour_weight > 0,
            "prosody.contour_rate adds the rate to the contour head: it needs prosody.contour_weight > 0",
        )
        check(
            self.reference_warp < 0.5,
            f"prosody.reference_warp must lie in [0, 0.5), got {self.reference_warp!r}",
        )
        check(
            self.latent_dropout == 0.0 or (self.prior == "standard" and not self.hierarchical),
            "prosody.latent_dropout decodes dropped items from z = 0, the mean of the standard prior: it "
            "needs prosody.prior: standard and a flat (not hierarchical) module",
        )
        for name in ("text_summary_dropout", "speaker_dropout", "latent_dropout"):
            value = getattr(self, name)
            check(value < 1.0, f"prosody.{name} must lie in [0, 1), got {value!r}")
        check(
            self.text_summary or self.text_summary_dropout == 0.0,
            "prosody.text_summary_dropout needs prosody.text_summary: true",
        )
        check_counts(self, "prosody", 0, "speaker_dim", "acn_refresh_every")
        check_choice(self, "prosody", "prior")
        check_counts(self, "prosody", 1, "high_latent_dim", "hierarchy_hidden_dim")
        check_bools(self, "prosody", "hierarchical")
        check(
            not (self.hierarchical and self.prior == "associative"),
            "prosody.hierarchical replaces the prior of z by p(z_p | z_s): it needs prosody.prior: standard",
        )
        channels = self.ref_channels
        check(
            isinstance(channels, tuple)
            and len(channels) > 0
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels),
            f"prosody.ref_channels must be a non-empty tuple of ints >= 1, got {channels!r}",
        )
        check_bools(self, "prosody", "text_summary")


@dataclass(frozen=True)
class CapacityConfig:
    capacity: float = 50.0  # C, nats per utterance (C_p, the low-level set's, with prosody.hierarchical)
    high_capacity: float = 10.0  # C_s, the high-level set's, nats per utterance (prosody.hierarchical only)
    beta_init: float = 1.0
    beta_optimizer: Literal["adam", "sgd"] = "adam"  # "adam" holds KL near C; "sgd" is the paper's setting
    beta_lr: float = (
        5e-2  # prosody_vae.prosody.dual_optimizer.RECOMMENDED_BETA_LR; use 1e-5 with "sgd" for the paper
    )
    beta_momentum: float = 0.9  # SGD only

    def __post_init__(self) -> None:
        check_numbers(self, "capacity", "capacity", "high_capacity", zero_ok=True)
        check_numbers(self, "capacity", "beta_init", "beta_lr")
        check_choice(self, "capacity", "beta_optimizer")
        check_numbers(self, "capacity", "beta_momentum", zero_ok=True)
        check(self.beta_momentum < 1, f"capacity.beta_momentum must be in [0, 1), got {self.beta_momentum}")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-6
    weight_decay: float = 1e-6
    warmup_steps: int = 500  # linear warm-up; 0 starts at the full rate
    decay_start: int = 10000  # exponential decay to lr_min from here on
    decay_rate: float = 0.5  # lr multiplier per decay_steps, in (0, 1]
    decay_steps: int = 20000
    lr_min: float = 1e-5  # floor of the schedule, <= lr
    max_grad_norm: float = 1.0
    accumulation_steps: int = 1
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision, CUDA only

    def __post_init__(self) -> None:
        check_numbers(self, "optim", "lr", "adam_eps", "max_grad_norm")
        check_numbers(self, "optim", "weight_decay", "lr_min", zero_ok=True)
        check(self.lr_min <= self.lr, f"optim.lr_min ({self.lr_min}) must not exceed optim.lr ({self.lr})")
        check(
            len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
            f"optim.adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}",
        )
        check_numbers(self, "optim", "decay_rate")
        check(self.decay_rate <= 1, f"optim.decay_rate must be in (0, 1], got {self.decay_rate}")
        check_counts(self, "optim", 0, "warmup_steps", "decay_start")
        check_counts(self, "optim", 1, "decay_steps", "accumulation_steps")
        check_choice(self, "optim", "amp")


@dataclass(frozen=True)
class DataConfig:
    root: str = "data/espeak_prosody/prepared"  # output folder of the prepare stage
    train_split: str = "train"
    valid_split: str = "valid"
    batch_size: int = 16
    num_workers: int = 0
    max_frames: int = 0  # drop training utterances longer than this; 0 keeps all

    def __post_init__(self) -> None:
        for name in ("root", "train_split", "valid_split"):
            value = getattr(self, name)
            check(
                isinstance(value, str) and value != "",
                f"data.{name} must be a non-empty string, got {value!r}",
            )
        check_counts(self, "data", 1, "batch_size")
        check_counts(self, "data", 0, "num_workers", "max_frames")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 20000
    seed: int = 0
    log_every: int = 25
    valid_every: int = 500  # a validation also writes a checkpoint
    checkpoint_every: int = 500
    keep_last: int = 3
    stop_weight: float = 1.0
    stop_pos_weight: float = 5.0
    guided_attention_weight: float = 1.0  # 0 disables the guided-attention loss
    guided_attention_sigma: float = 0.2
    guided_attention_until: int = 0  # step after which the guided-attention loss is off; 0 = never off
    max_nonfinite: int = 20  # skipped steps with a non-finite loss before training stops
    valid_audio: bool = True  # Griffin-Lim audio of a validation item in TensorBoard
    pitch_scale: float = 0.05  # Laplace scale b of the log-F0 likelihood (backbone.pitch), natural-log units
    init_from: str = ""  # a checkpoint or packed model whose weights start a new run ("" = none)

    def __post_init__(self) -> None:
        # the intervals are step counts taken modulo: 0 would divide by zero in the middle of a run
        check_counts(self, "train", 1, "steps", "log_every", "valid_every", "checkpoint_every")
        check_counts(self, "train", 1, "keep_last", "max_nonfinite")
        check_counts(self, "train", 0, "seed", "guided_attention_until")
        check_numbers(self, "train", "stop_weight", "guided_attention_weight", zero_ok=True)
        check_numbers(self, "train", "stop_pos_weight", "guided_attention_sigma", "pitch_scale")
        check_bools(self, "train", "valid_audio")


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole experiment: one frozen section per piece of the system (an empty section: defaults)."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    prosody: ProsodyConfig = field(default_factory=ProsodyConfig)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (tuples as lists): what checkpoints and ``config.yaml`` hold."""
        return plain(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> ExperimentConfig:
        """Convert and check a nested mapping (errors are one line: ``<source>: <key>: <problem>``)."""
        try:
            return build(cls, raw)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None


def _override(item: str, config_type: type) -> tuple[str, str, Any]:
    """``section.key=value`` -> (section, key, value); the value is YAML, except for a string field."""
    key, sep, text = item.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name:
        raise ValueError(f"override {item!r}: expected section.key=value")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(f"override {item!r}: the value is not valid YAML") from None
    section_type = field_type(config_type, section)
    if section_type is not None and field_type(section_type, name) is str and not isinstance(value, str):
        value = text.strip()  # '--set data.root=2024' names a folder, not the int 2024
    return section, name, value


def read_config_sections(path: str | Path, overrides: list[str] | None, config_type: type) -> dict[str, Any]:
    """The raw sections of a YAML config of ``config_type`` (a sectioned config dataclass, such as
    :class:`ExperimentConfig`) with ``section.key=value`` overrides applied; the caller converts and
    checks them (``config_type.from_dict``). Problems are one-line ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: invalid YAML ({' '.join(str(error).split())})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    for item in overrides or []:
        section, name, value = _override(item, config_type)
        if raw.get(section) is None:  # absent, or an empty section in the file
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise ValueError(f"{path}: {section}: expected a mapping, got {raw[section]!r}")
        raw[section][name] = value
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config; ``overrides`` are ``section.key=value`` strings (YAML values).

    Every value, from the file or an override, is converted to its field's type (see the module
    docstring); any problem is a one-line ``ValueError`` naming the file and the key.
    """
    raw = read_config_sections(path, overrides, ExperimentConfig)
    return ExperimentConfig.from_dict(raw, source=str(path))


def save_config(config: Any, path: str | Path) -> None:
    """Write ``config`` (an :class:`ExperimentConfig`, or any config with ``to_dict``) as YAML,
    atomically; :func:`load_config` (or the config's own loader) reads it back equal."""
    from prosody_vae.atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
