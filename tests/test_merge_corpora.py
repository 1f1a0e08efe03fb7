"""recipes/merge_corpora.py: two built corpora become one that ``prepare`` reads, reusing their F0."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prosody_vae.audio import AudioConfig
from prosody_vae.data import feature_cache
from prosody_vae.data.manifest import read_manifest
from prosody_vae.data.prepare import prepare_corpus

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _merge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "merge_corpora.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> tuple[Path, Path]:
    """Two 4-utterance built-in corpora (their ids coincide: both number from espeak_00000)."""
    from prosody_vae.data.espeak import build_corpus

    root = tmp_path_factory.mktemp("merge")
    build_corpus(root / "a", n_utterances=4, seed=1, num_workers=1, progress=False)
    build_corpus(root / "b", n_utterances=4, seed=2, num_workers=1, progress=False)
    (root / "b" / "held_out_texts.txt").write_text("A sentence only b holds out.\n", encoding="utf-8")
    return root / "a", root / "b"


def test_merged_corpus_keeps_every_utterance_under_its_own_id_and_prepares_without_harvest(
    two: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    out = tmp_path / "merged"
    done = _merge("--out", str(out), f"{a}:a", f"{b}:b")
    assert done.returncode == 0, done.stderr
    assert "8 utterances (a 4, b 4)" in done.stdout
    merged = read_manifest(out / "manifest.jsonl")
    originals = {
        prefix: {u.id: u for u in read_manifest(folder / "manifest.jsonl")}
        for folder, prefix in ((a, "a"), (b, "b"))
    }
    assert len({u.id for u in merged}) == 8
    for utt in merged:
        prefix, old = utt.id.split("_", 1)
        source = originals[prefix][old]
        assert Path(utt.audio).is_absolute() and Path(utt.audio).samefile(source.audio)
        assert (utt.text, utt.speaker, utt.labels) == (source.text, source.speaker, source.labels)
    held_out = (out / "held_out_texts.txt").read_text(encoding="utf-8").splitlines()
    expected = set((a / "held_out_texts.txt").read_text(encoding="utf-8").split("\n")) - {""}
    assert set(held_out) == expected | {"A sentence only b holds out."}

    # prepare takes every F0 from the inputs' stored tracks: Harvest is never run
    def refuse(*args, **kwargs):
        raise AssertionError("Harvest ran although a stored track matched")

    monkeypatch.setattr(feature_cache, "harvest_f0", refuse)
    result = prepare_corpus(
        "manifest",
        out / "manifest.jsonl",
        tmp_path / "prepared",
        config=AudioConfig(),
        num_workers=0,
        valid_fraction=0.25,
        test_fraction=0.0,
        progress=False,
    )
    assert sorted(result.extraction.reused_f0) == sorted(u.id for u in merged)

    # idempotent: a second run writes the same manifest
    before = (out / "manifest.jsonl").read_bytes()
    assert _merge("--out", str(out), f"{a}:a", f"{b}:b").returncode == 0
    assert (out / "manifest.jsonl").read_bytes() == before


def test_bad_inputs_are_one_line_errors_naming_the_problem(two: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = two
    same = _merge("--out", str(tmp_path / "m"), f"{a}:x", f"{a}:x")
    assert same.returncode != 0 and "its own prefix" in same.stderr
    assert "FOLDER:PREFIX" in _merge("--out", str(tmp_path / "m"), str(a)).stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.jsonl").write_text(json.dumps({"audio": "x.wav"}) + "\n{not json\n")
    failed = _merge("--out", str(tmp_path / "m"), f"{broken}:z")
    assert failed.returncode != 0 and f"{broken / 'manifest.jsonl'}:1" in failed.stderr
