"""prosody_vae: variational prosody embeddings for expressive TTS.

The module most toolkits need is importable from here: the reference encoder and posterior
(:class:`CapacitronVAE`), the capacity objective and its dual optimiser. Everything else lives in its
own submodule (``prosody_vae.backbones``, ``prosody_vae.training``, ``prosody_vae.metrics``, ...).
"""

from prosody_vae.capacitron import CapacitronVAE, ProsodyOutput
from prosody_vae.capacity import CapacityLoss, CapacityObjective
from prosody_vae.losses import laplace_nll, masked_l1
from prosody_vae.optim import RECOMMENDED_BETA_LR, DualOptimizer, StepInfo, main_parameters
from prosody_vae.posterior import GaussianPosterior, TextSummary
from prosody_vae.priors import StandardNormalPrior
from prosody_vae.reference_encoder import ReferenceEncoder

__version__ = "0.1.0"

__all__ = [
    "RECOMMENDED_BETA_LR",
    "CapacitronVAE",
    "CapacityLoss",
    "CapacityObjective",
    "DualOptimizer",
    "GaussianPosterior",
    "ProsodyOutput",
    "ReferenceEncoder",
    "StandardNormalPrior",
    "StepInfo",
    "TextSummary",
    "laplace_nll",
    "main_parameters",
    "masked_l1",
]
