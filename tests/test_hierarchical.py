"""Hierarchical capacity: the two-latent module, the objective with one multiplier per KL, the dual
optimiser with named multipliers, the bound and active units per latent set, and the toy task on which
both KLs settle at their capacities.

The toy task mirrors tests/test_capacitron_convergence.py (same data: a "pitch" line whose height,
slope and level vary per item): the decoder reads z_p, and the objective holds
KL(q(z_s|z_p) || N(0, I)) at C_s and KL(q(z_p|x) || p(z_p|z_s)) at C_p.

Set PROSODY_VAE_TEST_ARTIFACTS=<dir> to keep a plot of both KLs and both multipliers over the steps.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from prosody_vae.prosody.bounds import active_units_per_set, hierarchical_iwae_bound
from prosody_vae.prosody.capacity import MultiCapacityObjective
from prosody_vae.prosody.dual_optimizer import RECOMMENDED_BETA_LR, DualOptimizer, main_parameters
from prosody_vae.prosody.hierarchical import (
    HierarchicalCapacitronVAE,
    HierarchicalOutput,
    HierarchicalPosterior,
    gaussian_kl,
)
from prosody_vae.prosody.likelihood import masked_l1
from prosody_vae.prosody.priors import AssociativePrior, StandardNormalPrior
from prosody_vae.prosody.vae import CapacitronVAE

N_MELS, D_P, D_S, E, P = 16, 6, 3, 10, 3
DOC = Path(__file__).resolve().parents[1] / "docs" / "hierarchical.md"


def _vae(*, high_latent_dim: int = D_S, **kwargs) -> HierarchicalCapacitronVAE:
    torch.manual_seed(0)
    defaults = dict(
        n_mels=N_MELS,
        latent_dim=D_P,
        reference_encoder=dict(channels=(4, 8), rnn_size=12),
        text_embedding_dim=E,
        text_summary_dim=7,
        speaker_dim=P,
        posterior_hidden_dim=16,
    )
    encoder = CapacitronVAE(**{**defaults, **kwargs})
    return HierarchicalCapacitronVAE(encoder, high_latent_dim=high_latent_dim, hierarchy_hidden_dim=12)


def _inputs(batch: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([24, 15, 9, 20][:batch])
    text_lengths = torch.tensor([8, 3, 6, 1][:batch])
    mel = torch.randn(batch, 24, N_MELS, generator=gen)
    text = torch.randn(batch, 8, E, generator=gen)
    speaker = torch.randn(batch, P, generator=gen)
    return mel, lengths, text, text_lengths, speaker


def _conditioning(text, text_lengths, speaker) -> dict[str, Tensor]:
    return dict(text=text, text_lengths=text_lengths, speaker=speaker)


# --- the module ------------------------------------------------------------------------------------


def test_gaussian_kl_matches_torch_distributions_and_vanishes_on_equal_arguments():
    gen = torch.Generator().manual_seed(0)
    mean_q, mean_p = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    std_q, std_p = torch.rand(4, 5, generator=gen) + 0.1, torch.rand(4, 5, generator=gen) + 0.1
    expected = kl_divergence(Normal(mean_q, std_q), Normal(mean_p, std_p))
    torch.testing.assert_close(gaussian_kl(mean_q, std_q, mean_p, std_p), expected)
    assert torch.equal(gaussian_kl(mean_q, std_q, mean_q, std_q), torch.zeros(4, 5))


def test_encode_reports_both_rates_in_closed_form():
    vae = _vae().train()
    mel, lengths, *conditioning = _inputs()
    torch.manual_seed(1)
    out = vae.encode(mel, lengths, **_conditioning(*conditioning))
    assert isinstance(out, HierarchicalOutput)
    assert out.z.shape == out.mean.shape == out.std.shape == out.kl_p_per_dim.shape == (3, D_P)
    assert out.z_s.shape == out.mean_s.shape == out.std_s.shape == out.kl_s_per_dim.shape == (3, D_S)
    torch.testing.assert_close(out.kl, out.kl_s + out.kl_p)
    torch.testing.assert_close(out.kl_s, out.kl_s_per_dim.sum(-1))
    torch.testing.assert_close(out.kl_p, out.kl_p_per_dim.sum(-1))
    # R_s: q(z_s | z_p) at the z_p the decoder reads, against N(0, I).
    high = vae.high_posterior_of(out.z)
    torch.testing.assert_close((out.mean_s, out.std_s), (high.mean, high.std))
    torch.testing.assert_close(out.kl_s_per_dim, StandardNormalPrior(D_S).kl(out.mean_s, out.std_s))
    # R_p: q(z_p | x) against the learned p(z_p | z_s) at the drawn z_s.
    prior = vae.conditional_prior_of(out.z_s)
    expected = kl_divergence(Normal(out.mean, out.std), Normal(prior.mean, prior.std))
    torch.testing.assert_close(out.kl_p_per_dim, expected)
    assert (out.kl_p_per_dim >= 0).all() and (out.kl_s_per_dim >= 0).all()
    assert (out.kl_s > 0).all() and (out.kl_p > 0).all()  # not a trivial posterior equal to the prior


def test_eval_mode_takes_means_and_training_mode_samples():
    vae = _vae()
    mel, lengths, *conditioning = _inputs()
    kwargs = _conditioning(*conditioning)
    vae.eval()
    out = vae.encode(mel, lengths, **kwargs)
    assert torch.equal(out.z, out.mean) and torch.equal(out.z_s, out.mean_s)
    torch.testing.assert_close(out.mean_s, vae.high_posterior_of(out.mean).mean)
    again = vae.encode(mel, lengths, **kwargs)
    assert torch.equal(again.z, out.z) and torch.equal(again.kl, out.kl)
    sampled = vae.encode(mel, lengths, sample=True, **kwargs)
    assert not torch.allclose(sampled.z, sampled.mean) and not torch.allclose(sampled.z_s, sampled.mean_s)
    vae.train()
    trained = vae(mel, lengths, **kwargs)  # forward is encode
    assert not torch.allclose(trained.z, trained.mean)
    assert torch.equal(vae.encode(mel, lengths, sample=False, **kwargs).z, trained.mean)


def test_eval_output_is_invariant_to_padding_and_batch_companions():
    vae = _vae()
    mel, lengths, text, text_lengths, speaker = _inputs(batch=4)
    vae.train()
    vae.encode(mel, lengths, **_conditioning(text, text_lengths, speaker))  # move the BN statistics
    vae.eval()
    mel[1, 15:] = float("nan")
    mel[2, 9:] = 1e5
    text[2, 6:] = float("nan")
    with torch.no_grad():
        batched = vae.encode(mel, lengths, **_conditioning(text, text_lengths, speaker))
        for i in range(4):
            frames, tokens = int(lengths[i]), int(text_lengths[i])
            alone = vae.encode(
                mel[i : i + 1, :frames],
                lengths[i : i + 1],
                text=text[i : i + 1, :tokens],
                text_lengths=text_lengths[i : i + 1],
                speaker=speaker[i : i + 1],
            )
            for name in ("z", "std", "z_s", "std_s", "kl_s", "kl_p"):
                torch.testing.assert_close(
                    getattr(alone, name)[0], getattr(batched, name)[i], rtol=1e-5, atol=1e-5, msg=name
                )


def test_eval_output_depends_on_the_valid_frames():
    """Guard against a vacuous invariance: a change inside the valid frames moves both latents."""
    vae = _vae(text_embedding_dim=0, speaker_dim=0).eval()
    mel, lengths, *_ = _inputs(batch=1)
    with torch.no_grad():
        before = vae.encode(mel, lengths)
        mel[0, int(lengths[0]) - 1] += 3.0
        after = vae.encode(mel, lengths)
    assert (before.z - after.z).abs().max() > 1e-4
    assert (before.z_s - after.z_s).abs().max() > 1e-5


@pytest.mark.parametrize("train", [True, False])
def test_batch_size_one(train):
    vae = _vae().train(train)
    mel, lengths, *conditioning = _inputs(batch=1)
    out = vae.encode(mel, lengths, **_conditioning(*conditioning))
    assert out.z.shape == (1, D_P) and out.z_s.shape == (1, D_S) and out.kl.shape == (1,)
    for name in ("z", "z_s", "kl_s", "kl_p"):
        assert torch.isfinite(getattr(out, name)).all(), name
    if train:
        (out.kl.sum() + out.z.square().sum()).backward()
        for name, param in vae.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("fill", [math.log(1e-5), 1e4, -1e4])
def test_extreme_inputs_give_finite_rates(fill):
    vae = _vae(min_std=1e-4).train()
    mel, lengths, *conditioning = _inputs()
    out = vae.encode(torch.full_like(mel, fill), lengths, **_conditioning(*conditioning))
    for name in out._fields:
        assert torch.isfinite(getattr(out, name)).all(), name
    assert (out.std >= 1e-4).all() and (out.std_s >= 1e-4).all()


def test_the_separate_steps_compose_to_encode_with_one_encoder_pass():
    vae = _vae().eval()
    mel, lengths, *conditioning = _inputs()
    kwargs = _conditioning(*conditioning)
    out = vae.encode(mel, lengths, **kwargs)
    calls = []
    vae.encoder.reference_encoder.register_forward_hook(lambda *_: calls.append(1))
    posterior = vae.posterior_of(mel, lengths, **kwargs)
    assert isinstance(posterior, HierarchicalPosterior) and len(calls) == 1
    divergence = vae.kl(posterior)
    assert len(calls) == 1  # the rates never run the encoder
    torch.testing.assert_close(divergence.kl, out.kl)
    torch.testing.assert_close(divergence.kl_p_per_dim, out.kl_p_per_dim)
    assert torch.equal(vae.latent(posterior), posterior.z)
    torch.testing.assert_close(vae.latent(posterior), out.z)
    # A caller that runs the encoder itself (a TTS model computing the text and speaker inputs).
    low = vae.low_posterior(mel, lengths, **kwargs)
    assert len(calls) == 2
    for a, b in zip(vae.output_of(vae.hierarchy_of(low)), out, strict=True):
        torch.testing.assert_close(a, b)


def test_prior_samples_and_transfer_via_z_s():
    vae = _vae().eval()
    assert vae.sample_prior(5).shape == (5, D_P) and vae.sample_high(5).shape == (5, D_S)
    # Temperature 0: the mode of z_s (0) and then the mean of p(z_p | z_s = 0).
    mode = vae.conditional_prior_of(torch.zeros(1, D_S)).mean
    torch.testing.assert_close(vae.sample_prior(3, temperature=0.0), mode.expand(3, -1))
    # Via z_s: one reference's high-level latent, the low-level rest sampled from p(z_p | z_s).
    mel, lengths, *conditioning = _inputs(batch=1)
    z_s = vae.encode(mel, lengths, **_conditioning(*conditioning)).z_s  # (1, D_S)
    prior = vae.conditional_prior_of(z_s)
    torch.manual_seed(0)
    renditions = vae.sample_low(z_s.expand(2000, -1))  # (2000, D_P)
    assert renditions.shape == (2000, D_P)
    torch.testing.assert_close(renditions.mean(0), prior.mean[0], atol=0.1, rtol=0.0)
    torch.testing.assert_close(renditions.std(0), prior.std[0], atol=0.05, rtol=0.05)
    torch.testing.assert_close(vae.sample_low(z_s, temperature=0.0), prior.mean)
    assert vae.to(torch.float64).sample_prior(2).dtype == torch.float64


def test_construction_errors():
    encoder = _vae().encoder
    with pytest.raises(TypeError, match="CapacitronVAE"):
        HierarchicalCapacitronVAE(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="high_latent_dim"):
        HierarchicalCapacitronVAE(encoder, high_latent_dim=0)
    with pytest.raises(ValueError, match="hierarchy_hidden_dim"):
        HierarchicalCapacitronVAE(encoder, hierarchy_hidden_dim=2.5)
    with pytest.raises(ValueError, match="AssociativePrior"):
        _vae(prior=AssociativePrior(D_P, k_neighbours=2, hidden_dim=8))


def test_absent_conditioning_is_the_encoders():
    """A reference without a transcript or from an unknown voice: the flat encoder's stand-ins serve."""
    vae = _vae(text_dropout=0.3, speaker_dropout=0.3).eval()
    assert vae.text_optional and vae.speaker_optional and vae.uses_text and vae.speaker_dim == P
    mel, lengths, *_ = _inputs()
    out = vae.encode(mel, lengths)  # neither text nor speaker
    torch.testing.assert_close(out.mean, vae.encoder.posterior_of(mel, lengths).mean)
    assert torch.isfinite(out.kl).all()
    with pytest.raises(ValueError, match="text"):
        _vae().encode(mel, lengths)


def test_call_errors_name_the_value():
    vae = _vae()
    mel, lengths, text, text_lengths, speaker = _inputs()
    with pytest.raises(ValueError, match="text summary"):
        vae.encode(mel, lengths, speaker=speaker)
    with pytest.raises(ValueError, match="no text summary"):
        _vae(text_embedding_dim=0, speaker_dim=0).encode(mel, lengths, text=text, text_lengths=text_lengths)
    with pytest.raises(ValueError, match="speaker"):
        vae.encode(mel, lengths, text=text, text_lengths=text_lengths)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        vae.sample_low(torch.zeros(2, D_S + 1))
    with pytest.raises(ValueError, match="temperature"):
        vae.sample_low(torch.zeros(2, D_S), temperature=-1.0)


def test_the_module_imports_nothing_else_of_the_package():
    code = "import sys, json\nimport prosody_vae.prosody.hierarchical\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    ours = sorted(
        m for m in loaded if m.startswith("prosody_vae.") and not m.startswith("prosody_vae.prosody")
    )
    assert ours == [] and "torch" in loaded
    assert not {m.split(".")[0] for m in loaded} & {"librosa", "soundfile", "torchaudio", "yaml", "scipy"}


# --- the objective and the dual optimiser with one multiplier per KL ------------------------------


def test_each_term_has_its_own_multiplier_signs_and_stop_gradients():
    objective = MultiCapacityObjective({"high": 5.0, "low": 10.0}, beta_init={"high": 2.0, "low": 0.5})
    assert set(objective.state_dict()) == {"terms.high.beta_raw", "terms.low.beta_raw"}
    assert objective.capacities == {"high": 5.0, "low": 10.0}
    reconstruction = torch.tensor(50.0, requires_grad=True)
    kl_high = torch.tensor(8.0, requires_grad=True)
    kl_low = torch.tensor(4.0, requires_grad=True)
    parts = objective(reconstruction, {"high": kl_high, "low": kl_low})
    torch.testing.assert_close(parts.loss, torch.tensor(50.0 + 2.0 * 3.0 + 0.5 * -6.0))
    torch.testing.assert_close(parts.beta_loss, torch.tensor(-(2.0 * 3.0) - 0.5 * -6.0))
    raw_high, raw_low = objective.lagrange_parameters()
    grads = torch.autograd.grad(
        parts.loss, [reconstruction, kl_high, kl_low, raw_high, raw_low], retain_graph=True, allow_unused=True
    )
    torch.testing.assert_close(grads[:3], (torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.5)))
    assert grads[3] is None and grads[4] is None  # theta's loss never reaches a multiplier
    grads = torch.autograd.grad(parts.beta_loss, [kl_high, kl_low, raw_high, raw_low], allow_unused=True)
    assert grads[0] is None and grads[1] is None  # the multipliers' loss never reaches theta
    torch.testing.assert_close(grads[2], -3.0 * torch.sigmoid(raw_high.detach()))  # own term only
    torch.testing.assert_close(grads[3], 6.0 * torch.sigmoid(raw_low.detach()))


def test_objective_errors():
    with pytest.raises(ValueError, match="non-empty"):
        MultiCapacityObjective({})
    with pytest.raises(ValueError, match="identifiers"):
        MultiCapacityObjective({"a.b": 1.0})
    with pytest.raises(ValueError, match="capacity"):
        MultiCapacityObjective({"high": -1.0})
    with pytest.raises(ValueError, match="beta_init"):
        MultiCapacityObjective({"high": 1.0}, beta_init={"low": 1.0})
    objective = MultiCapacityObjective({"high": 1.0, "low": 2.0})
    with pytest.raises(ValueError, match="exactly the terms"):
        objective(torch.tensor(1.0), {"high": torch.tensor(1.0)})
    with pytest.raises(TypeError):
        objective(torch.tensor(1.0), torch.tensor(1.0))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("kl_high,kl_low", [(8.0, 4.0), (2.0, 14.0), (8.0, 14.0), (2.0, 4.0)])
def test_multipliers_move_the_right_way_independently(optimizer, kl_high, kl_low):
    """KL_i > C_i raises beta_i and KL_i < C_i lowers it, whatever the other term does: beta_high's
    step is the same for any KL_low."""

    def one_step(kl_low_value: float) -> dict[str, Tensor]:
        objective = MultiCapacityObjective({"high": 5.0, "low": 10.0})
        theta = nn.Parameter(torch.tensor(1.0))
        opt = DualOptimizer(
            main_parameters=[theta],
            lagrange_parameters=objective.named_lagrange_parameters(),
            beta_optimizer=optimizer,
            beta_lr=0.1,
        )
        kl = {"high": theta * kl_high, "low": theta * kl_low_value}
        parts = objective(theta * 100.0, kl)
        assert opt.step(parts.loss, parts.beta_loss).stepped
        return objective.beta

    after = one_step(kl_low)
    assert torch.sign(after["high"] - 1.0) == math.copysign(1.0, kl_high - 5.0)
    assert torch.sign(after["low"] - 1.0) == math.copysign(1.0, kl_low - 10.0)
    assert torch.equal(one_step(kl_low + 50.0)["high"], after["high"])


class _Toy(nn.Module):
    """The hierarchical module + a linear decoder of z_p + the two-term objective."""

    def __init__(self) -> None:
        super().__init__()
        encoder = CapacitronVAE(
            n_mels=8, latent_dim=3, reference_encoder=dict(channels=(4,), rnn_size=6), posterior_hidden_dim=8
        )
        self.vae = HierarchicalCapacitronVAE(encoder, high_latent_dim=2, hierarchy_hidden_dim=8)
        self.decoder = nn.Linear(3, 8)
        self.objective = MultiCapacityObjective({"high": 1.0, "low": 2.0})

    def losses(self, mel: Tensor, lengths: Tensor):
        out = self.vae.encode(mel, lengths, sample=False)  # deterministic: comparisons are exact
        pred = self.decoder(out.z).unsqueeze(1).expand(-1, mel.shape[1], -1)  # (B, T, n_mels)
        return self.objective(masked_l1(pred, mel, lengths), {"high": out.kl_s, "low": out.kl_p})


def _toy(seed: int = 0) -> _Toy:
    torch.manual_seed(seed)
    return _Toy()


def _batch(batch: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 12, 8, generator=gen), torch.randint(5, 13, (batch,), generator=gen)


def _dual(model: _Toy, **kwargs) -> DualOptimizer:
    named = model.objective.named_lagrange_parameters()
    flat = model.objective.lagrange_parameters()
    return DualOptimizer(main_parameters=main_parameters(model, flat), lagrange_parameters=named, **kwargs)


def test_k_micro_batches_give_the_update_of_one_k_times_larger_batch_with_two_multipliers():
    small, big = _toy().eval(), _toy().eval()
    settings = dict(
        main_optimizer_factory=lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
        beta_optimizer_factory=lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9),
        max_grad_norm=50.0,
    )
    opt_small, opt_big = _dual(small, accumulation_steps=4, **settings), _dual(big, **settings)
    for update in range(2):
        mel, lengths = _batch(batch=8, seed=update)
        for i in range(4):
            info = opt_small.step(*small.losses(mel[2 * i : 2 * i + 2], lengths[2 * i : 2 * i + 2])[:2])
            assert info.stepped == (i == 3)
        opt_big.step(*big.losses(mel, lengths)[:2])
    for (name, a), b in zip(small.state_dict().items(), big.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(small.objective.beta["high"], _toy().objective.beta["high"])  # both moved
    assert not torch.equal(small.objective.beta["low"], _toy().objective.beta["low"])


def test_named_multipliers_round_trip_and_per_name_learning_rates(tmp_path):
    def build(seed):
        model = _toy(seed)
        return model, _dual(model, beta_optimizer="adam", beta_lr={"high": RECOMMENDED_BETA_LR, "low": 0.01})

    model, opt = build(0)
    assert opt.multiplier_names == ["high", "low"]
    assert [group["lr"] for group in opt.beta.param_groups] == [RECOMMENDED_BETA_LR, 0.01]
    for seed in range(3):
        opt.step(*model.losses(*_batch(seed=seed))[:2])
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert set(state["optimizer"]) == {"main", "beta", "scaler", "micro_step"}
    resumed, resumed_opt = build(1)
    resumed.load_state_dict(state["model"])
    resumed_opt.load_state_dict(state["optimizer"])
    for seed in (3, 4):
        opt.step(*model.losses(*_batch(seed=seed))[:2])
        resumed_opt.step(*resumed.losses(*_batch(seed=seed))[:2])
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # A state whose multipliers have other names is refused, naming both lists.
    renamed = MultiCapacityObjective({"style": 1.0, "low": 2.0})
    other = DualOptimizer(
        main_parameters=main_parameters(model, model.objective.lagrange_parameters()),
        lagrange_parameters=renamed.named_lagrange_parameters(),
    )
    with pytest.raises(ValueError, match="style"):
        other.load_state_dict(state["optimizer"])


def test_named_multiplier_errors():
    model = _toy()
    theta = main_parameters(model, model.objective.lagrange_parameters())
    raw_high, raw_low = model.objective.lagrange_parameters()
    with pytest.raises(ValueError, match="needs lagrange_parameters as a mapping"):
        DualOptimizer(main_parameters=theta, lagrange_parameters=[raw_high, raw_low], beta_lr={"high": 0.1})
    with pytest.raises(ValueError, match="must name the multipliers"):
        _dual(model, beta_lr={"high": 0.1})
    with pytest.raises(ValueError, match="shares a parameter"):
        DualOptimizer(main_parameters=theta, lagrange_parameters={"a": [raw_high], "b": [raw_high]})
    with pytest.raises(ValueError, match="empty"):
        DualOptimizer(main_parameters=theta, lagrange_parameters={})
    with pytest.raises(ValueError, match="both"):
        DualOptimizer(main_parameters=model.parameters(), lagrange_parameters={"high": [raw_high]})


# --- the bound and active units per latent set ----------------------------------------------------


class _TwoLevelGaussian:
    """Per dimension: z_s ~ N(0, 1), z_p | z_s ~ N(a z_s, s^2), x | z_p ~ N(z_p, sigma^2).

    With the exact posteriors as the proposal, p(x|z_p) p(z_p|z_s) p(z_s) / (q(z_p|x) q(z_s|z_p)) is
    p(x) for every sample: each log weight equals the closed-form log p(x).
    """

    a, s, sigma = 1.5, 0.6, 0.4

    def log_px(self, x: Tensor) -> Tensor:
        return Normal(0.0, math.sqrt(self.a**2 + self.s**2 + self.sigma**2)).log_prob(x).sum(-1)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        variance = 1.0 / (1.0 / (self.a**2 + self.s**2) + 1.0 / self.sigma**2)
        return variance * x / self.sigma**2, torch.full_like(x, math.sqrt(variance))

    def high_posterior(self, z_p: Tensor) -> tuple[Tensor, Tensor]:  # p(z_s | z_p) = p(z_s | z_p, x)
        variance = 1.0 / (1.0 + self.a**2 / self.s**2)
        return variance * self.a * z_p / self.s**2, torch.full_like(z_p, math.sqrt(variance))

    def conditional_prior(self, z_s: Tensor) -> tuple[Tensor, Tensor]:
        return self.a * z_s, torch.full_like(z_s, self.s)

    def likelihood(self, x: Tensor):
        def log_likelihood(z_p: Tensor) -> Tensor:
            repeated = x.repeat(z_p.shape[0] // x.shape[0], 1)  # sample-major, like z_p
            return Normal(z_p, self.sigma).log_prob(repeated).sum(-1)

        return log_likelihood


def test_hierarchical_bound_is_exact_with_the_exact_posteriors():
    model = _TwoLevelGaussian()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    mean, std = model.posterior(x)
    prior = StandardNormalPrior(3).to(torch.float64)
    result = hierarchical_iwae_bound(
        model.likelihood(x), mean, std, model.high_posterior, model.conditional_prior, prior, k=7
    )
    assert result.log_weights.shape == (7, 5)
    expected = model.log_px(x)
    torch.testing.assert_close(result.log_weights, expected.expand(7, -1))
    torch.testing.assert_close(result.bound, expected)
    torch.testing.assert_close(result.elbo, expected)


def test_hierarchical_bound_tightens_with_k_and_splits_the_rate_per_set():
    model = _TwoLevelGaussian()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mean, std = model.posterior(x)
    std = std * 1.6  # a worse proposal than the exact posterior: the bound is loose
    prior = StandardNormalPrior(3).to(torch.float64)
    gen = torch.Generator().manual_seed(2)
    results = {
        k: hierarchical_iwae_bound(
            model.likelihood(x),
            mean,
            std,
            model.high_posterior,
            model.conditional_prior,
            prior,
            k=k,
            generator=gen,
        )
        for k in (1, 4000)
    }
    torch.testing.assert_close(results[1].bound, results[1].elbo)
    big = results[4000]
    elbo_gap = model.log_px(x) - big.elbo  # about 1 nat with this proposal
    assert (elbo_gap > 0.5).all() and (big.bound > big.elbo).all()
    # The k = 4000 estimate lies within a tenth of the ELBO's gap of log p(x) (above it at most by noise).
    assert ((big.bound - model.log_px(x)).abs() < 0.1 * elbo_gap).all()
    # The per-set rates are the log-weight parts: elbo = E[log p(x|z_p)] - rate_s - rate_p, and the
    # high-level rate estimates E_{z_p}[KL(q(z_s|z_p) || N(0, I))] (here q(z_s|z_p) does not vary in std).
    z_p = mean + std * torch.randn(200_000, *mean.shape, generator=gen, dtype=torch.float64)
    high_mean, high_std = model.high_posterior(z_p)
    expected_rate_s = prior.kl(high_mean, high_std).sum(-1).mean(0)
    torch.testing.assert_close(big.rate_s, expected_rate_s, atol=0.05, rtol=0.0)
    log_px_mean = big.elbo + big.rate_s + big.rate_p
    assert torch.isfinite(log_px_mean).all() and (log_px_mean < 0).all()


def test_hierarchical_bound_validates_its_arguments():
    model = _TwoLevelGaussian()
    x = torch.randn(2, 3)
    mean, std = model.posterior(x)
    args = (
        model.likelihood(x),
        mean,
        std,
        model.high_posterior,
        model.conditional_prior,
        StandardNormalPrior(3),
    )
    with pytest.raises(ValueError, match="k must"):
        hierarchical_iwae_bound(*args, k=0)
    with pytest.raises(ValueError, match="chunk_size"):
        hierarchical_iwae_bound(*args, k=2, chunk_size=0)
    with pytest.raises(ValueError, match="log_likelihood"):
        hierarchical_iwae_bound(lambda z: z.sum(), *args[1:], k=2)
    chunked = hierarchical_iwae_bound(*args, k=5, chunk_size=2)
    assert chunked.log_weights.shape == (5, 2) and chunked.rate_p.shape == (2,)


def test_active_units_per_latent_set():
    gen = torch.Generator().manual_seed(0)
    means = {
        "z_s": torch.randn(50, 3, generator=gen) * torch.tensor([1.0, 0.0, 0.0]),
        "z_p": torch.randn(50, 4, generator=gen) * torch.tensor([1.0, 1.0, 0.01, 1.0]),
    }
    counts = {name: result.count for name, result in active_units_per_set(means).items()}
    assert counts == {"z_s": 1, "z_p": 3}
    with pytest.raises(ValueError, match="mapping"):
        active_units_per_set({})


# --- the toy task: both KLs settle at their capacities ----------------------------------------------

T, TOY_MELS, TOY_P, TOY_S, BATCH, STEPS, LAST = 32, 16, 8, 4, 32, 400, 100


def _toy_batch(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """(n, T, TOY_MELS) images of a line of varying height, slope and level; (n,) lengths in [3T/4, T]."""

    def uniform(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(n, 1, generator=gen)

    height, slope, level = uniform(3, 12), uniform(-0.15, 0.15), uniform(-1, 1)
    centre = height + slope * (torch.arange(T) - T / 2)  # (n, T)
    line = torch.exp(-((torch.arange(TOY_MELS) - centre.unsqueeze(-1)) ** 2) / (2 * 1.5**2))  # (n, T, mels)
    mel = -4.0 + level.unsqueeze(-1) + 4.0 * line + 0.1 * torch.randn(n, T, TOY_MELS, generator=gen)
    return mel, torch.randint(3 * T // 4, T + 1, (n,), generator=gen)


class _FrameDecoder(nn.Module):
    """Each frame from [z_p, fixed time features] through an MLP: (B, D_p) -> (B, T, mels)."""

    def __init__(self) -> None:
        super().__init__()
        t = torch.arange(T) / T * math.pi
        features = [torch.sin(k * t) for k in range(1, 5)] + [torch.cos(k * t) for k in range(4)]
        self.register_buffer("time", torch.stack(features, dim=-1), persistent=False)  # (T, 8)
        self.net = nn.Sequential(nn.Linear(TOY_P + 8, 128), nn.Tanh(), nn.Linear(128, TOY_MELS))

    def forward(self, z: Tensor) -> Tensor:
        frames = torch.cat([z.unsqueeze(1).expand(-1, T, -1), self.time.expand(z.shape[0], -1, -1)], dim=-1)
        return self.net(frames)


def _train(capacity_s: float, capacity_p: float, *, seed: int = 0) -> dict[str, list[float]]:
    """Per-step batch-mean KLs, multipliers and reconstruction of one run on fresh toy batches."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    encoder = CapacitronVAE(
        n_mels=TOY_MELS,
        latent_dim=TOY_P,
        reference_encoder=dict(channels=(8, 16, 16), rnn_size=32),
        posterior_hidden_dim=32,
    )
    vae = HierarchicalCapacitronVAE(encoder, high_latent_dim=TOY_S, hierarchy_hidden_dim=32)
    model = nn.ModuleDict(dict(vae=vae, decoder=_FrameDecoder()))
    objective = MultiCapacityObjective({"high": capacity_s, "low": capacity_p})
    optimizer = DualOptimizer(
        main_parameters=main_parameters(model, objective.lagrange_parameters()),
        lagrange_parameters=objective.named_lagrange_parameters(),
        main_lr=1e-2,
        beta_optimizer="adam",
        beta_lr=RECOMMENDED_BETA_LR,
    )
    history: dict[str, list[Tensor]] = {key: [] for key in ("kl_s", "kl_p", "beta_s", "beta_p", "rec")}
    for _ in range(STEPS):
        mel, lengths = _toy_batch(BATCH, gen)
        prosody = vae.encode(mel, lengths)
        reconstruction = masked_l1(model["decoder"](prosody.z), mel, lengths)
        parts = objective(reconstruction, {"high": prosody.kl_s, "low": prosody.kl_p})
        optimizer.step(parts.loss, parts.beta_loss)
        for key, value in zip(
            history,
            (parts.kl["high"], parts.kl["low"], parts.beta["high"], parts.beta["low"], parts.reconstruction),
            strict=True,
        ):
            history[key].append(value.detach())
    return {key: torch.stack(values).tolist() for key, values in history.items()}


def _plot(runs: dict[tuple[float, float], dict[str, list[float]]], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    for (capacity_s, capacity_p), history in runs.items():
        label = f"C_s = {capacity_s:g}, C_p = {capacity_p:g}"
        for column, (kl, beta, capacity) in enumerate(
            (("kl_s", "beta_s", capacity_s), ("kl_p", "beta_p", capacity_p))
        ):
            (line,) = axes[0, column].plot(history[kl], lw=0.8, label=label)
            axes[0, column].axhline(capacity, color=line.get_color(), ls="--", lw=0.8)
            axes[1, column].plot(history[beta], color=line.get_color(), label=label)
    for column, name in enumerate(("high-level z_s", "low-level z_p")):
        axes[0, column].set_title(name)
        axes[0, column].set_ylabel("batch-mean KL (nats)")
        axes[1, column].set_ylabel("multiplier")
        axes[1, column].set_yscale("log")
        axes[1, column].set_xlabel("step")
        axes[0, column].legend()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_dir / "hierarchical_convergence.png", dpi=100)
    plt.close(fig)


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, and the machine is shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.slow
def test_both_kls_settle_at_their_capacities(one_thread):
    runs = {pair: _train(*pair) for pair in ((2.0, 6.0), (5.0, 10.0))}
    if os.environ.get("PROSODY_VAE_TEST_ARTIFACTS"):
        _plot(runs, Path(os.environ["PROSODY_VAE_TEST_ARTIFACTS"]))

    def tail_mean(values: list[float]) -> float:
        return sum(values[-LAST:]) / LAST

    for (capacity_s, capacity_p), history in runs.items():
        kl_s, kl_p = tail_mean(history["kl_s"]), tail_mean(history["kl_p"])
        assert abs(kl_s - capacity_s) <= 0.15 * capacity_s, f"C_s={capacity_s}: mean KL_s {kl_s:.2f}"
        assert abs(kl_p - capacity_p) <= 0.15 * capacity_p, f"C_p={capacity_p}: mean KL_p {kl_p:.2f}"
    # Tighter budgets need more pressure on each KL, and leave less information for the decoder.
    tight, loose = runs[(2.0, 6.0)], runs[(5.0, 10.0)]
    assert tail_mean(tight["beta_s"]) > tail_mean(loose["beta_s"])
    assert tail_mean(tight["beta_p"]) > tail_mean(loose["beta_p"])
    assert tail_mean(loose["rec"]) < tail_mean(tight["rec"])


def test_the_docs_example_runs(one_thread):
    """docs/hierarchical.md's Python example runs as written (it asserts inside)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1, f"{DOC}: expected one example"
    namespace: dict[str, object] = {"__name__": "hierarchical_example"}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    assert len(namespace["history"]) == 30
