"""The one-command demo with the shipped model (``prosody-vae demo``): see :mod:`prosody_vae.demo.run`.

:data:`STYLES` is light; :func:`run_demo` and :class:`DemoResult` load torch on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prosody_vae.demo.styles import STYLES, ReferenceStyle

__all__ = ["STYLES", "DemoResult", "ReferenceStyle", "run_demo"]

if TYPE_CHECKING:
    from prosody_vae.demo.run import DemoResult, run_demo


def __getattr__(name: str) -> Any:
    if name in ("DemoResult", "run_demo"):
        from prosody_vae.demo import run

        return getattr(run, name)
    raise AttributeError(f"module 'prosody_vae.demo' has no attribute {name!r}")
