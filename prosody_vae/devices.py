"""Checking a device name at the door, so that a missing GPU is one clear line, not a driver traceback."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device ``name`` names, checked to exist on this machine.

    ``None`` picks CUDA when it is available, else the CPU. Raises ``ValueError`` naming the value
    for a name torch does not know, for CUDA on a machine without it, and for a GPU index past the
    last GPU.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {str(name)!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(name)!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(name)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type not in ("cpu", "meta"):
        probe = getattr(torch, device.type, None)
        if probe is None or not getattr(probe, "is_available", lambda: False)():
            raise ValueError(f"device {str(name)!r} requested but {device.type} is not available here")
    return device
