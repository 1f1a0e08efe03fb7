"""Length-bucketed batch sampler with exact mid-epoch resume and DDP-equal batch counts.

Batching similar lengths together keeps padding (wasted decoder steps) small. The recipe follows
the "bucket iterator" used by torchtext and Coqui: shuffle, cut into large windows, sort each window
by length, cut into batches, shuffle the batches. The order depends only on ``(seed, epoch)``, so
every DDP rank computes the same global list of batches and takes every ``num_replicas``-th one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

__all__ = ["LengthBucketSampler"]

# Window = this many batches: large enough that sorting finds close lengths, small enough that
# batch composition still changes from epoch to epoch.
_WINDOW_BATCHES = 50


class LengthBucketSampler(Sampler[list[int]]):
    """Yields lists of dataset indices of similar length (use as a DataLoader ``batch_sampler``).

    Args:
        lengths: length of each item (e.g. mel frames), used only for ordering.
        batch_size: items per batch.
        shuffle: random order per epoch; otherwise batches go from shortest to longest.
        seed: base of the per-epoch random order.
        drop_last: drop the final smaller batch (and, with DDP, the batches that do not divide
            evenly among ranks) instead of keeping it (and repeating batches from the start so that
            every rank gets the same count, as ``DistributedSampler`` repeats samples).
        num_replicas: number of DDP processes.
        rank: this process's rank.

    Resume: ``state_dict(consumed=k)`` records the epoch and the number of batches the trainer has
    consumed in it; after ``load_state_dict`` the next iteration yields exactly the remaining
    batches of that epoch. Call ``set_epoch(epoch)`` before each epoch, as with
    ``DistributedSampler``; setting the epoch a resumed state refers to keeps the resume position.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(num_replicas, int) or num_replicas <= 0:
            raise ValueError(f"num_replicas must be a positive int, got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank!r}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1:
            raise ValueError(f"lengths must be a flat sequence, got shape {self.lengths.shape}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self._start = 0  # batches to skip at the next iteration (set by load_state_dict)
        self._yielded = 0  # position reached in the current epoch

    def _global_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` before they are dealt out to ranks (identical on every rank)."""
        count = len(self.lengths)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(count)
            window = self.batch_size * _WINDOW_BATCHES
            # A stable sort keeps the random order among equal lengths.
            windows = np.split(order, range(window, count, window))  # (window,) pieces of the permutation
            order = np.concatenate(
                [piece[np.argsort(self.lengths[piece], kind="stable")] for piece in windows]
            )
        else:
            order = np.argsort(self.lengths, kind="stable")
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, count, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            permutation = rng.permutation(len(batches))
            batches = [batches[i] for i in permutation]
        if self.drop_last:
            batches = batches[: len(batches) - len(batches) % self.num_replicas]
        elif batches and len(batches) % self.num_replicas:
            missing = self.num_replicas - len(batches) % self.num_replicas
            batches += [batches[i % len(batches)] for i in range(missing)]
        return batches

    def _rank_batches(self, epoch: int) -> list[list[int]]:
        return self._global_batches(epoch)[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size)
        total = full + (1 if rest and not self.drop_last else 0)
        return total // self.num_replicas if self.drop_last else -(-total // self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._rank_batches(self.epoch)
        assert len(batches) == len(self), "batch count must not depend on the epoch or rank"
        start, self._start = self._start, 0
        self._yielded = start
        for batch in batches[start:]:
            self._yielded += 1
            yield batch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration uses."""
        if epoch != self.epoch:
            self._start = 0
            self._yielded = 0
        self.epoch = int(epoch)

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Resume state.

        Args:
            consumed: batches of the current epoch the trainer has actually used. Pass it when a
                DataLoader with workers prefetches (the sampler then runs ahead of training);
                default is the number this sampler has yielded.
        """
        position = self._yielded if consumed is None else int(consumed)
        if not 0 <= position <= len(self):
            raise ValueError(f"consumed must be in [0, {len(self)}], got {consumed!r}")
        return {
            "epoch": self.epoch,
            "position": position,
            "seed": self.seed,
            "num_items": len(self.lengths),
            "batch_size": self.batch_size,
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at ``state``'s epoch and batch position; the setup must match the saved one."""
        for key in ("seed", "num_items", "batch_size", "num_replicas"):
            current = getattr(self, key) if key != "num_items" else len(self.lengths)
            if state.get(key) != current:
                raise ValueError(
                    f"sampler state has {key}={state.get(key)!r} but this sampler has {current!r}; "
                    "an exact resume needs the same data and batching"
                )
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise ValueError(f"sampler state position {position} is outside [0, {len(self)}]")
        self.epoch = int(state["epoch"])
        self._start = position
        self._yielded = position
