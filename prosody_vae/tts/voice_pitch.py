"""The reference voice's own F0 level: what a relative reference F0 (``prosody.reference_pitch_relative``)
is relative to.

Our addition (Capacitron reads the mel only; see :mod:`prosody_vae.prosody.pitch_encoder` for the F0
input). A posterior that reads the reference's absolute F0 cannot tell "a high voice speaking low"
from "a low voice speaking high": both give the same Hz. Transfer into another voice needs the second
reading, the level relative to the reference's own voice. Given the voice's mean F0, the posterior
reads log2(F0 / voice mean) instead of log2(F0 / 100 Hz), so the same relative level gives the same
input in any voice, and the decoder, which hears the *target* voice, renders it within the target's
own range.

Where the voice mean comes from:

- **training voices**: the table below, one geometric-mean F0 per speaker of the speaker table,
  measured over the voiced frames of the training split when a run is set up
  (:func:`voice_f0_table`) and kept in the model, so a checkpoint carries it;
- **a voice outside the table**: the caller gives it (``Synthesizer`` ``reference_voice_f0``, the CLI's
  ``--reference-voice-f0 HZ`` or ``--reference-voice-clips``: other recordings of that voice);
- **neither**: the reference's own geometric-mean F0. The contour and spread still carry over, the
  level relative to the voice does not (every reference then reads as "average for its voice").

The conversion rescales the Hz track (``f0 * 100 / voice``) rather than changing the pitch encoder,
so the encoder's features and padding rules are untouched and unvoiced frames stay 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from prosody_vae.prosody.masking import lengths_to_mask

__all__ = ["VoicePitch", "mean_f0_hz", "voice_f0_table"]

# The pitch encoder's fixed reference (log2(F0 / 100 Hz)); a relative track is rescaled onto it.
ENCODER_REFERENCE_HZ = 100.0


def _voiced_log_sum(track: Tensor) -> tuple[float, int]:
    """Sum of ln F0 over the voiced frames (> 0) of an F0 track (T,) in Hz, and their count."""
    voiced = track[track > 0].double()
    return float(torch.log(voiced).sum()), int(voiced.numel())


def mean_f0_hz(tracks: Iterable[Tensor]) -> float:
    """Geometric-mean F0 (Hz) over the voiced frames (> 0) of F0 tracks (T_i,) in Hz.

    Raises ``ValueError`` when no frame is voiced."""
    total, count = 0.0, 0
    for track in tracks:
        logs, n = _voiced_log_sum(track)
        total, count = total + logs, count + n
    if count == 0:
        raise ValueError("no voiced frame: the voice's mean F0 cannot be measured")
    return math.exp(total / count)


def voice_f0_table(speakers: Sequence[str], tracks: Iterable[tuple[str, Tensor]]) -> list[float]:
    """Geometric-mean F0 (Hz) per speaker of ``speakers``, from (speaker, F0 track) pairs.

    Raises ``ValueError`` naming a speaker with no voiced frame."""
    logs = {s: 0.0 for s in speakers}
    counts = dict.fromkeys(speakers, 0)
    for speaker, track in tracks:
        total, n = _voiced_log_sum(track)
        logs[speaker] += total
        counts[speaker] += n
    empty = [s for s in speakers if counts[s] == 0]
    if empty:
        raise ValueError(
            f"no voiced frame for speaker(s) {', '.join(empty)}: their mean F0 cannot be measured"
        )
    return [math.exp(logs[s] / counts[s]) for s in speakers]


class VoicePitch(nn.Module):
    """Per-voice mean F0 table (n_speakers,) and the conversion of reference F0 to the voice-relative track.

    Args:
        n_speakers: size of the speaker table the ids index.
    """

    def __init__(self, n_speakers: int) -> None:
        super().__init__()
        if n_speakers < 1:
            raise ValueError(f"n_speakers must be >= 1, got {n_speakers}")
        # a persistent buffer, so the checkpoint carries each training voice's level
        self.register_buffer("voice_f0_hz", torch.full((n_speakers,), ENCODER_REFERENCE_HZ))

    def set_table(self, hz: Sequence[float]) -> None:
        """Set the mean F0 (Hz) of every voice of the table (:func:`voice_f0_table`)."""
        values = torch.as_tensor(list(hz), dtype=self.voice_f0_hz.dtype)
        if values.shape != self.voice_f0_hz.shape or not bool(
            torch.isfinite(values).all() and (values > 0).all()
        ):
            raise ValueError(
                f"the voice F0 table needs {self.voice_f0_hz.numel()} finite positive values (Hz), got {list(hz)!r}"
            )
        self.voice_f0_hz.copy_(values.to(self.voice_f0_hz.device))

    def voice_hz(self, f0: Tensor, lengths: Tensor, speakers: Tensor, given: Tensor | None = None) -> Tensor:
        """Each reference's voice mean (B,) in Hz: ``given`` where > 0, else the table's entry of a
        known speaker id (>= 0), else the reference's own geometric-mean F0 (100 Hz if unvoiced).

        Args:
            f0: (B, T) reference F0 in Hz, 0 where unvoiced; frames past ``lengths`` are ignored.
            lengths: (B,) valid frames.
            speakers: (B,) speaker ids; negative for a voice outside the table.
            given: (B,) voice means in Hz from the caller, <= 0 or nan where not given; or None.
        """
        batch = f0.shape[0]
        valid = lengths_to_mask(lengths.to(f0.device), f0.shape[1]) & (f0 > 0)  # (B, T)
        logs = torch.where(valid, torch.log(f0.clamp_min(1.0)), torch.zeros_like(f0)).sum(dim=1)
        counts = valid.sum(dim=1)
        own = torch.where(
            counts > 0, torch.exp(logs / counts.clamp_min(1)), torch.full_like(logs, ENCODER_REFERENCE_HZ)
        )  # (B,)
        known = speakers >= 0
        table = self.voice_f0_hz.to(f0.dtype)[torch.where(known, speakers, torch.zeros_like(speakers))]
        hz = torch.where(known.to(f0.device), table, own)
        if given is not None:
            if given.shape != (batch,):
                raise ValueError(f"voice F0 must have shape ({batch},), got {tuple(given.shape)}")
            given = given.to(f0.device, f0.dtype)
            hz = torch.where(given > 0, given, hz)  # nan > 0 is False: nan is "not given" too
        return hz

    @staticmethod
    def relative(f0: Tensor, voice_hz: Tensor) -> Tensor:
        """F0 (B, T) rescaled so that the voice mean ``voice_hz`` (B,) lands on the pitch encoder's
        100 Hz reference; unvoiced frames stay 0."""
        return f0 * (ENCODER_REFERENCE_HZ / voice_hz).unsqueeze(1)
