"""Hand freed memory back to the operating system during CPU training (glibc's ``malloc``).

Why: a training step allocates and frees hundreds of MB of activations and gradients. glibc serves
blocks below its mmap threshold (128 KiB at first, raised automatically up to 32 MiB as large blocks
are freed) from heaps that it trims only from the top, so the heap fragments and the process's peak RSS
creeps up step after step. Fixing the threshold at 256 KiB maps each larger block on its own and
unmaps it when freed: no fragmentation, but every such block comes back as fresh pages that the kernel
faults in and zeroes at each step. Measured on the 30 M-parameter configuration
(``bench/conf/coqui_size.yaml``, batch 8 x 300-400 frames, one thread, a training of ours on the other
core; docs/benchmarks.md): peak training RSS 2111-2143 MiB with glibc's defaults against 1631-1640 MiB
with this setting, and 6.9-7.1 s per step against 8.4-9.5 s. A 2 MiB threshold costs little time
(7.0-7.3 s) but saves little memory (1897-1907 MiB).

What: :func:`return_freed_memory` fixes the mmap threshold (``mallopt(M_MMAP_THRESHOLD, ...)``). It
changes where memory comes from, not what is computed. It is opt-in, for machines where memory is
the limit: ``prosody-vae train --low-memory`` (and ``train-vocoder``), and applies to the C library's
allocator only; jemalloc, which the training commands preload when it is installed
(:mod:`prosody_vae.training.allocator`), keeps the peak lower at full speed and needs no setting. A ``MALLOC_MMAP_THRESHOLD_`` in
the environment is the user's choice and is left alone; on a C library without ``mallopt`` (not glibc)
nothing happens.
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
