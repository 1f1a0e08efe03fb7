"""HiFi-GAN's training objectives (Kong et al. 2020, section 2.3), returned as named parts.

With D_k the k-th sub-discriminator (every period and every scale one), x real audio and
s its mel, the paper's least-squares GAN (LSGAN, Mao et al. 2017) objectives are

    L_D = sum_k  E[(D_k(x) - 1)^2] + E[D_k(G(s))^2]                         (eq. 1)
    L_G = sum_k [ E[(D_k(G(s)) - 1)^2] + lambda_fm * L_FM(G; D_k) ] + lambda_mel * L_mel(G)   (eq. 6)

* ``E`` is the mean over the score map (the release's ``torch.mean``), summed over sub-discriminators.
* L_FM (eq. 4) is the L1 distance between the hidden feature maps of real and generated audio,
  mean per layer, summed over layers and sub-discriminators; the real maps are constants
  (``detach``): feature matching moves the generator, never the discriminator.
* L_mel (eq. 3) is the mean L1 distance between the log-mel of the real and the generated audio, in
  natural-log units of our front end (:class:`prosody_vae.audio.MelSpectrogram`, the one the
  acoustic model is trained on), with the loss's own filterbank top (``loss.mel_f_max``; the
  release's ``fmax_for_loss`` is the Nyquist frequency). lambda_mel = 45 and lambda_fm = 2.
* In ``L_D``, ``G(s)`` is detached: the discriminator step does not move the generator.

The training step sums the parts; each is also logged on its own.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from prosody_vae.vocoder.discriminators import DiscriminatorOutput

__all__ = [
    "DiscriminatorLoss",
    "GeneratorLoss",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_loss",
]


class DiscriminatorLoss(NamedTuple):
    loss: Tensor  # L_D, the sum of the two below
    real: Tensor  # sum_k E[(D_k(x) - 1)^2]
    fake: Tensor  # sum_k E[D_k(G(s))^2]


class GeneratorLoss(NamedTuple):
    loss: Tensor  # L_G = adversarial + feature_weight * feature_matching + mel_weight * mel_l1
    adversarial: Tensor  # sum_k E[(D_k(G(s)) - 1)^2]; 0 before the discriminators start
    feature_matching: Tensor  # L_FM, unweighted; 0 before the discriminators start
    mel_l1: Tensor  # L_mel, unweighted, nats


def discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> DiscriminatorLoss:
    """LSGAN discriminator loss (eq. 1); ``fake`` must come from detached generator audio."""
    on_real = sum(torch.mean((score - 1) ** 2) for score in real.scores)
    on_fake = sum(torch.mean(score**2) for score in fake.scores)
    return DiscriminatorLoss(on_real + on_fake, on_real, on_fake)


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> Tensor:
    """L1 between real (held constant) and generated hidden features (eq. 4), summed over layers."""
    return sum(
        F.l1_loss(fake_map, real_map.detach())
        for real_maps, fake_maps in zip(real.features, fake.features, strict=True)
        for real_map, fake_map in zip(real_maps, fake_maps, strict=True)
    )


def generator_loss(
    real_mel: Tensor,
    fake_mel: Tensor,
    real: DiscriminatorOutput | None,
    fake: DiscriminatorOutput | None,
    *,
    mel_weight: float,
    feature_weight: float,
) -> GeneratorLoss:
    """The generator's loss (eq. 6).

    Args:
        real_mel, fake_mel: (B, T, n_mels) log-mels of the real and generated segments.
        real, fake: the discriminators' outputs on real and generated audio (not detached), or both
            None for the mel-only warm-up (``train.discriminator_start``), where the adversarial and
            feature-matching parts are 0.
        mel_weight, feature_weight: lambda_mel and lambda_fm.
    """
    mel_l1 = F.l1_loss(fake_mel, real_mel)
    zero = mel_l1.new_zeros(())
    if real is None or fake is None:
        adversarial, matching = zero, zero
    else:
        adversarial = sum(torch.mean((score - 1) ** 2) for score in fake.scores) + zero
        matching = feature_matching_loss(real, fake) + zero
    total = adversarial + feature_weight * matching + mel_weight * mel_l1
    return GeneratorLoss(total, adversarial, matching, mel_l1)
