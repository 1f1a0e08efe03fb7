"""Audio: reading files, the log-mel and F0 analysis, and vocoders.

``AudioConfig`` (in :mod:`prosody_vae.config`) describes the analysis used everywhere, so that a mel
computed in data preparation and one computed at synthesis time agree.
"""

from prosody_vae.audio.features import (
    MelSpectrogram,
    decimated_harvest_rate,
    f0_energy,
    frame_energy,
    harvest_f0,
    log_mel,
    num_frames,
)
from prosody_vae.audio.io import MAX_CHANNELS, SILENCE_PEAK, AudioError, load_audio, process_audio, write_wav
from prosody_vae.config import AudioConfig

__all__ = [
    "MAX_CHANNELS",
    "SILENCE_PEAK",
    "AudioConfig",
    "AudioError",
    "MelSpectrogram",
    "decimated_harvest_rate",
    "f0_energy",
    "frame_energy",
    "harvest_f0",
    "load_audio",
    "log_mel",
    "num_frames",
    "process_audio",
    "write_wav",
]
