"""The README's and docs/transfer.md's synthesis commands and Python API run as written.

In a fresh folder with only the demo's references (``demo_out/references/<style>.wav`` and
``<style>.txt``, as ``prosody-vae demo`` writes them) and the shipped model: no ``--checkpoint``,
no data, no ``exp/``. Commands run in this process through :func:`prosody_vae.cli.main`, with
Griffin-Lim cut to 2 iterations and one thread appended (later options win in argparse); other
shell lines of a block (``printf ... > pairs.tsv``) run in bash.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from prosody_vae.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TRANSFER_DOC = ROOT / "docs" / "transfer.md"
SYNTHESIS = ("transfer", "sample", "interpolate", "traverse", "embed")
# smaller outputs, same commands: fewer Griffin-Lim iterations, fewer samples or steps
SMALLER = {
    "transfer": ["--gl-iters", "2"],
    "sample": ["--gl-iters", "2", "--n", "2"],
    "interpolate": ["--gl-iters", "2", "--steps", "2"],
    "traverse": ["--gl-iters", "2", "--steps", "2"],
    "embed": [],
}


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


def _shell_lines(block: str) -> list[str]:
    """Commands of a bash block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _synthesis_commands(path: Path) -> list[list[str]]:
    commands = []
    for block in _blocks(path, "bash"):
        for line in _shell_lines(block):
            argv = shlex.split(line)
            if argv[0] == ".venv/bin/prosody-vae" and argv[1] in SYNTHESIS:
                commands.append(argv[1:])
    return commands


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder holding what the quick start leaves: the demo's references with their transcripts."""
    from prosody_vae.demo import run_demo

    root = tmp_path_factory.mktemp("readme")
    torch.set_num_threads(1)
    run_demo(
        root / "demo_out",
        n_targets=0,
        n_samples=0,
        interpolation_steps=0,
        figures=False,
        progress=False,
    )
    return root


def _run(argv: list[str], capsys) -> str:
    assert main([*argv, *SMALLER[argv[0]], "--threads", "1"]) == 0, argv
    return capsys.readouterr().err


def test_the_demo_writes_transcripts_beside_its_references(workdir):
    from prosody_vae.demo import STYLES

    for style in STYLES:
        wav = workdir / "demo_out" / "references" / f"{style.name}.wav"
        assert wav.is_file() and wav.with_suffix(".txt").read_text().strip()


def test_readme_synthesis_commands_run_as_written(workdir, monkeypatch, capsys):
    from prosody_vae.inference.packed import builtin_model_path

    commands = _synthesis_commands(README)
    assert {argv[0] for argv in commands} == set(SYNTHESIS), commands  # the README shows each one
    assert all("--checkpoint" not in argv for argv in commands)
    monkeypatch.chdir(workdir)
    for argv in commands:
        err = _run(argv, capsys)
        # the shipped model, said once
        assert err.count(f"using the shipped model {builtin_model_path()}") == 1, (argv, err)
    transfer = sf.read(workdir / "out" / "transfer.wav")[0]
    assert len(transfer) > 22050 // 2 and np.abs(transfer).max() > 0.01
    assert (workdir / "out" / "transfer_f0.png").is_file()  # --plot
    assert len(list((workdir / "out" / "samples").glob("*.wav"))) == 2
    assert len(list((workdir / "out" / "interpolation").glob("*.wav"))) == 2
    assert (workdir / "out" / "traverse" / "activity.json").is_file()
    embeddings = np.load(workdir / "out" / "embeddings.npz")
    from prosody_vae.demo import STYLES

    assert len(embeddings["ids"]) == len(STYLES)  # every reference (not the voice clips below them)


def test_readme_python_api_runs_as_written(workdir, monkeypatch):
    (block,) = [b for b in _blocks(README, "python") if "from_pretrained" in b]
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {"__name__": "readme_api"}
    exec(compile(block, str(README), "exec"), namespace)
    speech = namespace["speech"]
    written, rate = sf.read(workdir / "out" / "lantern.wav", dtype="float32")
    assert rate == speech.sample_rate == 22050
    assert len(written) == len(speech.waveform) and np.allclose(written, speech.waveform, atol=1e-4)
    assert speech.synthesis.stopped and speech.seconds > 0.3


def test_speak_is_transfer_plus_the_vocoder_and_prosody_follows_the_reference(workdir):
    from prosody_vae.audio.world import WorldVocoder
    from prosody_vae.inference.synthesizer import Synthesizer

    tts = Synthesizer.from_pretrained()
    references = workdir / "demo_out" / "references"
    low = references / "low_pitch.wav"
    text = (references / "low_pitch.txt").read_text().strip()
    torch.manual_seed(0)
    speech = tts.speak("The lantern was red.", reference=low)
    torch.manual_seed(0)
    mel = tts.transfer("The lantern was red.", low, reference_text=text).mel
    assert torch.equal(speech.synthesis.mel, mel)  # the transcript came from low_pitch.txt
    assert tts.predicts_pitch and isinstance(tts.vocoder, WorldVocoder)  # the shipped model predicts F0
    # the reference's pitch carries over: the high-pitched reference gives a higher voice
    from prosody_vae.data.espeak import measure_prosody

    high = tts.speak("The lantern was red.", reference=references / "high_pitch.wav")
    f0 = [measure_prosody(s.waveform, config=tts.audio)["f0_mean_hz"] for s in (speech, high)]
    assert f0[1] > 1.3 * f0[0], f0
    # no transcript anywhere: the shipped model embeds the reference without one (its null summary),
    # which keeps the pitch: the low reference still comes out lower than the high one
    assert tts.transcript_optional
    bare = workdir / "bare.wav"
    sf.write(bare, sf.read(low)[0], 22050)
    untranscribed = tts.speak("The lantern was red.", reference=bare)
    assert measure_prosody(untranscribed.waveform, config=tts.audio)["f0_mean_hz"] < 0.8 * f0[1]


def test_transfer_doc_commands_and_python_run_as_written(workdir, monkeypatch, capsys):
    (block,) = [b for b in _blocks(TRANSFER_DOC, "bash") if "prosody-vae transfer" in b]
    monkeypatch.chdir(workdir)
    ran = set()
    for line in _shell_lines(block):
        argv = shlex.split(line)
        if argv[0] == ".venv/bin/prosody-vae":
            _run(argv[1:], capsys)
            ran.add(argv[1])
        else:  # a plain shell step, e.g. writing the batch file
            subprocess.run(["bash", "-c", line], cwd=workdir, check=True)
    assert ran == set(SYNTHESIS)
    assert len(list((workdir / "out" / "batch").glob("*.wav"))) == 2
    # the Python section: every block in order, one namespace
    python = TRANSFER_DOC.read_text(encoding="utf-8").split("### Python", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", python, flags=re.DOTALL)
    assert len(blocks) == 2 and "from_pretrained" in blocks[0]
    namespace: dict[str, object] = {"__name__": "transfer_doc"}
    exec(compile("\n".join(blocks), str(TRANSFER_DOC), "exec"), namespace)
    assert (workdir / "out" / "lantern.wav").is_file()
    assert len(namespace["walk"]) == 3 and len(namespace["path"]) == 3
