"""Cross-voice evaluation: speaker-normalised correlations and identity checks against hand values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from prosody_vae.cli import main
from prosody_vae.evaluation import (
    CrossVoiceItem,
    cross_voice_correlations,
    identity_check,
    normalised_values,
    pairs_from_manifest,
    recording_means,
    voice_means,
    voice_similarity,
)
from prosody_vae.evaluation.scoring import analysis_config


def _hz(semitones: float) -> float:
    """The frequency 12 log2(f) = semitones."""
    return 2.0 ** (semitones / 12.0)


def _item(
    reference: str, ref_voice: str, target: str, ref_hz: float, out_hz: float, **extra
) -> CrossVoiceItem:
    ref = {
        "f0_mean_hz": ref_hz,
        "f0_range_st": extra.get("ref_range", 4.0),
        "speaking_rate": extra.get("ref_rate", 4.0),
    }
    out = {
        "f0_mean_hz": out_hz,
        "f0_range_st": extra.get("out_range", 4.0),
        "speaking_rate": extra.get("out_rate", 4.0),
    }
    return CrossVoiceItem(reference, ref_voice, target, ref, out)


def _design() -> list[CrossVoiceItem]:
    """Voices A (references at 100 and 200 Hz) and B (150 and 300 Hz: about 7 st higher), each
    reference transferred into targets X (around 100 Hz) and Y (around 200 Hz).

    Relative to its voice's mean (in semitones) every low reference is -6, every high one +6. The
    outputs, in semitones relative to a base of 12 log2(100) for X and 12 log2(200) for Y, are
    X: a1 -5, a2 +5, b1 -3, b2 +3 (mean 0) and Y: a1 -4, a2 +4, b1 -2, b2 +6 (mean +1), so relative
    to their target voice's mean: X -5, 5, -3, 3 and Y -5, 3, -3, 5.
    """
    x, y = 12 * math.log2(100.0), 12 * math.log2(200.0)
    refs = {"a1": ("A", 100.0), "a2": ("A", 200.0), "b1": ("B", 150.0), "b2": ("B", 300.0)}
    outs = {
        ("a1", "X"): x - 5, ("a2", "X"): x + 5, ("b1", "X"): x - 3, ("b2", "X"): x + 3,
        ("a1", "Y"): y - 4, ("a2", "Y"): y + 4, ("b1", "Y"): y - 2, ("b2", "Y"): y + 6,
    }  # fmt: skip
    return [_item(name, refs[name][0], target, refs[name][1], _hz(st)) for (name, target), st in outs.items()]


def test_speaker_normalised_values_and_correlation_match_hand_values() -> None:
    items = _design()
    ref, out = normalised_values(items)["f0_level_st"]
    np.testing.assert_allclose(ref, [-6, 6, -6, 6, -6, 6, -6, 6], atol=1e-9)
    np.testing.assert_allclose(out, [-5, 5, -3, 3, -5, 3, -3, 5], atol=1e-9)
    result = cross_voice_correlations(items)
    # hand: sum of products 6 * 32 = 192, sums of squares 8 * 36 = 288 and 136: r = 32 / sqrt(1088)
    assert result.pooled["f0_level_st"].r == pytest.approx(32 / math.sqrt(1088), abs=1e-9)
    assert result.pooled["f0_level_st"].n == 8
    # reference voice A alone: x = (-6, 6, -6, 6), y = (-5, 5, -5, 3), mean y -0.5:
    # sum x (y - mean) = 108, sums of squares 144 and 83: r = 108 / (12 sqrt 83) = 9 / sqrt(83)
    assert result.by_reference_voice["A"]["f0_level_st"].r == pytest.approx(9 / math.sqrt(83), abs=1e-9)
    # the raw, pooled figure mixes the voices' levels in (the reason for normalising): lower here
    assert result.raw["f0_level_st"].r < result.pooled["f0_level_st"].r
    # spreads and rates are all equal in this design: undefined, not a number
    assert math.isnan(result.pooled["f0_spread_st"].r) and result.pooled["f0_spread_st"].n == 8


def test_rate_is_relative_as_a_log_ratio_and_spread_as_a_difference() -> None:
    items = [
        _item("r1", "A", "X", 100.0, 100.0, ref_rate=2.0, out_rate=3.0, ref_range=2.0, out_range=5.0),
        _item("r2", "A", "X", 100.0, 100.0, ref_rate=8.0, out_rate=12.0, ref_range=6.0, out_range=9.0),
    ]
    values = normalised_values(items)
    # geometric mean rate of A's references is 4: ln(2/4), ln(8/4); of X's outputs 6: ln(3/6), ln(12/6)
    np.testing.assert_allclose(values["rate_log"][0], [math.log(0.5), math.log(2.0)])
    np.testing.assert_allclose(values["rate_log"][1], [math.log(0.5), math.log(2.0)])
    np.testing.assert_allclose(values["f0_spread_st"][0], [-2.0, 2.0])
    np.testing.assert_allclose(values["f0_spread_st"][1], [-2.0, 2.0])


def test_a_reference_counts_once_in_its_voice_mean() -> None:
    # a1 (100 Hz) transferred into three targets, a2 (400 Hz) into one: A's mean is the mean of the
    # two references, 12 log2(200), not weighted 3:1 towards a1
    items = [_item("a1", "A", t, 100.0, 100.0) for t in ("X", "Y", "Z")] + [
        _item("a2", "A", "X", 400.0, 100.0)
    ]
    ref_means, out_means = voice_means(items)
    assert ref_means["A"]["f0_level_st"] == pytest.approx(12 * math.log2(200.0))
    assert set(out_means) == {"X", "Y", "Z"}
    assert normalised_values(items)["f0_level_st"][0] == pytest.approx([-12.0, -12.0, -12.0, 12.0])


def test_reference_means_from_more_recordings_replace_the_evaluated_ones() -> None:
    # A's two evaluated references (100, 200 Hz) are both above A's recordings' mean: the voice's
    # four recordings sit at 50, 100, 100 and 200 Hz, mean 12 log2(100) semitones
    items = [_item("a1", "A", "X", 100.0, 100.0), _item("a2", "A", "X", 200.0, 200.0)]
    stats = [
        {"f0_mean_hz": hz, "f0_range_st": 3.0, "speaking_rate": 4.0} for hz in (50.0, 100.0, 100.0, 200.0)
    ]
    means = recording_means({"A": stats})
    assert means["A"]["f0_level_st"] == pytest.approx(12 * math.log2(100.0))
    assert means["A"]["rate_log"] == pytest.approx(math.log(4.0))
    ref, _ = normalised_values(items, reference_means=means)["f0_level_st"]
    np.testing.assert_allclose(ref, [0.0, 12.0])  # against the evaluated pair's own mean: -6, +6
    np.testing.assert_allclose(normalised_values(items)["f0_level_st"][0], [-6.0, 6.0])
    # output side and voices not given keep the evaluated set's means
    ref_means, out_means = voice_means(items + [_item("b1", "B", "X", 300.0, 100.0)], reference_means=means)
    assert ref_means["B"]["f0_level_st"] == pytest.approx(12 * math.log2(300.0))
    assert out_means["X"]["f0_level_st"] == pytest.approx(12 * math.log2(100.0 * 200.0 * 100.0) / 3)


def test_a_per_voice_offset_from_a_poor_voice_mean_lowers_the_pooled_r_and_better_means_restore_it() -> None:
    # two voices; outputs follow each reference's level relative to the *true* voice mean exactly.
    # The evaluated references of A happen to be all high for A (+2 st above its true mean), so the
    # evaluated set's mean puts A's outputs 2 st off; the true means restore r = 1.
    rng = np.random.default_rng(0)
    items, true_means = [], {"A": 90.0, "B": 80.0}
    for voice, base, bias in (("A", 90.0, 2.0), ("B", 80.0, 0.0)):
        for k, offset in enumerate(rng.normal(bias, 1.0, 6)):
            items.append(_item(f"{voice}{k}", voice, "X", _hz(base + offset), _hz(85.0 + offset)))
    means = {v: {"f0_level_st": m, "f0_spread_st": 0.0, "rate_log": 0.0} for v, m in true_means.items()}
    assert cross_voice_correlations(items, reference_means=means).pooled["f0_level_st"].r == pytest.approx(
        1.0
    )
    assert cross_voice_correlations(items).pooled["f0_level_st"].r < 0.9


def test_spread_prefers_the_cleaned_track_and_falls_back_to_the_raw_range() -> None:
    cleaned = [
        CrossVoiceItem("r1", "A", "X", {"f0_spread_st": 2.0, "f0_range_st": 9.0}, {"f0_spread_st": 3.0}),
        CrossVoiceItem("r2", "A", "X", {"f0_spread_st": 6.0, "f0_range_st": 1.0}, {"f0_spread_st": 7.0}),
    ]
    ref, out = normalised_values(cleaned)["f0_spread_st"]
    np.testing.assert_allclose(ref, [-2.0, 2.0])  # from 2 and 6, not 9 and 1
    np.testing.assert_allclose(out, [-2.0, 2.0])
    raw_only = [
        CrossVoiceItem("r1", "A", "X", {"f0_range_st": 9.0}, {"f0_range_st": 3.0}),
        CrossVoiceItem("r2", "A", "X", {"f0_range_st": 1.0}, {"f0_range_st": 7.0}),
    ]
    np.testing.assert_allclose(normalised_values(raw_only)["f0_spread_st"][0], [4.0, -4.0])
    # a cleaned spread that could not be measured is undefined, not replaced by the raw range
    gap = [CrossVoiceItem("r1", "A", "X", {"f0_spread_st": math.nan, "f0_range_st": 9.0}, {})]
    assert math.isnan(normalised_values(gap)["f0_spread_st"][0][0])


def test_identity_check_against_hand_values() -> None:
    # natural ranges from the references: X spans [100, 140] Hz, Y [200, 280] Hz
    items = [
        _item("x1", "X", "Y", 100.0, 210.0),  # inside Y; nearer Y's mean than X's
        _item("x2", "X", "Y", 140.0, 150.0),  # outside Y; nearer X's mean (copies the reference voice)
        _item("y1", "Y", "X", 200.0, 120.0),  # inside X; nearer X
        _item("y2", "Y", "X", 280.0, 90.0),  # outside X (below it); still nearer X than Y
    ]
    check = identity_check(items)
    assert (check.inside_range, check.n_range) == (0.5, 4)
    assert (check.nearer_target, check.n_nearer) == (0.75, 4)
    # X's outputs (120, 90 Hz) against X's natural mean: 6 log2(120 * 90 / (100 * 140)) semitones
    assert check.level_offset_st["X"] == pytest.approx(6 * math.log2(120 * 90 / (100 * 140)))
    # a target voice without references of its own has no range: not counted
    assert identity_check([_item("a1", "A", "X", 100.0, 100.0)]).n_range == 0


def _voice(path, f0: float, formant: float, seconds: float = 0.6, sr: int = 22050) -> str:
    """A vowel-like tone: harmonics of f0 shaped by one resonance at ``formant`` Hz."""
    t = np.arange(int(seconds * sr)) / sr
    wav = sum(
        np.sin(2 * np.pi * k * f0 * t) / (1.0 + ((k * f0 - formant) / 150.0) ** 2)
        for k in range(1, int(5000 / f0))
    )
    sf.write(path, (0.5 * wav / np.abs(wav).max()).astype(np.float32), sr)
    return str(path)


def test_voice_similarity_finds_the_nearest_voice(tmp_path) -> None:
    low = [_voice(tmp_path / f"low{i}.wav", f0, 500.0) for i, f0 in enumerate((110.0, 130.0))]
    high = [_voice(tmp_path / f"high{i}.wav", f0, 2200.0) for i, f0 in enumerate((115.0, 125.0))]
    like_low = _voice(tmp_path / "out_low.wav", 120.0, 520.0)
    like_high = _voice(tmp_path / "out_high.wav", 120.0, 2150.0)
    pairs = [
        (high[0], "high", like_low, "low"),  # in its target voice: a hit, nearer the target
        (low[0], "low", like_high, "high"),  # a hit
        (low[1], "low", like_low, "high"),  # sounds like the reference voice: a miss
        (high[1], "high", like_high, "high"),  # same voice: a hit, not a cross-voice pair
    ]
    result = voice_similarity(pairs, analysis_config(22050))
    assert (result.accuracy, result.n) == (0.75, 4)
    assert result.nearer_target == pytest.approx(2 / 3) and result.n_nearer == 3


def test_evaluate_reports_cross_voice_from_a_manifest(tmp_path, capsys) -> None:
    refs = {
        "x1": _voice(tmp_path / "x1.wav", 100.0, 600.0),
        "x2": _voice(tmp_path / "x2.wav", 140.0, 600.0),
        "y1": _voice(tmp_path / "y1.wav", 200.0, 1800.0),
        "y2": _voice(tmp_path / "y2.wav", 280.0, 1800.0),
    }
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": k, "audio": f"{k}.wav", "text": "a", "speaker": k[0].upper()}) + "\n"
            for k in refs
        )
    )
    outs = {("x1", "Y"): (210.0, 1800.0), ("x2", "Y"): (260.0, 1800.0), ("y1", "X"): (110.0, 600.0)}
    outs[("y2", "X")] = (130.0, 600.0)
    rows = []
    for (ref, target), (f0, formant) in outs.items():
        out = _voice(tmp_path / f"out_{ref}.wav", f0, formant)
        rows.append(
            {"id": f"out_{ref}", "output": out, "reference": refs[ref], "kind": "transfer", "speaker": target}
        )
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    # the synthesis manifest alone names only the target voices
    assert all(i.speaker and i.reference_speaker is None for i in pairs_from_manifest(manifest).items)
    argv = ["evaluate", "--manifest", str(manifest), "--reference-voices", str(corpus), "--num-workers", "0"]
    assert main([*argv, "--report", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "cross-voice transfer, 4 pairs" in out and "| reference voice X |" in out
    # every output sits inside its target voice's natural range and sounds like it
    assert "range 1.00 (n=4)" in out and "nearest voice is the target 1.00 (n=4)" in out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    section = summary["cross_voice"]
    assert section["n_pairs"] == 4 and section["identity"]["nearer_target"] == 1.0
    # both voices' outputs follow their references' level within the voice: r is positive
    assert section["normalised_correlations"]["f0_level_st"]["r"] > 0.5
    assert "reference_speaker" in (tmp_path / "report" / "metrics.csv").read_text().splitlines()[0]


def test_reference_voices_need_a_manifest(capsys) -> None:
    assert main(["evaluate", "--ref-dir", "a", "--out-dir", "b", "--reference-voices", "c.jsonl"]) == 2
    assert "--reference-voices needs --manifest" in capsys.readouterr().err
