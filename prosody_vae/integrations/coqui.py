"""Our Capacitron module inside Coqui TTS' Tacotron 2, in place of Coqui's own Capacitron layer.

Install with ``pip install prosody_vae[coqui]`` (coqui-tts 0.28), then::

    from TTS.tts.models.tacotron2 import Tacotron2
    from prosody_vae.integrations.coqui import use_prosody_vae

    model = Tacotron2(config)          # a Coqui config with use_capacitron_vae=True
    use_prosody_vae(model)             # model.capacitron_vae_layer is now ours
    # train with Coqui's Trainer, loss (TacotronLoss) and CapacitronOptimizer exactly as before

What stays Coqui's: the model, where z enters (concatenated to every encoder output, as in the
paper), the loss (``TacotronLoss``: its reconstruction and its ``beta * (KL - C)`` term normalised by
``T * n_mels``), the two optimisers and the gradient clipping. What is ours: the reference encoder
(exact length masking, so padding and batch companions cannot change z), the text summary, the
posterior head (an explicit standard deviation with a floor, no CPU round trip, no full-covariance
distribution), and mean-z transfer in eval mode.

The contract Coqui relies on, which :class:`CoquiCapacitronLayer` keeps: it is called as
``layer(reference_mel_info=[mel (B, T, n_mels), lengths (B,)], text_info=[embeddings (B, L, E),
lengths (B,)] or None, speaker_embedding=(B, P) or None)`` and returns ``(z (B, 1, D), posterior,
prior, beta_raw)``; ``TacotronLoss`` computes ``kl_divergence(posterior, prior)`` (per utterance, summed
over dimensions: diagonal Gaussians here, the same number Coqui's full-covariance ones give) and
``softplus(beta_raw)[0]``; ``CapacitronOptimizer`` gives the parameter named
``capacitron_vae_layer.beta`` to the multiplier's SGD and everything else to the main optimiser.
Coqui's inference without a reference calls the layer with ``reference_mel_info=None`` and gets a
prior sample (batch 1, as in Coqui).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from prosody_vae.prosody.vae import CapacitronVAE

__all__ = ["CoquiCapacitronLayer", "use_prosody_vae"]


class CoquiCapacitronLayer(nn.Module):
    """Drop-in replacement for Coqui's ``capacitron_vae_layer`` that runs our :class:`CapacitronVAE`.

    Args:
        prosody: the prosody module; its ``latent_dim`` must be Coqui's ``capacitron_VAE_embedding_dim``.
        beta_init: initial multiplier (softplus of the ``beta`` parameter), 1.0 as in Coqui.
    """

    def __init__(self, prosody: CapacitronVAE, *, beta_init: float = 1.0) -> None:
        super().__init__()
        if not beta_init > 0:
            raise ValueError(f"beta_init must be > 0, got {beta_init}")
        self.prosody = prosody
        # Named ``beta`` and shaped (1,) because Coqui's optimiser and loss find it by that name and
        # index it with [0]. It stores softplus^-1(beta), as Coqui's does.
        self.beta = nn.Parameter(torch.tensor([beta_init]).expm1().log())

    def forward(
        self,
        reference_mel_info: list[Tensor] | tuple[Tensor, Tensor] | None = None,
        text_info: list[Tensor] | tuple[Tensor, Tensor] | None = None,
        speaker_embedding: Tensor | None = None,
    ) -> tuple[Tensor, Independent | None, Independent, nn.Parameter]:
        """Coqui's call: returns z (B, 1, D), q(z | x) (None without a reference), p(z), beta_raw (1,)."""
        device = self.beta.device
        prior = Independent(
            Normal(
                torch.zeros(self.prosody.latent_dim, device=device),
                torch.ones(self.prosody.latent_dim, device=device),
            ),
            1,
        )
        if reference_mel_info is None:
            z = self.prosody.sample_prior(1)  # (1, D): Coqui's prior sampling is batch 1
            return z.unsqueeze(1), None, prior, self.beta
        mel, lengths = reference_mel_info  # (B, T, n_mels), (B,)
        text = text_lengths = None
        if self.prosody.uses_text:
            if text_info is None:
                raise ValueError(
                    "this prosody module reads the reference transcript: set "
                    "capacitron_use_text_summary_embeddings=True (or pass style_text at inference)"
                )
            text, text_lengths = text_info
        speaker = None
        if speaker_embedding is not None and self.prosody.speaker_dim > 0:
            # Coqui squeezes this to (P,) at batch size 1 and crashes; reshape keeps (B, P).
            speaker = speaker_embedding.reshape(mel.shape[0], -1)
        out = self.prosody.encode(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker)
        posterior = Independent(Normal(out.mean, out.std), 1)
        return out.z.unsqueeze(1), posterior, prior, self.beta


def use_prosody_vae(
    model: nn.Module,
    *,
    prosody: CapacitronVAE | None = None,
    reference_encoder: dict[str, Any] | None = None,
) -> CoquiCapacitronLayer:
    """Replace ``model.capacitron_vae_layer`` of a Coqui Tacotron/Tacotron2 with ours; returns the new layer.

    The prosody module is built from the model's Coqui config unless given: ``n_mels`` from
    ``audio.num_mels``, ``latent_dim`` from ``capacitron_VAE_embedding_dim``, the text summary when
    ``capacitron_use_text_summary_embeddings`` is on (reading Coqui's token embeddings, size
    ``capacitron_text_summary_embedding_dim``), the speaker input when
    ``capacitron_use_speaker_embedding`` is on. ``reference_encoder`` overrides the reference
    encoder's arguments (default: the paper's 32-32-64-64-128-128 convolutions and a GRU of 128).
    Build the optimiser (``model.get_optimizer()``) after this call.
    """
    if getattr(model, "capacitron_vae_layer", None) is None or not getattr(
        model, "use_capacitron_vae", False
    ):
        raise ValueError(
            "the model has no Capacitron layer: build it from a config with use_capacitron_vae=True"
        )
    cc = model.capacitron_vae
    if prosody is None:
        uses_text = bool(cc.capacitron_use_text_summary_embeddings)
        uses_speaker = bool(cc.capacitron_use_speaker_embedding)
        prosody = CapacitronVAE(
            n_mels=model.config.audio.num_mels,
            latent_dim=cc.capacitron_VAE_embedding_dim,
            reference_encoder=reference_encoder,
            text_embedding_dim=model.embedding.embedding_dim if uses_text else 0,
            text_summary_dim=cc.capacitron_text_summary_embedding_dim,
            speaker_dim=model.embedded_speaker_dim if uses_speaker else 0,
        )
    if prosody.latent_dim != cc.capacitron_VAE_embedding_dim:
        raise ValueError(
            f"prosody.latent_dim={prosody.latent_dim} but the Coqui model's decoder expects "
            f"capacitron_VAE_embedding_dim={cc.capacitron_VAE_embedding_dim}"
        )
    layer = CoquiCapacitronLayer(prosody).to(next(model.parameters()).device)
    model.capacitron_vae_layer = layer
    return layer
