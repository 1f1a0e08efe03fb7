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

Either scheme can also raise the last word of every question (a sentence ending in ``?``) by
``question_rise`` pitch units (``tune_ssml``, ``contour_ssml``). espeak-ng speaks every ``?`` clause with
one question tune that ends only a little above its statement tune: over the original corpus's
training sentences its questions end 0.9 semitones below their own median against 2.0 for
statements, with a spread of 1.1-1.6 semitones, a signal a model learns only a fifth of. Twenty units
(about 4 semitones) make the rise clear at every range: on six statement / question pairs at
ranges 10-90 the question ends 3.4-4.9 semitones above its statement on average (0.4-3.2 without). It is a corpus design
choice, like the stylised contour: English wh-questions often fall, and here they rise too, so that
the rule a model must learn is the punctuation's alone.
"""

from __future__ import annotations

from typing import Literal
from xml.sax.saxutils import escape

import numpy as np

__all__ = [
    "CONTOUR_SPAN",
    "INTONATIONS",
    "MAX_QUESTION_RISE",
    "TUNE_RANGE",
    "Intonation",
    "contour_ssml",
    "is_question",
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
# Largest question rise, in espeak-ng pitch units (about 8 semitones).
MAX_QUESTION_RISE = 40


def is_question(text: str) -> bool:
    """Whether ``text`` is a question: its last non-space character is ``?``."""
    return text.rstrip().endswith("?")


def _check_rise(question_rise: int) -> int:
    if isinstance(question_rise, bool) or not isinstance(question_rise, int):
        raise ValueError(f"question_rise must be an int, got {question_rise!r}")
    if not 0 <= question_rise <= MAX_QUESTION_RISE:
        raise ValueError(f"question_rise must be in 0..{MAX_QUESTION_RISE}, got {question_rise}")
    return question_rise


def tune_ssml(text: str, *, pitch_range: int, question_rise: int = 0) -> str:
    """SSML for espeak-ng's own intonation at range ``pitch_range`` (0..100); ``text`` is escaped.

    A question's last word is raised by ``question_rise`` pitch units (0: espeak-ng's tune alone).
    """
    if not (_check_rise(question_rise) and is_question(text)):
        return f'<speak><prosody range="{pitch_range}">{escape(text)}</prosody></speak>'
    *head, last = text.split()
    body = " ".join([*map(escape, head), f'<prosody pitch="+{question_rise}">{escape(last)}</prosody>'])
    return f'<speak><prosody range="{pitch_range}">{body}</prosody></speak>'


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


def contour_ssml(text: str, *, pitch_range: int, contour: int, question_rise: int = 0) -> str:
    """SSML for the stylised contour: every word in its own ``<prosody pitch>``; words are escaped.

    A question's last word gets ``question_rise`` more pitch units on top of its contour offset.
    """
    words = text.split()
    offsets = word_offsets(words, pitch_range=pitch_range, contour=contour)
    if _check_rise(question_rise) and is_question(text):
        offsets[-1] += question_rise
    tagged = " ".join(
        f'<prosody pitch="{offset:+d}">{escape(word)}</prosody>'
        for word, offset in zip(words, offsets, strict=True)
    )
    return f'<speak><prosody range="{TUNE_RANGE}">{tagged}</prosody></speak>'
