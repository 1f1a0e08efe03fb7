"""What a person watching training sees: TensorBoard, a JSON-lines log and a progress bar.

Only rank 0 writes. ``log.jsonl`` holds one record per logged step (every loss part, KL, C, beta,
learning rate, gradient norm, seconds per step) so curves can be re-plotted without TensorBoard. A
resumed run hides in TensorBoard what the earlier run logged after the checkpoint it resumes from
(:func:`purge_step`), so each training and validation step shows once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from prosody_vae.config import ExperimentConfig
from prosody_vae.plots import figure_to_array

__all__ = ["TrainingMonitor", "purge_step"]


def purge_step(start_step: int) -> int:
    """The first TensorBoard step a run starting at ``start_step`` hides from earlier runs.

    A checkpoint at step S is written after everything logged at S: the training record of step S
    and, when S is a validation step, the validation scalars, figures and audio. A run resumed from it
    logs from S + 1 on. So events at S + 1 and later (written by the earlier run after its last
    checkpoint, before it stopped) are replaced and must go, and those at S must stay: purging from
    S, as ``SummaryWriter(purge_step=S)`` is often used, drops the validation point of every resume
    step, leaving a gap in ``valid/*`` that nothing fills. A fresh run (S = 0) likewise hides what a
    previous run left at steps >= 1 in the same folder.

    One exception: the ACN code-bank refresh before step S + 1 is logged at step S (``acn/*``) after
    the checkpoint; a resumed run refreshes there again, so that point can show twice.
    """
    return start_step + 1


class TrainingMonitor:
    def __init__(
        self, out_dir: Path, config: ExperimentConfig, *, enabled: bool, progress: bool, start_step: int
    ):
        self.enabled = enabled
        self.config = config
        self.log_every = config.train.log_every
        self.capacity = config.capacity.capacity
        # C_s of a hierarchical model, whose steps log kl_high and beta_high as extra scalars
        self.high_capacity = config.capacity.high_capacity if config.prosody.hierarchical else None
        self._writer = None
        self._log = None
        self._bar = None
        self._window: list[dict[str, float]] = []
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=purge_step(start_step))
        self._log_path = out_dir / "log.jsonl"
        self._log = open(self._log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if progress:
            self._bar = tqdm(
                total=config.train.steps,
                initial=start_step,
                desc="train",
                dynamic_ncols=True,
                file=sys.stderr,
                disable=None,  # hidden when stderr is not a terminal (a log file, a pipe)
            )

    def log_step(
        self, step: int, parts, info, *, lr: float, seconds: float, extra: dict[str, float] | None = None
    ) -> None:
        """One optimisation step; ``extra`` scalars (e.g. the ACN bank's fill) are logged beside the parts."""
        if not self.enabled:
            return
        record = {
            "lagrangian": float(parts.lagrangian),
            "decoder_l1": float(parts.decoder_l1),
            "pitch": float(parts.pitch),
            "postnet_l1": float(parts.postnet_l1),
            "kl": float(parts.kl),
            "beta": float(parts.beta),
            "stop": float(parts.stop),
            "guided_attention": float(parts.guided_attention),
            "grad_norm": float(info.grad_norm),
            "seconds": seconds,
            **(extra or {}),
        }
        self._window.append(record)
        if self._bar is not None:
            self._bar.update(1)
        if step % self.log_every != 0:
            return
        mean = {key: float(np.mean([r[key] for r in self._window])) for key in record}
        self._window.clear()
        mean.update(step=step, lr=lr, capacity=self.capacity)
        if self.high_capacity is not None:
            mean["capacity_high"] = self.high_capacity
        self._append(mean)
        for key, value in mean.items():
            if key not in ("step", "capacity", "capacity_high"):
                self._writer.add_scalar(f"train/{key}", value, step)
        self._writer.add_scalars("train/kl_vs_capacity", {"kl": mean["kl"], "C": self.capacity}, step)
        if self.high_capacity is not None and "kl_high" in mean:
            self._writer.add_scalars(
                "train/kl_high_vs_capacity", {"kl": mean["kl_high"], "C": self.high_capacity}, step
            )
        if self._bar is not None:
            self._bar.set_postfix(
                kl=f"{mean['kl']:.1f}/{self.capacity:g}",
                beta=f"{mean['beta']:.2f}",
                l1=f"{mean['postnet_l1']:.0f}",
            )

    def _append(self, record: dict) -> None:
        """One line of ``log.jsonl``, flushed; a failed write (no space left) names the file."""
        try:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(self._log_path)) from None

    def log_valid(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        for key, value in scalars.items():
            self._writer.add_scalar(key, value, step)
        self._append({"step": step, **scalars})
        summary = ", ".join(f"{k.split('/')[-1]} {v:.3g}" for k, v in scalars.items())
        self.write(f"[valid @ {step}] {summary}")

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Scalars outside the per-step record (e.g. ``acn/refresh_seconds``): TensorBoard + log.jsonl."""
        if not self.enabled:
            return
        for key, value in scalars.items():
            self._writer.add_scalar(key, value, step)
        self._append({"step": step, **scalars})

    def log_figure(self, tag: str, figure, step: int) -> None:
        if self.enabled:
            self._writer.add_image(tag, figure_to_array(figure), step, dataformats="HWC")

    def log_audio(self, tag: str, wav, step: int, sample_rate: int) -> None:
        if self.enabled:
            self._writer.add_audio(tag, wav, step, sample_rate=sample_rate)

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        self.write(f"warning: {message}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._writer is not None:
            self._writer.close()
        if self._log is not None:
            log, self._log = self._log, None
            try:
                log.close()
            except OSError:
                pass  # a failed flush was already reported by the write that failed
