"""Attention mechanisms, the guided attention loss and the alignment diagnostics."""

from __future__ import annotations

import math

import pytest
import torch

from prosody_vae.prosody.masking import lengths_to_mask
from prosody_vae.tts.attention_metrics import (
    align_error,
    alignment_stats,
    attention_monotonic_score,
    diagonality,
)
from prosody_vae.tts.backbones.attention import (
    DynamicConvolutionAttention,
    LocationSensitiveAttention,
    beta_binomial_prior,
)
from prosody_vae.tts.backbones.auxiliary_losses import guided_attention_loss

QUERY, MEMORY, ATTN = 12, 10, 16


def _attention(kind: str) -> DynamicConvolutionAttention | LocationSensitiveAttention:
    if kind == "dca":
        return DynamicConvolutionAttention(query_dim=QUERY, attention_dim=ATTN, n_filters=4, filter_size=7)
    return LocationSensitiveAttention(query_dim=QUERY, memory_dim=MEMORY, attention_dim=ATTN, kernel_size=5)


def _run(attention, lengths: torch.Tensor, steps: int, length: int) -> list[torch.Tensor]:
    """Free-run the attention with random queries; returns the weights of every step."""
    generator = torch.Generator().manual_seed(0)
    batch = lengths.shape[0]
    memory = torch.randn(batch, length, MEMORY, generator=generator)
    mask = lengths_to_mask(lengths, length)
    processed = attention.process_memory(memory)
    previous = attention.initial_weights(mask, memory.dtype)
    cumulative = previous
    out = []
    for _ in range(steps):
        query = torch.randn(batch, QUERY, generator=generator)
        context, previous = attention(query, memory, processed, mask, previous, cumulative)
        cumulative = cumulative + previous
        assert context.shape == (batch, MEMORY)
        out.append(previous)
    return out


@pytest.mark.parametrize("kind", ["dca", "location"])
def test_weights_are_a_distribution_over_valid_tokens(kind: str) -> None:
    torch.manual_seed(0)
    lengths = torch.tensor([9, 4, 1])
    for weights in _run(_attention(kind), lengths, steps=6, length=9):
        mask = lengths_to_mask(lengths, 9)
        assert (weights >= 0).all()
        assert torch.allclose(weights.sum(-1), torch.ones(3), atol=1e-5)
        assert (weights[~mask] == 0).all()


def test_beta_binomial_prior() -> None:
    # alpha = beta = 1 is the uniform distribution over 0..n.
    assert torch.allclose(beta_binomial_prior(4, 1.0, 1.0), torch.full((4,), 0.25, dtype=torch.float64))
    prior = beta_binomial_prior(11, 0.1, 0.9)
    assert math.isclose(prior.sum().item(), 1.0, rel_tol=1e-9)
    assert prior.argmax() == 0  # the paper's prior mostly stays, sometimes moves forward
    mean = (prior * torch.arange(11)).sum().item()
    assert math.isclose(mean, 10 * 0.1 / (0.1 + 0.9), rel_tol=1e-9)  # n alpha / (alpha + beta)


def test_dca_prior_alone_moves_attention_forward_at_its_mean_rate() -> None:
    # With v = 0 the energies are the log prior only, so each step convolves the previous weights with
    # the beta-binomial: the centroid moves forward by the prior's mean shift, n alpha / (alpha + beta).
    torch.manual_seed(0)
    dca = DynamicConvolutionAttention(query_dim=QUERY, attention_dim=ATTN, prior_alpha=0.2, prior_beta=0.8)
    with torch.no_grad():
        dca.v.weight.zero_()
    expected_shift = 10 * 0.2 / (0.2 + 0.8)
    positions = torch.arange(60, dtype=torch.float32)
    centroids = [(w * positions).sum(-1) for w in _run(dca, torch.tensor([60]), steps=8, length=60)]
    shifts = torch.stack(centroids[1:]) - torch.stack(centroids[:-1])
    assert torch.allclose(shifts, torch.full_like(shifts, expected_shift), atol=1e-3)


def test_untrained_dca_attention_only_moves_forward() -> None:
    torch.manual_seed(0)
    weights = torch.stack(_run(_attention("dca"), torch.tensor([40, 40]), steps=25, length=40), dim=1)
    # Mass behind the previous step's support is suppressed by the prior's floor (1e-6 before renormalising).
    first_support = (weights > 1e-3).float().argmax(-1)  # (B, steps) first token with real mass
    assert (first_support[:, 1:] >= first_support[:, :-1]).all()
    centroid = (weights * torch.arange(40.0)).sum(-1)
    assert (centroid[:, -1] > centroid[:, 0] + 3).all()
    assert (attention_monotonic_score(weights, torch.tensor([40, 40]), torch.tensor([25, 25])) == 1).all()


def test_dca_ignores_memory_content() -> None:
    dca = _attention("dca")
    mask = torch.ones(2, 5, dtype=torch.bool)
    previous = dca.initial_weights(mask, torch.float32)
    query = torch.randn(2, QUERY)
    _, w1 = dca(query, torch.randn(2, 5, MEMORY), torch.empty(2, 5, 0), mask, previous, previous)
    _, w2 = dca(query, torch.randn(2, 5, MEMORY), torch.empty(2, 5, 0), mask, previous, previous)
    assert torch.equal(w1, w2)


def test_attention_rejects_even_filters() -> None:
    with pytest.raises(ValueError, match="filter_size"):
        DynamicConvolutionAttention(query_dim=4, attention_dim=4, filter_size=20)
    with pytest.raises(ValueError, match="kernel_size"):
        LocationSensitiveAttention(query_dim=4, memory_dim=4, attention_dim=4, kernel_size=30)


# --- guided attention loss and diagnostics -----------------------------------------------------------
def _diagonal(steps: int, tokens: int) -> torch.Tensor:
    """A hard diagonal alignment (steps, tokens)."""
    rows = (torch.arange(steps) * tokens) // steps
    return torch.nn.functional.one_hot(rows, tokens).float()


def _random(steps: int, tokens: int, seed: int = 0) -> torch.Tensor:
    return torch.softmax(
        torch.randn(steps, tokens, generator=torch.Generator().manual_seed(seed)) * 3, dim=-1
    )


def test_guided_loss_prefers_diagonal() -> None:
    tl, dl = torch.tensor([10]), torch.tensor([30])
    diagonal = guided_attention_loss(_diagonal(30, 10)[None], tl, dl)
    random = guided_attention_loss(_random(30, 10)[None], tl, dl)
    assert diagonal < 0.05 < random


def test_guided_loss_masks_padding_and_is_batch_size_invariant() -> None:
    a = _random(12, 6)
    padded = torch.rand(1, 20, 9)  # garbage everywhere, then the real alignment in the valid block
    padded[0, :12, :6] = a
    tl, dl = torch.tensor([6]), torch.tensor([12])
    single = guided_attention_loss(a[None], tl, dl)
    assert torch.allclose(guided_attention_loss(padded, tl, dl), single)
    assert torch.allclose(guided_attention_loss(a[None].repeat(4, 1, 1), tl.repeat(4), dl.repeat(4)), single)


def test_guided_loss_validates() -> None:
    with pytest.raises(ValueError, match="sigma"):
        guided_attention_loss(torch.rand(1, 3, 3), torch.tensor([3]), torch.tensor([3]), sigma=0.0)
    with pytest.raises(ValueError, match="alignments"):
        guided_attention_loss(torch.rand(3, 3), torch.tensor([3]), torch.tensor([3]))


def test_diagnostics_on_known_alignments() -> None:
    steps, tokens = 24, 8
    diag, anti, uniform = (
        _diagonal(steps, tokens),
        _diagonal(steps, tokens).flip(0),
        torch.full((steps, tokens), 1 / 8),
    )
    batch = torch.stack([diag, anti, uniform])
    tl, dl = torch.full((3,), tokens), torch.full((3,), steps)
    stats = alignment_stats(batch, tl, dl)
    assert stats.diagonality[0] == 1.0 and stats.diagonality[1] < 0.3
    assert stats.diagonality[2] == pytest.approx(diagonality(uniform[None], tl[:1], dl[:1]).item())
    assert stats.align_error[0] == pytest.approx(0.0) and stats.align_error[1] == pytest.approx(0.0)
    assert stats.align_error[2] == pytest.approx(1 - 1 / tokens)
    # Staying on a token is monotonic; the reversed alignment jumps back once per token change.
    assert stats.monotonic[0] == 1.0
    assert stats.monotonic[1] == pytest.approx(1 - (tokens - 1) / (steps - 1))
    reversed_square = _diagonal(tokens, tokens).flip(0)[None]
    assert attention_monotonic_score(reversed_square, tl[:1], tl[:1]) == 0.0


def test_diagnostics_ignore_padding() -> None:
    a = _diagonal(10, 5)
    padded = torch.rand(1, 16, 7)
    padded[0, :10, :5] = a
    tl, dl = torch.tensor([5]), torch.tensor([10])
    for fn in (diagonality, align_error, attention_monotonic_score):
        assert torch.allclose(fn(padded, tl, dl), fn(a[None], tl, dl)), fn.__name__
