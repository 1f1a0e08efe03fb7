"""Hand freed memory back to the operating system during CPU training (glibc's ``malloc``).

Why: a training step allocates and frees hundreds of MB of activations and gradients. glibc serves
blocks below its mmap threshold (128 KiB at first, raised automatically up to 32 MiB as large blocks
are freed) from heaps that it trims only from the top, so after the first steps most of a step's
temporaries sit in memory that is free but still resident, and the process's peak RSS carries them.
Measured on the 30 M-parameter configuration (``bench/conf/coqui_size.yaml``, batch 8 x 300-400
frames, one thread, docs/benchmarks.md): peak training RSS 2018 MiB with glibc's defaults, 1786 MiB with
a fixed 1 MiB threshold and 1574 MiB with 256 KiB, at the same step time within the noise.

What: :func:`return_freed_memory` fixes the mmap threshold (``mallopt(M_MMAP_THRESHOLD, ...)``), so
blocks of 256 KiB and more are mapped on their own and unmapped when freed. It changes where memory
comes from, not what is computed. ``prosody-vae train`` and ``train-vocoder`` call it; a library user
may too. A ``MALLOC_MMAP_THRESHOLD_`` in the environment is the user's choice and is left alone; on a C
library without ``mallopt`` (not glibc) nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["DEFAULT_MMAP_THRESHOLD", "return_freed_memory"]

DEFAULT_MMAP_THRESHOLD = 256 * 1024  # bytes
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def return_freed_memory(threshold: int = DEFAULT_MMAP_THRESHOLD) -> bool:
    """Map blocks of ``threshold`` bytes and more on their own, so freeing them returns the memory.

    Returns:
        True when the setting was applied; False when the environment sets it already or the C
        library has no ``mallopt``.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 bytes, got {threshold}")
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
