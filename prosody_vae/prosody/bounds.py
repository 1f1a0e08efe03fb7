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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from prosody_vae.prosody.priors.base import Prior

__all__ = [
    "ActiveUnits",
    "IWAEResult",
    "active_units",
    "dimensions_by_activity",
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
