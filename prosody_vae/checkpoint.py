"""Checkpoint files: atomic writes, safe loads, and a keep-last-k / keep-best manager.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(..., weights_only=True)``: no pickled code runs when a user opens a file from someone else.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from prosody_vae.atomic import atomic_path
from prosody_vae.errors import one_line

__all__ = [
    "CheckpointError",
    "CheckpointManager",
    "CheckpointWriteError",
    "FORMAT_VERSION",
    "describe_load_error",
    "load_checkpoint",
    "save_checkpoint",
]

# Bumped when the layout of the saved dict changes incompatibly.
FORMAT_VERSION = 1

_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, or from an incompatible version."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (no space left, no permission); nothing was replaced."""


def describe_load_error(error: BaseException) -> str:
    """Torch's message for weights or state that do not fit, on one line: its first two lines (the
    headline and the first mismatching tensor) and how many more it had."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    more = f" (and {len(lines) - 2} more)" if len(lines) > 2 else ""
    return one_line(" ".join(lines[:2]) + more, limit=400)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, then rename).

    A crash, a kill or a full disk during the write leaves the previous file (or none), never half a
    file; a failed write is a :class:`CheckpointWriteError` naming ``path``.
    """
    path = Path(path)
    payload = dict(state)
    payload.setdefault("format_version", FORMAT_VERSION)
    try:
        with atomic_path(path) as temporary:
            torch.save(payload, temporary)
    except OSError as error:
        if isinstance(error, CheckpointWriteError):
            raise
        cause = error.strerror or one_line(error)
        raise CheckpointWriteError(
            error.errno or errno.EIO,
            f"could not write the checkpoint ({cause}); nothing was replaced",
            str(path),
        ) from None
    except RuntimeError as error:  # torch's zip writer reports a failed write as a RuntimeError
        raise CheckpointWriteError(
            errno.EIO,
            f"could not write the checkpoint ({describe_load_error(error)}); nothing was replaced",
            str(path),
        ) from None
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; raise :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"{path}: not a readable prosody_vae checkpoint ({one_line(f'{type(error).__name__}: {first}')})"
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path}: not a prosody_vae checkpoint (no format_version)")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state['format_version']} is not supported by this version "
            f"(expects {FORMAT_VERSION})"
        )
    return state


@dataclass
class CheckpointManager:
    """Keeps ``step_<N>.pt`` files in ``directory``: the last ``keep_last`` plus ``best.pt``.

    ``latest()`` is what ``--resume`` continues from.
    """

    directory: Path
    keep_last: int = 3

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if self.keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {self.keep_last}")

    def step_files(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            match = _STEP_FILE.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def latest(self) -> Path | None:
        files = self.step_files()
        return files[-1][1] if files else None

    def save(self, step: int, state: dict[str, Any], *, is_best: bool = False) -> Path:
        """Write ``step_<step>.pt`` (and ``best.pt``), then delete the step files past ``keep_last``;
        a failed write deletes nothing."""
        path = save_checkpoint(self.directory / f"step_{step}.pt", state)
        if is_best:
            save_checkpoint(self.directory / "best.pt", state)
        for _, old in self.step_files()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path
