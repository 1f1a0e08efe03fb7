"""Resumable shuffled batches of ``(index, epoch)`` keys for the vocoder's segment dataset.

The key carries the epoch so that :class:`~prosody_vae.vocoder.data.SegmentDataset` can draw each
item's segment offset from ``(seed, epoch, index)`` alone, whatever process loads it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

__all__ = ["ShuffledBatches"]


class ShuffledBatches(Sampler[list[tuple[int, int]]]):
    """Batches of ``(index, epoch)`` keys over a fresh permutation per epoch, resumable mid-epoch.

    The permutation of epoch e comes from a generator seeded by ``(seed, e)``; ``state_dict`` records
    the epoch and how many batches of it were consumed, and ``load_state_dict`` refuses a state from
    another number of items or another batch size. Incomplete last batches are dropped.
    """

    def __init__(self, n_items: int, batch_size: int, *, seed: int = 0):
        if n_items < batch_size:
            raise ValueError(f"{n_items} training utterance(s) do not fill one batch of {batch_size}")
        self.n_items = n_items
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self._start = 0  # batches of this epoch to skip (a resumed run)

    def __len__(self) -> int:
        return self.n_items // self.batch_size - self._start

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self._start = epoch, 0

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n_items).tolist()
        for batch in range(self._start, self.n_items // self.batch_size):
            chunk = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            yield [(index, self.epoch) for index in chunk]
        self._start = 0  # the next pass over this epoch (if any) starts at its beginning

    def state_dict(self, consumed: int) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "position": consumed,
            "n_items": self.n_items,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        if (state["n_items"], state["batch_size"]) != (self.n_items, self.batch_size):
            raise ValueError(
                f"the checkpoint was taken over {state['n_items']} utterances in batches of "
                f"{state['batch_size']}, this run has {self.n_items} in batches of {self.batch_size}"
            )
        self.epoch, self._start = int(state["epoch"]), int(state["position"])
