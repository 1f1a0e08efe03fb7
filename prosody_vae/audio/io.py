"""Reading audio: decode, mix to mono, resample, trim silence, peak-normalise, with one-line errors;
and writing it atomically (:func:`write_wav`).

Every failure is an :class:`AudioError` whose message is ``"<path>: <problem>"``, so a batch job can
report the file and move on.
"""

from __future__ import annotations

import errno
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from prosody_vae.atomic import atomic_path
from prosody_vae.config import AudioConfig

__all__ = ["MAX_CHANNELS", "SILENCE_PEAK", "AudioError", "load_audio", "process_audio", "write_wav"]

# A signal whose peak stays below -80 dBFS is treated as silent: one 16-bit LSB is about -90 dBFS,
# so this catches digital silence with dither or a DC offset but not a quiet real recording.
SILENCE_PEAK = 1e-4

# Loudspeaker layouts up to 7.1 (8 channels) are averaged to mono. Wider files are almost always
# microphone-array or ambisonic recordings, where an average of channels is a comb-filtered mixture
# rather than "the" speech signal; such files are rejected so the user picks a channel explicitly.
MAX_CHANNELS = 8


class AudioError(ValueError):
    """A bad audio input. The message is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem

    def __reduce__(self):
        # Rebuild from both arguments, so the error survives the trip back from a worker process.
        return (AudioError, (self.path, self.problem))


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


def write_wav(path: str | Path, wav: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> Path:
    """Write ``wav`` (N,) to ``path`` atomically: a full disk or a kill leaves the old file (or none),
    never a truncated wav that reads as valid. Non-finite samples are refused (``ValueError``), and a
    failed write is an ``OSError`` naming ``path``."""
    path = Path(path)
    if path.suffix.lower().lstrip(".").upper() not in sf.available_formats():
        raise ValueError(f"{path}: cannot tell the audio format from the name; end it in .wav, .flac or .ogg")
    wav = np.asarray(wav)
    if not np.isfinite(wav).all():
        raise ValueError(f"{path}: refusing to write NaN or infinite samples")
    try:
        with atomic_path(path) as temporary:
            sf.write(temporary, wav, sample_rate, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError) as error:  # soundfile reports a failed write so
        raise OSError(errno.EIO, f"could not write audio ({str(error).strip()})", str(path)) from None
    return path
