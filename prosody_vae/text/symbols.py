"""The fixed, versioned symbol sets.

A checkpoint stores its tokenizer's symbol list (``Tokenizer.symbols``); a tokenizer rebuilt from that
list maps text to the same ids whatever the current defaults are. When a default list changes, the
version number goes up and the old list stays here so that old checkpoints keep their meaning.

Layout of every list: ``PAD`` (id 0, the padding id), ``EOS`` (id 1, appended only when a tokenizer
is asked to), the word boundary ``" "``, punctuation, then letters or phones.
"""

from __future__ import annotations

__all__ = [
    "CHARACTER_SYMBOLS",
    "EOS",
    "PAD",
    "PHONEME_PUNCTUATION",
    "PHONEME_SYMBOLS",
    "PUNCTUATION",
    "SPACE",
    "SYMBOLS_VERSION",
]

SYMBOLS_VERSION = 1

PAD = "_"
EOS = "~"
SPACE = " "

# Punctuation that survives normalisation because it carries phrasing and intonation.
PUNCTUATION = (",", ".", "!", "?", ";", ":", "-", "'")
# The apostrophe is part of a word for espeak-ng ("it's"), so it is not a phoneme-level token.
PHONEME_PUNCTUATION = (",", ".", "!", "?", ";", ":", "-")

CHARACTER_SYMBOLS: tuple[str, ...] = (PAD, EOS, SPACE, *PUNCTUATION, *"abcdefghijklmnopqrstuvwxyz")

# IPA as printed by espeak-ng 1.51 ``--ipa -v en-us``: every character it produced for a 19 000-word
# vocabulary, plus the few it uses for loanwords and a margin of common IPA letters so that a voice
# variant does not break a trained model. One symbol per Unicode character: stress marks (primary
# U+02C8, secondary U+02CC), the length mark U+02D0 and the syllabic mark U+0329 are tokens of their own
# rather than merged into the neighbouring phone; the encoder's convolutions see them in context.
_IPA_LETTERS = "abcdefhijklmnopqrstuvwxyz"  # ASCII letters used as IPA (no "g": espeak-ng prints U+0261)
_IPA_EXTRA = (
    "\u00e6",  # ae
    "\u00e7",  # c cedilla
    "\u00f0",  # eth
    "\u00f8",  # o slash
    "\u014b",  # eng
    "\u0153",  # oe
    "\u0250",  # turned a
    "\u0251",  # script a
    "\u0252",  # turned script a
    "\u0254",  # open o
    "\u0255",  # c curl
    "\u0259",  # schwa
    "\u025a",  # rhotic schwa
    "\u025b",  # open e
    "\u025c",  # reversed open e
    "\u0261",  # script g
    "\u0263",  # gamma
    "\u026a",  # small capital i
    "\u026b",  # dark l
    "\u026c",  # belted l
    "\u0272",  # left-tail n
    "\u0279",  # turned r
    "\u027e",  # flap
    "\u0281",  # inverted small capital r
    "\u0283",  # esh
    "\u028a",  # upsilon
    "\u028c",  # turned v
    "\u028f",  # small capital y
    "\u0292",  # ezh
    "\u0294",  # glottal stop
    "\u02b2",  # palatalised
    "\u02c8",  # primary stress
    "\u02cc",  # secondary stress
    "\u02d0",  # length
    "\u0329",  # syllabic (combining)
    "\u03b2",  # beta
    "\u03b8",  # theta
    "\u03c7",  # chi
    "\u1d7b",  # barred small capital i
)
PHONEME_SYMBOLS: tuple[str, ...] = (PAD, EOS, SPACE, *PHONEME_PUNCTUATION, *_IPA_LETTERS, *_IPA_EXTRA)

assert len(set(CHARACTER_SYMBOLS)) == len(CHARACTER_SYMBOLS)
assert len(set(PHONEME_SYMBOLS)) == len(PHONEME_SYMBOLS)
