"""The examples in docs/embedding.md run as written (training does something; the export matches)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "embedding.md"
README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_embedding_example_runs():
    """Every ```python block of the page, in order, in one namespace (later ones continue the first)."""
    blocks = _python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 2, f"{DOC}: expected the training example and the export example"
    code = "\n".join(blocks)
    namespace: dict[str, object] = {"__name__": "embedding_example"}
    # One thread: with tiny tensors on a busy 2-core machine, a second thread mostly waits on the
    # first at every op's barrier (measured: about 3 s on one thread, up to a minute on two).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exec(compile(code, str(DOC), "exec"), namespace)
    finally:
        torch.set_num_threads(previous)
    assert "optimizer" in namespace and "history" in namespace and "encoder" in namespace
    assert len(namespace["history"]) > 1


def test_readme_embedding_example_runs():
    # the README's embedding example (its other Python block, the synthesis API, runs in
    # tests/test_readme_commands.py)
    blocks = [b for b in _python_blocks(README.read_text(encoding="utf-8")) if "CapacityObjective" in b]
    assert len(blocks) == 1, f"{README}: expected one embedding example"
    code = blocks[0]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})  # asserts inside
    finally:
        torch.set_num_threads(previous)
