"""Bounded synthesis: long texts in sentence pieces, an absolute decoder cap, a cap on the reference
the posterior reads, vocoding in pieces, and no audio from a vocoder that returns NaN."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import prosody_vae.inference.pieces as pieces
from prosody_vae.audio.vocoders import GriffinLimVocoder, VocoderError, vocode
from prosody_vae.inference.synthesizer import (
    MAX_REFERENCE_SECONDS,
    ReferenceNotice,
    Synthesis,
    Synthesizer,
)
from prosody_vae.text.sentences import split_text

SENTENCES = [
    "Tobias sold a black basket near the river.",
    "Elena carried a black teapot inside the library after lunch.",
    "Dr. Smith painted the old fence on Monday.",
    "The busy farmer found a lantern in the barn.",
    "Why did the children hide the yellow kite?",
]


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    return Synthesizer.from_pretrained()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[np.ndarray, str]:
    """An espeak-ng recording at the model's rate, and its transcript."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    import soundfile as sf

    text = "The lantern was red and the night was long."
    path = tmp_path_factory.mktemp("reference") / "ref.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    wav, rate = sf.read(path, dtype="float32")
    assert rate == 22050
    return wav, text


# ------------------------------------------------------------------ splitting and joining
def test_a_long_text_is_split_at_sentence_ends_and_nothing_is_lost() -> None:
    text = " ".join(SENTENCES * 3)
    parts = split_text(text, 60)
    assert parts[:5] == SENTENCES  # "Dr. Smith" is no sentence end
    assert " ".join(parts) == text
    assert split_text("Short enough.", 60) == ["Short enough."]
    # a sentence longer than the limit: at clauses, then between words, then inside a word
    long = "one, two three four five six seven; " * 6 + "x" * 130
    parts = split_text(long, 50)
    assert all(len(p) <= 50 for p in parts)
    assert "".join(parts).replace(" ", "") == long.replace(" ", "")


def test_joined_pieces_keep_f0_aligned_with_the_mel() -> None:
    def piece(frames: int, tokens: int, f0: float) -> Synthesis:
        return Synthesis(
            mel=torch.randn(frames, 80),
            alignment=torch.rand(frames // 2, tokens),
            z=torch.zeros(4),
            stopped=True,
            f0=torch.full((frames,), f0),
        )

    a, b, c = piece(10, 3, 100.0), piece(6, 5, 200.0), piece(8, 2, 150.0)
    (first, second) = pieces.join_pieces([a, b, c], [0, 0, 1], 2, pause_frames=4, floor=-11.5)
    assert second is c  # one piece: as it was
    assert first.mel.shape == (10 + 4 + 6, 80) and first.f0.shape == (20,)
    assert torch.equal(first.mel[:10], a.mel) and torch.equal(first.mel[14:], b.mel)
    assert torch.all(first.mel[10:14] == -11.5) and torch.all(first.f0[10:14] == 0)
    assert torch.all(first.f0[:10] == 100.0) and torch.all(first.f0[14:] == 200.0)
    assert first.alignment.shape == (5 + 3, 5)


def test_a_long_text_is_decoded_in_bounded_batches_of_sentences(synth, monkeypatch) -> None:
    monkeypatch.setattr(pieces, "MAX_PIECE_CHARACTERS", 70)
    monkeypatch.setattr("prosody_vae.inference.synthesizer.PIECES_PER_BATCH", 2)
    calls: list[tuple[int, int, int]] = []  # (items, token length, max_steps) per decoder batch
    real_infer = synth.model.infer

    def infer(tokens, lengths, *args, **kwargs):
        calls.append((tokens.shape[0], tokens.shape[1], kwargs["max_steps"]))
        return real_infer(tokens, lengths, *args, **kwargs)

    monkeypatch.setattr(synth.model, "infer", infer)
    torch.manual_seed(0)
    text = " ".join(SENTENCES)
    (result,) = synth.synthesize([text], torch.zeros(1, synth.latent_dim))
    # five sentences, two per batch: three decoder calls, none over one sentence's tokens and steps
    assert [items for items, _, _ in calls] == [2, 2, 1]
    longest = max(len(synth.tokenizer.encode(s)) for s in SENTENCES)
    assert all(length <= longest for _, length, _ in calls)
    cap = pieces.decoder_step_cap(synth.audio, synth.model.backbone.r)
    assert all(steps <= cap for _, _, steps in calls)
    pause = round(pieces.PAUSE_SECONDS * synth.audio.sample_rate / synth.audio.hop_length)
    silent = (result.mel == np.log(synth.audio.log_floor)).all(dim=-1)
    assert int(silent.sum()) >= 4 * pause  # the four pauses between the five sentences
    if synth.predicts_pitch:  # F0 frame for frame with the mel, unvoiced in the pauses
        assert result.f0.shape == result.mel.shape[:1]
        assert torch.all(result.f0[silent] == 0)
    else:
        assert result.f0 is None


def test_the_decoder_cap_is_absolute(synth) -> None:
    cap = pieces.decoder_step_cap(synth.audio, synth.model.backbone.r)
    assert cap * synth.model.backbone.r * synth.audio.hop_length / synth.audio.sample_rate <= 40.0
    z = torch.zeros(1, synth.latent_dim)
    with pytest.raises(ValueError, match=rf"max_steps must lie in \[1, {cap}\]"):
        synth.synthesize(["Hello."], z, max_steps=cap + 1)
    with pytest.raises(ValueError, match="latent"):
        synth.synthesize(["Hello.", "Again."], z)


# ------------------------------------------------------------------ the reference the posterior reads
def test_a_long_reference_is_cut_for_the_posterior_with_a_notice(synth, reference) -> None:
    wav, text = reference
    rate = synth.audio.sample_rate
    long = np.tile(wav, int(np.ceil(25 * rate / len(wav))))[: 25 * rate]  # 25 s
    head = long[: int(MAX_REFERENCE_SECONDS * rate)]
    with pytest.warns(ReferenceNotice, match="25.0 s; the posterior reads its first 20 s"):
        cut = synth.embed(long, reference_text=text).mean
    assert torch.allclose(cut, synth.embed(head, reference_text=text).mean, atol=1e-6)
    with pytest.warns(ReferenceNotice):
        frames = synth.reference_mel(long)  # mels are cut the same way
    assert frames.shape[0] == int(MAX_REFERENCE_SECONDS * rate / synth.audio.hop_length) + 1


# ------------------------------------------------------------------ vocoding
class _Spy(nn.Module):
    """Griffin-Lim that records the length of every mel it is given."""

    def __init__(self, audio) -> None:
        super().__init__()
        self.inner = GriffinLimVocoder(audio, n_iter=2)
        self.lengths: list[int] = []

    def forward(self, mel):
        self.lengths.append(mel.shape[0])
        return self.inner(mel)


def test_a_long_mel_is_vocoded_in_pieces_cut_at_quiet_frames(synth) -> None:
    spy = _Spy(synth.audio)
    mel = torch.full((700, 80), -2.0)
    mel[290:300] = np.log(synth.audio.log_floor)  # a pause
    wav = vocode(spy, mel, max_frames=400)
    assert spy.lengths[0] == 290  # the first cut falls in the pause
    assert all(length <= 400 for length in spy.lengths) and sum(spy.lengths) == 700
    assert abs(wav.shape[0] - 700 * synth.audio.hop_length) <= 4 * synth.audio.hop_length


class _NaNVocoder(nn.Module):
    def forward(self, mel):
        return torch.full((mel.shape[0] * 256,), float("nan"))


def test_a_vocoder_that_returns_nan_writes_nothing(synth, tmp_path: Path) -> None:
    from prosody_vae.inference.writer import SynthesisWriter

    result = Synthesis(mel=torch.zeros(20, 80), alignment=torch.zeros(7, 3), z=torch.zeros(4), stopped=True)
    with pytest.raises(VocoderError, match="NaN or infinite"):
        vocode(_NaNVocoder(), result.mel)
    writer = SynthesisWriter(synth, _NaNVocoder())
    out = tmp_path / "out.wav"
    with pytest.raises(VocoderError, match=f"{out}: .*NaN"):
        writer.write(result, out, kind="sample", text="x")
    with pytest.raises(VocoderError):
        writer.write(result, tmp_path / "new.wav", kind="sample", text="x", new_name=True)
    assert list(tmp_path.iterdir()) == [] and writer.rows == []
