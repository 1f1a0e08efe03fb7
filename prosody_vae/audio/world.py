"""WORLD vocoder: log-mel + F0 track -> waveform, with the pitch taken from the F0 track, exactly.

Griffin-Lim recovers a phase for a magnitude spectrogram; when the harmonics are blurred (an L1 mel
decoder's output) or closely spaced (a low voice), what it returns has little or no periodicity, and
the pitch a listener hears is not the predicted one. WORLD (Morise et al. 2016, via ``pyworld``)
builds the excitation from F0 instead: a pulse train at the given F0 in voiced frames, noise elsewhere,
shaped by a spectral envelope. Given a model that predicts F0 (``backbone.pitch``), the output's pitch
is the predicted contour, and a contour can be edited before vocoding.

How the WORLD parameters are made from what a TTS model predicts, and where this deviates from WORLD
analysis:

* Spectral envelope: the magnitude mel is spread back over the linear bins by the mel filterbank's
  own triangles, each linear bin a weighted average of the bands that cover it (each band's value
  divided by its area, since the Slaney-normalised filterbank sums ``|X_f|`` times the band's
  weights). This is a smooth interpolation, not a pseudo-inverse (which rings and goes negative). A
  mel already smooth across frequency (an L1 decoder's output) is an envelope as it is; a recorded
  mel's harmonic ripple below 1 kHz leaks into it (CheapTrick would remove it), which costs a little
  timbre in copy synthesis, not pitch.
* Aperiodicity: not predicted. Voiced frames get a fixed curve (-40 dB below 1 kHz rising linearly to
  -5 dB at 8 kHz, about WORLD's D4C on voiced speech of this corpus); unvoiced frames are all noise.
* Level: WORLD's output level follows the envelope up to a constant; the waveform is peak-normalised
  to 0.95 like :class:`~prosody_vae.audio.vocoders.GriffinLimVocoder`.
"""

from __future__ import annotations

import numpy as np
import pyworld
import torch
from torch import Tensor, nn

from prosody_vae.audio.features import mel_filterbank
from prosody_vae.config import AudioConfig

__all__ = ["WorldVocoder"]


class WorldVocoder(nn.Module):
    """Log-mel (B, T, n_mels) and F0 (B, T) in Hz (0 = unvoiced) -> waveform (B, N).

    Args:
        config: the audio parameters the mels were computed with; WORLD's frame period is the hop.
        voiced_aperiodicity_db: aperiodicity of voiced frames at 0-1 kHz and at 8 kHz (linear between).
    """

    needs_f0 = True  # the synthesis code passes the F0 track to vocoders that declare this

    def __init__(
        self, config: AudioConfig, *, voiced_aperiodicity_db: tuple[float, float] = (-40.0, -5.0)
    ) -> None:
        super().__init__()
        self.config = config
        fb = mel_filterbank(config).numpy()  # (n_freq, n_mels)
        area = fb.sum(axis=0)  # (n_mels,) a band's value is about |X| times its area
        spread = fb / np.maximum(fb.max(axis=0, keepdims=True), 1e-12)  # triangles peaking at 1
        covered = spread.sum(axis=1, keepdims=True)  # (n_freq, 1)
        self._covered = covered[:, 0] > 0
        # (n_mels, n_freq): band values / area, averaged over the triangles covering each linear bin
        self._to_linear = (spread / np.maximum(covered, 1e-12)).T / np.maximum(area, 1e-12)[:, None]
        freqs = np.linspace(0.0, config.sample_rate / 2, fb.shape[0])
        low, high = voiced_aperiodicity_db
        rise = np.clip((freqs - 1000.0) / 7000.0, 0.0, 1.0)
        self._voiced_ap = np.clip(10.0 ** ((low + (high - low) * rise) / 20.0), 0.0, 1.0)  # (n_freq,)

    def envelope(self, mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) natural-log magnitude mel -> (T, n_freq) power spectral envelope (float64)."""
        magnitude = np.exp(mel.astype(np.float64)) @ self._to_linear  # (T, n_freq)
        magnitude[:, ~self._covered] = magnitude[:, self._covered].min() if self._covered.any() else 0
        return np.ascontiguousarray(np.maximum(magnitude, 1e-10) ** 2)

    def synthesize(self, mel: np.ndarray, f0: np.ndarray) -> np.ndarray:
        """One utterance: (T, n_mels) log-mel, (T,) F0 in Hz (0 = unvoiced) -> (N,) float32."""
        if mel.ndim != 2 or mel.shape[1] != self.config.n_mels:
            raise ValueError(f"mel must be (T, {self.config.n_mels}), got {mel.shape}")
        if f0.shape != mel.shape[:1]:
            raise ValueError(f"f0 must have one value per mel frame ({mel.shape[0]}), got {f0.shape}")
        f0 = np.nan_to_num(f0.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)
        voiced = f0 > 0
        ap = np.where(voiced[:, None], self._voiced_ap[None, :], 1.0)
        wav = pyworld.synthesize(
            np.ascontiguousarray(f0),
            self.envelope(mel),
            np.ascontiguousarray(ap),
            self.config.sample_rate,
            self.config.frame_period_ms,
        )
        peak = np.abs(wav).max()
        return (wav / max(peak, 1e-6) * 0.95).astype(np.float32)

    @torch.no_grad()
    def forward(self, mels: Tensor, f0: Tensor) -> Tensor:
        """(B, T, n_mels) or (T, n_mels) log-mels and (B, T) or (T,) F0 -> (B, N) or (N,) waveform.

        Items of a batch are vocoded one at a time and zero-padded to the longest (WORLD is a CPU
        library); each item's frames are all of its T, so trim padding frames before calling.
        """
        single = mels.dim() == 2
        if single:
            mels, f0 = mels.unsqueeze(0), f0.unsqueeze(0)
        waves = [
            self.synthesize(m.detach().float().cpu().numpy(), f.detach().float().cpu().numpy())
            for m, f in zip(mels, f0, strict=True)
        ]
        out = np.zeros((len(waves), max(w.shape[0] for w in waves)), dtype=np.float32)
        for row, wave in enumerate(waves):
            out[row, : wave.shape[0]] = wave
        result = torch.from_numpy(out).to(mels.device)
        return result[0] if single else result
