"""DeferredLSTMCell: the same outputs and gradients as nn.LSTMCell, old state dicts, Tacotron 2's use of it;
and the opt-in reduced-precision inference steps."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from prosody_vae.prosody.masking import lengths_to_mask
from prosody_vae.tts.backbones import Tacotron2
from prosody_vae.tts.backbones.deferred_lstm import DeferredLSTMCell
from prosody_vae.tts.backbones.reduced_precision import reduced_precision_step
from prosody_vae.tts.backbones.tacotron2 import _DecoderCells

IN, H = 5, 7  # input and hidden sizes


def _cells(dtype: torch.dtype = torch.float64) -> tuple[nn.LSTMCell, DeferredLSTMCell]:
    """A plain cell and a deferred one with the same parameters."""
    torch.manual_seed(0)
    plain = nn.LSTMCell(IN, H).to(dtype)
    deferred = DeferredLSTMCell(IN, H).to(dtype)
    deferred.load_state_dict(plain.state_dict())
    return plain, deferred


def _sequence(step, lengths: Tensor, xs: Tensor, h0: Tensor, c0: Tensor, *, loss_steps: int | None = None):
    """Unroll like the decoder: the next input reads the last output (dropped out), every item runs
    every step, and the loss masks each item's steps past its length (and, with ``loss_steps``, every
    step from there on: steps that run but that the loss does not reach). Returns the scalar loss."""
    steps, batch = xs.shape[:2]
    generator = torch.Generator().manual_seed(1)
    keep = (torch.rand(steps, batch, H, generator=generator) > 0.2).to(xs.dtype) / 0.8  # fixed dropout
    mask = lengths_to_mask(lengths, steps).t().unsqueeze(-1).to(xs.dtype)  # (T, B, 1)
    h, c, loss = h0, c0, xs.new_zeros(())
    for t in range(steps):
        h, c = step(xs[t] + 0.5 * h[:, :IN], (h, c))
        h = h * keep[t]
        if loss_steps is None or t < loss_steps:
            loss = loss + ((h.square() + torch.sin(c)) * mask[t]).sum()
    return loss


def _grads(loss: Tensor, tensors: list[Tensor]) -> list[Tensor]:
    grads = torch.autograd.grad(loss, tensors, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads, strict=True)]


@pytest.mark.parametrize("loss_steps", [None, 3])
@pytest.mark.parametrize("lengths", [[6, 6, 6], [6, 4, 1]])
def test_gradients_equal_lstm_cells_in_float64(lengths: list[int], loss_steps: int | None) -> None:
    plain, deferred = _cells()
    generator = torch.Generator().manual_seed(2)
    xs = torch.randn(6, 3, IN, dtype=torch.float64, generator=generator, requires_grad=True)
    h0 = torch.randn(3, H, dtype=torch.float64, generator=generator, requires_grad=True)
    c0 = torch.randn(3, H, dtype=torch.float64, generator=generator, requires_grad=True)
    lengths_t = torch.tensor(lengths)

    loss_plain = _sequence(plain, lengths_t, xs, h0, c0, loss_steps=loss_steps)
    expected = _grads(loss_plain, [xs, h0, c0, *plain.parameters()])
    weights = deferred.sequence_weights()
    step = lambda x, state: deferred.step(x, state, weights)  # noqa: E731
    loss_deferred = _sequence(step, lengths_t, xs, h0, c0, loss_steps=loss_steps)
    got = _grads(loss_deferred, [xs, h0, c0, *deferred.parameters()])

    assert torch.equal(loss_plain, loss_deferred)  # the same operations forward
    names = ["x", "h0", "c0", *(name for name, _ in deferred.named_parameters())]
    for name, e, g in zip(names, expected, got, strict=True):
        assert e.abs().max() > 0, f"{name}: a vacuous comparison"
        assert torch.allclose(g, e, rtol=0, atol=1e-10 * float(e.abs().max())), name
    assert not weights.record.gate_grads, "the record is emptied by the backward"


def test_forward_is_bitwise_lstm_cell_in_float32() -> None:
    plain, deferred = _cells(torch.float32)
    x, h, c = torch.randn(4, IN), torch.randn(4, H), torch.randn(4, H)
    expected = plain(x, (h, c))
    got = deferred.step(x, (h, c), deferred.sequence_weights())
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)
    assert all(torch.equal(e, g) for e, g in zip(expected, deferred(x, (h, c)), strict=True))


def test_gradients_add_over_sequences_and_other_uses() -> None:
    # Two sequences in one backward, gradient accumulation into .grad, and a term on the parameters
    # outside any step: every path adds up as it does for the plain cell.
    plain, deferred = _cells()
    xs = torch.randn(2, 4, 3, IN, dtype=torch.float64)
    lengths = torch.tensor([4, 2, 3])
    for cell in (plain, deferred):
        for _ in range(2):  # two backward passes accumulate into .grad
            loss = cell.weight_hh.square().sum()
            for seq in xs:
                zeros = seq.new_zeros(3, H)
                if cell is deferred:
                    weights = deferred.sequence_weights()
                    step = lambda x, state, w=weights: deferred.step(x, state, w)  # noqa: E731
                else:
                    step = cell
                loss = loss + _sequence(step, lengths, seq, zeros, zeros)
            loss.backward()
    for (name, p), q in zip(plain.named_parameters(), deferred.parameters(), strict=True):
        assert torch.allclose(q.grad, p.grad, rtol=0, atol=1e-10 * float(p.grad.abs().max())), name
    assert deferred.bias_ih.grad.data_ptr() != deferred.bias_hh.grad.data_ptr()


def test_frozen_parameters_get_no_gradient_and_inputs_still_do() -> None:
    plain, deferred = _cells()
    for cell in (plain, deferred):
        cell.requires_grad_(False)
    xs = torch.randn(3, 2, IN, dtype=torch.float64, requires_grad=True)
    zeros = xs.new_zeros(2, H)
    (expected,) = _grads(_sequence(plain, torch.tensor([3, 2]), xs, zeros, zeros), [xs])
    weights = deferred.sequence_weights()
    step = lambda x, state: deferred.step(x, state, weights)  # noqa: E731
    (got,) = _grads(_sequence(step, torch.tensor([3, 2]), xs, zeros, zeros), [xs])
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)
    assert all(p.grad is None for p in deferred.parameters())
    assert not weights.record.gate_grads  # nothing is recorded for parameters without gradients


class _SharedNode(torch.autograd.Function):
    """One node over several outputs that passes undefined gradients on undefined (as DDP's output
    sink does with find_unused_parameters=True)."""

    @staticmethod
    def forward(ctx, *tensors: Tensor) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        return tuple(t.view_as(t) for t in tensors)

    @staticmethod
    def backward(ctx, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        return grads


def test_undefined_gradients_stay_undefined() -> None:
    # The gradient of an output that does not depend on the cell must reach none of its inputs or
    # parameters, even when it is taken through a node shared with one that does.
    plain, deferred = _cells()
    xs = torch.randn(3, 2, IN, dtype=torch.float64, requires_grad=True)
    other = torch.randn(4, dtype=torch.float64, requires_grad=True)
    zeros = xs.new_zeros(2, H)
    weights = deferred.sequence_weights()
    step = lambda x, state: deferred.step(x, state, weights)  # noqa: E731
    for cell_step, cell in ((plain, plain), (step, deferred)):
        loss = _sequence(cell_step, torch.tensor([3, 2]), xs, zeros, zeros)
        _, unrelated = _SharedNode.apply(loss, other.square().sum())
        grads = torch.autograd.grad(unrelated, [xs, *cell.parameters()], allow_unused=True)
        assert all(g is None for g in grads)
    assert not weights.record.gate_grads


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    plain, deferred = _cells()
    xs = torch.randn(4, 2, IN, dtype=torch.float64)
    zeros = xs.new_zeros(2, H)
    lengths = torch.tensor([4, 3])
    expected = _grads(_sequence(plain, lengths, xs, zeros, zeros), list(plain.parameters()))
    weights = deferred.sequence_weights()

    def step(x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return checkpoint(deferred.step, x, state, weights, use_reentrant=False)

    got = _grads(_sequence(step, lengths, xs, zeros, zeros), list(deferred.parameters()))
    for e, g in zip(expected, got, strict=True):
        assert torch.allclose(g, e, rtol=0, atol=1e-10 * float(e.abs().max()))


def test_old_state_dicts_load_and_initialisation_is_unchanged() -> None:
    torch.manual_seed(3)
    old = nn.LSTMCell(IN, H)
    torch.manual_seed(3)
    new = DeferredLSTMCell(IN, H)
    assert list(new.state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    for key, value in old.state_dict().items():
        assert torch.equal(new.state_dict()[key], value), key  # same random initialisation
    other = DeferredLSTMCell(IN, H)
    other.load_state_dict(old.state_dict())  # strict
    x, state = torch.randn(2, IN), (torch.randn(2, H), torch.randn(2, H))
    assert all(torch.equal(a, b) for a, b in zip(old(x, state), other(x, state), strict=True))


# --------------------------------------------------------------------------------------------------
# Inside Tacotron 2


def _tiny(**overrides) -> Tacotron2:
    kwargs = dict(
        n_symbols=12,
        n_mels=8,
        r=2,
        conditioning_dim=3,
        embedding_dim=16,
        encoder_dim=16,
        attention_dim=8,
        attention_rnn_dim=16,
        decoder_dim=24,
        prenet_dim=8,
        postnet_dim=8,
        postnet_n_convs=3,
        dca_filter_size=5,
        location_kernel_size=5,
    )
    kwargs.update(overrides)
    torch.manual_seed(0)
    return Tacotron2(**kwargs)


def _batch(dtype: torch.dtype = torch.float32):
    generator = torch.Generator().manual_seed(1)
    tl, ml = torch.tensor([7, 4, 6]), torch.tensor([13, 9, 11])
    tokens = torch.randint(1, 12, (3, 7), generator=generator) * lengths_to_mask(tl)
    mels = torch.randn(3, 13, 8, generator=generator) * lengths_to_mask(ml).unsqueeze(-1)
    conditioning = torch.randn(3, 3, generator=generator)
    return tokens, tl, mels.to(dtype), ml, conditioning.to(dtype)


def _loss(model: Tacotron2, batch) -> Tensor:
    """A training-like loss over every output; dropout is drawn from a fixed seed."""
    tokens, tl, mels, ml, conditioning = batch
    torch.manual_seed(5)
    out = model(tokens, tl, mels, ml, conditioning)
    mask = lengths_to_mask(ml, mels.shape[1]).to(mels.dtype)
    stops = F.binary_cross_entropy_with_logits(out.stop_logits, (1 - mask), weight=mask)
    return (out.mel - mels).abs().mean() + (out.mel_post - mels).abs().mean() + stops + out.alignments.var()


def _plain(model: Tacotron2) -> Tacotron2:
    """The same model, decoding with the cells' own forward: the path before the deferred step."""
    plain = copy.deepcopy(model)
    plain._cells = lambda memory: _DecoderCells(plain.attention_rnn, plain.decoder_rnn)  # type: ignore[method-assign]
    return plain


@pytest.mark.parametrize("attention", ["dca", "location"])
def test_tacotron2_float32_training_loss_is_unchanged(attention: str) -> None:
    model = _tiny(attention=attention).train()
    plain = _plain(model)
    batch = _batch()
    loss, expected = _loss(model, batch), _loss(plain, batch)
    assert torch.equal(loss, expected)  # bitwise: the forward did not change
    loss.backward()
    expected.backward()
    for (name, p), q in zip(plain.named_parameters(), model.parameters(), strict=True):
        scale = float(torch.cat([g.grad.flatten() for g in plain.parameters()]).abs().max())
        assert torch.allclose(q.grad, p.grad, rtol=1e-5, atol=1e-6 * scale), name


def test_tacotron2_float64_gradients_equal_the_plain_cells() -> None:
    model = _tiny().double().train()
    plain = _plain(model)
    batch = _batch(torch.float64)
    _loss(model, batch).backward()
    _loss(plain, batch).backward()
    for (name, p), q in zip(plain.named_parameters(), model.parameters(), strict=True):
        assert torch.allclose(q.grad, p.grad, rtol=1e-10, atol=1e-13), name


@pytest.mark.filterwarnings("ignore:Tacotron2.infer")  # six steps: nothing stops, as intended
def test_tacotron2_old_state_dicts_load() -> None:
    # The state dict of a model whose decoder cells were nn.LSTMCell: the same keys and shapes.
    old = _tiny()
    old.attention_rnn = nn.LSTMCell(old.attention_rnn.input_size, old.attention_rnn.hidden_size)
    old.decoder_rnn = nn.LSTMCell(old.decoder_rnn.input_size, old.decoder_rnn.hidden_size)
    new = _tiny(prenet_dropout=0.0)
    new.load_state_dict(old.state_dict())  # strict
    assert torch.equal(new.decoder_rnn.weight_hh, old.decoder_rnn.weight_hh)
    tokens, tl, _, _, conditioning = _batch()
    old.eval().prenet.dropout = 0.0
    expected = old.infer(tokens, tl, conditioning, max_steps=6, stop_threshold=0.99)
    got = new.eval().infer(tokens, tl, conditioning, max_steps=6, stop_threshold=0.99)
    assert torch.equal(got.mel_post, expected.mel_post)


def test_tacotron2_stores_nothing_on_its_modules() -> None:
    model = _tiny().train()
    before = {name: set(vars(m)) for name, m in model.named_modules()}
    _loss(model, _batch()).backward()
    assert {name: set(vars(m)) for name, m in model.named_modules()} == before
    copy.deepcopy(model)  # nothing unpicklable was left behind either


def _cpu_runs_bf16_lstm() -> bool:
    """Whether this CPU's oneDNN builds a bf16 LSTM (without AVX-512 it refuses: "could not create a
    primitive descriptor"); the training itself uses autocast on CUDA only (training/step.py)."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(4, 4, batch_first=True)(torch.randn(1, 3, 4))
    except RuntimeError:
        return False
    return True


@pytest.mark.skipif(not _cpu_runs_bf16_lstm(), reason="this CPU has no bf16 LSTM (oneDNN needs AVX-512)")
def test_tacotron2_trains_under_bf16_autocast_on_the_cpu() -> None:
    # bf16 rounding moves every gradient a little; the deferred step must be as close to the float32
    # gradients as the plain cells under the same autocast, and accumulate in float32.
    model = _tiny().train()
    batch = _batch()
    reference = _loss(model, batch)
    reference.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    closeness = {}
    for label, candidate in (("deferred", model), ("plain", _plain(model))):
        candidate.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = _loss(candidate, batch)
        loss.backward()
        assert abs(float(loss.detach()) - float(reference.detach())) < 0.01 * float(reference.detach())
        for name, p in candidate.named_parameters():
            assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name
            if "_rnn." in name:
                closeness[label, name] = float(
                    F.cosine_similarity(p.grad.flatten(), expected[name].flatten(), dim=0)
                )
    for (label, name), cosine in closeness.items():
        if label == "deferred":
            assert cosine > 0.95 and cosine > closeness["plain", name] - 0.01, (name, cosine)


# --------------------------------------------------------------------------------------------------
# Reduced-precision inference (opt-in)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.qint8])
def test_reduced_precision_step_is_close_to_the_cell_and_checks_its_dtype(dtype: torch.dtype) -> None:
    plain, _ = _cells(torch.float32)
    step = reduced_precision_step(plain, dtype)
    x, state = torch.randn(3, IN), (torch.randn(3, H), torch.randn(3, H))
    for expected, got in zip(plain(x, state), step(x, state), strict=True):
        assert got.dtype == torch.float32
        assert torch.allclose(got, expected, atol=3e-2) and not torch.equal(got, expected)
    with pytest.raises(ValueError, match="float16"):
        reduced_precision_step(plain, torch.float16)


@pytest.mark.filterwarnings("ignore:Tacotron2.infer")  # the stop threshold is out of reach on purpose
def test_tacotron2_reduced_precision_inference_is_opt_in_and_close() -> None:
    model = _tiny(prenet_dropout=0.0, decoder_dim=64, attention_rnn_dim=48).eval()
    tokens, tl, _, _, conditioning = _batch()
    settings = dict(max_steps=12, stop_threshold=0.999999)
    exact = model.infer(tokens, tl, conditioning, **settings)
    assert torch.equal(
        model.infer(tokens, tl, conditioning, reduced_precision=None, **settings).mel_post, exact.mel_post
    )
    for dtype in (torch.bfloat16, torch.qint8):
        low = model.infer(tokens, tl, conditioning, reduced_precision=dtype, **settings)
        assert low.mel_post.shape == exact.mel_post.shape
        difference = (low.mel_post - exact.mel_post).abs().max()
        assert 0 < difference < 0.01 * exact.mel_post.abs().max(), dtype
    # The reduced copies are cached, and remade when a weight changes in place (an optimiser step).
    with torch.no_grad():
        model.decoder_rnn.weight_hh.mul_(0.5)
    changed = model.infer(tokens, tl, conditioning, **settings)
    low = model.infer(tokens, tl, conditioning, reduced_precision=torch.qint8, **settings)
    # (an int8 copy left stale would sit as far from the changed model as the exact one does)
    assert (changed.mel_post - exact.mel_post).abs().max() > 3 * (low.mel_post - changed.mel_post).abs().max()
