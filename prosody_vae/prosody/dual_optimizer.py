"""DualOptimizer: theta descends the capacity Lagrangian, beta ascends it, in one explicit step.

Capacitron (Battenberg et al. 2019, arXiv 1906.03402) trains the model parameters theta with Adam
and the Lagrange multiplier beta with its own optimiser (Coqui TTS: SGD, lr 1e-5, momentum 0.9).
The split here is by ownership, never by parameter names: theta is whatever the model owns minus the
objective's ``lagrange_parameters()``, compared by identity (:func:`main_parameters`).

One :meth:`DualOptimizer.step` per micro-batch:

1. backpropagate ``(loss + beta_loss) / accumulation_steps`` (scaled by the AMP ``GradScaler`` if
   any). The capacity objective's stop-gradients make the two losses touch disjoint parameters, so
   one backward of the sum yields exactly the two separate gradients; the first call verifies it.
2. on earlier micro-steps of an accumulation window: nothing else. Gradients keep accumulating: the
   main gradients are never zeroed and beta is never stepped mid-window (Coqui zeroes the main
   gradients every micro-batch, which silently reduces accumulation to the last micro-batch).
3. on the last micro-step: unscale, check that all gradients are finite (otherwise skip the whole
   update and report it), step beta, clip theta's gradients only (never beta_raw's), step theta,
   zero both.

Beta's optimiser. The paper setting (SGD, lr 1e-5, momentum 0.9) is the default for parity, but it
is slow: beta's gradient is ``-(KL - C) * sigmoid(beta_raw)`` in nats, so with lr 1e-5 beta_raw moves
by under 1e-3 per step (under 1e-2 once momentum has built up) even when the KL is 100 nats off, and
the KL stays about where the initial beta puts it for thousands of steps (the reference implementation on a CPU corpus: KL 200 against C = 50 after 252 steps; in our toy task KL 12
against C = 5 and 13 against C = 20 after 600 steps). A larger SGD lr helps, but the right value
scales with the size of KL - C. Adam on beta_raw is invariant to that scale: it moves beta_raw by
about ``lr`` per step in the direction of sign(KL - C). **Recommended:**
``beta_optimizer="adam", beta_lr=RECOMMENDED_BETA_LR`` (0.05), which held the mean KL within 3-4% of
C over steps 300-600 for both C = 5 and C = 20 (``bench/bench_capacitron.py --beta-sweep``,
docs/benchmarks.md; tested in ``tests/test_capacitron_convergence.py``).

Several multipliers. With several KL terms, each at its own capacity
(:class:`~prosody_vae.prosody.capacity.MultiCapacityObjective`, e.g. the hierarchical model's C_s and
C_p), ``beta_loss`` is the sum of the terms' multiplier losses and each multiplier receives only its
own term's gradient; SGD and Adam update each parameter from its own gradient (and moments), so the
multipliers move independently under one optimiser. Give ``lagrange_parameters`` as a mapping
``name -> parameters`` (``MultiCapacityObjective.named_lagrange_parameters()``) to have one named
parameter group per multiplier: ``beta_lr`` may then differ per name, and loading a state whose
multiplier names differ from this optimiser's is refused with the two lists named. Accumulation,
clipping (theta only), the non-finite skip and the state are as for one multiplier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["RECOMMENDED_BETA_LR", "DualOptimizer", "StepInfo", "main_parameters"]

# Adam lr for beta_raw that held the KL within a few percent of C after a few hundred steps in our
# capacity sweep (0.01 was too slow at C = 5); see the module docstring.
RECOMMENDED_BETA_LR = 5e-2

# Receives theta's parameter list; for the multipliers, the parameter list, or one param-group dict
# per name ({"params": [...], "name": ...}) when lagrange_parameters is a mapping.
OptimizerFactory = Callable[[list[Any]], torch.optim.Optimizer]


class StepInfo(NamedTuple):
    """What one :meth:`DualOptimizer.step` did."""

    stepped: bool  # both optimisers took a step (last micro-step of a window, finite gradients)
    skipped_nonfinite: bool  # last micro-step, but a gradient was inf/NaN: update discarded
    grad_norm: Tensor | None  # theta's total gradient norm before clipping (unscaled); None mid-window
    micro_step: int  # 1-based index of this micro-batch within its accumulation window


def main_parameters(module: nn.Module, lagrange_parameters: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """``module``'s trainable parameters minus ``lagrange_parameters``, compared by identity."""
    excluded = {id(p) for p in lagrange_parameters}
    return [p for p in module.parameters() if p.requires_grad and id(p) not in excluded]


def _unique(params: Iterable[nn.Parameter], name: str) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{name} must hold tensors, got {type(p).__name__}")
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    if not out:
        raise ValueError(f"{name} is empty")
    return out


def _multiplier_groups(
    lagrange_parameters: Iterable[nn.Parameter] | Mapping[str, Iterable[nn.Parameter]],
) -> list[dict[str, Any]] | None:
    """One ``{"params", "name"}`` group per named multiplier, or None for a plain iterable."""
    if not isinstance(lagrange_parameters, Mapping):
        return None
    if not lagrange_parameters:
        raise ValueError("lagrange_parameters is empty")
    groups, seen = [], set()
    for name, params in lagrange_parameters.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"multiplier names must be non-empty strings, got {name!r}")
        params = _unique(params, f"lagrange_parameters[{name!r}]")
        if any(id(p) in seen for p in params):
            raise ValueError(f"lagrange_parameters[{name!r}] shares a parameter with another multiplier")
        seen.update(id(p) for p in params)
        groups.append({"params": params, "name": name})
    return groups


def _multiplier_lrs(beta_lr: float | Mapping[str, float], names: list[str] | None) -> dict[str, float] | None:
    """Per-name learning rates when ``beta_lr`` is a mapping (which needs named multipliers), else None."""
    if not isinstance(beta_lr, Mapping):
        return None
    if names is None:
        raise ValueError("beta_lr per multiplier needs lagrange_parameters as a mapping name -> parameters")
    if set(beta_lr) != set(names):
        raise ValueError(f"beta_lr must name the multipliers {names}, got {sorted(beta_lr)}")
    for name, lr in beta_lr.items():
        if not lr > 0:
            raise ValueError(f"beta_lr[{name!r}] must be > 0, got {lr!r}")
    return {name: float(beta_lr[name]) for name in names}


class DualOptimizer:
    """Main optimiser for theta and a separate one for the Lagrange multiplier, stepped together.

    Args:
        main_parameters: theta (see :func:`main_parameters`).
        lagrange_parameters: ``CapacityObjective.lagrange_parameters()``; must not overlap theta. Or a
            mapping name -> parameters (``MultiCapacityObjective.named_lagrange_parameters()``): one
            named parameter group per multiplier in beta's optimiser.
        main_optimizer_factory: builds theta's optimiser from its parameter list; overrides
            ``main_optimizer``/``main_lr``.
        main_optimizer: ``"adam"`` or ``"radam"`` (Coqui's choice).
        main_lr: learning rate of theta's optimiser.
        beta_optimizer_factory: builds beta's optimiser; overrides the three ``beta_*`` settings.
        beta_optimizer: ``"sgd"`` (paper / Coqui) or ``"adam"`` (recommended, see module docstring).
        beta_lr: learning rate of beta's optimiser (paper: 1e-5 with SGD); with named multipliers,
            also a mapping name -> learning rate.
        beta_momentum: SGD momentum for beta (paper: 0.9); ignored by Adam.
        max_grad_norm: clip theta's total gradient norm to this; None disables clipping.
        grad_scaler: a ``torch.amp.GradScaler`` for mixed precision, or None.
        accumulation_steps: micro-batches per update (>= 1). Each micro-loss is divided by it, so k
            equal micro-batches of a batch-mean loss give the update of one k-times-larger batch.

    Attributes:
        main, beta: the two ``torch.optim.Optimizer`` instances (e.g. for LR schedulers).
        multiplier_names: the names of the multiplier groups, or None when ``lagrange_parameters``
            was a plain iterable.
    """

    def __init__(
        self,
        *,
        main_parameters: Iterable[nn.Parameter],
        lagrange_parameters: Iterable[nn.Parameter] | Mapping[str, Iterable[nn.Parameter]],
        main_optimizer_factory: OptimizerFactory | None = None,
        main_optimizer: str = "adam",
        main_lr: float = 1e-3,
        beta_optimizer_factory: OptimizerFactory | None = None,
        beta_optimizer: str = "sgd",
        beta_lr: float | Mapping[str, float] = 1e-5,
        beta_momentum: float = 0.9,
        max_grad_norm: float | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
        accumulation_steps: int = 1,
    ) -> None:
        self.main_params = _unique(main_parameters, "main_parameters")
        beta_groups = _multiplier_groups(lagrange_parameters)
        self.multiplier_names = None if beta_groups is None else [group["name"] for group in beta_groups]
        if beta_groups is None:
            self.lagrange_params = _unique(lagrange_parameters, "lagrange_parameters")
        else:
            self.lagrange_params = [p for group in beta_groups for p in group["params"]]
        beta_lrs = _multiplier_lrs(beta_lr, self.multiplier_names)
        overlap = {id(p) for p in self.main_params} & {id(p) for p in self.lagrange_params}
        if overlap:
            raise ValueError(
                f"{len(overlap)} parameter(s) are in both main_parameters and lagrange_parameters; "
                "build theta with prosody_vae.prosody.dual_optimizer.main_parameters(model, objective.lagrange_parameters())"
            )
        if (
            isinstance(accumulation_steps, bool)
            or not isinstance(accumulation_steps, int)
            or accumulation_steps < 1
        ):
            raise ValueError(f"accumulation_steps must be an int >= 1, got {accumulation_steps!r}")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm!r}")

        if main_optimizer_factory is None:
            if main_optimizer not in ("adam", "radam"):
                raise ValueError(f"main_optimizer must be 'adam' or 'radam', got {main_optimizer!r}")
            cls = torch.optim.Adam if main_optimizer == "adam" else torch.optim.RAdam

            def main_optimizer_factory(params: list[nn.Parameter]) -> torch.optim.Optimizer:
                return cls(params, lr=main_lr)

        if beta_optimizer_factory is None:
            if beta_optimizer not in ("sgd", "adam"):
                raise ValueError(f"beta_optimizer must be 'sgd' or 'adam', got {beta_optimizer!r}")
            default_lr = beta_lr if beta_lrs is None else 0.0  # every named group then sets its own

            def beta_optimizer_factory(params: list[Any]) -> torch.optim.Optimizer:
                if beta_optimizer == "adam":
                    return torch.optim.Adam(params, lr=default_lr)
                return torch.optim.SGD(params, lr=default_lr, momentum=beta_momentum)

        self.main = main_optimizer_factory(self.main_params)
        if beta_groups is None:
            self.beta = beta_optimizer_factory(self.lagrange_params)
        else:
            if beta_lrs is not None:
                beta_groups = [{**group, "lr": beta_lrs[group["name"]]} for group in beta_groups]
            self.beta = beta_optimizer_factory(beta_groups)
        self.max_grad_norm = max_grad_norm
        self.grad_scaler = grad_scaler
        self.accumulation_steps = accumulation_steps
        self.micro_step = 0  # micro-batches accumulated in the current window
        self._disjointness_checked = False

    def zero_grad(self) -> None:
        """Drop all accumulated gradients and restart the accumulation window."""
        self.main.zero_grad(set_to_none=True)
        self.beta.zero_grad(set_to_none=True)
        self.micro_step = 0

    def _check_disjoint(self, loss: Tensor, beta_loss: Tensor) -> None:
        # Graph traversal only (autograd prunes to the requested inputs): cheap, done once.
        if loss.requires_grad:
            grads = torch.autograd.grad(loss, self.lagrange_params, retain_graph=True, allow_unused=True)
            if any(g is not None for g in grads):
                raise ValueError(
                    "loss depends on the Lagrange parameters: theta's loss must use beta.detach()"
                )
        if beta_loss.requires_grad:
            params = [p for p in self.main_params if p.requires_grad]
            grads = torch.autograd.grad(beta_loss, params, retain_graph=True, allow_unused=True)
            if any(g is not None for g in grads):
                raise ValueError(
                    "beta_loss depends on theta: the multiplier's loss must use (kl - C).detach()"
                )

    def step(self, loss: Tensor, beta_loss: Tensor) -> StepInfo:
        """Backpropagate one micro-batch and, at the end of a window, update theta and beta.

        Args:
            loss: theta's scalar loss (``CapacityLoss.loss`` plus any auxiliary terms).
            beta_loss: the multiplier's scalar loss (``CapacityLoss.beta_loss``).

        Returns:
            :class:`StepInfo`. Costs one host sync per update (the finiteness check), none mid-window.
        """
        if loss.dim() != 0 or beta_loss.dim() != 0:
            raise ValueError(
                f"loss and beta_loss must be scalars, got shapes {tuple(loss.shape)} and {tuple(beta_loss.shape)}"
            )
        if not self._disjointness_checked:
            self._check_disjoint(loss, beta_loss)
            self._disjointness_checked = True
        total = (loss + beta_loss) / self.accumulation_steps
        if self.grad_scaler is not None:
            total = self.grad_scaler.scale(total)
        total.backward()
        self.micro_step += 1
        micro_step = self.micro_step
        if micro_step < self.accumulation_steps:
            return StepInfo(stepped=False, skipped_nonfinite=False, grad_norm=None, micro_step=micro_step)

        scaler = self.grad_scaler
        if scaler is not None:
            scaler.unscale_(self.beta)
            scaler.unscale_(self.main)
        main_grads = [p.grad for p in self.main_params if p.grad is not None]
        beta_grads = [p.grad for p in self.lagrange_params if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(main_grads) if main_grads else loss.new_zeros(())
        beta_norm = torch.nn.utils.get_total_norm(beta_grads) if beta_grads else loss.new_zeros(())
        finite = bool(torch.isfinite(grad_norm) & torch.isfinite(beta_norm))  # the one host sync
        if finite:
            if scaler is not None:
                scaler.step(self.beta)
            else:
                self.beta.step()
            if self.max_grad_norm is not None:
                # Theta only: clipping beta_raw together with theta would let the (large) model
                # gradient shrink the multiplier's update, or vice versa.
                torch.nn.utils.clip_grads_with_norm_(self.main_params, self.max_grad_norm, grad_norm)
            if scaler is not None:
                scaler.step(self.main)
            else:
                self.main.step()
        if scaler is not None:
            scaler.update()  # lowers the scale after an overflow, as GradScaler intends
        self.zero_grad()
        return StepInfo(
            stepped=finite, skipped_nonfinite=not finite, grad_norm=grad_norm, micro_step=micro_step
        )

    def state_dict(self) -> dict[str, Any]:
        """``{"main", "beta", "scaler", "micro_step"}``; loads with ``torch.load(weights_only=True)``."""
        return {
            "main": self.main.state_dict(),
            "beta": self.beta.state_dict(),
            "scaler": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "micro_step": self.micro_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`. Gradients of a half-finished window are not part of the
        state, so save at window boundaries (``micro_step == 0``), as a training loop naturally does."""
        missing = {"main", "beta", "scaler", "micro_step"} - set(state)
        if missing:
            raise ValueError(f"DualOptimizer state is missing {sorted(missing)}")
        saved = [group.get("name") for group in state["beta"].get("param_groups", [])]
        here = [group.get("name") for group in self.beta.param_groups]
        if saved != here:
            raise ValueError(f"the state holds the multipliers {saved} but this DualOptimizer has {here}")
        self.main.load_state_dict(state["main"])
        self.beta.load_state_dict(state["beta"])
        if state["scaler"] is not None:
            if self.grad_scaler is None:
                raise ValueError("the state holds GradScaler state but this DualOptimizer has no grad_scaler")
            self.grad_scaler.load_state_dict(state["scaler"])
        self.micro_step = int(state["micro_step"])
