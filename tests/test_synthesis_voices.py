"""A tiny 2-voice model trained with text-summary and speaker dropout, end to end: transfer between
voices (V+T+S), transcript-free references, ``<name>.txt`` sidecars in ``transfer`` and
``transfer --batch``, and a model trained without either refusing what it cannot do."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from prosody_vae.cli import main
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    from conftest import TINY_MODEL, train_tiny

    from prosody_vae.audio import AudioConfig
    from prosody_vae.data import prepare_corpus
    from prosody_vae.data.espeak.synthesis import build_corpus

    root = tmp_path_factory.mktemp("voices")
    manifest = build_corpus(
        root / "corpus", n_utterances=12, seed=5, multi_speaker=True, num_workers=2, progress=False
    )
    prepared = root / "prepared"
    prepare_corpus(
        "manifest",
        manifest,
        prepared,
        config=AudioConfig(),
        num_workers=2,
        valid_fraction=0.15,
        test_fraction=0.0,
    )
    prosody = {**TINY_MODEL["prosody"], "speaker_dim": 4, "text_summary_dropout": 0.5, "speaker_dropout": 0.5}
    torch.manual_seed(0)
    checkpoint = train_tiny(root, prepared, steps=3, prosody=prosody)
    train = read_manifest(prepared / "splits" / "train.jsonl")
    speakers = sorted({u.speaker for u in train})
    assert len(speakers) >= 2, speakers
    return checkpoint, train, speakers


def test_dropout_model_trains_its_stand_ins(voices) -> None:
    checkpoint, _, speakers = voices
    synth = Synthesizer.from_checkpoint(checkpoint)
    assert synth.speakers == speakers and synth.transcript_optional and synth.speaker_optional
    # both start at zero; three steps with dropped items moved them (they got gradients)
    assert synth.model.prosody.null_text_summary.abs().max() > 0
    assert synth.model.prosody.unknown_speaker.abs().max() > 0


def test_transcript_free_reference_runs_the_null_summary(voices) -> None:
    checkpoint, train, speakers = voices
    synth = Synthesizer.from_checkpoint(checkpoint)
    ref = train[0]
    mel = synth.reference_mel(ref.audio)
    without = synth.embed(ref.audio, speaker=ref.speaker).mean
    with_text = synth.embed(ref.audio, reference_text=ref.text, speaker=ref.speaker).mean
    assert not torch.allclose(without, with_text)  # the transcript changes the posterior
    vae = synth.model.prosody
    with torch.no_grad():  # by hand: reference encoder, the null summary, the reference's voice
        voice = synth.model.speaker_embedding(torch.tensor([speakers.index(ref.speaker)]))
        by_hand = vae.posterior(
            vae.reference_encoder(mel[None], torch.tensor([mel.shape[0]])),
            text=vae.null_text_summary[None],
            speaker=voice,
        )[0]
    torch.testing.assert_close(without, by_hand)
    # in a batch, the untranscribed item is embedded as if alone
    other = synth.reference_mel(train[1].audio)
    batch = synth.embed_batch(
        [other, mel], texts=[train[1].text, None], speakers=[train[1].speaker, ref.speaker]
    )
    torch.testing.assert_close(batch.mean[1:], without)
    result = synth.transfer("Hello there.", ref.audio, speaker=speakers[0])  # no transcript, unknown voice
    assert result.mel.shape[-1] == 80 and result.mel.shape[0] > 0


def test_posterior_reads_the_reference_voice_and_the_decoder_the_target(voices) -> None:
    checkpoint, train, speakers = voices
    synth = Synthesizer.from_checkpoint(checkpoint)
    ref, a, b = train[0], speakers[0], speakers[1]
    kwargs = dict(reference_text=ref.text)
    # z depends on the reference's voice, not on the voice spoken in
    into_a = synth.transfer("Hello there.", ref.audio, speaker=a, reference_speaker=b, **kwargs)
    into_b = synth.transfer("Hello there.", ref.audio, speaker=b, reference_speaker=b, **kwargs)
    torch.testing.assert_close(into_a.z, into_b.z)
    torch.testing.assert_close(into_a.z, synth.embed(ref.audio, speaker=b, **kwargs).mean[0])
    unknown = synth.transfer("Hello there.", ref.audio, speaker=a, **kwargs)  # a voice it does not know
    assert not torch.allclose(unknown.z, into_a.z)
    with pytest.raises(ValueError, match="unknown speaker 'nobody'"):
        synth.transfer("Hello there.", ref.audio, speaker=a, reference_speaker="nobody", **kwargs)


def test_a_model_without_unknown_voice_reads_the_reference_as_the_target_voice(voices) -> None:
    from conftest import TINY_MODEL

    from prosody_vae.config import ExperimentConfig
    from prosody_vae.tts.model import build_model

    checkpoint, train, speakers = voices
    trained = Synthesizer.from_checkpoint(checkpoint)
    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["prosody"]["speaker_dim"] = 4  # no dropout fields: the model every earlier checkpoint builds
    config = ExperimentConfig.from_dict(raw)
    model = build_model(config, n_symbols=trained.tokenizer.vocab_size, n_speakers=len(speakers))
    synth = Synthesizer(model=model, tokenizer=trained.tokenizer, config=config, speakers=speakers)
    ref = train[0]
    result = synth.transfer("Hello there.", ref.audio, reference_text=ref.text, speaker=speakers[1])
    as_target = synth.embed(ref.audio, reference_text=ref.text, speaker=speakers[1]).mean[0]
    torch.testing.assert_close(result.z, as_target)
    with pytest.raises(ValueError, match="needs the voice of each reference"):
        synth.embed(ref.audio, reference_text=ref.text)
    with pytest.raises(ValueError, match="--reference-text"):
        synth.embed(ref.audio, speaker=speakers[0])


def _reference_without_sidecar(train, folder, name: str, transcript: str | None):
    folder.mkdir(parents=True, exist_ok=True)
    audio = folder / f"{name}.wav"
    shutil.copy(train[0].audio, audio)
    if transcript is not None:
        audio.with_suffix(".txt").write_text(transcript + "\n", encoding="utf-8")
    return audio


def test_transfer_reads_the_sidecar_or_goes_without(voices, tmp_path, monkeypatch) -> None:
    checkpoint, train, speakers = voices
    seen = []
    original = Synthesizer.transfer

    def recording(self, text, reference, **kwargs):
        seen.append(kwargs["reference_text"])
        return original(self, text, reference, **kwargs)

    monkeypatch.setattr(Synthesizer, "transfer", recording)
    sidecar = _reference_without_sidecar(train, tmp_path / "refs", "with_txt", "The lantern was red.")
    bare = _reference_without_sidecar(train, tmp_path / "refs", "bare", None)
    common = ["--checkpoint", str(checkpoint), "--text", "Hello there.", "--speaker", speakers[0]]
    common += ["--gl-iters", "2", "--threads", "1"]
    for reference, extra in ((sidecar, []), (bare, []), (sidecar, ["--no-reference-text"])):
        out = tmp_path / f"{reference.stem}_{len(extra)}.wav"
        assert main(["transfer", *common, "--reference", str(reference), "--out", str(out), *extra]) == 0
        assert out.is_file()
    assert seen == ["The lantern was red.", None, None]


def test_transfer_batch_reads_sidecars(voices, tmp_path) -> None:
    checkpoint, train, speakers = voices
    refs = tmp_path / "refs"
    _reference_without_sidecar(train, refs, "given", "Ignored beside a given transcript.")
    _reference_without_sidecar(train, refs, "sidecar", "The lantern was red.")
    _reference_without_sidecar(train, refs, "bare", None)
    batch = tmp_path / "batch.tsv"
    batch.write_text(
        "Hello there.\trefs/given.wav\tA transcript on the line.\n"
        "Hello there.\trefs/sidecar.wav\n"
        "Hello there.\trefs/bare.wav\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    argv = ["transfer", "--checkpoint", str(checkpoint), "--batch", str(batch), "--out", str(out)]
    argv += [
        "--speaker",
        speakers[1],
        "--reference-speaker",
        speakers[0],
        "--gl-iters",
        "2",
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["reference_text"] for r in rows] == ["A transcript on the line.", "The lantern was red.", None]
    assert {(r["speaker"], r["reference_speaker"]) for r in rows} == {(speakers[1], speakers[0])}


def test_a_model_without_a_null_summary_needs_the_transcript_in_one_clear_line(
    voices, tiny_checkpoint, tmp_path, capsys
) -> None:
    _, train, _ = voices
    bare = _reference_without_sidecar(train, tmp_path, "bare", None)
    synth = Synthesizer.from_checkpoint(tiny_checkpoint)  # trained without text_summary_dropout
    assert not synth.transcript_optional and synth.model.prosody.null_text_summary is None
    with pytest.raises(ValueError, match="--reference-text"):
        synth.embed(bare)
    common = [
        "transfer",
        "--checkpoint",
        str(tiny_checkpoint),
        "--text",
        "Hello there.",
        "--reference",
        str(bare),
        "--out",
        str(tmp_path / "o.wav"),
    ]
    for extra, needle in (([], "pass --reference-text"), (["--no-reference-text"], "--no-reference-text:")):
        assert main([*common, *extra, "--threads", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
        assert "pass reference_text" not in err[0]
    assert not (tmp_path / "o.wav").exists()


# a multi-speaker posterior that reads F0 relative to the reference's voice, with both stand-ins
RELATIVE = {
    "speaker_dim": 4,
    "speaker_dropout": 0.5,
    "text_summary_dropout": 0.5,
    "reference_pitch": True,
    "reference_pitch_relative": True,
}


@pytest.fixture(scope="module")
def relative(voices, tmp_path_factory):
    """The same corpus, a model whose posterior reads F0 relative to the reference's voice."""
    from conftest import TINY_MODEL, train_tiny

    checkpoint, train, speakers = voices
    prepared = checkpoint.parents[2] / "prepared"
    prosody = {**TINY_MODEL["prosody"], **RELATIVE}
    torch.manual_seed(0)
    return train_tiny(tmp_path_factory.mktemp("relative"), prepared, steps=2, prosody=prosody), prepared


def test_relative_model_keeps_each_training_voice_s_mean_f0(voices, relative) -> None:
    from prosody_vae.data.feature_cache import load_features

    _, train, speakers = voices
    checkpoint, prepared = relative
    synth = Synthesizer.from_checkpoint(checkpoint)
    assert synth.reads_relative_f0
    for index, speaker in enumerate(speakers):  # by hand, from the feature cache's F0 tracks
        f0 = torch.cat(
            [load_features(prepared / "features", u.id)["f0"] for u in train if u.speaker == speaker]
        )
        expected = float(torch.exp(torch.log(f0[f0 > 0].double()).mean()))
        assert float(synth.model.voice_pitch.voice_f0_hz[index]) == pytest.approx(expected, rel=1e-5)
    ref = train[0]
    known = synth.embed(ref.audio, reference_text=ref.text, speaker=ref.speaker).mean
    table = float(synth.model.voice_pitch.voice_f0_hz[speakers.index(ref.speaker)])
    given = synth.embed(ref.audio, reference_text=ref.text, speaker=ref.speaker, voice_f0=table).mean
    torch.testing.assert_close(known, given)
    # another recording of the same voice measures that voice's mean, not the reference's own
    other = next(u for u in train if u.speaker == ref.speaker and u.id != ref.id)
    assert synth.voice_f0([other.audio]) == pytest.approx(
        float(torch.exp(torch.log(torch.from_numpy(harvest(other.audio, synth))).mean())), rel=1e-6
    )
    with pytest.raises(ValueError, match=r"\[30, 1000\] Hz"):
        synth.embed(ref.audio, voice_f0=5.0)


def harvest(path, synth):
    """Voiced Harvest F0 of a file, as the synthesiser measures it."""
    from prosody_vae.audio import harvest_f0

    f0 = harvest_f0(synth.load_reference(path), synth.audio)
    return f0[f0 > 0]


def test_transfer_takes_the_reference_voice_s_mean_f0(voices, relative, tmp_path, capsys) -> None:
    checkpoint, train, speakers = voices
    relative_checkpoint, _ = relative
    ref, other = train[0], next(u for u in train if u.speaker == train[0].speaker and u.id != train[0].id)
    common = ["transfer", "--text", "Hello there.", "--reference", str(ref.audio), "--speaker", speakers[1]]
    common += ["--reference-text", ref.text, "--gl-iters", "2", "--threads", "1"]
    out = tmp_path / "clips.wav"
    argv = [*common, "--checkpoint", str(relative_checkpoint), "--reference-voice-clips", str(other.audio)]
    assert main([*argv, "--out", str(out)]) == 0
    assert out.is_file() and "reference voice: mean F0" in capsys.readouterr().err
    out = tmp_path / "hz.wav"
    assert (
        main(
            [
                *common,
                "--checkpoint",
                str(relative_checkpoint),
                "--reference-voice-f0",
                "180",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.is_file()
    # a model that reads F0 in Hz, or none, refuses a voice mean in one line
    assert (
        main([*common, "--checkpoint", str(checkpoint), "--reference-voice-f0", "180", "--out", str(out)])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reference_pitch_relative" in err[0], err


@pytest.fixture(scope="module")
def relative_pitch(voices, tmp_path_factory):
    """The relative model of :func:`relative`, its decoder also predicting F0 (WORLD-vocoded)."""
    from conftest import TINY_MODEL, train_tiny

    checkpoint, _, _ = voices
    prosody = {**TINY_MODEL["prosody"], **RELATIVE}
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("relative_pitch")
    return train_tiny(
        root, checkpoint.parents[2] / "prepared", steps=2, backbone={"pitch": True}, prosody=prosody
    )


def test_pitch_level_reference_moves_the_output_to_the_reference_voice_s_register(
    voices, relative_pitch
) -> None:
    _, train, speakers = voices
    synth = Synthesizer.from_checkpoint(relative_pitch)
    table = {s: float(synth.model.voice_pitch.voice_f0_hz[i]) for i, s in enumerate(speakers)}
    ref = train[0]
    target = next(s for s in speakers if s != ref.speaker)
    own = float(torch.exp(torch.log(torch.from_numpy(harvest(ref.audio, synth)).double()).mean()))

    def run(level: str, **options):
        torch.manual_seed(3)  # the prenet's dropout: the same decoding for both levels
        return synth.transfer(
            "Hello there.", ref.audio, reference_text=ref.text, speaker=target, pitch_level=level, **options
        )

    for options, reference_hz in (
        ({"reference_voice_f0": 180.0}, 180.0),  # a mean the caller gives
        ({"reference_speaker": ref.speaker}, table[ref.speaker]),  # a training voice's, from the table
        ({}, own),  # neither: the reference's own mean
    ):
        kept, moved = run("target", **options), run("reference", **options)
        torch.testing.assert_close(moved.mel, kept.mel)  # the same z, the same decoding
        assert bool((kept.f0 > 0).any())
        torch.testing.assert_close(moved.f0, kept.f0 * (reference_hz / table[target]), rtol=1e-4, atol=1e-3)
        assert bool(((moved.f0 > 0) == (kept.f0 > 0)).all())  # unvoiced frames stay unvoiced
    with pytest.raises(ValueError, match="'target' or 'reference'"):
        run("absolute")


def test_pitch_level_reference_is_refused_by_models_that_cannot_move_it(
    voices, relative, relative_pitch, tmp_path, capsys
) -> None:
    checkpoint, train, speakers = voices
    relative_checkpoint, _ = relative
    ref = train[0]
    common = ["transfer", "--text", "Hello there.", "--reference", str(ref.audio), "--speaker", speakers[1]]
    common += ["--reference-text", ref.text, "--threads", "1", "--pitch-level", "reference"]
    out = tmp_path / "moved.wav"
    assert main([*common, "--checkpoint", str(relative_pitch), "--out", str(out)]) == 0
    assert out.is_file()
    for model, needle in ((relative_checkpoint, "backbone.pitch"), (checkpoint, "reference_pitch_relative")):
        capsys.readouterr()
        assert main([*common, "--checkpoint", str(model), "--out", str(tmp_path / "no.wav")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--pitch-level reference" in err[0] and needle in err[0], err
        assert not (tmp_path / "no.wav").exists()


def test_a_packed_default_speaker_is_used_when_none_is_named(voices, tmp_path, capsys) -> None:
    from prosody_vae.inference.packed import pack_model

    checkpoint, train, speakers = voices
    with pytest.raises(ValueError, match="not one of its speakers"):
        pack_model(checkpoint, tmp_path / "bad.pt", default_speaker="nobody")
    packed = pack_model(checkpoint, tmp_path / "packed.pt", dtype=torch.float32, default_speaker=speakers[1])
    synth = Synthesizer.from_checkpoint(packed)
    assert synth.default_speaker == speakers[1]
    assert Synthesizer.from_checkpoint(checkpoint).default_speaker is None  # a training checkpoint has none
    z = torch.zeros(1, synth.model.prosody.latent_dim)
    outputs = {}
    for name in (None, speakers[1], speakers[0]):
        torch.manual_seed(0)  # the prenet's dropout
        outputs[name] = synth.synthesize(["Hello there."], z, speaker=name)[0].mel
    torch.testing.assert_close(outputs[None], outputs[speakers[1]])  # None is the default voice
    assert not torch.allclose(outputs[speakers[0]], outputs[speakers[1]])  # and the voice matters
    ref = train[0]
    # a reference whose voice is untold is read as spoken in the default voice ...
    untold = synth.embed(ref.audio, reference_text=ref.text).mean
    torch.testing.assert_close(
        untold, synth.embed(ref.audio, reference_text=ref.text, speaker=speakers[1]).mean
    )
    assert not torch.allclose(
        untold, synth.embed(ref.audio, reference_text=ref.text, speaker=speakers[0]).mean
    )
    # ... and without a default, as a voice the model does not know (its unknown-voice vector)
    plain = Synthesizer.from_checkpoint(checkpoint)
    assert not torch.allclose(plain.embed(ref.audio, reference_text=ref.text).mean, untold)
    out = tmp_path / "t.wav"
    argv = ["transfer", "--checkpoint", str(packed), "--text", "Hello there.", "--reference", str(ref.audio)]
    assert main([*argv, "--reference-text", ref.text, "--gl-iters", "2", "--out", str(out)]) == 0
    assert out.is_file()
    # the unpacked checkpoint has no default: leaving --speaker out is one clear error
    capsys.readouterr()
    argv[2] = str(checkpoint)
    assert main([*argv, "--reference-text", ref.text, "--out", str(tmp_path / "u.wav")]) == 2
    assert "pass a speaker" in capsys.readouterr().err
