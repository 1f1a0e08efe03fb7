"""The example in docs/embedding.md runs as written (and asserts that training did something)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "embedding.md"


def _first_python_block(text: str) -> str:
    match = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert match is not None, f"{DOC} has no ```python block"
    return match.group(1)


def test_embedding_example_runs():
    code = _first_python_block(DOC.read_text(encoding="utf-8"))
    namespace: dict[str, object] = {"__name__": "embedding_example"}
    exec(compile(code, str(DOC), "exec"), namespace)
    assert "optimizer" in namespace and "history" in namespace
    assert len(namespace["history"]) > 1
