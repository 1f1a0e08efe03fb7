"""Header-only validation: durations filled in, rejections by reason, summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prosody_vae.audio import AudioConfig
from prosody_vae.data.manifest import Utterance
from prosody_vae.data.validate import validate_utterances

SR = 16000
CONFIG = AudioConfig(sample_rate=SR, n_fft=512, hop_length=128, win_length=512, f_max=7600.0)


def _wav(path: Path, seconds: float, channels: int = 1) -> str:
    data = 0.1 * np.ones((int(seconds * SR), channels), dtype=np.float32)
    sf.write(path, data, SR)
    return str(path)


def test_validation_keeps_fills_and_rejects(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all")
    utts = [
        Utterance(id="ok1", audio=_wav(tmp_path / "ok1.wav", 1.0), text="fine", speaker="s1"),
        Utterance(
            id="ok2", audio=_wav(tmp_path / "ok2.wav", 2.0), text="fine too", speaker="s2", duration=1.9
        ),
        Utterance(id="short", audio=_wav(tmp_path / "short.wav", 0.1), text="x"),
        Utterance(id="long", audio=_wav(tmp_path / "long.wav", 3.5), text="x"),
        Utterance(id="missing", audio=str(tmp_path / "missing.wav"), text="x"),
        Utterance(id="corrupt", audio=str(corrupt), text="x"),
        Utterance(id="blank", audio=_wav(tmp_path / "blank.wav", 1.0), text="   "),
        Utterance(id="wide", audio=_wav(tmp_path / "wide.wav", 1.0, channels=12), text="x"),
        Utterance(id="ok1", audio=_wav(tmp_path / "dup.wav", 1.0), text="again"),
    ]
    report = validate_utterances(utts, CONFIG, min_duration=0.5, max_duration=3.0)
    assert [u.id for u in report.kept] == ["ok1", "ok2"]
    assert report.kept[0].duration == pytest.approx(1.0)
    assert report.kept[1].duration == pytest.approx(1.9)  # a given duration is kept
    assert utts[0].duration is None  # inputs are not modified
    reasons = {utt_id: reason.split(":")[0] for utt_id, reason in report.rejected}
    assert reasons == {
        "short": "too short",
        "long": "too long",
        "missing": "missing audio",
        "corrupt": "unreadable audio",
        "blank": "empty text",
        "wide": "unsupported channels",
        "ok1": "duplicate id",
    }
    assert report.hours == pytest.approx(2.9 / 3600)
    assert report.speakers == ["s1", "s2"]
    summary = report.summary()
    assert "kept 2 utterances" in summary and "2 speaker(s)" in summary
    assert "rejected 7" in summary and "too short: 1" in summary


def test_shorter_than_one_frame_is_rejected_even_without_min_duration(tmp_path: Path) -> None:
    utt = Utterance(id="tiny", audio=_wav(tmp_path / "tiny.wav", 0.02), text="x")  # 320 < n_fft samples
    report = validate_utterances([utt], CONFIG, min_duration=0.0, max_duration=5.0)
    assert not report.kept and report.rejected[0][1].startswith("too short")


def test_bad_bounds() -> None:
    with pytest.raises(ValueError, match="min_duration"):
        validate_utterances([], CONFIG, min_duration=2.0, max_duration=1.0)
