"""The optimisers and the learning-rate schedule of training, built from the experiment config.

Theta (every model parameter but the multiplier) descends the Capacitron Lagrangian with Adam, set by
the ``optim`` section: ``lr``, ``adam_betas``, ``adam_eps`` and ``weight_decay`` (the defaults are
Tacotron 2's, Shen et al. 2018: betas 0.9/0.999, epsilon 1e-6, L2 weight 1e-6). The multiplier beta ascends it
with the optimiser of the ``capacity`` section (``beta_optimizer``, ``beta_lr``, ``beta_momentum``),
which :class:`~prosody_vae.prosody.dual_optimizer.DualOptimizer` builds itself: there is one factory
for it, and it lives with the dual optimiser.

The schedule scales theta's learning rate only; beta's stays constant, so the pace at which the KL
is pulled towards C does not fade with the learning-rate decay.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR

from prosody_vae.config import ExperimentConfig, OptimConfig
from prosody_vae.prosody.dual_optimizer import DualOptimizer, main_parameters
from prosody_vae.training.objective import TrainingModule

__all__ = ["build_optimizer", "build_scheduler", "lr_factor"]


def build_optimizer(
    module: TrainingModule, config: ExperimentConfig, grad_scaler: torch.amp.GradScaler | None = None
) -> DualOptimizer:
    """Adam for theta (``optim`` section) and the ``capacity`` section's optimiser for beta.

    The split is by ownership: beta is ``module.objective.lagrange_parameters()``, theta the rest.
    ``grad_scaler`` is the AMP scaler for fp16 training, else None.
    """
    oc, cc = config.optim, config.capacity
    lagrange = module.objective.lagrange_parameters()

    def adam(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        betas = tuple(oc.adam_betas)  # a YAML list until the config converts it
        return torch.optim.Adam(params, lr=oc.lr, betas=betas, eps=oc.adam_eps, weight_decay=oc.weight_decay)

    return DualOptimizer(
        main_parameters=main_parameters(module, lagrange),
        lagrange_parameters=lagrange,
        main_optimizer_factory=adam,
        beta_optimizer=cc.beta_optimizer,
        beta_lr=cc.beta_lr,
        beta_momentum=cc.beta_momentum,
        max_grad_norm=oc.max_grad_norm,
        grad_scaler=grad_scaler,
        accumulation_steps=oc.accumulation_steps,
    )


def lr_factor(optim: OptimConfig) -> Callable[[int], float]:
    """The multiplier of ``optim.lr`` at each optimisation step (0-based).

    Linear warm-up over ``warmup_steps``, then, after ``decay_start``, exponential decay by
    ``decay_rate`` every ``decay_steps``, never below ``lr_min``. The decay is Tacotron 2's
    (exponential, from 1e-3 towards 1e-5 after a fixed number of steps); the warm-up is ours.

    A closure, not a callable object, so that ``LambdaLR.state_dict()`` leaves it out and a
    checkpoint holds tensors and plain values only (``weights_only`` loading).
    """

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, optim.warmup_steps))
        decay = 1.0
        if step > optim.decay_start:
            decay = optim.decay_rate ** ((step - optim.decay_start) / optim.decay_steps)
        return max(warm * decay, optim.lr_min / optim.lr)

    return factor


def build_scheduler(optimizer: DualOptimizer, optim: OptimConfig) -> LambdaLR:
    """:func:`lr_factor` on theta's optimiser; step it once per optimisation step."""
    return LambdaLR(optimizer.main, lr_factor(optim))
