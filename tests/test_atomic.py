"""Atomic writes, stale temporaries and output names that two runs cannot both claim."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prosody_vae.atomic import atomic_path, remove_stale_temporaries, reserve_path, write_text_atomic
from prosody_vae.audio.io import write_wav


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    write_text_atomic(path, "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_the_finished_file_has_the_usual_permissions(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "out.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_folder_is_not_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a folder"), atomic_path(tmp_path):
        pass


def test_a_symbolic_link_is_replaced_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    link = tmp_path / "inside" / "out.txt"
    link.parent.mkdir()
    link.symlink_to(outside)
    write_text_atomic(link, "new")
    assert outside.read_text() == "keep" and not link.is_symlink() and link.read_text() == "new"


def test_a_truncated_wav_is_never_left_under_the_real_name(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "speech.wav"
    write_wav(path, np.zeros(1000, dtype=np.float32), 22050)
    before = path.read_bytes()

    def full_disk(file, data, samplerate, subtype=None):
        Path(file).write_bytes(b"RIFF" + b"\0" * 40)  # a header, then the disk is full
        raise sf.LibsndfileError(0, "Error : No space left on device")

    monkeypatch.setattr(sf, "write", full_disk)
    with pytest.raises(OSError, match="could not write audio") as caught:
        write_wav(path, np.ones(4000, dtype=np.float32) * 0.1, 22050)
    assert caught.value.filename == str(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["speech.wav"]


def test_write_wav_refuses_non_finite_samples_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NaN"):
        write_wav(tmp_path / "a.wav", np.array([0.0, np.nan], dtype=np.float32), 22050)
    with pytest.raises(ValueError, match="audio format"):
        write_wav(tmp_path / "a.xyz", np.zeros(10, dtype=np.float32), 22050)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path: Path) -> None:
    stale = [tmp_path / ".step_3.pt.ab12.tmp", tmp_path / ".x.wav.k3j.tmp.wav", tmp_path / ".partial-a.tmp"]
    kept = [tmp_path / "step_3.pt", tmp_path / ".hidden", tmp_path / "notes.tmp"]
    for path in stale + kept:
        path.write_text("x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_reserve_path_never_hands_out_a_taken_name(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_text("earlier run")
    (tmp_path / "a_2.wav").symlink_to(tmp_path / "nowhere")  # dangling: still taken
    assert reserve_path(tmp_path / "a.wav") == tmp_path / "a_3.wav"
    assert (tmp_path / "a.wav").read_text() == "earlier run"
    # many claimants at once (as two runs writing into one folder): every name handed out once
    names: list[Path] = []
    lock = threading.Lock()

    def claim() -> None:
        for _ in range(20):
            name = reserve_path(tmp_path / "b.wav")
            with lock:
                names.append(name)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(names) == len(set(names)) == 80
