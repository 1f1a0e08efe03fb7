"""Tempo: the rate relative to a sentence's neutral duration (prosody_vae.evaluation.tempo)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from prosody_vae.audio import AudioConfig, load_audio
from prosody_vae.data.espeak import phonemes, synthesize
from prosody_vae.data.manifest import read_manifest
from prosody_vae.evaluation import evaluate_pairs, pairs_from_manifest
from prosody_vae.evaluation.speakers import CrossVoiceItem, cross_voice_correlations
from prosody_vae.evaluation.tempo import neutral_duration, tempo

CONFIG = AudioConfig()

# Sentences of unlike make: short and long words, a question, many stops, long vowels.
SENTENCES = (
    "The cat sat on the mat.",
    "Would you like to borrow my umbrella tomorrow morning?",
    "Strict tests kept pace with it.",
    "Oh, how lovely those old rooms are!",
    "Please bring the green bottle back before lunch.",
    "We were away all day.",
)


def _trimmed_seconds(path: Path) -> float:
    return load_audio(path, CONFIG).shape[0] / CONFIG.sample_rate


def _spoken(text: str, rate: int, voice: str, folder: Path) -> float:
    path = synthesize(
        text,
        pitch=50,
        pitch_range=50,
        rate=rate,
        voice=voice,
        out_path=folder / f"{abs(hash((text, rate)))}.wav",
    )
    return _trimmed_seconds(path)


def test_tempo_follows_the_speaking_rate_setting(tmp_path) -> None:
    text = SENTENCES[1]
    assert tempo(text, _spoken(text, 175, "en-us", tmp_path), config=CONFIG) == pytest.approx(1.0)
    slow = tempo(text, _spoken(text, 120, "en-us", tmp_path), config=CONFIG)
    fast = tempo(text, _spoken(text, 260, "en-us", tmp_path), config=CONFIG)
    # espeak-ng's durations scale with the setting, not exactly in proportion (fixed pauses, limits)
    assert 0.6 < slow < 0.8 < 1.3 < fast < 1.6
    assert tempo(text, 2 * neutral_duration(text, config=CONFIG), config=CONFIG) == pytest.approx(0.5)


def test_tempo_removes_most_of_the_sentence_effect_in_another_voice(tmp_path) -> None:
    """At one setting, sentences differ in phones per second; their tempi differ far less, also in a
    voice other than the neutral one."""
    log_rate, log_tempo = [], []
    for text in SENTENCES:
        seconds = _spoken(text, 200, "en+f2", tmp_path)
        log_rate.append(math.log(len(phonemes(text)) / seconds))
        log_tempo.append(math.log(tempo(text, seconds, config=CONFIG)))
    assert np.std(log_rate) > 0.04  # the effect tempo is for is there
    assert np.std(log_tempo) < 0.5 * np.std(log_rate)


def test_tempo_is_undefined_for_no_duration() -> None:
    assert math.isnan(tempo("Hello there.", 0.0, config=CONFIG))
    assert math.isnan(tempo("Hello there.", math.nan, config=CONFIG))
    with pytest.raises(ValueError, match="non-empty"):
        neutral_duration("  ", config=CONFIG)


def test_inter_text_tempo_correlates_where_phone_rate_is_blurred(tmp_path) -> None:
    """An exact inter-text transfer of the rate (the reference's setting spoken on another sentence):
    the tempo's cross-voice r is nearer 1 than the phone rate's."""
    rates = (130, 160, 190, 220, 250, 280)
    items = []
    for index, rate in enumerate(rates):
        ref_text, out_text = SENTENCES[index], SENTENCES[(index + 3) % len(SENTENCES)]
        ref_s, out_s = _spoken(ref_text, rate, "en+f2", tmp_path), _spoken(out_text, rate, "en-us", tmp_path)
        items.append(
            CrossVoiceItem(
                f"ref{index}",
                "en+f2",
                "en-us",
                {
                    "speaking_rate": len(phonemes(ref_text)) / ref_s,
                    "tempo": tempo(ref_text, ref_s, config=CONFIG),
                },
                {
                    "speaking_rate": len(phonemes(out_text)) / out_s,
                    "tempo": tempo(out_text, out_s, config=CONFIG),
                },
            )
        )
    pooled = cross_voice_correlations(items).pooled
    assert pooled["tempo_log"].n == len(rates)
    assert pooled["tempo_log"].r > 0.97
    assert pooled["tempo_log"].r > pooled["rate_log"].r


def test_evaluate_measures_tempo_when_the_manifest_has_both_texts(tiny_prepared, tmp_path) -> None:
    utterances = read_manifest(tiny_prepared / "splits" / "train.jsonl")[:4]
    lines = [
        {
            "id": f"t{i}",
            "output": str(out.audio),
            "reference": str(ref.audio),
            "text": out.text,
            "reference_text": ref.text,
            "kind": "transfer",
        }
        for i, (ref, out) in enumerate(zip(utterances[:3], utterances[1:4], strict=True))
    ]
    lines.append({"id": "bare", "output": str(utterances[0].audio), "reference": str(utterances[1].audio)})
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = evaluate_pairs(pairs_from_manifest(manifest), num_workers=0)
    scores = {s.item.id: s.values for s in result.paired()}
    for i, (ref, out) in enumerate(zip(utterances[:3], utterances[1:4], strict=True)):
        values = scores[f"t{i}"]
        assert values["out_tempo"] == pytest.approx(
            tempo(out.text, _trimmed_seconds(out.audio), config=CONFIG)
        )
        assert values["ref_tempo"] == pytest.approx(
            tempo(ref.text, _trimmed_seconds(ref.audio), config=CONFIG)
        )
    assert "out_tempo" not in scores["bare"] and "ref_tempo" not in scores["bare"]
    correlation = result.correlations(result.paired())["tempo"]
    assert correlation.n == 3  # the bare pair has no tempo
    assert "r(ref, out) tempo" in result.format_table()
