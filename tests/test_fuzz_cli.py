"""Malformed input through the whole command line, in this process, as a user would give it.

A fixed, seeded set of bad wavs, texts, configs, manifests and batch files goes through
:func:`prosody_vae.cli.main`. Every case must end with exit status 2, exactly one ``error:`` line
and no traceback on stderr; nothing may be written outside ``--out``, and what ``--out`` held before
(an earlier wav, an earlier manifest) must be untouched. The synthesis cases use the shipped model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prosody_vae.cli import main

SR = 22050
SEED = 18
TEXT = "The lantern was red and the night was long."


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path, np.random.Generator], list[str]]  # writes inputs under a folder, returns argv


def _tone(seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wav = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    return wav if channels == 1 else np.repeat(wav[:, None], channels, axis=1)


def _transfer(reference: Path, text: str = "Hello there.") -> list[str]:
    return ["transfer", "--reference", str(reference), "--reference-text", TEXT, "--text", text]


# ------------------------------------------------------------------ bad reference audio
def _wav_bytes(data: bytes) -> Callable[[Path, np.random.Generator], list[str]]:
    def build(work: Path, rng: np.random.Generator) -> list[str]:
        (work / "ref.wav").write_bytes(data)
        return _transfer(work / "ref.wav")

    return build


def _random_bytes(work: Path, rng: np.random.Generator) -> list[str]:
    (work / "ref.wav").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return _transfer(work / "ref.wav")


def _truncated_header(work: Path, rng: np.random.Generator) -> list[str]:
    sf.write(work / "full.wav", _tone(1.0), SR)
    (work / "ref.wav").write_bytes((work / "full.wav").read_bytes()[:30])
    return _transfer(work / "ref.wav")


def _samples(samples: np.ndarray, subtype: str = "FLOAT") -> Callable[[Path, np.random.Generator], list[str]]:
    def build(work: Path, rng: np.random.Generator) -> list[str]:
        sf.write(work / "ref.wav", samples, SR, subtype=subtype)
        return _transfer(work / "ref.wav")

    return build


def _nan_samples(work: Path, rng: np.random.Generator) -> list[str]:
    samples = _tone(1.0)
    samples[rng.integers(0, len(samples), 50)] = np.nan
    sf.write(work / "ref.wav", samples, SR, subtype="FLOAT")
    return _transfer(work / "ref.wav")


def _folder_reference(work: Path, rng: np.random.Generator) -> list[str]:
    (work / "ref.wav").mkdir()
    return _transfer(work / "ref.wav")


# ------------------------------------------------------------------ bad texts
def _text(text: str) -> Callable[[Path, np.random.Generator], list[str]]:
    def build(work: Path, rng: np.random.Generator) -> list[str]:
        sf.write(work / "ref.wav", _tone(1.5), SR)
        return _transfer(work / "ref.wav", text)

    return build


def _random_script(work: Path, rng: np.random.Generator) -> list[str]:
    blocks = [(0x0400, 0x04FF), (0x0370, 0x03FF), (0x4E00, 0x4FFF), (0x0600, 0x06FF), (0x3040, 0x309F)]
    letters = [
        chr(int(rng.integers(lo, hi)))
        for lo, hi in (blocks[int(rng.integers(len(blocks)))] for _ in range(12))
    ]
    return _text("".join(letters) + ".")(work, rng)


# ------------------------------------------------------------------ bad training configs
def _config(body: str, *extra: str) -> Callable[[Path, np.random.Generator], list[str]]:
    def build(work: Path, rng: np.random.Generator) -> list[str]:
        (work / "exp.yaml").write_text(body.replace("{work}", str(work)))
        return ["train", "--config", str(work / "exp.yaml"), *extra]

    return build


_NO_DATA = "data: {root: {work}/no_such_data}\n"


def _binary_config(work: Path, rng: np.random.Generator) -> list[str]:
    (work / "exp.yaml").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    return ["train", "--config", str(work / "exp.yaml")]


# ------------------------------------------------------------------ bad manifests and batch files
def _batch(body: str) -> Callable[[Path, np.random.Generator], list[str]]:
    def build(work: Path, rng: np.random.Generator) -> list[str]:
        sf.write(work / "ref.wav", _tone(0.1), SR)  # too short to carry prosody
        (work / "pairs.tsv").write_text(body.replace("{work}", str(work)))
        return ["transfer", "--batch", str(work / "pairs.tsv")]

    return build


def _binary(
    name: str, command: Callable[[Path], list[str]]
) -> Callable[[Path, np.random.Generator], list[str]]:
    def build(work: Path, rng: np.random.Generator) -> list[str]:
        (work / name).write_bytes(b"\xff\xfe\x00" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
        return command(work / name)

    return build


def _manifest(
    lines: list[str], command: Callable[[Path], list[str]]
) -> Callable[[Path, np.random.Generator], list[str]]:
    def build(work: Path, rng: np.random.Generator) -> list[str]:
        (work / "m.jsonl").write_text("\n".join(lines).replace("{work}", str(work)) + "\n")
        return command(work / "m.jsonl")

    return build


def _evaluate(path: Path) -> list[str]:
    return ["evaluate", "--manifest", str(path), "--num-workers", "0"]


def _embed(path: Path) -> list[str]:
    return ["embed", str(path)]


def _prepare(path: Path) -> list[str]:
    return ["prepare", "--corpus", "manifest", "--root", str(path), "--num-workers", "0"]


CASES = [
    # reference audio
    Case("wav_empty", _wav_bytes(b"")),
    Case("wav_random_bytes", _random_bytes),
    Case("wav_truncated_header", _truncated_header),
    Case("wav_silent", _samples(np.zeros(SR, dtype=np.float32))),
    Case("wav_nan", _nan_samples),
    Case("wav_too_short", _samples(_tone(0.1))),
    Case("wav_nine_channels", _samples(_tone(1.0, channels=9), subtype="PCM_16")),
    Case("wav_is_a_folder", _folder_reference),
    # texts
    Case("text_blank", _text("   ")),
    Case("text_cyrillic", _text("Привет, мир?")),
    Case("text_cjk", _text("你好，世界。")),
    Case("text_symbols", _text("☃ ☃ ~")),
    Case("text_nul_only", _text("\x00\x00")),
    Case("text_markup_only", _text('<speak><break time="1s"/></speak>')),
    Case("text_random_script", _random_script),
    # training configs
    Case("config_binary", _binary_config),
    Case("config_a_list", _config("- 1\n- 2\n")),
    Case("config_unknown_section", _config("trian: {steps: 3}\n" + _NO_DATA)),
    Case("config_wrong_type", _config("train: {steps: many}\n" + _NO_DATA)),
    Case("config_zero_interval", _config("train: {checkpoint_every: 0}\n" + _NO_DATA)),
    Case("config_zero_log_every", _config(_NO_DATA, "--set", "train.log_every=0")),
    Case("config_missing_data", _config(_NO_DATA)),
    Case("config_max_steps_zero", _config(_NO_DATA, "--max-steps", "0")),
    # batch files and manifests
    Case("batch_binary", _binary("pairs.tsv", lambda p: ["transfer", "--batch", str(p)])),
    Case("batch_all_lines_bad", _batch("no tabs here\n\t\nonly\ttoo\tmany\tfields\n")),
    Case(
        "batch_escaping_paths",
        _batch("Hello.\t../../../../etc/passwd\nHi.\t/dev/null\nYo.\t{work}/ref.wav\n"),
    ),
    Case("evaluate_manifest_garbage", _manifest(["{not json", "[1, 2]", '{"id": 3}'], _evaluate)),
    Case(
        "evaluate_manifest_escaping",
        _manifest(['{"id": "a", "output": "../../../../etc/passwd"}'], _evaluate),
    ),
    Case("evaluate_manifest_binary", _binary("m.jsonl", _evaluate)),
    Case("embed_manifest_garbage", _manifest(['{"id": "a/b", "audio": "x.wav", "text": "t"}'], _embed)),
    Case("prepare_manifest_binary", _binary("m.jsonl", _prepare)),
    Case("prepare_manifest_malformed", _manifest(['{"id": "a", "audio": 5, "text": "t"}'], _prepare)),
]


def _snapshot(root: Path, skip: Path) -> dict[str, str]:
    """Every file under ``root`` outside ``skip``: path -> content digest (links: their target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path == skip or skip in path.parents:
            continue
        if path.is_symlink():
            found[str(path)] = "link:" + str(path.readlink())
        elif path.is_file():
            found[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return found


def _output(argv: list[str], out: Path) -> list[str]:
    """Where each command is told to write: inside ``out`` (a file that already exists for transfer)."""
    if argv[0] == "transfer":
        return ["--out", str(out if "--batch" in argv else out / "o.wav")]
    if argv[0] == "evaluate":
        return ["--report", str(out / "report")]
    return ["--out", str(out / {"train": "exp", "embed": "emb.npz", "prepare": "prepared"}[argv[0]])]


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """What an earlier run left in --out: a wav and a manifest, copied into each case's --out."""
    folder = tmp_path_factory.mktemp("earlier")
    sf.write(folder / "o.wav", _tone(0.5), SR)
    sf.write(folder / "0001_ref.wav", _tone(0.5), SR)
    (folder / "manifest.jsonl").write_text(json.dumps({"id": "0001_ref", "output": "0001_ref.wav"}) + "\n")
    return folder


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case, earlier, tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng([SEED, CASES.index(case)])
    work, out, cwd = tmp_path / "work", tmp_path / "out", tmp_path / "cwd"
    for folder in (work, cwd):
        folder.mkdir()
    shutil.copytree(earlier, out)
    monkeypatch.chdir(cwd)  # a default output name would land here
    argv = case.build(work, rng)
    before_outside = _snapshot(tmp_path, out)
    before_out = _snapshot(out, out / "__none__")

    code = main(["-q", *argv, *_output(argv, out)])

    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 2, (case.name, err)
    assert "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith("error: ") and len(errors[0]) < 800
    assert _snapshot(tmp_path, out) == before_outside  # nothing written outside --out
    after_out = _snapshot(out, out / "__none__")
    assert {path: after_out.get(path) for path in before_out} == before_out  # nothing earlier overwritten
    leftovers = [p for p in out.rglob("*") if p.is_file() and str(p) not in before_out]
    assert not [p for p in leftovers if p.suffix == ".wav" or ".tmp" in p.name], leftovers
