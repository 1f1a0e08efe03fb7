"""``--speaker`` end to end: a tiny multi-speaker model trained in the test, then transfer per speaker."""

from __future__ import annotations

import pytest
import soundfile as sf

from prosody_vae.cli import main
from prosody_vae.data.manifest import read_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def multi_speaker(tmp_path_factory):
    from conftest import TINY_MODEL, train_tiny

    from prosody_vae.audio import AudioConfig
    from prosody_vae.data import prepare_corpus
    from prosody_vae.data.espeak.synthesis import build_corpus

    root = tmp_path_factory.mktemp("speakers")
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
    checkpoint = train_tiny(root, prepared, prosody={**TINY_MODEL["prosody"], "speaker_dim": 4})
    train = read_manifest(prepared / "splits" / "train.jsonl")
    speakers = sorted({u.speaker for u in train})
    assert len(speakers) >= 2, speakers  # the seed gives a multi-speaker training split
    return checkpoint, train, speakers


def _transfer(checkpoint, reference, out, *speaker: str) -> int:
    return main(
        [
            "transfer",
            "--checkpoint",
            str(checkpoint),
            "--text",
            "Hello there.",
            "--reference",
            reference.audio,
        ]
        + [
            "--reference-text",
            reference.text,
            "--out",
            str(out),
            "--gl-iters",
            "2",
            "--threads",
            "1",
            *speaker,
        ]
    )


def test_transfer_with_each_speaker(multi_speaker, tmp_path):
    from prosody_vae.inference.synthesizer import Synthesizer

    checkpoint, train, speakers = multi_speaker
    synth = Synthesizer.from_checkpoint(checkpoint)
    assert synth.speakers == speakers and synth.model.speaker_embedding is not None
    for name in speakers[:2]:
        out = tmp_path / f"{name}.wav"
        assert _transfer(checkpoint, train[0], out, "--speaker", name) == 0
        assert len(sf.read(out)[0]) > 256
    # the speaker reaches the posterior: the same reference embeds differently per speaker
    a = synth.embed(train[0].audio, reference_text=train[0].text, speaker=speakers[0]).mean
    b = synth.embed(train[0].audio, reference_text=train[0].text, speaker=speakers[1]).mean
    assert not a.allclose(b)


@pytest.mark.parametrize("speaker", [["--speaker", "nobody"], []])
def test_unknown_or_missing_speaker_is_a_clear_error(multi_speaker, tmp_path, capsys, speaker):
    checkpoint, train, speakers = multi_speaker
    assert _transfer(checkpoint, train[0], tmp_path / "o.wav", *speaker) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert ("unknown speaker 'nobody'" if speaker else "multi-speaker") in err[0]
    assert speakers[0] in err[0]  # the message lists the speakers the model knows
    assert not (tmp_path / "o.wav").exists()
