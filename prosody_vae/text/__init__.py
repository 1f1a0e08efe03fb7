"""Text front end: normalisation, versioned symbol sets, character and espeak-ng phoneme tokenizers.

>>> from prosody_vae.text import build_tokenizer
>>> tok = build_tokenizer("characters")
>>> tok.decode(tok.encode("Dr. Smith paid $3.50!"))
'doctor smith paid three dollars and fifty cents!'
"""

from prosody_vae.text.normalise import normalize_text
from prosody_vae.text.phonemes import Phonemizer, PhonemizerError
from prosody_vae.text.symbols import CHARACTER_SYMBOLS, PHONEME_SYMBOLS, SYMBOLS_VERSION
from prosody_vae.text.tokenizers import (
    CharacterTokenizer,
    PhonemeTokenizer,
    TextError,
    Tokenizer,
    build_tokenizer,
)

__all__ = [
    "CHARACTER_SYMBOLS",
    "PHONEME_SYMBOLS",
    "SYMBOLS_VERSION",
    "CharacterTokenizer",
    "PhonemeTokenizer",
    "Phonemizer",
    "PhonemizerError",
    "TextError",
    "Tokenizer",
    "build_tokenizer",
    "normalize_text",
]
