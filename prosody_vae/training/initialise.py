"""Start a new run from another model's weights (``train.init_from``).

Fine-tuning is how a capability is added to a trained model without paying for its training again:
the pitch heads of ``backbone.pitch`` were added to the shipped model this way. The weights come
from a training checkpoint or a packed model; parameters the new model has and the old one lacks
(the new heads) keep their fresh initialisation, and the Lagrange multiplier starts at the old run's
beta, so the KL stays near C from the first step instead of swinging while beta climbs back.
Everything else (optimiser moments, schedule, sampler position) starts fresh: this is a new run, not
a resume.

A flat model also starts a hierarchical one (``prosody.hierarchical``): the hierarchical module wraps
the flat posterior q(z_p | x, text, speaker) as its ``encoder``, so the flat ``prosody.*`` weights
become ``prosody.encoder.*`` and only q(z_s | z_p) and p(z_p | z_s) start fresh. This is how the
capacity grid of docs/hierarchical.md is trained on a 2-core CPU: every grid point starts from the
same aligned flat model and differs only in (C_s, C_p).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn import functional as F

from prosody_vae.training.objective import TrainingModule

__all__ = ["initialise_from"]


def _model_weights(source: dict[str, Any]) -> dict[str, torch.Tensor]:
    if "model" in source:  # a packed model
        return source["model"]
    return {  # a training checkpoint: the TrainingModule's state, model weights under "model."
        key.removeprefix("model."): value
        for key, value in source["training_module"].items()
        if key.startswith("model.")
    }


def _to_hierarchical(
    weights: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename a flat model's ``prosody.*`` weights to ``prosody.encoder.*`` where only that name exists."""
    renamed = {}
    for key, value in weights.items():
        wrapped = "prosody.encoder." + key.removeprefix("prosody.")
        if key not in own and key.startswith("prosody.") and wrapped in own:
            key = wrapped
        renamed[key] = value
    return renamed


def _beta(source: dict[str, Any]) -> float | None:
    if source.get("beta") is not None:
        return float(source["beta"])
    raw = source.get("training_module", {}).get("objective.beta_raw")
    return None if raw is None else float(F.softplus(raw))


def initialise_from(module: TrainingModule, source: dict[str, Any], path: str) -> list[str]:
    """Load ``source``'s model weights into ``module`` and its beta; returns the parameters left fresh.

    Raises:
        ValueError: naming ``path``, when the source has weights this model lacks or of another shape
            (the two configs describe different models).
    """
    own = module.model.state_dict()
    weights = _to_hierarchical(_model_weights(source), own)
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise ValueError(f"{path}: train.init_from has weights this model lacks: {', '.join(unknown[:5])}")
    for key, value in weights.items():
        if own[key].shape != value.shape:
            raise ValueError(
                f"{path}: train.init_from: {key} has shape {tuple(value.shape)}, "
                f"this model {tuple(own[key].shape)}"
            )
    # packed models store fp16 weights: cast to the model's own dtype
    module.model.load_state_dict(
        {key: value.to(own[key].dtype) for key, value in weights.items()}, strict=False
    )
    beta = _beta(source)
    if beta is not None:
        # a flat source's multiplier held the rate the decoder reads: z's, or z_p's in a hierarchical
        # model; the high-level multiplier keeps capacity.beta_init
        terms = getattr(module.objective, "terms", None)
        target = module.objective if terms is None else terms["low"]
        with torch.no_grad():  # beta = softplus(beta_raw)  <=>  beta_raw = log(exp(beta) - 1)
            target.beta_raw.fill_(math.log(math.expm1(max(beta, 1e-6))))
    return sorted(set(own) - set(weights))
