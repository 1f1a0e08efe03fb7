"""What a person watching vocoder training sees: TensorBoard, ``log.jsonl`` and a progress bar.

As for the acoustic model (:mod:`prosody_vae.training.monitor`): ``log.jsonl`` holds one record per
logged step (the mean of every loss part, the learning rate and the seconds per step over the steps
since the last record), validation records, and one record per skipped utterance; a resumed run hides
in TensorBoard what the earlier run logged after the checkpoint it resumes from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from torch import Tensor
from tqdm import tqdm

from prosody_vae.training.monitor import purge_step

__all__ = ["VocoderMonitor"]


class VocoderMonitor:
    """TensorBoard scalars and audio, ``log.jsonl`` and a progress bar for one run folder."""

    def __init__(self, out_dir: Path, *, log_every: int, total_steps: int, start_step: int, progress: bool):
        from torch.utils.tensorboard import SummaryWriter

        self.log_every = log_every
        self._window: list[dict[str, float]] = []
        self._writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=purge_step(start_step))
        self._log_path = out_dir / "log.jsonl"
        self._log = open(self._log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._bar = None
        if progress:
            self._bar = tqdm(
                total=total_steps,
                initial=start_step,
                desc="train-vocoder",
                dynamic_ncols=True,
                file=sys.stderr,
                disable=None,  # hidden when stderr is not a terminal
            )

    def log_step(self, step: int, scalars: dict[str, float]) -> None:
        """One optimisation step's scalars; every ``log_every`` steps their means are written."""
        self._window.append(scalars)
        if self._bar is not None:
            self._bar.update(1)
        if step % self.log_every != 0:
            return
        mean = {key: float(np.mean([r[key] for r in self._window])) for key in self._window[-1]}
        self._window.clear()
        self._append({"step": step, **mean})
        for key, value in mean.items():
            self._writer.add_scalar(f"train/{key}", value, step)
        if self._bar is not None:
            self._bar.set_postfix(mel=f"{mean['mel_l1']:.3f}", s=f"{mean['seconds']:.2f}")

    def log_valid(self, step: int, scalars: dict[str, float]) -> None:
        for key, value in scalars.items():
            self._writer.add_scalar(key, value, step)
        self._append({"step": step, **scalars})
        self.write(
            f"[valid @ {step}] " + ", ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in scalars.items())
        )

    def log_skipped(self, step: int, utt_id: str, reason: str) -> None:
        """An utterance left out of training: a warning and a ``log.jsonl`` record."""
        self._append({"step": step, "skipped": utt_id, "reason": reason})
        self.warn(f"skipped utterance {utt_id}: {reason}")

    def log_audio(self, tag: str, wav: Tensor, step: int, sample_rate: int) -> None:
        self._writer.add_audio(tag, wav.float().clamp(-1, 1).cpu(), step, sample_rate=sample_rate)

    def _append(self, record: dict) -> None:
        """One line of ``log.jsonl``, flushed; a failed write (no space left) names the file."""
        try:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(self._log_path)) from None

    def write(self, message: str) -> None:
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        self.write(f"warning: {message}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._writer.close()
        log, self._log = self._log, None
        if log is not None:
            try:
                log.close()
            except OSError:
                pass  # a failed flush was already reported by the write that failed
