"""Training loop behaviour: exact resume, atomic checkpoints, logs, interrupt handling."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from prosody_vae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from prosody_vae.config import load_config
from prosody_vae.training.loop import train

pytestmark = pytest.mark.slow


def _records(path):
    return [
        json.loads(line)
        for line in path.read_text().splitlines()
        if "lagrangian" in line and "valid" not in line
    ]


def test_resume_continues_exactly(tiny_config_file, tmp_path):
    config = load_config(tiny_config_file(train={"steps": 6, "log_every": 1, "valid_every": 1000}))
    torch.set_num_threads(1)
    straight = train(config, tmp_path / "straight", progress=False)
    assert straight.step == 6
    first = train(config, tmp_path / "split", progress=False, max_steps=3)
    assert first.step == 3
    resumed = train(config, tmp_path / "split", resume=True, progress=False)
    assert resumed.step == 6
    a = _records(tmp_path / "straight" / "log.jsonl")
    b = _records(tmp_path / "split" / "log.jsonl")
    assert [r["step"] for r in b] == list(range(1, 7))
    for ra, rb in zip(a, b, strict=True):
        for key in ("lagrangian", "kl", "beta", "postnet_l1", "grad_norm"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-6), (ra["step"], key)
    # the multiplier moved and both runs agree on where it is
    end_a = load_checkpoint(straight.checkpoint)["training_module"]["objective.beta_raw"]
    end_b = load_checkpoint(resumed.checkpoint)["training_module"]["objective.beta_raw"]
    assert torch.equal(end_a, end_b)


def test_checkpoint_contents_and_safe_load(tiny_config_file, tmp_path):
    config = load_config(tiny_config_file(train={"steps": 2}))
    result = train(config, tmp_path / "exp", progress=False)
    state = load_checkpoint(result.checkpoint)  # weights_only=True inside
    assert state["step"] == 2
    assert state["config"]["capacity"]["capacity"] == 5.0
    assert state["tokenizer"]["symbols"] and state["speakers"]
    assert (tmp_path / "exp" / "config.yaml").is_file()
    assert not list((tmp_path / "exp" / "checkpoints").glob("*.tmp"))


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"step": 1, "w": torch.ones(1000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="c.pt"):
        load_checkpoint(path)


def test_sigterm_writes_a_checkpoint_and_stops(tiny_config_file, tmp_path, monkeypatch):
    from prosody_vae.training.monitor import TrainingMonitor

    config = load_config(tiny_config_file(train={"steps": 500}))
    original = TrainingMonitor.log_step

    def log_step_then_signal(self, step, *args, **kwargs):
        original(self, step, *args, **kwargs)
        if step == 2:  # a real signal, delivered mid-run, as from `kill` or a cluster scheduler
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(TrainingMonitor, "log_step", log_step_then_signal)
    result = train(config, tmp_path / "exp", progress=False)
    assert result.interrupted
    assert result.step == 2
    assert load_checkpoint(result.checkpoint)["step"] == 2
    resumed = train(
        load_config(tiny_config_file(train={"steps": 4})), tmp_path / "exp", resume=True, progress=False
    )
    assert resumed.step == 4 and not resumed.interrupted


def test_nonfinite_updates_are_skipped_then_training_stops_with_a_checkpoint(
    tiny_config_file, tmp_path, monkeypatch
):
    import prosody_vae.training.objective as losses_module
    from prosody_vae.training.loop import TrainingError

    config = load_config(tiny_config_file(train={"steps": 50, "max_nonfinite": 3}))
    real_l1 = losses_module.masked_l1
    monkeypatch.setattr(losses_module, "masked_l1", lambda *a: real_l1(*a) * float("nan"))
    with pytest.raises(TrainingError, match="3 non-finite"):
        train(config, tmp_path / "exp", progress=False)
    state = load_checkpoint(tmp_path / "exp" / "checkpoints" / "step_0.pt")
    assert state["step"] == 0  # no update was applied, and the model weights stayed finite
    assert all(torch.isfinite(v).all() for v in state["training_module"].values() if v.is_floating_point())


def test_validation_logs_active_units_and_kl_per_dimension(tiny_config_file, tmp_path):
    config = load_config(tiny_config_file(train={"steps": 2, "valid_every": 2}))
    train(config, tmp_path / "exp", progress=False)
    records = [json.loads(line) for line in (tmp_path / "exp" / "log.jsonl").read_text().splitlines()]
    valid = [r for r in records if "valid/active_units" in r]
    assert valid and valid[-1]["step"] == 2
    latent_dim = config.prosody.latent_dim
    assert 0 <= valid[-1]["valid/active_units"] <= latent_dim
    per_dim = [r for r in records if any(k.startswith("valid_kl_per_dim/") for k in r)][-1]
    kl = [per_dim[f"valid_kl_per_dim/z{i:02d}"] for i in range(latent_dim)]
    # the per-dimension KL adds up to the validation KL (both averaged over the same utterances)
    assert sum(kl) == pytest.approx(valid[-1]["valid/kl"], rel=1e-4)
