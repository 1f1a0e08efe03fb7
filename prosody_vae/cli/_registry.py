"""The subcommand registry shared by the modules of :mod:`prosody_vae.cli`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["COMMANDS", "Command", "command", "set_threads"]


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


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (torch intra-op threads) when the command has it and it was given."""
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
