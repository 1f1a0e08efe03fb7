"""``evaluate_pairs``: score items in parallel and collect the result (the library entry point)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .pairs import EvaluationItem, Pairing, Problem
from .result import EvaluationResult
from .scoring import analysis_config, score_items
from .speakers import voice_similarity

__all__ = ["evaluate_pairs"]

PairLike = EvaluationItem | tuple[str | os.PathLike | None, str | os.PathLike]


def _as_pairing(pairs: Pairing | Sequence[PairLike]) -> Pairing:
    """A Pairing from a Pairing, EvaluationItems, or ``(reference or None, output)`` path tuples."""
    if isinstance(pairs, Pairing):
        return Pairing(items=list(pairs.items), problems=list(pairs.problems))
    pairing = Pairing()
    ids: set[str] = set()
    for index, entry in enumerate(pairs):
        if isinstance(entry, EvaluationItem):
            item = entry
        elif isinstance(entry, tuple) and len(entry) == 2:
            reference, output = entry
            stem = Path(output).stem
            # tuples carry no id: the output's stem, made unique by its position when it repeats
            item_id = stem if stem not in ids else f"{index}:{stem}"
            item = EvaluationItem(
                id=item_id, output=Path(output), reference=None if reference is None else Path(reference)
            )
        else:
            raise TypeError(
                f"pairs[{index}] must be an EvaluationItem or a (reference, output) tuple, got {entry!r}"
            )
        if item.id in ids:
            pairing.problems.append(Problem(item.id, str(item.output), "id listed twice; the first is used"))
            continue
        ids.add(item.id)
        pairing.add(item)
    return pairing


def evaluate_pairs(
    pairs: Pairing | Sequence[PairLike],
    *,
    sample_rate: int = 22050,
    f0_min: float = 50.0,
    f0_max: float = 600.0,
    num_workers: int = 2,
    keep_tracks: int = 0,
    level: float = 0.95,
    progress: bool | None = False,
    similarity: bool = True,
) -> EvaluationResult:
    """Score every item: pairwise metrics for pairs, prosody statistics for unpaired outputs.

    Args:
        pairs: a :class:`Pairing` (from ``pairs_from_dirs`` / ``pairs_from_scp`` /
            ``pairs_from_manifest``), or a sequence of :class:`EvaluationItem` or
            ``(reference path or None, output path)`` tuples.
        sample_rate: analysis rate; every file is resampled to it.
        f0_min, f0_max: the F0 search range of the tracker (Hz).
        num_workers: scoring processes; ``<= 1`` scores in this process.
        keep_tracks: keep F0 tracks of the first this many pairs (for F0 overlay figures).
        level: confidence level of the intervals.
        progress: a bar over the items on stderr: True always, False never, None when stderr is a
            terminal.
        similarity: for pairs whose two voices are known (``speaker`` and ``reference_speaker``),
            also run the cepstral voice-similarity check (reads each of their files once more).

    Returns:
        An :class:`EvaluationResult` whose ``problems`` lists every item skipped while pairing or
        scoring (missing, unreadable or silent files, ids on one side only), in that order.

    Raises:
        ValueError: when no item at all could be scored (the message names the first problems).
    """
    config = analysis_config(sample_rate, f0_min=f0_min, f0_max=f0_max)
    pairing = _as_pairing(pairs)
    scores = score_items(
        pairing.items, config, num_workers=num_workers, keep_tracks=keep_tracks, progress=progress
    )
    problems = list(pairing.problems)
    problems += [Problem(s.item.id, s.error_path, s.error) for s in scores if s.values is None]
    good = [s for s in scores if s.values is not None]
    if not good:
        shown = "; ".join(f"{p.id}: {p.reason}" for p in problems[:3]) or "the input lists no items"
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"no usable pairs to evaluate: {shown}{more}")
    voiced = [s.item for s in good if s.item.paired and s.item.speaker and s.item.reference_speaker]
    check = None
    if similarity and voiced:
        check = voice_similarity(
            [(i.reference, i.reference_speaker, i.output, i.speaker) for i in voiced], config
        )
    return EvaluationResult(
        scores=good, problems=problems, config=config, level=level, voice_similarity=check
    )
