"""Prosody metrics against hand-computed cases and synthetic signals whose prosody is known."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from prosody_vae.audio import AudioConfig, f0_energy
from prosody_vae.metrics import (
    align_tracks,
    cepstra_from_log_mel,
    compare_prosody,
    duration_ratio,
    f0_correlation,
    f0_frame_errors,
    log_f0_rmse_cents,
    mel_cepstral_distortion,
    nonsilent_duration,
    syllable_nuclei,
    utterance_prosody,
)

SR = 16000
CONFIG = AudioConfig(sample_rate=SR, f_max=SR / 2)
HOP_S = CONFIG.hop_length / SR
DB = 10.0 / np.log(10.0)


def _harmonic(f0: float | np.ndarray, seconds: float, envelope: np.ndarray | None = None) -> np.ndarray:
    """Five decaying harmonics of a (possibly time-varying) F0: voiced enough for Harvest."""
    n = int(seconds * SR)
    freq = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(freq) / SR
    x = sum(0.4 / k * np.sin(k * phase) for k in range(1, 6))
    return (x if envelope is None else x * envelope).astype(np.float32)


def _syllables(count: int, *, spacing: float = 0.25, pad: float = 0.2) -> np.ndarray:
    """``count`` raised-cosine bursts of a 150 Hz voice over a quiet floor, with silence around."""
    seconds = spacing * (count - 1) + 0.4
    t = np.arange(int(seconds * SR)) / SR
    envelope = np.full_like(t, 0.03)
    for i in range(count):
        centre, half = 0.2 + spacing * i, 0.09
        inside = np.abs(t - centre) < half
        envelope[inside] += 0.5 * (1 + np.cos(np.pi * (t[inside] - centre) / half))
    silence = np.zeros(int(pad * SR), dtype=np.float32)
    return np.concatenate([silence, _harmonic(150.0, seconds, envelope), silence])


@pytest.fixture(scope="module")
def syllables() -> np.ndarray:
    return _syllables(6)


@pytest.fixture(scope="module")
def stretched(syllables: np.ndarray) -> np.ndarray:
    return librosa.effects.time_stretch(syllables, rate=0.8)  # 1.25 times longer


# ---- F0 frame errors, hand-computed -------------------------------------------------------------


def test_ffe_gpe_vde_hand_computed() -> None:
    ref = np.array([0.0, 100.0, 100.0, 100.0, 200.0, 0.0])
    out = np.array([0.0, 100.0, 125.0, 0.0, 100.0, 150.0])
    # frame 2: 125/100 - 1 = 0.25 > 0.2 gross; frame 4: 100/200 - 1 = -0.5 gross;
    # frames 3 and 5: voicing disagreements; voiced in both: frames 1, 2, 4.
    errors = f0_frame_errors(ref, out)
    assert errors.ffe == pytest.approx(4 / 6)
    assert errors.gpe == pytest.approx(2 / 3)
    assert errors.vde == pytest.approx(2 / 6)
    assert (errors.num_frames, errors.num_voiced_both) == (6, 3)


def test_ffe_is_relative_to_the_reference() -> None:
    # |124/100 - 1| = 0.24 > 0.2 is gross; swapped, |100/124 - 1| = 0.19 is not.
    assert f0_frame_errors(np.array([100.0]), np.array([124.0])).gpe == 1.0
    assert f0_frame_errors(np.array([124.0]), np.array([100.0])).gpe == 0.0


def test_gpe_is_nan_without_frames_voiced_in_both() -> None:
    errors = f0_frame_errors(np.array([0.0, 120.0]), np.array([130.0, 0.0]))
    assert np.isnan(errors.gpe)
    assert errors.ffe == errors.vde == 1.0


def test_log_f0_rmse_and_correlation_hand_computed() -> None:
    ref, out = np.array([100.0, 200.0, 0.0]), np.array([200.0, 200.0, 100.0])
    assert log_f0_rmse_cents(ref, out) == pytest.approx(1200.0 / np.sqrt(2.0))  # one octave, one exact
    ref = np.array([100.0, 200.0, 300.0, 0.0])
    assert f0_correlation(ref, np.array([110.0, 210.0, 310.0, 50.0])) == pytest.approx(1.0)
    assert f0_correlation(ref, np.array([300.0, 200.0, 100.0, 0.0])) == pytest.approx(-1.0)
    assert np.isnan(f0_correlation(np.array([100.0, 100.0]), np.array([90.0, 120.0])))  # flat reference


def test_align_tracks_trims_or_follows_a_path() -> None:
    ref, out = np.arange(5.0), np.arange(10.0, 17.0)
    trimmed = align_tracks(ref, out)
    np.testing.assert_array_equal(trimmed[0], ref)
    np.testing.assert_array_equal(trimmed[1], out[:5])
    path = np.array([[0, 0], [0, 1], [1, 2], [4, 6]])
    warped = align_tracks(ref, out, path=path)
    np.testing.assert_array_equal(warped[0], [0.0, 0.0, 1.0, 4.0])
    np.testing.assert_array_equal(warped[1], [10.0, 11.0, 12.0, 16.0])
    with pytest.raises(ValueError, match="outside"):
        align_tracks(ref, out, path=np.array([[5, 0]]))


@pytest.mark.parametrize(
    ("ref", "out", "match"),
    [
        (np.zeros(3), np.zeros(4), "differ in length"),
        (np.array([100.0, -1.0]), np.zeros(2), "negative"),
        (np.array([100.0, np.nan]), np.zeros(2), "NaN"),
        (np.zeros((2, 2)), np.zeros((2, 2)), "1-D"),
    ],
)
def test_pitch_metrics_reject_bad_tracks(ref: np.ndarray, out: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        f0_frame_errors(ref, out)


# ---- F0 on audio: a known pitch shift ------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "expected_gpe"), [(1.3, 1.0), (1.05, 0.0)])
def test_known_pitch_shift_gives_expected_gpe_and_cents(ratio: float, expected_gpe: float) -> None:
    ref, _ = f0_energy(_harmonic(200.0, 0.5), CONFIG)
    out, _ = f0_energy(_harmonic(200.0 * ratio, 0.5), CONFIG)
    ref, out = ref[2:-2], out[2:-2]  # Harvest's first and last frames see the signal edge
    errors = f0_frame_errors(*align_tracks(ref, out))
    assert errors.gpe == expected_gpe and errors.vde == 0.0
    assert log_f0_rmse_cents(ref, out) == pytest.approx(1200.0 * np.log2(ratio), abs=2.0)


def test_identical_signals_score_perfectly() -> None:
    t = np.arange(int(0.6 * SR)) / SR
    glide = _harmonic(180.0 + 40.0 * np.sin(2 * np.pi * 1.5 * t), 0.6)  # a moving F0: correlation defined
    scores = compare_prosody(glide, glide, SR, config=CONFIG)
    for key in ("mcd13", "mcd_db", "ffe", "gpe", "vde", "log_f0_rmse_cents"):
        assert scores[key] == pytest.approx(0.0, abs=1e-9), key
    assert scores["f0_correlation"] == pytest.approx(1.0)
    assert scores["duration_ratio"] == 1.0


# ---- MCD: hand-computed conventions ----------------------------------------------------------------


def _log_mel(frames: int = 12, n_mels: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(-3.0, 1.0, size=(frames, n_mels))


def test_mcd_of_a_gain_change_is_c0_only() -> None:
    ref = _log_mel()
    delta, n_mels = 0.3, ref.shape[1]
    out = ref + delta  # |M| * e^delta: the dB power moves by 20 delta / ln 10 in every band
    diagonal = np.stack([np.arange(len(ref))] * 2, axis=1)
    mcd13 = mel_cepstral_distortion(ref, out, convention="mcd13", path=diagonal).value
    # orthonormal DCT: c0 = sum(x) / sqrt(M), so a constant shift s in every band moves c0 by s sqrt(M)
    assert mcd13 == pytest.approx(np.sqrt(n_mels) * 2 * DB * delta)
    assert mel_cepstral_distortion(ref, out, convention="mcd_db", path=diagonal).value == pytest.approx(
        0.0, abs=1e-9
    )


@pytest.mark.parametrize("order", [1, 3, 11])
def test_mcd_db_is_the_rms_db_difference_of_a_cosine_ripple(order: int) -> None:
    ref = _log_mel()
    n_mels, amplitude = ref.shape[1], 0.4
    ripple = np.cos(np.pi * order * (np.arange(n_mels) + 0.5) / n_mels)
    out = ref + 0.5 * amplitude * ripple  # ln P = 2 ln |M| moves by amplitude * ripple
    diagonal = np.stack([np.arange(len(ref))] * 2, axis=1)
    # RMS over bands of DB * amplitude * cos(.) is DB * amplitude / sqrt(2)
    mcd_db = mel_cepstral_distortion(ref, out, convention="mcd_db", path=diagonal).value
    assert mcd_db == pytest.approx(DB * amplitude / np.sqrt(2.0))
    mcd13 = mel_cepstral_distortion(ref, out, convention="mcd13", path=diagonal).value
    assert mcd13 == pytest.approx(DB * amplitude * np.sqrt(n_mels / 2.0))


def test_cepstra_shapes_and_errors() -> None:
    log_mel = _log_mel(frames=5, n_mels=40)
    assert cepstra_from_log_mel(log_mel, convention="mcd13").shape == (5, 13)
    assert cepstra_from_log_mel(log_mel, convention="mcd_db").shape == (5, 25)
    with pytest.raises(ValueError, match="convention"):
        cepstra_from_log_mel(log_mel, convention="mcd24")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_coeffs"):
        cepstra_from_log_mel(log_mel, n_coeffs=41)
    with pytest.raises(ValueError, match="sample_rate"):
        mel_cepstral_distortion(np.zeros(SR), np.zeros(SR))
    with pytest.raises(ValueError, match="differs"):
        mel_cepstral_distortion(np.zeros(SR), np.zeros(SR), sample_rate=22050, config=CONFIG)


def test_dtw_path_spans_both_sequences(syllables: np.ndarray, stretched: np.ndarray) -> None:
    result = mel_cepstral_distortion(syllables, stretched, sample_rate=SR, config=CONFIG)
    path = result.path
    ref_frames, out_frames = 1 + len(syllables) // CONFIG.hop_length, 1 + len(stretched) // CONFIG.hop_length
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (ref_frames - 1, out_frames - 1)
    steps = np.diff(path, axis=0)
    assert np.all((steps >= 0) & (steps <= 1)) and np.all(steps.sum(axis=1) >= 1)


# ---- Time-stretch: small MCD, right duration ratio and rate ----------------------------------------


def test_time_stretched_copy_is_close_and_slower(syllables: np.ndarray, stretched: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    unrelated = np.concatenate(
        [_harmonic(320.0, 0.8), 0.05 * rng.standard_normal(int(0.8 * SR)).astype(np.float32)]
    )
    for convention in ("mcd13", "mcd_db"):
        near = mel_cepstral_distortion(syllables, stretched, convention=convention, sample_rate=SR).value
        far = mel_cepstral_distortion(syllables, unrelated, convention=convention, sample_rate=SR).value
        assert near < far / 4, (convention, near, far)
    assert duration_ratio(syllables, stretched, SR, config=CONFIG) == pytest.approx(1.25, abs=0.04)


def test_nonsilent_duration_ignores_leading_and_trailing_silence() -> None:
    silence = np.zeros(int(0.5 * SR), dtype=np.float32)
    wav = np.concatenate([silence, _harmonic(200.0, 1.0), silence])
    assert nonsilent_duration(wav, SR, config=CONFIG) == pytest.approx(1.0, abs=HOP_S)


def test_silent_output_scores_without_error() -> None:
    voice = _harmonic(200.0, 0.5)
    scores = compare_prosody(voice, np.zeros_like(voice), SR, config=CONFIG)
    assert scores["duration_ratio"] == 0.0 and scores["out_duration_s"] == 0.0
    assert scores["vde"] == 1.0 and np.isnan(scores["gpe"])  # every reference frame is voiced
    assert np.isnan(scores["out_speaking_rate"])


def test_syllable_nuclei_hand_made_contour() -> None:
    level = np.array([-60, -10, -30, -12, -13, -12.5, -60, -15, -60, -50, -60], dtype=np.float64)
    f0 = np.array([0, 100, 100, 100, 100, 100, 0, 0, 0, 100, 0], dtype=np.float64)
    # 1: loud voiced peak; 3: voiced peak behind an 18 dB dip; 5: only 0.5 dB above its dip (merged
    # with 3); 7: unvoiced; 9: 40 dB below the loudest frame (silence threshold is 25 dB).
    np.testing.assert_array_equal(syllable_nuclei(f0, 10.0 ** (level / 20.0)), [1, 3])


def test_utterance_prosody_counts_syllables_and_rate_follows_stretch(
    syllables: np.ndarray, stretched: np.ndarray
) -> None:
    original = utterance_prosody(syllables, SR, config=CONFIG)
    slower = utterance_prosody(stretched, SR, config=CONFIG)
    assert original["speaking_rate"] * original["duration_s"] == pytest.approx(6.0)
    assert slower["speaking_rate"] * slower["duration_s"] == pytest.approx(6.0)
    assert slower["speaking_rate"] / original["speaking_rate"] == pytest.approx(0.8, abs=0.03)


def test_utterance_f0_and_energy_statistics_of_a_glide() -> None:
    t = np.arange(SR) / SR
    stats = utterance_prosody(_harmonic(150.0 + 150.0 * t, 1.0), SR, config=CONFIG)  # uniform 150..300 Hz
    assert stats["f0_mean_hz"] == pytest.approx(225.0, rel=0.01)
    assert stats["f0_std_hz"] == pytest.approx(150.0 / np.sqrt(12.0), rel=0.03)
    assert stats["f0_range_st"] == pytest.approx(12.0 * np.log2(285.0 / 165.0), abs=0.1)  # p90 / p10
    power = sum((0.4 / k) ** 2 / 2 for k in range(1, 6))  # mean square of the harmonic sum
    assert stats["energy_mean_db"] == pytest.approx(10.0 * np.log10(power), abs=0.05)
    assert stats["energy_std_db"] < 0.2


def test_unvoiced_utterance_has_nan_f0_statistics() -> None:
    noise = 0.1 * np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32)
    stats = utterance_prosody(noise, SR, config=CONFIG)
    assert np.isnan(stats["f0_mean_hz"]) and np.isnan(stats["f0_range_st"])
    assert np.isfinite(stats["energy_mean_db"])
