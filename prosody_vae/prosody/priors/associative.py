"""Associative prior p(z | c) over the prosody latent, after ACN (Graves, Menick and van den Oord 2018).

Instead of one global N(0, I), the prior for utterance x is conditioned on ``c``, the code (posterior
mean) of one of the K nearest neighbours of x among the training set's codes, drawn uniformly. The
KL in the capacity objective becomes ``KL(q(z|x) || p(z|c))``: the cost of coding x's prosody given
a similar utterance's, so the latent space is only asked to be locally smooth.

Where we follow the paper: a code bank of posterior means of every training item; K nearest
neighbours by Euclidean distance, never the item itself; c uniform among the K; a prior network
c -> p(z|c) trained jointly through the KL; "daydream" ancestral sampling.

Where we deviate: ACN's prior network outputs a mixture of Gaussians; ours outputs one diagonal
Gaussian, so ``kl`` stays closed-form and per dimension, which the capacity objective and the
KL-per-dimension diagnostics rely on (a mixture's KL has no closed form and would need a Monte-Carlo
estimate that is not per dimension). The bank is refreshed on a schedule by the training loop (each
epoch by default, see :meth:`AssociativePrior.needs_refresh`) rather than rewritten item by item on
every visit; :meth:`AssociativePrior.update_bank` also allows per-batch writes.

Training-loop use (DDP: pass the codes through :func:`gather_codes` first)::

    if prior.needs_refresh(step):                       # or at each epoch start
        prior.refresh(all_means, all_ids)               # posterior means of the training set, (N, D), (N,)
    context = prior.training_context(ids)               # known before the encoder runs
    kl_per_dim = prior.kl(mean, std, context=context)   # (B, D)

Outside the training set (validation, transfer, evaluation) the context is
:meth:`AssociativePrior.held_out_context` of the posterior mean, the nearest training code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from prosody_vae.prosody.priors.code_bank import CodeBank

__all__ = ["AssociativePrior"]

_LOG_2PI = math.log(2.0 * math.pi)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class AssociativePrior(nn.Module):
    """Diagonal Gaussian prior p(z | c) with a K-NN code bank (``self.bank``, a :class:`CodeBank`).

    Follows the :class:`~prosody_vae.prosody.priors.base.Prior` protocol with ``needs_context = True``:
    ``context`` is the code c of a neighbour (B, D). The look-ups in the bank that training and
    inference need are methods here (:meth:`training_context`, :meth:`held_out_context`,
    :meth:`random_code`, :meth:`sample_near`, :meth:`ancestral_walk`), so no caller indexes ``bank``;
    the bank itself is left to the training loop's bookkeeping (its size and fill).

    Args:
        latent_dim: D.
        k_neighbours: K, the default neighbourhood size.
        hidden_dim: width of the prior network's hidden layers.
        num_layers: hidden layers of the prior network (a ReLU MLP).
        min_std: floor added to the softplus standard deviation, so the prior never collapses.
        refresh_every: steps between bank refreshes for :meth:`needs_refresh`; 0 leaves refreshes
            to the loop's epoch boundaries (the default schedule).
        bank_size: bank rows to allocate up front (optional; the bank grows on demand).
    """

    needs_context = True

    def __init__(
        self,
        latent_dim: int,
        *,
        k_neighbours: int = 5,
        hidden_dim: int = 128,
        num_layers: int = 2,
        min_std: float = 1e-3,
        refresh_every: int = 0,
        bank_size: int = 0,
    ) -> None:
        super().__init__()
        self.latent_dim = _positive_int("latent_dim", latent_dim)
        self.k_neighbours = _positive_int("k_neighbours", k_neighbours)
        if not min_std > 0:
            raise ValueError(f"min_std must be > 0, got {min_std!r}")
        for name, value in (("refresh_every", refresh_every), ("bank_size", bank_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        self.min_std = min_std
        self.refresh_every = refresh_every
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(_positive_int("num_layers", num_layers)):
            layers += [nn.Linear(width, _positive_int("hidden_dim", hidden_dim)), nn.ReLU()]
            width = hidden_dim
        head = nn.Linear(width, 2 * latent_dim)
        with torch.no_grad():  # start near unit scale, like the N(0, I) this prior replaces
            head.bias[latent_dim:].fill_(math.log(math.expm1(1.0 - min_std)))
        self.network = nn.Sequential(*layers, head)
        self.bank = CodeBank(latent_dim, size=bank_size)

    # ---- the distribution -----------------------------------------------------------------------

    def forward(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """Prior parameters: context (..., D) -> mean (..., D), std (..., D) >= min_std."""
        self._check_last("context", context)
        raw = self.network(context.to(self.network[0].weight.dtype))
        mean, std_raw = raw.chunk(2, dim=-1)
        return mean.to(context.dtype), (F.softplus(std_raw) + self.min_std).to(context.dtype)

    def kl(self, mean: Tensor, std: Tensor, context: Tensor | None = None) -> Tensor:
        """Closed-form per-dimension KL(N(mean, std^2) || p(z | context)) in nats.

        Args:
            mean: (B, D) posterior mean.
            std: (B, D) posterior standard deviation, > 0.
            context: (B, D) neighbour codes (:meth:`neighbour_context`). Required.

        Returns:
            (B, D), >= 0; differentiable in mean, std and the prior network.
        """
        prior_mean, prior_std = self(self._require_context(context, mean))
        if std.shape != mean.shape:
            raise ValueError(f"std must have the shape of mean {tuple(mean.shape)}, got {tuple(std.shape)}")
        ratio = std / prior_std
        return -torch.log(ratio) + 0.5 * (ratio.square() + ((mean - prior_mean) / prior_std).square()) - 0.5

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """log p(z | context) summed over D: z (..., D), context (..., D) -> (...), nats."""
        prior_mean, prior_std = self(self._require_context(context, z))
        norm = ((z - prior_mean) / prior_std).square()
        return (-0.5 * norm - torch.log(prior_std) - 0.5 * _LOG_2PI).sum(dim=-1)

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        context: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw n latents: (n, D), spread scaled by ``temperature`` (0 gives the prior means).

        ``context`` is (D,) or (1, D) (all n from one neighbourhood) or (n, D). Without it, each
        sample first draws c uniformly from the bank: the ACN marginal prior ``p(z) = mean_c p(z|c)``,
        which is what ``CapacitronVAE.sample_prior`` gets.
        """
        _positive_int("n", n)
        if context is None:
            context = self.bank.codes[self.bank.random_rows(n, generator=generator)]
        else:
            self._check_last("context", context)
            if context.dim() == 1 or context.shape[0] == 1:
                context = context.reshape(1, self.latent_dim).expand(n, self.latent_dim)
            elif context.shape != (n, self.latent_dim):
                raise ValueError(f"context must be (D,), (1, D) or ({n}, D), got {tuple(context.shape)}")
        return self._draw(context, temperature, generator)

    def _draw(self, context: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        prior_mean, prior_std = self(context)
        noise = torch.randn(
            prior_mean.shape, dtype=prior_mean.dtype, device=prior_mean.device, generator=generator
        )
        return prior_mean + temperature * prior_std * noise

    # ---- the bank -------------------------------------------------------------------------------

    def update_bank(self, codes: Tensor, ids: Tensor) -> None:
        """Write posterior means (N, D) for item ids (N,) long; see :meth:`CodeBank.update`."""
        self.bank.update(codes, ids)

    def refresh(self, codes: Tensor, ids: Tensor) -> None:
        """Replace the whole bank with codes (N, D) for ids (N,)."""
        self.bank.refresh(codes, ids)

    def needs_refresh(self, step: int) -> bool:
        """Whether the loop should refresh the bank before ``step``.

        True while the bank cannot serve a K-neighbour look-up, and every ``refresh_every`` steps when
        that is > 0; with ``refresh_every == 0`` the loop refreshes at each epoch start instead.
        """
        if self.bank.num_filled <= self.k_neighbours:
            return True
        return self.refresh_every > 0 and step % self.refresh_every == 0

    def neighbour_context(
        self,
        codes: Tensor,
        ids: Tensor,
        k_neighbours: int | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The code of one of the K nearest neighbours, chosen uniformly: (B, D) -> (B, D).

        Args:
            codes: (B, D) query codes (posterior means, or the batch's stored ``bank.codes[ids]``).
            ids: (B,) long item ids; an item's own row is never returned (-1: not in the bank).
            k_neighbours: K (default: the module's).

        No gradient flows through the look-up; the result has the dtype and device of ``codes``.
        """
        k = self.k_neighbours if k_neighbours is None else _positive_int("k_neighbours", k_neighbours)
        rows = self.bank.random_neighbour(codes, ids, k, generator=generator)
        return self.bank.codes[rows].to(device=codes.device, dtype=codes.dtype)

    def training_context(
        self, ids: Tensor, k_neighbours: int | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Context for training items ``ids`` (B,) long: (B, D) stored codes of random neighbours.

        The query is each item's *stored* code (written at its last visit or refresh), so the context
        is known before the encoder runs; the item's own row is excluded by id (see
        :meth:`neighbour_context`). The result has the bank's dtype and device.
        """
        if ids.dim() != 1:
            raise ValueError(f"ids must be (B,), got {tuple(ids.shape)}")
        rows = ids.to(device=self.bank.codes.device, dtype=torch.long)
        return self.neighbour_context(self.bank.codes[rows], rows, k_neighbours, generator=generator)

    def random_code(self, *, generator: torch.Generator | None = None) -> Tensor:
        """One stored training code drawn uniformly from the bank: (D,), e.g. a walk's start."""
        return self.bank.codes[self.bank.random_rows(1, generator=generator)[0]]

    def held_out_context(self, mean: Tensor) -> Tensor:
        """Context for items outside the bank: the code of the training item nearest to each mean.

        ACN's prior for test data: p(z | c) with c the nearest training code (K = 1, deterministic,
        so validation and evaluation numbers do not depend on a random draw). Never use it for
        training items: their own code is in the bank, so the prior would be conditioned on the item
        itself. mean (B, D) -> (B, D), with the dtype and device of ``mean``.
        """
        self._check_last("mean", mean)
        outside = torch.full((mean.shape[0],), -1, dtype=torch.long, device=mean.device)
        rows = self.bank.nearest(mean, outside, 1).indices[:, 0]  # (B,)
        return self.bank.codes[rows].to(device=mean.device, dtype=mean.dtype)

    # ---- inference ------------------------------------------------------------------------------

    @torch.no_grad()
    def sample_near(
        self, code: Tensor, n: int, temperature: float = 1.0, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Prosody variations around a reference: n draws of z ~ p(z | c = code).

        Args:
            code: (D,) or (B, D) reference codes (posterior means).

        Returns:
            (n, D) for a (D,) code, (B, n, D) for (B, D) codes.
        """
        self._check_last("code", code)
        _positive_int("n", n)
        contexts = code.reshape(-1, 1, self.latent_dim).expand(-1, n, self.latent_dim)  # (B, n, D)
        z = self._draw(contexts, temperature, generator)
        return z[0] if code.dim() == 1 else z

    @torch.no_grad()
    def ancestral_walk(
        self,
        start_code: Tensor,
        steps: int,
        temperature: float = 1.0,
        *,
        k_neighbours: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """ACN "daydream": z_t ~ p(z | c_t), then c_{t+1} = a random one of z_t's K nearest codes.

        ACN decodes z_t and re-encodes the result before the look-up; we look z_t up directly (for a
        trained model the posterior mean of a decoding of z is close to z, and decoding costs a
        synthesis per step). The bank row used as the current context is excluded from the next
        look-up, so the walk cannot stand still.

        Args:
            start_code: (D,) starting code, e.g. a reference's posterior mean.

        Returns:
            (steps, D): z_1 .. z_steps.
        """
        self._check_last("start_code", start_code)
        if start_code.dim() != 1:
            raise ValueError(f"start_code must be (D,), got {tuple(start_code.shape)}")
        k = self.k_neighbours if k_neighbours is None else _positive_int("k_neighbours", k_neighbours)
        context = start_code.unsqueeze(0).to(self.bank.codes)  # (1, D)
        current = torch.full((1,), -1, dtype=torch.long, device=self.bank.codes.device)
        path = []
        for _ in range(_positive_int("steps", steps)):
            z = self._draw(context, temperature, generator)  # (1, D)
            path.append(z)
            current = self.bank.random_neighbour(z, current, k, generator=generator)  # (1,)
            context = self.bank.codes[current]
        return torch.cat(path, dim=0).to(start_code.dtype)

    # ---- checks ---------------------------------------------------------------------------------

    def _check_last(self, name: str, x: Tensor) -> None:
        if x.dim() < 1 or x.shape[-1] != self.latent_dim:
            raise ValueError(f"{name} must end in the latent size {self.latent_dim}, got {tuple(x.shape)}")

    def _require_context(self, context: Tensor | None, like: Tensor) -> Tensor:
        if context is None:
            raise ValueError(
                "AssociativePrior needs context: a neighbour's code shaped like "
                f"{tuple(like.shape)} (see neighbour_context)"
            )
        self._check_last("context", context)
        return context
