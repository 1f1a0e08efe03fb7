"""An LSTM cell whose weight gradients are computed once per sequence, not once per step.

What: :class:`DeferredLSTMCell` is an ``nn.LSTMCell`` (same parameters ``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``, same initialisation, same ``forward``, so every state dict written for an
``nn.LSTMCell`` loads unchanged) with a second way to run a step for training loops that call the cell
once per decoder step::

    weights = cell.sequence_weights()        # once per sequence, while gradients are recorded
    for t in range(steps):
        h, c = cell.step(x[t], (h, c), weights)

Why: the decoder of Tacotron 2 runs its two LSTM cells once per decoder step, so autograd computes
each weight gradient as one thin matrix product per step, ``G_t^T x_t`` with only B rows, and adds it
into the gradient. Every one of those products reads its operands and reads and writes the whole
(4H, I) gradient: with the reference implementation's sizes (H = 1024, I up to 1664, 200 steps) that
is tens of GB of memory traffic per training step, most of the backward on a CPU. The same gradient
is one product over all steps at once, ``G^T X`` with T * B rows, which reads each operand once and
writes the gradient once.

Maths, for one step with input x_t (B, I) and state (h_{t-1}, c_{t-1}) (B, H), gates in torch's order
i, f, g, o::

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh                          (B, 4H)
    i, f, o = sigmoid(a^i), sigmoid(a^f), sigmoid(a^o);   g = tanh(a^g)
    c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)

Backward, given dL/dh_t and dL/dc_t (from the step's own outputs and from step t + 1)::

    dc    = dL/dc_t + dL/dh_t * o * (1 - tanh(c_t)^2)
    G_t   = [dc * g * i (1 - i),  dc * c_{t-1} * f (1 - f),  dc * i * (1 - g^2),
             dL/dh_t * tanh(c_t) * o (1 - o)]                                = dL/da_t  (B, 4H)
    dL/dx_t = G_t W_ih,   dL/dh_{t-1} = G_t W_hh,   dL/dc_{t-1} = dc * f

and the parameter gradients are sums over steps, here formed once per sequence::

    dL/dW_ih = sum_t G_t^T x_t     = G^T X       G = [G_1; ...; G_T] (T*B, 4H), X = [x_1; ...; x_T]
    dL/dW_hh = sum_t G_t^T h_{t-1} = G^T H_prev  H_prev = [h_0; ...; h_{T-1}]     (T*B, H)
    dL/db_ih = dL/db_hh = column sums of G

How: :meth:`DeferredLSTMCell.sequence_weights` passes the parameters through one autograd node whose
outputs every step of the sequence uses instead of the parameters. Each step's backward returns no
weight gradient; it records (x_t, h_{t-1}, G_t) on the sequence's :class:`SequenceWeights` instead.
Autograd runs that node only after the backward of every step that used it, so its backward sees
all of them and forms the four gradients with two matrix products and one sum. Steps the loss does
not reach are never recorded, exactly as their gradient is zero.

Memory: during the backward, the recorded tensors of the steps already done stay alive until the
end of the sequence's backward: G_t (B, 4H) is new, x_t and h_{t-1} would otherwise be freed step by
step. At the end G, X and H_prev are concatenated once: (T * B) * (4H + I + H) numbers, twice for a
moment. For the reference implementation's decoder cell (B = 8, T = 200, H = 1024, I = 1664, float32)
that is 41 MiB, against the (4H, I) and (4H, H) gradients of 26 and 16 MiB that the per-step products
allocate, fill and add 200 times.

Numerics: the forward is the same sequence of operations as torch's CPU ``lstm_cell`` (bitwise
equal on the CPU; on CUDA torch fuses the gate arithmetic into one kernel, which rounds the sum of
the four terms differently). Gradients differ from per-step accumulation only by the order of the
additions (float64: about 1e-15 relative). Under autocast the step follows autocast's policy for
torch's own LSTM cell on CUDA: the parameters (cast once per sequence), the input and the state are
cast to the autocast dtype; weight gradients are accumulated in the parameters' dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

__all__ = ["DeferredLSTMCell", "SequenceWeights"]


class _Record:
    """What each step's backward leaves for the sequence's weight gradients."""

    def __init__(self) -> None:
        self.inputs: list[Tensor] = []  # x_t (B, I)
        self.hiddens: list[Tensor] = []  # h_{t-1} (B, H)
        self.gate_grads: list[Tensor] = []  # G_t (B, 4H)

    def add(self, x: Tensor, h: Tensor, gate_grad: Tensor) -> None:
        self.inputs.append(x)
        self.hiddens.append(h)
        self.gate_grads.append(gate_grad)

    def take(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """X (N, I), H_prev (N, H), G (N, 4H) with N = the recorded rows; empties the record."""
        if not self.gate_grads:
            return None
        taken = torch.cat(self.inputs), torch.cat(self.hiddens), torch.cat(self.gate_grads)
        self.inputs, self.hiddens, self.gate_grads = [], [], []
        return taken


class SequenceWeights(NamedTuple):
    """One sequence's view of a :class:`DeferredLSTMCell`'s parameters, from ``sequence_weights``.

    The tensors are the parameters (or their autocast copies) behind one autograd node; pass the
    whole tuple to every :meth:`DeferredLSTMCell.step` of the sequence, and make a new one for the
    next sequence.
    """

    weight_ih: Tensor  # (4H, I)
    weight_hh: Tensor  # (4H, H)
    bias_ih: Tensor  # (4H,)
    bias_hh: Tensor  # (4H,)
    record: _Record


class _SequenceParameters(Function):
    """Identity on the four parameters forward; their whole-sequence gradients backward."""

    @staticmethod
    def forward(
        ctx: Any,
        record: _Record,
        dtype: torch.dtype,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ctx.record = record
        ctx.dtype = weight_ih.dtype
        ctx.device_type = weight_ih.device.type
        # The steps' backward passes no gradient for these outputs; do not build zeros for them.
        ctx.set_materialize_grads(False)
        # A view when no cast is needed: the steps read the parameters' own memory.
        w_ih, w_hh, b_ih, b_hh = (
            p.view_as(p) if p.dtype == dtype else p.to(dtype)
            for p in (weight_ih, weight_hh, bias_ih, bias_hh)
        )
        return w_ih, w_hh, b_ih, b_hh

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        taken = ctx.record.take()
        # Gradients from uses of these tensors outside the steps, if any; the steps' add to them.
        results = [None if g is None else g.to(ctx.dtype) for g in grads]
        if taken is not None:
            # Accumulated in the parameters' dtype even under autocast, and even if the backward
            # itself is called inside an autocast region (autocast would cast the products down).
            with torch.autocast(ctx.device_type, enabled=False):
                x, h, gate_grad = (t.to(ctx.dtype) for t in taken)  # (N, I), (N, H), (N, 4H)
                gate_grad_t = gate_grad.t()  # (4H, N)
                bias_grad = gate_grad.sum(0) if any(ctx.needs_input_grad[4:]) else None
                computed = (
                    gate_grad_t @ x if ctx.needs_input_grad[2] else None,  # (4H, I)
                    gate_grad_t @ h if ctx.needs_input_grad[3] else None,  # (4H, H)
                    bias_grad,
                    # its own tensor: two parameters' .grad must never share storage
                    None if bias_grad is None else bias_grad.clone(),
                )
            for k, value in enumerate(computed):
                if value is not None:
                    results[k] = value if results[k] is None else results[k] + value
        return (None, None, *results)


class _Step(Function):
    """One LSTM step whose backward records G_t for the sequence instead of forming weight gradients."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        h: Tensor,
        c: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
        record: _Record,
    ) -> tuple[Tensor, Tensor]:
        # The operations and their order are those of torch's CPU lstm_cell, so outputs are equal.
        gates = torch.addmm(bias_hh, h, weight_hh.t()).add_(torch.addmm(bias_ih, x, weight_ih.t()))
        i, f, g, o = gates.chunk(4, dim=1)  # views: activated in place, gates then holds i, f, g, o
        i.sigmoid_()
        f.sigmoid_()
        g.tanh_()
        o.sigmoid_()
        c_new = (f * c).add_(i * g)
        tanh_c = c_new.tanh()
        h_new = o * tanh_c
        ctx.save_for_backward(x, h, c, gates, tanh_c, weight_ih, weight_hh)
        ctx.record = record
        # Undefined gradients stay undefined, as through torch's own operations: a backward that
        # reaches this step without a gradient for it (autograd.grad of another output behind a
        # shared node, such as DDP's output sink) must not turn into zero gradients upstream.
        ctx.set_materialize_grads(False)
        return h_new, c_new

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_h: Tensor | None, grad_c: Tensor | None) -> tuple[Tensor | None, ...]:
        if grad_h is None and grad_c is None:
            return (None,) * 8
        x, h, c, gates, tanh_c, weight_ih, weight_hh = ctx.saved_tensors
        grad_h = torch.zeros_like(tanh_c) if grad_h is None else grad_h
        grad_c = torch.zeros_like(tanh_c) if grad_c is None else grad_c
        i, f, g, o = gates.chunk(4, dim=1)
        # dL/dc_t: directly, and through h_t = o * tanh(c_t)
        grad_c = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
        # dL/d(activated gates), then through the activations: s (1 - s) for the sigmoids, 1 - g^2
        gate_grad = torch.cat([grad_c * g, grad_c * c, grad_c * i, grad_h * tanh_c], dim=1)  # (B, 4H)
        slope = gates * (1 - gates)
        slope[:, 2 * g.shape[1] : 3 * g.shape[1]] = 1 - g * g
        gate_grad.mul_(slope)  # G_t = dL/da_t
        needs = ctx.needs_input_grad
        grad_x = gate_grad @ weight_ih if needs[0] else None  # (B, I)
        grad_h_prev = gate_grad @ weight_hh if needs[1] else None  # (B, H)
        grad_c_prev = grad_c * f if needs[2] else None  # (B, H)
        if any(needs[3:7]):
            ctx.record.add(x, h, gate_grad)
        # No gradient for the parameters here: the sequence's node forms them from the record.
        return grad_x, grad_h_prev, grad_c_prev, None, None, None, None, None


class DeferredLSTMCell(nn.LSTMCell):
    """``nn.LSTMCell`` with a training step that defers its weight gradients to one product per sequence.

    ``forward`` is ``nn.LSTMCell``'s own (the fast path for inference and for passes without
    gradients); :meth:`step` is the training step. See the module docstring for the maths.

    Args:
        input_size: I.
        hidden_size: H.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, bias=True)

    def sequence_weights(self) -> SequenceWeights:
        """The parameters as one sequence's steps use them; make one per sequence (per forward pass).

        Under autocast they are cast to the autocast dtype here, once, instead of at every step.
        """
        device_type = self.weight_ih.device.type
        dtype = self.weight_ih.dtype
        if torch.is_autocast_enabled(device_type):
            dtype = torch.get_autocast_dtype(device_type)
        record = _Record()
        weight_ih, weight_hh, bias_ih, bias_hh = _SequenceParameters.apply(
            record, dtype, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        )
        return SequenceWeights(weight_ih, weight_hh, bias_ih, bias_hh, record)

    def step(
        self, x: Tensor, state: tuple[Tensor, Tensor], weights: SequenceWeights
    ) -> tuple[Tensor, Tensor]:
        """One step with the weight gradients deferred to the end of the sequence's backward.

        Args:
            x: (B, I) input.
            state: h and c, each (B, H).
            weights: this cell's :meth:`sequence_weights` for the current sequence.

        Returns:
            h and c, each (B, H), in the dtype of ``weights`` (the autocast dtype under autocast).
        """
        assert weights.weight_ih.shape == self.weight_ih.shape, "weights of another cell"
        dtype = weights.weight_ih.dtype
        h, c = state
        # Casts that autograd records (no-ops without autocast), so gradients reach the inputs in their
        # own dtypes. With every operand in the autocast dtype, autocast has nothing left to change.
        return _Step.apply(x.to(dtype), h.to(dtype), c.to(dtype), *weights)
