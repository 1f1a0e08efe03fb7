"""Splitting a long text into pieces a TTS decoder can speak one at a time.

The acoustic model is trained on single sentences: its attention and its memory (decoder steps times
tokens) are meant for utterances of seconds, not pages. A text longer than ``max_characters`` is cut
at sentence ends (``. ! ?`` followed by a space, not after a title such as "Dr." or an initial), a
sentence still too long at clause punctuation (``, ; : -``), then between words; a single "word"
longer than the limit is cut inside. Nothing is dropped: joining the pieces with single spaces gives
the text back with its whitespace collapsed (and a space inside each word that had to be cut).
"""

from __future__ import annotations

import re

__all__ = ["split_text"]

# A sentence ends at . ! ? (possibly followed by closing quotes or brackets) and whitespace...
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]\u201d\u2019]*\s+")
# ... unless the period ends an abbreviation that is read before a name or a number.
_ABBREVIATION = re.compile(
    r"(?:^|\s)(?:mr|mrs|ms|dr|jr|sr|prof|gen|capt|lt|col|sgt|maj|rev|hon|mt|ft|st|vs|no|[a-z])\.$",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|(?<=\s-)\s+")


def _sentences(text: str) -> list[str]:
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        head = text[start : match.start()]
        if _ABBREVIATION.search(head):
            continue  # "Dr. Smith": not a sentence end
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def _fit(piece: str, max_characters: int) -> list[str]:
    """``piece`` in parts of at most ``max_characters``: at clause punctuation, then between words."""
    if len(piece) <= max_characters:
        return [piece]
    parts: list[str] = []
    for clause in (c.strip() for c in _CLAUSE_END.split(piece)):
        if not clause:
            continue
        if len(clause) <= max_characters:
            parts.append(clause)
            continue
        for word in clause.split():
            while len(word) > max_characters:  # one unbroken run of characters: cut inside it
                parts.append(word[:max_characters])
                word = word[max_characters:]
            parts.append(word)
    return _pack(parts, max_characters)


def _pack(parts: list[str], max_characters: int) -> list[str]:
    """Join consecutive parts with spaces while the result fits."""
    packed: list[str] = []
    for part in parts:
        if packed and len(packed[-1]) + 1 + len(part) <= max_characters:
            packed[-1] += " " + part
        else:
            packed.append(part)
    return packed


def split_text(text: str, max_characters: int) -> list[str]:
    """``text`` as pieces of at most ``max_characters`` characters, cut at sentence ends first.

    A text that fits is returned as it is (one piece). Otherwise each sentence is its own piece
    (sentences are not packed together: the model speaks one sentence at a time best), and a
    sentence longer than the limit is cut at clauses, then between words.
    """
    if max_characters < 1:
        raise ValueError(f"max_characters must be >= 1, got {max_characters}")
    if len(text) <= max_characters:
        return [text]
    pieces: list[str] = []
    for sentence in _sentences(" ".join(text.split())):
        pieces += _fit(sentence, max_characters)
    return pieces
