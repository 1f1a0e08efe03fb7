"""The built-in corpus's question rise: SSML, settings, and what espeak-ng realises."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import soundfile as sf

from prosody_vae.audio import AudioConfig, harvest_f0, load_audio
from prosody_vae.data.espeak import corpus_question_rise, synthesize, synthesize_with_settings
from prosody_vae.data.espeak.intonation import contour_ssml, is_question, tune_ssml, word_offsets
from prosody_vae.data.espeak.plan import check_settings, corpus_settings, plan_corpus
from prosody_vae.metrics.intonation import final_rise_st

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
PAIRS = (
    ("The boat is red.", "Is the boat red?"),
    ("She can swim across the lake.", "Can she swim across the lake?"),
    ("Maria found the blue kite.", "Did Maria find the blue kite?"),
)


def _pitches(ssml: str) -> list[tuple[str, str]]:
    """(pitch attribute, text) of every ``<prosody pitch>`` element."""
    return [
        (node.get("pitch"), node.text) for node in ET.fromstring(ssml).iter("prosody") if node.get("pitch")
    ]


def test_only_a_questions_last_word_is_raised():
    assert _pitches(tune_ssml("Is the boat red?", pitch_range=50, question_rise=20)) == [("+20", "red?")]
    assert _pitches(tune_ssml("The boat is red.", pitch_range=50, question_rise=20)) == []
    assert _pitches(tune_ssml("Is the boat red?", pitch_range=50)) == []  # 0: the original SSML
    assert tune_ssml("Is it?", pitch_range=50) == '<speak><prosody range="50">Is it?</prosody></speak>'
    words = "Did the baker sell the clock?".split()
    plain = word_offsets(words, pitch_range=60, contour=30)
    raised = [
        int(p)
        for p, _ in _pitches(contour_ssml(" ".join(words), pitch_range=60, contour=30, question_rise=12))
    ]
    assert raised[:-1] == plain[:-1] and raised[-1] == plain[-1] + 12
    assert is_question("Really? ") and not is_question("Is it? No.")


@pytest.mark.parametrize("rise", [-1, 41, 2.5, True])
def test_a_bad_question_rise_is_refused(rise):
    with pytest.raises(ValueError, match="question_rise"):
        corpus_settings(
            seed=0, multi_speaker=False, held_out_fraction=0.05, espeak_version="", question_rise=rise
        )
    with pytest.raises(ValueError, match="question_rise"):
        tune_ssml("Is it?", pitch_range=50, question_rise=rise)


def test_the_rise_is_part_of_the_corpus_definition(tmp_path):
    original = corpus_settings(seed=0, multi_speaker=False, held_out_fraction=0.05, espeak_version="v")
    raised = corpus_settings(
        seed=0, multi_speaker=False, held_out_fraction=0.05, espeak_version="v", question_rise=20
    )
    assert "question_rise" not in original and raised["question_rise"] == 20
    description = tmp_path / "corpus.json"
    description.write_text(json.dumps(original))
    check_settings(description, original)  # a corpus built before the key existed still matches
    with pytest.raises(ValueError, match="question_rise: 0 -> 20"):
        check_settings(description, raised)
    # The plan is the original's utterance for utterance; only questions carry the rise.
    before = plan_corpus(200, seed=0, voices=["en-us"], held_out_fraction=0.05)
    after = plan_corpus(200, seed=0, voices=["en-us"], held_out_fraction=0.05, question_rise=20)
    assert [(p.text, p.pitch, p.pitch_range, p.rate) for p in before] == [
        (p.text, p.pitch, p.pitch_range, p.rate) for p in after
    ]
    assert {p.question_rise for p in after if p.text.endswith("?")} == {20}
    assert {p.question_rise for p in after if not p.text.endswith("?")} == {0}
    assert any(p.text.endswith("?") for p in after)


@needs_espeak
def test_raised_questions_end_clearly_above_their_statements(tmp_path):
    """Measured: with the rise every question ends well above its statement, at a narrow and a wide
    range, by more than espeak-ng's own question tune gives."""
    config = AudioConfig()

    def rise(text: str, pitch_range: int, question_rise: int) -> float:
        path = tmp_path / f"{abs(hash((text, pitch_range, question_rise)))}.wav"
        synthesize(
            text, pitch=50, pitch_range=pitch_range, rate=175, out_path=path, question_rise=question_rise
        )
        return final_rise_st(np.asarray(harvest_f0(load_audio(path, config), config)))

    for pitch_range in (10, 90):
        statements = [rise(s, pitch_range, 0) for s, _ in PAIRS]
        plain = [rise(q, pitch_range, 0) - end for (_, q), end in zip(PAIRS, statements, strict=True)]
        raised = [rise(q, pitch_range, 20) - end for (_, q), end in zip(PAIRS, statements, strict=True)]
        assert min(raised) > 1.5, (pitch_range, raised)
        assert np.mean(raised) > np.mean(plain) + 1.0, (pitch_range, plain, raised)


@needs_espeak
def test_settings_of_a_corpus_utterance_speak_again_exactly_and_the_rise_is_read_from_its_corpus(tmp_path):
    labels = {"pitch": 40.0, "pitch_range": 60.0, "rate": 190.0, "contour": 80.0, "f0_mean_hz": 1.0}
    again = synthesize_with_settings(
        "Is the boat red?", labels, voice="en-us", question_rise=20, out_path=tmp_path / "again.wav"
    )
    direct = synthesize(
        "Is the boat red?",
        pitch=40,
        pitch_range=60,
        rate=190,
        contour=80,
        question_rise=20,
        voice="en-us",
        out_path=tmp_path / "direct.wav",
    )
    assert sf.read(again)[0].tolist() == sf.read(direct)[0].tolist()
    assert (
        synthesize_with_settings("Hi.", {"pitch": 40.0}, voice="en-us", out_path=tmp_path / "x.wav") is None
    )
    (tmp_path / "corpus" / "wavs").mkdir(parents=True)
    recording = tmp_path / "corpus" / "wavs" / "u1.wav"
    assert corpus_question_rise(recording) == 0  # no corpus.json: no rise
    (tmp_path / "corpus" / "corpus.json").write_text(json.dumps({"question_rise": 20}))
    assert corpus_question_rise(recording) == 20
