"""The WORLD vocoder renders the F0 track it is given, from a mel envelope."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prosody_vae.audio import AudioConfig, f0_energy, log_mel
from prosody_vae.audio.vocoders import GriffinLimVocoder, VocoderError, load_vocoder, vocode
from prosody_vae.audio.world import WorldVocoder

CONFIG = AudioConfig()


def _glide(f_start: float, f_end: float, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A harmonic tone gliding in log-frequency (20 harmonics, 1/k amplitudes), and its true F0."""
    sr = CONFIG.sample_rate
    t = np.arange(int(seconds * sr)) / sr
    f0 = f_start * (f_end / f_start) ** (t / seconds)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum(np.sin(k * phase) / k for k in range(1, 21) if k * f_end < sr / 2)
    return (0.5 * wav / np.abs(wav).max()).astype(np.float32), f0


def _cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1200 * np.log2(a / b)


def test_output_pitch_is_the_given_track_not_the_mels():
    wav, _ = _glide(90.0, 140.0)
    mel = log_mel(wav, CONFIG)  # (T, n_mels)
    # Ask for a different contour than the one the mel came from: a fall from 180 to 120 Hz.
    target = np.geomspace(180.0, 120.0, mel.shape[0]).astype(np.float32)
    out = WorldVocoder(CONFIG)(mel, torch.from_numpy(target)).numpy()
    tracked, _ = f0_energy(out, CONFIG)
    n = min(len(tracked), len(target))
    voiced = tracked[:n] > 0
    assert voiced.mean() > 0.9
    error = np.abs(_cents(tracked[:n][voiced], target[:n][voiced]))
    assert np.median(error) < 25  # cents
    assert np.percentile(error, 90) < 60


def test_unvoiced_frames_become_noise():
    # A smooth envelope, as a decoder's mel is (a tone's resolved harmonics would comb-filter the noise).
    noise = np.random.default_rng(0).standard_normal(CONFIG.sample_rate).astype(np.float32) * 0.1
    mel = log_mel(noise, CONFIG)
    track = np.full(mel.shape[0], 100.0, dtype=np.float32)
    track[: mel.shape[0] // 2] = 0.0  # first half unvoiced
    out = WorldVocoder(CONFIG)(mel, torch.from_numpy(track)).numpy()
    tracked, _ = f0_energy(out, CONFIG)
    half = len(tracked) // 2
    assert (tracked[: half - 5] > 0).mean() < 0.2
    assert (tracked[half + 5 :] > 0).mean() > 0.9


def test_world_keeps_a_low_voice_voiced_where_griffin_lim_does_not():
    wav, _ = _glide(65.0, 75.0)
    mel = log_mel(wav, CONFIG)
    track = np.geomspace(65.0, 75.0, mel.shape[0]).astype(np.float32)
    world = WorldVocoder(CONFIG)(mel, torch.from_numpy(track)).numpy()
    griffin = GriffinLimVocoder(CONFIG)(mel).numpy()
    world_voiced = (f0_energy(world, CONFIG)[0] > 0).mean()
    griffin_f0 = f0_energy(griffin, CONFIG)[0]
    griffin_ok = (griffin_f0 > 0) & (np.abs(_cents(np.maximum(griffin_f0, 1e-3), 70.0)) < 300)
    assert world_voiced > 0.9
    assert world_voiced > griffin_ok.mean()


def test_batch_matches_single_items():
    wav, _ = _glide(100.0, 130.0, seconds=0.5)
    mel = log_mel(wav, CONFIG)
    f0 = torch.full((mel.shape[0],), 110.0)
    vocoder = WorldVocoder(CONFIG)
    single = vocoder(mel, f0)
    batch = vocoder(torch.stack([mel, mel]), torch.stack([f0, f0]))
    assert torch.equal(batch[0], single) and torch.equal(batch[1], single)


def test_load_by_name_and_vocode_contract():
    assert isinstance(load_vocoder("world", CONFIG), WorldVocoder)
    assert isinstance(load_vocoder(None, CONFIG, default="world"), WorldVocoder)
    assert isinstance(load_vocoder("griffin-lim", CONFIG), GriffinLimVocoder)
    mel = torch.zeros(20, CONFIG.n_mels) + np.log(1e-2)
    with pytest.raises(VocoderError, match="predicts none"):
        vocode(WorldVocoder(CONFIG), mel)
    assert vocode(GriffinLimVocoder(CONFIG, n_iter=2), mel, torch.zeros(20)).dim() == 1  # F0 ignored
    with pytest.raises(ValueError, match="one value per mel frame"):
        WorldVocoder(CONFIG).synthesize(mel.numpy(), np.zeros(5))
