"""Readers that turn a corpus on disk into a list of :class:`Utterance`.

Every reader returns absolute audio paths, so the list can be written to a manifest anywhere.
Per-utterance problems (audio without a transcript, a transcript without audio, a duplicate id) do
not stop a reader: they are logged as one warning and, when a ``problems`` list is passed, appended
to it as ``(utterance id, "<category>: <detail>")`` pairs, the format of validation rejections, so
that a caller can show both together.
A malformed index file (a metadata line with too few fields, a piped ``wav.scp`` entry) is a
``ValueError`` naming the file and line, because nothing sensible can be read from it.

Audio is not opened here; :func:`prosody_vae.data.validate.validate_utterances` does that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from prosody_vae.data.manifest import Utterance

__all__ = [
    "CORPUS_READERS",
    "read_blizzard2013",
    "read_filelist",
    "read_kaldi",
    "read_ljspeech",
    "read_vctk",
]

_log = logging.getLogger(__name__)

Problems = list[tuple[str, str]]


def _report(source: Path, found: Problems, problems: Problems | None) -> None:
    if not found:
        return
    shown = "; ".join(f"{utt}: {reason}" for utt, reason in found[:5])
    more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
    _log.warning("%s: skipped %d utterance(s): %s%s", source, len(found), shown, more)
    if problems is not None:
        problems.extend(found)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with 1-based numbers; a missing file is a FileNotFoundError naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def _require_dir(root: str | Path) -> Path:
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: corpus folder not found")
    return path


def read_ljspeech(root: str | Path, *, problems: Problems | None = None) -> list[Utterance]:
    """LJSpeech 1.1: ``metadata.csv`` (``id|text|normalized_text``, no header) and ``wavs/<id>.wav``.

    The normalised column (numbers and abbreviations spelled out) is used, falling back to the raw
    text when it is empty. The file is split on ``|`` only: its texts contain unbalanced quotes,
    which a CSV parser would misread.
    """
    root = _require_dir(root)
    metadata = root / "metadata.csv"
    utterances: list[Utterance] = []
    found: Problems = []
    for number, line in _lines(metadata):
        fields = line.split("|")
        if len(fields) < 2 or not fields[0].strip():
            raise ValueError(f"{metadata}:{number}: expected 'id|text|normalized_text', got {line!r}")
        utt_id = fields[0].strip()
        text = (fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]).strip()
        audio = root / "wavs" / f"{utt_id}.wav"
        if not text:
            found.append((utt_id, "empty text: blank transcript"))
        elif not audio.is_file():
            found.append((utt_id, f"missing audio: {audio}"))
        else:
            utterances.append(Utterance(id=utt_id, audio=str(audio), text=text, speaker="ljspeech"))
    _report(metadata, found, problems)
    return utterances


def read_vctk(root: str | Path, mic: str = "mic1", *, problems: Problems | None = None) -> list[Utterance]:
    """VCTK 0.92: ``txt/<spk>/<spk>_<n>.txt`` and ``wav48_silence_trimmed/<spk>/<spk>_<n>_<mic>.flac``.

    Ids are ``<spk>_<n>`` and speakers ``<spk>``. Utterances with audio but no transcript (all of
    speaker p315 in the release) or a transcript but no audio for ``mic`` are reported and skipped.
    """
    if mic not in ("mic1", "mic2"):
        raise ValueError(f"mic must be 'mic1' or 'mic2', got {mic!r}")
    root = _require_dir(root)
    text_dir, wav_dir = root / "txt", root / "wav48_silence_trimmed"
    for folder in (text_dir, wav_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: VCTK 0.92 folder not found")
    texts = {path.stem: path for path in text_dir.glob("*/*.txt")}
    suffix = f"_{mic}"
    audios = {
        path.stem[: -len(suffix)]: path
        for path in wav_dir.glob(f"*/*{suffix}.flac")
        if path.stem.endswith(suffix)
    }
    utterances: list[Utterance] = []
    found: Problems = []
    for utt_id in sorted(set(texts) | set(audios)):
        if utt_id not in audios:
            found.append((utt_id, f"missing audio: no {mic} file"))
            continue
        if utt_id not in texts:
            found.append((utt_id, "missing text: no transcript file"))
            continue
        text = texts[utt_id].read_text(encoding="utf-8").strip()
        if not text:
            found.append((utt_id, "empty text: blank transcript"))
            continue
        speaker = audios[utt_id].parent.name
        utterances.append(Utterance(id=utt_id, audio=str(audios[utt_id]), text=text, speaker=speaker))
    _report(root, found, problems)
    return utterances


def _kaldi_table(path: Path, found: Problems) -> dict[str, tuple[int, str]]:
    """``<key> <value...>`` lines as ``{key: (line number, value)}``; a repeated key is reported in
    ``found`` and its later lines skipped (the first line is used)."""
    table: dict[str, tuple[int, str]] = {}
    for number, line in _lines(path):
        parts = line.strip().split(maxsplit=1)
        key, value = parts[0], parts[1].strip() if len(parts) > 1 else ""
        if key in table:
            found.append((key, f"duplicate id: {path}:{number} repeats line {table[key][0]}, which is used"))
            continue
        table[key] = (number, value)
    return table


def read_kaldi(data_dir: str | Path, *, problems: Problems | None = None) -> list[Utterance]:
    """A Kaldi data folder: ``wav.scp`` (``<utt> <path>``), ``text`` and optionally ``utt2spk``.

    Only plain file paths are supported in ``wav.scp``: a piped command (``<utt> sox ... |``) or an
    archive offset (``foo.ark:123``) raises ``ValueError`` naming the line, because we read audio with
    soundfile and do not run shell commands from data files. Relative paths are taken relative to
    the current working directory, as Kaldi does (recipes run from the ``egs`` folder). A
    ``segments`` file is not supported (it would need cutting audio) and is an error.
    """
    data_dir = _require_dir(data_dir)
    if (data_dir / "segments").exists():
        raise ValueError(
            f"{data_dir / 'segments'}: segmented Kaldi data is not supported; "
            "cut the segments into files first (e.g. with extract-segments) and write a plain wav.scp"
        )
    wav_scp = data_dir / "wav.scp"
    found: Problems = []
    wavs = _kaldi_table(wav_scp, found)
    texts = _kaldi_table(data_dir / "text", found)
    speakers = _kaldi_table(data_dir / "utt2spk", found) if (data_dir / "utt2spk").is_file() else {}
    utterances: list[Utterance] = []
    for utt_id, (number, location) in wavs.items():
        if location.endswith("|"):
            raise ValueError(
                f"{wav_scp}:{number}: entry for {utt_id!r} is a piped command ({location!r}); only plain "
                "audio file paths are supported: write the audio to files and list their paths"
            )
        if location.startswith("-") or " " in location:
            raise ValueError(
                f"{wav_scp}:{number}: entry for {utt_id!r} is not a single file path ({location!r})"
            )
        if ".ark:" in location or location.endswith(".ark"):
            raise ValueError(f"{wav_scp}:{number}: archive entries are not supported ({location!r})")
        if utt_id not in texts or not texts[utt_id][1]:
            found.append((utt_id, "missing text: not in text"))
            continue
        audio = Path(location).expanduser().resolve()
        speaker = speakers.get(utt_id, (0, "default"))[1] or "default"
        utterances.append(Utterance(id=utt_id, audio=str(audio), text=texts[utt_id][1], speaker=speaker))
    found.extend((utt_id, "missing audio: not in wav.scp") for utt_id in texts if utt_id not in wavs)
    _report(data_dir, found, problems)
    return utterances


def read_filelist(path: str | Path, *, problems: Problems | None = None) -> list[Utterance]:
    """A ``path|text|speaker`` list (speaker optional, default ``"default"``), one utterance a line.

    The id is the audio file's stem. Relative audio paths are relative to the list's folder (as in a
    manifest). A line without a text is a ``ValueError`` naming the line; a second line with the same
    stem is reported and skipped (the first is used).
    """
    path = Path(path).expanduser().resolve()
    utterances: list[Utterance] = []
    seen: dict[str, int] = {}
    found: Problems = []
    for number, line in _lines(path):
        fields = line.split("|")
        if len(fields) not in (2, 3) or not fields[0].strip() or not fields[1].strip():
            raise ValueError(f"{path}:{number}: expected 'path|text' or 'path|text|speaker', got {line!r}")
        audio = Path(fields[0].strip()).expanduser()
        audio = (audio if audio.is_absolute() else path.parent / audio).resolve()
        utt_id = audio.stem
        if utt_id in seen:
            found.append(
                (utt_id, f"duplicate id: {path}:{number} repeats the file stem of line {seen[utt_id]}")
            )
            continue
        seen[utt_id] = number
        if not audio.is_file():
            found.append((utt_id, f"missing audio: {audio}"))
            continue
        speaker = fields[2].strip() if len(fields) == 3 and fields[2].strip() else "default"
        utterances.append(Utterance(id=utt_id, audio=str(audio), text=fields[1].strip(), speaker=speaker))
    _report(path, found, problems)
    return utterances


# Prosodic-phrasing marks in the segmented release's prompts.gui transcripts, written as separate tokens.
_BLIZZARD_MARKS = {"@", "#", "|"}


def read_blizzard2013(root: str | Path, *, problems: Problems | None = None) -> list[Utterance]:
    """The segmented Blizzard Challenge 2013 (Lessac) audiobooks, in the layout of egs/blizzard2013/README.md.

    Assumed layout: one or more folders below ``root`` (``root`` itself counts) each holding a
    ``prompts.gui`` and a ``wavn/`` folder. ``prompts.gui`` is read in groups of three lines: the
    utterance id, its transcript, and a third line that is ignored; ``wavn/<id>.wav`` is the audio.
    The standalone phrasing marks ``@``, ``#`` and ``|`` are dropped from the transcript. All audio is
    one speaker, ``"blizzard2013"``. Missing audio and repeated ids are reported and skipped.
    """
    root = _require_dir(root)
    prompt_files = sorted(root.rglob("prompts.gui"))
    if not prompt_files:
        raise FileNotFoundError(
            f"{root}: no prompts.gui found (see egs/blizzard2013/README.md for the layout)"
        )
    utterances: list[Utterance] = []
    seen: set[str] = set()
    found: Problems = []
    for prompts in prompt_files:
        lines = [line for _, line in _lines(prompts)]
        if len(lines) % 3:
            raise ValueError(
                f"{prompts}: expected groups of 3 lines (id, transcript, annotation), got {len(lines)} lines"
            )
        for index in range(0, len(lines), 3):
            utt_id = lines[index].strip()
            text = " ".join(token for token in lines[index + 1].split() if token not in _BLIZZARD_MARKS)
            audio = prompts.parent / "wavn" / f"{utt_id}.wav"
            if utt_id in seen:
                found.append((utt_id, f"duplicate id: again in {prompts}"))
            elif not text:
                found.append((utt_id, "empty text: blank transcript"))
            elif not audio.is_file():
                found.append((utt_id, f"missing audio: {audio}"))
            else:
                seen.add(utt_id)
                utterances.append(Utterance(id=utt_id, audio=str(audio), text=text, speaker="blizzard2013"))
    _report(root, found, problems)
    return utterances


CORPUS_READERS = {
    "ljspeech": read_ljspeech,
    "vctk": read_vctk,
    "kaldi": read_kaldi,
    "filelist": read_filelist,
    "blizzard2013": read_blizzard2013,
}
