"""The README's main job on a reduced setting: the shipped model transfers, samples and interpolates."""

from __future__ import annotations

import json

import pytest

from prosody_vae.cli import main

pytestmark = pytest.mark.slow


def test_demo_with_the_shipped_model(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--styles", "low_pitch,high_pitch,new_voice_low,new_voice_high"]
    argv += ["--targets", "1"]
    argv += ["--samples", "2", "--interpolation-steps", "3", "--gl-iters", "4", "--threads", "1"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["step"] > 0
    for group, count in (("references", 4), ("transfers", 4), ("samples", 2), ("interpolation", 3)):
        assert len(summary[group]) == count
        for item in summary[group]:
            assert (out / item["wav"]).stat().st_size > 1000
    transfer = {t["source"]: t for t in summary["transfers"]}
    for figure in transfer["low_pitch"]["figures"].values():
        assert (out / figure).is_file()
    # The shipped model carries the reference's pitch level to a new sentence: the output spoken
    # with the high-pitched reference's embedding is far higher than the one with the low-pitched.
    low, high = transfer["low_pitch"]["measured"], transfer["high_pitch"]["measured"]
    assert high["f0_mean_hz"] > 1.3 * low["f0_mean_hz"]
    # From a voice it never heard (told that voice's mean F0, measured on 3 other clips of it), the
    # pitch relative to that voice carries over into the model's own voice and register: the new
    # voice's low and high references sit far above the model's voice, their outputs within it.
    from prosody_vae.demo.styles import NEW_VOICE

    assert set(summary["voice_means"]) == {NEW_VOICE}
    assert len(list((out / "references" / "voices").glob("*.wav"))) == 3
    references = {r["name"]: r["measured"] for r in summary["references"]}
    new_low, new_high = transfer["new_voice_low"]["measured"], transfer["new_voice_high"]["measured"]
    assert new_high["f0_mean_hz"] > 1.3 * new_low["f0_mean_hz"]
    assert new_low["f0_mean_hz"] < 0.7 * references["new_voice_low"]["f0_mean_hz"]
    assert new_high["f0_mean_hz"] < 0.7 * references["new_voice_high"]["f0_mean_hz"]
    # The interpolation moves from one end to the other.
    ends = summary["interpolation"][0]["measured"], summary["interpolation"][-1]["measured"]
    assert ends[1]["f0_mean_hz"] > 1.3 * ends[0]["f0_mean_hz"]
    report = (out / "report.md").read_text()
    assert "| low_pitch | low_pitch_to_0 |" in report
    assert "<audio" in (out / "report.html").read_text()
    assert "report:" in capsys.readouterr().out


def test_demo_rejects_unknown_style(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--styles", "whisper"]) == 2
    assert "unknown ['whisper']" in capsys.readouterr().err
