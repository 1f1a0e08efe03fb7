"""One F0 tracker: corpus labels, metrics and features all use Harvest + StoneMask (f0_energy)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import pyworld
import soundfile as sf

import prosody_vae
from prosody_vae.audio import AudioConfig, f0_energy, load_audio, process_audio
from prosody_vae.data.espeak import measure_prosody, synthesize
from prosody_vae.data.espeak.labels import F0_METHOD, f0_contour
from prosody_vae.metrics.intonation import f0_level_hz, track_f0

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
CONFIG = AudioConfig()


def voiced_signal(f0_hz: float = 150.0, seconds: float = 1.0) -> np.ndarray:
    """A harmonic-rich tone with a slow 4 % vibrato around ``f0_hz``, preceded and followed by silence."""
    sr = CONFIG.sample_rate
    t = np.arange(int(seconds * sr)) / sr
    instantaneous = f0_hz * (1.0 + 0.04 * np.sin(2 * np.pi * 3.0 * t))
    phase = 2 * np.pi * np.cumsum(instantaneous) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.3
    silence = np.zeros(sr // 4)
    return np.concatenate([silence, tone, silence]).astype(np.float32)


def labels_and_metrics_median(audio, samples: np.ndarray) -> tuple[float, float]:
    """Median voiced F0 as the labels track it (``audio``) and as the metrics do (``samples``)."""
    labels = f0_contour(audio, config=CONFIG)
    metrics = track_f0(samples, CONFIG.sample_rate, config=CONFIG)
    return f0_level_hz(labels), f0_level_hz(metrics)


def test_labels_and_metrics_agree_on_a_synthetic_voiced_signal():
    raw = voiced_signal()
    trimmed = process_audio(raw, CONFIG.sample_rate, CONFIG)
    assert trimmed.shape[0] < raw.shape[0]  # the silences were trimmed: the labels' input differs
    labels, metrics = labels_and_metrics_median(raw, trimmed)
    assert labels == pytest.approx(150.0, rel=0.01)  # the tracker finds the tone, not an octave
    assert labels == metrics  # same samples, same tracker: the same frames
    # The metrics on the untrimmed signal see the same voiced frames on a shifted grid.
    _, untrimmed = labels_and_metrics_median(raw, raw)
    assert untrimmed == pytest.approx(labels, rel=0.005)
    # ... and the labels' voiced statistics are those of the library's f0_energy on the trimmed signal.
    f0 = f0_energy(trimmed, CONFIG)[0]
    assert measure_prosody(raw, config=CONFIG)["f0_mean_hz"] == pytest.approx(float(f0[f0 > 0].mean()))


@needs_espeak
def test_labels_and_metrics_agree_on_an_espeak_utterance(tmp_path):
    path = synthesize(
        "Is the yellow kite still near the river?",
        pitch=60,
        pitch_range=70,
        rate=160,
        out_path=tmp_path / "u.wav",
    )
    labels, metrics = labels_and_metrics_median(path, load_audio(path, CONFIG))
    assert labels == metrics
    raw, sample_rate = sf.read(str(path), dtype="float32")
    assert sample_rate == CONFIG.sample_rate
    _, untrimmed = labels_and_metrics_median(path, raw)
    assert 12 * abs(np.log2(untrimmed / labels)) < 0.2  # within a fifth of a semitone
    measured = measure_prosody(path, config=CONFIG)
    f0 = track_f0(load_audio(path, CONFIG), CONFIG.sample_rate, config=CONFIG)
    assert measured["f0_mean_hz"] == pytest.approx(float(f0[f0 > 0].mean()))
    assert measured["voiced_fraction"] == pytest.approx(float(np.mean(f0 > 0)))


def test_dio_is_never_called(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pyworld.dio was called")

    monkeypatch.setattr(pyworld, "dio", refuse)
    measure_prosody(voiced_signal(), config=CONFIG)
    f0_contour(voiced_signal(), config=CONFIG)


def test_no_module_of_the_package_uses_dio():
    package = Path(prosody_vae.__file__).parent
    users = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"\bdio\s*\(", path.read_text(encoding="utf-8"))
    ]
    assert users == []
    assert "harvest" in F0_METHOD and not re.search(r"\bdio\b", F0_METHOD)
