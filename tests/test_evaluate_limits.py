"""Evaluation scores utterances: a too-short or too-long file is skipped and reported, never scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

import prosody_vae.evaluation.scoring as scoring
from prosody_vae.cli import main
from prosody_vae.evaluation import evaluate_pairs

SR = 22050


def _voice(path: Path, seconds: float, f0: float = 140.0) -> Path:
    """A harmonic tone with a slow pitch glide and syllable-like loudness: something F0 tracks."""
    t = np.arange(int(seconds * SR)) / SR
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    wav = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)
    sf.write(path, (0.3 * wav).astype(np.float32), SR)
    return path


def test_too_short_and_too_long_files_are_skipped_and_named(tmp_path, monkeypatch) -> None:
    ref, out = tmp_path / "ref", tmp_path / "out"
    ref.mkdir(), out.mkdir()
    for name in ("a", "b"):
        _voice(ref / f"{name}.wav", 1.5)
        _voice(out / f"{name}.wav", 1.6, f0=150.0)
    _voice(ref / "short.wav", 1.5)
    _voice(out / "short.wav", 0.05)  # scored, its duration ratio of 30 would drag every mean
    _voice(ref / "long.wav", scoring.MAX_SCORED_SECONDS + 1.0)
    _voice(out / "long.wav", 1.5)

    loaded: list[str] = []
    real_load = scoring.load_audio

    def load_audio(path, config):
        loaded.append(str(path))
        return real_load(path, config)

    monkeypatch.setattr(scoring, "load_audio", load_audio)
    from prosody_vae.evaluation import pairs_from_dirs

    result = evaluate_pairs(pairs_from_dirs(ref, out), num_workers=0)
    assert sorted(s.item.id for s in result.scores) == ["a", "b"]
    reasons = {p.id: p.reason for p in result.problems}
    assert reasons["short"].startswith("too short to score: 0.05 s")
    assert reasons["long"].startswith(f"too long to score: {scoring.MAX_SCORED_SECONDS + 1:.1f} s")
    assert [p.path for p in result.problems if p.id == "long"] == [str(ref / "long.wav")]
    assert str(ref / "long.wav") not in loaded  # judged by its header, never loaded
    ratios = [s.values["duration_ratio"] for s in result.scores]
    assert all(0.5 < r < 2.0 for r in ratios)


def test_the_command_lists_the_skipped_files(tmp_path, capsys) -> None:
    ref, out = tmp_path / "ref", tmp_path / "out"
    ref.mkdir(), out.mkdir()
    _voice(ref / "a.wav", 1.5)
    _voice(out / "a.wav", 1.5, f0=150.0)
    _voice(ref / "tiny.wav", 1.5)
    _voice(out / "tiny.wav", 0.05)
    argv = ["evaluate", "--ref-dir", str(ref), "--out-dir", str(out), "--num-workers", "0"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "1 pairs, 0 unpaired, 1 skipped" in captured.out and "too short to score" in captured.out
    assert main([*argv, "--strict"]) == 1
