"""The built-in corpus: English sentences spoken by espeak-ng with known prosody factors.

``build_corpus`` writes a folder with wavs, a JSON-lines manifest whose labels hold the drawn
factors (pitch base, pitch range, rate, voice; the contour's peak position with the stylised
contour) and their realised measurements, and a ``corpus.json`` describing the generation. See
``docs/corpus.md``.
"""

from prosody_vae.data.espeak.grammar import generate_sentences, held_out_sentences
from prosody_vae.data.espeak.intonation import INTONATIONS
from prosody_vae.data.espeak.labels import intonation_labels, measure_prosody
from prosody_vae.data.espeak.plan import CONTOUR_FACTOR_BOUNDS, FACTOR_BOUNDS, HELD_OUT_PROSODY, VOICES
from prosody_vae.data.espeak.synthesis import (
    DRAWN_SETTINGS,
    EspeakError,
    build_corpus,
    check_voices,
    corpus_question_rise,
    phonemes,
    synthesize,
    synthesize_with_settings,
)

__all__ = [
    "CONTOUR_FACTOR_BOUNDS",
    "DRAWN_SETTINGS",
    "FACTOR_BOUNDS",
    "HELD_OUT_PROSODY",
    "INTONATIONS",
    "VOICES",
    "EspeakError",
    "build_corpus",
    "check_voices",
    "corpus_question_rise",
    "generate_sentences",
    "held_out_sentences",
    "intonation_labels",
    "measure_prosody",
    "phonemes",
    "synthesize",
    "synthesize_with_settings",
]
