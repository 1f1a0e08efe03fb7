"""prosody_vae: variational prosody embeddings for expressive TTS.

The module most toolkits need is importable from here: the reference encoder and posterior
(:class:`CapacitronVAE`), the capacity objective and its dual optimiser. Everything else lives in its
own submodule (``prosody_vae.tts.backbones``, ``prosody_vae.training``, ``prosody_vae.metrics``, ...).
"""

from prosody_vae.prosody import (
    RECOMMENDED_BETA_LR,
    CapacitronVAE,
    CapacityLoss,
    CapacityObjective,
    DualOptimizer,
    GaussianPosterior,
    ProsodyOutput,
    ReferenceEncoder,
    StandardNormalPrior,
    StepInfo,
    TextSummary,
    laplace_nll,
    main_parameters,
    masked_l1,
)

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
