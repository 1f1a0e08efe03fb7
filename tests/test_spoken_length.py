"""The spoken-length head (prosody.spoken_length): the length model's text term read from a mel alone,
so that a transfer without the reference's transcript still takes the reference's pace."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_tiny
from torch.nn.utils.rnn import pad_sequence

from prosody_vae.cli import main
from prosody_vae.config import ProsodyConfig
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer
from prosody_vae.tts.spoken_length import SpokenLength

OUT_TEXT = "Please bring the green bottle back before lunch."

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))


def _speech(generator: torch.Generator, n_mels: int = 16) -> tuple[torch.Tensor, float, float]:
    """A toy utterance: 3-12 segments (random spectra, each with a neutral length of 3-6 frames)
    spoken at a random rate. Returns the mel (T, M), log of the neutral length, log of the rate."""
    n = int(torch.randint(3, 13, (1,), generator=generator))
    neutral = torch.randint(3, 7, (n,), generator=generator)
    rate = float(torch.exp(torch.empty(1).uniform_(math.log(0.6), math.log(1.6), generator=generator)))
    pieces = [
        torch.randn(n_mels, generator=generator).expand(max(1, round(int(d) * rate)), n_mels) for d in neutral
    ]
    mel = torch.cat(pieces) + 0.05 * torch.randn(sum(p.shape[0] for p in pieces), n_mels, generator=generator)
    return mel, math.log(float(neutral.sum())), math.log(rate)


def _batch(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_sequence(items, batch_first=True), torch.tensor([m.shape[0] for m in items])


def test_padding_does_not_change_the_estimate() -> None:
    torch.manual_seed(0)
    head = SpokenLength(n_mels=16, channels=16).eval()
    mel = torch.randn(1, 40, 16)
    padded = torch.cat([mel, torch.randn(1, 25, 16) * 5], dim=1)  # garbage past the length
    lengths = torch.tensor([40])
    assert torch.allclose(head(mel, lengths), head(padded, lengths), atol=1e-5)


def test_the_head_learns_what_is_said_not_how_long_it_takes() -> None:
    """On toy speech whose length is segments x rate, the trained head's estimate follows the
    segments' neutral length, and length over estimate follows the rate: the pace a transfer needs."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    head = SpokenLength(n_mels=16, channels=32, dilations=(1, 2, 1))
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(250):
        items = [_speech(generator) for _ in range(16)]
        mels, lengths = _batch([m for m, _, _ in items])
        loss = head.loss(mels, lengths, torch.tensor([t for _, t, _ in items])).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    head.eval()
    test = [_speech(generator) for _ in range(120)]
    mels, lengths = _batch([m for m, _, _ in test])
    with torch.no_grad():
        estimate = head(mels, lengths).numpy()
    neutral = np.array([t for _, t, _ in test])
    rate = np.array([r for _, _, r in test])
    pace = np.log(lengths.numpy()) - estimate
    assert np.corrcoef(estimate, neutral)[0, 1] > 0.9
    assert np.corrcoef(pace, rate)[0, 1] > 0.8
    # the duration alone reads the rate far worse: the head does more than measure the length
    assert np.corrcoef(pace, rate)[0, 1] > np.corrcoef(np.log(lengths.numpy()), rate)[0, 1] + 0.2


def test_the_voice_warp_moves_formants_by_the_drawn_factor_and_keeps_padding() -> None:
    """A mel with one bright channel: after the warp its peak sits at channel * a for factors a inside
    the bound, different for each item, and frames past an item's length stay zero."""
    torch.manual_seed(0)
    head = SpokenLength(n_mels=80, channels=8, max_warp=1.2)
    mels = torch.zeros(64, 30, 80)
    mels[:, :, 40] = 1.0
    lengths = torch.full((64,), 30)
    lengths[0] = 20
    mels[0, 20:] = 0.0
    warped = head.warped(mels, lengths)
    peaks = warped[:, 5].argmax(1).float()
    assert torch.all((peaks >= 40 / 1.2 - 1) & (peaks <= 40 * 1.2 + 1)), peaks
    assert peaks.max() - peaks.min() >= 8  # the factors are drawn per item
    assert torch.all(warped[0, 20:] == 0)
    same = SpokenLength(n_mels=80, channels=8, max_warp=1.0 + 1e-9).warped(mels, lengths)
    assert torch.allclose(same, mels, atol=1e-5)  # a factor of 1 changes nothing
    with pytest.raises(ValueError, match="max_warp"):
        SpokenLength(n_mels=80, max_warp=0.9)


def test_the_config_needs_a_length_model() -> None:
    with pytest.raises(ValueError, match="spoken_length"):
        ProsodyConfig(spoken_length=True)
    assert ProsodyConfig(spoken_length=True, utterance_length=True).spoken_length


@pytest.fixture(scope="module")
def spoken_checkpoint(tiny_prepared, tmp_path_factory) -> Path:
    """A tiny model trained with the length model and the spoken-length head."""
    return train_tiny(
        tmp_path_factory.mktemp("spoken_length"),
        tiny_prepared,
        steps=2,
        prosody={"utterance_length": True, "spoken_length": True, "text_summary_dropout": 0.3},
    )


@pytest.fixture(scope="module")
def spoken(spoken_checkpoint) -> Synthesizer:
    return Synthesizer.from_checkpoint(spoken_checkpoint)


def test_training_logs_the_heads_error_and_changes_nothing_else(spoken, tiny_prepared) -> None:
    """The head's loss reaches its own weights only: the length model and the encoder get no gradient
    from it."""
    from prosody_vae.data.dataset import ProsodyDataset, collate
    from prosody_vae.prosody.capacity import CapacityObjective
    from prosody_vae.training.objective import TrainingModule

    model = spoken.model.train()
    module = TrainingModule(model=model, objective=CapacityObjective(1.0))
    utterances = read_manifest(tiny_prepared / "splits" / "train.jsonl")[:4]
    dataset = ProsodyDataset(utterances, tiny_prepared / "features", spoken.tokenizer)
    parts, _ = module(collate([dataset[i] for i in range(4)]))
    assert float(parts.spoken_length) > 0
    model.zero_grad()
    parts.spoken_length.requires_grad_(False)  # detached in LossParts: take the head's loss directly
    batch = collate([dataset[i] for i in range(4)])
    term = model.utterance_length.text_term(batch.tokens, batch.token_lengths)
    model.spoken_length.loss(batch.mels, batch.mel_lengths, term).mean().backward()
    assert all(p.grad is not None for p in model.spoken_length.parameters())
    others = [p for name, p in model.named_parameters() if not name.startswith("spoken_length.")]
    assert all(p.grad is None for p in others)
    model.eval()


def test_a_perfect_estimate_gives_the_transcribed_scale(spoken, tiny_prepared, monkeypatch) -> None:
    """Without a transcript the scale is the transcribed one with the text term estimated: with the
    head replaced by the true text term, the two agree, in a known voice and an unknown one."""
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    mel = spoken.reference_mel(reference.audio)
    z = torch.randn(1, spoken.latent_dim, generator=torch.Generator().manual_seed(0))
    tokens, lengths = spoken.tokens([reference.text])
    true_term = spoken.model.utterance_length.text_term(tokens, lengths)
    monkeypatch.setattr(
        spoken.model.spoken_length, "forward", lambda mels, lens: true_term.expand(mels.shape[0])
    )
    for voice in (None, *spoken.speakers[:1]):
        transcribed = float(spoken.reference_length_scale(mel.shape[0], reference.text, z, voice)[0])
        estimated = float(spoken.reference_length_scale(mel.shape[0], None, z, voice, reference_mel=mel)[0])
        assert estimated == pytest.approx(transcribed, rel=1e-5)
    with pytest.raises(ValueError, match="spoken_length"):
        spoken.reference_length_scale(mel.shape[0], None, z, None)  # no mel to read


def test_transfer_without_a_transcript_takes_the_references_pace(
    spoken, tiny_checkpoint, tiny_prepared, monkeypatch
) -> None:
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    seen: list = []
    original = spoken.synthesize

    def spy(texts, z, **kwargs):
        seen.append(kwargs.get("length_scale"))
        return original(texts, z, **kwargs)

    monkeypatch.setattr(spoken, "synthesize", spy)
    assert spoken.reads_pace_without_transcript
    spoken.transfer(OUT_TEXT, reference.audio)  # auto
    spoken.transfer(OUT_TEXT, reference.audio, timing="reference")
    spoken.transfer(OUT_TEXT, reference.audio, timing="z")
    mel = spoken.reference_mel(reference.audio)
    z = spoken.embed(reference.audio).z
    expected = float(spoken.reference_length_scale(mel.shape[0], None, z, None, reference_mel=mel)[0])
    assert float(seen[0][0]) == pytest.approx(expected, rel=1e-5)
    assert float(seen[1][0]) == pytest.approx(expected, rel=1e-5)
    assert seen[2] is None
    # the length model off: nothing to scale, so no reference timing either
    spoken.length_model = False
    try:
        assert not spoken.reads_pace_without_transcript
    finally:
        spoken.length_model = True


def test_the_command_line_takes_the_reference_pace_without_a_transcript(
    spoken_checkpoint, tiny_prepared, tmp_path, capsys
) -> None:
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    argv = ["transfer", "--reference", str(reference.audio), "--text", OUT_TEXT, "--no-reference-text"]
    argv += ["--timing", "reference", "--gl-iters", "2", "--threads", "1"]
    out = tmp_path / "out.wav"
    assert main([*argv, "--checkpoint", str(spoken_checkpoint), "--out", str(out)]) == 0
    assert out.is_file()
    # a model without the head refuses, and says why
    (tmp_path / "plain").mkdir()
    plain = train_tiny(
        tmp_path / "plain",
        tiny_prepared,
        steps=1,
        prosody={"utterance_length": True, "text_summary_dropout": 0.3},
    )
    capsys.readouterr()
    assert main([*argv, "--checkpoint", str(plain), "--out", str(tmp_path / "no.wav")]) == 2
    err = capsys.readouterr().err
    assert "--timing reference" in err and "spoken_length" in err
    assert not (tmp_path / "no.wav").exists()


def test_fit_recipe_adds_the_head_and_changes_nothing_else(tiny_prepared, tmp_path, capsys) -> None:
    import fit_spoken_length

    from prosody_vae.checkpoint import load_checkpoint

    (tmp_path / "source").mkdir()
    source = train_tiny(tmp_path / "source", tiny_prepared, steps=1, prosody={"utterance_length": True})
    out = tmp_path / "with_head.pt"
    argv = ["--checkpoint", str(source), "--out", str(out), "--steps", "60", "--batch-size", "8"]
    assert fit_spoken_length.main([*argv, "--report", "valid"]) == 0
    printed = capsys.readouterr().out
    errors = [
        float(line.split("(rms, log) ")[1].split(",")[0])
        for line in printed.splitlines()
        if "(rms, log)" in line
    ]
    assert len(errors) >= 2 and all(math.isfinite(e) for e in errors)
    synth = Synthesizer.from_checkpoint(out)  # loads with weights_only; the config says spoken_length
    assert synth.model.spoken_length is not None and synth.reads_pace_without_transcript
    theirs = Synthesizer.from_checkpoint(source).model.state_dict()
    for key, value in synth.model.state_dict().items():
        if not key.startswith("spoken_length."):
            assert torch.equal(value, theirs[key]), key
    assert "spoken_length" in load_checkpoint(out)["provenance"]
    # --report-only reads the head the model has: the same figures as the fit printed, nothing written
    validation = next(line for line in printed.splitlines() if line.startswith("validation:"))
    written = out.stat().st_mtime_ns
    assert fit_spoken_length.main(["--checkpoint", str(out), "--report-only", "--report", "valid"]) == 0
    reported = capsys.readouterr().out
    assert validation in reported.splitlines() and "stretched" in reported
    assert out.stat().st_mtime_ns == written
    with pytest.raises(SystemExit, match="no spoken-length head"):
        fit_spoken_length.main(["--checkpoint", str(source), "--report-only"])
    # a model without a length model has no text term to estimate
    with pytest.raises(SystemExit, match="no length model"):
        fit_spoken_length.main(
            ["--checkpoint", str(train_tiny(tmp_path, tiny_prepared, steps=1)), "--out", str(out)]
        )


def test_fit_recipe_vocoded_copies_are_stretched_audio_with_the_same_target(tiny_prepared, tmp_path) -> None:
    """Each copy is the item's audio stretched by the phase vocoder within the head's bound, analysed
    again (same mel bins, a length that follows the drawn factor) and given the item's own target."""
    import fit_spoken_length

    source = train_tiny(tmp_path, tiny_prepared, steps=1, prosody={"utterance_length": True})
    synth = Synthesizer.from_checkpoint(source)
    items = fit_spoken_length._items(
        synth.model, synth.tokenizer, [Path(tiny_prepared)], "train", list(synth.speakers)
    )
    items = (items[0][:6], items[1][:6], items[2][:6])
    mels, terms, utts = fit_spoken_length._vocoded_copies(
        items, synth.config, copies=2, max_stretch=1.4, seed=0
    )
    assert len(mels) == 12 and terms.shape == (12,)
    assert torch.equal(terms, items[1].repeat_interleave(2))
    assert [u.id for u in utts] == [u.id for u in items[2] for _ in range(2)]
    ratios = np.array([m.shape[0] / items[0][i // 2].shape[0] for i, m in enumerate(mels)])
    assert mels[0].shape[1] == items[0][0].shape[1]
    assert np.all((ratios > 1 / 1.4 - 0.05) & (ratios < 1.4 + 0.05)), ratios
    assert np.ptp(ratios) > 0.05  # the factors are drawn, not one fixed stretch


def test_fit_recipe_skips_and_reports_audio_it_cannot_read(tiny_prepared, tmp_path, capsys) -> None:
    """A training item whose audio is gone (its cached mel still there) loses its vocoded copy and is
    named; the stretch check leaves it out and says so; nothing stops."""
    import dataclasses

    import fit_spoken_length

    prosody = {"utterance_length": True, "spoken_length": True}
    synth = Synthesizer.from_checkpoint(train_tiny(tmp_path, tiny_prepared, steps=1, prosody=prosody))
    mels, terms, utts = fit_spoken_length._items(
        synth.model, synth.tokenizer, [Path(tiny_prepared)], "train", list(synth.speakers)
    )
    gone = tmp_path / "gone.wav"
    utts = [dataclasses.replace(utts[0], audio=str(gone)), *utts[1:4]]
    items = (mels[:4], terms[:4], utts)
    copies = fit_spoken_length._vocoded_copies(items, synth.config, copies=1, max_stretch=1.4, seed=0)
    assert [u.id for u in copies[2]] == [u.id for u in utts[1:]] and copies[1].shape == (3,)
    assert "gone.wav" in capsys.readouterr().out
    line = fit_spoken_length._stretch_check("check", synth.model, items, synth.config, n=4)
    assert "3 items, 1 unreadable left out" in line
    only_gone = ([mels[0]], terms[:1], utts[:1])
    assert "no item's audio could be read" in fit_spoken_length._stretch_check(
        "check", synth.model, only_gone, synth.config
    )
