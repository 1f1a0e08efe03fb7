"""The recipes share one stage script (egs/TEMPLATE/tts.sh): every run.sh answers --help with its stages
and options, refuses unknown options with exit status 2, and the shared stages run on a tiny corpus."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "egs" / "TEMPLATE" / "tts.sh"
RECIPES = sorted((REPO / "egs").glob("*/run.sh"))
SCRIPTS = [*RECIPES, REPO / "egs" / "espeak_prosody" / "run_sweep.sh", TEMPLATE]
STAGES = {"run_sweep.sh": {1: "train", 2: "evaluate"}}
SHARED_STAGES = {0: "corpus", 1: "features", 2: "train", 3: "report", 4: "pack"}


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_every_corpus_recipe_is_found() -> None:
    names = {path.parent.name for path in RECIPES}
    assert {"ljspeech", "vctk", "blizzard2013", "espeak_prosody"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
def test_help_lists_stages_and_options(script: Path, tmp_path: Path) -> None:
    result = _run(script, "--help", cwd=tmp_path)  # from elsewhere: the scripts find their own folder
    assert result.returncode == 0, result.stderr
    listed = dict(re.findall(r"^  (\d)  (\w+) ", result.stdout, flags=re.MULTILINE))
    expected = STAGES.get(script.name, SHARED_STAGES)
    assert {int(k): v for k, v in listed.items()} == expected
    for option in ("--stage", "--stop_stage", "--exp"):
        assert re.search(rf"^  {option} ", result.stdout, flags=re.MULTILINE), option
    assert not list(tmp_path.iterdir())  # --help writes nothing


def test_recipe_help_shows_its_own_defaults(tmp_path: Path) -> None:
    out = _run(REPO / "egs" / "ljspeech" / "run.sh", "--help", cwd=tmp_path).stdout
    assert "read the ljspeech corpus in downloads/LJSpeech-1.1" in out
    assert re.search(r"^  --stop_stage .*\[1\]$", out, flags=re.MULTILINE)
    out = _run(
        REPO / "egs" / "espeak_prosody" / "run.sh", "--help", "--data", "elsewhere", cwd=tmp_path
    ).stdout
    assert "build the corpus: bash egs/espeak_prosody/local/data.sh --out elsewhere/corpus" in out
    assert re.search(r"^  --data .*\[elsewhere\]$", out, flags=re.MULTILINE)  # the recipe's own options
    assert re.search(r"^  --dump .*\[elsewhere/prepared\]$", out, flags=re.MULTILINE)


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no_such_option", "1"], "unknown option --no_such_option"),
        (["--stage"], "--stage needs a value"),
        (["--stage", "two"], "--stage: expected a non-negative integer, got 'two'"),
        (["stray"], "unexpected argument 'stray'"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    script: Path, args: list[str], message: str, tmp_path: Path
) -> None:
    result = _run(script, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
def test_an_empty_stage_range_does_nothing(script: Path, tmp_path: Path) -> None:
    result = _run(script, "--stage", "9", "--exp", str(tmp_path / "exp"), cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert not list(tmp_path.iterdir())


def _tiny_filelist(root: Path, n: int = 4) -> Path:
    import soundfile as sf

    sr = 22050
    lines = []
    for i in range(n):
        t = np.arange(int(sr * (0.8 + 0.1 * i))) / sr
        wav = 0.4 * np.sin(2 * np.pi * (110 + 15 * i) * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
        sf.write(root / f"utt{i}.wav", wav.astype(np.float32), sr)
        lines.append(f"utt{i}.wav|Sentence number {i}.")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root / "list.txt"


def test_shared_data_stages_on_a_tiny_corpus(tmp_path: Path) -> None:
    filelist = _tiny_filelist(tmp_path)
    args = ["--corpus", "filelist", "--corpus_dir", str(filelist), "--dump", "dump", "--done_dir", "marks"]
    args += ["--nj", "1", "--prepare_opts", "--no-progress --valid-fraction 0.25", "--stop_stage", "1"]

    result = _run(TEMPLATE, *args, "--stop_stage", "0", cwd=tmp_path)  # a later option wins
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dump" / "manifest.jsonl").is_file() and (tmp_path / "marks" / "corpus").is_file()
    assert not (tmp_path / "dump" / "features").exists()  # stage 0 only

    result = _run(TEMPLATE, "--stage", "1", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "stage 1: features,splits" in result.stdout  # the manifest of stage 0 is not read again
    assert len(list((tmp_path / "dump" / "features").glob("*.pt"))) == 4
    sizes = {p.stem: len(p.read_text().splitlines()) for p in (tmp_path / "dump" / "splits").glob("*.jsonl")}
    assert sum(sizes.values()) == 4 and sizes["train"] >= 1
    assert (tmp_path / "marks" / "prepare").is_file()

    again = _run(TEMPLATE, *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "stage 0: corpus already built" in again.stdout and "stage 1: already prepared" in again.stdout


def test_stage_1_reads_a_corpus_that_stage_0_built(tmp_path: Path) -> None:
    # a --local_data recipe (the built-in corpus): stage 0 builds, stage 1 reads, validates and extracts
    filelist = _tiny_filelist(tmp_path, n=3)
    build = tmp_path / "build.sh"
    build.write_text('echo "built with $*" > "$1"\n')
    args = ["--local_data", str(build), "--local_data_opts", str(tmp_path / "built.txt")]
    args += ["--corpus", "filelist", "--corpus_dir", str(filelist), "--dump", "dump", "--nj", "1"]
    args += ["--prepare_opts", "--no-progress", "--stop_stage", "1"]
    result = _run(TEMPLATE, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "built.txt").read_text().strip() == f"built with {tmp_path / 'built.txt'}"
    assert "stage 1: manifest,features,splits" in result.stdout
    assert len(list((tmp_path / "dump" / "features").glob("*.pt"))) == 3


def test_packing_without_a_checkpoint_is_an_error(tmp_path: Path) -> None:
    result = _run(TEMPLATE, "--stage", "4", "--exp", "exp", cwd=tmp_path)
    assert result.returncode == 1 and "no checkpoint in exp/checkpoints; run stage 2 first" in result.stderr
