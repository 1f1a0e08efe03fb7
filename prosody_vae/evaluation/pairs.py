"""What to evaluate: (reference, output) pairs from two folders, two ``wav.scp`` lists or a manifest.

Every reader returns a :class:`Pairing`: the items that can be scored and the :class:`Problem` of
every item that cannot (an id present on one side only, a file that does not exist, a malformed
line). A problem is reported and the item skipped; only input that names no usable item at all
is an error, raised by the caller that sees it (:func:`prosody_vae.evaluation.evaluate_pairs`).

Sources:

* two folders: audio files matched by file stem (``ref/abc.wav`` with ``out/abc.wav``; the
  extensions may differ);
* two Kaldi ``wav.scp``-style lists: one ``<id> <path>`` per line, matched by id; blank lines and
  ``#`` comments are skipped; relative paths are relative to the list's folder. Kaldi pipe entries
  (``id cmd |``) are not supported and are reported as problems;
* a synthesis manifest (JSONL, one object per synthesised utterance with ``id``, ``output``,
  ``reference`` (path or null), ``text``, ``reference_text``, ``kind``, and optionally ``speaker``
  (the target voice) and ``reference_speaker`` (the reference's voice); paths relative to the
  manifest's folder). Items with a null reference are *unpaired*: only their own prosody is measured
  (prior samples have nothing to be compared with). Pairs with both voices are also scored across
  voices (:mod:`prosody_vae.evaluation.speakers`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "AUDIO_EXTENSIONS",
    "EvaluationItem",
    "Pairing",
    "Problem",
    "pairs_from_dirs",
    "pairs_from_manifest",
    "pairs_from_scp",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


class Problem(NamedTuple):
    """An item that was not evaluated, and why (``path`` may be empty when no file is involved)."""

    id: str
    path: str
    reason: str


@dataclass(frozen=True)
class EvaluationItem:
    """One synthesised utterance and, when paired, its reference.

    Attributes:
        id: the item's name in reports.
        output: the synthesised (or system) audio file.
        reference: the reference audio file; None for an unpaired item (prosody statistics only).
        kind: the manifest's ``kind`` (``transfer``, ``sample``, ...); None for folders and lists.
        text: what the output says, when known.
        reference_text: what the reference says, when known (with ``text``, the tempo of both sides
            is measured: :mod:`prosody_vae.evaluation.tempo`).
        speaker: the voice the output is in (the target voice), when known.
        reference_speaker: the voice that spoke the reference, when known.
    """

    id: str
    output: Path
    reference: Path | None = None
    kind: str | None = None
    text: str | None = None
    reference_text: str | None = None
    speaker: str | None = None
    reference_speaker: str | None = None

    @property
    def paired(self) -> bool:
        return self.reference is not None


@dataclass
class Pairing:
    """Items to score (input order) and the problems met while pairing them."""

    items: list[EvaluationItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def add(self, item: EvaluationItem) -> None:
        """Keep ``item`` if its files exist, else record one problem per missing file."""
        missing = [p for p in (item.reference, item.output) if p is not None and not p.is_file()]
        for path in missing:
            self.problems.append(Problem(item.id, str(path), "file not found"))
        if not missing:
            self.items.append(item)


def _text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 list or manifest; a ``ValueError`` naming it when it is not text."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _audio_by_stem(folder: Path, side: str, problems: list[Problem]) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: {side} folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        if path.stem in found:
            problems.append(
                Problem(path.stem, str(path), f"two {side} files share this stem ({found[path.stem].name})")
            )
            continue
        found[path.stem] = path
    return found


def _match(refs: dict[str, Path], outs: dict[str, Path], problems: list[Problem]) -> Pairing:
    """Pair two id -> path maps; ids on one side only become problems. Order: sorted ids."""
    pairing = Pairing(problems=problems)
    for key in sorted(set(refs) | set(outs)):
        if key not in outs:
            pairing.problems.append(Problem(key, str(refs[key]), "no output with this id"))
        elif key not in refs:
            pairing.problems.append(Problem(key, str(outs[key]), "no reference with this id"))
        else:
            pairing.add(EvaluationItem(id=key, output=outs[key], reference=refs[key]))
    return pairing


def pairs_from_dirs(ref_dir: str | Path, out_dir: str | Path) -> Pairing:
    """Pair the audio files of two folders by file stem (``.wav``, ``.flac``, ``.ogg``)."""
    problems: list[Problem] = []
    refs = _audio_by_stem(Path(ref_dir), "reference", problems)
    outs = _audio_by_stem(Path(out_dir), "output", problems)
    if not refs and not outs:
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {ref_dir} or {out_dir}")
    return _match(refs, outs, problems)


def _read_scp(path: Path, problems: list[Problem]) -> dict[str, Path]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: list not found")
    entries: dict[str, Path] = {}
    for number, raw in enumerate(_text_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        where = f"{path}:{number}"
        if len(parts) != 2:
            problems.append(Problem(parts[0], where, "line has an id but no path"))
        elif parts[1].endswith("|"):
            problems.append(Problem(parts[0], where, "pipe entries (command |) are not supported"))
        elif parts[0] in entries:
            problems.append(Problem(parts[0], where, "id listed twice; the first entry is used"))
        else:
            entries[parts[0]] = path.parent / parts[1]  # an absolute path replaces the folder
    return entries


def pairs_from_scp(ref_scp: str | Path, out_scp: str | Path) -> Pairing:
    """Pair two ``wav.scp``-style lists (``<id> <path>`` per line) by id."""
    problems: list[Problem] = []
    refs = _read_scp(Path(ref_scp), problems)
    outs = _read_scp(Path(out_scp), problems)
    if not refs and not outs:
        raise ValueError(f"{ref_scp} and {out_scp} list no entries")
    return _match(refs, outs, problems)


def _optional_path(value: object, base: Path, key: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a path or null, got {value!r}")
    return base / value


def pairs_from_manifest(manifest: str | Path) -> Pairing:
    """Items of a synthesis manifest (JSONL); a null ``reference`` makes an unpaired item."""
    path = Path(manifest)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    pairing = Pairing()
    seen: set[str] = set()
    for number, raw in enumerate(_text_lines(path), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError("not a JSON object")
            item_id = entry.get("id")
            if not isinstance(item_id, str) or not item_id:
                raise ValueError(f"id must be a non-empty string, got {item_id!r}")
            output = _optional_path(entry.get("output"), path.parent, "output")
            if output is None:
                raise ValueError("output is missing")
            reference = _optional_path(entry.get("reference"), path.parent, "reference")
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            pairing.problems.append(Problem(f"line {number}", where, f"bad manifest line ({error})"))
            continue
        if item_id in seen:
            pairing.problems.append(Problem(item_id, where, "id listed twice; the first entry is used"))
            continue
        seen.add(item_id)
        kind, text, reference_text = entry.get("kind"), entry.get("text"), entry.get("reference_text")
        speaker, reference_speaker = entry.get("speaker"), entry.get("reference_speaker")
        pairing.add(
            EvaluationItem(
                id=item_id,
                output=output,
                reference=reference,
                kind=kind if isinstance(kind, str) else None,
                text=text if isinstance(text, str) and text.strip() else None,
                reference_text=reference_text
                if isinstance(reference_text, str) and reference_text.strip()
                else None,
                speaker=speaker if isinstance(speaker, str) and speaker else None,
                reference_speaker=reference_speaker
                if isinstance(reference_speaker, str) and reference_speaker
                else None,
            )
        )
    return pairing
