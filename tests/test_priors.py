"""The Prior protocol: both priors follow it, by membership and by behaviour (KL, log_prob, context)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from prosody_vae.prosody.priors import AssociativePrior, Prior, StandardNormalPrior

D = 3


def _standard() -> StandardNormalPrior:
    return StandardNormalPrior(D)


def _associative() -> AssociativePrior:
    torch.manual_seed(0)
    prior = AssociativePrior(D, k_neighbours=2, hidden_dim=8)
    with torch.no_grad():  # a prior network far from N(0, I), so the checks see its context
        prior.network[-1].bias.uniform_(-1.0, 1.0)
    prior.refresh(torch.randn(8, D), torch.arange(8))
    return prior


@pytest.mark.parametrize("make", [_standard, _associative], ids=["standard", "associative"])
def test_priors_follow_the_protocol(make) -> None:
    prior = make()
    assert isinstance(prior, Prior)
    assert prior.latent_dim == D


@pytest.mark.parametrize("make", [_standard, _associative], ids=["standard", "associative"])
def test_protocol_kl_is_the_expected_log_ratio_under_the_posterior(make) -> None:
    """Through the protocol alone: kl == E_q[log q(z) - log p(z | c)], c from held_out_context."""
    prior = make()
    gen = torch.Generator().manual_seed(1)
    mean = torch.randn(2, D, generator=gen)
    std = torch.rand(2, D, generator=gen) + 0.3
    context = prior.held_out_context(mean)
    assert (context is not None) == prior.needs_context
    with torch.no_grad():
        kl = prior.kl(mean, std, context=context)  # (2, D)
        assert kl.shape == (2, D) and (kl >= 0).all()
        n = 100_000
        z = mean + std * torch.randn(n, 2, D, generator=gen)  # (n, 2, D)
        contexts = None if context is None else context.expand(n, 2, D)
        log_ratio = Normal(mean, std).log_prob(z).sum(-1) - prior.log_prob(z, context=contexts)  # (n, 2)
    estimate, stderr = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n)
    assert ((estimate - kl.sum(-1)).abs() < 4 * stderr + 1e-3).all(), (estimate, kl.sum(-1), stderr)


def test_only_a_conditional_prior_needs_its_context() -> None:
    standard, associative = _standard(), _associative()
    mean, std = torch.randn(2, D), torch.rand(2, D) + 0.3
    other = torch.randn(2, D)
    assert not standard.needs_context and standard.held_out_context(mean) is None
    torch.testing.assert_close(standard.kl(mean, std, context=other), standard.kl(mean, std))
    assert associative.needs_context
    with pytest.raises(ValueError, match="needs context"):
        associative.kl(mean, std)
    near, far = associative.held_out_context(mean), other * 10
    assert not torch.allclose(associative.kl(mean, std, context=near), associative.kl(mean, std, context=far))


@pytest.mark.parametrize("make", [_standard, _associative], ids=["standard", "associative"])
def test_protocol_sample_at_temperature_zero_is_the_mode(make) -> None:
    prior = make()
    context = prior.held_out_context(torch.zeros(1, D))
    z = prior.sample(4, temperature=0.0, context=context)
    assert z.shape == (4, D)
    assert torch.equal(z, z[:1].expand(4, D))  # no spread
    assert prior.sample(4, temperature=1.0, context=context).std(0).min() > 0


def test_a_module_without_the_members_is_not_a_prior() -> None:
    class _LogProbOnly(nn.Module):
        latent_dim = D

        def log_prob(self, z, context=None):
            return z.sum(-1)

    assert not isinstance(_LogProbOnly(), Prior)
    assert not isinstance(nn.Linear(D, D), Prior)
