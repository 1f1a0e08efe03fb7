"""Inference-only LSTM cell steps that read their weights in a reduced precision (bfloat16 or int8).

Why: at batch 1 a decoder step is two matrix-vector products per cell, and each reads the cell's
whole weight matrix from memory; at Tacotron 2's sizes (two 1024-unit cells, 19 M weights, 75 MB in
float32) that read is most of the step, and the matrices do not fit in the CPU's cache. bfloat16
halves the bytes read. Measured on a 2-core AMD EPYC VM with AVX512-BF16, one thread, 500 free-running
steps of the 30 M-parameter configuration (``bench/conf/coqui_size.yaml``): 6.5-7.2 ms per decoder
step in float32, 3.9-4.5 ms with these steps (two runs of four rounds). The default compact model's
cells (256 and 512 units) already fit in the cache and gain nothing (0.8-0.9 ms either way).

What is rounded: only the weights and the product's operands and result. Input and hidden state are
concatenated and multiplied by ``[W_ih, W_hh]`` in one product (one weight read instead of two);
the biases, the gate nonlinearities and the cell state stay in float32, so rounding does not
accumulate in the state from step to step. On the shipped model, five sentences decoded with the same
seed gave the same lengths and a largest log-mel difference of 0.01-0.44 (mean 0.001-0.015), against
2-8 (mean 0.2-1.2) between two float32 runs that differ only in the prenet dropout's seed.

int8 (``torch.qint8``) goes further: the concatenated weights are quantised per output row
(symmetric, scale = the row's largest magnitude / 127) and multiplied by torch's dynamic quantised
linear (fbgemm / oneDNN: the activations are quantised per call to 7 bits, as torch's dynamic
quantised Linear does, the product accumulates in int32 and comes back in float32), so a step reads a
quarter of float32's bytes. One 1024-unit cell's product
took 0.7 ms against 8.3 ms in float32 on the same (busy) machine; the whole decoder step and the
output's distance from float32 are in docs/benchmarks.md. The per-row scales keep every gate's
rounding error at about 1/254 of that gate's largest weight.

Not for training: the weights are copies, cast once per call, so no gradient reaches the parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["REDUCED_PRECISION_DTYPES", "reduced_precision_step"]

REDUCED_PRECISION_DTYPES = (torch.bfloat16, torch.qint8)


def reduced_precision_step(
    cell: nn.LSTMCell, dtype: torch.dtype
) -> Callable[[Tensor, tuple[Tensor, Tensor]], tuple[Tensor, Tensor]]:
    """A step of ``cell`` whose matrix product runs in ``dtype``; cast the weights once, then call it per step.

    Args:
        cell: an LSTM cell with biases.
        dtype: one of :data:`REDUCED_PRECISION_DTYPES`.

    Returns:
        ``step(x, (h, c)) -> (h, c)`` with x (B, I) and h, c (B, H), all in the cell's dtype.
    """
    if dtype not in REDUCED_PRECISION_DTYPES:
        raise ValueError(f"reduced-precision dtype must be one of {REDUCED_PRECISION_DTYPES}, got {dtype}")
    if dtype == torch.qint8:
        return _int8_step(cell)
    with torch.no_grad():
        weight = torch.cat([cell.weight_ih, cell.weight_hh], dim=1).to(dtype)  # (4H, I + H)
        bias = cell.bias_ih + cell.bias_hh  # (4H,) kept in the cell's dtype

    def step(x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        operand = torch.cat([x, h], dim=1).to(dtype)  # (B, I + H)
        gates = (operand @ weight.t()).to(bias.dtype) + bias  # (B, 4H), gates i, f, g, o
        return _gates_to_state(gates, c)

    return step


def _gates_to_state(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The LSTM update from pre-activation gates (B, 4H) in the order i, f, g, o."""
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _int8_step(cell: nn.LSTMCell) -> Callable[[Tensor, tuple[Tensor, Tensor]], tuple[Tensor, Tensor]]:
    """The cell's step with ``[W_ih, W_hh]`` quantised to int8 per row and the biases fused in float32."""
    if cell.weight_ih.dtype != torch.float32:
        raise ValueError(f"int8 steps need a float32 cell, got {cell.weight_ih.dtype}")
    with torch.no_grad():
        weight = torch.cat([cell.weight_ih, cell.weight_hh], dim=1).cpu()  # (4H, I + H)
        scales = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        quantised = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(quantised, (cell.bias_ih + cell.bias_hh).cpu())

    def step(x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        # reduce_range: 7-bit activations, as torch's own dynamic quantised Linear uses on fbgemm. On
        # CPUs without AVX-512 VNNI, fbgemm adds pairs of 8-bit products in int16, which full-range
        # activations overflow (measured on an AVX2-only EPYC, a 32-unit cell on 64 random inputs: the
        # largest output error 0.29 with 8-bit activations, 0.019 with 7)
        gates = torch.ops.quantized.linear_dynamic(torch.cat([x, h], dim=1), packed, True)  # (B, 4H)
        return _gates_to_state(gates, c)

    return step
