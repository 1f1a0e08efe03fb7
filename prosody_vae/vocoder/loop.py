"""The vocoder training loop: set up, step over the epochs, validate, checkpoint, stop cleanly.

``train_vocoder(config, out_dir)`` composes :func:`~prosody_vae.vocoder.state.setup_vocoder_training`,
:func:`~prosody_vae.vocoder.step.vocoder_step` and
:func:`~prosody_vae.vocoder.validation.validate_vocoder`, with the acoustic loop's guarantees
(:mod:`prosody_vae.training.loop`): validation every ``valid_every`` steps and at the last step, a
checkpoint after each validation (``best.pt`` at the lowest validation mel L1) and every
``checkpoint_every`` steps, each with the generator exported beside it (``g_<step>``); atomic writes;
SIGINT and SIGTERM checkpoint at the next step boundary; ``resume=True`` continues exactly.

Skipped utterances are reported once each (a warning and a ``log.jsonl`` record) and listed in the
result; they never stop the run. One process: the vocoder loop has no DDP.
"""

from __future__ import annotations

import contextlib
import math
import signal
from dataclasses import dataclass
from pathlib import Path

import torch

from prosody_vae.training.state import TrainingError
from prosody_vae.vocoder.config import VocoderConfig
from prosody_vae.vocoder.data import SegmentBatch
from prosody_vae.vocoder.state import VocoderState, epoch_loader, setup_vocoder_training
from prosody_vae.vocoder.step import vocoder_step
from prosody_vae.vocoder.validation import validate_vocoder

__all__ = ["VocoderTrainResult", "train_vocoder"]


@dataclass
class VocoderTrainResult:
    """Where :func:`train_vocoder` stopped."""

    step: int
    checkpoint: Path | None  # the last training checkpoint written
    generator: Path | None  # the last exported generator (release format), for --vocoder
    interrupted: bool
    skipped: dict[str, str]  # utterance id -> reason, over the whole run
    last_valid: dict[str, float]
    signal: int | None = None

    @property
    def exit_status(self) -> int:
        """0 for a finished run; 128 + the signal number for an interrupted one (130, 143)."""
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
        self.requested, self.signal = True, signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train_vocoder(
    config: VocoderConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    device: str | None = None,
    max_steps: int | None = None,
    progress: bool = True,
) -> VocoderTrainResult:
    """Train (or continue training) a HiFi-GAN generator; returns where it stopped.

    Args:
        config: the vocoder experiment; saved as ``out_dir/config.yaml`` and inside each checkpoint.
        out_dir: run folder: ``checkpoints/``, ``tensorboard/``, ``log.jsonl``, ``config.yaml``, the
            exported ``g_<step>`` files with their ``config.json``, and ``teacher_forced/`` when used.
        resume: continue from the latest checkpoint in ``out_dir`` (a fresh start when there is none).
        force: start a new run although ``out_dir`` holds one (moved to ``<out_dir>.old-<N>/``).
        device: "cpu", "cuda" or None (CUDA when available).
        max_steps: stop after this step even if ``train.steps`` is larger (the schedule is unchanged).
        progress: show a progress bar (hidden anyway when stderr is not a terminal).
    """
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
    ):
        raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")
    state = setup_vocoder_training(
        config, out_dir, resume=resume, force=force, device=device, progress=progress
    )
    final = min(config.train.steps, max_steps) if max_steps is not None else config.train.steps
    try:
        with _StopRequested() as stop:
            _run(state, final, stop)
            if stop.requested:
                state.save()
                state.monitor.warn(
                    f"interrupted: checkpoint written at step {state.step} ({state.last_checkpoint})"
                )
        if state.last_checkpoint is None or not state.last_checkpoint.exists():
            state.save()  # a run that wrote none (e.g. resumed at its last step)
    finally:
        state.monitor.close()
    return VocoderTrainResult(
        step=state.step,
        checkpoint=state.last_checkpoint,
        generator=state.last_export,
        interrupted=stop.requested,
        skipped=dict(state.skipped),
        last_valid=state.last_valid,
        signal=stop.signal,
    )


def _run(state: VocoderState, final: int, stop: _StopRequested) -> None:
    """Epochs of :func:`vocoder_step` until step ``final`` or a stop request."""
    while state.step < final and not stop.requested:
        seen = stepped = 0
        for batch in epoch_loader(state):
            seen += 1
            _report_skipped(state, batch)
            result = vocoder_step(state, batch)
            if result.nonfinite and state.nonfinite >= state.config.train.max_nonfinite:
                state.save()
                raise TrainingError(
                    f"{state.nonfinite} non-finite losses: vocoder training stopped at step {state.step}; "
                    f"last checkpoint {state.last_checkpoint}"
                )
            if not result.stepped:
                continue
            stepped += 1
            _after_update(state, final)
            if state.step >= final or stop.requested:
                return
        if seen and not stepped:  # (a run resumed at an epoch's end sees no batch of it)
            raise TrainingError(
                f"a whole epoch gave no usable training segment ({len(state.skipped)} utterance(s) "
                "skipped so far; see log.jsonl)"
            )
        state.next_epoch()


def _report_skipped(state: VocoderState, batch: SegmentBatch) -> None:
    for item in batch.skipped:
        if item.id not in state.skipped:
            state.skipped[item.id] = item.reason
            state.monitor.log_skipped(state.step + 1, item.id, item.reason)


def _after_update(state: VocoderState, final: int) -> None:
    """Validate (then checkpoint) every ``valid_every`` steps and at the last; else checkpoint every
    ``checkpoint_every`` steps."""
    tc = state.config.train
    if state.step % tc.valid_every == 0 or state.step == final:
        # validation draws no random numbers today; the fork keeps a future one from shifting the
        # training trajectory, which exact resume relies on
        with torch.random.fork_rng(devices=[state.device] if state.device.type == "cuda" else []):
            state.last_valid = validate_vocoder(state) or state.last_valid
        score = state.last_valid.get("valid/mel_l1", math.inf)
        is_best = score < state.best_valid
        state.best_valid = min(state.best_valid, score)
        state.save(is_best=is_best)
    elif state.step % tc.checkpoint_every == 0:
        state.save()
