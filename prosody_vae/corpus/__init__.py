"""The built-in corpus: English sentences spoken by espeak-ng with known prosody factors.

``build_corpus`` writes a folder with wavs, a JSON-lines manifest whose labels hold the drawn
factors (pitch base, pitch range, rate, voice) and their realised measurements, and a
``corpus.json`` describing the generation. See ``docs/corpus.md``.
"""

from prosody_vae.corpus.espeak import EspeakError, build_corpus, phonemes, synthesize
from prosody_vae.corpus.grammar import generate_sentences, held_out_sentences
from prosody_vae.corpus.labels import measure_prosody
from prosody_vae.corpus.plan import FACTOR_BOUNDS, HELD_OUT_PROSODY, VOICES

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
