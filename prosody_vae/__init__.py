"""prosody_vae: variational prosody embeddings for expressive TTS.

The module most toolkits need is importable from here: the reference encoder and posterior
(:class:`CapacitronVAE`), the capacity objective and its dual optimiser. Everything else lives in its
own submodule (``prosody_vae.tts.backbones``, ``prosody_vae.training``, ``prosody_vae.metrics``, ...).

The names below are loaded on first access (PEP 562), so that importing a light submodule (the
command line's parser, :mod:`prosody_vae.config`) does not pay for torch; ``from prosody_vae import
CapacitronVAE`` works as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "RECOMMENDED_BETA_LR",
    "CapacitronVAE",
    "CapacityLoss",
    "CapacityObjective",
    "DualOptimizer",
    "GaussianPosterior",
    "HierarchicalCapacitronVAE",
    "MultiCapacityObjective",
    "ProsodyOutput",
    "ReferenceEncoder",
    "StandardNormalPrior",
    "StepInfo",
    "TextSummary",
    "laplace_nll",
    "main_parameters",
    "masked_l1",
]

if TYPE_CHECKING:
    from prosody_vae.prosody import (
        RECOMMENDED_BETA_LR,
        CapacitronVAE,
        CapacityLoss,
        CapacityObjective,
        DualOptimizer,
        GaussianPosterior,
        HierarchicalCapacitronVAE,
        MultiCapacityObjective,
        ProsodyOutput,
        ReferenceEncoder,
        StandardNormalPrior,
        StepInfo,
        TextSummary,
        laplace_nll,
        main_parameters,
        masked_l1,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from prosody_vae import prosody

        value = getattr(prosody, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'prosody_vae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
