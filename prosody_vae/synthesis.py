"""Synthesizer: a trained checkpoint turned into prosody transfer, prior sampling and interpolation.

Transfer is deterministic by default: the reference is encoded to its posterior mean (the reference
implementation samples in eval mode, so the same reference gave different prosody on every call).
Pass ``sample=True`` for a draw from q(z | reference) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from prosody_vae.audio import AudioConfig, MelSpectrogram, load_audio
from prosody_vae.checkpoint import CheckpointError, load_checkpoint
from prosody_vae.config import ExperimentConfig
from prosody_vae.model import ProsodyTTS, build_model
from prosody_vae.text import Tokenizer, build_tokenizer

__all__ = ["Synthesis", "Synthesizer", "slerp"]


@dataclass
class Synthesis:
    """One synthesised utterance: log-mel (T, n_mels), attention (T/r, L), the z used (D,)."""

    mel: Tensor
    alignment: Tensor
    z: Tensor
    stopped: bool


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between latents (D,); falls back to linear for near-parallel vectors."""
    a_n, b_n = a / a.norm().clamp_min(1e-8), b / b.norm().clamp_min(1e-8)
    omega = torch.arccos((a_n * b_n).sum().clamp(-1.0, 1.0))
    if float(omega) < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


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
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.config = config
        self.audio: AudioConfig = config.audio
        self.speakers = speakers
        self.device = torch.device(device)
        self._mel = MelSpectrogram(self.audio).to(self.device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu") -> Synthesizer:
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
        except KeyError as missing:
            raise CheckpointError(f"{path}: checkpoint lacks {missing}") from None
        model = build_model(config, n_symbols=tokenizer.vocab_size, n_speakers=len(speakers))
        try:
            model.load_state_dict(weights)
        except RuntimeError as error:
            raise CheckpointError(
                f"{path}: weights do not fit the model its config describes ({error})"
            ) from None
        return cls(model=model, tokenizer=tokenizer, config=config, speakers=speakers, device=device)

    # ------------------------------------------------------------------ inputs
    def tokens(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Token ids (B, L) and lengths (B,) for a list of texts."""
        ids = [self.tokenizer.encode(t) for t in texts]
        lengths = torch.tensor([len(i) for i in ids], device=self.device)
        padded = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long, device=self.device)
        for row, seq in enumerate(ids):
            padded[row, : len(seq)] = torch.tensor(seq, device=self.device)
        return padded, lengths

    def reference_mel(self, reference: str | Path | np.ndarray | Tensor) -> Tensor:
        """Log-mel (T, n_mels) of a reference: an audio file, a waveform at the model's rate, or a mel."""
        if isinstance(reference, Tensor) and reference.dim() == 2:
            return reference.to(self.device)
        if isinstance(reference, str | Path):
            wav = load_audio(reference, self.audio)  # raises AudioError naming the file
        else:
            wav = np.asarray(reference, dtype=np.float32)
        return self._mel(torch.from_numpy(np.ascontiguousarray(wav)).to(self.device))

    def speaker_ids(self, speaker: str | None, n: int) -> Tensor | None:
        if self.model.speaker_embedding is None:
            return None
        if speaker is None:
            raise ValueError(f"this model is multi-speaker: pass a speaker, one of {self.speakers}")
        if speaker not in self.speakers:
            raise ValueError(f"unknown speaker {speaker!r}; known: {self.speakers}")
        return torch.full((n,), self.speakers.index(speaker), dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ prosody
    @torch.no_grad()
    def embed(
        self,
        reference: str | Path | np.ndarray | Tensor,
        *,
        reference_text: str | None = None,
        speaker: str | None = None,
        sample: bool = False,
    ):
        """Posterior over z for one reference: a ProsodyOutput with batch size 1."""
        mel = self.reference_mel(reference).unsqueeze(0)
        lengths = torch.tensor([mel.shape[1]], device=self.device)
        tokens = token_lengths = None
        if self.model.uses_text_summary:
            if not reference_text:
                raise ValueError(
                    "this model's prosody posterior reads the reference transcript: pass reference_text"
                )
            tokens, token_lengths = self.tokens([reference_text])
        return self.model.encode_prosody(
            mel,
            lengths,
            tokens=tokens,
            token_lengths=token_lengths,
            speakers=self.speaker_ids(speaker, 1),
            sample=sample,
        )

    @torch.no_grad()
    def synthesize(
        self, texts: list[str], z: Tensor, *, speaker: str | None = None, max_steps: int | None = None
    ):
        """Mels for texts (B) with latents z (B, D); returns a list of :class:`Synthesis`."""
        tokens, lengths = self.tokens(texts)
        if max_steps is None:
            # generous: about 12 frames per token at r = 1, well past any real utterance of the corpus
            max_steps = int(lengths.max()) * 12 // self.model.backbone.r + 20
        out = self.model.infer(
            tokens,
            lengths,
            z.to(self.device),
            speakers=self.speaker_ids(speaker, len(texts)),
            max_steps=max_steps,
        )
        steps = self.model.backbone.decoder_lengths(out.mel_lengths)
        return [
            Synthesis(
                mel=out.mel_post[i, : int(out.mel_lengths[i])],
                alignment=out.alignments[i, : int(steps[i]), : int(lengths[i])],
                z=z[i],
                stopped=int(out.mel_lengths[i]) < max_steps * self.model.backbone.r,
            )
            for i in range(len(texts))
        ]

    def transfer(
        self,
        text: str,
        reference: str | Path | np.ndarray | Tensor,
        *,
        reference_text: str | None = None,
        speaker: str | None = None,
        sample: bool = False,
    ) -> Synthesis:
        """Speak ``text`` with the prosody of ``reference`` (posterior mean unless ``sample``)."""
        posterior = self.embed(reference, reference_text=reference_text, speaker=speaker, sample=sample)
        return self.synthesize([text], posterior.z, speaker=speaker)[0]

    def sample(
        self, text: str, n: int, *, temperature: float = 1.0, speaker: str | None = None
    ) -> list[Synthesis]:
        """``n`` renditions of ``text`` with prosody drawn from the prior (scaled by ``temperature``)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        z = self.model.prosody.sample_prior(n, temperature=temperature)
        return self.synthesize([text] * n, z, speaker=speaker)
