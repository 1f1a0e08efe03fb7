"""IWAE bound on a linear-Gaussian model with a closed-form log p(x); active units on built data."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.distributions import MultivariateNormal, Normal

from prosody_vae.prosody.bounds import (
    active_units,
    dimensions_by_activity,
    iwae_bound,
    kl_per_dimension_summary,
)

DTYPE = torch.float64


class _StandardNormal:
    """A prior with the library's ``log_prob(z, context=None)`` interface, independent of priors.py."""

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        return Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).sum(-1)


class _LinearGaussian:
    """z ~ N(0, I_D), x | z ~ N(W z + b, sigma^2 I). W has orthogonal columns, so p(z|x) is diagonal."""

    def __init__(self) -> None:
        q, _ = torch.linalg.qr(torch.tensor([[1.0, 2.0], [0.5, -1.0], [2.0, 0.3]], dtype=DTYPE))
        self.weight = q * torch.tensor([1.5, 0.7], dtype=DTYPE)  # (3, 2), columns orthogonal
        self.bias = torch.tensor([0.2, -0.1, 0.4], dtype=DTYPE)
        self.sigma = 0.5

    def log_px(self, x: Tensor) -> Tensor:
        """Closed form: x ~ N(b, W W^T + sigma^2 I)."""
        cov = self.weight @ self.weight.T + self.sigma**2 * torch.eye(3, dtype=DTYPE)
        return MultivariateNormal(self.bias, covariance_matrix=cov).log_prob(x)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Exact p(z|x): precision I + W^T W / sigma^2 (diagonal here)."""
        precision = 1.0 + (self.weight**2).sum(0) / self.sigma**2  # (D,)
        mean = ((x - self.bias) @ self.weight) / self.sigma**2 / precision  # (B, D)
        return mean, precision.rsqrt().expand_as(mean)

    def likelihood(self, x: Tensor, calls: list[int] | None = None):
        def log_likelihood(z: Tensor) -> Tensor:
            if calls is not None:
                calls.append(z.shape[0])
            repeated = x.repeat(z.shape[0] // x.shape[0], 1)  # sample-major, like z
            return Normal(z @ self.weight.T + self.bias, self.sigma).log_prob(repeated).sum(-1)

        return log_likelihood


@pytest.fixture
def model() -> _LinearGaussian:
    return _LinearGaussian()


def _data(batch: int) -> Tensor:
    return torch.randn(batch, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(3)) * 1.5


def test_exact_posterior_makes_every_bound_equal_log_px(model: _LinearGaussian) -> None:
    # With q = p(z|x), every weight p(x, z) / p(z|x) equals p(x): the bound is exact for any k,
    # and only if z is ordered sample-major as the likelihood expects (x differs per utterance).
    x = _data(5)
    mean, std = model.posterior(x)
    for k, chunk in [(1, None), (7, None), (10, 3)]:
        calls: list[int] = []
        result = iwae_bound(model.likelihood(x, calls), mean, std, _StandardNormal(), k, chunk_size=chunk)
        torch.testing.assert_close(result.bound, model.log_px(x))
        torch.testing.assert_close(result.elbo, model.log_px(x))
        assert result.log_weights.shape == (k, 5)
        assert calls == ([5 * k] if chunk is None else [15, 15, 15, 5])


def test_k1_bound_is_the_elbo_of_the_same_sample(model: _LinearGaussian) -> None:
    x = _data(4)
    mean, std = model.posterior(x)
    mean, std = mean + 0.3, std * 1.7  # a wrong posterior
    result = iwae_bound(
        model.likelihood(x), mean, std, _StandardNormal(), 1, generator=torch.Generator().manual_seed(0)
    )
    z = mean + std * torch.randn(mean.shape, dtype=DTYPE, generator=torch.Generator().manual_seed(0))
    expected = model.likelihood(x)(z) + _StandardNormal().log_prob(z) - Normal(mean, std).log_prob(z).sum(-1)
    torch.testing.assert_close(result.bound, expected)
    torch.testing.assert_close(result.elbo, expected)


def test_k1_bound_averages_to_the_analytic_elbo(model: _LinearGaussian) -> None:
    x = _data(1).expand(4000, 3)  # one utterance, 4000 independent one-sample estimates
    mean, std = model.posterior(x)
    mean, std = mean - 0.4, std * 0.6
    estimates = iwae_bound(
        model.likelihood(x), mean, std, _StandardNormal(), 1, generator=torch.Generator().manual_seed(1)
    ).bound
    # E_q[log N(x; Wz + b, s^2 I)] = -(|x - W m - b|^2 + sum_d |W_:d|^2 s_d^2) / (2 s^2) - 3/2 log(2 pi s^2)
    residual = x[0] - model.weight @ mean[0] - model.bias
    spread = ((model.weight**2).sum(0) * std[0] ** 2).sum()
    expected_ll = -(residual.pow(2).sum() + spread) / (2 * model.sigma**2) - 1.5 * math.log(
        2 * math.pi * model.sigma**2
    )
    kl = torch.distributions.kl_divergence(Normal(mean[0], std[0]), Normal(0.0, 1.0)).sum()
    standard_error = estimates.std() / math.sqrt(len(estimates))
    assert abs(estimates.mean() - (expected_ll - kl)) < 4 * standard_error


def test_bound_tightens_with_k_and_stays_below_log_px(model: _LinearGaussian) -> None:
    batch = 400
    x = _data(1).expand(batch, 3)
    mean, std = model.posterior(x)
    mean, std = mean + 0.5, std * 1.5
    log_px = model.log_px(x[:1]).item()
    generator = torch.Generator().manual_seed(2)
    averages = []
    for k in (1, 4, 32, 256):
        bound = iwae_bound(model.likelihood(x), mean, std, _StandardNormal(), k, generator=generator).bound
        standard_error = (bound.std() / math.sqrt(batch)).item()
        assert bound.mean().item() <= log_px + 3 * standard_error, k
        averages.append(bound.mean().item())
    assert averages == sorted(averages), averages
    gap_1, gap_256 = log_px - averages[0], log_px - averages[-1]
    assert gap_1 > 0.5  # the wrong posterior is visibly loose at k = 1 ...
    assert gap_256 < 0.05 * gap_1  # ... and k = 256 closes most of the gap


def test_prior_context_is_repeated_sample_major(model: _LinearGaussian) -> None:
    x = _data(3)
    mean, std = model.posterior(x)
    context = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]], dtype=DTYPE)
    seen: list[Tensor] = []

    class _ShiftedPrior:
        def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
            assert context is not None
            seen.append(context)
            return Normal(context, 1.0).log_prob(z).sum(-1)

    iwae_bound(model.likelihood(x), mean, std, _ShiftedPrior(), 4, prior_context=context)
    torch.testing.assert_close(seen[0].view(4, 3, 2), context.expand(4, 3, 2))


def test_bound_is_differentiable_in_the_posterior(model: _LinearGaussian) -> None:
    x = _data(2)
    mean, std = model.posterior(x)
    mean = (mean + 0.2).requires_grad_()
    log_std = (std * 1.3).log().requires_grad_()
    bound = iwae_bound(model.likelihood(x), mean, log_std.exp(), _StandardNormal(), 8).bound
    bound.sum().backward()
    assert mean.grad is not None and log_std.grad is not None
    assert mean.grad.abs().sum() > 0 and log_std.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"k": 0}, "k must"), ({"k": 2, "chunk_size": 0}, "chunk_size"), ({"k": 2.0}, "k must")],
)
def test_bound_rejects_bad_arguments(model: _LinearGaussian, kwargs: dict, match: str) -> None:
    x = _data(2)
    mean, std = model.posterior(x)
    with pytest.raises(ValueError, match=match):
        iwae_bound(model.likelihood(x), mean, std, _StandardNormal(), **kwargs)


def test_bound_rejects_a_likelihood_of_the_wrong_shape(model: _LinearGaussian) -> None:
    x = _data(2)
    mean, std = model.posterior(x)
    with pytest.raises(ValueError, match="log_likelihood must return"):
        iwae_bound(lambda z: z.sum(), mean, std, _StandardNormal(), 3)


# ---- active units and KL per dimension -------------------------------------------------------------


def test_active_units_on_constructed_means() -> None:
    means = torch.tensor(
        [
            [0.0, 5.0, 0.0, -0.3],
            [1.0, 5.0, 0.1, 0.3],
            [0.0, 5.0, 0.0, -0.3],
            [1.0, 5.0, 0.1, 0.3],
        ]
    )
    # population variances: 0.25, 0, 0.0025, 0.09 -> two above 0.01
    result = active_units(means)
    torch.testing.assert_close(result.variances, torch.tensor([0.25, 0.0, 0.0025, 0.09]))
    assert result.count == 2
    assert result.active.tolist() == [True, False, False, True]
    assert active_units(means, threshold=0.001).count == 3


def test_active_units_rejects_a_single_utterance() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        active_units(torch.zeros(1, 4))


def test_kl_summary_and_activity_order() -> None:
    kl = torch.tensor([[0.0, 2.0, 1.0, 1.0], [0.0, 4.0, 3.0, 1.0]])
    summary = kl_per_dimension_summary(kl)
    torch.testing.assert_close(summary, torch.tensor([0.0, 3.0, 2.0, 1.0]))
    assert dimensions_by_activity(summary).tolist() == [1, 2, 3, 0]
    assert dimensions_by_activity(torch.tensor([1.0, 2.0, 1.0])).tolist() == [1, 0, 2]  # ties stable
