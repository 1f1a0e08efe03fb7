"""Hierarchical capacity: a high-level latent z_s over the low-level latent z_p, each at its own capacity.

Capacitron's last construction (Battenberg et al. 2019, arXiv 1906.03402, "decomposing embedding
capacity hierarchically across two sets of latents, allowing a portion of the latent variability to
be specified and the remaining variability sampled from a learned prior"):

* generative side: ``z_s ~ p(z_s) = N(0, I)``, ``z_p ~ p(z_p | z_s)`` (a learned diagonal Gaussian),
  and the decoder reads z_p (plus text and speaker, as in the flat model);
* inference side: ``q(z_p | x, text, speaker)`` from the reference, exactly the flat module's
  posterior, and ``q(z_s | z_p)`` from the z_p that the decoder receives;
* the rates, both in nats per utterance (closed-form KLs of diagonal Gaussians)::

      R_s = KL(q(z_s | z_p) || p(z_s))                      held at C_s
      R_p = E_{z_s ~ q(z_s | z_p)} KL(q(z_p | x) || p(z_p | z_s))   held at C_p

  with one Lagrange multiplier each (:class:`~prosody_vae.prosody.capacity.MultiCapacityObjective`,
  stepped by :class:`~prosody_vae.prosody.dual_optimizer.DualOptimizer`).

What the two capacities bound. ``I(X; Z_s) <= E[R_s]`` (z_s sees x only through z_p; the KL of the
marginal q(z_s | x) is at most the average KL of q(z_s | z_p), by convexity). And with the variational
bound ``-log p(z_p) <= E_{q(z_s|x)}[-log p(z_p | z_s)] + KL(q(z_s | x) || p(z_s))``,
``I(X; Z_p) <= E[KL(q(z_p | x) || p(z_p))] <= E[R_s + R_p]``: transfer via z_p carries at most
C_s + C_p nats, transfer via z_s at most C_s, and ``-(L1 + R_s + R_p)`` is a lower bound on log p(x)
(a valid ELBO). R_p is the closed-form KL at one z_s, so its estimate is unbiased whichever z_p
sample drew that z_s; because its quadratic part is integrated over q(z_p | x), it is never negative
(a one-sample log ratio ``log q(z_p|x) - log p(z_p|z_s)`` at the z_p that drew z_s is not, and it
would also charge R_p for what z_s knows about that sample's noise).

Where we follow the paper, and where we deviate (see docs/hierarchical.md):

* follow: two latent sets, q(z_p | x, text, speaker) from the reference, q(z_s | z_p), p(z_s) = N(0, I),
  a learned conditional p(z_p | z_s), one capacity and one multiplier per set, total C_s + C_p;
  transfer via z_p or via z_s with the rest sampled from p(z_p | z_s);
* deviate: q(z_s | z_p) and p(z_p | z_s) are the flat posterior's MLP head (``Linear -> tanh ->
  Linear``, std = softplus + floor); p(z_p | z_s) does not read text or speaker (the flat prior
  does not either); in eval mode z_p and z_s are posterior means, not samples (as in the flat module).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from prosody_vae.prosody.posterior import GaussianPosterior
from prosody_vae.prosody.priors.standard import StandardNormalPrior
from prosody_vae.prosody.vae import CapacitronVAE, Posterior

__all__ = [
    "HierarchicalCapacitronVAE",
    "HierarchicalDivergence",
    "HierarchicalOutput",
    "HierarchicalPosterior",
    "gaussian_kl",
]


class HierarchicalPosterior(NamedTuple):
    """What :meth:`HierarchicalCapacitronVAE.posterior_of` returns: both posteriors and the latents drawn."""

    low: Posterior  # q(z_p | x, text, speaker): mean, std (B, D_p)
    z: Tensor  # (B, D_p) z_p: a sample of ``low`` (training) or its mean (eval); what the decoder reads
    high: Posterior  # q(z_s | z_p) at this z: mean, std (B, D_s)
    z_s: Tensor  # (B, D_s) a sample of ``high`` or its mean, drawn like z


class HierarchicalDivergence(NamedTuple):
    """The two rates of a :class:`HierarchicalPosterior`, what :meth:`HierarchicalCapacitronVAE.kl` returns; nats."""

    kl: Tensor  # (B,) kl_s + kl_p, the total rate (bounded by C_s + C_p in training)
    kl_s: Tensor  # (B,) KL(q(z_s | z_p) || N(0, I))
    kl_p: Tensor  # (B,) KL(q(z_p | x) || p(z_p | z_s)) at the drawn z_s
    kl_s_per_dim: Tensor  # (B, D_s)
    kl_p_per_dim: Tensor  # (B, D_p)
    conditional_prior: Posterior  # p(z_p | z_s) at the drawn z_s: mean, std (B, D_p)


class HierarchicalOutput(NamedTuple):
    """What :meth:`HierarchicalCapacitronVAE.encode` returns. ``z``, ``mean``, ``std`` and ``kl`` read
    like the flat module's :class:`~prosody_vae.prosody.vae.ProsodyOutput` (z is z_p)."""

    z: Tensor  # (B, D_p) z_p fed to the decoder
    mean: Tensor  # (B, D_p) mean of q(z_p | x)
    std: Tensor  # (B, D_p) std of q(z_p | x)
    z_s: Tensor  # (B, D_s) the high-level latent drawn from q(z_s | z_p)
    mean_s: Tensor  # (B, D_s) mean of q(z_s | z_p)
    std_s: Tensor  # (B, D_s) std of q(z_s | z_p)
    kl: Tensor  # (B,) kl_s + kl_p, nats
    kl_s: Tensor  # (B,) nats
    kl_p: Tensor  # (B,) nats
    kl_s_per_dim: Tensor  # (B, D_s)
    kl_p_per_dim: Tensor  # (B, D_p)


def gaussian_kl(mean_q: Tensor, std_q: Tensor, mean_p: Tensor, std_p: Tensor) -> Tensor:
    """Per-dimension KL(N(mean_q, std_q^2) || N(mean_p, std_p^2)) in nats; all (B, D) -> (B, D).

    ``log(std_p / std_q) + (std_q^2 + (mean_q - mean_p)^2) / (2 std_p^2) - 1/2``, with the logs taken of
    the standard deviations themselves, so it stays finite for any std > 0.
    """
    ratio = std_q / std_p
    return -torch.log(ratio) + 0.5 * (ratio.square() + ((mean_q - mean_p) / std_p).square()) - 0.5


def _draw(posterior: Posterior, sample: bool) -> Tensor:
    return posterior.rsample() if sample else posterior.mean


class HierarchicalCapacitronVAE(nn.Module):
    """Two latent sets after Capacitron's hierarchical decomposition; embeddable like ``CapacitronVAE``.

    A thin composer: the flat module passed as ``encoder`` gives q(z_p | x, text, speaker) (its
    reference encoder, text summary, posterior head and, if built with them, its stand-ins for an
    absent transcript or an unknown voice); this module adds q(z_s | z_p), p(z_p | z_s) and
    p(z_s) = N(0, I). Only ``encoder.posterior_of`` is used: the encoder's own prior plays no part
    (the low-level prior is p(z_p | z_s)), so it must be one without a context. The decoder is
    conditioned on ``z`` (= z_p, size ``latent_dim``), exactly as on the flat module's z.

    Args:
        encoder: the flat :class:`CapacitronVAE` whose posterior is q(z_p | x, text, speaker); its
            ``latent_dim`` is D_p.
        high_latent_dim: D_s, size of the high-level latent z_s.
        hierarchy_hidden_dim: width of the q(z_s | z_p) and p(z_p | z_s) heads.
        min_std: floor on the standard deviations of q(z_s | z_p) and p(z_p | z_s).

    Attributes:
        encoder: the flat module (q(z_p | ...)); high_posterior: q(z_s | z_p); conditional_prior:
            p(z_p | z_s); prior: p(z_s).
    """

    def __init__(
        self,
        encoder: CapacitronVAE,
        *,
        high_latent_dim: int = 16,
        hierarchy_hidden_dim: int = 64,
        min_std: float = 1e-4,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, CapacitronVAE):
            raise TypeError(f"encoder must be a CapacitronVAE, got {type(encoder).__name__}")
        if encoder.prior.needs_context:
            raise ValueError(
                f"the encoder's prior ({type(encoder.prior).__name__}) needs a context; the hierarchical "
                "model replaces the prior of z_p by p(z_p | z_s): build the encoder with prior=None"
            )
        for name, value in (
            ("high_latent_dim", high_latent_dim),
            ("hierarchy_hidden_dim", hierarchy_hidden_dim),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.encoder = encoder
        self.high_latent_dim = high_latent_dim
        self.high_posterior = GaussianPosterior(
            reference_dim=encoder.latent_dim,
            latent_dim=high_latent_dim,
            hidden_dim=hierarchy_hidden_dim,
            min_std=min_std,
        )
        self.conditional_prior = GaussianPosterior(
            reference_dim=high_latent_dim,
            latent_dim=encoder.latent_dim,
            hidden_dim=hierarchy_hidden_dim,
            min_std=min_std,
        )
        self.prior = StandardNormalPrior(high_latent_dim)

    @property
    def latent_dim(self) -> int:
        """D_p, the size of z_p, what the decoder reads."""
        return self.encoder.latent_dim

    @property
    def n_mels(self) -> int:
        return self.encoder.n_mels

    @property
    def speaker_dim(self) -> int:
        return self.encoder.speaker_dim

    @property
    def uses_text(self) -> bool:
        """Whether :meth:`encode` reads the reference transcript's token embeddings."""
        return self.encoder.uses_text

    @property
    def text_optional(self) -> bool:
        """Whether a reference may come without its transcript (see ``CapacitronVAE``)."""
        return self.encoder.text_optional

    @property
    def speaker_optional(self) -> bool:
        """Whether a reference's voice may be unknown (see ``CapacitronVAE``)."""
        return self.encoder.speaker_optional

    @property
    def reads_f0(self) -> bool:
        """Whether the posterior reads the reference's F0 (see ``CapacitronVAE``)."""
        return self.encoder.reads_f0

    def low_posterior(
        self,
        mel: Tensor,
        lengths: Tensor,
        *,
        text: Tensor | None = None,
        text_lengths: Tensor | None = None,
        speaker: Tensor | None = None,
        speaker_known: Tensor | None = None,
        f0: Tensor | None = None,
    ) -> Posterior:
        """q(z_p | x, text, speaker): one encoder pass, the flat module's ``posterior_of``.

        Args:
            mel: (B, T, n_mels) reference log-mels; frames past ``lengths`` are ignored.
            lengths: (B,) valid frames per item.
            text, text_lengths: (B, L, E) token embeddings of the reference transcript and (B,) their
                lengths, as ``CapacitronVAE.posterior_of`` takes them.
            speaker, speaker_known: (B, P) the reference's voice and (B,) which items' voices are
                known, likewise.
            f0: (B, T) the reference's F0 in Hz, for a flat module built with ``reference_pitch``.

        Returns:
            :class:`Posterior` with mean and std, (B, D_p) each.
        """
        return self.encoder.posterior_of(
            mel,
            lengths,
            text=text,
            text_lengths=text_lengths,
            speaker=speaker,
            speaker_known=speaker_known,
            f0=f0,
        )

    def high_posterior_of(self, z: Tensor) -> Posterior:
        """q(z_s | z_p): z_p (N, D_p) -> mean, std (N, D_s)."""
        mean, std = self.high_posterior(z)
        return Posterior(mean=mean, std=std)

    def conditional_prior_of(self, z_s: Tensor) -> Posterior:
        """p(z_p | z_s): z_s (N, D_s) -> mean, std (N, D_p)."""
        mean, std = self.conditional_prior(z_s)
        return Posterior(mean=mean, std=std)

    def posterior_of(
        self,
        mel: Tensor,
        lengths: Tensor,
        *,
        text: Tensor | None = None,
        text_lengths: Tensor | None = None,
        speaker: Tensor | None = None,
        speaker_known: Tensor | None = None,
        f0: Tensor | None = None,
        sample: bool | None = None,
    ) -> HierarchicalPosterior:
        """Both posteriors of a batch of references, and the latents drawn from them; no KL.

        q(z_s | z_p) reads the z_p drawn here, so the draw is part of this step: ``sample`` True
        draws reparameterised samples of z_p and then z_s, False takes both means, None means
        "sample in training mode, means in eval mode". Other arguments as for :meth:`low_posterior`.

        Returns:
            :class:`HierarchicalPosterior`: q(z_p | x) (B, D_p), z (B, D_p), q(z_s | z_p) (B, D_s), z_s (B, D_s).
        """
        low = self.low_posterior(
            mel,
            lengths,
            text=text,
            text_lengths=text_lengths,
            speaker=speaker,
            speaker_known=speaker_known,
            f0=f0,
        )
        return self.hierarchy_of(low, sample=sample)

    def hierarchy_of(self, low: Posterior, *, sample: bool | None = None) -> HierarchicalPosterior:
        """Draw z_p from q(z_p | x) (B, D_p), then z_s from q(z_s | z_p) (B, D_s); ``sample`` as for
        :meth:`posterior_of`. For a caller that runs the encoder itself (``low_posterior``)."""
        if sample is None:
            sample = self.training
        z = _draw(low, sample)  # (B, D_p)
        high = self.high_posterior_of(z)  # (B, D_s)
        return HierarchicalPosterior(low=low, z=z, high=high, z_s=_draw(high, sample))

    def kl(self, posterior: HierarchicalPosterior) -> HierarchicalDivergence:
        """The two rates of a posterior in closed form, per utterance and per dimension; no encoder pass.

        ``kl_s = KL(q(z_s | z_p) || N(0, I))``; ``kl_p = KL(q(z_p | x) || p(z_p | z_s))`` at the drawn
        z_s (see the module docstring for why this, and not a log ratio at the z_p sample).
        """
        kl_s_per_dim = self.prior.kl(posterior.high.mean, posterior.high.std)  # (B, D_s)
        conditional = self.conditional_prior_of(posterior.z_s)  # (B, D_p) each
        kl_p_per_dim = gaussian_kl(posterior.low.mean, posterior.low.std, conditional.mean, conditional.std)
        kl_s, kl_p = kl_s_per_dim.sum(dim=-1), kl_p_per_dim.sum(dim=-1)
        return HierarchicalDivergence(
            kl=kl_s + kl_p,
            kl_s=kl_s,
            kl_p=kl_p,
            kl_s_per_dim=kl_s_per_dim,
            kl_p_per_dim=kl_p_per_dim,
            conditional_prior=conditional,
        )

    def latent(self, posterior: HierarchicalPosterior) -> Tensor:
        """z_p (B, D_p), what the decoder reads: drawn in :meth:`posterior_of` (q(z_s | z_p) needed it)."""
        return posterior.z

    def encode(
        self,
        mel: Tensor,
        lengths: Tensor,
        *,
        text: Tensor | None = None,
        text_lengths: Tensor | None = None,
        speaker: Tensor | None = None,
        speaker_known: Tensor | None = None,
        f0: Tensor | None = None,
        sample: bool | None = None,
    ) -> HierarchicalOutput:
        """Posteriors, rates and latents of a batch of references: the three steps in one call.

        Args:
            mel, lengths, text, text_lengths, speaker, speaker_known, sample: as for :meth:`posterior_of`.

        Returns:
            :class:`HierarchicalOutput`: z (B, D_p) for the decoder, z_s (B, D_s), both posteriors,
            kl_s, kl_p and their sum kl (B,), nats.
        """
        posterior = self.posterior_of(
            mel,
            lengths,
            text=text,
            text_lengths=text_lengths,
            speaker=speaker,
            speaker_known=speaker_known,
            f0=f0,
            sample=sample,
        )
        return self.output_of(posterior)

    def output_of(self, posterior: HierarchicalPosterior) -> HierarchicalOutput:
        """The rates (:meth:`kl`) and latents of a posterior, gathered as :meth:`encode` returns them."""
        divergence = self.kl(posterior)
        return HierarchicalOutput(
            z=self.latent(posterior),
            mean=posterior.low.mean,
            std=posterior.low.std,
            z_s=posterior.z_s,
            mean_s=posterior.high.mean,
            std_s=posterior.high.std,
            kl=divergence.kl,
            kl_s=divergence.kl_s,
            kl_p=divergence.kl_p,
            kl_s_per_dim=divergence.kl_s_per_dim,
            kl_p_per_dim=divergence.kl_p_per_dim,
        )

    forward = encode

    def sample_high(self, n: int, temperature: float = 1.0) -> Tensor:
        """n high-level latents z_s ~ N(0, temperature^2 I): (n, D_s) on the module's device."""
        return self.prior.sample(n, temperature=temperature)

    def sample_low(self, z_s: Tensor, temperature: float = 1.0) -> Tensor:
        """z_p ~ p(z_p | z_s), the spread scaled by ``temperature`` (0 gives the conditional mean).

        Transfer via z_s: take ``z_s`` from a reference (``encode(...).z_s``, repeated n times for n
        renditions) and let this sample the low-level rest. z_s (n, D_s) -> z_p (n, D_p).
        """
        if z_s.dim() != 2 or z_s.shape[-1] != self.high_latent_dim:
            raise ValueError(f"z_s must have shape (n, {self.high_latent_dim}), got {tuple(z_s.shape)}")
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        conditional = self.conditional_prior_of(z_s)
        return conditional.mean + temperature * conditional.std * torch.randn_like(conditional.std)

    def sample_prior(self, n: int, temperature: float = 1.0) -> Tensor:
        """Ancestral samples z_s ~ p(z_s), z_p ~ p(z_p | z_s), both spreads scaled by ``temperature``:
        (n, D_p), what the decoder reads."""
        return self.sample_low(self.sample_high(n, temperature), temperature)
