"""The multi-voice corpus and the stylised contour: plan, held-out voices, SSML, intonation labels."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from prosody_vae.audio import AudioConfig
from prosody_vae.data.espeak import build_corpus, check_voices, intonation_labels, measure_prosody, synthesize
from prosody_vae.data.espeak.check import CONTOUR_MIN_RANGE, voice_label_checks
from prosody_vae.data.espeak.intonation import CONTOUR_SPAN, TUNE_RANGE, contour_ssml, tune_ssml, word_offsets
from prosody_vae.data.espeak.labels import clean_f0
from prosody_vae.data.espeak.plan import (
    CONTOUR_FACTOR_BOUNDS,
    CONTOUR_HELD_OUT_PROSODY,
    check_settings,
    corpus_settings,
    plan_corpus,
)
from prosody_vae.data.manifest import Utterance, read_manifest
from prosody_vae.data.splits import split_utterances

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
ROOT = Path(__file__).resolve().parents[1]
MULTIVOICE = ROOT / "egs" / "espeak_prosody" / "conf" / "corpus_multivoice.yaml"
TRAIN = ["en-us", "en-us+m3", "en+f4"]
HELD = ["en-029+m7", "en-us-nyc+f5"]
SENTENCES = (
    "The old captain found a yellow kite near the river.",
    "Did the careful baker sell the silver clock on Sunday?",
    "Please move the golden lantern behind the barn.",
    "Vera promised that the painter mended our basket.",
    "Why is the sleepy farmer so worried this morning?",
    "How surprised the young nurse looked at midnight!",
)


# ---------------------------------------------------------------- plan and settings


def test_plan_draws_training_and_held_out_voices_as_configured():
    plans = plan_corpus(
        600, seed=4, voices=TRAIN, held_out_fraction=0.05, held_out_voices=HELD, intonation="contour"
    )
    voices = TRAIN + HELD
    assert {plan.voice for plan in plans} == set(voices)
    for plan in plans:
        assert plan.voice == voices[plan.voice_index]
        assert plan.held_out_voice == (plan.voice in HELD)
        assert plan.labels()["held_out_voice"] == float(plan.voice in HELD)
        assert plan.held_out == (plan.held_out_text or plan.held_out_prosody or plan.voice in HELD)
        for name, (low, high) in CONTOUR_FACTOR_BOUNDS.items():
            assert low <= getattr(plan, name) <= high
        corner = all(low <= getattr(plan, n) <= high for n, (low, high) in CONTOUR_HELD_OUT_PROSODY.items())
        assert plan.held_out_prosody == corner
    # Uniform over all five voices: the held-out share is near 2/5.
    share = np.mean([plan.held_out_voice for plan in plans])
    assert 0.33 < share < 0.47
    # The peak position is drawn over its whole range, independently of the voice.
    assert min(plan.contour for plan in plans) <= 5 and max(plan.contour for plan in plans) >= 95


def test_the_original_design_keeps_its_plan_and_labels():
    plans = plan_corpus(2, seed=0, voices=["en-us"], held_out_fraction=0.05)
    # The first utterances of the shipped corpus (data/espeak_prosody, seed 0).
    assert (plans[0].text, plans[0].pitch, plans[0].pitch_range, plans[0].rate) == (
        "Clara noticed that Felix moved their candle.",
        51,
        27,
        183,
    )
    assert (plans[1].pitch, plans[1].pitch_range, plans[1].rate) == (90, 56, 182)
    assert set(plans[0].labels()) == {
        "pitch",
        "pitch_range",
        "rate",
        "voice_index",
        "held_out_text",
        "held_out_prosody",
    }
    # Held-out voices change who speaks, not what is said or with which prosody.
    with_held = plan_corpus(40, seed=0, voices=["en-us"], held_out_fraction=0.05, held_out_voices=["en+f4"])
    original = plan_corpus(40, seed=0, voices=["en-us"], held_out_fraction=0.05)
    assert [(p.text, p.pitch, p.pitch_range, p.rate) for p in with_held] == [
        (p.text, p.pitch, p.pitch_range, p.rate) for p in original
    ]


def test_settings_of_the_original_corpus_are_unchanged_and_new_ones_are_recorded(tmp_path):
    original = corpus_settings(seed=0, multi_speaker=False, held_out_fraction=0.05, espeak_version="v")
    assert "held_out_voices" not in original and "intonation" not in original
    assert original["voices"] == ["en-us"] and original["multi_speaker"] is False
    multi = corpus_settings(
        seed=0,
        multi_speaker=False,
        held_out_fraction=0.05,
        espeak_version="v",
        voices=TRAIN,
        held_out_voices=HELD,
        intonation="contour",
    )
    assert multi["voices"] == TRAIN + HELD and multi["held_out_voices"] == HELD
    assert multi["intonation"] == "contour" and multi["factor_bounds"]["contour"] == [0, 100]
    # A folder described before the new keys existed matches the original settings...
    description = tmp_path / "corpus.json"
    description.write_text(json.dumps(original))
    check_settings(description, original)
    # ... and one with held-out voices refuses a build that names others.
    description.write_text(json.dumps(multi))
    other = corpus_settings(
        seed=0,
        multi_speaker=False,
        held_out_fraction=0.05,
        espeak_version="v",
        voices=TRAIN,
        held_out_voices=HELD[:1],
        intonation="contour",
    )
    with pytest.raises(ValueError, match="held_out_voices"):
        check_settings(description, other)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"voices": TRAIN, "held_out_voices": ["en-us"]}, r"\['en-us'\] are also training voices"),
        ({"voices": ["en-us", "en-us"]}, r"lists \['en-us'\] more than once"),
        ({"voices": "en-us"}, "must be a list"),
        ({"voices": ["en us"]}, "'en us' is not an espeak-ng voice"),
        ({"voices": []}, "at least one"),
        ({"voices": TRAIN, "multi_speaker": True}, "either multi_speaker or voices"),
        ({"intonation": "wavy"}, "'wavy'"),
    ],
)
def test_corpus_settings_reject_bad_voice_settings(arguments, message):
    settings = {
        "seed": 0,
        "multi_speaker": False,
        "held_out_fraction": 0.05,
        "espeak_version": "",
        **arguments,
    }
    with pytest.raises(ValueError, match=message):
        corpus_settings(**settings)


def test_the_multivoice_config_names_enough_distinct_voices():
    config = yaml.safe_load(MULTIVOICE.read_text())
    assert len(config["voices"]) >= 16 and len(config["held_out_voices"]) >= 4
    settings = corpus_settings(
        seed=config["seed"],
        multi_speaker=False,
        held_out_fraction=config["held_out_fraction"],
        espeak_version="",
        voices=config["voices"],
        held_out_voices=config["held_out_voices"],
        intonation=config["intonation"],
    )
    assert settings["held_out_voices"] == config["held_out_voices"]
    # A held-out voice shares neither its variant nor its accent with any training voice.
    train_parts = {part for voice in config["voices"] for part in voice.split("+")}
    for voice in config["held_out_voices"]:
        assert not set(voice.split("+")) & train_parts, voice


@needs_espeak
def test_every_configured_voice_is_known_to_espeak():
    config = yaml.safe_load(MULTIVOICE.read_text())
    check_voices(config["voices"] + config["held_out_voices"])
    with pytest.raises(ValueError, match=r"'en-us\+m99'.*no variant 'm99'"):
        check_voices(["en-us", "en-us+m99"])
    with pytest.raises(ValueError, match="'xx-nowhere'"):
        check_voices(["xx-nowhere+m3"])


# ---------------------------------------------------------------- held-out voices never reach training


@needs_espeak
def test_held_out_voices_never_reach_train_or_valid(tmp_path):
    manifest = build_corpus(
        tmp_path / "corpus",
        n_utterances=12,
        seed=1,
        num_workers=1,
        progress=False,
        voices=["en-us"],
        held_out_voices=["en+f4"],
        intonation="contour",
    )
    utterances = read_manifest(manifest)
    held_voice = {u.id for u in utterances if u.labels["held_out_voice"] == 1.0}
    assert held_voice == {u.id for u in utterances if u.speaker == "en+f4"}
    assert 0 < len(held_voice) < len(utterances)
    description = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    assert description["held_out_voices"] == ["en+f4"] and description["voices"] == ["en-us", "en+f4"]
    assert description["counts"]["held_out_voice"] == len(held_voice)
    # Split as stage 1 of the recipe does (prepare_corpus --held-out-texts ... --group-by text), with
    # large valid and test shares so that every split is populated.
    held_out_texts = (tmp_path / "corpus" / "held_out_texts.txt").read_text().splitlines()
    for seed in range(5):
        splits = split_utterances(utterances, 0.3, 0.2, seed, group_by="text", held_out_texts=held_out_texts)
        assert not held_voice & {u.id for u in splits["train"] + splits["valid"]}
        assert held_voice <= {u.id for u in splits["test"]}
    # The manifest keeps the measured intonation labels of every utterance.
    for utt in utterances:
        assert {"contour", "f0_spread_st", "f0_peak_position"} <= set(utt.labels)


# ---------------------------------------------------------------- the stylised contour


def test_word_offsets_follow_the_tent():
    words = "The old captain found a yellow kite near the river.".split()
    half = CONTOUR_SPAN // 2
    assert word_offsets(words, pitch_range=0, contour=50) == [0] * len(words)
    falling = word_offsets(words, pitch_range=100, contour=0)
    rising = word_offsets(words, pitch_range=100, contour=100)
    assert falling[0] == half and falling[-1] == -half
    assert all(a >= b for a, b in zip(falling, falling[1:], strict=False))
    assert rising[0] == -half and rising[-1] == half
    assert all(a <= b for a, b in zip(rising, rising[1:], strict=False))
    middle = word_offsets(words, pitch_range=100, contour=50)
    assert middle[0] == middle[-1] == -half and max(middle[3:7]) >= half - 4
    # Half the range, half the height.
    assert word_offsets(words, pitch_range=50, contour=0)[0] == half // 2


@pytest.mark.parametrize("text", ["Salt & pepper < sugar > honey.", 'Say "a<b" & <prosody pitch="+99">x'])
def test_ssml_escapes_the_text(text):
    for ssml in (tune_ssml(text, pitch_range=40), contour_ssml(text, pitch_range=80, contour=30)):
        root = ET.fromstring(ssml)  # well-formed: no character of the text opened a tag
        assert " ".join("".join(root.itertext()).split()) == " ".join(text.split())
    contour = ET.fromstring(contour_ssml(text, pitch_range=80, contour=30))
    (outer,) = list(contour)
    assert outer.get("range") == str(TUNE_RANGE)
    assert len(list(outer)) == len(text.split())  # one pitch per word, none smuggled in by the text


@needs_espeak
def test_ssml_special_characters_are_spoken_not_swallowed(tmp_path):
    config = AudioConfig()
    plain = synthesize(
        "Mara Felix Hugo.", pitch=50, pitch_range=50, rate=175, contour=50, out_path=tmp_path / "a.wav"
    )
    marked = synthesize(
        "Mara & Felix < Hugo.", pitch=50, pitch_range=50, rate=175, contour=50, out_path=tmp_path / "b.wav"
    )
    # espeak-ng reads '&' as "and" and pauses at '<': the marked text takes longer, nothing was cut.
    assert (
        measure_prosody(marked, config=config)["duration_s"]
        > measure_prosody(plain, config=config)["duration_s"] + 0.2
    )


@needs_espeak
def test_range_and_contour_are_realised_within_a_voice(tmp_path):
    """The label check on a tiny corpus of one voice: low and high range separate, and so do the
    peak positions of a falling and a rising contour."""
    config = AudioConfig()

    def labels(text: str, index: int, pitch_range: int, contour: int) -> dict[str, float]:
        path = synthesize(
            text,
            pitch=50,
            pitch_range=pitch_range,
            rate=175,
            contour=contour,
            voice="en-us",
            out_path=tmp_path / f"{index}_{pitch_range}_{contour}.wav",
        )
        return measure_prosody(path, config=config, intonation=True)

    low = [labels(text, i, 10, 50)["f0_spread_st"] for i, text in enumerate(SENTENCES)]
    high = [labels(text, i, 90, 50)["f0_spread_st"] for i, text in enumerate(SENTENCES)]
    assert min(high) > max(low) + 1.0, (low, high)
    falling = [labels(text, i, 90, 0)["f0_peak_position"] for i, text in enumerate(SENTENCES[:3])]
    rising = [labels(text, i, 90, 100)["f0_peak_position"] for i, text in enumerate(SENTENCES[:3])]
    assert max(falling) < 0.4 < 0.6 < min(rising), (falling, rising)


# ---------------------------------------------------------------- intonation labels


def _track(semitones: np.ndarray, base: float = 120.0, gaps: int = 12, run: int = 20) -> np.ndarray:
    """An F0 track (Hz) following ``semitones`` re ``base``, voiced in runs separated by unvoiced gaps."""
    f0 = base * 2.0 ** (semitones / 12.0)
    frame = np.arange(f0.size)
    return np.where((frame % (run + gaps)) < run, f0, 0.0)


def test_octave_slips_are_repaired_before_the_spread_is_measured():
    rise = np.linspace(-3.0, 3.0, 320)
    clean = _track(rise)
    slipped = clean.copy()
    voiced = np.flatnonzero(slipped > 0)
    slipped[voiced[::7]] /= 2.0  # Harvest's sub-octave slips, on every seventh voiced frame
    slipped[voiced[40:70]] /= 2.0  # and one long stretch of them
    raw = np.percentile(slipped[slipped > 0], [10, 90])
    assert 12 * np.log2(raw[1] / raw[0]) > 8.0  # the raw percentile spread reads the slips as range
    labels_clean, labels_slipped = intonation_labels(clean), intonation_labels(slipped)
    assert labels_slipped["f0_spread_st"] == pytest.approx(labels_clean["f0_spread_st"], abs=0.3)
    assert labels_clean["f0_spread_st"] == pytest.approx(0.8 * 6.0, abs=0.5)  # p10..p90 of a 6 st ramp
    frames, values = clean_f0(slipped)
    assert np.all(np.diff(frames) > 0) and np.all(np.abs(values - 12 * np.log2(120.0)) < 4.0)


@pytest.mark.parametrize(("peak", "expected"), [(0.0, 0.1), (0.5, 0.5), (1.0, 0.9)])
def test_peak_position_follows_the_contour(peak, expected):
    x = np.linspace(0.0, 1.0, 400)
    tent = 1.0 - np.abs(x - peak) / max(peak, 1.0 - peak)
    labels = intonation_labels(_track(6.0 * tent))
    assert labels["f0_peak_position"] == pytest.approx(expected, abs=0.08)


def test_intonation_labels_refuse_a_track_without_clean_frames():
    with pytest.raises(ValueError, match="clean voiced frames"):
        intonation_labels(np.array([0.0, 120.0, 0.0, 121.0, 0.0]))


# ---------------------------------------------------------------- label checks per voice


def test_voice_label_checks_correlate_within_each_voice():
    rng = np.random.default_rng(0)
    utterances = []
    for index, (voice, base) in enumerate((("en-us", 100.0), ("en+f4", 200.0)) * 20):
        pitch, spread, contour = (float(v) for v in rng.integers(0, 100, size=3))
        utterances.append(
            Utterance(
                id=f"u{index}",
                audio="x.wav",
                text="a b c",
                speaker=voice,
                labels={
                    "pitch": pitch,
                    "f0_mean_hz": base + pitch,  # exact within a voice
                    "pitch_range": spread,
                    "f0_spread_st": spread / 10.0 + (index % 3),  # noisy
                    "contour": contour,
                    "f0_peak_position": contour / 100.0,
                    "voice_index": 0.0 if voice == "en-us" else 1.0,
                    "held_out_voice": 0.0 if voice == "en-us" else 1.0,
                },
            )
        )
    checks = voice_label_checks(utterances)
    assert [c.voice for c in checks] == ["en-us", "en+f4"] and [c.held_out for c in checks] == [False, True]
    for check in checks:
        group = [u for u in utterances if u.speaker == check.voice]
        assert check.n == 20
        assert check.correlations[("pitch", "f0_mean_hz")] == pytest.approx(1.0)
        x = [u.labels["pitch_range"] for u in group]
        y = [u.labels["f0_spread_st"] for u in group]
        assert check.correlations[("pitch_range", "f0_spread_st")] == pytest.approx(np.corrcoef(x, y)[0, 1])
        # The contour is checked only where the contour has a height.
        kept = [u for u in group if u.labels["pitch_range"] >= CONTOUR_MIN_RANGE]
        assert len(kept) < len(group)
        assert check.correlations[("contour", "f0_peak_position")] == pytest.approx(1.0)
        assert ("rate", "s_per_phone") not in check.correlations  # no rate labels here
    # Pooled over the two voices, F0 level no longer follows the pitch setting alone.
    pooled = np.corrcoef(
        [u.labels["pitch"] for u in utterances], [u.labels["f0_mean_hz"] for u in utterances]
    )
    assert pooled[0, 1] < 0.6
