"""Length-bucketed batches: coverage, bucketing, exact resume, equal batch counts across DDP ranks."""

from __future__ import annotations

import numpy as np
import pytest

from prosody_vae.data.sampler import LengthBucketSampler


def _lengths(n: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(20, 800, size=n).tolist()


@pytest.mark.parametrize("drop_last", [False, True])
def test_each_item_once_per_epoch(drop_last: bool) -> None:
    lengths = _lengths(103)
    sampler = LengthBucketSampler(lengths, 8, drop_last=drop_last)
    batches = list(sampler)
    assert len(batches) == len(sampler) == (12 if drop_last else 13)
    flat = [i for batch in batches for i in batch]
    assert len(flat) == len(set(flat)) == (96 if drop_last else 103)
    assert sorted(map(len, batches)) == ([8] * 12 if drop_last else [7] + [8] * 12)


def test_batches_group_similar_lengths() -> None:
    lengths = _lengths(2000)
    sampler = LengthBucketSampler(lengths, 16, seed=1)
    arr = np.asarray(lengths)
    bucketed = np.mean([np.ptp(arr[batch]) for batch in sampler])
    rng = np.random.default_rng(0)
    random_spread = np.mean([np.ptp(arr[rng.choice(len(arr), 16, replace=False)]) for _ in range(100)])
    assert bucketed < 0.2 * random_spread


def test_order_changes_with_epoch_and_not_without() -> None:
    sampler = LengthBucketSampler(_lengths(200), 10, seed=5)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    ordered = LengthBucketSampler([5, 1, 4, 2, 3], 2, shuffle=False)
    assert list(ordered) == [[1, 3], [4, 2], [0]]


@pytest.mark.parametrize(
    "num_replicas,n,drop_last", [(2, 103, False), (3, 101, False), (4, 50, True), (3, 5, False)]
)
def test_ddp_ranks_get_equal_batch_counts(num_replicas: int, n: int, drop_last: bool) -> None:
    lengths = _lengths(n)
    per_rank = [
        list(
            LengthBucketSampler(lengths, 8, drop_last=drop_last, num_replicas=num_replicas, rank=rank, seed=2)
        )
        for rank in range(num_replicas)
    ]
    counts = {len(batches) for batches in per_rank}
    assert len(counts) == 1
    assert counts.pop() == len(
        LengthBucketSampler(lengths, 8, drop_last=drop_last, num_replicas=num_replicas)
    )
    covered = {i for batches in per_rank for batch in batches for i in batch}
    if drop_last:
        assert len(covered) <= n
    else:
        assert covered == set(range(n))  # every item is seen; some batches repeat to even out ranks


def test_resume_continues_at_exact_batch() -> None:
    lengths = _lengths(150)
    reference = LengthBucketSampler(lengths, 7, seed=9)
    reference.set_epoch(3)
    full_epoch = list(reference)

    run = LengthBucketSampler(lengths, 7, seed=9)
    run.set_epoch(3)
    iterator = iter(run)
    seen = [next(iterator) for _ in range(5)]
    state = run.state_dict()
    assert state["epoch"] == 3 and state["position"] == 5

    resumed = LengthBucketSampler(lengths, 7, seed=9)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # the training loop sets the epoch again; the position must survive it
    rest = list(resumed)
    assert seen + rest == full_epoch
    resumed.set_epoch(4)
    reference.set_epoch(4)
    assert list(resumed) == list(reference)


def test_resume_with_prefetching_uses_consumed_count() -> None:
    lengths = _lengths(60)
    run = LengthBucketSampler(lengths, 4)
    all_batches = list(run)  # a prefetching DataLoader has drained the sampler...
    state = run.state_dict(consumed=6)  # ...but training used only 6 batches
    resumed = LengthBucketSampler(lengths, 4)
    resumed.load_state_dict(state)
    assert list(resumed) == all_batches[6:]
    finished = LengthBucketSampler(lengths, 4)
    finished.load_state_dict(run.state_dict(consumed=len(run)))
    finished.set_epoch(0)
    assert list(finished) == []  # a finished epoch is not replayed


def test_state_mismatch_and_bad_arguments() -> None:
    state = LengthBucketSampler(_lengths(40), 4).state_dict()
    with pytest.raises(ValueError, match="batch_size"):
        LengthBucketSampler(_lengths(40), 5).load_state_dict(state)
    with pytest.raises(ValueError, match="num_items"):
        LengthBucketSampler(_lengths(41), 4).load_state_dict(state)
    with pytest.raises(ValueError, match="rank"):
        LengthBucketSampler(_lengths(40), 4, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="batch_size"):
        LengthBucketSampler(_lengths(40), 0)
