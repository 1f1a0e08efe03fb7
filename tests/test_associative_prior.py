"""ACN prior: neighbour look-up that never returns the item itself, KL, bank persistence, sampling."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.distributed as dist
from torch.distributions import Normal, kl_divergence

from prosody_vae.prosody.bounds import iwae_bound
from prosody_vae.prosody.priors import AssociativePrior, gather_codes

D = 4


def _prior(num_codes: int = 12, *, k: int = 3, seed: int = 0) -> AssociativePrior:
    torch.manual_seed(seed)
    prior = AssociativePrior(D, k_neighbours=k, hidden_dim=16)
    prior.update_bank(torch.randn(num_codes, D), torch.arange(num_codes))
    return prior


# ---- neighbour look-up ---------------------------------------------------------------------------


def test_nearest_neighbours_hand_computed() -> None:
    prior = AssociativePrior(2, k_neighbours=2)
    line = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 0.0], [10.0, 0.0]])
    prior.update_bank(line, torch.arange(5))
    result = prior.bank.nearest(line[[1, 3]], torch.tensor([1, 3], dtype=torch.int32), 2)
    assert result.indices.tolist() == [[0, 2], [2, 4]]  # never row 1 for item 1, never row 3 for item 3
    torch.testing.assert_close(result.distances, torch.tensor([[1.0, 4.0], [9.0, 16.0]]))


def test_item_itself_is_excluded_by_id_even_among_exact_duplicates() -> None:
    prior = AssociativePrior(D, k_neighbours=7)
    same = torch.ones(8, D)  # every code identical: every distance is 0
    prior.update_bank(same, torch.arange(8))
    ids = torch.arange(8)
    indices = prior.bank.nearest(same, ids, 7).indices
    for item, row in zip(ids.tolist(), indices.tolist(), strict=True):
        assert sorted(row) == [i for i in range(8) if i != item]
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        rows = prior.bank.random_neighbour(same, ids, 7, generator=generator)
        assert not torch.any(rows == ids)


def test_duplicate_of_the_item_is_its_nearest_neighbour() -> None:
    prior = _prior(10)
    prior.update_bank(prior.bank.codes[3:4].clone(), torch.tensor([7]))  # row 7 := copy of row 3
    assert prior.bank.nearest(prior.bank.codes[[3]], torch.tensor([3]), 1).indices.item() == 7


def test_neighbour_context_draws_uniformly_among_the_k_nearest() -> None:
    prior = _prior(12, k=3)
    ids = torch.tensor([0, 5])
    codes = prior.bank.codes[ids]
    nearest = prior.bank.nearest(codes, ids, 3).indices  # (2, 3)
    generator = torch.Generator().manual_seed(1)
    seen: list[set[int]] = [set(), set()]
    for _ in range(200):
        context = prior.neighbour_context(codes, ids, generator=generator)
        for b in range(2):
            (row,) = torch.nonzero((prior.bank.codes == context[b]).all(-1)).flatten().tolist()
            seen[b].add(row)
    assert seen == [set(nearest[0].tolist()), set(nearest[1].tolist())]


def test_empty_rows_are_never_neighbours_and_small_banks_are_refused() -> None:
    prior = AssociativePrior(D, k_neighbours=2)
    prior.update_bank(torch.zeros(2, D), torch.tensor([0, 9]))  # grows to 10 rows, 2 filled
    assert prior.bank.codes.shape == (10, D) and prior.bank.num_filled == 2
    assert prior.needs_refresh(step=1)
    with pytest.raises(ValueError, match="holds 2 codes"):
        prior.neighbour_context(torch.zeros(1, D), torch.tensor([-1]))
    prior.update_bank(torch.full((1, D), 5.0), torch.tensor([4]))
    indices = prior.bank.nearest(torch.zeros(1, D), torch.tensor([-1]), 2).indices
    assert sorted(indices[0].tolist()) == [0, 9]  # rows 1..3, 5..8 hold zeros but are empty


def test_refresh_replaces_the_bank_and_bad_ids_are_rejected() -> None:
    prior = _prior(6)
    prior.refresh(torch.randn(4, D), torch.tensor([0, 1, 2, 3]))
    assert prior.bank.num_filled == 4 and not prior.bank.filled[4:].any()
    with pytest.raises(ValueError, match="codes must be"):
        prior.refresh(torch.randn(4, D + 1), torch.arange(4))
    assert prior.bank.num_filled == 4  # a rejected refresh leaves the bank as it was
    with pytest.raises(ValueError, match=">= 0"):
        prior.update_bank(torch.zeros(1, D), torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer"):
        prior.update_bank(torch.zeros(1, D), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="codes must be"):
        prior.update_bank(torch.zeros(2, D + 1), torch.tensor([0, 1]))


def test_needs_refresh_schedule() -> None:
    prior = AssociativePrior(D, k_neighbours=2, refresh_every=100)
    assert prior.needs_refresh(1)  # empty bank
    prior.update_bank(torch.randn(5, D), torch.arange(5))
    assert not prior.needs_refresh(1) and prior.needs_refresh(200)
    prior.refresh_every = 0
    assert not prior.needs_refresh(200)


# ---- the distribution ------------------------------------------------------------------------------


def test_kl_is_zero_when_the_posterior_is_the_prior() -> None:
    prior = _prior()
    context = torch.randn(5, D)
    with torch.no_grad():
        mean, std = prior(context)
    torch.testing.assert_close(prior.kl(mean, std, context=context), torch.zeros(5, D), atol=1e-6, rtol=0)


def test_kl_matches_torch_and_a_monte_carlo_estimate() -> None:
    prior = _prior()
    context = torch.randn(3, D)
    mean, std = torch.randn(3, D), torch.rand(3, D) + 0.3
    with torch.no_grad():
        kl = prior.kl(mean, std, context=context)
        prior_mean, prior_std = prior(context)
        torch.testing.assert_close(kl, kl_divergence(Normal(mean, std), Normal(prior_mean, prior_std)))
        z = Normal(mean, std).sample((20000,))  # (S, 3, D)
        log_ratio = Normal(mean, std).log_prob(z).sum(-1) - prior.log_prob(z, context=context.expand_as(z))
    standard_error = log_ratio.std(0) / math.sqrt(z.shape[0])
    assert torch.all((log_ratio.mean(0) - kl.sum(-1)).abs() < 4 * standard_error)


def test_gradients_reach_the_prior_network_through_the_kl() -> None:
    prior = _prior()
    mean = torch.randn(4, D, requires_grad=True)
    std = (torch.rand(4, D) + 0.2).requires_grad_()
    prior.kl(mean, std, context=torch.randn(4, D)).sum().backward()
    for name, parameter in prior.network.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert mean.grad is not None and std.grad is not None


def test_context_is_required() -> None:
    with pytest.raises(ValueError, match="needs context"):
        _prior().kl(torch.zeros(2, D), torch.ones(2, D))


def test_prior_works_as_the_iwae_prior() -> None:
    prior = _prior()
    mean, std, context = torch.randn(2, D), torch.rand(2, D) + 0.5, torch.randn(2, D)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        result = iwae_bound(
            lambda z: torch.zeros(z.shape[0]), mean, std, prior, 1, prior_context=context, generator=generator
        )
        z = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(0))
        expected = prior.log_prob(z, context=context) - Normal(mean, std).log_prob(z).sum(-1)
    torch.testing.assert_close(result.bound, expected)


# ---- persistence -----------------------------------------------------------------------------------


def test_bank_round_trips_through_the_state_dict() -> None:
    prior = _prior(9)
    buffer = io.BytesIO()
    torch.save(prior.state_dict(), buffer)
    buffer.seek(0)
    restored = AssociativePrior(D, k_neighbours=3, hidden_dim=16)  # empty bank, size unknown
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(restored.bank.codes, prior.bank.codes)
    assert torch.equal(restored.bank.filled, prior.bank.filled) and restored.bank.num_filled == 9
    ids = torch.arange(4)
    first = prior.neighbour_context(prior.bank.codes[ids], ids, generator=torch.Generator().manual_seed(3))
    second = restored.neighbour_context(
        restored.bank.codes[ids], ids, generator=torch.Generator().manual_seed(3)
    )
    torch.testing.assert_close(first, second)
    assert "bank.codes" in prior.state_dict() and "bank.filled" in prior.state_dict()


def test_bank_follows_to() -> None:
    prior = _prior().to(torch.float64)
    assert prior.bank.codes.dtype == torch.float64
    context = prior.neighbour_context(torch.zeros(2, D, dtype=torch.float64), torch.tensor([-1, -1]))
    assert context.dtype == torch.float64


# ---- sampling --------------------------------------------------------------------------------------


def test_sample_shapes_and_temperature() -> None:
    prior = _prior()
    code = torch.randn(D)
    with torch.no_grad():
        mode = prior(code.unsqueeze(0))[0]
    torch.testing.assert_close(prior.sample(3, temperature=0.0, context=code), mode.expand(3, D))
    assert prior.sample(5).shape == (5, D)  # marginal: contexts drawn from the bank
    assert prior.sample(2, context=torch.randn(2, D)).shape == (2, D)
    with pytest.raises(ValueError, match="context must be"):
        prior.sample(3, context=torch.randn(2, D))


def test_sample_near_is_distributed_as_the_prior_at_the_code() -> None:
    prior = _prior()
    codes = torch.randn(2, D)
    draws = prior.sample_near(codes, 4000, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (2, 4000, D) and prior.sample_near(codes[0], 3).shape == (3, D)
    with torch.no_grad():
        mean, std = prior(codes)
    torch.testing.assert_close(draws.mean(1), mean, atol=5 * std.max().item() / math.sqrt(4000), rtol=0)
    torch.testing.assert_close(draws.std(1), std, rtol=0.1, atol=0)


def test_ancestral_walk_moves_through_bank_neighbourhoods() -> None:
    prior = _prior(10, k=2)
    steps = 12
    walk = prior.ancestral_walk(torch.randn(D), steps, temperature=0.0)
    assert walk.shape == (steps, D) and torch.isfinite(walk).all()
    # At temperature 0, z_t is the prior mean of its context: steps 2.. come from bank rows.
    with torch.no_grad():
        row_means = prior(prior.bank.codes)[0]  # (10, D)
    rows = torch.cdist(walk[1:], row_means).argmin(-1)
    torch.testing.assert_close(walk[1:], row_means[rows])
    assert torch.all(rows[1:] != rows[:-1])  # the current row is excluded, so the walk never stalls


# ---- distributed -----------------------------------------------------------------------------------


def test_gather_codes_without_and_with_a_process_group(tmp_path) -> None:
    codes, ids = torch.randn(3, D), torch.tensor([4, 1, 7])
    same_codes, same_ids = gather_codes(codes, ids)
    assert same_codes is codes and same_ids is ids
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rendezvous", rank=0, world_size=1)
    try:
        gathered_codes, gathered_ids = gather_codes(codes, ids)
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(gathered_codes, codes)
    assert gathered_ids.tolist() == [4, 1, 7]


def test_held_out_context_is_the_nearest_stored_code_and_reserve_keeps_rows() -> None:
    prior = _prior(12)
    queries = prior.bank.codes[[3, 7]] + 1e-3  # next to items 3 and 7: nothing is excluded
    assert torch.equal(prior.held_out_context(queries), prior.bank.codes[[3, 7]])
    before = prior.bank.codes.clone()
    prior.bank.reserve(20)
    assert prior.bank.codes.shape[0] == 20 and prior.bank.num_filled == 12
    assert torch.equal(prior.bank.codes[:12], before)
    prior.bank.reserve(5)  # never shrinks
    assert prior.bank.codes.shape[0] == 20


def test_training_context_queries_the_stored_code_and_never_returns_the_item() -> None:
    prior = _prior(12)
    ids = torch.tensor([0, 5, 11])
    for seed in range(20):
        context = prior.training_context(ids, generator=torch.Generator().manual_seed(seed))
        expected = prior.neighbour_context(
            prior.bank.codes[ids], ids, generator=torch.Generator().manual_seed(seed)
        )
        assert torch.equal(context, expected)
        nearest = prior.bank.nearest(prior.bank.codes[ids], ids, 3).indices  # (3, K)
        for b, item in enumerate(ids.tolist()):
            (row,) = torch.nonzero((prior.bank.codes == context[b]).all(-1)).flatten().tolist()
            assert row != item and row in nearest[b].tolist()
    with pytest.raises(ValueError, match=r"\(B,\)"):
        prior.training_context(ids.view(3, 1))


def test_random_code_is_a_stored_code_of_a_filled_row() -> None:
    prior = AssociativePrior(D, k_neighbours=1, bank_size=10)
    prior.update_bank(torch.randn(3, D), torch.tensor([2, 5, 8]))  # rows 0, 1, 3, ... stay empty
    seen = set()
    for seed in range(30):
        code = prior.random_code(generator=torch.Generator().manual_seed(seed))
        assert code.shape == (D,)
        (row,) = torch.nonzero((prior.bank.codes == code).all(-1)).flatten().tolist()
        seen.add(row)
    assert seen == {2, 5, 8}
