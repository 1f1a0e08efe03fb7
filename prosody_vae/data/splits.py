"""Deterministic train/valid/test splits by a stable hash.

Each utterance's split depends only on ``(seed, key)``, where the key is its id, its text or its
speaker (``group_by``). So the split does not depend on the order of the corpus, adding or removing
utterances never moves the others, and it is the same on every machine and Python version (SHA-256,
not Python's salted ``hash``). Grouping by text puts every rendition of a sentence in one split,
which is what inter-text evaluation needs; grouping by speaker gives unseen-speaker test sets.
``held_out_texts`` additionally forces chosen sentences into the test split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from typing import Literal

from prosody_vae.data.manifest import Utterance

__all__ = ["SPLITS", "split_utterances"]

SPLITS = ("train", "valid", "test")


def _unit_interval(seed: int, key: str) -> float:
    """A uniform number in [0, 1) determined by ``(seed, key)`` alone."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _text_key(text: str) -> str:
    # Renditions of one sentence may differ in case or spacing; they are still the same text.
    return " ".join(text.lower().split())


def split_utterances(
    utts: Iterable[Utterance],
    valid_fraction: float,
    test_fraction: float,
    seed: int = 0,
    *,
    group_by: Literal["id", "text", "speaker"] = "id",
    held_out_texts: Collection[str] = (),
) -> dict[str, list[Utterance]]:
    """Split utterances into ``{"train", "valid", "test"}``, keeping the input order inside each.

    Args:
        utts: utterances.
        valid_fraction: expected fraction of groups in ``valid``.
        test_fraction: expected fraction of groups in ``test``.
        seed: changes the assignment.
        group_by: what is hashed, so that all utterances sharing it land in the same split.
        held_out_texts: texts (compared case- and space-insensitively) whose utterances always go to
            ``test``, never to training or validation.

    The fractions are expectations over groups, not exact counts: exact counts would make one
    utterance's split depend on all the others.
    """
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    if valid_fraction + test_fraction >= 1:
        raise ValueError(f"valid_fraction + test_fraction must be < 1, got {valid_fraction + test_fraction}")
    if group_by not in ("id", "text", "speaker"):
        raise ValueError(f"group_by must be 'id', 'text' or 'speaker', got {group_by!r}")
    if isinstance(held_out_texts, str):
        raise TypeError("held_out_texts must be a collection of texts, not one string")
    held_out = {_text_key(text) for text in held_out_texts}

    splits: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    for utt in utts:
        if _text_key(utt.text) in held_out:
            splits["test"].append(utt)
            continue
        key = {"id": utt.id, "text": _text_key(utt.text), "speaker": utt.speaker}[group_by]
        u = _unit_interval(seed, key)
        name = "test" if u < test_fraction else "valid" if u < test_fraction + valid_fraction else "train"
        splits[name].append(utt)
    return splits
