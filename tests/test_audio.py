"""Behaviour of the audio front end: mel against librosa, resampling, trimming, F0, bad inputs."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from prosody_vae.audio import (
    MAX_CHANNELS,
    AudioConfig,
    AudioError,
    MelSpectrogram,
    f0_energy,
    load_audio,
    log_mel,
    num_frames,
    process_audio,
)

SR = 16000
CONFIG = AudioConfig(
    sample_rate=SR, n_fft=512, hop_length=128, win_length=400, n_mels=40, f_max=7600.0, trim_top_db=None
)


def _tone(freq: float, seconds: float, sr: int = SR, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _harmonic(f0: float, seconds: float, sr: int = SR) -> np.ndarray:
    """A voiced-like signal: f0 with decaying harmonics."""
    return sum(_tone(k * f0, seconds, sr, amplitude=0.4 / k) for k in range(1, 6))


def _peak_frequency(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize("num_samples", [512, 1000, 4000, 4096 + 7])
def test_mel_matches_librosa(num_samples: int) -> None:
    rng = np.random.default_rng(0)
    x = (_harmonic(180.0, 1.0)[:num_samples] + 0.05 * rng.standard_normal(num_samples)).astype(np.float32)
    # librosa defaults to constant padding since 0.10; we use reflect padding (Tacotron 2 / torch.stft).
    reference = librosa.feature.melspectrogram(
        y=x,
        sr=SR,
        n_fft=CONFIG.n_fft,
        hop_length=CONFIG.hop_length,
        win_length=CONFIG.win_length,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=1.0,
        n_mels=CONFIG.n_mels,
        fmin=CONFIG.f_min,
        fmax=CONFIG.f_max,
        htk=False,
        norm="slaney",
    )
    reference = np.log(np.maximum(reference, CONFIG.log_floor)).T  # (T, n_mels)
    mel = log_mel(x, CONFIG)
    assert mel.shape == (num_frames(num_samples, CONFIG), CONFIG.n_mels)
    assert mel.shape == reference.shape
    np.testing.assert_allclose(mel.numpy(), reference, atol=1e-3, rtol=0)


def test_mel_floor_and_batch_layout() -> None:
    module = MelSpectrogram(CONFIG)
    silent = torch.zeros(2000)
    assert torch.allclose(module(silent), torch.full((1, 1), float(np.log(CONFIG.log_floor))))
    batch = torch.stack([torch.from_numpy(_tone(300.0, 0.25)), torch.from_numpy(_tone(900.0, 0.25))])
    out = module(batch)
    assert out.shape == (2, num_frames(batch.shape[1], CONFIG), CONFIG.n_mels)
    torch.testing.assert_close(out[1], module(batch[1]))
    # A 900 Hz tone puts its energy in a higher mel band than a 300 Hz tone.
    assert out[1].mean(0).argmax() > out[0].mean(0).argmax()


def test_mel_filterbank_is_a_buffer() -> None:
    module = MelSpectrogram(CONFIG)
    buffers = dict(module.named_buffers())
    assert any(name.endswith("fb") for name in buffers)
    module = module.to(torch.float64)
    assert all(buffer.dtype == torch.float64 for buffer in module.buffers())


def test_resampling_keeps_frequency(tmp_path: Path) -> None:
    config = AudioConfig(trim_top_db=None, peak_normalize=None)  # 22050 Hz
    path = tmp_path / "tone44k.wav"
    sf.write(path, _tone(440.0, 1.0, sr=44100), 44100)
    y = load_audio(path, config)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - config.sample_rate) <= 2
    assert abs(_peak_frequency(y, config.sample_rate) - 440.0) < 2.0


def test_resampling_removes_content_above_new_nyquist() -> None:
    # A 15 kHz tone at 44.1 kHz would alias to 7.05 kHz under naive decimation to 22.05 kHz.
    config = AudioConfig(trim_top_db=None, peak_normalize=None)
    x = _tone(15000.0, 0.5, sr=44100) + _tone(1000.0, 0.5, sr=44100, amplitude=0.1)
    y = process_audio(x, 44100, config)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1.0 / config.sample_rate)
    alias = spectrum[np.abs(freqs - 7050.0) < 50].max()
    kept = spectrum[np.abs(freqs - 1000.0) < 50].max()
    assert alias < 1e-2 * kept


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_reads_formats_and_mixes_stereo(tmp_path: Path, fmt: str, subtype: str) -> None:
    config = AudioConfig(
        sample_rate=SR, n_fft=512, hop_length=128, win_length=512, trim_top_db=None, peak_normalize=None
    )
    left = _tone(500.0, 0.5)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, stereo, SR, format=fmt, subtype=subtype)
    y = load_audio(path, config)
    assert y.shape == left.shape
    # Average of the two channels: half the left amplitude (lossy Vorbis gets a looser bound).
    assert abs(np.max(np.abs(y)) - 0.25) < (0.02 if fmt == "OGG" else 1e-3)


def test_trimming_and_peak_normalisation() -> None:
    config = AudioConfig(sample_rate=SR, n_fft=512, hop_length=128, win_length=512, trim_top_db=30.0)
    silence = np.zeros(SR // 2, dtype=np.float32)
    x = np.concatenate([silence, _tone(300.0, 0.5, amplitude=0.2), silence])
    y = process_audio(x, SR, config)
    assert abs(len(y) - SR // 2) < 4 * config.n_fft
    assert np.max(np.abs(y)) == pytest.approx(0.95, abs=1e-6)


def _write(path: Path, data: np.ndarray, subtype: str = "PCM_16") -> Path:
    sf.write(path, data, SR, subtype=subtype)
    return path


@pytest.mark.parametrize(
    "case,match",
    [
        ("missing", "file not found"),
        ("corrupt", "cannot read"),
        ("empty", "empty"),
        ("silent", "silent"),
        ("short", "shorter than one frame"),
        ("nan", "NaN"),
        ("channels", "channels"),
    ],
)
def test_bad_inputs_name_the_file(tmp_path: Path, case: str, match: str) -> None:
    path = tmp_path / f"{case}.wav"
    if case == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(256)))
    elif case == "empty":
        _write(path, np.zeros(0, dtype=np.float32))
    elif case == "silent":
        _write(path, np.zeros(SR, dtype=np.float32))
    elif case == "short":
        _write(path, _tone(300.0, 0.01))  # 160 samples < n_fft
    elif case == "nan":
        x = _tone(300.0, 0.5)
        x[100] = np.nan
        _write(path, x, subtype="FLOAT")
    elif case == "channels":
        _write(path, np.tile(_tone(300.0, 0.2)[:, None], (1, MAX_CHANNELS + 1)))
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path, CONFIG)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_in_memory_bad_inputs() -> None:
    with pytest.raises(AudioError, match="shorter than one frame"):
        log_mel(np.zeros(100, dtype=np.float32), CONFIG)
    with pytest.raises(AudioError, match="NaN"):
        log_mel(np.full(1000, np.inf, dtype=np.float32), CONFIG)
    with pytest.raises(AudioError, match="mono"):
        log_mel(np.zeros((2, 1000), dtype=np.float32), CONFIG)
    with pytest.raises(AudioError, match="<array>"):
        process_audio(np.zeros(4000, dtype=np.int16), SR, CONFIG)


@pytest.mark.parametrize("num_samples", [SR // 2, SR // 2 + 77])
def test_f0_energy_on_mel_grid(num_samples: int) -> None:
    x = np.concatenate([_harmonic(150.0, 0.5), np.zeros(SR // 4, dtype=np.float32)])[:num_samples]
    x = np.concatenate([x, np.zeros(max(0, num_samples - len(x)), dtype=np.float32)])
    f0, energy = f0_energy(x, CONFIG)
    frames = num_frames(num_samples, CONFIG)
    assert f0.shape == energy.shape == (frames,)
    assert f0.dtype == energy.dtype == np.float32
    voiced = f0[f0 > 0]
    assert len(voiced) > frames // 2
    assert np.median(voiced) == pytest.approx(150.0, rel=0.03)


def test_f0_tracks_pitch_and_energy_tracks_level() -> None:
    x = np.concatenate([_harmonic(120.0, 0.4), 0.2 * _harmonic(240.0, 0.4)])
    f0, energy = f0_energy(x, CONFIG)
    half = len(f0) // 2
    first, second = f0[5 : half - 5], f0[half + 5 : -5]
    assert np.median(first[first > 0]) == pytest.approx(120.0, rel=0.05)
    assert np.median(second[second > 0]) == pytest.approx(240.0, rel=0.05)
    assert np.median(energy[5 : half - 5]) > 3 * np.median(energy[half + 5 : -5])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 0},
        {"win_length": 2048},
        {"f_max": 20000.0},
        {"log_floor": 0.0},
        {"trim_top_db": -1.0},
        {"peak_normalize": 1.5},
        {"f0_min": 700.0},
        {"n_mels": 80.0},
    ],
)
def test_config_validation(kwargs: dict) -> None:
    key = next(iter(kwargs))
    with pytest.raises(ValueError, match=key):
        AudioConfig(**kwargs)


def test_audio_error_survives_pickling():
    import pickle

    from prosody_vae.audio import AudioError

    error = pickle.loads(pickle.dumps(AudioError("x.wav", "all-silent")))
    assert isinstance(error, AudioError)
    assert str(error) == "x.wav: all-silent"
    assert error.path == "x.wav"


def test_mel_filterbank_is_the_one_the_mel_uses():
    import torch

    from prosody_vae.audio import AudioConfig, MelSpectrogram
    from prosody_vae.audio.features import mel_filterbank

    config = AudioConfig()
    buffers = [b for name, b in MelSpectrogram(config).named_buffers() if name.endswith("fb")]
    assert len(buffers) == 1 and torch.equal(buffers[0], mel_filterbank(config))
