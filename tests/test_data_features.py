"""Feature cache: contents, resume after a kill, atomic writes, bad utterances, config guard."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from prosody_vae.audio import AudioConfig, f0_energy, load_audio, log_mel, num_frames
from prosody_vae.data.feature_cache import extract_features, feature_path, load_features
from prosody_vae.data.manifest import Utterance

SR = 16000
CONFIG = AudioConfig(sample_rate=SR, n_fft=512, hop_length=128, win_length=512, n_mels=32, f_max=7600.0)


def _corpus(tmp_path: Path, count: int) -> list[Utterance]:
    utts = []
    for i in range(count):
        t = np.arange(int((0.25 + 0.05 * i) * SR)) / SR
        x = sum(0.3 / k * np.sin(2 * np.pi * k * (110 + 20 * i) * t) for k in range(1, 4))
        path = tmp_path / "wavs" / f"u{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, x.astype(np.float32), SR)
        utts.append(Utterance(id=f"u{i}", audio=str(path), text=f"text {i}"))
    return utts


def test_cached_features_match_direct_computation(tmp_path: Path) -> None:
    (utt,) = _corpus(tmp_path, 1)
    report = extract_features([utt], tmp_path / "cache", CONFIG, num_workers=0, progress=False)
    assert report.ok == ["u0"] and not report.failed
    features = load_features(tmp_path / "cache", "u0")
    wav = load_audio(utt.audio, CONFIG)
    f0, energy = f0_energy(wav, CONFIG)
    frames = num_frames(len(wav), CONFIG)
    assert features["mel"].shape == (frames, CONFIG.n_mels) and features["mel"].dtype == torch.float32
    torch.testing.assert_close(features["mel"], log_mel(wav, CONFIG))
    np.testing.assert_array_equal(features["f0"].numpy(), f0)
    np.testing.assert_array_equal(features["energy"].numpy(), energy)


def test_resume_computes_only_missing_and_matches_fresh_run(tmp_path: Path) -> None:
    utts = _corpus(tmp_path, 6)
    cache = tmp_path / "cache"
    first = extract_features(utts[:3], cache, CONFIG, num_workers=0, progress=False)
    assert first.ok == ["u0", "u1", "u2"]
    stamps = {u.id: feature_path(cache, u.id).stat().st_mtime_ns for u in utts[:3]}
    # A run killed mid-write leaves its temporary behind; it must be cleaned up, never loaded.
    stray = cache / ".partial-killed.tmp"
    stray.write_bytes(b"half a file")

    second = extract_features(utts, cache, CONFIG, num_workers=0, progress=False)
    assert second.skipped_existing == ["u0", "u1", "u2"]
    assert second.ok == ["u3", "u4", "u5"]
    assert not stray.exists()
    assert {u.id: feature_path(cache, u.id).stat().st_mtime_ns for u in utts[:3]} == stamps

    fresh = tmp_path / "fresh"
    extract_features(utts, fresh, CONFIG, num_workers=0, progress=False)
    for utt in utts:
        resumed, clean = load_features(cache, utt.id), load_features(fresh, utt.id)
        for key in ("mel", "f0", "energy"):
            torch.testing.assert_close(resumed[key], clean[key], rtol=0, atol=0)


def test_interrupted_save_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    utts = _corpus(tmp_path, 2)
    cache = tmp_path / "cache"
    real_save = torch.save

    def dying_save(obj, handle):  # writes half a file, then the process "dies"
        handle.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        extract_features(utts, cache, CONFIG, num_workers=0, progress=False)
    assert not list(cache.glob("*.pt")) and not list(cache.glob(".partial-*"))
    monkeypatch.setattr(torch, "save", real_save)
    report = extract_features(utts, cache, CONFIG, num_workers=0, progress=False)
    assert report.ok == ["u0", "u1"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_bad_utterances_are_skipped_and_reported(tmp_path: Path, num_workers: int) -> None:
    utts = _corpus(tmp_path, 3)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR, dtype=np.float32), SR)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEgarbage")
    bad = [
        Utterance(id="silent", audio=str(silent), text="x"),
        Utterance(id="corrupt", audio=str(corrupt), text="x"),
        Utterance(id="gone", audio=str(tmp_path / "gone.wav"), text="x"),
    ]
    report = extract_features(
        [utts[0], *bad, *utts[1:]], tmp_path / "cache", CONFIG, num_workers=num_workers, progress=False
    )
    assert report.ok == ["u0", "u1", "u2"]
    reasons = dict(report.failed)
    assert list(reasons) == ["silent", "corrupt", "gone"]
    assert "silent" in reasons["silent"] and str(silent) in reasons["silent"]
    assert "cannot read" in reasons["corrupt"] and "file not found" in reasons["gone"]
    assert not feature_path(tmp_path / "cache", "silent").exists()
    assert "failed 3" in report.summary()


def test_cache_refuses_a_different_config(tmp_path: Path) -> None:
    utts = _corpus(tmp_path, 1)
    extract_features(utts, tmp_path / "cache", CONFIG, num_workers=0, progress=False)
    other = AudioConfig(sample_rate=SR, n_fft=512, hop_length=160, win_length=512, n_mels=32, f_max=7600.0)
    with pytest.raises(ValueError, match="hop_length"):
        extract_features(utts, tmp_path / "cache", other, num_workers=0, progress=False)


def test_load_features_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        load_features(tmp_path, "nope")
    (tmp_path / "broken.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="broken.pt"):
        load_features(tmp_path, "broken")
    with pytest.raises(ValueError, match="file name"):
        feature_path(tmp_path, "../escape")
    # weights_only loading refuses arbitrary pickled objects.
    torch.save({"mel": torch.zeros(1), "f0": torch.zeros(1), "energy": os.getcwd}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt"):
        load_features(tmp_path, "evil")
