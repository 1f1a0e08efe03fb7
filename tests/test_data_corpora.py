"""Corpus readers on tiny fake corpora written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prosody_vae.data.readers import read_blizzard2013, read_filelist, read_kaldi, read_ljspeech, read_vctk

SR = 16000


def _audio(path: Path, seconds: float = 0.2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), SR)
    return path


def test_ljspeech(tmp_path: Path) -> None:
    _audio(tmp_path / "wavs" / "LJ001-0001.wav")
    _audio(tmp_path / "wavs" / "LJ001-0002.wav")
    (tmp_path / "metadata.csv").write_text(
        'LJ001-0001|Printing, in 1 sense "only"|Printing, in one sense "only"\n'
        "LJ001-0002|raw text only|\n"
        "LJ001-0003|no audio for this one|no audio for this one\n",
        encoding="utf-8",
    )
    problems: list[tuple[str, str]] = []
    utts = read_ljspeech(tmp_path, problems=problems)
    assert [u.id for u in utts] == ["LJ001-0001", "LJ001-0002"]
    assert utts[0].text == 'Printing, in one sense "only"'  # normalised column
    assert utts[1].text == "raw text only"  # falls back to the raw column
    assert utts[0].speaker == "ljspeech"
    assert Path(utts[0].audio).is_absolute() and Path(utts[0].audio).is_file()
    assert problems == [("LJ001-0003", f"missing audio: {tmp_path.resolve() / 'wavs' / 'LJ001-0003.wav'}")]


def test_ljspeech_malformed_line(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text("LJ001-0001|ok|ok\njustanid\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"metadata.csv:2"):
        read_ljspeech(tmp_path)


def test_vctk_reports_missing_audio_and_text(tmp_path: Path) -> None:
    for spk, n in [("p225", "001"), ("p225", "002"), ("p226", "001")]:
        (tmp_path / "txt" / spk).mkdir(parents=True, exist_ok=True)
        (tmp_path / "txt" / spk / f"{spk}_{n}.txt").write_text(f"Text {spk} {n}.\n", encoding="utf-8")
    _audio(tmp_path / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac")
    _audio(tmp_path / "wav48_silence_trimmed" / "p225" / "p225_001_mic2.flac")
    _audio(tmp_path / "wav48_silence_trimmed" / "p226" / "p226_001_mic1.flac")
    _audio(tmp_path / "wav48_silence_trimmed" / "p315" / "p315_001_mic1.flac")  # no transcript
    problems: list[tuple[str, str]] = []
    utts = read_vctk(tmp_path, problems=problems)
    assert [(u.id, u.speaker, u.text) for u in utts] == [
        ("p225_001", "p225", "Text p225 001."),
        ("p226_001", "p226", "Text p226 001."),
    ]
    assert utts[0].audio.endswith("p225_001_mic1.flac")
    assert dict(problems) == {
        "p225_002": "missing audio: no mic1 file",
        "p315_001": "missing text: no transcript file",
    }
    mic2 = read_vctk(tmp_path, mic="mic2")
    assert [u.id for u in mic2] == ["p225_001"]
    with pytest.raises(ValueError, match="mic3"):
        read_vctk(tmp_path, mic="mic3")


def test_kaldi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    _audio(tmp_path / "audio" / "u1.wav")
    _audio(tmp_path / "audio" / "u2.wav")
    (data / "wav.scp").write_text(f"u1 {tmp_path / 'audio' / 'u1.wav'}\nu2 audio/u2.wav\nu3 audio/u3.wav\n")
    (data / "text").write_text("u1 hello there world\nu2 second one\nu4 orphan text\n")
    (data / "utt2spk").write_text("u1 spkA\nu2 spkB\n")
    monkeypatch.chdir(tmp_path)  # relative wav.scp paths are relative to the working directory
    problems: list[tuple[str, str]] = []
    utts = read_kaldi(data, problems=problems)
    assert [(u.id, u.text, u.speaker) for u in utts] == [
        ("u1", "hello there world", "spkA"),
        ("u2", "second one", "spkB"),
    ]
    assert Path(utts[1].audio) == (tmp_path / "audio" / "u2.wav").resolve()
    assert dict(problems) == {"u3": "missing text: not in text", "u4": "missing audio: not in wav.scp"}


def test_kaldi_rejects_piped_and_segmented(tmp_path: Path) -> None:
    (tmp_path / "wav.scp").write_text("u1 a.wav\nu2 flac -c -d -s b.flac |\n")
    (tmp_path / "text").write_text("u1 a\nu2 b\n")
    with pytest.raises(ValueError, match=r"wav.scp:2.*piped command"):
        read_kaldi(tmp_path)
    (tmp_path / "wav.scp").write_text("u1 a.wav\n")
    (tmp_path / "segments").write_text("s1 u1 0.0 1.0\n")
    with pytest.raises(ValueError, match="segments"):
        read_kaldi(tmp_path)


def test_filelist(tmp_path: Path) -> None:
    _audio(tmp_path / "clips" / "one.wav")
    _audio(tmp_path / "clips" / "two.flac")
    filelist = tmp_path / "lists" / "train.txt"
    filelist.parent.mkdir()
    filelist.write_text(
        f"../clips/one.wav|First text.|alice\n{tmp_path / 'clips' / 'two.flac'}|Second text.\n"
    )
    utts = read_filelist(filelist)
    assert [(u.id, u.text, u.speaker) for u in utts] == [
        ("one", "First text.", "alice"),
        ("two", "Second text.", "default"),
    ]
    assert Path(utts[0].audio) == (tmp_path / "clips" / "one.wav").resolve()
    filelist.write_text("../clips/one.wav|\n")
    with pytest.raises(ValueError, match=r"train.txt:1"):
        read_filelist(filelist)
    # a repeated id is skipped and reported, as the readers' docstring says, not fatal
    filelist.write_text("../clips/one.wav|a\n../clips/one.wav|b\n")
    problems: list[tuple[str, str]] = []
    assert [u.text for u in read_filelist(filelist, problems=problems)] == ["a"]
    assert problems == [("one", f"duplicate id: {filelist.resolve()}:2 repeats the file stem of line 1")]


def test_kaldi_duplicate_ids_are_skipped_and_reported(tmp_path: Path) -> None:
    _audio(tmp_path / "u1.wav")
    (tmp_path / "wav.scp").write_text(f"u1 {tmp_path / 'u1.wav'}\nu1 {tmp_path / 'u1.wav'}\n")
    (tmp_path / "text").write_text("u1 first text\nu1 second text\n")
    problems: list[tuple[str, str]] = []
    utts = read_kaldi(tmp_path, problems=problems)
    assert [(u.id, u.text) for u in utts] == [("u1", "first text")]
    assert [utt_id for utt_id, _ in problems] == ["u1", "u1"]
    assert all(reason.startswith("duplicate id:") for _, reason in problems)


def test_blizzard2013(tmp_path: Path) -> None:
    book = tmp_path / "BC2013_segmented" / "book_a"
    _audio(book / "wavn" / "CA-BB-01-001.wav")
    _audio(book / "wavn" / "CA-BB-01-002.wav")
    (book / "prompts.gui").write_text(
        "CA-BB-01-001\nChapter one. @ It was # a cold | day.\nannotation\n"
        "CA-BB-01-002\nShe smiled.\nannotation\n"
        "CA-BB-01-003\nNo audio here.\nannotation\n",
        encoding="utf-8",
    )
    problems: list[tuple[str, str]] = []
    utts = read_blizzard2013(tmp_path, problems=problems)
    assert [(u.id, u.text) for u in utts] == [
        ("CA-BB-01-001", "Chapter one. It was a cold day."),
        ("CA-BB-01-002", "She smiled."),
    ]
    assert {u.speaker for u in utts} == {"blizzard2013"}
    assert [utt_id for utt_id, _ in problems] == ["CA-BB-01-003"]
    (book / "prompts.gui").write_text("CA-BB-01-001\nonly two lines\n")
    with pytest.raises(ValueError, match="groups of 3"):
        read_blizzard2013(tmp_path)


def test_missing_corpus_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing"):
        read_ljspeech(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        read_ljspeech(tmp_path)
