"""Synthesis outputs as a user meets them: nothing earlier overwritten, manifests merged whole, no
writing through a symbolic link, partial success said and seen in the exit status, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from prosody_vae.cli import describe_error, main
from prosody_vae.inference.writer import SynthesisWriter


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An espeak-ng recording with its transcript in <name>.txt beside it (the shipped model reads it)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    text = "The lantern was red and the night was long."
    path = tmp_path_factory.mktemp("reference") / "ref.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    path.with_suffix(".txt").write_text(text + "\n")
    return path


def _run(*argv: str) -> int:
    return main(["-q", *argv, "--threads", "1", "--gl-iters", "2"])


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def _error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error")]
    assert len(err) == 1, err
    return err[0]


def test_two_batch_runs_into_one_folder_keep_every_file_and_row(reference, tmp_path, capsys) -> None:
    batch = tmp_path / "pairs.tsv"
    batch.write_text(f"Hello there.\t{reference}\nAnother one.\t{reference}\n")
    out = tmp_path / "out"
    assert _run("transfer", "--batch", str(batch), "--out", str(out)) == 0
    first = {p.name: p.read_bytes() for p in out.glob("*.wav")}
    assert sorted(first) == ["0001_ref.wav", "0002_ref.wav"]
    assert _run("transfer", "--batch", str(batch), "--out", str(out)) == 0
    # the second run took new names and added its rows; the first run's files are as they were
    assert sorted(p.name for p in out.glob("*.wav")) == [
        "0001_ref.wav",
        "0001_ref_2.wav",
        "0002_ref.wav",
        "0002_ref_2.wav",
    ]
    assert all((out / name).read_bytes() == data for name, data in first.items())
    rows = _rows(out)
    assert [r["output"] for r in rows] == ["0001_ref.wav", "0002_ref.wav", "0001_ref_2.wav", "0002_ref_2.wav"]
    assert len({r["id"] for r in rows}) == 4
    capsys.readouterr()


def test_manifests_written_at_the_same_time_lose_no_row(tmp_path) -> None:
    writers = []
    for run in range(6):
        writer = SynthesisWriter(synth=None, vocoder=None)
        writer.rows = [
            {"id": f"r{run}_{i}", "output": str(tmp_path / f"r{run}_{i}.wav"), "reference": None}
            for i in range(20)
        ]
        writers.append(writer)
    threads = [threading.Thread(target=w.write_manifest, args=(tmp_path,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [row["id"] for row in _rows(tmp_path)]
    assert sorted(ids) == sorted(f"r{run}_{i}" for run in range(6) for i in range(20))


def test_a_manifest_that_is_a_symbolic_link_is_refused_before_any_work(reference, tmp_path, capsys) -> None:
    outside = tmp_path / "elsewhere" / "manifest.jsonl"
    outside.parent.mkdir()
    outside.write_text("not ours\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").symlink_to(outside)
    batch = tmp_path / "pairs.tsv"
    batch.write_text(f"Hello there.\t{reference}\n")
    assert _run("transfer", "--batch", str(batch), "--out", str(out)) == 2
    assert "symbolic link" in _error_line(capsys)
    assert outside.read_text() == "not ours\n" and sorted(p.name for p in out.iterdir()) == ["manifest.jsonl"]
    assert _run("sample", "--text", "Hello.", "--n", "1", "--out", str(out)) == 2
    assert outside.read_text() == "not ours\n"


def test_partial_success_exits_1_and_keep_going_exits_0(reference, tmp_path, capsys) -> None:
    batch = tmp_path / "pairs.tsv"
    batch.write_text(f"Hello there.\t{reference}\nПривет, мир?\t{reference}\nno tab here\n")
    assert _run("transfer", "--batch", str(batch), "--out", str(tmp_path / "a")) == 1
    captured = capsys.readouterr()
    assert "1 of 3 line(s) synthesised, 2 skipped" in captured.out
    assert f"{batch}:2: cannot speak" in captured.err and "Cyrillic" in captured.err
    assert "Traceback" not in captured.err
    assert _run("transfer", "--batch", str(batch), "--out", str(tmp_path / "b"), "--keep-going") == 0
    assert len(_rows(tmp_path / "b")) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Привет, мир?", "Cyrillic"),  # was ",?" and a 0.03 s wav with exit 0
        ("Hello 你好 world.", "CJK"),
    ],
)
def test_unpronounceable_text_is_an_error_and_no_wav(reference, tmp_path, capsys, text, expected) -> None:
    out = tmp_path / "o.wav"
    assert _run("transfer", "--reference", str(reference), "--text", text, "--out", str(out)) == 2
    assert expected in _error_line(capsys) and not out.exists()


def test_ssml_is_not_spoken_and_the_notice_names_the_tags(reference, tmp_path, capsys) -> None:
    out = tmp_path / "o.wav"
    text = '<speak>Hello <break time="1s"/> there.</speak>'
    assert _run("transfer", "--reference", str(reference), "--text", text, "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert 'notice: markup is not spoken: removed <speak> <break time="1s"/> </speak>' in err
    assert out.is_file()


def test_file_system_errors_are_one_line_naming_the_file(reference, tmp_path, capsys) -> None:
    folder = tmp_path / "already_a_folder.wav"
    folder.mkdir()
    args = ["transfer", "--reference", str(reference), "--text", "Hello."]
    assert _run(*args, "--out", str(folder)) == 2
    assert f"error: {folder}: is a folder" in _error_line(capsys)
    parent_is_a_file = tmp_path / "file"
    parent_is_a_file.write_text("x")
    assert _run(*args, "--out", str(parent_is_a_file / "o.wav")) == 2
    assert str(parent_is_a_file) in _error_line(capsys)
    assert _run("sample", "--text", "Hello.", "--n", "1", "--out", str(parent_is_a_file)) == 2
    assert "exists and is not a folder" in _error_line(capsys)


def test_describe_error_names_the_file_of_an_os_error() -> None:
    denied = PermissionError(13, "Permission denied", "/x/o.wav")
    assert describe_error(denied) == "/x/o.wav: Permission denied"
    assert describe_error(FileExistsError(17, "File exists", "a", None, "b")) == "a -> b: File exists"
    assert describe_error(ValueError("first\n  second\n")) == "first second"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_one_line(reference, tmp_path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        args = ["transfer", "--reference", str(reference), "--text", "Hello.", "--out", str(locked / "o.wav")]
        assert _run(*args) == 2
        assert "Permission denied" in _error_line(capsys)
    finally:
        locked.chmod(0o700)
