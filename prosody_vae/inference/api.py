"""The everyday Python API: text and a reference recording in, a waveform out.

::

    tts = Synthesizer.from_pretrained()                        # the shipped model, Griffin-Lim inside
    speech = tts.speak("The lantern was red.", reference="ref.wav")
    speech.save("lantern.wav")                                 # speech.waveform (N,), speech.sample_rate

:meth:`Synthesizer.speak` returns a :class:`Speech`: the waveform, its sample rate and the
mel-level :class:`~prosody_vae.inference.synthesizer.Synthesis` it was vocoded from (mel, attention,
z). :meth:`Synthesizer.transfer` and the other mel-level methods are unchanged; ``speak`` is transfer
plus the vocoder. A reference's transcript, which models with a text summary read, may be given or
left in ``<name>.txt`` beside the audio (:func:`transcript_beside`), as for the command line's
reference sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from prosody_vae.inference.synthesizer import Synthesis

__all__ = ["Speech", "transcript_beside"]


@dataclass
class Speech:
    """One synthesised utterance as audio.

    Attributes:
        waveform: (N,) float32 samples in [-1, 1] at ``sample_rate``.
        sample_rate: Hz (the model's audio configuration).
        synthesis: what the vocoder turned into sound: ``mel`` (T, n_mels), ``alignment`` (T/r, L),
            ``z`` (D,), ``stopped`` (False when the stop token never fired and the decoder hit its
            step limit).
    """

    waveform: np.ndarray
    sample_rate: int
    synthesis: Synthesis

    @property
    def seconds(self) -> float:
        return len(self.waveform) / self.sample_rate

    def save(self, path: str | Path) -> Path:
        """Write a 16-bit PCM WAV atomically (folders are created); returns the path."""
        from prosody_vae.audio.io import write_wav

        return write_wav(path, self.waveform, self.sample_rate, subtype="PCM_16")


def transcript_beside(audio: str | Path) -> str | None:
    """The transcript in ``<name>.txt`` beside an audio file, or None when there is none (or it is empty)."""
    path = Path(audio).with_suffix(".txt")
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: transcript is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
