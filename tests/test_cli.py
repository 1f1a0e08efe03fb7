"""The command line as a user runs it: train a tiny model, transfer, sample, and bad input."""

from __future__ import annotations

import pytest
import soundfile as sf

from prosody_vae.cli import main
from prosody_vae.data.manifest import read_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tiny_prepared, tmp_path_factory):
    import yaml
    from conftest import TINY_MODEL

    root = tmp_path_factory.mktemp("cli")
    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["data"] = {"root": str(tiny_prepared), "batch_size": 4}
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert (
        main(
            [
                "train",
                "--config",
                str(config),
                "--out",
                str(root / "exp"),
                "--max-steps",
                "2",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    checkpoint = root / "exp" / "checkpoints" / "step_2.pt"
    assert checkpoint.is_file()
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    return root, checkpoint, reference


def test_transfer_writes_audio_and_figures(trained):
    root, checkpoint, reference = trained
    out = root / "transfer.wav"
    code = main(
        [
            "transfer",
            "--checkpoint",
            str(checkpoint),
            "--text",
            "A new sentence.",
            "--reference",
            reference.audio,
            "--reference-text",
            reference.text,
            "--out",
            str(out),
            "--plot",
            "--gl-iters",
            "2",
        ]
    )
    assert code == 0
    wav, rate = sf.read(out)
    assert rate == 22050 and len(wav) > 256
    assert {p.name for p in root.glob("transfer_*.png")} == {
        "transfer_alignment.png",
        "transfer_mels.png",
        "transfer_f0.png",
    }


def test_sample_writes_n_files(trained):
    root, checkpoint, _ = trained
    code = main(
        [
            "sample",
            "--checkpoint",
            str(checkpoint),
            "--text",
            "Hello there.",
            "--n",
            "2",
            "--out",
            str(root / "samples"),
            "--gl-iters",
            "2",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in (root / "samples").glob("*.wav")) == ["sample_00.wav", "sample_01.wav"]


@pytest.mark.parametrize(
    "problem",
    ["missing_reference", "empty_text", "no_reference_text", "truncated_checkpoint", "silent_reference"],
)
def test_bad_input_is_one_line_and_exit_2(trained, tmp_path, capsys, problem):
    import numpy as np

    _, checkpoint, reference = trained
    args = {
        "--checkpoint": str(checkpoint),
        "--text": "Hello.",
        "--reference": reference.audio,
        "--reference-text": reference.text,
        "--out": str(tmp_path / "o.wav"),
    }
    if problem == "missing_reference":
        args["--reference"] = str(tmp_path / "nope.wav")
    elif problem == "empty_text":
        args["--text"] = "  "
    elif problem == "no_reference_text":
        del args["--reference-text"]
    elif problem == "truncated_checkpoint":
        broken = tmp_path / "broken.pt"
        broken.write_bytes(checkpoint.read_bytes()[:1000])
        args["--checkpoint"] = str(broken)
    elif problem == "silent_reference":
        silent = tmp_path / "silent.wav"
        sf.write(silent, np.zeros(22050, dtype=np.float32), 22050)
        args["--reference"] = str(silent)
    argv = ["transfer"] + [item for pair in args.items() for item in pair]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    if problem in ("missing_reference", "silent_reference"):
        assert args["--reference"] in err[0]
    if problem == "truncated_checkpoint":
        assert "broken.pt" in err[0]
