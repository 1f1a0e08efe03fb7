"""The interface every prior over the prosody latent z follows: one typed :class:`Prior` protocol.

:class:`~prosody_vae.prosody.vae.CapacitronVAE`, :func:`~prosody_vae.prosody.bounds.iwae_bound` and the
TTS model ask a prior only for what this protocol names, so a new prior needs no change in them.
``context`` selects p(z | c) for a conditional prior (the associative prior's neighbour code) and is
ignored by an unconditional one (the standard normal).

A prior says whether its KL needs a context (:attr:`Prior.needs_context`) and where the context of an
utterance outside the training set comes from (:meth:`Prior.held_out_context`); the context of a
training utterance is the caller's business (for the associative prior, a random neighbour's code,
see :mod:`prosody_vae.training.acn`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["Prior"]


@runtime_checkable
class Prior(Protocol):
    """p(z) or p(z | c) over D dimensions, with a closed-form KL to a diagonal Gaussian.

    Attributes:
        latent_dim: D.
        needs_context: whether :meth:`kl` and :meth:`log_prob` need a context (B, D). False for
            N(0, I); True for the associative prior.

    ``isinstance(obj, Prior)`` checks that these members exist (not their signatures).
    """

    latent_dim: int
    needs_context: bool

    def kl(self, mean: Tensor, std: Tensor, context: Tensor | None = None) -> Tensor:
        """Per-dimension KL(N(mean, std^2) || p(z | context)): mean, std (B, D) -> (B, D), nats."""
        ...

    def sample(self, n: int, temperature: float = 1.0, context: Tensor | None = None) -> Tensor:
        """n latents (n, D), the spread scaled by ``temperature`` (0 gives the mode)."""
        ...

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """log p(z | context) summed over D: (..., D) -> (...), nats."""
        ...

    def held_out_context(self, mean: Tensor) -> Tensor | None:
        """Context for posteriors of utterances outside the training set: mean (B, D) -> (B, D) or None.

        None exactly when :attr:`needs_context` is False. Deterministic, so validation and evaluation
        numbers do not depend on a random draw.
        """
        ...
