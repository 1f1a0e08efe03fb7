"""Synthesizer: a trained checkpoint turned into prosody transfer, prior sampling, interpolation and
traversal of the latent space.

Transfer is deterministic by default: the reference is encoded to its posterior mean (the reference
implementation samples in eval mode, so the same reference gave different prosody on every call).
Pass ``sample=True`` for a draw from q(z | reference) instead.

A hierarchical model (``prosody.hierarchical``, docs/hierarchical.md) decodes from z_p under a
high-level z_s. :meth:`Synthesizer.transfer` then takes ``via``: ``"zp"`` (the default) transfers z_p,
everything the reference gave (up to C_s + C_p nats); ``"zs"`` fixes the reference's z_s (up to C_s
nats) and samples the rest from p(z_p | z_s). :meth:`Synthesizer.sample` takes ``style_from``, a
reference whose z_s all ``n`` renditions share.

The mel-level methods (:meth:`Synthesizer.transfer`, ``sample``, ``interpolate``, ...) return
:class:`Synthesis` objects; :meth:`Synthesizer.speak` adds the vocoder and returns audio
(:class:`~prosody_vae.inference.api.Speech`), and :meth:`Synthesizer.from_pretrained` loads the
shipped model::

    tts = Synthesizer.from_pretrained()
    tts.speak("The lantern was red.", reference="ref.wav").save("lantern.wav")
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from prosody_vae.audio import AudioConfig, AudioError, MelSpectrogram, harvest_f0, load_audio
from prosody_vae.audio.vocoders import load_vocoder, vocode
from prosody_vae.checkpoint import CheckpointError, load_checkpoint
from prosody_vae.config import ExperimentConfig
from prosody_vae.inference.api import Speech, transcript_beside
from prosody_vae.inference.pieces import (
    MAX_DECODER_SECONDS,
    PAUSE_SECONDS,
    PIECES_PER_BATCH,
    decoder_step_cap,
    join_pieces,
    split_pieces,
)
from prosody_vae.inference.timing import stretch, stretched_length
from prosody_vae.prosody.bounds import kl_per_dimension_summary
from prosody_vae.prosody.hierarchical import HierarchicalOutput
from prosody_vae.prosody.priors import AssociativePrior
from prosody_vae.prosody.vae import ProsodyOutput
from prosody_vae.text import Tokenizer, build_tokenizer
from prosody_vae.tts.model import UNKNOWN_SPEAKER, ProsodyTTS, build_model
from prosody_vae.tts.pitch import decode_pitch, smooth_f0
from prosody_vae.tts.voice_pitch import mean_f0_hz

__all__ = [
    "MAX_REFERENCE_SECONDS",
    "MIN_REFERENCE_SECONDS",
    "ReferenceNotice",
    "Synthesis",
    "Synthesizer",
    "interpolation_path",
    "slerp",
]

# A reference shorter than this (after silence trimming) holds about one stressed syllable: too
# little for an F0 level, a range or a rate, so the embedding would be mostly the encoder's bias.
MIN_REFERENCE_SECONDS = 0.25
# The posterior reads at most the first this many seconds of a reference (after silence trimming):
# the training utterances are shorter (prepare's max_duration is 20 s), and the reference encoder's
# memory and time grow with the length. A longer reference is cut, with a ReferenceNotice.
MAX_REFERENCE_SECONDS = 20.0

Reference = str | Path | np.ndarray | Tensor


class ReferenceNotice(UserWarning):
    """A reference was converted on load (resampled to the model's rate, or mixed to mono), or cut
    to :data:`MAX_REFERENCE_SECONDS`."""


def transcript_required(what: str) -> str:
    """The one-line message for a reference without the transcript a model needs (``what``: its name)."""
    return (
        f"{what}: this model needs the reference's transcript (it was trained without "
        "prosody.text_summary_dropout): give it with --reference-text (reference_text= in Python) "
        "or in <name>.txt beside the audio"
    )


@dataclass
class Synthesis:
    """One synthesised utterance: log-mel (T, n_mels), attention (T/r, L), the z used (D,).

    ``f0`` is the predicted F0 track (T,) in Hz, 0 where unvoiced, for a model that predicts pitch
    (``backbone.pitch``), else None; :func:`prosody_vae.audio.vocoders.vocode` hands it to the vocoder.
    """

    mel: Tensor
    alignment: Tensor
    z: Tensor
    stopped: bool
    f0: Tensor | None = None


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between latents (D,); falls back to linear for near-parallel vectors."""
    a_n, b_n = a / a.norm().clamp_min(1e-8), b / b.norm().clamp_min(1e-8)
    omega = torch.arccos((a_n * b_n).sum().clamp(-1.0, 1.0))
    if float(omega) < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolation_path(
    a: Tensor, b: Tensor, steps: int, method: Literal["linear", "slerp"] = "linear"
) -> Tensor:
    """``steps`` latents (steps, D) from ``a`` (D,) to ``b`` (D,), both ends included.

    ``slerp`` keeps the norm of the path near the norms of its ends; under an N(0, I) prior in many
    dimensions a linear midpoint has a smaller norm than typical samples (White 2016, "Sampling
    generative networks"). With a 16-dimensional z the difference is small; both are offered.
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both ends are included), got {steps}")
    if method not in ("linear", "slerp"):
        raise ValueError(f"method must be 'linear' or 'slerp', got {method!r}")
    ts = torch.linspace(0.0, 1.0, steps).tolist()
    if method == "linear":
        return torch.stack([(1 - t) * a + t * b for t in ts])
    return torch.stack([slerp(a, b, t) for t in ts])


# Decoder precisions at synthesis: the dtype of the LSTM cells' weight copies (None: the float32 cells).
# bf16 and int8 are faster for large decoders (memory-bound steps) and close to, not equal to, fp32:
# docs/benchmarks.md has the speed and the distance; prosody_vae/tts/backbones/reduced_precision.py how.
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "int8": torch.qint8}


def reduced_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The cells' dtype for a :data:`PRECISIONS` name; ValueError for an unknown one or int8 off the CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and device.type != "cpu":
        raise ValueError(f"int8 decoding runs on the CPU only (torch's quantised kernels), not on {device}")
    return PRECISIONS[precision]


class Synthesizer:
    """Text + prosody -> mel, from a training checkpoint."""

    def __init__(
        self,
        *,
        model: ProsodyTTS,
        tokenizer: Tokenizer,
        config: ExperimentConfig,
        speakers: list[str],
        device: str | torch.device = "cpu",
        default_speaker: str | None = None,
    ) -> None:
        if default_speaker is not None and default_speaker not in speakers:
            raise ValueError(f"default speaker {default_speaker!r} is not one of the model's {speakers}")
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.config = config
        self.audio: AudioConfig = config.audio
        self.speakers = speakers
        # the voice a multi-speaker model speaks in when none is named, and that a reference is taken
        # to be spoken in when neither its voice nor its voice's mean F0 is given (a packed model may
        # record one: recipes/package_model.py --default-speaker)
        self.default_speaker = default_speaker
        self.device = torch.device(device)
        self._mel = MelSpectrogram(self.audio).to(self.device)
        # What speak() vocodes with: mel (T, n_mels) -> waveform (N,); None until first needed, then
        # the default vocoder (load_vocoder(None, ...)). Set it to any such module to use another.
        self.vocoder: nn.Module | None = None
        # The decoder cells' arithmetic at synthesis: "fp32" (exact), "bf16" or "int8" (PRECISIONS).
        self.precision: str = "fp32"
        # Whether a model with a length model (prosody.utterance_length) has its outputs resampled to
        # the length it predicts (prosody_vae/inference/timing.py); False keeps the decoder's timing.
        self.length_model: bool = True

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu") -> Synthesizer:
        """Load a training checkpoint; :class:`CheckpointError` (naming ``path``) when it is unusable."""
        state = load_checkpoint(path, map_location="cpu")
        try:
            config = ExperimentConfig.from_dict(state["config"], source=f"{path} (config)")
            tokenizer = build_tokenizer(**state["tokenizer"])
            weights = state.get("model") or {
                key.removeprefix("model."): value
                for key, value in state["training_module"].items()
                if key.startswith("model.")
            }
            speakers = list(state["speakers"])
            default_speaker = state.get("default_speaker")
        except KeyError as missing:
            raise CheckpointError(f"{path}: checkpoint lacks {missing}") from None
        model = build_model(config, n_symbols=tokenizer.vocab_size, n_speakers=len(speakers))
        try:
            model.load_state_dict(weights)
        except RuntimeError as error:
            # torch's message spans many lines (one per tensor); keep the first for a one-line error
            first = str(error).strip().splitlines()
            detail = " ".join(line.strip() for line in first[:3])
            raise CheckpointError(
                f"{path}: weights do not fit the model its config describes ({detail})"
            ) from None
        try:
            return cls(
                model=model,
                tokenizer=tokenizer,
                config=config,
                speakers=speakers,
                device=device,
                default_speaker=default_speaker,
            )
        except ValueError as error:  # a default speaker the speaker list lacks
            raise CheckpointError(f"{path}: {error}") from None

    @property
    def resamples_to_length(self) -> bool:
        """Whether outputs are resampled to the length model's lengths: the model has one
        (``prosody.utterance_length``) and :attr:`length_model` is on."""
        return self.length_model and self.model.utterance_length is not None

    @property
    def reads_pace_without_transcript(self) -> bool:
        """Whether :meth:`transfer` can take a reference's pace without its transcript: outputs are
        resampled to the length model's lengths and the model estimates a reference's text term from
        its mel (``prosody.spoken_length``, :mod:`prosody_vae.tts.spoken_length`)."""
        return self.resamples_to_length and self.model.spoken_length is not None

    @property
    def predicts_pitch(self) -> bool:
        """Whether the decoder predicts F0 and voicing (``backbone.pitch``): :attr:`Synthesis.f0` is set."""
        return getattr(self.model.backbone, "pitch_projection", None) is not None

    @property
    def default_vocoder(self) -> str:
        """``"world"`` for a model that predicts pitch (it renders that pitch), else ``"griffin-lim"``."""
        return "world" if self.predicts_pitch else "griffin-lim"

    @classmethod
    def from_pretrained(
        cls, *, device: str | torch.device = "cpu", vocoder: str | Path | None = None
    ) -> Synthesizer:
        """The model shipped in the package (``prosody_vae/assets/espeak_prosody.pt``, docs/pretrained.md).

        Args:
            device: where the model runs.
            vocoder: what :meth:`speak` uses, as ``--vocoder`` takes it (a built-in name or a
                TorchScript file, see :func:`prosody_vae.audio.vocoders.load_vocoder`); None: the
                default, Griffin-Lim with 32 iterations for this model.
        """
        from prosody_vae.inference.packed import builtin_model_path

        synth = cls.from_checkpoint(builtin_model_path(), device=device)
        if vocoder is not None:
            synth.vocoder = load_vocoder(vocoder, synth.audio, default=synth.default_vocoder).to(synth.device)
        return synth

    @property
    def latent_dim(self) -> int:
        return self.model.prosody.latent_dim

    @property
    def hierarchical(self) -> bool:
        """Whether the model has a high-level z_s over the z_p it decodes from (docs/hierarchical.md):
        ``transfer(via="zs")`` and ``sample(style_from=...)`` need one."""
        return self.model.hierarchical

    def _require_hierarchical(self, what: str) -> None:
        if not self.hierarchical:
            raise ValueError(f"{what} needs a hierarchical model (trained with prosody.hierarchical: true)")

    # ------------------------------------------------------------------ inputs
    def tokens(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Token ids (B, L) and lengths (B,) for a list of texts."""
        ids = [self.tokenizer.encode(t) for t in texts]
        lengths = torch.tensor([len(i) for i in ids], device=self.device)
        padded = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long, device=self.device)
        for row, seq in enumerate(ids):
            padded[row, : len(seq)] = torch.tensor(seq, device=self.device)
        return padded, lengths

    def load_reference(self, path: str | Path) -> np.ndarray:
        """Read a reference recording: (N,) float32 at the model's rate, silence trimmed.

        A file at another sample rate is resampled and a multi-channel file mixed to mono, each with
        a :class:`ReferenceNotice` warning. Raises :class:`AudioError` naming the file when it is
        missing, unreadable, silent or shorter than :data:`MIN_REFERENCE_SECONDS`.
        """
        if not Path(path).is_file():
            raise AudioError(path, "reference file not found")
        wav = load_audio(path, self.audio)  # corrupt / silent / shorter than n_fft
        info = sf.info(str(path))
        notes = []
        if info.channels > 1:
            notes.append(f"mixed {info.channels} channels to mono")
        if info.samplerate != self.audio.sample_rate:
            notes.append(f"resampled from {info.samplerate} Hz to {self.audio.sample_rate} Hz")
        if notes:
            warnings.warn(f"{path}: {', '.join(notes)}", ReferenceNotice, stacklevel=2)
        seconds = len(wav) / self.audio.sample_rate
        if seconds < MIN_REFERENCE_SECONDS:
            raise AudioError(
                path,
                f"reference is {seconds:.2f} s after trimming silence, too short to carry prosody "
                f"(at least {MIN_REFERENCE_SECONDS} s)",
            )
        return wav

    def reference_mel(self, reference: Reference) -> Tensor:
        """Log-mel (T, n_mels) of a reference: an audio file, a waveform at the model's rate, or a mel."""
        if isinstance(reference, Tensor) and reference.dim() == 2:
            return self._capped(reference, "reference mel").to(self.device)
        return self._mel(torch.from_numpy(self._reference_wav(reference)).to(self.device))

    def reference_features(self, reference: Reference) -> tuple[Tensor, Tensor | None]:
        """What the posterior reads of a reference: its log-mel (T, n_mels), and its F0 (T,) in Hz
        (:func:`prosody_vae.audio.harvest_f0`, the feature cache's default tracker) when the model reads F0
        (``prosody.reference_pitch``), else None. Such a model needs the reference as audio."""
        if not self.model.reads_reference_f0:
            return self.reference_mel(reference), None
        if isinstance(reference, Tensor) and reference.dim() == 2:
            raise ValueError(
                "this model's posterior reads the reference's F0 (prosody.reference_pitch): "
                "give the reference as audio (a file or a waveform), not as a mel"
            )
        wav = self._reference_wav(reference)
        mel = self._mel(torch.from_numpy(wav).to(self.device))  # (T, n_mels)
        f0 = torch.from_numpy(harvest_f0(wav, self.audio)).to(self.device)  # (T',) Hz, the cache's track
        f0 = torch.nn.functional.pad(f0[: mel.shape[0]], (0, max(0, mel.shape[0] - f0.shape[0])))
        return mel, f0

    def _reference_wav(self, reference: str | Path | np.ndarray | Tensor) -> np.ndarray:
        """(N,) float32 samples of a reference file or waveform, capped at MAX_REFERENCE_SECONDS."""
        if isinstance(reference, str | Path):
            wav = self._capped(self.load_reference(reference), reference)
        else:
            if isinstance(reference, Tensor):
                reference = reference.detach().cpu().numpy()
            wav = self._capped(np.asarray(reference, dtype=np.float32), "reference waveform")
        return np.ascontiguousarray(wav, dtype=np.float32)

    def _capped(self, reference: np.ndarray | Tensor, source: object) -> np.ndarray | Tensor:
        """The first :data:`MAX_REFERENCE_SECONDS` of a waveform (N,) or a log-mel (T, n_mels), with a
        :class:`ReferenceNotice` when the reference was longer."""
        is_mel = reference.ndim == 2
        rate = self.audio.sample_rate / (self.audio.hop_length if is_mel else 1)  # frames or samples per s
        limit = int(MAX_REFERENCE_SECONDS * rate)
        if reference.shape[0] <= limit:
            return reference
        warnings.warn(
            f"{source}: reference is {reference.shape[0] / rate:.1f} s; the posterior reads its first "
            f"{MAX_REFERENCE_SECONDS:g} s",
            ReferenceNotice,
            stacklevel=3,
        )
        return reference[:limit]

    def resolve_speaker(self, speaker: str | None) -> str | None:
        """``speaker``, or the model's :attr:`default_speaker` when it is None."""
        return self.default_speaker if speaker is None else speaker

    def speaker_ids(self, speaker: str | None, n: int) -> Tensor | None:
        """Speaker ids (n,) for multi-speaker models, None for single-speaker ones; ``speaker`` None
        is the model's :attr:`default_speaker` when it has one."""
        speaker = self.resolve_speaker(speaker)
        if speaker is not None and speaker not in self.speakers:
            raise ValueError(f"unknown speaker {speaker!r}; this model knows {self.speakers}")
        if self.model.speaker_embedding is None:
            return None
        if speaker is None:
            raise ValueError(f"this model is multi-speaker: pass a speaker, one of {self.speakers}")
        return torch.full((n,), self.speakers.index(speaker), dtype=torch.long, device=self.device)

    @property
    def speaker_optional(self) -> bool:
        """Whether a reference's voice may be left unknown (multi-speaker models trained with
        ``prosody.speaker_dropout``: a learned unknown-speaker vector stands in for it)."""
        return self.model.speaker_embedding is not None and self.model.prosody.speaker_optional

    @property
    def transcript_optional(self) -> bool:
        """Whether references may come without a transcript: the model reads none, or was trained with
        ``prosody.text_summary_dropout`` (a learned null summary stands in for an absent one)."""
        return not self.model.uses_text_summary or self.model.prosody.text_optional

    def _reference_speaker_ids(self, names: Sequence[str | None]) -> Tensor | None:
        """The posterior's speaker ids (B,) of references spoken by ``names`` (None: a voice not in the
        model's table, :data:`~prosody_vae.tts.model.UNKNOWN_SPEAKER`); None for single-speaker models."""
        if self.model.speaker_embedding is None:
            for name in names:
                self.speaker_ids(name, 1)  # a name this model does not know is still an error
            return None
        ids = []
        for name in names:
            if name is None and not self.speaker_optional:
                raise ValueError(
                    "this model needs the voice of each reference, one of "
                    f"{self.speakers} (it was trained without prosody.speaker_dropout)"
                )
            ids.append(UNKNOWN_SPEAKER if name is None else self.speakers.index(self._known(name)))
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def _reference_voice(self, speaker: str | None, voice_f0: float | None) -> str | None:
        """The voice a reference is read as: ``speaker``, or a packed model's :attr:`default_speaker`
        when neither the reference's voice nor its voice's mean F0 is given (other voices: name
        them, or give their mean F0)."""
        if speaker is None and voice_f0 is None:
            return self.default_speaker
        return speaker

    def _known(self, speaker: str) -> str:
        if speaker not in self.speakers:
            raise ValueError(f"unknown speaker {speaker!r}; this model knows {self.speakers}")
        return speaker

    # ------------------------------------------------------------------ prosody
    @torch.no_grad()
    def embed(
        self,
        reference: Reference,
        *,
        reference_text: str | None = None,
        speaker: str | None = None,
        voice_f0: float | None = None,
        sample: bool = False,
    ) -> ProsodyOutput | HierarchicalOutput:
        """Posterior over z for one reference: a ProsodyOutput with batch size 1 (a
        HierarchicalOutput, with z_s, for a hierarchical model).

        Args:
            reference: an audio file, a waveform at the model's rate, or a log-mel (T, n_mels).
            reference_text: its transcript. None (or empty) embeds it without one, which a model
                trained with ``prosody.text_summary_dropout`` does with its learned null summary; a
                model trained without raises a ``ValueError`` that names the reference.
            speaker: the voice that spoke the reference (multi-speaker models), a name of
                :attr:`speakers`; None for a voice outside them, which a model trained with
                ``prosody.speaker_dropout`` reads as "unknown" and a model trained without refuses.
            voice_f0: the mean F0 (Hz) of the voice that spoke the reference (:meth:`voice_f0`), for a
                model that reads the reference's F0 relative to its voice (:attr:`reads_relative_f0`);
                None: the table's entry of a training ``speaker``, else the reference's own mean.
                Refused by other models.
            sample: a draw from the posterior instead of its mean.
        """
        self._check_transcript(reference, reference_text)
        mel, f0 = self.reference_features(reference)
        return self._embed_features(mel, f0, reference_text, speaker, voice_f0, sample)

    def _check_transcript(self, reference: Reference, reference_text: str | None) -> None:
        """A ``ValueError`` naming the reference when it has no transcript and the model needs one."""
        if not reference_text and not self.transcript_optional:
            what = str(reference) if isinstance(reference, str | Path) else "reference"
            raise ValueError(transcript_required(what))

    def _embed_features(
        self,
        mel: Tensor,
        f0: Tensor | None,
        reference_text: str | None,
        speaker: str | None,
        voice_f0: float | None,
        sample: bool,
    ) -> ProsodyOutput | HierarchicalOutput:
        """:meth:`embed` of one reference's :meth:`reference_features`."""
        return self.embed_batch(
            [mel],
            texts=[reference_text],
            speakers=[speaker],
            f0s=None if f0 is None else [f0],
            voice_f0s=[voice_f0],
            sample=sample,
        )

    @torch.no_grad()
    def embed_batch(
        self,
        mels: Sequence[Tensor],
        *,
        texts: Sequence[str | None] | None = None,
        speakers: Sequence[str | None] | None = None,
        f0s: Sequence[Tensor] | None = None,
        voice_f0s: Sequence[float | None] | None = None,
        sample: bool = False,
    ) -> ProsodyOutput | HierarchicalOutput:
        """Posterior over z for several reference mels, each (T_i, n_mels): outputs with B = len(mels).

        ``texts`` and ``speakers`` are per reference, as ``reference_text`` and ``speaker`` of
        :meth:`embed` (None entries: no transcript, a voice outside the model's speakers); ``f0s``
        their F0 tracks (T_i,) in Hz, which a model with ``prosody.reference_pitch`` needs (see
        :meth:`reference_features`) and any other model ignores, so a caller may pass what
        :meth:`reference_features` gave (None entries included). ``voice_f0s`` are the references'
        voice means in Hz (None entries: not given), as ``voice_f0`` of :meth:`embed`. The mels are zero-padded to one batch; the reference encoder
        reads only each item's valid frames, so the result does not depend on what else is in the batch.
        """
        if not mels:
            raise ValueError("no reference to embed")
        lengths = torch.tensor([m.shape[0] for m in mels], device=self.device)
        batch = pad_sequence([m.to(self.device) for m in mels], batch_first=True)  # (B, T, n_mels)
        f0 = None
        if self.model.reads_reference_f0:
            if (
                f0s is None
                or len(f0s) != len(mels)
                or any(f.shape[0] != m.shape[0] for f, m in zip(f0s, mels, strict=False))
            ):
                raise ValueError(
                    "this model's posterior reads the reference's F0 (prosody.reference_pitch): pass f0s, "
                    "one (T_i,) track per mel (Synthesizer.reference_features gives both)"
                )
            f0 = pad_sequence([f.to(self.device, torch.float32) for f in f0s], batch_first=True)  # (B, T)
        tokens = token_lengths = None
        if self.model.uses_text_summary:
            given = [t or None for t in texts] if texts is not None else [None] * len(mels)
            if len(given) != len(mels):
                raise ValueError(f"texts has {len(given)} entries for {len(mels)} references")
            missing = [i for i, t in enumerate(given) if t is None]
            if missing and not self.model.prosody.text_optional:
                raise ValueError(transcript_required(f"reference {missing[0]}"))
            if len(missing) < len(given):
                # an absent transcript is 0 tokens: the model's null summary stands in for it
                ids = [[] if t is None else self.tokenizer.encode(t) for t in given]
                token_lengths = torch.tensor([len(i) for i in ids], device=self.device)
                tokens = torch.zeros(len(ids), int(token_lengths.max()), dtype=torch.long, device=self.device)
                for row, seq in enumerate(ids):
                    tokens[row, : len(seq)] = torch.tensor(seq, dtype=torch.long, device=self.device)
        names = list(speakers) if speakers is not None else [None] * len(mels)
        means = list(voice_f0s) if voice_f0s is not None else [None] * len(mels)
        if len(means) == len(names):
            names = [self._reference_voice(name, mean) for name, mean in zip(names, means, strict=True)]
        speaker_ids = self._reference_speaker_ids(names)
        return self.model.encode_prosody(
            batch,
            lengths,
            tokens=tokens,
            token_lengths=token_lengths,
            speakers=speaker_ids,
            f0=f0,
            voice_f0=self._voice_f0_tensor(voice_f0s, len(mels)),
            sample=sample,
        )

    @property
    def reads_relative_f0(self) -> bool:
        """Whether the posterior reads the reference's F0 relative to its voice's mean
        (``prosody.reference_pitch_relative``): a reference from a voice outside :attr:`speakers` is
        then best given with that voice's mean F0 (:meth:`voice_f0`)."""
        return self.model.voice_pitch is not None

    def voice_f0(self, clips: Sequence[Reference]) -> float:
        """Mean F0 (Hz, geometric, over voiced frames) of recordings of one voice: the ``voice_f0`` of
        a reference from that voice. The F0 tracker is the one the posterior reads (Harvest)."""
        if not clips:
            raise ValueError("voice_f0 needs at least one recording of the voice")
        tracks = []
        for clip in clips:
            track = torch.from_numpy(harvest_f0(self._reference_wav(clip), self.audio))
            if not bool((track > 0).any()):
                what = str(clip) if isinstance(clip, str | Path) else "recording"
                raise ValueError(f"{what}: no voiced frame, so it tells nothing of the voice's pitch")
            tracks.append(track)
        return mean_f0_hz(tracks)

    def _voice_f0_tensor(self, voice_f0s: Sequence[float | None] | None, n: int) -> Tensor | None:
        """(n,) voice means in Hz (0 where not given) for the model, or None when none is given."""
        if voice_f0s is None or all(v is None for v in voice_f0s):
            return None
        if len(voice_f0s) != n:
            raise ValueError(f"voice_f0s has {len(voice_f0s)} entries for {n} references")
        if not self.reads_relative_f0:
            raise ValueError(
                "this model does not read the reference's F0 relative to its voice "
                "(prosody.reference_pitch_relative): a voice's mean F0 means nothing to it"
            )
        for value in voice_f0s:
            if value is not None and not (math.isfinite(value) and 30.0 <= value <= 1000.0):
                raise ValueError(f"a voice's mean F0 must lie in [30, 1000] Hz, got {value}")
        values = [0.0 if v is None else float(v) for v in voice_f0s]
        return torch.tensor(values, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def latent_activity(
        self,
        mels: Sequence[Tensor],
        *,
        texts: Sequence[str | None] | None = None,
        speakers: Sequence[str | None] | None = None,
        f0s: Sequence[Tensor] | None = None,
        batch_size: int = 16,
    ) -> Tensor:
        """Mean KL(q || p) per latent dimension over a set of references: (D,) nats.

        A dimension the posterior never moves away from the prior costs no KL and carries no
        prosody; the sum is the average KL per utterance that training holds at C.
        """
        kl = []
        for start in range(0, len(mels), batch_size):
            end = start + batch_size
            out = self.embed_batch(
                mels[start:end],
                texts=None if texts is None else texts[start:end],
                speakers=None if speakers is None else speakers[start:end],
                f0s=None if f0s is None else f0s[start:end],
            )
            kl.append(out.kl_p_per_dim if self.hierarchical else out.kl_per_dim)  # z_p's, what is decoded
        if not kl:
            raise ValueError("latent activity needs at least one reference")
        return kl_per_dimension_summary(torch.cat(kl))

    # ------------------------------------------------------------------ synthesis
    @torch.no_grad()
    def synthesize(
        self,
        texts: list[str],
        z: Tensor,
        *,
        speaker: str | None = None,
        max_steps: int | None = None,
        length_scale: Tensor | None = None,
    ) -> list[Synthesis]:
        """Mels for texts (B) with latents z (B, D); returns a list of :class:`Synthesis`.

        ``length_scale`` (B,) multiplies the length model's length of each text (every piece of it),
        for a model whose outputs are resampled to it (:attr:`resamples_to_length`): what
        :meth:`transfer` with the reference's timing passes.

        Work is bounded whatever the input (:mod:`prosody_vae.inference.pieces`): a text longer than
        ``MAX_PIECE_CHARACTERS`` is split at sentence ends and spoken piece by piece with the same z,
        the pieces joined with a short pause (mel and F0 stay aligned); pieces are decoded
        ``PIECES_PER_BATCH`` at a time; and each piece's decoder stops after ``MAX_DECODER_SECONDS``
        of audio at most. ``max_steps`` (decoder steps per piece) may lower that cap, not raise it.
        """
        cap = decoder_step_cap(self.audio, self.model.backbone.r)
        if max_steps is not None and not 1 <= max_steps <= cap:
            raise ValueError(
                f"max_steps must lie in [1, {cap}] ({MAX_DECODER_SECONDS:g} s of audio), got {max_steps}"
            )
        if len(texts) != z.shape[0]:
            raise ValueError(f"{len(texts)} text(s) but {z.shape[0]} latent(s)")
        if length_scale is not None:
            self.check_timing("reference")
            if length_scale.shape != (len(texts),):
                raise ValueError(
                    f"length_scale must have shape ({len(texts)},), got {tuple(length_scale.shape)}"
                )
        pieces, owners = split_pieces(texts)
        if len(pieces) > PIECES_PER_BATCH:
            self.tokens(pieces)  # every piece readable (TextError) before hours of decoding
        decoded: list[Synthesis] = []
        for start in range(0, len(pieces), PIECES_PER_BATCH):
            part = slice(start, start + PIECES_PER_BATCH)
            rows = torch.tensor(owners[part], device=z.device)
            scale = None if length_scale is None else length_scale.to(z.device)[rows]
            decoded += self._synthesize_batch(pieces[part], z[rows], speaker, max_steps, cap, scale)
        pause = round(PAUSE_SECONDS * self.audio.sample_rate / self.audio.hop_length)
        return join_pieces(
            decoded, owners, len(texts), pause_frames=pause, floor=math.log(self.audio.log_floor)
        )

    def _synthesize_batch(
        self,
        texts: list[str],
        z: Tensor,
        speaker: str | None,
        max_steps: int | None,
        cap: int,
        length_scale: Tensor | None = None,
    ) -> list[Synthesis]:
        """One decoder batch of :meth:`synthesize`: texts (B) with latents z (B, D), the length
        model's lengths multiplied by ``length_scale`` (B,) when given."""
        tokens, lengths = self.tokens(texts)
        if max_steps is None:
            # generous: about 12 frames per token at r = 1, well past any real utterance of the corpus
            max_steps = min(int(lengths.max()) * 12 // self.model.backbone.r + 20, cap)
        speakers = self.speaker_ids(speaker, len(texts))
        latents = z.to(self.device)
        out = self.model.infer(
            tokens,
            lengths,
            latents,
            speakers=speakers,
            max_steps=max_steps,
            reduced_precision=reduced_precision(self.precision, self.device),
        )
        r = self.model.backbone.r
        steps = self.model.backbone.decoder_lengths(out.mel_lengths)
        # the predicted F0 track, its one- or two-frame onset jumps removed (see smooth_f0)
        f0 = (
            None
            if getattr(out, "pitch", None) is None
            else smooth_f0(decode_pitch(out.pitch, out.mel_lengths))
        )
        predicted = (
            self.model.predicted_frames(tokens, lengths, latents, speakers=speakers)
            if self.resamples_to_length
            else None
        )
        if predicted is not None and length_scale is not None:
            predicted = predicted * length_scale.to(predicted.dtype)
        decoded = []
        for i in range(len(texts)):
            synthesis = Synthesis(
                mel=out.mel_post[i, : int(out.mel_lengths[i])],
                alignment=out.alignments[i, : int(steps[i]), : int(lengths[i])],
                z=z[i],
                stopped=int(out.mel_lengths[i]) < max_steps * r,
                f0=None if f0 is None else f0[i, : int(out.mel_lengths[i])],
            )
            if predicted is not None and synthesis.stopped:  # an unstopped output has no length to correct
                frames = stretched_length(synthesis.mel.shape[0], float(predicted[i]))
                synthesis = stretch(synthesis, frames, r=r)
            decoded.append(synthesis)
        return decoded

    def transfer(
        self,
        text: str,
        reference: Reference,
        *,
        reference_text: str | None = None,
        speaker: str | None = None,
        reference_speaker: str | None = None,
        reference_voice_f0: float | None = None,
        sample: bool = False,
        via: Literal["zp", "zs"] = "zp",
        temperature: float = 1.0,
        pitch_level: Literal["target", "reference"] = "target",
        timing: Literal["auto", "z", "reference"] = "auto",
    ) -> Synthesis:
        """Speak ``text`` with the prosody of ``reference`` (posterior mean unless ``sample``).

        Args:
            text: what to say.
            reference: an audio file, a waveform at the model's rate, or a log-mel (T, n_mels).
            reference_text: the reference's transcript, or None to embed it without one (a model
                trained with ``prosody.text_summary_dropout``; others raise a ``ValueError``). A
                ``<name>.txt`` beside the file is not read here: :meth:`speak` and the command line do.
            speaker: the target voice, one of :attr:`speakers` (multi-speaker models).
            reference_speaker: the voice that spoke the reference, when it is one of :attr:`speakers`;
                None for any other voice. The posterior reads this voice and the decoder ``speaker``,
                so the reference's prosody relative to its own voice is rendered in the target voice's
                range (see :mod:`prosody_vae.tts.model`). With None, a model trained with
                ``prosody.speaker_dropout`` uses its learned unknown-speaker vector; a model trained
                without has none, and is given the target voice instead (it then reads the reference
                as if the target voice had spoken it, as the reference implementation always does).
            reference_voice_f0: the mean F0 (Hz) of the reference's voice, for a model that reads F0
                relative to the voice (:attr:`reads_relative_f0`, :meth:`voice_f0`); see :meth:`embed`.
            sample: a draw from the posterior instead of its mean.
            via: for a hierarchical model, ``"zp"`` transfers the z_p the reference gives (all of its
                prosody the model holds, up to C_s + C_p nats); ``"zs"`` keeps only its high-level
                z_s (up to C_s nats) and draws z_p from p(z_p | z_s). A flat model takes ``"zp"`` only.
            temperature: with ``via="zs"``, scales the spread of p(z_p | z_s) (0: its mean).
            pitch_level: ``"target"`` (default) renders the reference's pitch relative to its own voice
                in the target voice's register: a low reference for its voice gives a low output for
                the target voice, and the target keeps its identity (Capacitron's V+T+S). ``"reference"``
                then multiplies the output's F0 track by the ratio of the reference voice's mean F0 to
                the target voice's, so the output speaks at the reference's own pitch in the target's
                timbre (what Capacitron's V+T does, which copies the reference speaker's pitch). The
                reference voice's mean is the one the posterior reads: ``reference_voice_f0``, else the
                table's entry of ``reference_speaker``, else the reference's own mean. Needs a
                multi-speaker model that predicts F0 (``backbone.pitch``) and reads the reference's
                F0 relative to its voice (:attr:`reads_relative_f0`).
            timing: how long the output lasts, for a model with a length model
                (:attr:`resamples_to_length`). ``"z"``: the length model's length for ``text`` with z
                in the target voice, the speaking rate z carries (Capacitron carries timing in z
                alone). ``"reference"``: that length times the ratio of the reference's own length to
                the length model's length for the reference's transcript with the same z in the
                reference's voice (:meth:`reference_length_scale`): the reference's measured pace,
                relative to its voice, on the output's sentence. z also holds part of its own
                sentence's timing, which an inter-text transfer carries over as noise
                (docs/transfer.md); the ratio leaves it out, as z's terms cancel in it (a deviation
                from Capacitron; measured there: the cross-voice rate r rises in every group). It
                needs a reference read whole (not cut at :data:`MAX_REFERENCE_SECONDS`) and
                ``reference_text``, or, without it, a model that estimates the transcript's share
                from the audio (:attr:`reads_pace_without_transcript`). ``"auto"`` (default):
                ``"reference"`` where it can run, else ``"z"``.
        """
        if via not in ("zp", "zs"):
            raise ValueError(f"via must be 'zp' or 'zs', got {via!r}")
        if via == "zs":
            self._require_hierarchical("transfer via z_s")
        self.check_pitch_level(pitch_level)
        self.check_timing(timing)
        if timing == "reference" and not reference_text and not self.reads_pace_without_transcript:
            raise ValueError(
                f"{reference if isinstance(reference, str | Path) else 'reference'}: timing 'reference' "
                "compares the reference's length with its transcript's: pass reference_text (or use a "
                "model that estimates it from the audio, prosody.spoken_length)"
            )
        speaker = self.resolve_speaker(speaker)
        if reference_speaker is None and not self.speaker_optional:
            reference_speaker = speaker
        self._check_transcript(reference, reference_text)
        mel, f0 = self.reference_features(reference)
        posterior = self._embed_features(
            mel, f0, reference_text, reference_speaker, reference_voice_f0, sample
        )
        z = posterior.z if via == "zp" else self.model.prosody.sample_low(posterior.z_s, temperature)
        if timing == "auto":  # a reference cut short has no length to compare with its transcript's
            paced = bool(reference_text) or self.reads_pace_without_transcript
            reference_timing = self.resamples_to_length and paced and not self._cut(mel.shape[0])
            timing = "reference" if reference_timing else "z"
        scale = (
            self.reference_length_scale(
                mel.shape[0], reference_text or None, z, reference_speaker, reference_mel=mel
            )
            if timing == "reference"
            else None
        )
        synthesis = self.synthesize([text], z, speaker=speaker, length_scale=scale)[0]
        if pitch_level == "target":
            return synthesis
        reference_hz = self.model.voice_pitch.voice_hz(
            f0.unsqueeze(0),
            torch.tensor([f0.shape[0]], device=f0.device),
            self._reference_speaker_ids([self._reference_voice(reference_speaker, reference_voice_f0)]),
            self._voice_f0_tensor([reference_voice_f0], 1),
        )
        target_hz = self.model.voice_pitch.voice_f0_hz[self.speakers.index(speaker)]
        ratio = (reference_hz[0] / target_hz).to(synthesis.f0.dtype)
        return replace(synthesis, f0=synthesis.f0 * ratio)  # unvoiced frames stay 0

    def check_timing(self, timing: str) -> None:
        """A ``ValueError`` when :meth:`transfer` cannot take ``timing`` with this model."""
        if timing not in ("auto", "z", "reference"):
            raise ValueError(f"timing must be 'auto', 'z' or 'reference', got {timing!r}")
        if timing == "reference" and not self.resamples_to_length:
            raise ValueError(
                "timing 'reference' scales the length model's length: it needs a model with one "
                "(prosody.utterance_length) and the length model on (Synthesizer.length_model)"
            )

    def _cut(self, reference_frames: int) -> bool:
        """Whether a reference mel of this many frames is one cut at :data:`MAX_REFERENCE_SECONDS`."""
        limit = int(MAX_REFERENCE_SECONDS * self.audio.sample_rate / self.audio.hop_length)
        return reference_frames >= limit

    @torch.no_grad()
    def reference_length_scale(
        self,
        reference_frames: int,
        reference_text: str | None,
        z: Tensor,
        reference_speaker: str | None,
        *,
        reference_mel: Tensor | None = None,
    ) -> Tensor:
        """(1,) the reference's length over the length model's length for its transcript with latent z
        (1, D) in its voice: how much slower (> 1) or faster the reference is than the length model,
        given z, expects. In a voice outside the table the length model's voice term is unknown,
        so its length is the geometric mean over the table's voices.

        Without a transcript (``reference_text`` None), the transcript's share of that length is
        estimated from the reference's log-mel ``reference_mel`` (T, n_mels) by the model's
        spoken-length head (:attr:`reads_pace_without_transcript`,
        :mod:`prosody_vae.tts.spoken_length`); a model without one raises a ``ValueError``.

        The length model is log T = log sum_l d(token_l) + v_z . z + v_s . s + b (linear in [z, s]), so
        multiplying the output's length by this ratio gives log T_out = log sum d(out tokens) +
        [log T_ref - log sum d(ref tokens) - v_s . s_ref] + v_s . s_target: z's terms cancel, and the
        output takes the reference's pace relative to its voice.
        """
        self.check_timing("reference")
        if self._cut(reference_frames):
            raise ValueError(
                f"timing 'reference' needs the whole reference: it was cut at {MAX_REFERENCE_SECONDS:g} s, "
                "shorter than its transcript"
            )
        if reference_text is None and not (self.reads_pace_without_transcript and reference_mel is not None):
            raise ValueError(
                "timing 'reference' without the reference's transcript needs a model that estimates it "
                "from the audio (prosody.spoken_length) and the reference's mel"
            )
        if not self.speakers:
            speakers = None
        elif reference_speaker is not None and reference_speaker in self.speakers:
            speakers = self.speaker_ids(reference_speaker, 1)
        else:  # an unknown voice: every voice of the table, geometric mean below
            speakers = torch.arange(len(self.speakers), device=self.device)
        n = 1 if speakers is None else speakers.shape[0]
        latents = z.to(self.device).expand(n, -1)
        if reference_text is None:
            mel = reference_mel.to(self.device)
            frames = torch.tensor([mel.shape[0]], device=self.device)
            predicted = self.model.spoken_frames(
                mel[None].expand(n, -1, -1), frames.expand(n), latents, speakers=speakers
            )
        else:
            tokens, lengths = self.tokens([reference_text])
            predicted = self.model.predicted_frames(
                tokens.expand(n, -1), lengths.expand(n), latents, speakers=speakers
            )
        return (reference_frames / torch.exp(torch.log(predicted).mean())).reshape(1).to(z.device)

    def check_pitch_level(self, pitch_level: str) -> None:
        """A ``ValueError`` when :meth:`transfer` cannot take ``pitch_level`` with this model."""
        if pitch_level not in ("target", "reference"):
            raise ValueError(f"pitch_level must be 'target' or 'reference', got {pitch_level!r}")
        if pitch_level == "target":
            return
        if not self.reads_relative_f0 or self.model.speaker_embedding is None:
            raise ValueError(
                "pitch_level 'reference' moves the output to the reference voice's pitch: it needs a "
                "multi-speaker model that reads the reference's F0 relative to its voice "
                "(prosody.reference_pitch_relative)"
            )
        if not self.predicts_pitch:
            raise ValueError(
                "pitch_level 'reference' moves the predicted F0 track: it needs a model that predicts "
                "F0 (backbone.pitch)"
            )

    def speak(
        self,
        text: str,
        reference: Reference,
        *,
        reference_text: str | None = None,
        speaker: str | None = None,
        reference_speaker: str | None = None,
        reference_voice_f0: float | None = None,
        sample: bool = False,
        via: Literal["zp", "zs"] = "zp",
        pitch_level: Literal["target", "reference"] = "target",
        timing: Literal["auto", "z", "reference"] = "auto",
    ) -> Speech:
        """``text`` spoken with the prosody of ``reference``, as audio: :meth:`transfer`, then :attr:`vocoder`.

        ``reference`` is an audio file, a waveform at the model's rate or a log-mel (T, n_mels). A
        model with a text summary reads the reference's transcript: ``reference_text``, or for a file
        the text of ``<name>.txt`` beside it; without either, a model trained with
        ``prosody.text_summary_dropout`` embeds the reference without one, and any other raises a
        ``ValueError`` naming the file. ``speaker``, ``reference_speaker`` and ``reference_voice_f0`` are
        the target voice, the reference's voice and its mean F0, ``via`` what a hierarchical model transfers
        ``pitch_level`` whose register the output speaks in and ``timing`` how long it lasts, as for :meth:`transfer`. Returns a :class:`~prosody_vae.inference.api.Speech`
        (``waveform`` (N,), ``sample_rate``, ``synthesis``, ``save(path)``).
        """
        if reference_text is None and self.model.uses_text_summary and isinstance(reference, str | Path):
            reference_text = transcript_beside(reference)
        synthesis = self.transfer(
            text,
            reference,
            reference_text=reference_text,
            speaker=speaker,
            reference_speaker=reference_speaker,
            reference_voice_f0=reference_voice_f0,
            sample=sample,
            via=via,
            pitch_level=pitch_level,
            timing=timing,
        )
        if self.vocoder is None:
            self.vocoder = load_vocoder(None, self.audio, default=self.default_vocoder).to(self.device)
        waveform = vocode(self.vocoder, synthesis.mel, synthesis.f0)
        return Speech(
            waveform=waveform.float().cpu().numpy(), sample_rate=self.audio.sample_rate, synthesis=synthesis
        )

    def sample(
        self,
        text: str,
        n: int,
        *,
        temperature: float = 1.0,
        speaker: str | None = None,
        style_from: Reference | None = None,
        style_text: str | None = None,
        style_speaker: str | None = None,
    ) -> list[Synthesis]:
        """``n`` renditions of ``text`` with prosody drawn from the prior (scaled by ``temperature``).

        With ``style_from`` (a reference, as :meth:`transfer` takes one; hierarchical models only),
        the renditions share that reference's high-level z_s (its posterior mean) and draw z_p from
        p(z_p | z_s): the style is fixed, the rest varies. ``style_text`` and ``style_speaker`` are
        its transcript and voice, as ``reference_text`` and ``reference_speaker`` of :meth:`transfer`.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if style_from is None:
            z = self.model.prosody.sample_prior(n, temperature=temperature)
        else:
            self._require_hierarchical("sampling with the style of a reference")
            if style_speaker is None and not self.speaker_optional:
                style_speaker = self.resolve_speaker(speaker)
            z_s = self.embed(style_from, reference_text=style_text, speaker=style_speaker).z_s  # (1, D_s)
            z = self.model.prosody.sample_low(z_s.expand(n, -1), temperature=temperature)  # (n, D_p)
        return self.synthesize([text] * n, z, speaker=speaker)

    def interpolate(
        self,
        text: str,
        start: Reference,
        end: Reference,
        *,
        steps: int = 5,
        method: Literal["linear", "slerp"] = "linear",
        start_text: str | None = None,
        end_text: str | None = None,
        speaker: str | None = None,
    ) -> list[Synthesis]:
        """``text`` spoken ``steps`` times, prosody moving from ``start``'s posterior mean to ``end``'s.

        Both ends are included, so the first and last outputs are the two transfers.
        """
        a = self.embed(start, reference_text=start_text, speaker=speaker).mean[0]  # (D,)
        b = self.embed(end, reference_text=end_text, speaker=speaker).mean[0]
        z = interpolation_path(a, b, steps, method)  # (steps, D)
        return self.synthesize([text] * steps, z, speaker=speaker)

    def traverse(
        self,
        text: str,
        dimension: int,
        values: Sequence[float],
        *,
        reference: Reference | None = None,
        reference_text: str | None = None,
        speaker: str | None = None,
    ) -> list[Synthesis]:
        """``text`` spoken once per value, moving latent ``dimension`` and holding the others.

        The base point is ``reference``'s posterior mean, or the prior mean (zero) without one; each
        output adds ``value`` to the base's coordinate ``dimension``. Under the N(0, I) prior the
        values read as prior standard deviations. Pick the dimension by activity with
        :meth:`latent_activity` and :func:`prosody_vae.prosody.bounds.dimensions_by_activity`.
        """
        if not 0 <= dimension < self.latent_dim:
            raise ValueError(f"dimension must lie in [0, {self.latent_dim}), got {dimension}")
        if not values:
            raise ValueError("traverse needs at least one value")
        if reference is None:
            base = torch.zeros(self.latent_dim, device=self.device)
        else:
            base = self.embed(reference, reference_text=reference_text, speaker=speaker).mean[0]
        z = base.repeat(len(values), 1)  # (n, D)
        z[:, dimension] += torch.tensor([float(v) for v in values], device=self.device)
        return self.synthesize([text] * len(values), z, speaker=speaker)

    # ------------------------------------------------------------------ associative (ACN) prior
    def _associative_prior(self, what: str) -> AssociativePrior:
        """The model's prior, for the operations only the associative prior has (its code bank)."""
        prior = self.model.prosody.prior
        if not isinstance(prior, AssociativePrior):
            raise ValueError(
                f"{what} needs a model trained with the associative prior (prosody.prior: associative); "
                f"this model's prior is {type(prior).__name__}"
            )
        return prior

    def sample_near(
        self,
        text: str,
        reference: Reference,
        n: int,
        *,
        temperature: float = 1.0,
        reference_text: str | None = None,
        speaker: str | None = None,
    ) -> list[Synthesis]:
        """``n`` variations around a reference: z ~ p(z | c) with c the reference's posterior mean.

        ACN models only. ``temperature`` scales the prior's spread (0 gives p(z | c)'s mean, n times).
        """
        prior = self._associative_prior("sample_near")
        code = self.embed(reference, reference_text=reference_text, speaker=speaker).mean[0]  # (D,)
        z = prior.sample_near(code, n, temperature)  # (n, D)
        return self.synthesize([text] * n, z, speaker=speaker)

    def walk(
        self,
        text: str,
        steps: int,
        *,
        reference: Reference | None = None,
        start: Tensor | None = None,
        temperature: float = 1.0,
        reference_text: str | None = None,
        speaker: str | None = None,
    ) -> list[Synthesis]:
        """ACN's ancestral walk: ``text`` spoken ``steps`` times, z_t ~ p(z | c_t), each next c a
        random one of z_t's K nearest training codes (:meth:`AssociativePrior.ancestral_walk`).

        Starts from ``reference``'s posterior mean, or the code ``start`` (D,), or, with neither, a
        training code drawn at random. ACN models only.
        """
        prior = self._associative_prior("walk")
        if reference is not None and start is not None:
            raise ValueError("walk starts from a reference or from a code, not both")
        if reference is not None:
            code = self.embed(reference, reference_text=reference_text, speaker=speaker).mean[0]
        elif start is not None:
            if start.shape != (self.latent_dim,):
                raise ValueError(
                    f"start must be a code of shape ({self.latent_dim},), got {tuple(start.shape)}"
                )
            code = start.to(self.device)
        else:
            code = prior.random_code()
        z = prior.ancestral_walk(code, steps, temperature)  # (steps, D)
        return self.synthesize([text] * steps, z, speaker=speaker)
