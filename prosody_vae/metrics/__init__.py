"""Objective prosody metrics: pitch (FFE/GPE/VDE, log-F0 RMSE, F0 correlation), MCD-DTW (ours on the
log-mel, and the standard one on WORLD mel-cepstra), timing, intonation (harmonic detail, F0
contours by two trackers).

Every function takes numpy arrays and returns floats, named tuples or dicts; each module's
docstring names the convention it implements. The analysis (frame grid, F0 tracker) is the
library's :class:`~prosody_vae.audio.AudioConfig`, so metrics index the same frames as the model.
"""

from .duration import duration_ratio, energy_db, nonsilent_duration, speaking_rate, syllable_nuclei
from .intonation import (
    F0_TRACKERS,
    IntonationAnalysis,
    SeriesTrend,
    alignment_path,
    analyse_intonation,
    cepstral_peak_prominence,
    contour_correlation,
    f0_level_hz,
    f0_range_st,
    final_rise_st,
    low_band_ripple,
    mel_ripple,
    series_trend,
    track_f0,
    voiced_share,
    warm_up_trackers,
)
from .mel_cepstrum import freqt, mc2sp, mcep_alpha, sp2mc, world_mel_cepstra
from .pitch import (
    GROSS_PITCH_THRESHOLD,
    PitchErrors,
    align_tracks,
    f0_correlation,
    f0_frame_errors,
    log_f0_rmse_cents,
)
from .prosody import compare_prosody, utterance_prosody
from .spectral import (
    MCDResult,
    cepstra_from_log_mel,
    cepstral_distortion,
    dtw_path,
    mel_cepstral_distortion,
    world_mel_cepstral_distortion,
)

__all__ = [
    "F0_TRACKERS",
    "GROSS_PITCH_THRESHOLD",
    "IntonationAnalysis",
    "MCDResult",
    "PitchErrors",
    "SeriesTrend",
    "align_tracks",
    "alignment_path",
    "analyse_intonation",
    "cepstra_from_log_mel",
    "cepstral_distortion",
    "cepstral_peak_prominence",
    "compare_prosody",
    "contour_correlation",
    "duration_ratio",
    "dtw_path",
    "energy_db",
    "f0_correlation",
    "f0_frame_errors",
    "f0_level_hz",
    "f0_range_st",
    "final_rise_st",
    "freqt",
    "log_f0_rmse_cents",
    "low_band_ripple",
    "mc2sp",
    "mcep_alpha",
    "mel_cepstral_distortion",
    "mel_ripple",
    "nonsilent_duration",
    "series_trend",
    "sp2mc",
    "speaking_rate",
    "syllable_nuclei",
    "track_f0",
    "warm_up_trackers",
    "utterance_prosody",
    "voiced_share",
    "world_mel_cepstra",
    "world_mel_cepstral_distortion",
]
