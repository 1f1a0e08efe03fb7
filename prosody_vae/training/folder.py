"""The experiment folder: one run per folder, partial writes cleared, the log cut back on resume.

A run writes ``checkpoints/``, ``tensorboard/``, ``log.jsonl`` and ``config.yaml`` into its folder.
Starting a new run in a folder that already holds a run (any of the first three) is refused: its
``best.pt`` would be overwritten by a worse model, ``keep_last`` would delete its checkpoints and
``log.jsonl`` would mix two runs. The caller says what it wants: ``resume`` (continue the run there)
or ``force`` (move the old run's files aside to ``<name>.old-<N>/`` beside the folder and start
afresh; nothing is deleted, and other files in the folder stay where they are).
"""

from __future__ import annotations

import json
from pathlib import Path

from prosody_vae.atomic import remove_stale_temporaries, write_text_atomic

__all__ = [
    "ExperimentExistsError",
    "check_experiment_folder",
    "clear_partial_writes",
    "move_aside",
    "trim_log",
]


class ExperimentExistsError(ValueError):
    """A new run was asked for in a folder that already holds one."""


# What marks a folder as holding a run; config.yaml alone does not (it may be the user's own).
_RUN_MARKS = ("checkpoints", "tensorboard", "log.jsonl")
_RUN_FILES = (*_RUN_MARKS, "config.yaml")


def _run_files(out_dir: Path) -> list[Path]:
    if not any((out_dir / name).exists() for name in _RUN_MARKS):
        return []
    return [out_dir / name for name in _RUN_FILES if (out_dir / name).exists()]


def check_experiment_folder(out_dir: Path, *, resume: bool, force: bool) -> bool:
    """Whether a run in ``out_dir`` must be moved aside (:func:`move_aside`) before a new one starts.

    Raises :class:`ExperimentExistsError` when a new run (not ``resume``) is asked for in a folder
    that holds one, unless ``force``; and ``ValueError`` when ``out_dir`` is a file or both
    ``resume`` and ``force`` are given.
    """
    if resume and force:
        raise ValueError("resume continues the run in the folder and force moves it aside: give one")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder; give the experiment a folder")
    if resume or not out_dir.is_dir() or not _run_files(out_dir):
        return False
    if force:
        return True
    held = ", ".join(path.name for path in _run_files(out_dir))
    raise ExperimentExistsError(
        f"{out_dir}: already holds a run ({held}); continue it with --resume, start afresh with "
        f"--force (moves those to {_aside_name(out_dir)}), or give another --out"
    )


def _aside_name(out_dir: Path) -> Path:
    index = 1
    while (candidate := out_dir.with_name(f"{out_dir.name}.old-{index}")).exists():
        index += 1
    return candidate


def move_aside(out_dir: Path) -> Path:
    """Move the run in ``out_dir`` (checkpoints, TensorBoard events, log, config) into the first free
    ``<name>.old-<N>`` beside it; returns that folder."""
    target = _aside_name(out_dir)
    target.mkdir()
    for path in _run_files(out_dir):
        path.rename(target / path.name)
    return target


def clear_partial_writes(out_dir: Path) -> list[Path]:
    """Remove the temporary files a kill during a write left in the run's folders."""
    removed = []
    for folder in (out_dir, out_dir / "checkpoints"):
        removed += remove_stale_temporaries(folder)
    return removed


def trim_log(path: Path, step: int) -> int:
    """Cut ``log.jsonl`` back to what a run resumed at ``step`` keeps; returns the records dropped.

    A checkpoint at step S is written after the records of step S (training and validation), so
    those stay and everything later goes: the resumed run logs step S + 1 onwards again. Two more
    kinds go: the code-bank refresh logged at S (it happens after the checkpoint, and the resumed run
    does it again) and a line cut short by a kill. Rewritten atomically.
    """
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            at = int(record["step"])
        except (ValueError, TypeError, KeyError):
            dropped += 1
            continue
        refresh = at == step and any(key.startswith("acn/") for key in record)
        if at > step or refresh:
            dropped += 1
        else:
            kept.append(line + "\n")
    if dropped:
        write_text_atomic(path, "".join(kept))
    return dropped
