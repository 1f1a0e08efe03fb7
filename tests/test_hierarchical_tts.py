"""A hierarchical ProsodyTTS: config, training step with one multiplier per latent set, checkpoint,
transfer via z_p or z_s and sampling in the style of a reference, from Python and the command line."""

from __future__ import annotations

import json

import pytest
import torch

from prosody_vae.config import ExperimentConfig
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer
from prosody_vae.prosody.hierarchical import HierarchicalCapacitronVAE
from prosody_vae.tts.model import build_model

HIERARCHICAL = {"hierarchical": True, "high_latent_dim": 2, "hierarchy_hidden_dim": 8}


def test_config_and_factory():
    config = ExperimentConfig.from_dict({"prosody": {**HIERARCHICAL, "latent_dim": 4}})
    model = build_model(config, n_symbols=10)
    assert model.hierarchical and isinstance(model.prosody, HierarchicalCapacitronVAE)
    assert model.prosody.latent_dim == 4 and model.prosody.high_latent_dim == 2
    assert not build_model(ExperimentConfig(), n_symbols=10).hierarchical
    with pytest.raises(ValueError, match="prior: standard"):
        ExperimentConfig.from_dict({"prosody": {"hierarchical": True, "prior": "associative"}})
    with pytest.raises(ValueError, match="high_capacity"):
        ExperimentConfig.from_dict({"capacity": {"high_capacity": -1.0}})


@pytest.fixture(scope="module")
def hierarchical_checkpoint(tiny_prepared, tmp_path_factory):
    from conftest import train_tiny

    root = tmp_path_factory.mktemp("hierarchical_model")
    return train_tiny(
        root, tiny_prepared, steps=2, prosody=HIERARCHICAL, capacity={"capacity": 5.0, "high_capacity": 2.0}
    )


def test_training_logs_both_rates_and_multipliers(hierarchical_checkpoint):
    log = hierarchical_checkpoint.parents[1] / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r for r in records if "kl_high" in r]
    assert steps, "the hierarchical run logs kl_high"
    for record in steps:
        assert record["kl_high"] > 0 and record["kl"] > 0
        assert record["beta_high"] > 0 and record["beta"] > 0
        assert record["capacity_high"] == 2.0 and record["capacity"] == 5.0


def test_transfer_via_zp_and_zs_and_style_sampling(hierarchical_checkpoint, tiny_prepared):
    synth = Synthesizer.from_checkpoint(hierarchical_checkpoint)
    assert synth.hierarchical
    item = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    embedded = synth.embed(item.audio, reference_text=item.text)
    via_zp = synth.transfer("Hello.", item.audio, reference_text=item.text)
    torch.testing.assert_close(via_zp.z, embedded.z[0])  # deterministic: the posterior mean of z_p
    torch.manual_seed(0)
    via_zs = synth.transfer("Hello.", item.audio, reference_text=item.text, via="zs")
    assert not torch.allclose(via_zs.z, via_zp.z)  # z_p sampled from p(z_p | z_s)
    at_mean = synth.transfer("Hello.", item.audio, reference_text=item.text, via="zs", temperature=0.0)
    torch.testing.assert_close(at_mean.z, synth.model.prosody.conditional_prior_of(embedded.z_s).mean[0])
    styled = synth.sample("Hello.", 3, style_from=item.audio, style_text=item.text)
    assert len(styled) == 3 and not torch.allclose(styled[0].z, styled[1].z)
    with pytest.raises(ValueError, match="via"):
        synth.transfer("Hello.", item.audio, reference_text=item.text, via="z")


def test_flat_models_refuse_the_hierarchical_options(tiny_checkpoint, tiny_prepared):
    synth = Synthesizer.from_checkpoint(tiny_checkpoint)
    item = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    with pytest.raises(ValueError, match="hierarchical"):
        synth.transfer("Hello.", item.audio, reference_text=item.text, via="zs")
    with pytest.raises(ValueError, match="hierarchical"):
        synth.sample("Hello.", 2, style_from=item.audio, style_text=item.text)


def test_commands(hierarchical_checkpoint, tiny_prepared, tmp_path):
    from prosody_vae.cli import main

    item = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    common = ["--checkpoint", str(hierarchical_checkpoint), "--text", "Hello.", "--threads", "1", "-q"]
    out = tmp_path / "zs.wav"
    argv = ["transfer", *common, "--reference", str(item.audio), "--reference-text", item.text]
    assert main([*argv, "--via", "zs", "--out", str(out)]) == 0
    assert out.is_file()
    argv = ["sample", *common, "--n", "2", "--style-from", str(item.audio), "--reference-text", item.text]
    assert main([*argv, "--out", str(tmp_path / "style")]) == 0
    assert len(list((tmp_path / "style").glob("style_*.wav"))) == 2


def test_flat_model_refuses_via_zs_on_the_command_line(tiny_checkpoint, tiny_prepared, tmp_path):
    from prosody_vae.cli import main

    item = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    argv = ["transfer", "--checkpoint", str(tiny_checkpoint), "--text", "Hello.", "--threads", "1", "-q"]
    argv += ["--reference", str(item.audio), "--reference-text", item.text, "--via", "zs"]
    assert main([*argv, "--out", str(tmp_path / "x.wav")]) == 2  # one-line error, exit status 2
    assert not (tmp_path / "x.wav").exists()


def test_a_flat_model_starts_a_hierarchical_one(tiny_checkpoint, tiny_prepared, tmp_path):
    """train.init_from a flat checkpoint: its posterior becomes q(z_p | x), its beta the low-level one."""
    from conftest import train_tiny

    from prosody_vae.checkpoint import load_checkpoint

    flat = load_checkpoint(tiny_checkpoint)["training_module"]
    started = train_tiny(
        tmp_path,
        tiny_prepared,
        steps=1,
        prosody=HIERARCHICAL,
        capacity={"capacity": 5.0, "high_capacity": 2.0, "beta_init": 3.0},
        train={
            "init_from": str(tiny_checkpoint),
            "log_every": 1,
            "valid_every": 1000,
            "checkpoint_every": 1000,
        },
        optim={"lr": 1e-9, "lr_min": 1e-9, "warmup_steps": 1},  # one step that moves (almost) nothing
    )
    state = load_checkpoint(started)["training_module"]
    # weights only: batch norm's running statistics move with any training step, whatever the lr
    carried = [
        k for k in flat if k.startswith("model.prosody.") and "running_" not in k and "num_batches" not in k
    ]
    assert carried
    for key in carried:
        wrapped = "model.prosody.encoder." + key.removeprefix("model.prosody.")
        torch.testing.assert_close(state[wrapped], flat[key], atol=1e-5, rtol=0)
    softplus = torch.nn.functional.softplus
    assert softplus(state["objective.terms.low.beta_raw"]).item() == pytest.approx(
        softplus(flat["objective.beta_raw"]).item(), rel=0.05
    )
    assert softplus(state["objective.terms.high.beta_raw"]).item() == pytest.approx(3.0, rel=0.05)
