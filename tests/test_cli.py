"""The command line as a user runs it: train a tiny model, transfer, sample, and bad input."""

from __future__ import annotations

import pytest
import soundfile as sf

from prosody_vae.cli import main
from prosody_vae.data.manifest import read_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tiny_prepared, tiny_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    reference = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    return root, tiny_checkpoint, reference


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


# ------------------------------------------------------------------ interpolate, traverse, embed, batch
def _run(*argv: str) -> int:
    return main([*argv, "--threads", "1"])


def _manifest(folder):
    import json

    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_sample_writes_a_manifest(trained, tmp_path):
    import numpy as np

    _, checkpoint, _ = trained
    args = ["--checkpoint", str(checkpoint), "--text", "Hello there.", "--n", "2", "--gl-iters", "2"]
    assert _run("sample", *args, "--out", str(tmp_path), "--seed", "3") == 0
    rows = _manifest(tmp_path)
    assert [r["output"] for r in rows] == ["sample_00.wav", "sample_01.wav"]
    assert all(r["kind"] == "sample" and r["reference"] is None and r["text"] == "Hello there." for r in rows)
    # --seed makes prior samples repeatable
    first = sf.read(tmp_path / "sample_00.wav")[0]
    assert _run("sample", *args, "--out", str(tmp_path / "again"), "--seed", "3") == 0
    again = sf.read(tmp_path / "again" / "sample_00.wav")[0]
    assert first.shape == again.shape and np.allclose(first, again)


def test_interpolate_writes_steps_manifest_and_summary(trained, tiny_prepared, tmp_path):
    _, checkpoint, first = trained
    second = read_manifest(tiny_prepared / "splits" / "train.jsonl")[1]
    code = _run(
        "interpolate",
        "--checkpoint", str(checkpoint),
        "--text", "A new sentence.",
        "--from", first.audio, "--from-text", first.text,
        "--to", second.audio, "--to-text", second.text,
        "--steps", "3", "--method", "slerp",
        "--out", str(tmp_path), "--gl-iters", "2", "--plot",
    )  # fmt: skip
    assert code == 0
    rows = _manifest(tmp_path)
    assert [r["output"] for r in rows] == ["interp_00.wav", "interp_01.wav", "interp_02.wav"]
    assert [r["reference"] for r in rows] == [first.audio, first.audio, second.audio]
    assert {r["kind"] for r in rows} == {"interpolate"}
    assert (tmp_path / "summary_f0.png").is_file() and (tmp_path / "interp_02_alignment.png").is_file()


def test_traverse_ranks_dimensions_by_kl_on_the_validation_split(trained, tiny_prepared, tmp_path, capsys):
    import json

    from prosody_vae.data.feature_cache import load_features
    from prosody_vae.inference.synthesizer import Synthesizer
    from prosody_vae.prosody.bounds import dimensions_by_activity

    _, checkpoint, _ = trained
    code = _run(
        "traverse", "--checkpoint", str(checkpoint), "--text", "Hello.", "--dim", "1",
        "--values=-1,1", "--out", str(tmp_path), "--gl-iters", "2",
    )  # fmt: skip
    assert code == 0
    activity = json.loads((tmp_path / "activity.json").read_text())
    # independently: mean KL per dimension over the checkpoint's validation split
    synth = Synthesizer.from_checkpoint(checkpoint)
    valid = read_manifest(tiny_prepared / "splits" / "valid.jsonl")
    mels = [load_features(tiny_prepared / "features", u.id)["mel"] for u in valid]
    kl = synth.latent_activity(mels, texts=[u.text for u in valid])
    assert activity["references"] == len(valid)
    assert activity["dimension"] == int(dimensions_by_activity(kl)[1])
    assert activity["kl_per_dim"] == pytest.approx(kl.tolist(), abs=1e-4)
    assert f"rank 1 = latent dimension {activity['dimension']}" in capsys.readouterr().out
    rows = _manifest(tmp_path)
    assert [r["output"] for r in rows] == ["rank1_00.wav", "rank1_01.wav"]
    assert {r["kind"] for r in rows} == {"traverse"}


def test_traverse_activity_from_a_folder_and_without_any(trained, tiny_prepared, tmp_path, capsys):
    import shutil

    from prosody_vae.checkpoint import load_checkpoint, save_checkpoint

    _, checkpoint, _ = trained
    folder = tmp_path / "refs"
    folder.mkdir()
    for utt in read_manifest(tiny_prepared / "splits" / "train.jsonl")[:3]:
        shutil.copy(utt.audio, folder / f"{utt.id}.wav")
        (folder / f"{utt.id}.txt").write_text(utt.text)
    common = ["--text", "Hello.", "--dim", "0", "--steps", "1", "--gl-iters", "2"]
    code = _run(
        "traverse", "--checkpoint", str(checkpoint), *common,
        "--activity-from", str(folder), "--out", str(tmp_path / "a"),
    )  # fmt: skip
    assert code == 0 and "over 3 reference(s)" in capsys.readouterr().out
    # a checkpoint whose data root is gone, and no --activity-from: a clear error naming the option
    state = load_checkpoint(checkpoint)
    state["config"]["data"]["root"] = str(tmp_path / "moved")
    moved = save_checkpoint(tmp_path / "moved.pt", state)
    assert _run("traverse", "--checkpoint", str(moved), *common, "--out", str(tmp_path / "b")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--activity-from" in err[0] and "valid.jsonl" in err[0]


def test_embed_writes_posteriors_and_skips_a_bad_file(trained, tiny_prepared, tmp_path, capsys):
    import numpy as np

    _, checkpoint, _ = trained
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00 not really a wav")
    manifest = tiny_prepared / "splits" / "valid.jsonl"
    out = tmp_path / "emb.npz"
    # one reference skipped: the embeddings are written, the exit status says something was left out
    assert _run("embed", str(manifest), str(corrupt), "--checkpoint", str(checkpoint), "--out", str(out)) == 1
    captured = capsys.readouterr()
    assert "skipped corrupt" in captured.err and "corrupt.wav" in captured.err
    assert "1 skipped" in captured.out
    data = np.load(out)
    valid = read_manifest(manifest)
    assert list(data["ids"]) == [u.id for u in valid]
    assert data["mean"].shape == data["std"].shape == data["kl"].shape == (len(valid), 4)
    # the KL column is KL(N(mean, std^2) || N(0, 1)) per dimension, as the posterior defines it
    mean, std = data["mean"], data["std"]
    expected = 0.5 * (mean**2 + std**2 - 1.0) - np.log(std)
    assert np.allclose(data["kl"], expected, atol=1e-4)
    # nothing usable at all: an error, not an empty file
    assert _run("embed", str(corrupt), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.npz")) == 2


def test_batch_transfer_skips_bad_lines_and_summarises(trained, tiny_prepared, tmp_path, capsys):
    _, checkpoint, reference = trained
    other = read_manifest(tiny_prepared / "splits" / "train.jsonl")[2]
    batch = tmp_path / "pairs.tsv"
    batch.write_text(
        f"First line.\t{reference.audio}\t{reference.text}\n"
        "# a comment\n"
        "only one field\n"
        f"Second line.\t{tmp_path / 'missing.wav'}\tWhatever.\n"
        f"Third line.\t{other.audio}\t{other.text}\n"
    )
    out = tmp_path / "out"
    assert (
        _run(
            "transfer",
            "--checkpoint",
            str(checkpoint),
            "--batch",
            str(batch),
            "--out",
            str(out),
            "--gl-iters",
            "2",
        )
        == 1  # lines were skipped: the outputs are written and the exit status says not all
    )
    captured = capsys.readouterr()
    assert f"{batch}:3: expected text<TAB>reference" in captured.err
    assert f"{batch}:4:" in captured.err and "missing.wav" in captured.err
    assert "2 of 4 line(s) synthesised, 2 skipped" in captured.out
    rows = _manifest(out)
    assert [r["text"] for r in rows] == ["First line.", "Third line."]
    assert [r["reference"] for r in rows] == [reference.audio, other.audio]
    assert [r["reference_text"] for r in rows] == [reference.text, other.text]
    assert all(r["kind"] == "transfer" and (out / r["output"]).is_file() for r in rows)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script, as a user builds one
def test_transfer_with_a_torchscript_vocoder(trained, tmp_path, capsys):
    import numpy as np
    import torch
    from test_vocoder import HoldVocoder

    _, checkpoint, reference = trained
    args = ["transfer", "--checkpoint", str(checkpoint), "--text", "Hello.", "--reference", reference.audio]
    args += ["--reference-text", reference.text, "--out", str(tmp_path / "o.wav")]
    good = tmp_path / "good.ts"
    torch.jit.script(HoldVocoder()).save(str(good))
    assert _run(*args, "--vocoder", str(good)) == 0
    wav, _ = sf.read(tmp_path / "o.wav", dtype="float32")
    # written by the vocoder (each frame held for a hop), not by Griffin-Lim
    blocks = wav.reshape(-1, 256)
    assert np.allclose(blocks, blocks[:, :1], atol=1e-4)
    bad = tmp_path / "bad.ts"
    torch.jit.script(HoldVocoder(n_mels=64)).save(str(bad))
    assert _run(*args, "--vocoder", str(bad)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "n_mels 64 (model 80)" in err[0]


@pytest.mark.parametrize(
    "problem", ["corrupt_reference", "short_reference", "unknown_symbols", "weights_do_not_fit", "no_input"]
)
def test_more_bad_input_is_one_line_and_exit_2(trained, tmp_path, capsys, problem):
    import numpy as np

    from prosody_vae.checkpoint import load_checkpoint, save_checkpoint

    _, checkpoint, reference = trained
    args = {
        "--checkpoint": str(checkpoint),
        "--text": "Hello.",
        "--reference": reference.audio,
        "--reference-text": reference.text,
        "--out": str(tmp_path / "o.wav"),
    }
    if problem == "corrupt_reference":
        args["--reference"] = str(tmp_path / "corrupt.wav")
        (tmp_path / "corrupt.wav").write_bytes(b"RIFF1234WAVEfmt garbage")
    elif problem == "short_reference":
        args["--reference"] = str(tmp_path / "short.wav")
        t = np.arange(2205) / 22050
        sf.write(args["--reference"], (0.5 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 22050)
    elif problem == "unknown_symbols":
        args["--text"] = "日本語です"
    elif problem == "weights_do_not_fit":
        state = load_checkpoint(checkpoint)  # a training checkpoint: the model lives in training_module
        state["training_module"] = {
            k: v[..., :1] if k.startswith("model.") and v.dim() else v
            for k, v in state["training_module"].items()
        }
        args["--checkpoint"] = str(save_checkpoint(tmp_path / "misfit.pt", state))
    elif problem == "no_input":
        del args["--reference"]
    assert main(["transfer"] + [item for pair in args.items() for item in pair]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    expected = {
        "corrupt_reference": "corrupt.wav: cannot read audio",
        "short_reference": "too short",
        "unknown_symbols": "日本語です",
        "weights_do_not_fit": "misfit.pt: weights do not fit",
        "no_input": "--text and --reference",
    }[problem]
    assert expected in err[0]


def test_stereo_reference_at_another_rate_gives_a_notice(trained, tmp_path, capsys):
    import librosa
    import numpy as np

    _, checkpoint, reference = trained
    wav, rate = sf.read(reference.audio, dtype="float32")
    wide = librosa.resample(wav, orig_sr=rate, target_sr=44100)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([wide, 0.5 * wide], axis=1), 44100)
    code = main(
        ["transfer", "--checkpoint", str(checkpoint), "--text", "Hello.", "--reference", str(stereo)]
        + ["--reference-text", reference.text, "--out", str(tmp_path / "o.wav"), "--gl-iters", "2", "--plot"]
    )
    assert code == 0
    notices = [line for line in capsys.readouterr().err.splitlines() if line.startswith("notice: ")]
    assert notices == [f"notice: {stereo}: mixed 2 channels to mono, resampled from 44100 Hz to 22050 Hz"]
