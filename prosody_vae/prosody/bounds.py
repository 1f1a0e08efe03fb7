"""Likelihood bounds and latent-usage diagnostics: the IWAE-k bound, active units, KL per dimension.

IWAE (Burda, Grosse and Salakhutdinov 2016, "Importance Weighted Autoencoders")::

    log p(x) >= L_k = E_{z_1..z_k ~ q(z|x)} [ log (1/k) sum_i w_i ],   w_i = p(x|z_i) p(z_i) / q(z_i|x)

``L_1`` is the ELBO; ``L_k <= L_{k+1} <= log p(x)`` and ``L_k -> log p(x)`` as k grows (Burda et
al., Theorem 1), so a larger k gives a tighter estimate of the data likelihood. In prosody_vae,
``log p(x|z)`` is the Laplace decoder's log-likelihood: ``-L1 - n * log 2`` for ``n`` valid
(frame, mel bin) entries, so the decoder's L1 loss (nats, summed over frames and bins) plugs in
directly; the constant only shifts the bound. Each of the k samples needs its own teacher-forced
decoder pass; the caller batches them by repeating its inputs.

With a conditional prior such as :class:`~prosody_vae.prosody.priors.AssociativePrior`,
``p(z)`` is ``p(z | c)`` for the given context, and the bound is on ``log p(x | c)``: the coding cost
of x given its neighbour's code, as in ACN.

Active units (Burda et al. 2016, section 5.2): dimension d is active when ``Var_x(E_{q(z|x)}[z_d])``
exceeds a threshold (0.01 in the paper): a dimension whose posterior mean does not move with the
input carries no information about it, whatever its posterior variance.

Two latent sets (:mod:`prosody_vae.prosody.hierarchical`): :func:`hierarchical_iwae_bound` samples
``z_p ~ q(z_p|x)`` and then ``z_s ~ q(z_s|z_p)``, with
``w = p(x|z_p) p(z_p|z_s) p(z_s) / (q(z_p|x) q(z_s|z_p))``, and reports beside the bound each latent
set's share of the log weights (its rate, estimated on the same samples). Active units are counted
per set with :func:`active_units_per_set`, from each set's posterior means.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import torch
from torch import Tensor

from prosody_vae.prosody.priors.base import Prior

__all__ = [
    "ActiveUnits",
    "HierarchicalIWAEResult",
    "IWAEResult",
    "active_units",
    "active_units_per_set",
    "dimensions_by_activity",
    "hierarchical_iwae_bound",
    "iwae_bound",
    "kl_per_dimension_summary",
]

_LOG_2PI = math.log(2.0 * math.pi)


class IWAEResult(NamedTuple):
    """Bounds per utterance, in nats, from one set of k samples."""

    bound: Tensor  # (B,) IWAE-k bound: logsumexp_i log w_i - log k
    elbo: Tensor  # (B,) single-sample ELBO estimates averaged over the same k samples
    log_weights: Tensor  # (k, B) log w_i, sample-major


def iwae_bound(
    log_likelihood: Callable[[Tensor], Tensor],
    mean: Tensor,
    std: Tensor,
    prior: Prior,
    k: int,
    *,
    prior_context: Tensor | None = None,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> IWAEResult:
    """Importance-weighted bound on ``log p(x)`` with a diagonal Gaussian posterior.

    Args:
        log_likelihood: maps z of shape (n * B, D) to ``log p(x | z)`` of shape (n * B,) in nats.
            z is ordered sample-major: ``z.view(n, B, D)[i, b]`` is sample i of utterance b, so the
            caller repeats its batch with ``x.repeat(n, ...)``. n is ``k``, or at most
            ``chunk_size`` when chunking (read it as ``z.shape[0] // B``).
        mean: (B, D) posterior mean.
        std: (B, D) posterior standard deviation, > 0.
        prior: the :class:`Prior`; only its ``log_prob(z, context)`` (summed over D) is used.
        k: number of importance samples, >= 1.
        prior_context: optional (B, D) prior context (e.g. the ACN neighbour code), repeated per
            sample like z.
        chunk_size: evaluate at most this many samples per ``log_likelihood`` call. Under
            ``torch.no_grad()`` this bounds peak memory; with gradients every chunk's graph is kept.
        generator: optional random generator for the samples.

    Returns:
        :class:`IWAEResult`. ``bound`` is differentiable in ``mean`` and ``std`` (reparameterised
        samples), so ``-bound.mean()`` can serve as an IWAE training loss. With ``k = 1``,
        ``bound == elbo`` is the usual one-sample ELBO estimate, whose expectation is the analytic
        ELBO ``E_q[log p(x|z)] - KL(q || p)``.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    if mean.dim() != 2 or mean.shape != std.shape:
        raise ValueError(f"mean and std must both be (B, D), got {tuple(mean.shape)} and {tuple(std.shape)}")
    if prior_context is not None and prior_context.shape[0] != mean.shape[0]:
        raise ValueError(
            f"prior_context must have one row per utterance (B={mean.shape[0]}), got {tuple(prior_context.shape)}"
        )
    batch, dim = mean.shape
    step = k if chunk_size is None else min(chunk_size, k)
    # log q(z|x) at z = mean + std * eps is a function of eps alone: no (z - mean) / std round trip.
    log_std_sum = std.log().sum(-1)  # (B,)
    chunks = []
    for start in range(0, k, step):
        n = min(step, k - start)
        eps = torch.randn((n, batch, dim), dtype=mean.dtype, device=mean.device, generator=generator)
        z = (mean + std * eps).reshape(n * batch, dim)  # sample-major (n * B, D)
        log_px = log_likelihood(z)
        if log_px.shape != (n * batch,):
            raise ValueError(
                f"log_likelihood must return shape ({n * batch},) for z of shape {tuple(z.shape)}, "
                f"got {tuple(log_px.shape)}"
            )
        if prior_context is None:
            log_pz = prior.log_prob(z)
        else:
            log_pz = prior.log_prob(z, context=prior_context.repeat(n, *([1] * (prior_context.dim() - 1))))
        if log_pz.shape != (n * batch,):
            raise ValueError(f"prior.log_prob must return shape ({n * batch},), got {tuple(log_pz.shape)}")
        log_qz = -0.5 * eps.pow(2).sum(-1) - log_std_sum - 0.5 * dim * _LOG_2PI  # (n, B)
        chunks.append(log_px.view(n, batch) + log_pz.view(n, batch) - log_qz)
    log_weights = torch.cat(chunks, dim=0)  # (k, B)
    bound = torch.logsumexp(log_weights, dim=0) - math.log(k)
    return IWAEResult(bound=bound, elbo=log_weights.mean(dim=0), log_weights=log_weights)


class HierarchicalIWAEResult(NamedTuple):
    """Bounds per utterance with two latent sets, in nats, from one set of k samples of (z_p, z_s)."""

    bound: Tensor  # (B,) IWAE-k bound on log p(x): logsumexp_i log w_i - log k
    elbo: Tensor  # (B,) single-sample ELBO estimates averaged over the k samples
    log_weights: Tensor  # (k, B) log w_i, sample-major
    rate_s: Tensor  # (B,) mean over the samples of log q(z_s|z_p) - log p(z_s): the high-level set's rate
    rate_p: Tensor  # (B,) mean over the samples of log q(z_p|x) - log p(z_p|z_s): the low-level set's rate


def _normal_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log N(x; mean, diag(std^2)) summed over the last dimension: (..., D) -> (...)."""
    return (-0.5 * ((x - mean) / std).square() - std.log() - 0.5 * _LOG_2PI).sum(-1)


def hierarchical_iwae_bound(
    log_likelihood: Callable[[Tensor], Tensor],
    mean: Tensor,
    std: Tensor,
    high_posterior: Callable[[Tensor], tuple[Tensor, Tensor]],
    conditional_prior: Callable[[Tensor], tuple[Tensor, Tensor]],
    high_prior: Prior,
    k: int,
    *,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> HierarchicalIWAEResult:
    """Importance-weighted bound on ``log p(x)`` for a model with a high-level and a low-level latent.

    The proposal is the model's own posterior, ``q(z_p | x) q(z_s | z_p)``, and the model
    ``p(x | z_p) p(z_p | z_s) p(z_s)``: with k = 1 its expectation is the hierarchical ELBO with the
    joint rate ``E[log q(z_p|x) q(z_s|z_p) - log p(z_p|z_s) p(z_s)]``, which ``rate_s + rate_p``
    estimates. (The training objective's R_p, a closed-form KL at one z_s, is a looser upper bound
    on the z_p part; see :mod:`prosody_vae.prosody.hierarchical`.)

    Args:
        log_likelihood: maps z_p (n * B, D_p), sample-major, to ``log p(x | z_p)`` (n * B,), nats;
            as for :func:`iwae_bound`.
        mean, std: (B, D_p) the low-level posterior q(z_p | x).
        high_posterior: z_p (N, D_p) -> mean, std (N, D_s) of q(z_s | z_p)
            (``HierarchicalCapacitronVAE.high_posterior_of``).
        conditional_prior: z_s (N, D_s) -> mean, std (N, D_p) of p(z_p | z_s)
            (``HierarchicalCapacitronVAE.conditional_prior_of``).
        high_prior: p(z_s), any unconditional :class:`Prior` (the module's ``prior``).
        k: number of importance samples, >= 1.
        chunk_size, generator: as for :func:`iwae_bound`.

    Returns:
        :class:`HierarchicalIWAEResult`, differentiable in every input as :func:`iwae_bound`'s.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    if mean.dim() != 2 or mean.shape != std.shape:
        raise ValueError(f"mean and std must both be (B, D), got {tuple(mean.shape)} and {tuple(std.shape)}")
    batch, dim = mean.shape
    step = k if chunk_size is None else min(chunk_size, k)
    log_std_sum = std.log().sum(-1)  # (B,)
    log_px, log_ratio_s, log_ratio_p = [], [], []
    for start in range(0, k, step):
        n = min(step, k - start)
        eps = torch.randn((n, batch, dim), dtype=mean.dtype, device=mean.device, generator=generator)
        z_p = (mean + std * eps).reshape(n * batch, dim)  # sample-major (n * B, D_p)
        mean_s, std_s = high_posterior(z_p)  # (n * B, D_s) each
        eps_s = torch.randn(mean_s.shape, dtype=mean_s.dtype, device=mean_s.device, generator=generator)
        z_s = mean_s + std_s * eps_s  # (n * B, D_s)
        log_qs = (-0.5 * eps_s.square() - std_s.log() - 0.5 * _LOG_2PI).sum(-1)  # (n * B,)
        log_qp = (-0.5 * eps.square().sum(-1) - log_std_sum - 0.5 * dim * _LOG_2PI).reshape(n * batch)
        prior_mean, prior_std = conditional_prior(z_s)  # (n * B, D_p) each
        log_pp = _normal_log_prob(z_p, prior_mean, prior_std)  # (n * B,)
        log_ps = high_prior.log_prob(z_s)  # (n * B,)
        likelihood = log_likelihood(z_p)
        if likelihood.shape != (n * batch,):
            raise ValueError(
                f"log_likelihood must return shape ({n * batch},) for z of shape {tuple(z_p.shape)}, "
                f"got {tuple(likelihood.shape)}"
            )
        log_px.append(likelihood.view(n, batch))
        log_ratio_s.append((log_ps - log_qs).view(n, batch))
        log_ratio_p.append((log_pp - log_qp).view(n, batch))
    ratio_s, ratio_p = torch.cat(log_ratio_s), torch.cat(log_ratio_p)  # (k, B) each
    log_weights = torch.cat(log_px) + ratio_s + ratio_p  # (k, B)
    return HierarchicalIWAEResult(
        bound=torch.logsumexp(log_weights, dim=0) - math.log(k),
        elbo=log_weights.mean(dim=0),
        log_weights=log_weights,
        rate_s=-ratio_s.mean(dim=0),
        rate_p=-ratio_p.mean(dim=0),
    )


class ActiveUnits(NamedTuple):
    """Active-unit count with the statistic behind it."""

    count: int
    variances: Tensor  # (D,) variance over the data of the posterior means
    active: Tensor  # (D,) bool, variances > threshold


def active_units(means: Tensor, threshold: float = 0.01) -> ActiveUnits:
    """Burda et al.'s active units from posterior means over a data set.

    Args:
        means: (N, D) posterior means ``E_q[z]``, one row per utterance, N >= 2.
        threshold: a dimension is active when its variance over the data exceeds this (strictly).

    The variance is the population variance (divisor N): with the thousands of utterances this is
    meant for, the choice of divisor does not change the count.
    """
    if means.dim() != 2 or means.shape[0] < 2:
        raise ValueError(f"means must be (N, D) with N >= 2 utterances, got {tuple(means.shape)}")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    variances = means.detach().var(dim=0, correction=0)  # (D,)
    active = variances > threshold
    return ActiveUnits(count=int(active.sum()), variances=variances, active=active)


def active_units_per_set(means: Mapping[str, Tensor], threshold: float = 0.01) -> dict[str, ActiveUnits]:
    """:func:`active_units` of each latent set, e.g. ``{"z_s": (N, D_s), "z_p": (N, D_p)}``.

    For the hierarchical model, take each set's posterior mean in eval mode: ``encode(...).mean`` for
    z_p and ``encode(...).mean_s`` for z_s (the mean of q(z_s | z_p) at z_p's mean, a deterministic
    stand-in for ``E_q[z_s | x]``).
    """
    if not isinstance(means, Mapping) or not means:
        raise ValueError(
            f"means must be a non-empty mapping of set name -> (N, D) means, got {type(means).__name__}"
        )
    return {name: active_units(value, threshold) for name, value in means.items()}


def kl_per_dimension_summary(kl_per_dim: Tensor) -> Tensor:
    """Mean over the data of the per-dimension KL: (N, D) -> (D,) nats.

    Its sum is the average KL per utterance, the quantity the capacity C constrains.
    """
    if kl_per_dim.dim() != 2 or kl_per_dim.shape[0] == 0:
        raise ValueError(f"kl_per_dim must be (N, D) with N >= 1, got {tuple(kl_per_dim.shape)}")
    return kl_per_dim.detach().mean(dim=0)


def dimensions_by_activity(scores: Tensor) -> Tensor:
    """Latent dimensions ordered from most to least active.

    Args:
        scores: (D,) per-dimension activity, e.g. ``ActiveUnits.variances`` or
            :func:`kl_per_dimension_summary`.

    Returns:
        (D,) long indices, ``scores[order]`` non-increasing; ties keep index order.
    """
    if scores.dim() != 1:
        raise ValueError(f"scores must be (D,), got {tuple(scores.shape)}")
    return torch.sort(scores.detach(), descending=True, stable=True).indices
