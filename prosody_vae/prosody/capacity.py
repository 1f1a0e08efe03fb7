"""Capacitron's capacity-constrained objective with a learned Lagrange multiplier beta.

Capacitron (Battenberg et al. 2019, arXiv 1906.03402, eq. 9) solves

    min_theta max_{beta >= 0}   L_rec(theta) + beta * (KL(theta) - C)

by alternating gradient steps: theta descends, beta ascends. With beta = softplus(beta_raw) this
module returns the two losses that implement it with ordinary minimising optimisers:

* ``loss      = reconstruction + beta.detach() * (kl - C)``   -> minimised over theta only.
  beta is a constant here, so theta sees "reconstruction plus a KL penalty of weight beta".
* ``beta_loss = -beta * (kl - C).detach()``                   -> minimised over beta_raw only.
  Its gradient is ``-(kl - C) * sigmoid(beta_raw)``: a descent step *raises* beta while KL > C and
  *lowers* it while KL < C, towards 0 (never below, by the softplus).

The stop-gradients make the two losses touch disjoint parameters, so one backward pass of their sum
gives both gradients exactly (see :class:`prosody_vae.prosody.dual_optimizer.DualOptimizer`).

Units. ``reconstruction`` must be the per-utterance negative log-likelihood in nats, i.e. the L1
**summed over frames and mel bins** (:func:`prosody_vae.prosody.likelihood.masked_l1`: a unit-scale Laplace NLL up
to a constant), and ``kl`` the per-utterance KL in nats, both averaged over the batch; only then is C
a number of nats. Coqui TTS divides both terms by T * n_mels: that has the same optimum but rescales
theta's gradients (an implicitly smaller learning rate) and, because its beta gradient is not
divided, changes nothing else.

Several constraints. :class:`MultiCapacityObjective` holds any number of KL terms at their own
capacities, ``L_rec + sum_i beta_i * (KL_i - C_i)``, one multiplier per term, each the single-pair
objective above (same signs, same stop-gradients). The hierarchical model
(:mod:`prosody_vae.prosody.hierarchical`) uses it for its two latent sets, after Capacitron's
hierarchical decomposition of capacity: C_s for the high-level latent, C_p for the low-level one
(docs/hierarchical.md). Because each multiplier's loss holds only its own KL, the
multipliers move independently: beta_i rises while KL_i > C_i whatever the other terms do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["CapacityLoss", "CapacityObjective", "MultiCapacityLoss", "MultiCapacityObjective"]


class CapacityLoss(NamedTuple):
    """The parts of the capacity objective (all scalars)."""

    loss: Tensor  # theta's loss: reconstruction + beta.detach() * (kl - C)
    beta_loss: Tensor  # the multiplier's loss: -beta * (kl - C).detach(); gradient only into beta_raw
    reconstruction: Tensor  # batch-mean reconstruction NLL, nats per utterance
    kl: Tensor  # batch-mean KL, nats per utterance
    beta: Tensor  # softplus(beta_raw), detached
    capacity_term: Tensor  # beta.detach() * (kl - C), the part of `loss` beyond the reconstruction


def _inverse_softplus(y: float) -> float:
    # log(exp(y) - 1) written as y + log(1 - exp(-y)) so it neither overflows for large y nor loses
    # precision for small y.
    return y + math.log(-math.expm1(-y))


def _batch_mean(name: str, x: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
    if x.dim() == 0:
        return x
    if x.dim() == 1:
        return x.mean()
    raise ValueError(
        f"{name} must be a scalar batch mean or a (B,) per-utterance tensor, got {tuple(x.shape)}"
    )


class CapacityObjective(nn.Module):
    """Lagrangian ``L_rec + beta * (KL - C)`` with beta learned as a Lagrange multiplier.

    Args:
        capacity: C, the target KL in nats per utterance (>= 0).
        beta_init: initial beta (> 0); ``beta_raw`` starts at ``softplus^-1(beta_init)``.
    """

    def __init__(self, capacity: float, beta_init: float = 1.0) -> None:
        super().__init__()
        if not (math.isfinite(capacity) and capacity >= 0):
            raise ValueError(f"capacity must be a finite number >= 0 (nats), got {capacity!r}")
        if not (math.isfinite(beta_init) and beta_init > 0):
            raise ValueError(f"beta_init must be a finite number > 0, got {beta_init!r}")
        self.beta_raw = nn.Parameter(torch.tensor(_inverse_softplus(float(beta_init))))
        # A constant, not state: non-persistent, so it follows .to() and a checkpoint cannot override it.
        self.register_buffer("capacity", torch.tensor(float(capacity)), persistent=False)

    @property
    def beta(self) -> Tensor:
        """Current multiplier softplus(beta_raw), detached (0-d)."""
        return F.softplus(self.beta_raw.detach())

    def lagrange_parameters(self) -> list[nn.Parameter]:
        """The parameters the dual (beta) optimiser owns: ``[beta_raw]``."""
        return [self.beta_raw]

    def forward(self, reconstruction: Tensor, kl: Tensor) -> CapacityLoss:
        """Both losses of the dual problem.

        Args:
            reconstruction: batch-mean reconstruction NLL in nats per utterance (0-d), or per
                utterance (B,), which is averaged here.
            kl: batch-mean KL in nats per utterance (0-d), or (B,), averaged here.

        Returns:
            :class:`CapacityLoss`; minimise ``loss`` over theta and ``beta_loss`` over beta_raw.
        """
        reconstruction = _batch_mean("reconstruction", reconstruction)
        kl = _batch_mean("kl", kl)
        beta = F.softplus(self.beta_raw)
        excess = kl - self.capacity.to(kl.dtype)  # KL - C
        capacity_term = beta.detach() * excess
        return CapacityLoss(
            loss=reconstruction + capacity_term,
            beta_loss=-beta * excess.detach(),
            reconstruction=reconstruction,
            kl=kl,
            beta=beta.detach(),
            capacity_term=capacity_term,
        )


class MultiCapacityLoss(NamedTuple):
    """The parts of the objective with several constraints; per-term values are keyed by term name."""

    loss: Tensor  # theta's loss: reconstruction + sum_i beta_i.detach() * (kl_i - C_i)
    beta_loss: Tensor  # sum_i -beta_i * (kl_i - C_i).detach(); each term reaches only its own beta_raw
    reconstruction: Tensor  # batch-mean reconstruction NLL, nats per utterance
    kl: dict[str, Tensor]  # batch-mean KL of each term, nats per utterance
    beta: dict[str, Tensor]  # each term's multiplier, detached
    capacity_term: dict[str, Tensor]  # beta_i.detach() * (kl_i - C_i)


def _term_name(name: object) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"capacity term names must be identifiers (they key the state dict), got {name!r}")
    return name


class MultiCapacityObjective(nn.Module):
    """``L_rec + sum_i beta_i * (KL_i - C_i)``: any number of KL terms, each held at its capacity.

    One :class:`CapacityObjective` per term (``terms[name]``), so each term has its own multiplier
    ``beta_i = softplus(beta_raw_i)`` with the single-pair objective's signs and stop-gradients. The
    reconstruction is counted once.

    Args:
        capacities: term name -> C_i in nats per utterance (>= 0), in the order the terms are reported.
            Names are identifiers, e.g. ``{"high": 5.0, "low": 10.0}``.
        beta_init: initial multiplier of every term (> 0), or term name -> initial multiplier.
    """

    def __init__(self, capacities: Mapping[str, float], beta_init: float | Mapping[str, float] = 1.0) -> None:
        super().__init__()
        if not isinstance(capacities, Mapping) or not capacities:
            raise ValueError(f"capacities must be a non-empty mapping of term name -> C, got {capacities!r}")
        names = [_term_name(name) for name in capacities]
        if isinstance(beta_init, Mapping):
            if set(beta_init) != set(names):
                raise ValueError(
                    f"beta_init must name the same terms as capacities {names}, got {sorted(beta_init)}"
                )
            inits = {name: float(beta_init[name]) for name in names}
        else:
            inits = {name: float(beta_init) for name in names}
        self.terms = nn.ModuleDict(
            {name: CapacityObjective(float(capacities[name]), beta_init=inits[name]) for name in names}
        )

    @property
    def names(self) -> list[str]:
        """The term names, in order."""
        return list(self.terms)

    @property
    def capacities(self) -> dict[str, float]:
        """Term name -> C_i (nats per utterance)."""
        return {name: float(term.capacity) for name, term in self.terms.items()}

    @property
    def beta(self) -> dict[str, Tensor]:
        """Term name -> current multiplier softplus(beta_raw_i), detached (0-d)."""
        return {name: term.beta for name, term in self.terms.items()}

    def lagrange_parameters(self) -> list[nn.Parameter]:
        """Every multiplier's ``beta_raw``, in term order: what the dual optimiser owns."""
        return [term.beta_raw for term in self.terms.values()]

    def named_lagrange_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Term name -> ``[beta_raw_i]``, for a :class:`~prosody_vae.prosody.dual_optimizer.DualOptimizer`
        with one named group per multiplier."""
        return {name: term.lagrange_parameters() for name, term in self.terms.items()}

    def forward(self, reconstruction: Tensor, kl: Mapping[str, Tensor]) -> MultiCapacityLoss:
        """Both losses of the dual problem with one constraint per term.

        Args:
            reconstruction: batch-mean reconstruction NLL in nats per utterance (0-d), or (B,).
            kl: term name -> batch-mean KL in nats per utterance (0-d), or (B,); every term, no other.

        Returns:
            :class:`MultiCapacityLoss`; minimise ``loss`` over theta and ``beta_loss`` over the
            multipliers.
        """
        if not isinstance(kl, Mapping):
            raise TypeError(f"kl must be a mapping of term name -> KL, got {type(kl).__name__}")
        if set(kl) != set(self.terms):
            raise ValueError(f"kl must hold exactly the terms {self.names}, got {sorted(kl)}")
        reconstruction = _batch_mean("reconstruction", reconstruction)
        parts = {name: term(reconstruction, kl[name]) for name, term in self.terms.items()}
        capacity_term = {name: part.capacity_term for name, part in parts.items()}
        return MultiCapacityLoss(
            loss=reconstruction + sum(capacity_term.values()),
            beta_loss=sum(part.beta_loss for part in parts.values()),
            reconstruction=reconstruction,
            kl={name: part.kl for name, part in parts.items()},
            beta={name: part.beta for name, part in parts.items()},
            capacity_term=capacity_term,
        )
