"""The corpus manifest: one JSON object per line describing one utterance.

A line looks like::

    {"id": "LJ001-0001", "audio": "wavs/LJ001-0001.wav", "text": "Printing, ...",
     "speaker": "ljspeech", "duration": 9.66, "labels": {}}

``id``, ``audio`` and ``text`` are required; ``speaker`` defaults to ``"default"``, ``duration``
(seconds of the audio file, before silence trimming) to null and ``labels`` (ground-truth prosody factors such as pitch base or
rate, as numbers) to ``{}``. Relative ``audio`` paths are relative to the manifest's folder, so a
corpus folder can be moved as a whole. JSON lines (rather than a CSV) because texts contain ``|``,
commas and quotes and labels are open-ended.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Utterance", "read_manifest", "write_manifest"]

_FIELDS = ("id", "audio", "text", "speaker", "duration", "labels")


@dataclass
class Utterance:
    """One utterance of a corpus.

    Attributes:
        id: unique id; also the feature-cache file name, so it may not contain path separators.
        audio: path of the audio file (absolute, or relative to the manifest folder).
        text: transcript (raw; normalisation happens in the text front end).
        speaker: speaker name.
        duration: seconds of the file (before trimming), or None when not yet measured
            (``validate_utterances`` fills it in).
        labels: known prosody factors (e.g. ``{"pitch": 60.0, "rate": 175.0}``), numbers only.
    """

    id: str
    audio: str
    text: str
    speaker: str = "default"
    duration: float | None = None
    labels: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ValueError(f"utterance id must be a non-empty string, got {self.id!r}")
        if "/" in self.id or "\\" in self.id or self.id in (".", ".."):
            raise ValueError(f"utterance id {self.id!r} must not contain path separators")
        for name in ("audio", "text", "speaker"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"utterance {self.id!r}: {name} must be a string, got {getattr(self, name)!r}"
                )
        if not self.audio:
            raise ValueError(f"utterance {self.id!r}: audio path is empty")
        if self.duration is not None:
            if isinstance(self.duration, bool) or not isinstance(self.duration, int | float):
                raise TypeError(f"utterance {self.id!r}: duration must be a number, got {self.duration!r}")
            if not math.isfinite(self.duration) or self.duration < 0:
                raise ValueError(
                    f"utterance {self.id!r}: duration must be finite and >= 0, got {self.duration!r}"
                )
            self.duration = float(self.duration)
        if not isinstance(self.labels, dict):
            raise TypeError(f"utterance {self.id!r}: labels must be a dict, got {type(self.labels).__name__}")
        for key, value in self.labels.items():
            if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(
                    f"utterance {self.id!r}: label {key!r}={value!r} must map a string to a number"
                )
        self.labels = {key: float(value) for key, value in self.labels.items()}


def _parse_line(line: str, base: Path) -> Utterance:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    missing = [name for name in ("id", "audio", "text") if name not in record]
    if missing:
        raise ValueError(f"missing required field(s) {missing}")
    # Unknown keys are an error rather than ignored: a typo such as "speeker" would otherwise
    # silently fall back to the default speaker.
    unknown = sorted(set(record) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; allowed: {list(_FIELDS)}")
    utterance = Utterance(**record)
    audio = Path(utterance.audio).expanduser()
    utterance.audio = str(audio if audio.is_absolute() else (base / audio).resolve())
    return utterance


def read_manifest(path: str | Path, *, problems: list[tuple[str, str]] | None = None) -> list[Utterance]:
    """Read a JSON-lines manifest; relative audio paths are resolved against its folder.

    Blank lines are ignored. Raises ``ValueError`` naming the file and the 1-based line number for a
    malformed line (or a file that is not UTF-8 text) and ``FileNotFoundError`` if the file does not
    exist. A repeated id is a ``ValueError`` too, unless a ``problems`` list is passed: then the
    later line is skipped and reported there as ``(id, "duplicate id: ...")``, as the corpus readers
    do (:mod:`prosody_vae.data.readers`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    base = path.resolve().parent
    utterances: list[Utterance] = []
    seen: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not a UTF-8 text manifest ({error.reason} at byte {error.start})"
        ) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            utterance = _parse_line(line, base)
        except (ValueError, TypeError, RecursionError) as error:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path}:{number}: malformed manifest line: {error}") from error
        if utterance.id in seen:
            message = f"{path}:{number}: duplicate utterance id {utterance.id!r} (first on line {seen[utterance.id]})"
            if problems is None:
                raise ValueError(message)
            problems.append((utterance.id, f"duplicate id: {message}; the first is used"))
            continue
        seen[utterance.id] = number
        utterances.append(utterance)
    return utterances


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> None:
    """Write utterances as JSON lines, atomically (temporary file in the same folder + ``os.replace``).

    Audio paths are written as given: a relative path will be read back relative to the manifest's
    folder. Duplicate ids raise ``ValueError`` before anything is written.
    """
    path = Path(path)
    lines: list[str] = []
    seen: set[str] = set()
    for utterance in utterances:
        if not isinstance(utterance, Utterance):
            raise TypeError(f"{path}: expected Utterance objects, got {type(utterance).__name__}")
        if utterance.id in seen:
            raise ValueError(f"{path}: duplicate utterance id {utterance.id!r}")
        seen.add(utterance.id)
        lines.append(json.dumps(asdict(utterance), ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
