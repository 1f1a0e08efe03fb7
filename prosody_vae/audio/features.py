"""Audio analysis: log-mel spectrograms, F0 and energy on one frame grid.

One :class:`~prosody_vae.config.AudioConfig` describes the analysis used everywhere (feature cache,
training, vocoder, metrics), so that a mel computed in data preparation and one computed at synthesis
time agree.

Reference choices and where we deviate:

* The mel follows the Tacotron 2 / NVIDIA recipe: centred STFT with reflect padding, Hann window,
  magnitude (power 1) spectrum, Slaney mel scale and Slaney area normalisation (the librosa
  default), natural log of ``max(mel, log_floor)``. NVIDIA's code uses the same floor (1e-5).
* F0 comes from WORLD's Harvest refined by StoneMask (pyworld), sampled on the mel frame grid:
  Harvest's frame ``t`` is centred at ``t * frame_period`` ms, which equals the centre of mel frame
  ``t`` when ``frame_period = hop / sr * 1000`` and the STFT is centred.
* Energy is the RMS of the same centred ``n_fft`` frames (librosa ``feature.rms``), linear scale.
* Harvest costs about a hundred times as much as the mel. :func:`harvest_f0` can run it on the signal
  resampled to :func:`decimated_harvest_rate` (about 1.7 times as fast, within Harvest's own sensitivity to
  resampling: docs/corpus.md, "F0 trackers of the feature cache"); the reference track stays the
  full-rate one.
"""

from __future__ import annotations

import math

import librosa
import numpy as np
import pyworld
import torch
import torchaudio
from torch import Tensor, nn

from prosody_vae.audio.io import AudioError
from prosody_vae.config import AudioConfig

__all__ = [
    "MelSpectrogram",
    "decimated_harvest_rate",
    "f0_energy",
    "frame_energy",
    "harvest_f0",
    "log_mel",
    "mel_filterbank",
    "num_frames",
]


def num_frames(num_samples: int, config: AudioConfig) -> int:
    """Number of centred STFT frames for ``num_samples`` samples: ``1 + num_samples // hop``."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return 1 + num_samples // config.hop_length


def mel_filterbank(config: AudioConfig) -> Tensor:
    """The analysis's mel filterbank, (n_fft // 2 + 1, n_mels): Slaney scale and area normalisation.

    The one definition the mel, the Griffin-Lim inverse and the WORLD envelope share.
    """
    return torchaudio.functional.melscale_fbanks(
        n_freqs=config.n_fft // 2 + 1,
        f_min=config.f_min,
        f_max=config.f_max,
        n_mels=config.n_mels,
        sample_rate=config.sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )


class MelSpectrogram(nn.Module):
    """Log-magnitude mel spectrogram on the library's (frames, mel) layout.

    Wraps ``torchaudio.transforms.MelSpectrogram`` with ``center=True`` (reflect padding),
    ``power=1.0``, ``mel_scale="slaney"``, ``norm="slaney"``, then ``log(clamp(mel, log_floor))``.
    The window and filterbank are buffers of the wrapped transform, so ``.to(device)`` moves them.
    """

    def __init__(self, config: AudioConfig) -> None:
        super().__init__()
        self.n_mels = config.n_mels
        self.log_floor = config.log_floor
        self.transform = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            power=1.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, wav: Tensor) -> Tensor:
        """Compute log-mels.

        Args:
            wav: (N,) or (B, N) float waveform at the config's sample rate.

        Returns:
            (T, n_mels) or (B, T, n_mels) with ``T = 1 + N // hop_length``.
        """
        if wav.dim() not in (1, 2):
            raise ValueError(f"wav must be (N,) or (B, N), got shape {tuple(wav.shape)}")
        mel = self.transform(wav)  # (..., n_mels, T)
        return torch.log(torch.clamp(mel, min=self.log_floor)).transpose(-1, -2)  # (..., T, n_mels)


def log_mel(wav: np.ndarray | Tensor, config: AudioConfig) -> Tensor:
    """Log-mel of one waveform already at ``config.sample_rate``.

    Args:
        wav: (N,) samples, numpy or torch; torch input keeps its device.

    Returns:
        (T, n_mels) float32 with ``T = num_frames(N, config)``.

    Raises:
        AudioError: (source ``"<array>"``) for a non-1-D, empty, non-finite or too-short input.
    """
    tensor = torch.as_tensor(wav)
    if tensor.dim() != 1:
        raise AudioError("<array>", f"log_mel expects a mono (N,) waveform, got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise AudioError("<array>", f"log_mel expects float samples, got dtype {tensor.dtype}")
    if tensor.numel() < config.n_fft:
        raise AudioError(
            "<array>", f"waveform has {tensor.numel()} samples, shorter than one frame (n_fft={config.n_fft})"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise AudioError("<array>", "waveform contains NaN or infinite samples")
    module = MelSpectrogram(config).to(tensor.device)
    with torch.no_grad():
        return module(tensor.to(torch.float32))


def _fit_length(values: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad (zero = unvoiced/silent) to exactly ``length`` frames."""
    if values.shape[0] >= length:
        return values[:length]
    return np.pad(values, (0, length - values.shape[0]))


def _checked_mono(wav: np.ndarray, config: AudioConfig, caller: str) -> np.ndarray:
    x = np.asarray(wav)
    if x.ndim != 1:
        raise AudioError("<array>", f"{caller} expects a mono (N,) waveform, got shape {x.shape}")
    if x.shape[0] < config.n_fft:
        raise AudioError(
            "<array>", f"waveform has {x.shape[0]} samples, shorter than one frame (n_fft={config.n_fft})"
        )
    if not np.all(np.isfinite(x)):
        raise AudioError("<array>", "waveform contains NaN or infinite samples")
    return x


def decimated_harvest_rate(config: AudioConfig) -> int:
    """The sample rate at which ``harvest_f0(..., rate=...)`` can search ``config``'s F0 range.

    The smallest multiple of 1 kHz at or above ``6 * f0_max`` (4 kHz for the default 600 Hz), capped at
    ``config.sample_rate``. Harvest band-passes the signal around each candidate F0 up to
    ``1.1 * f0_max`` with filters about one F0 wide on either side, so everything it looks at lies below
    about ``2.2 * f0_max``; a Nyquist frequency of ``3 * f0_max`` leaves a margin for the resampler's
    transition band. Harvest's cost grows with the rate it runs at (it already halves a 22.05 kHz
    input internally), so this rate makes it about 1.7 times as fast on the default analysis.
    """
    return min(config.sample_rate, 1000 * math.ceil(6.0 * config.f0_max / 1000.0))


def harvest_f0(wav: np.ndarray, config: AudioConfig, *, rate: int | None = None) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) from WORLD Harvest refined by StoneMask, on the mel frame grid.

    Args:
        wav: (N,) float samples at ``config.sample_rate``.
        config: analysis parameters (F0 search range, frame grid).
        rate: run Harvest on the signal resampled to this rate (soxr, high quality), e.g.
            :func:`decimated_harvest_rate`; None runs it on ``wav`` as it is (the reference track of
            labels, metrics and the default feature cache). StoneMask always refines the F0 on the
            full-rate ``wav``, so only Harvest's candidates and voicing decisions see the lower rate.

    Returns:
        (T,) float32 with ``T = num_frames(N, config)``.

    Harvest returns ``1 + floor(duration_ms / frame_period)`` frames, which can differ by one from
    ``1 + N // hop`` through floating-point rounding; the result is cropped or padded with unvoiced
    frames so that it lines up with the mel exactly.
    """
    x = _checked_mono(wav, config, "harvest_f0")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0):
        raise ValueError(f"rate must be a positive int or None, got {rate!r}")
    decimate = rate is not None and rate != config.sample_rate
    if decimate and not 2 * config.f0_max < rate < config.sample_rate:
        raise ValueError(
            f"rate must be sample_rate ({config.sample_rate}) or lie between 2 * f0_max "
            f"({2 * config.f0_max:g}) and it, got {rate}"
        )
    x64 = np.ascontiguousarray(x, dtype=np.float64)  # pyworld works in float64
    search, search_rate = x64, config.sample_rate
    if decimate:
        search = librosa.resample(x64, orig_sr=config.sample_rate, target_sr=rate, res_type="soxr_hq")
        search, search_rate = np.ascontiguousarray(search, dtype=np.float64), rate
    f0, times = pyworld.harvest(
        search,
        search_rate,
        f0_floor=config.f0_min,
        f0_ceil=config.f0_max,
        frame_period=config.frame_period_ms,
    )
    f0 = pyworld.stonemask(x64, f0, times, config.sample_rate)
    return _fit_length(f0, num_frames(x.shape[0], config)).astype(np.float32)


def frame_energy(wav: np.ndarray, config: AudioConfig) -> np.ndarray:
    """RMS of the centred ``n_fft`` frames (librosa ``feature.rms``, linear), (T,) float32 on the mel grid."""
    x = _checked_mono(wav, config, "frame_energy")
    energy = librosa.feature.rms(
        y=x.astype(np.float32),
        frame_length=config.n_fft,
        hop_length=config.hop_length,
        center=True,
        pad_mode="reflect",
    )[0]
    return _fit_length(energy, num_frames(x.shape[0], config)).astype(np.float32)


def f0_energy(wav: np.ndarray, config: AudioConfig) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz, 0 = unvoiced) and frame RMS energy on the mel frame grid.

    The library's reference F0: :func:`harvest_f0` at the analysis rate, the one track that labels,
    metrics and the default feature cache share.

    Args:
        wav: (N,) float samples at ``config.sample_rate``.

    Returns:
        ``(f0, energy)``, each (T,) float32 with ``T = num_frames(N, config)``.
    """
    x = _checked_mono(wav, config, "f0_energy")
    return harvest_f0(x, config), frame_energy(x, config)
