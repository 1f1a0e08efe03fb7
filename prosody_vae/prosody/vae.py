"""CapacitronVAE: reference encoder + optional text summary + Gaussian posterior + prior.

A thin composer of :class:`~prosody_vae.prosody.reference_encoder.ReferenceEncoder`,
:class:`~prosody_vae.prosody.posterior.TextSummary`, :class:`~prosody_vae.prosody.posterior.GaussianPosterior`
and a :class:`~prosody_vae.prosody.priors.base.Prior` (the standard normal by default). It knows nothing
about the decoder: any TTS model can condition on ``encode(...).z`` and add ``CapacityObjective`` to its
loss.

Three steps, each its own method, so a caller asks for what it needs and nothing is computed to be
thrown away: :meth:`CapacitronVAE.posterior_of` (the encoder pass, q(z | x) as a :class:`Posterior`),
:meth:`CapacitronVAE.kl` (KL(q || p) of a posterior, given the prior's context if it needs one) and
:meth:`CapacitronVAE.latent` (z: a reparameterised sample or the mean). :meth:`CapacitronVAE.encode`
composes the three into a :class:`ProsodyOutput`.

Follows Capacitron (Battenberg et al. 2019, arXiv 1906.03402): z is a reparameterised sample of
q(z | x, text, speaker) during training, and the KL to the prior is computed in closed form, in nats
per utterance. Deviations from the public reference implementation (Coqui TTS): in eval mode z is the
posterior **mean** unless sampling is asked for (Coqui samples, so eval-mode transfer is random); the
KL is per dimension as well as per utterance; prior samples come in any batch size and temperature,
on the module's device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from prosody_vae.prosody.posterior import GaussianPosterior, TextSummary
from prosody_vae.prosody.priors.base import Prior
from prosody_vae.prosody.priors.standard import StandardNormalPrior
from prosody_vae.prosody.reference_encoder import ReferenceEncoder

__all__ = ["CapacitronVAE", "Divergence", "Posterior", "ProsodyOutput"]


class Posterior(NamedTuple):
    """q(z | x, text, speaker) = N(mean, diag(std^2)), what :meth:`CapacitronVAE.posterior_of` returns."""

    mean: Tensor  # (B, D)
    std: Tensor  # (B, D) standard deviation (not a variance), >= min_std

    def rsample(self) -> Tensor:
        """A reparameterised sample ``mean + std * eps``, differentiable in mean and std: (B, D)."""
        return self.mean + self.std * torch.randn_like(self.std)


class Divergence(NamedTuple):
    """KL(q || p) of a posterior, what :meth:`CapacitronVAE.kl` returns; nats."""

    kl: Tensor  # (B,) per utterance, the sum over dimensions
    kl_per_dim: Tensor  # (B, D)


class ProsodyOutput(NamedTuple):
    """What :meth:`CapacitronVAE.encode` returns."""

    z: Tensor  # (B, D) latent fed to the decoder: sample (training) or posterior mean (eval)
    mean: Tensor  # (B, D) posterior mean
    std: Tensor  # (B, D) posterior standard deviation (not a variance), >= min_std
    kl: Tensor  # (B,) KL(q || p) per utterance, nats
    kl_per_dim: Tensor  # (B, D) KL per latent dimension, nats


class CapacitronVAE(nn.Module):
    """Variational prosody embedding of a reference mel spectrogram.

    Args:
        n_mels: mel bins of the reference spectrogram.
        latent_dim: D, size of z.
        reference_encoder: a :class:`ReferenceEncoder` to use, or a mapping of keyword arguments to
            build one (``n_mels`` is filled in), or None for the default encoder.
        text_embedding_dim: E, size of the token embeddings the text summary reads; 0 disables the
            text summary (then ``encode`` takes no text).
        text_summary_dim: S, size of the text summary.
        speaker_dim: P, size of a speaker embedding given to the posterior; 0 disables it.
        posterior_hidden_dim: width of the posterior MLP.
        min_std: floor on the posterior standard deviation.
        prior: the prior p(z) or p(z | context), any :class:`Prior`; None for N(0, I).

    Attributes:
        reference_encoder, text_summary, posterior, prior: the parts. ``posterior`` is the
            :class:`GaussianPosterior` head alone (its name is in every checkpoint's keys);
            :meth:`posterior_of` runs the whole encoder.
    """

    def __init__(
        self,
        *,
        n_mels: int = 80,
        latent_dim: int = 128,
        reference_encoder: ReferenceEncoder | Mapping[str, Any] | None = None,
        text_embedding_dim: int = 0,
        text_summary_dim: int = 128,
        speaker_dim: int = 0,
        posterior_hidden_dim: int = 128,
        min_std: float = 1e-4,
        prior: Prior | None = None,
    ) -> None:
        super().__init__()
        if reference_encoder is None:
            reference_encoder = ReferenceEncoder(n_mels=n_mels)
        elif isinstance(reference_encoder, Mapping):
            reference_encoder = ReferenceEncoder(**{"n_mels": n_mels, **reference_encoder})
        elif not isinstance(reference_encoder, ReferenceEncoder):
            raise TypeError(
                f"reference_encoder must be a ReferenceEncoder, a mapping of its arguments or None, "
                f"got {type(reference_encoder).__name__}"
            )
        if reference_encoder.n_mels != n_mels:
            raise ValueError(
                f"reference_encoder reads {reference_encoder.n_mels} mel bins but n_mels={n_mels}"
            )
        if text_embedding_dim < 0 or speaker_dim < 0:
            raise ValueError(
                f"text_embedding_dim and speaker_dim must be >= 0, got {text_embedding_dim} and {speaker_dim}"
            )
        if prior is None:
            prior = StandardNormalPrior(latent_dim)
        if not isinstance(prior, Prior):
            raise TypeError(
                f"prior must follow the Prior protocol (latent_dim, needs_context, kl, sample, log_prob, "
                f"held_out_context), got {type(prior).__name__}"
            )
        if prior.latent_dim != latent_dim:
            raise ValueError(f"prior is over {prior.latent_dim} dimensions but latent_dim={latent_dim}")

        self.n_mels = n_mels
        self.latent_dim = latent_dim
        self.speaker_dim = speaker_dim
        self.reference_encoder = reference_encoder
        self.text_summary = (
            TextSummary(input_dim=text_embedding_dim, hidden_dim=text_summary_dim)
            if text_embedding_dim
            else None
        )
        self.posterior = GaussianPosterior(
            reference_dim=reference_encoder.out_dim,
            latent_dim=latent_dim,
            text_dim=text_summary_dim if self.text_summary is not None else 0,
            speaker_dim=speaker_dim,
            hidden_dim=posterior_hidden_dim,
            min_std=min_std,
        )
        self.prior: Prior = prior

    @property
    def uses_text(self) -> bool:
        """Whether :meth:`encode` needs the reference transcript's token embeddings."""
        return self.text_summary is not None

    def posterior_of(
        self,
        mel: Tensor,
        lengths: Tensor,
        *,
        text: Tensor | None = None,
        text_lengths: Tensor | None = None,
        speaker: Tensor | None = None,
    ) -> Posterior:
        """q(z | x, text, speaker) of a batch of reference spectrograms: one encoder pass, no KL.

        Args:
            mel: (B, T, n_mels) reference log-mels; frames past ``lengths`` are ignored.
            lengths: (B,) valid frames per item.
            text: (B, L, E) token embeddings of the reference transcript; required iff the module
                was built with ``text_embedding_dim > 0``.
            text_lengths: (B,) valid tokens per item; required with ``text``.
            speaker: (B, P) speaker embedding; required iff ``speaker_dim > 0``.

        Returns:
            :class:`Posterior` with mean and std, (B, D) each.
        """
        summary = None
        if self.text_summary is not None:
            if text is None or text_lengths is None:
                raise ValueError(
                    "this CapacitronVAE has a text summary (text_embedding_dim="
                    f"{self.text_summary.input_dim}): pass text (B, L, E) and text_lengths (B,)"
                )
            if text.dim() != 3 or text.shape[0] != mel.shape[0]:
                raise ValueError(
                    f"text must have shape ({mel.shape[0]}, L, {self.text_summary.input_dim}), got {tuple(text.shape)}"
                )
            summary = self.text_summary(text, text_lengths)  # (B, S)
        elif text is not None or text_lengths is not None:
            raise ValueError(
                "text was given but this CapacitronVAE has no text summary (text_embedding_dim=0)"
            )
        ref = self.reference_encoder(mel, lengths)  # (B, H)
        mean, std = self.posterior(ref, text=summary, speaker=speaker)  # (B, D) each
        return Posterior(mean=mean, std=std)

    def kl(self, posterior: Posterior, context: Tensor | None = None) -> Divergence:
        """KL(q || p) of a posterior in closed form: per utterance (B,) and per dimension (B, D), nats.

        ``context`` (B, D) selects p(z | c) for a prior that needs one (``prior.needs_context``): the
        associative prior's neighbour code during training, ``prior.held_out_context(posterior.mean)``
        for a reference outside the training set. The standard normal ignores it.
        """
        kl_per_dim = self.prior.kl(posterior.mean, posterior.std, context=context)  # (B, D)
        return Divergence(kl=kl_per_dim.sum(dim=-1), kl_per_dim=kl_per_dim)

    def latent(self, posterior: Posterior, *, sample: bool | None = None) -> Tensor:
        """z (B, D) from a posterior: a reparameterised sample if ``sample``, else the mean.

        ``sample=None`` means "sample in training mode, mean in eval mode".
        """
        if sample is None:
            sample = self.training
        return posterior.rsample() if sample else posterior.mean

    def encode(
        self,
        mel: Tensor,
        lengths: Tensor,
        *,
        text: Tensor | None = None,
        text_lengths: Tensor | None = None,
        speaker: Tensor | None = None,
        sample: bool | None = None,
        prior_context: Tensor | None = None,
    ) -> ProsodyOutput:
        """Posterior, KL and z of a batch of reference spectrograms: the three steps in one call.

        Args:
            mel, lengths, text, text_lengths, speaker: as for :meth:`posterior_of`.
            sample: True for a reparameterised sample, False for the posterior mean, None for
                "sample in training mode, mean in eval mode".
            prior_context: passed to the prior's KL (see :meth:`kl`); a prior that needs a context
                (the associative prior) raises ``ValueError`` without one.

        Returns:
            :class:`ProsodyOutput` with z, mean, std (B, D), kl (B,) and kl_per_dim (B, D).
        """
        posterior = self.posterior_of(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker)
        divergence = self.kl(posterior, prior_context)
        return ProsodyOutput(
            z=self.latent(posterior, sample=sample),
            mean=posterior.mean,
            std=posterior.std,
            kl=divergence.kl,
            kl_per_dim=divergence.kl_per_dim,
        )

    forward = encode

    def sample_prior(self, n: int, temperature: float = 1.0, context: Tensor | None = None) -> Tensor:
        """Draw n latents from the prior (scaled by ``temperature``): (n, D) on the module's device."""
        return self.prior.sample(n, temperature=temperature, context=context)
