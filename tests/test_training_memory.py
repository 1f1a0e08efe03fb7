"""--low-memory: freed blocks go back to the operating system (glibc), measured on the process's RSS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent(
    """
    import sys
    from prosody_vae.training.memory import return_freed_memory

    applied = return_freed_memory() if sys.argv[1] == "low" else False

    def resident_mib():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    warm = bytearray(512 * 1024)  # freeing a block this size raises glibc's own threshold past it, as
    del warm                      # the first training step does: from then on such blocks come from the heap
    before = resident_mib()
    blocks, pins = [], []
    for _ in range(200):  # 200 x 512 KiB, each followed by a small block that stays: a fragmented heap
        blocks.append(bytearray(512 * 1024))
        pins.append(bytearray(64))
    held = resident_mib()
    del blocks
    print(applied, held - before, resident_mib() - before)
    """
)


def _run(mode: str) -> tuple[bool, float, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    applied, held, after = out.stdout.split()
    return applied == "True", float(held), float(after)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc are Linux's")
def test_low_memory_hands_freed_blocks_back():
    applied, held, after = _run("low")
    if not applied:
        pytest.skip("this C library has no mallopt (not glibc)")
    _, default_held, default_after = _run("default")
    assert held > 80 and default_held > 80  # the 100 MiB were resident while held
    assert after < 0.2 * held  # freed: back to the OS
    assert default_after > 0.8 * default_held  # glibc's default keeps them below the pinned blocks
