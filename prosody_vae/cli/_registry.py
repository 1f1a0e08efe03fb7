"""The subcommand registry shared by the modules of :mod:`prosody_vae.cli`, and their common helpers.

Nothing here imports torch at module level: ``prosody-vae --help`` builds every sub-parser, and each
heavy import happens inside the function that needs it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prosody_vae.training.allocator import ALLOCATORS

__all__ = [
    "COMMANDS",
    "add_run_arguments",
    "Command",
    "HelpFormatter",
    "command",
    "log",
    "model_path",
    "progress",
    "progress_bar",
    "set_threads",
    "timed",
]

# What the commands tell a person on stderr (the level follows -v/-q; see prosody_vae.cli.main).
log = logging.getLogger("prosody_vae.cli")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, *, help: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated ``fn(args) -> exit status`` as subcommand ``name``."""

    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        if name in COMMANDS:
            raise RuntimeError(f"subcommand {name!r} registered twice")
        COMMANDS[name] = Command(name, help, arguments, fn)
        return fn

    return register


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default after its help, unless there is none to show.

    No default is appended for flags (``False``), for options whose absence means something the
    help text says in words (``None``), or when the help already names its default.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # identity, not equality: a default of 0 is shown although 0 == False
        if default is None or default is False or default is argparse.SUPPRESS or "default" in text:
            return text
        return super()._get_help_string(action)


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (torch intra-op threads) when the command has it and it was given."""
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def start_training_run(args: argparse.Namespace, name: str) -> None:
    """What every training command does with the run options before its work: ``--threads``, report
    the allocator in use (``--allocator``, settled by ``main``), ``--low-memory``, ``--max-steps``.
    ``name`` is the command, the prefix of its log lines."""
    set_threads(args)
    print(f"[{name}] memory allocator: {args.allocator}")
    if args.low_memory:
        if args.allocator == "system":
            from prosody_vae.training.memory import return_freed_memory

            return_freed_memory()  # lower peak RSS, slower steps, same computation (training/memory.py)
        else:
            print(f"[{name}] --low-memory: {args.allocator} needs no setting; left as it is")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, got {args.max_steps}")


def progress(args: argparse.Namespace) -> bool | None:
    """The ``progress`` setting for a command's bars: False with ``-q``, else None (tqdm shows a bar
    only when stderr is a terminal, so logs and pipes stay clean)."""
    return False if getattr(args, "quiet", False) else None


class _AboveBar:
    """A stdout stand-in that writes whole lines above a progress bar: clear the bar, write, redraw."""

    def __init__(self, bar, stream) -> None:
        self._bar, self._stream, self._pending = bar, stream, ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            lines, self._pending = self._pending.rsplit("\n", 1)
            self._bar.clear()
            self._stream.write(lines + "\n")
            self._stream.flush()
            self._bar.refresh()
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._pending)
            self._pending = ""
        self._stream.flush()


@contextmanager
def progress_bar(args: argparse.Namespace, *, total: int, desc: str, unit: str = "utt"):
    """A tqdm bar on stderr for ``total`` items, hidden by ``-q`` or when stderr is not a terminal.

    While it shows, what the command prints (results on stdout, notes and notices on stderr) appears
    above the bar, not inside it.
    """
    from tqdm import tqdm

    show = progress(args)
    disable = None if show is None else not show
    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, leave=False) as bar:
        if bar.disable:
            yield bar
            return
        out, err = _AboveBar(bar, sys.stdout), _AboveBar(bar, sys.stderr)  # the bar keeps the real stderr
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield bar
        finally:
            out.flush()
            err.flush()


def model_path(path: Path | None, *, option: str = "--checkpoint") -> Path:
    """``path``, or the shipped model when it is None (said once on stderr)."""
    if path is not None:
        return path
    from prosody_vae.inference.packed import builtin_model_path

    shipped = builtin_model_path()
    log.info(f"no {option} given: using the shipped model {shipped} (docs/pretrained.md)")
    return shipped


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Log how long the block took (shown with ``-v``)."""
    start = time.perf_counter()
    yield
    log.debug(f"{what}: {time.perf_counter() - start:.2f} s")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options every training command shares: resume or force, device, --max-steps, --set, --threads,
    --allocator, --low-memory."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    mode.add_argument(
        "--force",
        action="store_true",
        help="start a new run although --out holds one: the old run's files are moved to <out>.old-<N>/",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--max-steps", type=int, default=None, help="stop at this step (resume later)")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--allocator",
        choices=ALLOCATORS,
        default="auto",
        help="C memory allocator: auto = jemalloc when installed (about 0.7x the peak RSS of glibc's at the "
        "same speed; the command restarts itself with it preloaded), else the C library's "
        "(prosody_vae/training/allocator.py, docs/benchmarks.md)",
    )
    p.add_argument(
        "--low-memory",
        action="store_true",
        help="with the C library's allocator (glibc): hand freed memory back to the OS at once, about 0.75x "
        "the peak RSS for about 1.25x the step time (prosody_vae/training/memory.py); jemalloc needs no such "
        "setting",
    )
