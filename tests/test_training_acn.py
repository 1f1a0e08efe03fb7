"""Training with the associative (ACN) prior, end to end on the tiny corpus.

The prior never conditions an item on itself; the bank is refreshed on its schedule; KL tracks C;
a resumed run continues exactly, code bank included; and a trained model samples near a reference
and walks through neighbourhoods.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_MODEL

from prosody_vae.checkpoint import load_checkpoint, save_checkpoint
from prosody_vae.config import ExperimentConfig
from prosody_vae.prosody.priors import CodeBank
from prosody_vae.training.loop import train

pytestmark = pytest.mark.slow

BANK = "model.prosody.prior.bank.codes"


def _config(root: Path, **sections) -> ExperimentConfig:
    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["data"] = {"root": str(root), "batch_size": 4}
    raw["prosody"]["prior"] = "associative"
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return ExperimentConfig.from_dict(yaml.safe_load(yaml.safe_dump(raw)))


def _records(out: Path) -> list[dict]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if '"lagrangian"' in line and "valid/" not in line]


@pytest.fixture(scope="module")
def acn_run(tiny_prepared, tmp_path_factory):
    """6 uninterrupted steps (two epochs of 3 batches): the reference for resume, and a checkpoint."""
    out = tmp_path_factory.mktemp("acn_straight")
    torch.set_num_threads(1)
    result = train(_config(tiny_prepared, train={"steps": 6}), out, progress=False)
    return out, result


def test_the_prior_never_conditions_an_item_on_itself(tiny_prepared, tmp_path, monkeypatch):
    # K = 1: the look-up returns the single nearest code, which would be the item's own (distance 0
    # to its stored code) at every draw if the exclusion failed.
    draws = []
    original = CodeBank.random_neighbour

    def recording(self, codes, ids, k, **kwargs):
        rows = original(self, codes, ids, k, **kwargs)
        draws.append((ids.clone(), rows.clone(), self.filled[rows].clone()))
        return rows

    monkeypatch.setattr(CodeBank, "random_neighbour", recording)
    config = _config(tiny_prepared, prosody={"acn_neighbours": 1, "acn_refresh_every": 2}, train={"steps": 5})
    train(config, tmp_path, progress=False)
    assert len(draws) == 5  # one look-up per step (validation uses the held-out rule, not this)
    ids = torch.cat([d[0] for d in draws])
    rows = torch.cat([d[1] for d in draws])
    assert (ids >= 0).all() and (rows != ids).all()
    assert torch.cat([d[2] for d in draws]).all()  # only stored codes are ever used as context
    # refreshed every 2 steps (before steps 1, 3, 5), the bank full each time and at every step
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    refreshes = [r for r in lines if "acn/refresh_seconds" in r]
    assert [r["step"] for r in refreshes] == [0, 2, 4]
    assert {r["acn/bank_codes"] for r in refreshes} == {13}
    assert all(r["bank_filled"] == 1.0 for r in _records(tmp_path))


def test_kl_tracks_the_capacity(tiny_prepared, tmp_path):
    # C = 5 nats; beta starts at 3 with Adam at 0.1 (a faster multiplier than the recipes', so that
    # the damped oscillation of the dual ascent settles within the test's budget; ~25 s here).
    capacity, steps = 5.0, 120
    config = _config(
        tiny_prepared,
        capacity={"capacity": capacity, "beta_init": 3.0, "beta_lr": 0.1},
        train={"steps": steps},
    )
    train(config, tmp_path, progress=False)
    records = _records(tmp_path)
    kl = np.array([r["kl"] for r in records])
    beta = np.array([r["beta"] for r in records])
    assert kl[:3].max() < capacity / 2  # starts well below C ...
    assert beta[:10].min() < 3.0  # ... so the multiplier first falls, letting the KL grow
    late = kl[-40:].mean()
    assert abs(late - capacity) < 0.3 * capacity, f"mean KL over the last 40 steps {late:.2f}, C = {capacity}"
    assert beta.max() > beta[:10].min()  # and rises again once the KL overshoots


def test_resume_continues_exactly_with_the_code_bank(acn_run, tiny_prepared, tmp_path):
    straight_dir, straight = acn_run
    config = _config(tiny_prepared, train={"steps": 6})
    # Stop after step 4: mid-epoch, so the resumed run must rely on the saved bank (the loop refreshes
    # only at an epoch start, or when the bank is empty).
    assert train(config, tmp_path, progress=False, max_steps=4).step == 4
    saved = load_checkpoint(tmp_path / "checkpoints" / "step_4.pt")["training_module"]
    assert bool(saved["model.prosody.prior.bank.filled"].all())
    resumed = train(config, tmp_path, resume=True, progress=False)
    assert resumed.step == 6
    a, b = _records(straight_dir), _records(tmp_path)
    assert [r["step"] for r in b] == list(range(1, 7))
    for ra, rb in zip(a, b, strict=True):
        for key in ("lagrangian", "kl", "beta", "postnet_l1", "grad_norm"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-6), (ra["step"], key)
    end_a = load_checkpoint(straight.checkpoint)["training_module"]
    end_b = load_checkpoint(resumed.checkpoint)["training_module"]
    assert torch.equal(end_a[BANK], end_b[BANK])
    assert torch.equal(end_a["objective.beta_raw"], end_b["objective.beta_raw"])
    # the bank moved with training (per-step writes and the epoch-2 refresh)
    assert not torch.equal(saved[BANK], end_b[BANK])


def _reference(tiny_prepared: Path):
    from prosody_vae.data.manifest import read_manifest

    return read_manifest(tiny_prepared / "splits" / "valid.jsonl")[0]  # held out: not in the bank


def test_sample_near_and_walk_from_a_trained_model(acn_run, tiny_prepared):
    from prosody_vae.inference.synthesizer import Synthesizer

    _, result = acn_run
    synth = Synthesizer.from_checkpoint(result.checkpoint)
    prior = synth.model.prosody.prior
    assert prior.bank.num_filled == 13  # the bank came with the checkpoint
    ref = _reference(tiny_prepared)
    torch.manual_seed(0)
    near = synth.sample_near("The boat is red.", ref.audio, 3, reference_text=ref.text)
    assert len(near) == 3 and all(torch.isfinite(s.mel).all() and s.mel.shape[0] > 0 for s in near)
    code = synth.embed(ref.audio, reference_text=ref.text).mean[0]
    centre = prior(code)[0]  # the mean of p(z | c = the reference's code)
    assert not torch.equal(near[0].z, near[1].z)  # draws, not copies
    still = synth.sample_near("The boat is red.", ref.audio, 2, temperature=0.0, reference_text=ref.text)
    assert torch.allclose(still[0].z, centre) and torch.allclose(still[1].z, centre)
    walk = synth.walk("The boat is red.", 3, reference=ref.audio, reference_text=ref.text)
    assert len(walk) == 3 and all(torch.isfinite(s.mel).all() for s in walk)
    assert len({tuple(s.z.tolist()) for s in walk}) == 3
    assert len(synth.walk("The boat is red.", 2)) == 2  # from a random training code


def test_near_on_a_standard_prior_model_is_a_clear_error(acn_run, tiny_prepared, tmp_path, capsys):
    from prosody_vae.cli import main

    _, result = acn_run
    # The same weights as a standard-prior checkpoint: the N(0, I) prior has no state of its own.
    state = load_checkpoint(result.checkpoint)
    state["config"]["prosody"]["prior"] = "standard"
    state["training_module"] = {
        k: v for k, v in state["training_module"].items() if ".prosody.prior." not in k
    }
    standard = save_checkpoint(tmp_path / "standard.pt", state)
    ref = _reference(tiny_prepared)
    common = ["--text", "The boat is red.", "--out", str(tmp_path / "out"), "--gl-iters", "2"]
    near = ["--near", ref.audio, "--reference-text", ref.text]
    for extra in (near, ["--walk", "2"]):
        assert main(["sample", "--checkpoint", str(standard), *common, *extra]) == 2
        assert "associative prior" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before writing anything
    # the same options on the ACN model write their wavs
    acn = ["sample", "--checkpoint", str(result.checkpoint), *common, *near, "--n", "2"]
    assert main(acn) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["near_00.wav", "near_01.wav"]


def test_diagnostics_of_an_acn_model_use_the_neighbour_context(acn_run):
    from prosody_vae.evaluation import model_diagnostics

    out, _ = acn_run
    checkpoint = sorted((out / "checkpoints").glob("step_*.pt"))[-1]
    diag = model_diagnostics(checkpoint, split="train", max_items=6, batch_size=6, bound_ks=(1, 4), seed=3)
    assert diag.n_items == 6
    assert sum(diag.kl_per_dim) == pytest.approx(diag.kl_total.mean, rel=1e-5)
    assert all(k >= 0 for k in diag.kl_per_dim)
    bounds = diag.bounds
    assert bounds[4].bound.mean >= bounds[1].bound.mean - 1e-3  # IWAE-4 at least as tight as the ELBO
