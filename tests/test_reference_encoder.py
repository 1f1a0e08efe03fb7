"""ReferenceEncoder: shapes, exact length arithmetic, padding invariance, masked batch norm."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from prosody_vae.prosody.reference_encoder import ReferenceEncoder, _MaskedBatchNorm2d

N_MELS = 20
SMALL = dict(n_mels=N_MELS, channels=(4, 8, 8), rnn_size=12)


def _encoder(rnn_type: str = "gru", **kwargs) -> ReferenceEncoder:
    torch.manual_seed(0)
    return ReferenceEncoder(**{**SMALL, "rnn_type": rnn_type, **kwargs})


def _warm_up(encoder: ReferenceEncoder) -> None:
    """A few training-mode passes so the running statistics are not the trivial (0, 1)."""
    encoder.train()
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        encoder(3.0 * torch.randn(4, 30, N_MELS, generator=gen) + 1.0, torch.tensor([30, 22, 17, 9]))
    encoder.eval()


def test_default_architecture_reads_two_frequency_bins_of_128_channels():
    encoder = ReferenceEncoder()
    assert len(encoder.convs) == 6
    assert [conv.out_channels for conv in encoder.convs] == [32, 32, 64, 64, 128, 128]
    assert isinstance(encoder.rnn, nn.GRU)
    assert encoder.rnn.input_size == 128 * 2  # 80 mel bins halved six times -> 2 bins
    assert encoder.out_dim == 128


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("batch", [1, 3])
def test_output_shape(rnn_type, batch):
    encoder = _encoder(rnn_type)
    lengths = torch.arange(batch) + 5
    out = encoder(torch.randn(batch, int(lengths.max()), N_MELS), lengths)
    assert out.shape == (batch, 12)
    assert isinstance(encoder.rnn, nn.GRU if rnn_type == "gru" else nn.LSTM)


@pytest.mark.parametrize("kernel_size,stride", [(3, 2), (5, 2), (3, 3), (4, 2)])
def test_output_lengths_match_the_conv_stack_on_each_length_alone(kernel_size, stride):
    encoder = _encoder(kernel_size=kernel_size, stride=stride)
    lengths = torch.arange(1, 41)
    expected = []
    for length in lengths.tolist():
        x = torch.zeros(1, 1, length, N_MELS)
        for conv in encoder.convs:
            x = conv(x)
        expected.append(x.shape[2])
    assert encoder.output_lengths(lengths).tolist() == expected


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_eval_embedding_alone_equals_embedding_in_a_padded_batch(rnn_type):
    encoder = _encoder(rnn_type)
    _warm_up(encoder)
    gen = torch.Generator().manual_seed(2)
    lengths = torch.tensor([31, 18, 7, 26])
    mel = torch.randn(4, 31, N_MELS, generator=gen)
    # Garbage past each length: NaN, inf and huge values must all be ignored.
    mel[1, 18:] = float("nan")
    mel[2, 7:] = 1e6
    mel[3, 26:] = float("inf")
    with torch.no_grad():
        batched = encoder(mel, lengths)
        for i, length in enumerate(lengths.tolist()):
            alone = encoder(mel[i : i + 1, :length], lengths[i : i + 1])
            torch.testing.assert_close(alone[0], batched[i], rtol=1e-5, atol=1e-6)


def test_eval_embedding_depends_on_valid_frames():
    """Guard against a vacuous invariance: changing a valid frame must change the embedding."""
    encoder = _encoder()
    _warm_up(encoder)
    mel = torch.randn(1, 20, N_MELS)
    with torch.no_grad():
        before = encoder(mel, torch.tensor([20]))
        mel[0, 19] += 3.0
        after = encoder(mel, torch.tensor([20]))
    assert (before - after).abs().max() > 1e-4


def test_training_mode_ignores_padding_contents():
    """Masked batch norm: garbage in the padding changes neither outputs nor running statistics."""
    gen = torch.Generator().manual_seed(3)
    lengths = torch.tensor([25, 12, 6])
    clean = torch.randn(3, 25, N_MELS, generator=gen)
    for i, length in enumerate(lengths.tolist()):
        clean[i, length:] = 0.0
    dirty = clean.clone()
    dirty[1, 12:] = 1e4 * torch.randn(13, N_MELS, generator=gen)
    dirty[2, 6:] = float("nan")
    a, b = _encoder(), _encoder()
    a.train()
    b.train()
    torch.testing.assert_close(a(clean, lengths), b(dirty, lengths))
    for norm_a, norm_b in zip(a.norms, b.norms, strict=True):
        torch.testing.assert_close(norm_a.running_mean, norm_b.running_mean)
        torch.testing.assert_close(norm_a.running_var, norm_b.running_var)


def test_masked_batch_norm_equals_batch_norm_without_padding():
    torch.manual_seed(4)
    ours, ref = _MaskedBatchNorm2d(5), nn.BatchNorm2d(5)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.uniform_(-1, 1)
    ref.load_state_dict(ours.state_dict())
    x = 2.0 * torch.randn(3, 5, 7, 4) + 1.0
    mask = torch.ones(3, 1, 7, 1)
    for _ in range(2):
        torch.testing.assert_close(ours(x, mask), ref(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval()
    ref.eval()
    torch.testing.assert_close(ours(x, mask), ref(x))


@pytest.mark.parametrize("train", [True, False])
def test_batch_size_one_and_length_one(train):
    encoder = _encoder()
    encoder.train(train)
    out = encoder(torch.randn(1, 1, N_MELS), torch.tensor([1]))
    assert out.shape == (1, 12)
    assert torch.isfinite(out).all()


def test_gradients_reach_every_parameter():
    encoder = _encoder()
    encoder(torch.randn(2, 16, N_MELS), torch.tensor([16, 9])).sum().backward()
    for name, param in encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "mel_shape,lengths,error",
    [
        ((2, 10, N_MELS + 1), [10, 5], ValueError),  # wrong n_mels
        ((2, 10), [10, 5], ValueError),  # not 3-D
        ((2, 10, N_MELS), [10], ValueError),  # lengths do not match the batch
        ((2, 10, N_MELS), [11, 5], ValueError),  # longer than T
        ((2, 10, N_MELS), [10, 0], ValueError),  # empty item
        ((2, 10, N_MELS), [10.0, 5.0], TypeError),  # float lengths
    ],
)
def test_bad_inputs_raise(mel_shape, lengths, error):
    with pytest.raises(error):
        _encoder()(torch.randn(*mel_shape), torch.tensor(lengths))


@pytest.mark.parametrize(
    "kwargs",
    [dict(rnn_type="transformer"), dict(channels=()), dict(channels=(4, 0)), dict(stride=0), dict(n_mels=0)],
)
def test_bad_configuration_raises(kwargs):
    with pytest.raises(ValueError):
        ReferenceEncoder(**{**SMALL, **kwargs})


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_traces_as_it_is_and_the_trace_fits_other_batches(rnn_type):
    """Export wraps this very module: a trace on one batch gives the eager embedding of another
    (other batch size, other lengths, garbage in the padding)."""
    encoder = _encoder(rnn_type)
    _warm_up(encoder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in torch 2.11
        traced = torch.jit.trace(encoder, (torch.randn(2, 24, N_MELS), torch.tensor([24, 11])))
    gen = torch.Generator().manual_seed(5)
    lengths = torch.tensor([9, 33, 20])
    mel = torch.randn(3, 33, N_MELS, generator=gen)
    mel[0, 9:] = float("nan")
    mel[2, 20:] = 1e6
    with torch.no_grad():
        torch.testing.assert_close(traced(mel, lengths), encoder(mel, lengths), rtol=1e-5, atol=1e-6)
