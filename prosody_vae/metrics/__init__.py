"""Objective prosody metrics: pitch (FFE/GPE/VDE, log-F0 RMSE, F0 correlation), MCD-DTW, timing.

Every function takes numpy arrays and returns floats, named tuples or dicts; each module's
docstring names the convention it implements. The analysis (frame grid, F0 tracker) is the
library's :class:`~prosody_vae.audio.AudioConfig`, so metrics index the same frames as the model.
"""

from .duration import duration_ratio, energy_db, nonsilent_duration, speaking_rate, syllable_nuclei
from .pitch import (
    GROSS_PITCH_THRESHOLD,
    PitchErrors,
    align_tracks,
    f0_correlation,
    f0_frame_errors,
    log_f0_rmse_cents,
)
from .prosody import compare_prosody, utterance_prosody
from .spectral import MCDResult, cepstra_from_log_mel, cepstral_distortion, dtw_path, mel_cepstral_distortion

__all__ = [
    "GROSS_PITCH_THRESHOLD",
    "MCDResult",
    "PitchErrors",
    "align_tracks",
    "cepstra_from_log_mel",
    "cepstral_distortion",
    "compare_prosody",
    "duration_ratio",
    "dtw_path",
    "energy_db",
    "f0_correlation",
    "f0_frame_errors",
    "log_f0_rmse_cents",
    "mel_cepstral_distortion",
    "nonsilent_duration",
    "speaking_rate",
    "syllable_nuclei",
    "utterance_prosody",
]
