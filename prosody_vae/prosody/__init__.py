"""The embeddable prosody module: torch only, no config objects, no files.

Everything a TTS toolkit needs to add a Capacitron prosody embedding to its own model lives here:

* :mod:`~prosody_vae.prosody.reference_encoder`: mel spectrogram -> fixed-size reference embedding.
* :mod:`~prosody_vae.prosody.posterior`: q(z | reference, text, speaker), a diagonal Gaussian.
* :mod:`~prosody_vae.prosody.vae`: :class:`CapacitronVAE`, the composer of the two with a prior; the
  posterior, its KL and z are separate steps (``posterior_of``, ``kl``, ``latent``; ``encode`` does all three).
* :mod:`~prosody_vae.prosody.priors`: the :class:`Prior` protocol, the standard normal and the
  associative (ACN) prior.
* :mod:`~prosody_vae.prosody.hierarchical`: :class:`HierarchicalCapacitronVAE`, a high-level latent
  z_s over the flat module's z_p, each held at its own capacity (docs/hierarchical.md).
* :mod:`~prosody_vae.prosody.capacity`: the capacity objective with its Lagrange multiplier beta, and
  :class:`MultiCapacityObjective`, one multiplier per KL term.
* :mod:`~prosody_vae.prosody.dual_optimizer`: theta and beta stepped by separate optimisers.
* :mod:`~prosody_vae.prosody.likelihood`: masked L1 / Laplace negative log-likelihood.
* :mod:`~prosody_vae.prosody.bounds`: IWAE-k bounds and active units.
* :mod:`~prosody_vae.prosody.masking`: lengths -> masks, the one helper for padding.

Nothing here imports another part of ``prosody_vae`` or an audio library (a test holds it).
"""

from prosody_vae.prosody.capacity import (
    CapacityLoss,
    CapacityObjective,
    MultiCapacityLoss,
    MultiCapacityObjective,
)
from prosody_vae.prosody.dual_optimizer import RECOMMENDED_BETA_LR, DualOptimizer, StepInfo, main_parameters
from prosody_vae.prosody.hierarchical import HierarchicalCapacitronVAE, HierarchicalOutput
from prosody_vae.prosody.likelihood import laplace_nll, masked_l1
from prosody_vae.prosody.posterior import GaussianPosterior, TextSummary
from prosody_vae.prosody.priors import AssociativePrior, Prior, StandardNormalPrior
from prosody_vae.prosody.reference_encoder import ReferenceEncoder
from prosody_vae.prosody.vae import CapacitronVAE, Divergence, Posterior, ProsodyOutput

__all__ = [
    "RECOMMENDED_BETA_LR",
    "AssociativePrior",
    "CapacitronVAE",
    "CapacityLoss",
    "CapacityObjective",
    "Divergence",
    "DualOptimizer",
    "GaussianPosterior",
    "HierarchicalCapacitronVAE",
    "HierarchicalOutput",
    "MultiCapacityLoss",
    "MultiCapacityObjective",
    "Posterior",
    "Prior",
    "ProsodyOutput",
    "ReferenceEncoder",
    "StandardNormalPrior",
    "StepInfo",
    "TextSummary",
    "laplace_nll",
    "main_parameters",
    "masked_l1",
]
