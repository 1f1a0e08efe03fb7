"""The C memory allocator of a training process: jemalloc when installed, else the C library's.

Why: a training step allocates and frees hundreds of MB of activations and gradients in blocks of
every size. glibc's ``malloc`` serves large blocks from heaps it trims only from the top, so the heap
fragments and the peak RSS creeps up step after step (:mod:`prosody_vae.training.memory`); fixing its
mmap threshold stops the creep but makes the kernel fault in and zero fresh pages at every step.
jemalloc keeps blocks of one size class together and returns dirty pages on a timer, so it neither
fragments nor refaults. Measured on the 30 M-parameter configuration (``bench/conf/coqui_size.yaml``,
batch 8 x 300-400 frames, one thread; docs/benchmarks.md): peak training RSS about 1500 MiB with
jemalloc against about 2120 MiB with glibc's defaults, at the same step time or less.

How: an allocator replaces ``malloc`` only if it is loaded before the process starts
(``LD_PRELOAD``), so :func:`use_allocator` starts the command again (``execv``, same arguments) with the
library preloaded, once; it never does so inside a process that called ``prosody_vae.cli.main`` with
its own arguments (a test, a notebook). ``--allocator system`` keeps the C library's allocator. The
computation does not change, only where its memory comes from. ``scripts/setup.sh`` installs jemalloc
(Debian's ``libjemalloc2``) when it is missing; without it ``auto`` is the C library's allocator.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

__all__ = ["ALLOCATORS", "active_allocator", "find_allocator", "use_allocator"]

ALLOCATORS = ("auto", "jemalloc", "tcmalloc", "system")
# library names (as ctypes.util.find_library takes them) per allocator, first found wins
_LIBRARIES = {"jemalloc": ("jemalloc",), "tcmalloc": ("tcmalloc_minimal", "tcmalloc")}
# set in the environment of the restarted process: never restart twice
_MARKER = "PROSODY_VAE_ALLOCATOR"


def find_allocator(name: str) -> str | None:
    """The shared library of allocator ``name`` ("jemalloc" or "tcmalloc") on this machine, or None."""
    for library in _LIBRARIES[name]:
        found = ctypes.util.find_library(library)
        if found:
            return found
    return None


def active_allocator() -> str:
    """ "jemalloc" or "tcmalloc" when that library is mapped into this process, else "system"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: nothing is preloaded by us
        return "system"
    for name, libraries in _LIBRARIES.items():
        if any(f"lib{library}." in maps for library in libraries):
            return name
    return "system"


def use_allocator(name: str, *, restart: bool, command: list[str] | None = None) -> str:
    """Make allocator ``name`` (one of :data:`ALLOCATORS`) this process's, restarting it if needed.

    Args:
        name: "auto" (jemalloc when installed, else the C library's), "jemalloc", "tcmalloc" or
            "system".
        restart: whether this process may be replaced by a new one (``execv`` of ``python -m
            prosody_vae.cli`` with the same arguments): True only for a command run from the shell.
        command: what to run instead of ``python -m prosody_vae.cli <same arguments>`` (a script's
            own ``[sys.executable, *sys.argv]``).

    Returns:
        The allocator in use: "jemalloc", "tcmalloc" or "system". Does not return when it restarts.

    Raises:
        ValueError: ``name`` is unknown, or names a library that is not installed, or that could not
            be loaded in this process.
    """
    if name not in ALLOCATORS:
        raise ValueError(f"unknown allocator {name!r}: one of {', '.join(ALLOCATORS)}")
    active = active_allocator()
    wanted = "jemalloc" if name == "auto" else name
    if wanted == "system" or active == wanted:
        return active
    library = find_allocator(wanted)
    if library is None:
        if name == "auto":
            return active
        raise ValueError(
            f"--allocator {wanted}: the library is not installed (Debian: apt-get install "
            f"{'libjemalloc2' if wanted == 'jemalloc' else 'libtcmalloc-minimal4'})"
        )
    if not restart or os.environ.get(_MARKER):
        if name == "auto":
            return active
        raise ValueError(
            f"--allocator {wanted}: it must be loaded when the process starts; run the command from a "
            f"shell, or with LD_PRELOAD={library}"
        )
    env = dict(os.environ)
    env[_MARKER] = wanted
    env["LD_PRELOAD"] = " ".join(p for p in (library, env.get("LD_PRELOAD", "")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    command = command or [sys.executable, "-m", "prosody_vae.cli", *sys.argv[1:]]
    os.execve(command[0], command, env)
    raise AssertionError("unreachable")  # pragma: no cover - execve does not return
