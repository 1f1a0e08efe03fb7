"""A small hand-written English grammar for the built-in espeak-ng corpus.

The sentences are generated, not copied from any published list: a handful of templates
(statements, questions, exclamations, requests, reported speech) are filled from word lists written
for this project. The grammar yields several thousand distinct sentences of roughly 4-12 words, which
espeak-ng speaks in about 1.5-4 s at ordinary rates: short enough for CPU training.

Generation is deterministic given a seed (``random.Random``, whose sequence is stable across Python
versions for ``random()``, ``choice`` on sequences and ``randrange``).

A fixed set of held-out sentences (:func:`held_out_sentences`) is drawn once from the same grammar
with its own seed; :func:`generate_sentences` never returns any of them, so those texts can serve for
inter-text evaluation (transfer of a reference's prosody to a sentence the model never heard).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

__all__ = ["HELD_OUT_SEED", "NUM_HELD_OUT", "generate_sentences", "held_out_sentences", "word_count"]

# The held-out set is part of the corpus definition: changing these values (or the word lists below)
# changes which texts are unseen, so old corpora would no longer match. Bump with care.
HELD_OUT_SEED = 20190607
NUM_HELD_OUT = 200
_MIN_WORDS = 4
_MAX_WORDS = 12

# Word lists written for this project (kept compact: one list, a few lines).
# fmt: off
_NAMES = (
    "Mara", "Tobias", "Elena", "Jonah", "Priya", "Oskar", "Leila", "Rowan", "Ines", "Felix", "Nadia",
    "Hugo", "Greta", "Samuel", "Yara", "Milo", "Clara", "Arlo", "Vera", "Dominic",
)
_PEOPLE = (
    "teacher", "farmer", "pilot", "baker", "doctor", "painter", "sailor", "student", "neighbour",
    "gardener", "captain", "driver", "singer", "librarian", "engineer", "cook", "nurse", "poet",
)
_ADJECTIVES = (
    "old", "young", "quiet", "clever", "tired", "cheerful", "careful", "busy", "nervous", "patient",
    "curious", "sleepy", "proud", "gentle", "brave", "lonely",
)
_THINGS = (
    "kite", "letter", "lantern", "basket", "map", "bicycle", "violin", "umbrella", "jacket", "clock",
    "notebook", "parcel", "ladder", "teapot", "blanket", "compass", "wagon", "mirror", "candle", "drum",
)
_COLOURS = (
    "red", "blue", "green", "yellow", "silver", "brown", "purple", "white", "black", "golden",
)
# (past tense, base form) pairs of transitive verbs.
_VERBS = (
    ("found", "find"), ("painted", "paint"), ("carried", "carry"), ("mended", "mend"), ("sold", "sell"),
    ("borrowed", "borrow"), ("hid", "hide"), ("dropped", "drop"), ("cleaned", "clean"), ("bought", "buy"),
    ("lost", "lose"), ("wrapped", "wrap"), ("opened", "open"), ("moved", "move"), ("packed", "pack"),
    ("forgot", "forget"),
)
_PLACES = (
    "near the river", "in the kitchen", "behind the barn", "at the station", "under the bridge",
    "on the roof", "by the harbour", "in the garden", "at the market", "inside the library",
    "across the square", "beside the lake", "in the attic", "at the old mill", "on the hill",
)
_TIMES = (
    "this morning", "last night", "on Sunday", "after lunch", "before dawn", "yesterday", "today",
    "at noon", "in the evening", "every winter", "last summer", "on Friday", "at midnight",
)
_FEELINGS = (
    "happy", "worried", "surprised", "annoyed", "delighted", "puzzled", "relieved", "upset",
)
_WEATHER = (
    "The wind is cold", "The sky looks grey", "The rain has stopped", "The snow is melting",
    "The sun is very bright", "The fog is lifting", "The air smells of smoke", "The night is calm",
)
_SAYING = (
    "said", "whispered", "shouted", "explained", "admitted", "claimed", "promised", "noticed",
)
# fmt: on


def _person(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(_NAMES)
    if rng.random() < 0.5:
        return f"the {rng.choice(_ADJECTIVES)} {rng.choice(_PEOPLE)}"
    return f"the {rng.choice(_PEOPLE)}"


def _thing(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return f"a {rng.choice(_COLOURS)} {rng.choice(_THINGS)}"
    if roll < 0.7:
        return f"the {rng.choice(_THINGS)}"
    return f"{rng.choice(('her', 'his', 'their', 'our', 'my'))} {rng.choice(_THINGS)}"


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:]


def _statement(rng: random.Random) -> str:
    past, _ = rng.choice(_VERBS)
    parts = [_person(rng), past, _thing(rng)]
    if rng.random() < 0.6:
        parts.append(rng.choice(_PLACES))
    if rng.random() < 0.4:
        parts.append(rng.choice(_TIMES))
    return _capitalise(" ".join(parts)) + "."


def _yes_no_question(rng: random.Random) -> str:
    _, base = rng.choice(_VERBS)
    tail = rng.choice(_PLACES) if rng.random() < 0.5 else rng.choice(_TIMES)
    return f"Did {_person(rng)} {base} {_thing(rng)} {tail}?"


def _wh_question(rng: random.Random) -> str:
    _, base = rng.choice(_VERBS)
    word = rng.choice(("Where", "Why", "When", "How"))
    return f"{word} did {_person(rng)} {base} {_thing(rng)}?"


def _feeling_question(rng: random.Random) -> str:
    return f"Why is {_person(rng)} so {rng.choice(_FEELINGS)} {rng.choice(_TIMES)}?"


def _exclamation(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return f"What a {rng.choice(_ADJECTIVES)} {rng.choice(_PEOPLE)} you are!"
    if roll < 0.7:
        past, _ = rng.choice(_VERBS)
        return _capitalise(f"{_person(rng)} {past} {_thing(rng)} again!")
    return f"How {rng.choice(_FEELINGS)} {_person(rng)} looked {rng.choice(_TIMES)}!"


def _request(rng: random.Random) -> str:
    _, base = rng.choice(_VERBS)
    lead = rng.choice(("Please", "Now", "Quickly,", "Gently,"))
    return f"{lead} {base} {_thing(rng)} {rng.choice(_PLACES)}."


def _reported(rng: random.Random) -> str:
    past, _ = rng.choice(_VERBS)
    return _capitalise(f"{_person(rng)} {rng.choice(_SAYING)} that {_person(rng)} {past} {_thing(rng)}.")


def _weather(rng: random.Random) -> str:
    return f"{rng.choice(_WEATHER)} {rng.choice(_PLACES)} {rng.choice(_TIMES)}."


# Template weights: statements dominate (as in read speech), with enough questions and exclamations
# that espeak-ng's sentence-final intonation varies too.
_TEMPLATES: tuple[tuple[Callable[[random.Random], str], float], ...] = (
    (_statement, 0.34),
    (_yes_no_question, 0.12),
    (_wh_question, 0.10),
    (_feeling_question, 0.06),
    (_exclamation, 0.12),
    (_request, 0.10),
    (_reported, 0.10),
    (_weather, 0.06),
)


def word_count(sentence: str) -> int:
    """Number of whitespace-separated words."""
    return len(sentence.split())


def _sentence_stream(rng: random.Random):
    """Endless stream of grammar sentences within the word-count bounds (duplicates possible)."""
    functions = [function for function, _ in _TEMPLATES]
    weights = [weight for _, weight in _TEMPLATES]
    while True:
        sentence = rng.choices(functions, weights=weights)[0](rng)
        if _MIN_WORDS <= word_count(sentence) <= _MAX_WORDS:
            yield sentence


def _distinct(rng: random.Random, n: int, exclude: frozenset[str], *, what: str) -> list[str]:
    sentences: list[str] = []
    seen = set(exclude)
    # The grammar has many thousand sentences; a long run of draws without a new one means the
    # request exceeds what it can produce, so stop instead of looping forever.
    misses = 0
    for sentence in _sentence_stream(rng):
        if len(sentences) == n:
            break
        if sentence in seen:
            misses += 1
            if misses > 50 * max(n, 100):
                raise ValueError(f"{what}: the grammar cannot produce {n} distinct sentences")
            continue
        seen.add(sentence)
        sentences.append(sentence)
    return sentences


@cache
def _held_out() -> tuple[str, ...]:
    return tuple(_distinct(random.Random(HELD_OUT_SEED), NUM_HELD_OUT, frozenset(), what="held-out set"))


def held_out_sentences() -> tuple[str, ...]:
    """The fixed held-out texts (``NUM_HELD_OUT`` of them), never returned by :func:`generate_sentences`."""
    return _held_out()


def generate_sentences(n: int, *, seed: int = 0) -> list[str]:
    """``n`` distinct training sentences, deterministic given ``seed``, excluding the held-out set.

    The result for a larger ``n`` extends the result for a smaller one (same seed), so a corpus can be
    grown without changing its existing texts.

    Raises:
        ValueError: ``n`` negative, or larger than the grammar can produce.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return _distinct(random.Random(seed), n, frozenset(_held_out()), what=f"generate_sentences(n={n})")
