"""Inference-only model files: a training checkpoint packed for shipping, and the built-in model.

A training checkpoint carries the optimiser state, the scheduler, RNG states and fp32 weights
(23 MB for the CPU recipe). A packed model keeps only what synthesis needs: the model weights (floating
tensors stored in fp16 by default, halving the file; integer buffers such as BatchNorm's counters stay
as they are), the resolved config, the tokenizer, the speaker list, the trained multiplier beta, and a
``provenance`` record of how it was made (step, training time, commands, corpus seed). It is a plain
dict, loaded with ``weights_only=True`` like any checkpoint, and :meth:`Synthesizer.from_checkpoint`
reads both kinds (weights are cast back to fp32 on load: the loss of precision is below the
mel's quantisation by Griffin-Lim, see ``tests/test_pretrained.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from prosody_vae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["BUILTIN_MODEL", "builtin_model_path", "model_weights", "pack_model", "packed_state"]

# The model trained by egs/espeak_prosody on the built-in corpus, shipped inside the package.
BUILTIN_MODEL = "espeak_prosody.pt"


def builtin_model_path() -> Path:
    """Path of the shipped built-in-corpus model (raises naming the path when it is missing)."""
    path = Path(__file__).resolve().parents[1] / "assets" / BUILTIN_MODEL
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the built-in model is missing from this installation; train one with "
            "egs/espeak_prosody/run.sh and pass it with --model"
        )
    return path


def model_weights(state: dict[str, Any], source: str | Path) -> dict[str, torch.Tensor]:
    """The model's weights of a training checkpoint's or a packed model's ``state`` (read from ``source``)."""
    if "model" in state:
        return dict(state["model"])
    try:
        module = state["training_module"]
    except KeyError:
        raise CheckpointError(f"{source}: neither 'model' nor 'training_module' weights found") from None
    return {key.removeprefix("model."): value for key, value in module.items() if key.startswith("model.")}


def _beta(state: dict[str, Any]) -> float | None:
    raw = state.get("training_module", {}).get("objective.beta_raw")
    if raw is None:
        return state.get("beta")
    return float(torch.nn.functional.softplus(raw.float()).reshape(-1)[0])


def pack_model(
    checkpoint: str | Path,
    out: str | Path,
    *,
    dtype: torch.dtype = torch.float16,
    provenance: dict[str, Any] | None = None,
    default_speaker: str | None = None,
) -> Path:
    """Write an inference-only copy of a training ``checkpoint`` to ``out`` (atomically).

    Args:
        checkpoint: a training checkpoint (``step_N.pt``) or an already packed model.
        out: the file to write.
        dtype: storage type of the floating-point weights (fp16 by default; fp32 keeps them exact).
        provenance: free-form facts recorded with the model (commands, training time, ...); the
            checkpoint's step is added.
        default_speaker: for a multi-speaker model, the voice it speaks in when none is named
            (:attr:`~prosody_vae.inference.synthesizer.Synthesizer.default_speaker`); one of its speakers.

    Returns:
        ``Path(out)``.
    """
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    packed = packed_state(
        state, checkpoint, dtype=dtype, provenance=provenance, default_speaker=default_speaker
    )
    return save_checkpoint(out, packed)


def packed_state(
    state: dict[str, Any],
    source: str | Path,
    *,
    dtype: torch.dtype = torch.float16,
    provenance: dict[str, Any] | None = None,
    default_speaker: str | None = None,
    weights: dict[str, torch.Tensor] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The packed model of a loaded checkpoint ``state`` (read from ``source``), as :func:`pack_model`
    writes it; ``weights`` and ``config`` replace the state's own (a model changed after training,
    e.g. by ``recipes/fit_utterance_length.py``)."""
    for key in ("config", "tokenizer", "speakers"):
        if key not in state:
            raise CheckpointError(f"{source}: checkpoint lacks {key!r}")
    default_speaker = default_speaker if default_speaker is not None else state.get("default_speaker")
    if default_speaker is not None and default_speaker not in state["speakers"]:
        raise ValueError(
            f"{source}: default speaker {default_speaker!r} is not one of its speakers {list(state['speakers'])}"
        )
    weights = {
        key: value.to(dtype) if value.is_floating_point() else value
        for key, value in (weights if weights is not None else model_weights(state, source)).items()
    }
    record = dict(state.get("provenance", {}))
    record.update(provenance or {})
    record.setdefault("step", state.get("step"))
    packed = {
        "model": weights,
        "config": config if config is not None else state["config"],
        "tokenizer": state["tokenizer"],
        "speakers": list(state["speakers"]),
        "beta": _beta(state),
        "provenance": record,
    }
    if default_speaker is not None:
        packed["default_speaker"] = default_speaker
    return packed
