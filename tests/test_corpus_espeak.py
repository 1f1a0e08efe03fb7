"""The built-in espeak-ng corpus: grammar, synthesis with controllable prosody, corpus building."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from prosody_vae.audio import AudioConfig
from prosody_vae.data.espeak import (
    FACTOR_BOUNDS,
    HELD_OUT_PROSODY,
    EspeakError,
    build_corpus,
    generate_sentences,
    held_out_sentences,
    measure_prosody,
    phonemes,
    synthesize,
)
from prosody_vae.data.espeak.grammar import NUM_HELD_OUT, word_count
from prosody_vae.data.espeak.plan import plan_corpus
from prosody_vae.data.manifest import read_manifest, write_manifest

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
SENTENCE = "The old captain found a yellow kite near the river."


# ---------------------------------------------------------------- grammar


def test_grammar_is_deterministic_and_distinct():
    first = generate_sentences(300, seed=7)
    assert first == generate_sentences(300, seed=7)
    assert first != generate_sentences(300, seed=8)
    assert len(set(first)) == len(first)
    # Growing a corpus keeps its existing texts.
    assert generate_sentences(120, seed=7) == first[:120]


def test_grammar_sentences_are_short_and_varied():
    sentences = generate_sentences(2000, seed=0)
    counts = [word_count(sentence) for sentence in sentences]
    assert min(counts) >= 4 and max(counts) <= 12
    assert {sentence[-1] for sentence in sentences} == {".", "?", "!"}


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_held_out_sentences_never_in_training(seed):
    held_out = held_out_sentences()
    assert len(held_out) == NUM_HELD_OUT == len(set(held_out))
    assert not set(held_out) & set(generate_sentences(3000, seed=seed))


def test_generate_sentences_rejects_bad_n():
    with pytest.raises(ValueError, match="-1"):
        generate_sentences(-1)


# ---------------------------------------------------------------- plan


def test_plan_flags_follow_the_held_out_definitions():
    plans = plan_corpus(400, seed=3, voices=["en-us", "en-us+f3"], held_out_fraction=0.1)
    held_out = set(held_out_sentences())
    for plan in plans:
        for name, (low, high) in FACTOR_BOUNDS.items():
            assert low <= getattr(plan, name) <= high
        corner = all(low <= getattr(plan, name) <= high for name, (low, high) in HELD_OUT_PROSODY.items())
        assert plan.held_out_prosody == corner
        assert plan.held_out_text == (plan.text in held_out)
    assert any(plan.held_out_text for plan in plans) and any(plan.held_out_prosody for plan in plans)
    assert {plan.voice for plan in plans} == {"en-us", "en-us+f3"}
    # Growing the corpus keeps the plan of existing utterances.
    assert plan_corpus(50, seed=3, voices=["en-us", "en-us+f3"], held_out_fraction=0.1) == plans[:50]


# ---------------------------------------------------------------- synthesis


def _measure(tmp_path: Path, name: str, **factors) -> dict[str, float]:
    settings = {"pitch": 50, "pitch_range": 50, "rate": 175, **factors}
    path = synthesize(SENTENCE, out_path=tmp_path / f"{name}.wav", **settings)
    return measure_prosody(path, config=AudioConfig())


@needs_espeak
def test_prosody_factors_move_the_realised_prosody(tmp_path):
    low, high = _measure(tmp_path, "low", pitch=10), _measure(tmp_path, "high", pitch=90)
    assert high["f0_mean_hz"] > low["f0_mean_hz"] * 1.3
    slow, fast = _measure(tmp_path, "slow", rate=140), _measure(tmp_path, "fast", rate=280)
    assert fast["duration_s"] < slow["duration_s"] * 0.75
    flat, wide = _measure(tmp_path, "flat", pitch_range=0), _measure(tmp_path, "wide", pitch_range=100)
    assert wide["f0_range_st"] > flat["f0_range_st"] + 2.0


@needs_espeak
def test_synthesize_rejects_out_of_range_factor(tmp_path):
    with pytest.raises(ValueError, match="pitch must be"):
        synthesize(SENTENCE, pitch=120, pitch_range=50, rate=175, out_path=tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


@needs_espeak
def test_phonemes_count_grows_with_text():
    short, long = phonemes("The cat."), phonemes("The cat sat on the mat near the old river.")
    assert 0 < len(short) < len(long)


def test_missing_espeak_binary_says_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(EspeakError, match="apt-get install espeak-ng"):
        synthesize(
            SENTENCE, pitch=50, pitch_range=50, rate=175, out_path=tmp_path / "x.wav", espeak="no-such-tts"
        )
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH at all
    with pytest.raises(EspeakError, match="apt-get install espeak-ng"):
        build_corpus(tmp_path / "corpus", n_utterances=2, num_workers=1, progress=False)
    assert not (tmp_path / "corpus").exists()


def test_failing_espeak_reports_its_exit_status(tmp_path):
    fake = tmp_path / "espeak-ng"
    fake.write_text("#!/bin/sh\necho 'voice not found' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(EspeakError, match="status 3.*voice not found"):
        synthesize(
            SENTENCE, pitch=50, pitch_range=50, rate=175, out_path=tmp_path / "x.wav", espeak=str(fake)
        )
    assert not list(tmp_path.glob("*.wav*"))  # no partial output left behind


# ---------------------------------------------------------------- corpus


@needs_espeak
def test_build_corpus_is_idempotent_and_round_trips(tmp_path):
    out = tmp_path / "corpus"
    manifest = build_corpus(out, n_utterances=3, seed=5, num_workers=1, progress=False, held_out_fraction=0.5)
    utterances = read_manifest(manifest)
    assert [utt.id for utt in utterances] == ["espeak_00000", "espeak_00001", "espeak_00002"]
    for utt in utterances:
        assert Path(utt.audio).is_file() and utt.duration > 0
        assert {"pitch", "pitch_range", "rate", "f0_mean_hz", "f0_range_st", "phones_per_s"} <= set(
            utt.labels
        )
        assert utt.labels["held_out_text"] in (0.0, 1.0) and utt.labels["held_out_prosody"] in (0.0, 1.0)
    description = json.loads((out / "corpus.json").read_text())
    assert description["complete"] and description["counts"]["synthesised_this_run"] == 3
    held_out_lines = (out / "held_out_texts.txt").read_text().splitlines()
    flagged = [u.text for u in utterances if u.labels["held_out_text"] or u.labels["held_out_prosody"]]
    assert sorted(held_out_lines) == sorted(set(flagged))

    wavs = sorted((out / "wavs").glob("*.wav"))
    mtimes = {path: path.stat().st_mtime_ns for path in wavs}
    build_corpus(out, n_utterances=3, seed=5, num_workers=1, progress=False, held_out_fraction=0.5)
    assert {path: path.stat().st_mtime_ns for path in wavs} == mtimes
    assert json.loads((out / "corpus.json").read_text())["counts"]["synthesised_this_run"] == 0
    assert read_manifest(manifest) == utterances

    copy = tmp_path / "copy.jsonl"
    write_manifest(copy, utterances)
    assert read_manifest(copy) == utterances


@needs_espeak
def test_build_corpus_refuses_a_folder_built_with_other_settings(tmp_path):
    out = tmp_path / "corpus"
    build_corpus(out, n_utterances=1, seed=0, num_workers=1, progress=False)
    with pytest.raises(ValueError, match="corpus.json.*seed"):
        build_corpus(out, n_utterances=1, seed=1, num_workers=1, progress=False)


@needs_espeak
def test_build_corpus_resynthesises_a_corrupt_wav(tmp_path):
    out = tmp_path / "corpus"
    build_corpus(out, n_utterances=1, num_workers=1, progress=False)
    wav = out / "wavs" / "espeak_00000.wav"
    wav.write_bytes(b"not a wav")
    build_corpus(out, n_utterances=1, num_workers=1, progress=False)
    assert json.loads((out / "corpus.json").read_text())["counts"]["synthesised_this_run"] == 1
    assert os.path.getsize(wav) > 1000


def test_build_corpus_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_utterances"):
        build_corpus(tmp_path, n_utterances=0)
    with pytest.raises(ValueError, match="held_out_fraction"):
        build_corpus(tmp_path, n_utterances=2, held_out_fraction=1.5)
