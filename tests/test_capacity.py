"""CapacityObjective (signs, stop-gradients, beta dynamics) and the per-utterance losses it consumes."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Laplace
from torch.nn import functional as F

from prosody_vae.prosody.capacity import CapacityObjective
from prosody_vae.prosody.likelihood import laplace_nll, masked_l1


@pytest.mark.parametrize("beta_init", [1e-3, 1.0, 50.0])
def test_beta_starts_at_beta_init(beta_init):
    objective = CapacityObjective(10.0, beta_init=beta_init)
    torch.testing.assert_close(objective.beta, torch.tensor(beta_init))
    assert objective.lagrange_parameters() == [objective.beta_raw]


@pytest.mark.parametrize("kl_value,direction", [(30.0, +1), (4.0, -1)])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_multiplier_step_moves_beta_towards_enforcing_the_capacity(kl_value, direction, optimizer):
    """KL > C raises beta (more pressure on the KL), KL < C lowers it."""
    objective = CapacityObjective(10.0)
    params = objective.lagrange_parameters()
    opt = torch.optim.SGD(params, lr=0.1) if optimizer == "sgd" else torch.optim.Adam(params, lr=0.1)
    before = objective.beta.clone()
    kl = torch.tensor(kl_value, requires_grad=True)
    objective(torch.tensor(100.0), kl).beta_loss.backward()
    opt.step()
    assert torch.sign(objective.beta - before) == direction
    assert kl.grad is None  # the multiplier's loss never reaches theta


def test_signs_and_stop_gradients_of_both_losses():
    objective = CapacityObjective(10.0, beta_init=2.0)
    reconstruction = torch.tensor(50.0, requires_grad=True)
    kl = torch.tensor(13.0, requires_grad=True)
    parts = objective(reconstruction, kl)
    torch.testing.assert_close(parts.loss, torch.tensor(50.0 + 2.0 * 3.0))
    torch.testing.assert_close(parts.capacity_term, torch.tensor(6.0))
    torch.testing.assert_close(parts.beta_loss, torch.tensor(-6.0))
    # theta's loss: gradient beta into the KL, 1 into the reconstruction, nothing into beta_raw.
    d_rec, d_kl, d_beta = torch.autograd.grad(
        parts.loss, [reconstruction, kl, objective.beta_raw], retain_graph=True, allow_unused=True
    )
    torch.testing.assert_close((d_rec, d_kl), (torch.tensor(1.0), torch.tensor(2.0)))
    assert d_beta is None
    # beta's loss: -(KL - C) * sigmoid(beta_raw) into beta_raw, nothing into theta.
    d_kl, d_beta = torch.autograd.grad(parts.beta_loss, [kl, objective.beta_raw], allow_unused=True)
    assert d_kl is None
    torch.testing.assert_close(d_beta, -3.0 * torch.sigmoid(objective.beta_raw.detach()))
    assert not parts.beta.requires_grad


def test_per_utterance_inputs_are_batch_averaged():
    objective = CapacityObjective(5.0)
    rec, kl = torch.tensor([10.0, 20.0, 60.0]), torch.tensor([1.0, 2.0, 9.0])
    per_utt, means = objective(rec, kl), objective(rec.mean(), kl.mean())
    for a, b in zip(per_utt, means, strict=True):
        torch.testing.assert_close(a, b)


def test_capacity_is_a_constant_not_state():
    objective = CapacityObjective(7.5)
    assert set(objective.state_dict()) == {"beta_raw"}
    assert objective.to(torch.float64).capacity.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs", [dict(capacity=-1.0), dict(capacity=math.inf), dict(capacity=1.0, beta_init=0.0)]
)
def test_bad_construction_raises(kwargs):
    with pytest.raises(ValueError):
        CapacityObjective(**kwargs)


def test_bad_input_shapes_raise():
    objective = CapacityObjective(1.0)
    with pytest.raises(ValueError):
        objective(torch.zeros(2, 3), torch.zeros(()))
    with pytest.raises(TypeError):
        objective(1.0, torch.zeros(()))


# --- losses ---------------------------------------------------------------------------------------


def _pair(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, 9, 4, generator=gen), torch.randn(3, 9, 4, generator=gen), torch.tensor([9, 5, 1])


def test_masked_l1_sums_valid_frames_and_bins_per_utterance():
    pred, target, lengths = _pair()
    expected = torch.stack(
        [(pred[i, :n] - target[i, :n]).abs().sum() for i, n in enumerate(lengths.tolist())]
    )
    torch.testing.assert_close(masked_l1(pred, target, lengths), expected)


def test_masked_l1_ignores_garbage_in_the_padding_including_its_gradient():
    pred, target, lengths = _pair()
    pred.requires_grad_(True)
    clean = masked_l1(pred, target, lengths)
    dirty_target = target.clone()
    dirty_target[1, 5:] = float("nan")
    dirty_target[2, 1:] = float("inf")
    dirty = masked_l1(pred, dirty_target, lengths)
    torch.testing.assert_close(dirty, clean)
    dirty.sum().backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[1, 5:].abs().sum() == 0 and pred.grad[2, 1:].abs().sum() == 0


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_laplace_nll_is_the_true_negative_log_likelihood(scale):
    pred, target, lengths = _pair()
    log_prob = Laplace(pred, torch.full_like(pred, scale)).log_prob(target)
    expected = torch.stack([-log_prob[i, :n].sum() for i, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(laplace_nll(pred, target, lengths, scale=scale), expected)


def test_unit_laplace_nll_is_l1_plus_a_constant():
    pred, target, lengths = _pair()
    difference = laplace_nll(pred, target, lengths) - masked_l1(pred, target, lengths)
    torch.testing.assert_close(difference, lengths.float() * 4 * math.log(2.0))


def test_loss_shape_errors():
    pred, target, lengths = _pair()
    with pytest.raises(ValueError):
        masked_l1(pred, target[:, :5], lengths)
    with pytest.raises(ValueError):
        masked_l1(pred, target, lengths[:2])
    with pytest.raises(ValueError):
        laplace_nll(pred, target, lengths, scale=0.0)


def test_softplus_parametrisation_keeps_beta_non_negative_under_large_steps():
    objective = CapacityObjective(10.0)
    opt = torch.optim.SGD(objective.lagrange_parameters(), lr=10.0)
    for _ in range(20):
        opt.zero_grad()
        objective(torch.tensor(0.0), torch.tensor(0.0)).beta_loss.backward()  # KL far below C
        opt.step()
    assert objective.beta >= 0
    assert objective.beta < F.softplus(torch.tensor(0.0))  # and it did go down
