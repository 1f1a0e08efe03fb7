"""The standard MCD (WORLD envelope, SPTK mel-cepstrum): the analysis against pysptk's published
values and closed forms, and the distortion against hand-computed cases."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import pyworld
import scipy.signal
import soundfile as sf

from prosody_vae.metrics import (
    cepstral_distortion,
    freqt,
    mc2sp,
    mcep_alpha,
    sp2mc,
    world_mel_cepstra,
    world_mel_cepstral_distortion,
)

SR = 22050
ALPHA = 0.455  # mcep_alpha(22050)
DB = 10.0 / np.log(10.0)
# (F1, F2, F3) in Hz of a few vowels (Peterson and Barney averages, rounded)
VOWELS = {
    "a": (730, 1090, 2440),
    "i": (270, 2290, 3010),
    "u": (300, 870, 2240),
    "e": (530, 1840, 2480),
    "o": (570, 840, 2410),
    "ae": (660, 1720, 2410),
    "er": (490, 1350, 1690),
    "I": (390, 1990, 2550),
}


def _warped_frequency(alpha: float, bins: int = 513) -> np.ndarray:
    omega = np.linspace(0.0, np.pi, bins)
    return np.arctan2((1 - alpha**2) * np.sin(omega), (1 + alpha**2) * np.cos(omega) - 2 * alpha)


def _source(seconds: float, f0: float = 120.0) -> np.ndarray:
    """A glottal source stand-in: impulses at F0 with a slow 10 % vibrato, -12 dB/octave above 100 Hz."""
    n = int(seconds * SR)
    phase = np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * np.arange(n) / SR))) / SR
    pulses = np.zeros(n)
    pulses[1:][np.diff(np.floor(phase)) > 0] = 1.0
    pole = np.exp(-2 * np.pi * 100.0 / SR)
    return scipy.signal.lfilter([1.0], np.convolve([1, -pole], [1, -pole]), pulses)


def _resonate(x: np.ndarray, formants: tuple[float, ...]) -> np.ndarray:
    """Two-pole resonators of 100 Hz bandwidth and unit gain at 0 Hz, one per formant."""
    for centre in formants:
        r, theta = np.exp(-np.pi * 100.0 / SR), 2 * np.pi * centre / SR
        poles = [1, -2 * r * np.cos(theta), r * r]
        x = scipy.signal.lfilter([sum(poles)], poles, x)
    return x


def _vowels(sequence, seconds_each: float = 0.25) -> np.ndarray:
    """The source through each vowel's formants in turn: a "sentence" whose envelope is known."""
    x = np.concatenate([_resonate(_source(seconds_each), VOWELS[v]) for v in sequence])
    x = x + 1e-4 * np.abs(x).max() * np.random.default_rng(0).standard_normal(x.shape[0])
    return 0.5 * x / np.abs(x).max()


@pytest.mark.parametrize(
    ("sample_rate", "alpha"),
    # pysptk's own test values for mcepalpha, plus 24 kHz
    [
        (8000, 0.312),
        (11025, 0.357),
        (16000, 0.41),
        (22050, 0.455),
        (24000, 0.466),
        (44100, 0.544),
        (48000, 0.554),
    ],
)
def test_alpha_table(sample_rate: int, alpha: float) -> None:
    assert mcep_alpha(sample_rate) == pytest.approx(alpha, abs=1e-9)


@pytest.mark.parametrize("bad", [0, -16000, 16000.0, True])
def test_alpha_rejects_a_bad_rate(bad) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        mcep_alpha(bad)


def test_sp2mc_matches_pysptk() -> None:
    # pysptk 1.0.1: pysptk.sp2mc(sp, 24, 0.455)[[0, 1, 2, 3, 4, 5, 24]] for this spectrum
    omega = np.linspace(0.0, np.pi, 513)
    spectrum = (1.2 + np.cos(3 * omega)) * np.exp(-omega) + 0.05
    expected = [
        -3.641874161737e-01,
        6.690055171543e-01,
        1.516873577041e-01,
        -6.551362472848e-02,
        -1.067895284595e-01,
        1.879196261394e-01,
        -1.879958079706e-04,
    ]
    mc = sp2mc(spectrum, 24, ALPHA)
    assert mc.shape == (25,)
    np.testing.assert_allclose(mc[[0, 1, 2, 3, 4, 5, 24]], expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.41, ALPHA])
def test_mc2sp_is_the_cosine_series_on_the_warped_axis(alpha: float) -> None:
    mc = np.random.default_rng(1).normal(size=(3, 25)) * np.r_[1.0, 0.5 / np.arange(1, 25)]
    beta = _warped_frequency(alpha)  # (513,)
    log_power = 2 * np.cos(np.arange(25)[:, None] * beta[None, :])  # (25, 513): ln P = 2 sum c_m cos(m beta)
    np.testing.assert_allclose(np.log(mc2sp(mc, alpha, 1024)), mc @ log_power, atol=1e-9)
    np.testing.assert_allclose(sp2mc(mc2sp(mc, alpha, 1024), 24, alpha), mc, atol=1e-9)  # and back


def test_freqt_warps_a_first_order_filter_as_the_closed_form_says() -> None:
    # ln|1 - b e^-jw| has the cepstrum -b^n / n. Substituting the all-pass,
    # 1 - b z^-1 = (1 - b alpha)(1 - b' z~^-1) / (1 + alpha z~^-1) with b' = (b - alpha) / (1 - b alpha),
    # so its mel-cepstrum is c~_0 = ln(1 - b alpha), c~_n = ((-alpha)^n - b'^n) / n.
    b, n = 0.6, np.arange(1, 513)
    cepstrum = np.r_[0.0, -(b**n) / n]
    b_warped = (b - ALPHA) / (1 - b * ALPHA)
    k = np.arange(1, 25)
    expected = np.r_[np.log(1 - b * ALPHA), ((-ALPHA) ** k - b_warped**k) / k]
    np.testing.assert_allclose(freqt(cepstrum, 24, ALPHA), expected, atol=1e-12)
    # and -alpha undoes it, up to the truncation at order 24 (alpha^25 / 25 = 1e-10)
    np.testing.assert_allclose(freqt(expected, 512, -ALPHA)[:30], cepstrum[:30], atol=1e-9)


def test_round_trip_gives_the_smoothed_envelope() -> None:
    x = _vowels("aiue")
    f0, times = pyworld.dio(x, SR, frame_period=5.0)
    spectrum = pyworld.cheaptrick(x, pyworld.stonemask(x, f0, times, SR), times, SR)  # (T, 513)
    mc = sp2mc(spectrum, 24, ALPHA)
    smoothed = mc2sp(mc, ALPHA, 1024)
    # a projection: the smoothed envelope is its own order-24 mel-cepstral approximation
    np.testing.assert_allclose(sp2mc(smoothed, 24, ALPHA), mc, atol=1e-9)
    # the approximation error shrinks with the order (2.9 dB RMS at 24 for these sharp formants) and
    # vanishes at a high one
    rms_db = [
        np.sqrt(np.mean((DB * np.log(mc2sp(sp2mc(spectrum, order, ALPHA), ALPHA, 1024) / spectrum)) ** 2))
        for order in (8, 24, 120, 400)
    ]
    assert rms_db[0] > rms_db[1] > rms_db[2] > rms_db[3] and rms_db[1] < 4.0 and rms_db[3] < 0.1


def test_identical_waveforms_give_zero() -> None:
    x = _vowels("aiue")
    result = world_mel_cepstral_distortion(x, x.copy(), SR)
    assert result.value == 0.0
    assert np.array_equal(result.path[:, 0], result.path[:, 1])  # the diagonal


def test_gain_moves_only_c0_which_is_excluded() -> None:
    x = _vowels("aiue")
    ref, quiet = world_mel_cepstra(x, SR), world_mel_cepstra(0.25 * x, SR)
    np.testing.assert_allclose(quiet[:, 0] - ref[:, 0], np.log(0.25), atol=1e-3)  # ln|H| drops by ln 0.25
    assert world_mel_cepstral_distortion(x, 0.25 * x, SR).value == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("b", [0.3, 0.6, -0.5])
@pytest.mark.parametrize("f0_method", ["dio", "harvest"])
def test_a_known_filter_gives_the_hand_computed_mcd(b: float, f0_method: str) -> None:
    # Filtering by 1 - b z^-1 multiplies the envelope by |1 - b e^-jw|^2, so every frame's
    # mel-cepstrum moves by the closed form above and the MCD is (10/ln 10) sqrt(2 sum_{n=1}^{24} d_n^2).
    x = _vowels("aiue")
    y = scipy.signal.lfilter([1.0, -b], [1.0], x)
    b_warped, k = (b - ALPHA) / (1 - b * ALPHA), np.arange(1, 25)
    difference = ((-ALPHA) ** k - b_warped**k) / k
    expected = DB * np.sqrt(2 * np.sum(difference**2))  # 1.79, 4.06, 2.54 dB
    assert world_mel_cepstral_distortion(x, y, SR, f0_method=f0_method).value == pytest.approx(
        expected, rel=0.01
    )


def test_the_formula_on_a_known_mel_cepstral_difference() -> None:
    ref = np.random.default_rng(2).normal(size=(40, 25))
    out = ref.copy()
    out[:, 0] += 3.0  # c0 (level): excluded
    out[:, 1] += 0.1
    out[:, 5] -= 0.2
    diagonal = np.stack([np.arange(40)] * 2, axis=1)
    # (10 / ln 10) * sqrt(2 * (0.1^2 + 0.2^2)) = 4.3429 * sqrt(0.1) = 1.3734 dB
    value = cepstral_distortion(ref, out, convention="mcd_db", path=diagonal).value
    assert value == pytest.approx(1.37336, abs=1e-4)


def test_a_time_stretched_copy_scores_lower_than_a_different_utterance() -> None:
    sentence = _vowels("aiueai")
    stretched = librosa.effects.time_stretch(sentence, rate=0.8)  # 1.25 times longer
    other = _vowels(["o", "ae", "er", "I", "o", "ae"])
    same = world_mel_cepstral_distortion(sentence, stretched, SR)
    different = world_mel_cepstral_distortion(sentence, other, SR)
    assert same.value < 0.6 * different.value  # about 4.1 against 8.9 dB
    # DTW found the stretch: the path crosses the output 1.25 times as fast as the reference
    slope = np.polyfit(same.path[:, 0], same.path[:, 1], 1)[0]
    assert slope == pytest.approx(1.25, rel=0.05)


def test_silence_at_the_ends_is_trimmed() -> None:
    x = _vowels("aiue")
    padded = np.concatenate([np.zeros(SR // 2), x, np.zeros(SR // 3)])
    trimmed = world_mel_cepstral_distortion(x, padded, SR).value
    untrimmed = world_mel_cepstral_distortion(x, padded, SR, trim_top_db=None).value
    # what is left is the trim's frame granularity: a shift by part of a 5 ms frame (about 1.7 dB here)
    assert trimmed < 0.5 * untrimmed and trimmed < 2.5


def test_bad_arguments_are_named() -> None:
    x = _vowels("a")
    with pytest.raises(ValueError, match="f0_method"):
        world_mel_cepstral_distortion(x, x, SR, f0_method="swipe")
    with pytest.raises(ValueError, match="order"):
        world_mel_cepstral_distortion(x, x, SR, order=0)
    with pytest.raises(ValueError, match="power spectrum"):
        sp2mc(np.zeros(513), 24, ALPHA)
    with pytest.raises(ValueError, match="mono"):
        world_mel_cepstra(np.stack([x, x]), SR)


def test_evaluation_reports_the_standard_mcd(tmp_path) -> None:
    from prosody_vae.evaluation import PAIR_METRICS, evaluate_pairs, pairs_from_dirs

    for folder in ("ref", "out"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "utt.wav", _vowels("aiue").astype(np.float32), SR)
    result = evaluate_pairs(pairs_from_dirs(tmp_path / "ref", tmp_path / "out"), num_workers=0)
    assert "mcd_world_db" in PAIR_METRICS
    assert result.paired()[0].values["mcd_world_db"] == pytest.approx(0.0, abs=1e-9)
    assert "| mcd_world_db |" in result.format_table()
