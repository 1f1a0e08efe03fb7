"""The training loop: set up a run, take steps over the epochs, validate, checkpoint, stop cleanly.

``train(config, out_dir)`` runs on one process or under ``torchrun`` (one process per rank). It
composes named pieces, each usable on its own:

- :func:`~prosody_vae.training.state.setup_training` builds the :class:`TrainingState` (data, model,
  capacity objective, dual optimiser, learning-rate schedule, monitor), fresh or resumed;
- :func:`~prosody_vae.training.step.train_step` takes one micro-batch (with the associative prior,
  also the code bank's refreshes, contexts and writes; see :mod:`prosody_vae.training.acn`);
- after each update, :func:`_after_update` validates every ``valid_every`` steps and at the last
  step, and checkpoints (:meth:`TrainingState.save`) every ``checkpoint_every`` steps and after each
  validation, marking the best validation Lagrangian as ``best.pt``.

Work is never lost: checkpoints are written atomically, also when SIGINT or SIGTERM arrives (at the
next step boundary), and ``resume=True`` continues from the latest one exactly (step, model, both
optimisers, beta, learning-rate schedule, RNG, the position inside the epoch and, with the associative
prior, its code bank, which lives in the model's buffers).

Under DDP each step's global batch is ``data.batch_size * world_size`` items dealt out by
:class:`~prosody_vae.training.data.RankSlices`; gradients (of theta and of beta) are averaged,
the loss normaliser and the logged losses are global means, and beta is checked to be identical on
every rank at every step.
"""

from __future__ import annotations

import contextlib
import math
import signal
from dataclasses import dataclass
from pathlib import Path

import torch

from prosody_vae.config import ExperimentConfig
from prosody_vae.training.state import TrainingError, TrainingState, epoch_loader, setup_training
from prosody_vae.training.step import train_step
from prosody_vae.training.validation import validate

__all__ = ["TrainResult", "TrainingError", "train"]


@dataclass
class TrainResult:
    """Where :func:`train` stopped."""

    step: int  # the last completed optimisation step
    checkpoint: Path | None  # the last checkpoint written (rank 0 writes them; exact there)
    interrupted: bool  # stopped by SIGINT/SIGTERM (a checkpoint was written first)
    skipped_steps: int  # updates discarded for non-finite gradients in this session
    last_valid: dict[str, float]  # the last validation scalars of this session ({} if none ran)
    signal: int | None = None  # the signal that stopped it (signal.SIGINT or SIGTERM), else None

    @property
    def exit_status(self) -> int:
        """0 for a finished run; 128 + the signal number for an interrupted one (130, 143), as
        shells report a process a signal stopped."""
        return 128 + self.signal if self.interrupted and self.signal is not None else 0


class _StopRequested:
    """SIGINT/SIGTERM set a flag; the loop checkpoints and returns at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopRequested:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread: leave handlers alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    resume: bool | str | Path = False,
    force: bool = False,
    device: str | None = None,
    max_steps: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train (or continue training) a ProsodyTTS model; returns where it stopped.

    Args:
        config: the experiment; saved beside the checkpoints and inside each of them.
        out_dir: experiment folder (``checkpoints/``, ``tensorboard/``, ``log.jsonl``, ``config.yaml``).
            A new run needs a folder that holds no run (see ``force``).
        resume: True to continue from the latest checkpoint in ``out_dir`` (fresh start when there is
            none), or a checkpoint path.
        force: start a new run even though ``out_dir`` holds one, whose files are moved to
            ``<out_dir>.old-<N>/`` (nothing is deleted).
        device: "cpu", "cuda" or None (CUDA when available).
        max_steps: stop after this global step (>= 1) even if ``config.train.steps`` is larger (the
            schedule still follows ``config.train.steps``); useful to train in several sessions.
        progress: show a progress bar (rank 0).
    """
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
    ):
        raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")
    state = setup_training(config, out_dir, resume=resume, force=force, device=device, progress=progress)
    steps = config.train.steps
    final_step = min(steps, max_steps) if max_steps is not None else steps
    try:
        with _StopRequested() as stop:
            _run(state, final_step, stop)
            interrupted = stop.requested
            if interrupted:
                state.save()
                state.monitor.warn(
                    f"interrupted: checkpoint written at step {state.step} ({state.last_checkpoint})"
                )
        last = state.last_checkpoint
        if state.context.is_main and (
            last is None or state.checkpoints.latest() is None or not last.exists()
        ):
            state.save()  # a run that wrote none (no update: resumed at its last step), or whose last one is gone
    finally:
        state.monitor.close()
    return TrainResult(
        step=state.step,
        checkpoint=state.last_checkpoint,
        interrupted=interrupted,
        skipped_steps=state.skipped,
        last_valid=state.last_valid,
        signal=stop.signal,
    )


def _run(state: TrainingState, final_step: int, stop: _StopRequested) -> None:
    """Epochs of :func:`train_step` until ``final_step`` or a stop request, which are checked after
    each update (never inside an accumulation window) and at each epoch's end."""
    while state.step < final_step and not stop.requested:
        for batch in epoch_loader(state):
            result = train_step(state, batch)
            if result.skipped_nonfinite and state.skipped >= state.config.train.max_nonfinite:
                state.save()
                raise TrainingError(
                    f"{state.skipped} non-finite updates: training stopped at step {state.step}; "
                    f"last checkpoint {state.last_checkpoint}"
                )
            if not result.stepped:
                continue
            _after_update(state, final_step)
            if state.step >= final_step or stop.requested:
                return
        state.next_epoch()


def _after_update(state: TrainingState, final_step: int) -> None:
    """Validate and checkpoint on schedule: validation every ``valid_every`` steps and at the last
    step, each followed by a checkpoint (``best.pt`` when the validation Lagrangian is the lowest so
    far); otherwise a checkpoint every ``checkpoint_every`` steps."""
    tc = state.config.train
    if state.step % tc.valid_every == 0 or state.step == final_step:
        state.save(is_best=_validate(state))
    elif state.step % tc.checkpoint_every == 0:
        state.save()


def _validate(state: TrainingState) -> bool:
    """Run validation at the current step; True when its Lagrangian is the best so far.

    Validation draws random numbers (prenet dropout at inference); forking the RNG keeps the
    training trajectory independent of when validation runs, so a run resumed from any checkpoint
    continues exactly.
    """
    device = state.context.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        state.last_valid = validate(
            state.module, state.data, state.config, state.context, state.monitor, state.step
        )
    lagrangian = state.last_valid.get("valid/lagrangian", math.inf)
    is_best = lagrangian < state.best_valid
    state.best_valid = min(state.best_valid, lagrangian)
    return is_best
