"""Transfer with the reference's timing (Synthesizer.transfer(timing="reference")): the output's length
is the length model's, scaled by the reference's own length over the length model's for the
reference's transcript, so z's share of the length cancels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL, train_tiny

from prosody_vae.cli import main
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer
from prosody_vae.inference.timing import stretched_length

OUT_TEXT = "Please bring the green bottle back before lunch."
REF_TEXT = "The cat sat on the mat."


@pytest.fixture(scope="module")
def timed(tiny_prepared, tmp_path_factory) -> Synthesizer:
    """A tiny single-voice model with a length model whose rate reads z strongly."""
    checkpoint = train_tiny(
        tmp_path_factory.mktemp("reference_timing"),
        tiny_prepared,
        steps=2,
        prosody={"utterance_length": True},
    )
    synth = Synthesizer.from_checkpoint(checkpoint)
    with torch.no_grad():
        synth.model.utterance_length.rate.weight.copy_(torch.linspace(-0.6, 0.6, synth.latent_dim)[None, :])
    return synth


def _frames(synth: Synthesizer, text: str, z: torch.Tensor, speaker: str | None = None) -> float:
    tokens, lengths = synth.tokens([text])
    speakers = synth.speaker_ids(speaker, 1)
    return float(synth.model.predicted_frames(tokens, lengths, z, speakers=speakers)[0])


def test_the_scaled_length_keeps_the_references_pace_whatever_z(timed) -> None:
    reference_frames = 180
    lengths = []
    for seed in range(3):
        z = torch.randn(1, timed.latent_dim, generator=torch.Generator().manual_seed(seed))
        scale = float(timed.reference_length_scale(reference_frames, REF_TEXT, z, None)[0])
        lengths.append(_frames(timed, OUT_TEXT, z) * scale)
        # the reference's own sentence gets back the reference's own length
        assert _frames(timed, REF_TEXT, z) * scale == pytest.approx(reference_frames, rel=1e-5)
    assert max(lengths) == pytest.approx(min(lengths), rel=1e-5)  # z's terms cancel
    z = torch.zeros(1, timed.latent_dim)
    without_z = _frames(timed, OUT_TEXT, z) * reference_frames / _frames(timed, REF_TEXT, z)
    assert lengths[0] == pytest.approx(without_z, rel=1e-5)
    # a reference twice as long, twice as long an output
    double = _frames(timed, OUT_TEXT, z) * float(timed.reference_length_scale(360, REF_TEXT, z, None)[0])
    assert double == pytest.approx(2 * without_z, rel=1e-5)


def test_transfer_takes_the_scaled_length(timed, tiny_prepared) -> None:
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    torch.manual_seed(0)
    by_z = timed.transfer(OUT_TEXT, reference.audio, reference_text=reference.text, timing="z")
    if not by_z.stopped:
        pytest.skip("the 2-step model did not stop: no length to correct")
    timed.length_model = False
    torch.manual_seed(0)
    decoded = timed.transfer(OUT_TEXT, reference.audio, reference_text=reference.text).mel.shape[0]
    timed.length_model = True
    torch.manual_seed(0)
    by_reference = timed.transfer(
        OUT_TEXT, reference.audio, reference_text=reference.text, timing="reference"
    )
    mel = timed.reference_mel(reference.audio)
    z = timed.embed(reference.audio, reference_text=reference.text).z
    scale = float(timed.reference_length_scale(mel.shape[0], reference.text, z, None)[0])
    assert by_reference.mel.shape[0] == stretched_length(decoded, _frames(timed, OUT_TEXT, z) * scale)
    assert by_z.mel.shape[0] == stretched_length(decoded, _frames(timed, OUT_TEXT, z))


def test_reference_timing_needs_a_transcript_and_a_length_model(
    timed, tiny_checkpoint, tiny_prepared
) -> None:
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    with pytest.raises(ValueError, match="pass reference_text"):
        timed.transfer(OUT_TEXT, reference.audio, timing="reference")
    with pytest.raises(ValueError, match="timing must be"):
        timed.transfer(OUT_TEXT, reference.audio, reference_text=reference.text, timing="fast")
    plain = Synthesizer.from_checkpoint(tiny_checkpoint)
    with pytest.raises(ValueError, match="prosody.utterance_length"):
        plain.transfer(OUT_TEXT, reference.audio, reference_text=reference.text, timing="reference")


def test_cli_reference_timing_names_what_is_missing(
    timed, tiny_checkpoint, tiny_prepared, tmp_path, capsys
) -> None:
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    argv = ["transfer", "--text", "Hello.", "--reference", reference.audio, "--out", str(tmp_path / "o.wav")]
    argv += ["--timing", "reference", "--gl-iters", "2"]
    assert main([*argv, "--checkpoint", str(tiny_checkpoint)]) == 2  # no length model
    assert "--timing reference" in (err := capsys.readouterr().err) and "prosody.utterance_length" in err
    timed_checkpoint = next(tmp_path.parent.glob("reference_timing*/exp/checkpoints/step_2.pt"))
    # no transcript: the option and the sidecar it could read are named
    assert main([*argv, "--checkpoint", str(timed_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "--reference-text" in err and Path(reference.audio).with_suffix(".txt").name in err


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> Synthesizer:
    """A tiny multi-speaker model with a length model, its rate reading z and the voice."""
    from prosody_vae.audio import AudioConfig
    from prosody_vae.data import prepare_corpus
    from prosody_vae.data.espeak.synthesis import build_corpus

    root = tmp_path_factory.mktemp("timed_voices")
    manifest = build_corpus(
        root / "corpus", n_utterances=12, seed=5, multi_speaker=True, num_workers=2, progress=False
    )
    prepare_corpus(
        "manifest",
        manifest,
        root / "prepared",
        config=AudioConfig(),
        num_workers=2,
        valid_fraction=0.15,
        test_fraction=0.0,
    )
    prosody = {**TINY_MODEL["prosody"], "speaker_dim": 4, "utterance_length": True}
    synth = Synthesizer.from_checkpoint(train_tiny(root, root / "prepared", steps=1, prosody=prosody))
    assert len(synth.speakers) >= 2
    with torch.no_grad():
        weight = synth.model.utterance_length.rate.weight
        weight.copy_(torch.linspace(-0.8, 0.8, weight.shape[1])[None, :])
        synth.model.speaker_embedding.weight.copy_(torch.randn_like(synth.model.speaker_embedding.weight))
    return synth


def test_the_reference_voices_own_pace_is_taken_out(voices) -> None:
    z = torch.randn(1, voices.latent_dim, generator=torch.Generator().manual_seed(0))
    first, second = voices.speakers[:2]
    scale = {v: float(voices.reference_length_scale(150, REF_TEXT, z, v)[0]) for v in voices.speakers}
    assert scale[first] != pytest.approx(scale[second], rel=1e-3)  # the voices' terms differ
    # spoken in the reference's own voice, the output's length depends on neither z nor the voice
    same_voice = [_frames(voices, OUT_TEXT, z, v) * scale[v] for v in voices.speakers]
    assert max(same_voice) == pytest.approx(min(same_voice), rel=1e-5)
    # a voice outside the table: the geometric mean of the table's voices
    unknown = float(voices.reference_length_scale(150, REF_TEXT, z, None)[0])
    assert math.log(unknown) == pytest.approx(sum(math.log(s) for s in scale.values()) / len(scale), rel=1e-5)
    assert float(voices.reference_length_scale(150, REF_TEXT, z, "not-a-voice")[0]) == pytest.approx(unknown)


def test_auto_timing_is_the_references_where_it_can_run(
    timed, tiny_checkpoint, tiny_prepared, monkeypatch
) -> None:
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]

    def scale_passed(synth: Synthesizer, ref, **options) -> float | None:
        """The length scale transfer hands to synthesize (None: the length z implies)."""
        seen = []
        original = synth.synthesize

        def spy(texts, z, **kwargs):
            seen.append(kwargs.get("length_scale"))
            return original(texts, z, **kwargs)

        monkeypatch.setattr(synth, "synthesize", spy)
        try:
            synth.transfer(OUT_TEXT, ref, **options)
        finally:
            monkeypatch.undo()
        return None if seen[0] is None else float(seen[0][0])

    transcribed = {"reference_text": reference.text}
    mel = timed.reference_mel(reference.audio)
    z = timed.embed(reference.audio, reference_text=reference.text).z
    expected = float(timed.reference_length_scale(mel.shape[0], reference.text, z, None)[0])
    assert scale_passed(timed, reference.audio, **transcribed) == pytest.approx(expected)
    assert scale_passed(timed, reference.audio, timing="reference", **transcribed) == pytest.approx(expected)
    assert scale_passed(timed, reference.audio, timing="z", **transcribed) is None
    # no length model: z, never an error
    assert scale_passed(Synthesizer.from_checkpoint(tiny_checkpoint), reference.audio, **transcribed) is None
    # a reference cut at MAX_REFERENCE_SECONDS has no length to compare with its transcript's: z
    long_mel = mel.repeat(200, 1)
    with pytest.warns(Warning, match="posterior reads its first"):
        assert scale_passed(timed, long_mel, **transcribed) is None
    with pytest.warns(Warning), pytest.raises(ValueError, match="needs the whole reference"):
        timed.transfer(OUT_TEXT, long_mel, reference_text=reference.text, timing="reference")
