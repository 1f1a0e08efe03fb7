"""How the built-in corpus asks espeak-ng for intonation: the SSML of one utterance.

Two schemes (:data:`INTONATIONS`), both read by espeak-ng 1.51 with ``-m``:

* ``"tune"`` (the original corpus): espeak-ng's own intonation, its range set by SSML
  ``<prosody range="N">`` with ``N = pitch_range`` in 0..100. The spread it realises depends on the
  sentence as much as on ``N`` (the stressed syllables and the sentence type decide where the tune
  moves), so a label check over varied sentences reaches only r = 0.85-0.89 even with the pitch
  base and the rate held fixed.
* ``"contour"``: a stylised contour that the corpus, not the sentence, decides. espeak-ng's own tune
  is held nearly flat (``range`` :data:`TUNE_RANGE`) and each word gets a pitch offset on espeak-ng's
  pitch scale (``<prosody pitch="+k">``, relative to the ``-p`` base; one unit is about 0.2
  semitones). The offsets follow a tent over the sentence: ``pitch_range`` sets its height
  (``pitch_range / 100 * CONTOUR_SPAN`` units from the lowest word to the peak word, centred on the
  base) and ``contour`` where its peak falls (0 = on the first word, a fall through the sentence;
  100 = on the last word, a rise; 50 = a rise-fall). Word positions are the centres of the words
  by letter count, scaled to 0..1. Measured within each of the multi-voice corpus's 26 voices,
  the realised spread follows ``pitch_range`` with r = 0.90-0.98 (``docs/corpus.md``).

espeak-ng changes the pitch at the start of each tagged word, so the contour moves in word-sized
steps; within a word espeak-ng's own (flattened) tune still marks the stressed syllables.
"""

from __future__ import annotations

from typing import Literal
from xml.sax.saxutils import escape

import numpy as np

__all__ = [
    "CONTOUR_SPAN",
    "INTONATIONS",
    "TUNE_RANGE",
    "Intonation",
    "contour_ssml",
    "tune_ssml",
    "word_offsets",
]

Intonation = Literal["tune", "contour"]
INTONATIONS: tuple[Intonation, ...] = ("tune", "contour")
# espeak-ng's own range under the stylised contour: low enough that the sentence's own tune adds
# little spread (measured: range 25 lowers the label check to r = 0.81-0.89, 0-10 give 0.95-0.97),
# high enough that stressed syllables still move.
TUNE_RANGE = 10
# Height of the tent at pitch_range 100, in espeak-ng pitch units (about 7.5 semitones). With the
# contour scheme's pitch bases of 20..80 the words stay within espeak-ng's 0..100 pitch scale.
CONTOUR_SPAN = 40


def tune_ssml(text: str, *, pitch_range: int) -> str:
    """SSML for espeak-ng's own intonation at range ``pitch_range`` (0..100); ``text`` is escaped."""
    return f'<speak><prosody range="{pitch_range}">{escape(text)}</prosody></speak>'


def _word_positions(words: list[str]) -> np.ndarray:
    """Centre of each word by letter count, scaled so the first word is at 0 and the last at 1."""
    if len(words) == 1:
        return np.array([0.5])
    lengths = np.array([len(word) for word in words], dtype=np.float64)
    centres = np.cumsum(lengths) - lengths / 2.0
    return (centres - centres[0]) / (centres[-1] - centres[0])


def word_offsets(words: list[str], *, pitch_range: int, contour: int) -> list[int]:
    """Pitch offset of each word (espeak-ng pitch units) for the stylised contour.

    Args:
        words: the sentence's whitespace-separated words (at least one).
        pitch_range: 0..100, the tent's height as a share of :data:`CONTOUR_SPAN`.
        contour: 0..100, the peak's position along the sentence in percent.

    Returns:
        One integer per word in ``[-CONTOUR_SPAN / 2, CONTOUR_SPAN / 2]``: the peak word gets
        ``+height / 2``, the words farthest from it ``-height / 2``.
    """
    peak = contour / 100.0
    x = _word_positions(words)
    # Distance from the peak as a share of the way to the sentence's end on that side.
    before = (peak - x) / peak if peak > 0 else np.zeros_like(x)
    after = (x - peak) / (1.0 - peak) if peak < 1 else np.zeros_like(x)
    height = np.clip(1.0 - np.where(x <= peak, before, after), 0.0, 1.0)  # 1 at the peak, 0 at the far end
    offsets = np.round(CONTOUR_SPAN * pitch_range / 100.0 * (height - 0.5))
    return [int(value) for value in offsets]


def contour_ssml(text: str, *, pitch_range: int, contour: int) -> str:
    """SSML for the stylised contour: every word in its own ``<prosody pitch>``; words are escaped."""
    words = text.split()
    offsets = word_offsets(words, pitch_range=pitch_range, contour=contour)
    tagged = " ".join(
        f'<prosody pitch="{offset:+d}">{escape(word)}</prosody>'
        for word, offset in zip(words, offsets, strict=True)
    )
    return f'<speak><prosody range="{TUNE_RANGE}">{tagged}</prosody></speak>'
