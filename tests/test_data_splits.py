"""Deterministic, order-independent, stable splits; text grouping and held-out texts."""

from __future__ import annotations

import random

import pytest

from prosody_vae.data.manifest import Utterance
from prosody_vae.data.splits import split_utterances


def _utts(n: int, texts: int = 40) -> list[Utterance]:
    return [
        Utterance(
            id=f"utt{i:04d}", audio=f"{i}.wav", text=f"Sentence number {i % texts}.", speaker=f"s{i % 7}"
        )
        for i in range(n)
    ]


def _ids(splits: dict[str, list[Utterance]]) -> dict[str, list[str]]:
    return {name: [u.id for u in members] for name, members in splits.items()}


def test_deterministic_and_order_independent() -> None:
    utts = _utts(1000)
    first = split_utterances(utts, 0.1, 0.1, seed=3)
    assert _ids(first) == _ids(split_utterances(utts, 0.1, 0.1, seed=3))
    shuffled = utts[:]
    random.Random(0).shuffle(shuffled)
    again = split_utterances(shuffled, 0.1, 0.1, seed=3)
    assert {k: set(v) for k, v in _ids(first).items()} == {k: set(v) for k, v in _ids(again).items()}
    assert sum(len(v) for v in first.values()) == len(utts)
    assert not set(_ids(first)["train"]) & set(_ids(first)["test"])
    # Fractions hold in expectation: 100 expected per held-out split, generous binomial bounds.
    assert 60 < len(first["valid"]) < 140 and 60 < len(first["test"]) < 140
    assert _ids(split_utterances(utts, 0.1, 0.1, seed=4)) != _ids(first)


def test_adding_utterances_does_not_move_existing_ones() -> None:
    utts = _utts(500)
    small = split_utterances(utts[:300], 0.2, 0.2)
    big = split_utterances(utts, 0.2, 0.2)
    for name in small:
        assert set(_ids(small)[name]) <= set(_ids(big)[name])


@pytest.mark.parametrize("group_by,attribute", [("text", "text"), ("speaker", "speaker")])
def test_grouping_keeps_groups_together(group_by: str, attribute: str) -> None:
    splits = split_utterances(_utts(400), 0.2, 0.2, group_by=group_by)
    owners: dict[str, set[str]] = {}
    for name, members in splits.items():
        for utt in members:
            owners.setdefault(getattr(utt, attribute), set()).add(name)
    assert all(len(names) == 1 for names in owners.values())
    assert len({name for names in owners.values() for name in names}) >= 2


def test_held_out_texts_go_to_test_only() -> None:
    held = {"sentence NUMBER 3.", "Sentence number 5."}  # case and spacing do not matter
    splits = split_utterances(_utts(400), 0.1, 0.0, held_out_texts=held)
    held_norm = {"sentence number 3.", "sentence number 5."}
    for name in ("train", "valid"):
        assert not any(u.text.lower() in held_norm for u in splits[name])
    assert sum(u.text.lower() in held_norm for u in splits["test"]) == 20


@pytest.mark.parametrize("valid,test", [(-0.1, 0.1), (0.6, 0.5), (1.0, 0.0)])
def test_bad_fractions(valid: float, test: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        split_utterances(_utts(3), valid, test)
