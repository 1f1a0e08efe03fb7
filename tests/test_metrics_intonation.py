"""Intonation metrics on synthetic signals whose harmonicity and contour are known."""

from __future__ import annotations

import numpy as np
import pytest

from prosody_vae.audio import AudioConfig
from prosody_vae.metrics import (
    F0_TRACKERS,
    analyse_intonation,
    cepstral_peak_prominence,
    contour_correlation,
    f0_level_hz,
    f0_range_st,
    final_rise_st,
    low_band_ripple,
    series_trend,
    track_f0,
    voiced_share,
)

SR = 22050
CONFIG = AudioConfig()
SECONDS = 0.9
# A glide uniform in log-frequency over one octave: its last fifth's median sits 0.9 of the way up,
# the whole track's median halfway, so the final rise is (0.9 - 0.5) * 12 = 4.8 semitones.
GLIDE_RISE_ST = 4.8


def _harmonic(f0: float | np.ndarray, seconds: float = SECONDS) -> np.ndarray:
    """Harmonics up to 4 kHz with 1/k amplitudes, following a (possibly time-varying) F0."""
    n = int(seconds * SR)
    freq = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(freq) / SR
    x = sum(np.sin(k * phase) / k * (k * freq < 4000) for k in range(1, 40))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _same_envelope_noise(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Noise with the long-term spectral envelope of ``x``: its power spectrum smoothed over 200 Hz,
    random phases. Same timbre, no harmonics."""
    spectrum = np.fft.rfft(x)
    width = int(len(x) / SR * 200)
    envelope = np.sqrt(np.convolve(np.abs(spectrum) ** 2, np.ones(width) / width, mode="same"))
    phases = np.exp(2j * np.pi * np.random.default_rng(seed).random(spectrum.shape))
    y = np.fft.irfft(envelope * phases, n=len(x))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def _glide(direction: str) -> np.ndarray:
    t = np.arange(int(SECONDS * SR)) / (SECONDS * SR)
    return _harmonic(100.0 * 2.0 ** (t if direction == "rise" else 1.0 - t))


@pytest.fixture(scope="module")
def glides() -> dict[tuple[str, str], np.ndarray]:
    """(direction, tracker) -> F0 track of the 100 <-> 200 Hz glide: pYIN once per signal."""
    return {
        (direction, tracker): track_f0(_glide(direction), SR, tracker=tracker, config=CONFIG)
        for direction in ("rise", "fall")
        for tracker in F0_TRACKERS
    }


def test_harmonic_tone_has_more_ripple_and_cpp_than_noise_of_the_same_envelope():
    tone = _harmonic(150.0)
    noise = _same_envelope_noise(tone)
    # the envelopes really match: the two log-mels agree on average over the low band
    tone_analysis, noise_analysis = analyse_intonation(tone, SR), analyse_intonation(noise, SR)
    mean_low_band = [a.log_mel[:, :31].mean() for a in (tone_analysis, noise_analysis)]
    assert abs(mean_low_band[0] - mean_low_band[1]) < 1.0
    assert low_band_ripple(tone, SR) > 3 * low_band_ripple(noise, SR)
    assert cepstral_peak_prominence(tone, SR) > cepstral_peak_prominence(noise, SR) + 10.0
    assert tone_analysis.ripple == pytest.approx(low_band_ripple(tone, SR))
    # the tone is voiced throughout by both trackers, the noise barely
    for tracker in F0_TRACKERS:
        assert voiced_share(tone_analysis.f0[tracker]) > 0.9
        assert voiced_share(noise_analysis.f0[tracker]) < 0.5


def test_cpp_peak_search_range_matters():
    """A 400 Hz voice has its cepstral peak outside 60-330 Hz: moving the range must find it."""
    high = _harmonic(400.0)
    assert cepstral_peak_prominence(high, SR, f0_range=(60.0, 500.0)) > (
        cepstral_peak_prominence(high, SR) + 5.0
    )


@pytest.mark.parametrize("tracker", F0_TRACKERS)
@pytest.mark.parametrize("direction", ["rise", "fall"])
def test_final_rise_of_a_glide(glides, direction, tracker):
    f0 = glides[(direction, tracker)]
    assert f0.shape == (1 + int(SECONDS * SR) // CONFIG.hop_length,)  # the mel frame grid
    expected = GLIDE_RISE_ST if direction == "rise" else -GLIDE_RISE_ST
    assert final_rise_st(f0) == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize("tracker", F0_TRACKERS)
def test_range_and_level_of_a_glide_by_both_trackers(glides, tracker):
    f0 = glides[("rise", tracker)]
    assert f0_range_st(f0) == pytest.approx(0.9 * 12.0, abs=1.0)  # 5th to 95th percentile
    assert f0_level_hz(f0) == pytest.approx(100.0 * np.sqrt(2.0), rel=0.03)  # halfway up the octave


def test_range_of_a_track_is_exact():
    track = 100.0 * 2.0 ** np.linspace(0.0, 1.0, 1001)  # 100 -> 200 Hz
    track_with_gaps = np.concatenate([[0.0, 0.0], track, [0.0]])
    assert f0_range_st(track_with_gaps, percentiles=(0.0, 100.0)) == pytest.approx(12.0)
    assert f0_range_st(track_with_gaps) == pytest.approx(10.8)
    assert final_rise_st(track_with_gaps) == pytest.approx(GLIDE_RISE_ST, abs=0.02)
    assert final_rise_st(track_with_gaps[::-1]) == pytest.approx(-GLIDE_RISE_ST, abs=0.02)
    assert np.isnan(f0_range_st(np.zeros(10)))
    assert np.isnan(final_rise_st(np.array([0.0, 120.0, 0.0])))


def test_contour_correlation_of_identical_reversed_and_warped_contours():
    rng = np.random.default_rng(1)
    contour = 120.0 * 2.0 ** (np.cumsum(rng.normal(0.0, 0.3, 60)) / 12.0)
    contour[[5, 6, 30]] = 0.0  # unvoiced frames
    assert contour_correlation(contour, contour) == pytest.approx(1.0)
    assert contour_correlation(contour, contour[::-1]) < 0.0
    rising = 100.0 * 2.0 ** np.linspace(0.0, 0.5, 40)
    assert contour_correlation(rising, rising[::-1]) == pytest.approx(-1.0)
    # a copy with frames repeated (slower speech) correlates 1 along the path that undoes the warp
    repeats = rng.integers(1, 3, size=contour.shape[0])
    slowed = np.repeat(contour, repeats)
    path = np.stack([np.repeat(np.arange(contour.shape[0]), repeats), np.arange(slowed.shape[0])], axis=1)
    assert contour_correlation(contour, slowed, path=path) == pytest.approx(1.0)
    assert np.isnan(contour_correlation(np.full(10, 150.0), np.linspace(100.0, 200.0, 10)))  # flat


def test_series_trend_monotone_and_spacing():
    even = series_trend([100.0, 110.0, 121.0, 133.1, 146.41])  # equal ratios: equal semitone steps
    assert even.monotone
    assert even.max_step_share == pytest.approx(0.25)
    assert even.total_st == pytest.approx(12.0 * np.log2(1.4641))
    falling = series_trend([200.0, 180.0, 179.0, 150.0])
    assert falling.monotone and falling.total_st < 0
    lumped = series_trend([100.0, 100.5, 150.0, 150.5])
    assert lumped.monotone and lumped.max_step_share > 0.9
    zigzag = series_trend([100.0, 130.0, 110.0, 140.0])
    assert not zigzag.monotone
    # a small step back counts as monotone only within the tolerance
    wobbly = [100.0, 120.0, 119.0, 140.0]
    assert not series_trend(wobbly).monotone
    assert series_trend(wobbly, tolerance_st=0.25).monotone
    flat = series_trend([150.0, 150.0, 150.0])
    assert not flat.monotone and np.isnan(flat.max_step_share)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: track_f0(np.zeros(4096, np.float32), SR, tracker="crepe"), "tracker"),
        (lambda: f0_range_st(np.ones(5) * 100, percentiles=(95.0, 5.0)), "percentiles"),
        (lambda: final_rise_st(np.ones(5) * 100, tail=0.0), "tail"),
        (lambda: series_trend([100.0]), "at least two"),
        (lambda: series_trend([100.0, -5.0]), "positive"),
        (lambda: contour_correlation(np.array([0.5, 100.0]), np.array([100.0, 100.0])), r"\(0, 1\]"),
        (lambda: f0_level_hz(np.array([100.0, np.nan])), "NaN"),
        (lambda: low_band_ripple(_harmonic(150.0, 0.2), SR, loud_fraction=0.0), "loud_fraction"),
    ],
)
def test_bad_input_is_a_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
