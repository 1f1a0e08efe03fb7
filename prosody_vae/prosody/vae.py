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

**Absent conditioning** (our addition; the paper's posterior always has its text and speaker). One
module serves references with and without a transcript, and from voices it knows and voices it does
not:

* ``text_dropout > 0`` adds a learned *null text summary* (S,). In training each item's summary is
  replaced by it with that probability; at inference it stands for a reference without a transcript
  (``text=None``, or ``text_lengths == 0`` for single items of a batch).
* ``speaker_dropout > 0`` adds a learned *unknown-speaker vector* (P,), trained the same way on the
  posterior's speaker input only; it stands for a reference spoken by a voice outside the speaker
  table (``speaker=None``, or ``speaker_known`` False for single items).

Both start at zero. The posterior must then judge the prosody from the reference audio alone, which
is what an untranscribed reference or an unseen voice asks of it at inference. A module built without
them (the default, and every model trained before they existed) refuses absent text or speaker with a
``ValueError``, as before; its state dict has no new keys, so old checkpoints load unchanged.

**Reference F0** (our addition, ``reference_pitch=True``): a
:class:`~prosody_vae.prosody.pitch_encoder.PitchEncoder` reads the reference's frame-level F0 and its
output is added to the reference embedding, so the posterior sees the pitch contour that the mel's
coarse low bins barely show (the measurement that motivates it is in that module's docstring).
``posterior_of`` then needs ``f0`` (B, T), in Hz on the mel's frame grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from prosody_vae.prosody.pitch_encoder import PitchEncoder
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
        text_dropout: probability, in training, that an item's text summary is replaced by the learned
            null summary; > 0 creates it (needs ``text_embedding_dim > 0``). 0: text is required.
        speaker_dropout: probability, in training, that an item's speaker input to the posterior is
            replaced by the learned unknown-speaker vector; > 0 creates it (needs ``speaker_dim > 0``).
        reference_pitch: also read the reference's frame-level F0 (a :class:`PitchEncoder` whose
            output is added to the reference embedding); ``posterior_of`` then takes ``f0``.

    Attributes:
        reference_encoder, text_summary, posterior, prior: the parts. ``posterior`` is the
            :class:`GaussianPosterior` head alone (its name is in every checkpoint's keys);
            :meth:`posterior_of` runs the whole encoder.
        null_text_summary: (S,) learned stand-in for an absent transcript, or None.
        unknown_speaker: (P,) learned stand-in for a voice outside the speaker table, or None.
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
        text_dropout: float = 0.0,
        speaker_dropout: float = 0.0,
        reference_pitch: bool = False,
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
        for name, rate in (("text_dropout", text_dropout), ("speaker_dropout", speaker_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {rate}")
        if text_dropout > 0 and text_embedding_dim == 0:
            raise ValueError("text_dropout > 0 needs a text summary (text_embedding_dim > 0)")
        if speaker_dropout > 0 and speaker_dim == 0:
            raise ValueError("speaker_dropout > 0 needs a speaker input (speaker_dim > 0)")

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
        self.text_dropout = float(text_dropout)
        self.speaker_dropout = float(speaker_dropout)
        # Created only when trained for: a module without them has the state dict it always had.
        self.null_text_summary = nn.Parameter(torch.zeros(text_summary_dim)) if text_dropout > 0 else None
        self.unknown_speaker = nn.Parameter(torch.zeros(speaker_dim)) if speaker_dropout > 0 else None
        self.pitch_encoder = PitchEncoder(out_dim=reference_encoder.out_dim) if reference_pitch else None

    @property
    def reads_f0(self) -> bool:
        """Whether :meth:`posterior_of` reads the reference's F0 (``reference_pitch``)."""
        return self.pitch_encoder is not None

    @property
    def uses_text(self) -> bool:
        """Whether :meth:`encode` reads the reference transcript's token embeddings."""
        return self.text_summary is not None

    @property
    def text_optional(self) -> bool:
        """Whether a reference may come without its transcript (a learned null summary stands in)."""
        return self.null_text_summary is not None

    @property
    def speaker_optional(self) -> bool:
        """Whether a reference's voice may be unknown (a learned unknown-speaker vector stands in)."""
        return self.unknown_speaker is not None

    def _kept(self, present: Tensor, rate: float) -> Tensor:
        """``present`` (B,) bool, each True item dropped with probability ``rate`` in training mode."""
        if not self.training or rate == 0:
            return present
        return present & (torch.rand(present.shape, device=present.device) >= rate)

    def _summary(self, text: Tensor | None, text_lengths: Tensor | None, batch: int) -> Tensor | None:
        """(B, S) text summary: the transcript's, or the null summary where it is absent or dropped."""
        if self.text_summary is None:
            if text is not None or text_lengths is not None:
                raise ValueError(
                    "text was given but this CapacitronVAE has no text summary (text_embedding_dim=0)"
                )
            return None
        null = self.null_text_summary
        if text is None and text_lengths is None and null is not None:
            return null.expand(batch, -1)  # no transcript for any item
        if text is None or text_lengths is None:
            raise ValueError(
                "this CapacitronVAE has a text summary (text_embedding_dim="
                f"{self.text_summary.input_dim}) and no null summary (text_dropout=0): "
                "pass text (B, L, E) and text_lengths (B,)"
            )
        if text.dim() != 3 or text.shape[0] != batch:
            raise ValueError(
                f"text must have shape ({batch}, L, {self.text_summary.input_dim}), got {tuple(text.shape)}"
            )
        if null is None:
            return self.text_summary(text, text_lengths)  # lengths are checked to be >= 1 there
        # Items with text_lengths == 0 have no transcript: summarise one (ignored) token, then swap.
        present = self._kept((text_lengths > 0).to(text.device), self.text_dropout)  # (B,)
        summary = self.text_summary(text, text_lengths.clamp_min(1))  # (B, S)
        return torch.where(present.unsqueeze(-1), summary, null.to(summary.dtype))

    def _speaker(self, speaker: Tensor | None, speaker_known: Tensor | None, batch: int) -> Tensor | None:
        """(B, P) speaker input: the given vectors, or the unknown-speaker vector where not known."""
        unknown = self.unknown_speaker
        if unknown is None:
            if speaker_known is not None and not torch.jit.is_tracing() and not bool(speaker_known.all()):
                raise ValueError(
                    "this CapacitronVAE has no unknown-speaker vector (speaker_dropout=0): "
                    "every item needs its speaker"
                )
            return speaker  # GaussianPosterior checks presence and shape
        if speaker is None:
            return unknown.expand(batch, -1)  # no item's voice is known
        known = torch.ones(batch, dtype=torch.bool, device=speaker.device)
        if speaker_known is not None:
            if speaker_known.shape != (batch,):
                raise ValueError(
                    f"speaker_known must have shape ({batch},), got {tuple(speaker_known.shape)}"
                )
            known = speaker_known.to(device=speaker.device, dtype=torch.bool)
        known = self._kept(known, self.speaker_dropout)
        if speaker.dim() != 2 or speaker.shape != (batch, unknown.shape[0]):
            raise ValueError(
                f"speaker must have shape ({batch}, {unknown.shape[0]}), got {tuple(speaker.shape)}"
            )
        return torch.where(known.unsqueeze(-1), speaker, unknown.to(speaker.dtype))

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
    ) -> Posterior:
        """q(z | x, text, speaker) of a batch of reference spectrograms: one encoder pass, no KL.

        In training mode, a module built with ``text_dropout`` or ``speaker_dropout`` replaces each
        item's text summary or speaker input by its learned stand-in with that probability.

        Args:
            mel: (B, T, n_mels) reference log-mels; frames past ``lengths`` are ignored.
            lengths: (B,) valid frames per item.
            text: (B, L, E) token embeddings of the reference transcript. Required iff the module
                was built with ``text_embedding_dim > 0``, unless it has a null summary: then None
                means "no transcript" for every item, and ``text_lengths == 0`` for single items.
            text_lengths: (B,) valid tokens per item; required with ``text``.
            speaker: (B, P) speaker embedding of the voice that spoke the reference. Required iff
                ``speaker_dim > 0``, unless the module has an unknown-speaker vector: then None
                means "voice unknown" for every item.
            speaker_known: (B,) bool, False where an item's voice is unknown (its row of
                ``speaker`` is ignored); None: all known. Needs the unknown-speaker vector.
            f0: (B, T) the reference's F0 in Hz per mel frame, 0 where unvoiced. Required iff the
                module was built with ``reference_pitch``; refused otherwise.

        Returns:
            :class:`Posterior` with mean and std, (B, D) each.
        """
        batch = mel.shape[0]
        summary = self._summary(text, text_lengths, batch)  # (B, S) or None
        speaker = self._speaker(speaker, speaker_known, batch)  # (B, P) or None
        ref = self.reference_encoder(mel, lengths)  # (B, H)
        if self.pitch_encoder is not None:
            if f0 is None or f0.shape != mel.shape[:2]:
                raise ValueError(
                    "this CapacitronVAE reads the reference's F0 (reference_pitch=True): pass f0 "
                    f"({batch}, {mel.shape[1]}) in Hz on the mel's frames, got "
                    f"{None if f0 is None else tuple(f0.shape)}"
                )
            ref = ref + self.pitch_encoder(f0.to(mel.dtype), lengths)  # (B, H)
        elif f0 is not None:
            raise ValueError("f0 was given but this CapacitronVAE reads no F0 (reference_pitch=False)")
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
        speaker_known: Tensor | None = None,
        f0: Tensor | None = None,
        sample: bool | None = None,
        prior_context: Tensor | None = None,
    ) -> ProsodyOutput:
        """Posterior, KL and z of a batch of reference spectrograms: the three steps in one call.

        Args:
            mel, lengths, text, text_lengths, speaker, speaker_known, f0: as for :meth:`posterior_of`.
            sample: True for a reparameterised sample, False for the posterior mean, None for
                "sample in training mode, mean in eval mode".
            prior_context: passed to the prior's KL (see :meth:`kl`); a prior that needs a context
                (the associative prior) raises ``ValueError`` without one.

        Returns:
            :class:`ProsodyOutput` with z, mean, std (B, D), kl (B,) and kl_per_dim (B, D).
        """
        posterior = self.posterior_of(
            mel,
            lengths,
            text=text,
            text_lengths=text_lengths,
            speaker=speaker,
            speaker_known=speaker_known,
            f0=f0,
        )
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
