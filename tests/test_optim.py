"""DualOptimizer: ownership split, clipping of theta only, accumulation, non-finite skips, checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from prosody_vae.prosody.capacity import CapacityLoss, CapacityObjective
from prosody_vae.prosody.dual_optimizer import RECOMMENDED_BETA_LR, DualOptimizer, main_parameters
from prosody_vae.prosody.likelihood import masked_l1
from prosody_vae.prosody.vae import CapacitronVAE

N_MELS = 8


class _Toy(nn.Module):
    """CapacitronVAE + a linear "decoder" + the capacity objective, as a user would assemble them."""

    def __init__(self, capacity: float = 2.0) -> None:
        super().__init__()
        self.vae = CapacitronVAE(
            n_mels=N_MELS,
            latent_dim=3,
            reference_encoder=dict(channels=(4,), rnn_size=6),
            posterior_hidden_dim=8,
        )
        self.decoder = nn.Linear(3, N_MELS)
        self.objective = CapacityObjective(capacity)

    def losses(self, mel: torch.Tensor, lengths: torch.Tensor) -> CapacityLoss:
        out = self.vae.encode(mel, lengths, sample=False)  # deterministic: comparisons are exact
        pred = self.decoder(out.z).unsqueeze(1).expand(-1, mel.shape[1], -1)  # (B, T, n_mels)
        return self.objective(masked_l1(pred, mel, lengths), out.kl)


def _toy(seed: int = 0) -> _Toy:
    torch.manual_seed(seed)
    return _Toy()


def _batch(batch: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 13, (batch,), generator=gen)
    return torch.randn(batch, 12, N_MELS, generator=gen), lengths


def _sgd(lr: float, momentum: float = 0.0):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


def _optimizer(model: _Toy, **kwargs) -> DualOptimizer:
    lagrange = model.objective.lagrange_parameters()
    return DualOptimizer(
        main_parameters=main_parameters(model, lagrange), lagrange_parameters=lagrange, **kwargs
    )


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_main_parameters_are_the_model_minus_the_multiplier_by_identity():
    model = _toy()
    theta = main_parameters(model, model.objective.lagrange_parameters())
    assert all(p is not model.objective.beta_raw for p in theta)
    assert len(theta) == len(list(model.parameters())) - 1


def test_overlapping_ownership_raises():
    model = _toy()
    with pytest.raises(ValueError, match="both"):
        DualOptimizer(
            main_parameters=model.parameters(), lagrange_parameters=model.objective.lagrange_parameters()
        )


def test_one_backward_of_the_sum_equals_the_two_separate_gradients():
    model = _toy()
    mel, lengths = _batch()
    params = list(model.parameters())
    parts = model.losses(mel, lengths)
    from_loss = torch.autograd.grad(parts.loss, params, retain_graph=True, allow_unused=True)
    from_beta = torch.autograd.grad(parts.beta_loss, params, allow_unused=True)
    # Disjoint: each parameter gets a gradient from at most one of the two losses.
    assert all(a is None or b is None for a, b in zip(from_loss, from_beta, strict=True))
    beta_index = next(i for i, p in enumerate(params) if p is model.objective.beta_raw)
    assert from_beta[beta_index] is not None
    opt = _optimizer(model, accumulation_steps=2)  # stays mid-window, so the gradients are kept
    info = opt.step(*model.losses(mel, lengths)[:2])
    assert not info.stepped and info.grad_norm is None
    for p, a, b in zip(params, from_loss, from_beta, strict=True):
        expected = a if a is not None else b
        if expected is None:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, expected / 2)


def test_a_loss_that_is_not_stop_gradiented_is_refused():
    model = _toy()
    mel, lengths = _batch()
    parts = model.losses(mel, lengths)
    leaky_loss = parts.reconstruction + F.softplus(model.objective.beta_raw) * (parts.kl - 2.0)
    with pytest.raises(ValueError, match="beta.detach"):
        _optimizer(model).step(leaky_loss, parts.beta_loss)
    parts = model.losses(mel, lengths)
    leaky_beta = -F.softplus(model.objective.beta_raw) * (parts.kl - 2.0)
    with pytest.raises(ValueError, match="detach"):
        _optimizer(model).step(parts.loss, leaky_beta)


def test_clipping_covers_theta_only():
    model = _toy()
    mel, lengths = _batch()
    max_norm = 1e-3
    opt = _optimizer(
        model, main_optimizer_factory=_sgd(1.0), beta_optimizer_factory=_sgd(1.0), max_grad_norm=max_norm
    )
    before = _snapshot(model)
    beta_raw = model.objective.beta_raw.detach().clone()
    parts = model.losses(mel, lengths)
    expected_beta_grad = -(parts.kl.detach() - 2.0) * torch.sigmoid(beta_raw)  # d beta_loss / d beta_raw
    info = opt.step(parts.loss, parts.beta_loss)
    assert info.stepped and info.grad_norm > 100 * max_norm  # the clip really was active
    # SGD with lr 1: beta_raw moved by exactly its unclipped gradient ...
    torch.testing.assert_close(model.objective.beta_raw.detach(), beta_raw - expected_beta_grad)
    # ... while theta moved by a step of norm max_norm.
    theta_step = torch.cat(
        [
            (model.state_dict()[k] - v).flatten()
            for k, v in before.items()
            if k != "objective.beta_raw" and v.is_floating_point() and "running" not in k
        ]
    )
    torch.testing.assert_close(theta_step.norm(), torch.tensor(max_norm), rtol=1e-3, atol=0.0)


def test_micro_steps_accumulate_without_stepping_or_zeroing():
    model = _toy()
    opt = _optimizer(model, beta_lr=0.1, accumulation_steps=3)
    decoder_grads = []
    beta_before = model.objective.beta.clone()
    weight_before = model.decoder.weight.detach().clone()
    for seed in range(2):
        mel, lengths = _batch(seed=seed)
        expected = torch.autograd.grad(model.losses(mel, lengths).loss, model.decoder.weight)[0] / 3
        decoder_grads.append(expected)
        info = opt.step(*model.losses(mel, lengths)[:2])
        assert not info.stepped and info.micro_step == seed + 1
        assert torch.equal(model.objective.beta, beta_before)  # beta not stepped mid-window
        assert torch.equal(model.decoder.weight, weight_before)
        torch.testing.assert_close(model.decoder.weight.grad, sum(decoder_grads))  # never zeroed
    info = opt.step(*model.losses(*_batch(seed=2))[:2])
    assert info.stepped and info.micro_step == 3
    assert not torch.equal(model.objective.beta, beta_before)
    assert model.decoder.weight.grad is None and opt.micro_step == 0


def test_k_micro_batches_give_the_update_of_one_k_times_larger_batch():
    small, big = _toy(), _toy()
    small.eval()  # batch norm on running statistics: the encoder is independent of batch composition
    big.eval()
    settings = dict(
        main_optimizer_factory=_sgd(0.05, 0.9), beta_optimizer_factory=_sgd(0.1, 0.9), max_grad_norm=50.0
    )
    opt_small = _optimizer(small, accumulation_steps=4, **settings)
    opt_big = _optimizer(big, **settings)
    for update in range(2):
        mel, lengths = _batch(batch=8, seed=update)
        for i in range(4):
            opt_small.step(*small.losses(mel[2 * i : 2 * i + 2], lengths[2 * i : 2 * i + 2])[:2])
        opt_big.step(*big.losses(mel, lengths)[:2])
    for (name, a), b in zip(small.state_dict().items(), big.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(small.decoder.weight, _toy().decoder.weight)  # it did train


def test_nonfinite_gradients_skip_the_update_and_are_reported():
    model = _toy()
    opt = _optimizer(model, beta_lr=0.1)
    before = _snapshot(model)
    parts = model.losses(*_batch())
    info = opt.step(parts.loss * torch.tensor(float("nan")), parts.beta_loss)
    assert info.skipped_nonfinite and not info.stepped
    after = model.state_dict()
    assert all(
        torch.equal(after[k], v) for k, v in before.items() if "running" not in k and "batches" not in k
    )
    assert all(p.grad is None for p in model.parameters())
    assert opt.step(*model.losses(*_batch())[:2]).stepped  # and training goes on


def _train_steps(model: _Toy, opt: DualOptimizer, seeds) -> None:
    for seed in seeds:
        opt.step(*model.losses(*_batch(seed=seed))[:2])


@pytest.mark.parametrize("with_scaler", [False, True])
def test_checkpoint_round_trip_resumes_with_identical_next_steps(tmp_path, with_scaler):
    def build(seed):
        model = _toy(seed)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10) if with_scaler else None
        return model, _optimizer(
            model, beta_optimizer="adam", beta_lr=RECOMMENDED_BETA_LR, grad_scaler=scaler
        )

    model, opt = build(0)
    _train_steps(model, opt, seeds=[0, 1, 2])
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert set(state["optimizer"]) == {"main", "beta", "scaler", "micro_step"}
    assert (state["optimizer"]["scaler"] is not None) == with_scaler

    resumed, resumed_opt = build(1)  # different initial weights: everything must come from the file
    resumed.load_state_dict(state["model"])
    resumed_opt.load_state_dict(state["optimizer"])
    _train_steps(model, opt, seeds=[3, 4])
    _train_steps(resumed, resumed_opt, seeds=[3, 4])
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_grad_scaler_gives_the_fp32_update():
    plain, scaled = _toy(), _toy()
    settings = dict(main_optimizer_factory=_sgd(0.05), beta_optimizer_factory=_sgd(0.1), max_grad_norm=10.0)
    opt_plain = _optimizer(plain, **settings)
    opt_scaled = _optimizer(scaled, grad_scaler=torch.amp.GradScaler("cpu", init_scale=2.0**12), **settings)
    for seed in range(2):
        info_plain = opt_plain.step(*plain.losses(*_batch(seed=seed))[:2])
        info_scaled = opt_scaled.step(*scaled.losses(*_batch(seed=seed))[:2])
        torch.testing.assert_close(info_scaled.grad_norm, info_plain.grad_norm)  # reported unscaled
    for a, b in zip(plain.state_dict().values(), scaled.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_default_and_recommended_beta_optimizers():
    model = _toy()
    paper = _optimizer(model)
    assert isinstance(paper.beta, torch.optim.SGD)
    assert paper.beta.param_groups[0]["lr"] == 1e-5 and paper.beta.param_groups[0]["momentum"] == 0.9
    assert isinstance(paper.main, torch.optim.Adam) and paper.main.param_groups[0]["lr"] == 1e-3
    recommended = _optimizer(
        model, beta_optimizer="adam", beta_lr=RECOMMENDED_BETA_LR, main_optimizer="radam"
    )
    assert isinstance(recommended.beta, torch.optim.Adam) and isinstance(recommended.main, torch.optim.RAdam)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(accumulation_steps=0),
        dict(max_grad_norm=0.0),
        dict(beta_optimizer="rmsprop"),
        dict(main_optimizer="lbfgs"),
    ],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        _optimizer(_toy(), **kwargs)


def test_bad_calls_raise():
    model = _toy()
    opt = _optimizer(model)
    parts = model.losses(*_batch())
    with pytest.raises(ValueError, match="scalars"):
        opt.step(parts.loss.expand(2), parts.beta_loss)
    with pytest.raises(ValueError, match="missing"):
        opt.load_state_dict({"main": opt.main.state_dict()})
    state = opt.state_dict()
    state["scaler"] = torch.amp.GradScaler("cpu").state_dict()
    with pytest.raises(ValueError, match="grad_scaler"):
        opt.load_state_dict(state)
    with pytest.raises(ValueError, match="empty"):
        DualOptimizer(main_parameters=[], lagrange_parameters=model.objective.lagrange_parameters())
