"""The standard normal prior p(z) = N(0, I), Capacitron's prior (Battenberg et al. 2019).

It follows the :class:`~prosody_vae.prosody.priors.base.Prior` protocol; ``context`` is accepted
everywhere and ignored, and an utterance outside the training set needs no context either.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["StandardNormalPrior"]


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I) over D dimensions.

    ``loc`` and ``scale`` are non-persistent buffers: they follow ``.to(device)`` and never enter a
    checkpoint (they are constants, not state).

    Args:
        latent_dim: D.
    """

    needs_context = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        self.latent_dim = latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("scale", torch.ones(latent_dim), persistent=False)

    def _check_last(self, name: str, x: Tensor) -> None:
        if x.dim() < 1 or x.shape[-1] != self.latent_dim:
            raise ValueError(f"{name} must end in the latent size {self.latent_dim}, got {tuple(x.shape)}")

    def kl(self, mean: Tensor, std: Tensor, context: Tensor | None = None) -> Tensor:
        """Closed-form per-dimension KL(N(mean, std^2) || N(loc, scale^2)) in nats.

        ``log(scale / std) + (std^2 + (mean - loc)^2) / (2 scale^2) - 1/2``, with ``log(std)`` taken
        of the standard deviation itself (never ``0.5 * log(var)`` of a squared, possibly underflowed
        value), so it stays finite for any std > 0.

        Args:
            mean: (B, D) posterior mean.
            std: (B, D) posterior standard deviation, > 0.
            context: ignored.

        Returns:
            (B, D) KL per dimension, >= 0.
        """
        self._check_last("mean", mean)
        if std.shape != mean.shape:
            raise ValueError(f"std must have the shape of mean {tuple(mean.shape)}, got {tuple(std.shape)}")
        loc, scale = self.loc.to(mean.dtype), self.scale.to(mean.dtype)
        ratio = std / scale
        return -torch.log(ratio) + 0.5 * (ratio.square() + ((mean - loc) / scale).square()) - 0.5

    def sample(self, n: int, temperature: float = 1.0, context: Tensor | None = None) -> Tensor:
        """Draw n latents, with the spread scaled by ``temperature`` (0 gives the mode).

        Returns:
            (n, D) on the buffers' device.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        noise = torch.randn(n, self.latent_dim, device=self.loc.device, dtype=self.loc.dtype)
        return self.loc + temperature * self.scale * noise

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """Log density summed over the last dimension: (..., D) -> (...), nats."""
        self._check_last("z", z)
        scale = self.scale.to(z.dtype)
        norm = ((z - self.loc.to(z.dtype)) / scale).square()
        return (-0.5 * norm - torch.log(scale) - 0.5 * math.log(2 * math.pi)).sum(dim=-1)

    def held_out_context(self, mean: Tensor) -> None:
        """No context: the prior is the same for every utterance."""
        return None
