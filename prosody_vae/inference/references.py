"""Inputs to synthesis: reference sets and batch files.

A *reference set* is given as any mix of: audio files, folders of audio files, list files (one audio
path per line, relative to the list's folder) and corpus manifests (``.jsonl``, which also give each
reference's transcript and speaker). An audio file's transcript, when a model needs one, is read from
``<name>.txt`` beside it. A *batch file* for ``transfer`` has one tab-separated line per output:
``text<TAB>reference_path[<TAB>reference_text]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prosody_vae.data.manifest import read_manifest

__all__ = ["AUDIO_SUFFIXES", "BatchLine", "Reference", "collect_references", "read_batch_file"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
_LIST_SUFFIXES = (".txt", ".lst", ".list", ".scp")


@dataclass(frozen=True)
class Reference:
    """One reference recording: an id, its audio path and, when known, transcript and speaker."""

    id: str
    audio: Path
    text: str | None = None
    speaker: str | None = None


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; a ``ValueError`` naming the file (and ``what`` it is) when it is
    not text."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: {what} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def _sidecar_text(audio: Path) -> str | None:
    path = audio.with_suffix(".txt")
    if not path.is_file():
        return None
    return read_text_file(path, "transcript").strip() or None


def _from_audio(path: Path) -> Reference:
    return Reference(id=path.stem, audio=path, text=_sidecar_text(path))


def collect_references(items: Sequence[str | Path]) -> list[Reference]:
    """Expand audio files, folders, list files and manifests into references, in the order given.

    A missing folder, list or manifest raises FileNotFoundError; a missing *audio* file is kept, so
    that the caller reports it with the others and goes on. Ids are file stems (manifest ids for
    manifests), made unique with a ``_2``, ``_3``, ... suffix.
    """
    found: list[Reference] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in folder")
            found.extend(_from_audio(p) for p in files)
        elif path.suffix == ".jsonl":
            if not path.is_file():
                raise FileNotFoundError(f"{path}: manifest not found")
            found.extend(
                Reference(id=u.id, audio=Path(u.audio), text=u.text, speaker=u.speaker)
                for u in read_manifest(path)
            )
        elif path.suffix.lower() in _LIST_SUFFIXES:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: list file not found")
            for line in read_text_file(path, "list file").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    audio = Path(line.strip())
                    found.append(_from_audio(audio if audio.is_absolute() else path.parent / audio))
        else:
            found.append(_from_audio(path))
    seen: dict[str, int] = {}
    unique = []
    for ref in found:
        seen[ref.id] = seen.get(ref.id, 0) + 1
        name = ref.id if seen[ref.id] == 1 else f"{ref.id}_{seen[ref.id]}"
        unique.append(Reference(id=name, audio=ref.audio, text=ref.text, speaker=ref.speaker))
    return unique


@dataclass(frozen=True)
class BatchLine:
    """One line of a transfer batch file."""

    line: int  # 1-based line number, for messages
    text: str
    reference: Path
    reference_text: str | None


def read_batch_file(path: str | Path) -> tuple[list[BatchLine], list[str]]:
    """Parse ``text<TAB>reference[<TAB>reference_text]`` lines; returns (lines, problems).

    Blank lines and lines starting with ``#`` are skipped. Relative reference paths are relative to
    the batch file's folder. A malformed line becomes a problem message naming the file and line
    instead of an exception, so one bad line does not stop a long batch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: batch file not found")
    lines, problems = [], []
    for number, raw in enumerate(read_text_file(path, "batch file").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = raw.rstrip("\r\n").split("\t")
        if len(fields) not in (2, 3) or not fields[0].strip() or not fields[1].strip():
            problems.append(
                f"{path}:{number}: expected text<TAB>reference[<TAB>reference_text], "
                f"got {len(fields)} field(s)"
            )
            continue
        reference = Path(fields[1].strip())
        reference = reference if reference.is_absolute() else path.parent / reference
        ref_text = fields[2].strip() if len(fields) == 3 and fields[2].strip() else None
        lines.append(BatchLine(number, fields[0].strip(), reference, ref_text))
    return lines, problems
