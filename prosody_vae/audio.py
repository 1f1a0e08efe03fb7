"""Audio front end: loading, resampling, trimming, log-mel spectrograms, F0 and energy.

One :class:`AudioConfig` describes the analysis used everywhere (feature cache, training, vocoder,
metrics), so that a mel computed in data preparation and one computed at synthesis time agree.

Reference choices and where we deviate:

* The mel follows the Tacotron 2 / NVIDIA recipe: centred STFT with reflect padding, Hann window,
  magnitude (power 1) spectrum, Slaney mel scale and Slaney area normalisation (the librosa
  default), natural log of ``max(mel, log_floor)``. NVIDIA's code uses the same floor (1e-5).
* F0 comes from WORLD's Harvest refined by StoneMask (pyworld), sampled on the mel frame grid:
  Harvest's frame ``t`` is centred at ``t * frame_period`` ms, which equals the centre of mel frame
  ``t`` when ``frame_period = hop / sr * 1000`` and the STFT is centred.
* Energy is the RMS of the same centred ``n_fft`` frames (librosa ``feature.rms``), linear scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import pyworld
import soundfile as sf
import torch
import torchaudio
from torch import Tensor, nn

__all__ = [
    "AudioConfig",
    "AudioError",
    "MAX_CHANNELS",
    "SILENCE_PEAK",
    "MelSpectrogram",
    "f0_energy",
    "load_audio",
    "log_mel",
    "num_frames",
    "process_audio",
]

# A signal whose peak stays below -80 dBFS is treated as silent: one 16-bit LSB is about -90 dBFS,
# so this catches digital silence with dither or a DC offset but not a quiet real recording.
SILENCE_PEAK = 1e-4

# Loudspeaker layouts up to 7.1 (8 channels) are averaged to mono. Wider files are almost always
# microphone-array or ambisonic recordings, where an average of channels is a comb-filtered mixture
# rather than "the" speech signal; such files are rejected so the user picks a channel explicitly.
MAX_CHANNELS = 8


@dataclass(frozen=True)
class AudioConfig:
    """Analysis parameters shared by every module that touches audio.

    Attributes:
        sample_rate: target sample rate in Hz; audio is resampled to it on load.
        n_fft: FFT size (and the frame length of the energy analysis).
        hop_length: frame shift in samples.
        win_length: Hann window length in samples, ``<= n_fft``.
        n_mels: number of mel bands.
        f_min: lowest mel filter edge in Hz.
        f_max: highest mel filter edge in Hz, ``<= sample_rate / 2``.
        log_floor: floor applied to the magnitude mel before the natural log.
        trim_top_db: leading/trailing silence below ``peak - trim_top_db`` dB is cut; None disables.
        peak_normalize: rescale so that ``max |x|`` equals this; None disables.
        f0_min: lowest F0 searched by Harvest, Hz.
        f0_max: highest F0 searched by Harvest, Hz.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-5
    trim_top_db: float | None = 40.0
    peak_normalize: float | None = 0.95
    f0_min: float = 50.0
    f0_max: float = 600.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"AudioConfig.{name} must be a positive int, got {value!r}")
        if self.win_length > self.n_fft:
            raise ValueError(
                f"AudioConfig.win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})"
            )
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.f_min < self.f_max <= nyquist:
            raise ValueError(
                f"AudioConfig needs 0 <= f_min < f_max <= sample_rate/2 ({nyquist}), "
                f"got f_min={self.f_min}, f_max={self.f_max}"
            )
        if not self.log_floor > 0:
            raise ValueError(f"AudioConfig.log_floor must be > 0, got {self.log_floor!r}")
        if self.trim_top_db is not None and not self.trim_top_db > 0:
            raise ValueError(f"AudioConfig.trim_top_db must be > 0 or None, got {self.trim_top_db!r}")
        if self.peak_normalize is not None and not 0 < self.peak_normalize <= 1:
            raise ValueError(
                f"AudioConfig.peak_normalize must be in (0, 1] or None, got {self.peak_normalize!r}"
            )
        if not 0 < self.f0_min < self.f0_max <= nyquist:
            raise ValueError(
                f"AudioConfig needs 0 < f0_min < f0_max <= sample_rate/2 ({nyquist}), "
                f"got f0_min={self.f0_min}, f0_max={self.f0_max}"
            )

    @property
    def frame_period_ms(self) -> float:
        """Frame shift in milliseconds (the WORLD ``frame_period``)."""
        return 1000.0 * self.hop_length / self.sample_rate


class AudioError(ValueError):
    """A bad audio input. The message is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem

    def __reduce__(self):
        # Rebuild from both arguments, so the error survives the trip back from a worker process.
        return (AudioError, (self.path, self.problem))


def num_frames(num_samples: int, config: AudioConfig) -> int:
    """Number of centred STFT frames for ``num_samples`` samples: ``1 + num_samples // hop``."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return 1 + num_samples // config.hop_length


def _to_mono(data: np.ndarray, source: str) -> np.ndarray:
    """Average a (N,) or (N, C) array to (N,); see ``MAX_CHANNELS`` for what is rejected."""
    if data.ndim == 1:
        return data
    if data.ndim != 2:
        raise AudioError(source, f"expected (N,) or (N, channels) samples, got shape {data.shape}")
    channels = data.shape[1]
    if channels == 0:
        raise AudioError(source, "file has no audio channels")
    if channels > MAX_CHANNELS:
        raise AudioError(
            source,
            f"{channels} channels is not a supported layout (at most {MAX_CHANNELS}); "
            "extract the wanted channel first",
        )
    return data.mean(axis=1) if channels > 1 else data[:, 0]


def process_audio(
    wav: np.ndarray, sample_rate: int, config: AudioConfig, *, source: str = "<array>"
) -> np.ndarray:
    """Turn raw samples into the model's waveform: mono, resampled, trimmed, peak-normalised.

    This is :func:`load_audio` without the file read, for in-memory audio.

    Args:
        wav: (N,) or (N, C) samples (C channels last, as soundfile returns them), any float/int dtype.
        sample_rate: rate of ``wav`` in Hz.
        config: target analysis parameters.
        source: name used in error messages (a path, or ``"<array>"``).

    Returns:
        (N',) float32 at ``config.sample_rate``.

    Raises:
        AudioError: empty, non-finite, silent, unsupported channel layout, or shorter than ``n_fft``.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise AudioError(source, f"sample rate must be a positive int, got {sample_rate!r}")
    data = np.asarray(wav)
    if np.issubdtype(data.dtype, np.integer):
        # Integer PCM: scale to [-1, 1) by the type's full range.
        data = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    elif not np.issubdtype(data.dtype, np.floating):
        raise AudioError(source, f"unsupported sample dtype {data.dtype}")
    data = _to_mono(data, source)
    if data.shape[0] == 0:
        raise AudioError(source, "audio is empty (zero samples)")
    if not np.all(np.isfinite(data)):
        raise AudioError(source, "audio contains NaN or infinite samples")
    peak = float(np.max(np.abs(data)))
    if peak < SILENCE_PEAK:
        raise AudioError(source, f"audio is silent (peak {peak:.2e} below {SILENCE_PEAK:.0e}, i.e. -80 dBFS)")
    data = data.astype(np.float32)
    if sample_rate != config.sample_rate:
        # soxr's high-quality mode: a proper band-limited resampler (no aliasing from naive decimation).
        data = librosa.resample(
            data, orig_sr=int(sample_rate), target_sr=config.sample_rate, res_type="soxr_hq"
        )
    if config.trim_top_db is not None:
        data, _ = librosa.effects.trim(
            data, top_db=config.trim_top_db, frame_length=config.n_fft, hop_length=config.hop_length
        )
    if data.shape[0] < config.n_fft:
        raise AudioError(
            source,
            f"audio is {data.shape[0]} samples after resampling/trimming, "
            f"shorter than one frame (n_fft={config.n_fft})",
        )
    if config.peak_normalize is not None:
        data = data * (config.peak_normalize / float(np.max(np.abs(data))))
    return np.ascontiguousarray(data, dtype=np.float32)


def load_audio(path: str | Path, config: AudioConfig) -> np.ndarray:
    """Read a WAV/FLAC/OGG file and return (N,) float32 mono samples at ``config.sample_rate``.

    Multi-channel files (up to ``MAX_CHANNELS``) are averaged; the signal is resampled with soxr
    (``soxr_hq``), trimmed of leading/trailing silence (``trim_top_db``) and peak-normalised.

    Raises:
        AudioError: naming ``path``, if the file is missing, unreadable or corrupt, empty,
            non-finite, all silent, has an unsupported channel layout, or is shorter than ``n_fft``.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as error:
        # soundfile raises LibsndfileError (a RuntimeError) for corrupt/unknown formats, and
        # OSError-family errors for missing files; both are user errors about this path.
        raise AudioError(path, f"cannot read audio ({error})") from error
    return process_audio(data, int(sample_rate), config, source=str(path))


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


def f0_energy(wav: np.ndarray, config: AudioConfig) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz, 0 = unvoiced) and frame RMS energy on the mel frame grid.

    Args:
        wav: (N,) float samples at ``config.sample_rate``.

    Returns:
        ``(f0, energy)``, each (T,) float32 with ``T = num_frames(N, config)``.

    Harvest returns ``1 + floor(duration_ms / frame_period)`` frames, which can differ by one from
    ``1 + N // hop`` through floating-point rounding; the result is cropped or padded with unvoiced
    frames so that it lines up with the mel exactly.
    """
    x = np.asarray(wav)
    if x.ndim != 1:
        raise AudioError("<array>", f"f0_energy expects a mono (N,) waveform, got shape {x.shape}")
    if x.shape[0] < config.n_fft:
        raise AudioError(
            "<array>", f"waveform has {x.shape[0]} samples, shorter than one frame (n_fft={config.n_fft})"
        )
    if not np.all(np.isfinite(x)):
        raise AudioError("<array>", "waveform contains NaN or infinite samples")
    length = num_frames(x.shape[0], config)
    x64 = np.ascontiguousarray(x, dtype=np.float64)  # pyworld works in float64
    period = config.frame_period_ms
    f0, times = pyworld.harvest(
        x64, config.sample_rate, f0_floor=config.f0_min, f0_ceil=config.f0_max, frame_period=period
    )
    f0 = pyworld.stonemask(x64, f0, times, config.sample_rate)
    energy = librosa.feature.rms(
        y=x.astype(np.float32),
        frame_length=config.n_fft,
        hop_length=config.hop_length,
        center=True,
        pad_mode="reflect",
    )[0]
    f0 = _fit_length(f0, length).astype(np.float32)
    energy = _fit_length(energy, length).astype(np.float32)
    return f0, energy
