"""Manifest round trip, path resolution, error messages and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prosody_vae.data.manifest import Utterance, read_manifest, write_manifest


def _utterances(tmp_path: Path) -> list[Utterance]:
    return [
        Utterance(
            id="a1", audio=str(tmp_path / "wavs" / "a1.wav"), text='He said "hi" | left.', speaker="amy"
        ),
        Utterance(
            id="b2",
            audio=str(tmp_path / "b2.flac"),
            text="Ünïcode tëxt, 42.",
            duration=1.25,
            labels={"pitch": 60.0, "rate": 175},
        ),
    ]


def test_round_trip(tmp_path: Path) -> None:
    utts = _utterances(tmp_path)
    path = tmp_path / "m" / "manifest.jsonl"
    write_manifest(path, utts)
    assert read_manifest(path) == utts
    assert [p.name for p in path.parent.iterdir()] == ["manifest.jsonl"]  # no temporary left behind


def test_relative_audio_resolves_against_manifest_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    write_manifest(corpus / "manifest.jsonl", [Utterance(id="x", audio="wavs/x.wav", text="t")])
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    (utt,) = read_manifest(Path("corpus/manifest.jsonl"))
    assert Path(utt.audio) == (corpus / "wavs" / "x.wav").resolve()


@pytest.mark.parametrize(
    "bad_line,match",
    [
        ("{not json", "malformed"),
        ('["a", "b"]', "JSON object"),
        ('{"id": "x", "text": "t"}', "audio"),
        ('{"id": "x", "audio": "a.wav", "text": "t", "speeker": "s"}', "speeker"),
        ('{"id": "x", "audio": "a.wav", "text": "t", "duration": -1}', "duration"),
        ('{"id": "x", "audio": "a.wav", "text": "t", "labels": {"pitch": "high"}}', "pitch"),
        ('{"id": "a/b", "audio": "a.wav", "text": "t"}', "separator"),
        ('{"id": "a1", "audio": "a.wav", "text": "t"}', "duplicate"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, match: str) -> None:
    good = json.dumps({"id": "a1", "audio": "a.wav", "text": "fine"})
    path = tmp_path / "manifest.jsonl"
    path.write_text(f"{good}\n\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=match) as info:
        read_manifest(path)
    assert f"{path}:3" in str(info.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_manifest(tmp_path / "nope.jsonl")


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    utts = _utterances(tmp_path)
    write_manifest(path, utts)
    before = path.read_bytes()

    def broken():
        yield utts[0]
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_manifest(path, broken())
    with pytest.raises(ValueError, match="duplicate"):
        write_manifest(path, [utts[0], utts[0]])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.jsonl"]


def test_utterance_validation() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Utterance(id="", audio="a.wav", text="t")
    with pytest.raises(TypeError, match="text"):
        Utterance(id="x", audio="a.wav", text=None)  # type: ignore[arg-type]
    assert Utterance(id="x", audio="a.wav", text="t", labels={"rate": 2}).labels == {"rate": 2.0}
