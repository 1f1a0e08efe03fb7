"""The built-in corpus: English sentences spoken by espeak-ng with known prosody factors.

``build_corpus`` writes a folder with wavs, a JSON-lines manifest whose labels hold the drawn
factors (pitch base, pitch range, rate, voice) and their realised measurements, and a
``corpus.json`` describing the generation. See ``docs/corpus.md``.
"""

from prosody_vae.data.espeak.grammar import generate_sentences, held_out_sentences
from prosody_vae.data.espeak.labels import measure_prosody
from prosody_vae.data.espeak.plan import FACTOR_BOUNDS, HELD_OUT_PROSODY, VOICES
from prosody_vae.data.espeak.synthesis import EspeakError, build_corpus, phonemes, synthesize

__all__ = [
    "FACTOR_BOUNDS",
    "HELD_OUT_PROSODY",
    "VOICES",
    "EspeakError",
    "build_corpus",
    "generate_sentences",
    "held_out_sentences",
    "measure_prosody",
    "phonemes",
    "synthesize",
]
