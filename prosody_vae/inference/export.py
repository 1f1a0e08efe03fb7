"""Export the prosody encoder (reference encoder + posterior) for production embedding extraction.

``export_prosody_encoder(model, path, audio=...)`` writes a self-contained file that maps reference
log-mels to the posterior ``(mean, std)``; at inference ``z = mean`` (what ``CapacitronVAE.encode``
returns in eval mode). Two formats:

* **TorchScript** (default): load with ``torch.jit.load(path)`` and call
  ``module(mel (B, T, n_mels), lengths (B,))``; models whose posterior reads the reference transcript
  also take ``tokens=(B, L) long`` and ``token_lengths=(B,)``, multi-speaker models ``speakers=(B,)``
  ids (the token-embedding table and the speaker table are inside the file; ``-1`` for a voice
  outside the table when the model has an unknown-voice vector), and models whose posterior reads
  the reference's F0 ``f0=(B, T)`` in Hz on the mel's frames (the caller runs the F0 tracker, which
  is not a torch operation: :func:`prosody_vae.audio.harvest_f0`) and, when it reads F0 relative to
  the voice, ``voice_f0=(B,)``, each reference voice's mean F0 in Hz (the training voices' are in the
  metadata, ``voice_f0_hz``). The module checks its
  inputs and carries the audio parameters as attributes (``module.sample_rate``, ``module.n_mels``,
  ...) and as ``prosody_vae.json`` inside the archive (:func:`read_export_metadata`), so a user can
  check that their mels are computed the way the model's were.
* **ONNX** (needs the optional ``[onnx]`` extra: ``onnx``, and ``onnxruntime`` to run it): the same
  graph through torch's TorchScript-based ONNX exporter (opset 17, dynamic batch, frames and tokens;
  the newer ``torch.export``-based exporter unrolls RNNs over time, so it cannot); inputs ``mel``,
  ``lengths`` (``tokens``, ``token_lengths``, ``speakers`` where the model needs them), outputs
  ``mean``, ``std``; the metadata is stored in the model's ``metadata_props``.

The exported graph is a trace of the eager modules themselves (``CapacitronVAE.posterior_of``: the
reference encoder, the text summary and the posterior head), so there is one code path for both. Those
modules are written to trace as they are: their RNNs run over the padded batch and are read at each
item's last valid step (no packing, which is data-dependent), and their host-side length checks are
skipped while tracing; :class:`_CheckedEncoder`, the scripted front of the TorchScript file, checks the
inputs instead. ``tests/test_export.py`` checks the exported embedding against the eager module on a
padded batch.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from prosody_vae.audio import AudioConfig
from prosody_vae.prosody.vae import CapacitronVAE
from prosody_vae.tts.voice_pitch import VoicePitch

__all__ = [
    "FORMATS",
    "ExportedEncoderError",
    "export_checkpoint",
    "export_prosody_encoder",
    "read_export_metadata",
]

FORMATS = ("torchscript", "onnx")
METADATA_NAME = "prosody_vae.json"


class ExportedEncoderError(ValueError):
    """An export cannot be written (unsupported model, missing optional dependency) or read."""


class _EncoderGraph(nn.Module):
    """The traceable core: mel (+ tokens, speakers, F0) -> (mean, std), eval mode, no host syncs."""

    def __init__(
        self,
        prosody: CapacitronVAE,
        token_embedding: nn.Module | None,
        speaker_embedding: nn.Module | None,
        *,
        voice_pitch: VoicePitch | None = None,
    ):
        super().__init__()
        self.prosody = prosody
        self.token_embedding = token_embedding
        self.speaker_embedding = speaker_embedding
        self.reads_f0 = bool(getattr(prosody, "reads_f0", False))
        # the training voices' mean F0, for rows whose voice_f0 is not positive (as the eager model
        # does: a known voice's table entry, else the reference's own mean); the ONNX graph has no
        # check that could refuse such a row
        self.voice_pitch = voice_pitch
        self.speaker_optional = speaker_embedding is not None and prosody.unknown_speaker is not None

    def forward(
        self,
        mel: Tensor,
        lengths: Tensor,
        tokens: Tensor | None = None,
        token_lengths: Tensor | None = None,
        speakers: Tensor | None = None,
        f0: Tensor | None = None,
        voice_f0: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """mel (B, T, n_mels), lengths (B,) [, tokens (B, L), token_lengths (B,)] [, speakers (B,)]
        [, f0 (B, T) Hz [, voice_f0 (B,) Hz]] -> (B, D) x 2."""
        text, text_lengths = None, None
        if self.token_embedding is not None:
            assert tokens is not None and token_lengths is not None
            text, text_lengths = self.token_embedding(tokens), token_lengths  # (B, L, E), (B,)
        speaker, known, ids = None, None, speakers
        if self.speaker_embedding is not None:
            assert speakers is not None
            if self.speaker_optional:  # -1: a voice outside the table, read as the unknown voice
                known = speakers >= 0
                speakers = speakers.clamp(min=0)
            speaker = self.speaker_embedding(speakers)  # (B, P)
        if self.reads_f0:
            assert f0 is not None
            if self.voice_pitch is not None:  # the voice's mean lands on the pitch encoder's reference
                assert voice_f0 is not None and ids is not None
                f0 = VoicePitch.relative(f0, self.voice_pitch.voice_hz(f0, lengths, ids, voice_f0))
        else:
            f0 = None
        posterior = self.prosody.posterior_of(
            mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker, speaker_known=known, f0=f0
        )
        return posterior.mean, posterior.std


def _voice_table(voice_f0_hz: list[float] | None) -> VoicePitch | None:
    """The training voices' mean F0 as a :class:`VoicePitch`, or None."""
    if voice_f0_hz is None:
        return None
    table = VoicePitch(len(voice_f0_hz))
    table.set_table(voice_f0_hz)
    return table


class _CheckedEncoder(nn.Module):
    """TorchScript front: validates inputs, calls the traced graph, carries the audio parameters."""

    def __init__(
        self,
        graph: torch.jit.ScriptModule,
        audio: AudioConfig,
        *,
        latent_dim: int,
        uses_text: bool,
        n_speakers: int,
        reads_f0: bool = False,
        voice_relative: bool = False,
        speaker_optional: bool = False,
    ):
        super().__init__()
        self.graph = graph
        self.reads_f0 = reads_f0
        self.voice_relative = voice_relative
        self.speaker_optional = speaker_optional
        self.sample_rate = audio.sample_rate
        self.n_fft = audio.n_fft
        self.hop_length = audio.hop_length
        self.win_length = audio.win_length
        self.n_mels = audio.n_mels
        self.f_min = float(audio.f_min)
        self.f_max = float(audio.f_max)
        self.log_floor = float(audio.log_floor)
        self.latent_dim = latent_dim
        self.uses_text = uses_text
        self.uses_speakers = n_speakers > 1
        self.n_speakers = n_speakers

    def _check_lengths(self, name: str, lengths: Tensor, batch: int, limit: int) -> None:
        if lengths.dim() != 1 or lengths.size(0) != batch:
            raise ValueError(f"{name} must have shape ({batch},), got {lengths.shape}")
        if lengths.is_floating_point():
            raise ValueError(f"{name} must be an integer tensor")
        if batch > 0 and (int(lengths.min()) < 1 or int(lengths.max()) > limit):
            raise ValueError(f"{name} must lie in [1, {limit}]")

    def forward(
        self,
        mel: Tensor,
        lengths: Tensor,
        tokens: Tensor | None = None,
        token_lengths: Tensor | None = None,
        speakers: Tensor | None = None,
        f0: Tensor | None = None,
        voice_f0: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Posterior (mean, std), each (B, D), of reference log-mels (B, T, n_mels) with lengths (B,)."""
        if mel.dim() != 3 or mel.size(2) != self.n_mels:
            raise ValueError(f"mel must have shape (B, T, {self.n_mels}), got {mel.shape}")
        batch = mel.size(0)
        self._check_lengths("lengths", lengths, batch, mel.size(1))
        lengths = lengths.to(device=mel.device, dtype=torch.long)
        # Unused inputs of the traced graph get placeholders of the right rank.
        dummy = lengths
        if self.uses_text:
            if tokens is None or token_lengths is None:
                raise ValueError("this encoder reads the reference transcript: pass tokens and token_lengths")
            if tokens.dim() != 2 or tokens.size(0) != batch:
                raise ValueError(f"tokens must have shape ({batch}, L), got {tokens.shape}")
            self._check_lengths("token_lengths", token_lengths, batch, tokens.size(1))
            text, text_lengths = tokens.to(mel.device), token_lengths.to(device=mel.device, dtype=torch.long)
        else:
            if tokens is not None or token_lengths is not None:
                raise ValueError("this encoder does not read text: pass mel and lengths only")
            text, text_lengths = dummy.unsqueeze(1), dummy
        if self.uses_speakers:
            if speakers is None or speakers.dim() != 1 or speakers.size(0) != batch:
                raise ValueError(f"this encoder is multi-speaker: pass speakers, ids of shape ({batch},)")
            lowest = -1 if self.speaker_optional else 0
            if batch > 0 and (int(speakers.min()) < lowest or int(speakers.max()) >= self.n_speakers):
                raise ValueError(f"speaker ids must lie in [{lowest}, {self.n_speakers - 1}]")
            speaker_ids = speakers.to(device=mel.device, dtype=torch.long)
        else:
            if speakers is not None:
                raise ValueError("this encoder is single-speaker: do not pass speakers")
            speaker_ids = dummy
        pitch = mel[:, :, 0]  # placeholders of the right rank for an encoder that reads no F0
        voice = mel[:, 0, 0]
        if self.reads_f0:
            if f0 is None or f0.dim() != 2 or f0.size(0) != batch or f0.size(1) != mel.size(1):
                raise ValueError(
                    f"this encoder reads the reference's F0: pass f0 ({batch}, {mel.size(1)}) in Hz on the "
                    "mel's frames, 0 where unvoiced"
                )
            pitch = f0.to(device=mel.device, dtype=mel.dtype)
            if self.voice_relative:
                if voice_f0 is None or voice_f0.dim() != 1 or voice_f0.size(0) != batch:
                    raise ValueError(
                        f"this encoder reads F0 relative to the voice: pass voice_f0 ({batch},), each "
                        "reference voice's mean F0 in Hz"
                    )
                if batch > 0 and float(voice_f0.min()) <= 0.0:
                    raise ValueError("voice_f0 must be positive (Hz)")
                voice = voice_f0.to(device=mel.device, dtype=mel.dtype)
            elif voice_f0 is not None:
                raise ValueError("this encoder reads F0 in Hz, not relative to a voice: do not pass voice_f0")
        elif f0 is not None or voice_f0 is not None:
            raise ValueError("this encoder reads no F0: do not pass f0 or voice_f0")
        return self.graph(mel, lengths, text, text_lengths, speaker_ids, pitch, voice)


def _metadata(
    audio: AudioConfig,
    prosody: CapacitronVAE,
    *,
    n_speakers: int,
    fmt: str,
    voice_f0_hz: list[float] | None = None,
    speaker_optional: bool = False,
) -> dict[str, Any]:
    inputs = ["mel (B, T, n_mels) float log-mel", "lengths (B,) long"]
    if prosody.uses_text:
        inputs += ["tokens (B, L) long", "token_lengths (B,) long"]
    if n_speakers > 1:
        inputs.append(
            "speakers (B,) long" + (", -1 for a voice outside the table" if speaker_optional else "")
        )
    reads_f0 = bool(getattr(prosody, "reads_f0", False))
    if reads_f0:
        inputs.append(
            "f0 (B, T) float Hz on the mel's frames, 0 where unvoiced (pyworld Harvest + StoneMask)"
        )
    if voice_f0_hz is not None:
        inputs.append(
            "voice_f0 (B,) float Hz, each reference voice's mean F0 (a training voice's: voice_f0_hz)"
        )
    extra: dict[str, Any] = {"reads_f0": reads_f0}
    if voice_f0_hz is not None:
        extra["voice_f0_hz"] = voice_f0_hz
    return {
        **extra,
        "format": fmt,
        "outputs": ["mean (B, D)", "std (B, D)"],
        "inputs": inputs,
        "latent_dim": prosody.latent_dim,
        "uses_text": prosody.uses_text,
        "n_speakers": n_speakers,
        "audio": asdict(audio),
    }


def export_prosody_encoder(
    prosody: CapacitronVAE,
    path: str | Path,
    *,
    audio: AudioConfig,
    token_embedding: nn.Module | None = None,
    speaker_embedding: nn.Embedding | None = None,
    format: str = "torchscript",
    voice_f0_hz: list[float] | None = None,
) -> Path:
    """Write the posterior encoder of ``prosody`` to ``path``.

    Args:
        prosody: a trained :class:`CapacitronVAE` (copied; the original is left as it was).
        path: output file.
        audio: the audio parameters the model's mels were computed with (stored in the file).
        token_embedding: maps tokens (B, L) to (B, L, E); required iff ``prosody.uses_text``.
        speaker_embedding: speaker table; required iff ``prosody.speaker_dim > 0``.
        format: ``"torchscript"`` or ``"onnx"``.
        voice_f0_hz: for a posterior that reads the reference's F0 relative to its voice
            (``prosody.reference_pitch_relative``), each training voice's mean F0 (Hz): the encoder
            then takes ``voice_f0`` (B,) and the table is stored in the metadata. None: F0 in Hz.

    A posterior that reads the reference's F0 (``prosody.reference_pitch``) takes ``f0`` (B, T), Hz on
    the mel's frames: the F0 tracker (pyworld's Harvest) is not a torch operation, so the caller runs
    it (:func:`prosody_vae.audio.harvest_f0` computes the track the model was trained on).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {FORMATS}")
    if audio.n_mels != prosody.n_mels:
        raise ValueError(
            f"audio.n_mels={audio.n_mels} but the prosody module reads {prosody.n_mels} mel bins"
        )
    reads_f0 = bool(getattr(prosody, "reads_f0", False))
    if voice_f0_hz is not None and not reads_f0:
        raise ValueError("voice_f0_hz is for a prosody module that reads the reference's F0")
    if prosody.uses_text and token_embedding is None:
        raise ValueError("this prosody module has a text summary: pass the token_embedding it reads")
    if prosody.speaker_dim > 0 and speaker_embedding is None:
        raise ValueError("this prosody module reads a speaker embedding: pass speaker_embedding")
    n_speakers = speaker_embedding.num_embeddings if prosody.speaker_dim > 0 else 1
    import copy

    graph = _EncoderGraph(
        copy.deepcopy(prosody),
        copy.deepcopy(token_embedding) if prosody.uses_text else None,
        copy.deepcopy(speaker_embedding) if prosody.speaker_dim > 0 else None,
        voice_pitch=_voice_table(voice_f0_hz),
    )
    graph = graph.to("cpu").float().eval().requires_grad_(False)
    # Example inputs: two items of different lengths, so nothing batch- or length-specific is baked in.
    example: dict[str, Tensor] = {
        "mel": torch.zeros(2, 64, prosody.n_mels),
        "lengths": torch.tensor([64, 40]),
        "tokens": torch.ones(2, 6, dtype=torch.long),
        "token_lengths": torch.tensor([6, 4]),
        "speakers": torch.zeros(2, dtype=torch.long),
        "f0": torch.full((2, 64), 120.0),
        "voice_f0": torch.full((2,), 110.0),
    }
    metadata = _metadata(
        audio,
        prosody,
        n_speakers=n_speakers,
        fmt=format,
        voice_f0_hz=voice_f0_hz,
        speaker_optional=graph.speaker_optional,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "onnx":
        _export_onnx(graph, example, path, metadata)
        return path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated in favour of torch.export (2.11)
        traced = torch.jit.trace(graph, tuple(example.values()), check_trace=False)
        front = torch.jit.script(
            _CheckedEncoder(
                traced,
                audio,
                latent_dim=prosody.latent_dim,
                uses_text=prosody.uses_text,
                n_speakers=n_speakers,
                reads_f0=reads_f0,
                voice_relative=voice_f0_hz is not None,
                speaker_optional=graph.speaker_optional,
            )
        )
    torch.jit.save(front, str(path), _extra_files={METADATA_NAME: json.dumps(metadata)})
    return path


class _NamedInputs(nn.Module):
    """The graph with exactly the inputs ``names``, in that order (ONNX binds inputs by position)."""

    def __init__(self, graph: _EncoderGraph, names: list[str]):
        super().__init__()
        self.graph = graph
        self.names = names

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        return self.graph(**dict(zip(self.names, inputs, strict=True)))


def _export_onnx(
    graph: _EncoderGraph, example: dict[str, Tensor], path: Path, metadata: dict[str, Any]
) -> None:
    try:
        import onnx
    except ImportError:
        raise ExportedEncoderError(
            "ONNX export needs the optional dependency onnx: pip install 'prosody_vae[onnx]'"
        ) from None
    names = ["mel", "lengths"]
    if graph.token_embedding is not None:
        names += ["tokens", "token_lengths"]
    if graph.speaker_embedding is not None:
        names.append("speakers")
    if graph.reads_f0:
        names.append("f0")
        if graph.voice_pitch is not None:
            names.append("voice_f0")
    axes = {
        "mel": {0: "batch", 1: "frames"},
        "tokens": {0: "batch", 1: "tokens"},
        "f0": {0: "batch", 1: "frames"},
        "mean": {0: "batch"},
    }
    axes.update({name: {0: "batch"} for name in ("lengths", "token_lengths", "speakers", "voice_f0", "std")})
    # The TorchScript-based exporter (dynamo=False): torch 2.11's torch.export-based one unrolls the
    # RNNs over time and so cannot keep the number of frames dynamic.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _NamedInputs(graph, names),
            tuple(example[name] for name in names),
            str(path),
            input_names=names,
            output_names=["mean", "std"],
            dynamic_axes={name: axes[name] for name in [*names, "mean", "std"]},
            opset_version=17,
            dynamo=False,
        )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_NAME, json.dumps(metadata)
    onnx.save(model, str(path))


def read_export_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata stored in an exported file (audio parameters, inputs, latent size)."""
    path = Path(path)
    if not path.is_file():
        raise ExportedEncoderError(f"{path}: file not found")
    if path.suffix == ".onnx":
        try:
            import onnx
        except ImportError:
            raise ExportedEncoderError(f"{path}: reading ONNX files needs the onnx package") from None
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        raw = props.get(METADATA_NAME, "")
    else:
        extra = {METADATA_NAME: ""}
        try:
            torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as error:
            raise ExportedEncoderError(f"{path}: not a TorchScript file ({type(error).__name__})") from None
        raw = extra[METADATA_NAME]
    if not raw:
        raise ExportedEncoderError(f"{path}: no {METADATA_NAME} metadata (not written by prosody-vae export)")
    return json.loads(raw)


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, format: str = "torchscript") -> Path:
    """Export the prosody encoder of a training checkpoint (what ``prosody-vae export`` runs)."""
    from prosody_vae.inference.synthesizer import Synthesizer

    synth = Synthesizer.from_checkpoint(checkpoint, device="cpu")
    model = synth.model
    return export_prosody_encoder(
        model.prosody,
        out,
        audio=synth.audio,
        # Both backbones keep their token table as ``backbone.embedding`` (what ``embed_tokens`` applies).
        token_embedding=model.backbone.embedding if model.uses_text_summary else None,
        speaker_embedding=model.speaker_embedding,
        format=format,
        voice_f0_hz=None if model.voice_pitch is None else [float(v) for v in model.voice_pitch.voice_f0_hz],
    )
