"""The one analysis every metric uses: the library's :class:`~prosody_vae.audio.AudioConfig`.

Metrics run on the same frame grid as the model's features (centred STFT, ``1 + N // hop`` frames),
so an F0 track, a log-mel and a DTW path computed here index the same frames, and a metric computed
from a cached or generated mel agrees with one computed from the waveform.
"""

from __future__ import annotations

import numpy as np

from prosody_vae.audio import AudioConfig, f0_energy, log_mel

__all__ = ["analysis_config", "waveform_features"]


def analysis_config(sample_rate: int, config: AudioConfig | None = None) -> AudioConfig:
    """The analysis for audio at ``sample_rate``: ``config`` if given, else the library defaults.

    The defaults' mel ceiling (8 kHz) and F0 ceiling are clamped to the Nyquist frequency so that
    telephone-band audio (8 kHz) can be measured without building a config by hand.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    if config is not None:
        if not isinstance(config, AudioConfig):
            raise TypeError(f"config must be an AudioConfig, got {type(config).__name__}")
        if config.sample_rate != sample_rate:
            raise ValueError(
                f"config.sample_rate ({config.sample_rate}) differs from sample_rate ({sample_rate}); "
                "resample the audio or pass a matching config"
            )
        return config
    default = AudioConfig()
    nyquist = sample_rate / 2
    return AudioConfig(
        sample_rate=int(sample_rate),
        f_max=min(default.f_max, nyquist),
        f0_max=min(default.f0_max, nyquist),
    )


def waveform_features(wav: np.ndarray, config: AudioConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F0 (Hz, 0 = unvoiced), frame RMS energy (linear) and log-mel of one waveform.

    Returns:
        ``(f0 (T,), energy (T,), log_mel (T, n_mels))`` on the same frame grid.
    """
    f0, energy = f0_energy(wav, config)
    mel = log_mel(np.asarray(wav, dtype=np.float32), config).numpy()
    return f0, energy, mel
