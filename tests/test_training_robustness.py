"""Training never destroys a run and fails in one line: the experiment folder, signals, kills, a full
disk, a changed model and impossible options."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest
import torch

from prosody_vae.checkpoint import CheckpointError, load_checkpoint
from prosody_vae.cli import main
from prosody_vae.config import load_config
from prosody_vae.training.folder import ExperimentExistsError, trim_log
from prosody_vae.training.loop import train

pytestmark = pytest.mark.slow


def _cli(config: Path, out: Path, *extra: str) -> int:
    return main(["-q", "train", "--config", str(config), "--out", str(out), "--threads", "1", *extra])


def _one_error_line(capsys) -> str:
    """The one ``error:`` line on stderr (progress notes such as ``[valid @ 4]`` may precede it)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _train_steps(path: Path) -> list[int]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["step"] for r in records if "lagrangian" in r and not any(k.startswith("valid/") for k in r)]


def test_a_new_run_never_replaces_one_and_force_moves_it_aside(tiny_config_file, tmp_path, capsys):
    config = tiny_config_file(train={"steps": 2, "valid_every": 2})
    out = tmp_path / "exp"
    assert _cli(config, out, "--max-steps", "2") == 0
    best = out / "checkpoints" / "best.pt"
    saved = {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()}
    log = (out / "log.jsonl").read_text()
    capsys.readouterr()

    # without --resume or --force: refused before anything is touched (it used to overwrite best.pt,
    # prune the old checkpoints and append a second run to log.jsonl)
    assert _cli(config, out, "--max-steps", "1") == 2
    line = _one_error_line(capsys)
    assert str(out) in line and "--resume" in line and "--force" in line
    assert {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()} == saved
    assert (out / "log.jsonl").read_text() == log
    with pytest.raises(ExperimentExistsError):
        train(load_config(config), out, progress=False)

    # --force: the old run is moved, whole, beside the folder; the new one starts empty
    assert _cli(config, out, "--max-steps", "1", "--force") == 0
    aside = tmp_path / "exp.old-1"
    assert {p.name: p.read_bytes() for p in (aside / "checkpoints").iterdir()} == saved
    assert (aside / "log.jsonl").read_text() == log
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "step_1.pt"]
    assert best.read_bytes() != saved["best.pt"]
    assert _train_steps(out / "log.jsonl") == [1]
    with pytest.raises(SystemExit) as usage:  # one or the other, as argparse says
        _cli(config, out, "--resume", "--force")
    assert usage.value.code == 2


def test_sigterm_checkpoints_then_exits_143(tiny_config_file, tmp_path, monkeypatch, capsys):
    from prosody_vae.training.monitor import TrainingMonitor

    original = TrainingMonitor.log_step

    def log_step_then_signal(self, step, *args, **kwargs):
        original(self, step, *args, **kwargs)
        if step == 2:  # a real signal, delivered mid-run, as a cluster scheduler sends it
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(TrainingMonitor, "log_step", log_step_then_signal)
    out = tmp_path / "exp"
    assert _cli(tiny_config_file(train={"steps": 500}), out) == 128 + signal.SIGTERM
    assert load_checkpoint(out / "checkpoints" / "step_2.pt")["step"] == 2
    assert "interrupted at step 2" in capsys.readouterr().out


def test_resume_after_kill_9_removes_partial_files_and_logs_each_step_once(tiny_config_file, tmp_path):
    config = load_config(tiny_config_file(train={"steps": 4, "checkpoint_every": 2, "valid_every": 1000}))
    out = tmp_path / "exp"
    train(config, out, progress=False)
    # As a kill -9 after step 4's log line, before its checkpoint, in the middle of writing another
    # checkpoint and of a log line: step_4.pt never happened, a temporary and a torn line remain.
    checkpoints = out / "checkpoints"
    for name in ("step_4.pt", "best.pt"):
        (checkpoints / name).unlink()
    partial = [checkpoints / ".step_4.pt.x1y2z3.tmp.pt", out / ".config.yaml.abc.tmp.yaml"]
    for path in partial:
        path.write_bytes(b"PK\x03\x04 half a zip")
    with (out / "log.jsonl").open("a") as handle:
        handle.write('{"step": 5, "lagrangian": 1.')
    assert _train_steps_tolerant(out / "log.jsonl") == [1, 2, 3, 4]

    resumed = train(config, out, resume=True, progress=False)
    assert resumed.step == 4
    assert not any(path.exists() for path in partial)
    assert _train_steps(out / "log.jsonl") == [1, 2, 3, 4]  # steps 3 and 4 once, from the resumed run


def _train_steps_tolerant(path: Path) -> list[int]:
    steps = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "lagrangian" in record:
            steps.append(record["step"])
    return steps


def test_trim_log_keeps_the_resumed_step_and_drops_its_code_bank_refresh(tmp_path):
    log = tmp_path / "log.jsonl"
    records = [
        {"step": 1, "lagrangian": 1.0},
        {"step": 2, "lagrangian": 1.0},
        {"step": 2, "valid/lagrangian": 1.0},
        {"step": 2, "acn/refresh_seconds": 0.1},  # logged after the checkpoint at 2: redone on resume
        {"step": 3, "lagrangian": 1.0},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 4, "lagr')
    assert trim_log(log, 2) == 3
    assert [json.loads(line) for line in log.read_text().splitlines()] == records[:3]
    assert trim_log(log, 2) == 0


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_max_steps_below_one_is_refused(tiny_config_file, tmp_path, capsys, steps):
    out = tmp_path / "exp"
    assert _cli(tiny_config_file(), out, "--max-steps", steps) == 2
    assert f"--max-steps must be >= 1, got {steps}" in _one_error_line(capsys)
    assert not out.exists()
    with pytest.raises(ValueError, match="max_steps"):
        train(load_config(tiny_config_file()), out, max_steps=int(steps), progress=False)


def test_resuming_with_a_changed_model_is_one_line_naming_the_checkpoint(tiny_config_file, tmp_path, capsys):
    config = tiny_config_file(train={"steps": 1})
    out = tmp_path / "exp"
    assert _cli(config, out) == 0
    capsys.readouterr()
    assert _cli(config, out, "--resume", "--set", "backbone.decoder_dim=32", "--set", "train.steps=2") == 2
    line = _one_error_line(capsys)
    assert "step_1.pt" in line and "size mismatch" in line and "config it was trained with" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(tiny_config_file, tmp_path, capsys):
    assert _cli(tiny_config_file(), tmp_path / "exp", "--device", "cuda") == 2
    assert "'cuda' requested but CUDA is not available" in _one_error_line(capsys)
    assert _cli(tiny_config_file(), tmp_path / "exp", "--device", "banana") == 2
    assert "'banana' is not a torch device" in _one_error_line(capsys)


def test_no_space_left_is_one_line_and_the_last_checkpoint_survives(
    tiny_config_file, tmp_path, capsys, monkeypatch
):
    import prosody_vae.checkpoint as checkpoint_module

    real_save = torch.save
    calls = []

    def save_then_fill_the_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 1:
            return real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(b"PK\x03\x04 only the start")  # a few bytes reach the disk, then ENOSPC
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.torch, "save", save_then_fill_the_disk)
    config = tiny_config_file(train={"steps": 4, "checkpoint_every": 2, "valid_every": 1000})
    out = tmp_path / "exp"
    assert _cli(config, out) == 2
    line = _one_error_line(capsys)
    assert "step_4.pt" in line and "No space left on device" in line
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert load_checkpoint(out / "checkpoints" / "step_2.pt")["step"] == 2  # intact
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_2.pt"]


class _Foreign:
    """Pickled by reference: ``weights_only`` loading refuses it, with a message of many lines."""


def test_an_unloadable_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"format_version": 1, "thing": _Foreign()}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_data_with_a_text_the_tokenizer_cannot_read_is_refused_before_the_first_step(
    tiny_prepared, tiny_config_file, tmp_path, capsys
):
    """A corpus prepared before ``prepare`` checked tokenisation: the run used to die when the bad
    item's batch came, and at the same batch on every resume."""
    import shutil

    from prosody_vae.data.manifest import read_manifest, write_manifest

    data = tmp_path / "data"
    shutil.copytree(tiny_prepared, data)
    train_split = data / "splits" / "train.jsonl"
    utterances = read_manifest(train_split)
    utterances[-1].text = "Привет, мир."
    write_manifest(train_split, utterances)
    out = tmp_path / "exp"
    assert _cli(tiny_config_file(data={"root": str(data), "batch_size": 4}), out) == 2
    line = _one_error_line(capsys)
    assert utterances[-1].id in line and "Cyrillic" in line and "prosody-vae prepare" in line
    assert not (out / "checkpoints").exists()
