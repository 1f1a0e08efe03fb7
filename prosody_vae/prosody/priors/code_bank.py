"""The code bank of the associative prior: training-set codes in buffers, and their K-NN look-up.

Rows are item ids (integer data-set indices). The bank grows to the largest id written, and a state
dict with a differently sized bank loads into a fresh module, so nothing needs the data-set size up
front. Distances are squared Euclidean, computed with one matmul against the whole bank on the
bank's device; an item's own row is excluded *by id*, never by a zero distance, since a corpus can
hold exact duplicates (and their codes are then legitimately each other's nearest neighbours).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["CodeBank", "Neighbours", "gather_codes"]


class Neighbours(NamedTuple):
    distances: Tensor  # (B, K) squared Euclidean distances, ascending
    indices: Tensor  # (B, K) long bank rows (= item ids)


def _check_pair(codes: Tensor, ids: Tensor, latent_dim: int) -> None:
    if codes.dim() != 2 or codes.shape[1] != latent_dim or ids.shape != (codes.shape[0],):
        raise ValueError(
            f"codes must be (N, {latent_dim}) and ids (N,), got {tuple(codes.shape)} and {tuple(ids.shape)}"
        )
    if ids.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"ids must be an integer tensor of item indices, got {ids.dtype}")


class CodeBank(nn.Module):
    """Posterior means of the training set, one row per item id.

    Args:
        latent_dim: D.
        size: rows to allocate up front (optional).
    """

    def __init__(self, latent_dim: int, *, size: int = 0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("codes", torch.zeros(size, latent_dim))
        self.register_buffer("filled", torch.zeros(size, dtype=torch.bool))
        self._num_filled = 0  # host-side count: look-ups check readiness without a device sync

    @property
    def num_filled(self) -> int:
        """Rows holding a code."""
        return self._num_filled

    def update(self, codes: Tensor, ids: Tensor) -> None:
        """Write codes (N, D) to rows ids (N,), growing the bank if needed.

        Codes are detached (the bank is data, not part of the graph). If an id repeats (e.g. items
        padded in by a distributed sampler), one of its codes is kept.
        """
        _check_pair(codes, ids, self.latent_dim)
        if ids.numel() == 0:
            return
        low, high = int(ids.min()), int(ids.max())
        if low < 0:
            raise ValueError(f"ids must be >= 0 to be stored, got {low}")
        if high >= self.codes.shape[0]:
            self._resize(high + 1)
        ids = ids.to(self.codes.device)
        self.codes[ids] = codes.detach().to(self.codes)
        self.filled[ids] = True
        self._num_filled = int(self.filled.sum())

    def refresh(self, codes: Tensor, ids: Tensor) -> None:
        """Replace the whole bank: rows not in ``ids`` become empty."""
        _check_pair(codes, ids, self.latent_dim)  # before clearing: a bad call leaves the bank intact
        self.filled.zero_()
        self._num_filled = 0
        self.update(codes, ids)

    def reserve(self, size: int) -> None:
        """Allocate at least ``size`` rows now (e.g. the training-set size before DDP wraps the model,
        which registers the buffers it broadcasts once and would miss ones replaced by a later growth)."""
        if size > self.codes.shape[0]:
            self._resize(size)

    def require(self, needed: int) -> None:
        """Raise ValueError unless at least ``needed`` rows are filled."""
        if self._num_filled < needed:
            raise ValueError(
                f"the code bank holds {self._num_filled} codes but this look-up needs {needed}: "
                "fill it with update_bank/refresh first"
            )

    def nearest(self, codes: Tensor, ids: Tensor, k: int) -> Neighbours:
        """K nearest filled rows to each query, never the query's own row.

        Args:
            codes: (B, D) queries.
            ids: (B,) long; row ``ids[b]`` is excluded for query b. -1 (or any id outside the bank)
                excludes nothing, for items that are not in the bank.
            k: K; needs at least K + 1 filled rows, so K remain after excluding the item itself.
        """
        _check_pair(codes, ids, self.latent_dim)
        self.require(k + 1)
        bank = self.codes  # (N, D)
        query = codes.detach().to(bank.dtype)
        # |q - b|^2 = |q|^2 - 2 q.b + |b|^2. Ranking needs only |b|^2 - 2 q.b, one addmm whose bias row
        # also carries +inf for empty rows; |q|^2 is added back to the K winners alone. This avoids
        # every (B, N) pass but the matmul and the topk (no (B, N) masks), which dominate at large N.
        bias = torch.where(self.filled, (bank * bank).sum(-1), math.inf)  # (N,)
        scores = torch.addmm(bias.unsqueeze(0), query, bank.T, alpha=-2.0)  # (B, N)
        own = ids.to(device=bank.device, dtype=torch.long)  # scatter/gather index dtype
        inside = (own >= 0) & (own < bank.shape[0])
        own = torch.where(inside, own, 0).unsqueeze(1)  # (B, 1); rows of outside ids keep their score
        scores.scatter_(1, own, torch.where(inside.unsqueeze(1), math.inf, scores.gather(1, own)))
        nearest, indices = torch.topk(scores, k, dim=-1, largest=False)  # ascending
        nearest = nearest + (query * query).sum(-1, keepdim=True)
        return Neighbours(distances=nearest.clamp_min(0.0), indices=indices)  # clamp: rounding

    def random_neighbour(
        self, codes: Tensor, ids: Tensor, k: int, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """One of the K nearest rows per query, uniformly: (B,) long."""
        indices = self.nearest(codes, ids, k).indices  # (B, K)
        choice = torch.randint(k, (indices.shape[0], 1), device=indices.device, generator=generator)
        return indices.gather(1, choice).squeeze(1)

    def random_rows(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n filled rows drawn uniformly with replacement: (n,) long."""
        self.require(1)
        return torch.multinomial(self.filled.float(), n, replacement=True, generator=generator)

    def _resize(self, size: int) -> None:
        keep = min(self.codes.shape[0], size)
        codes, filled = self.codes.new_zeros(size, self.latent_dim), self.filled.new_zeros(size)
        codes[:keep], filled[:keep] = self.codes[:keep], self.filled[:keep]
        self.codes, self.filled = codes, filled  # assigning to a buffer name replaces the buffer

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        # A checkpoint's bank may be larger or smaller than this module's: adopt its size first.
        saved = state_dict.get(prefix + "codes")
        if isinstance(saved, Tensor) and saved.dim() == 2 and saved.shape[0] != self.codes.shape[0]:
            self._resize(saved.shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._num_filled = int(self.filled.sum())


def gather_codes(codes: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
    """All-gather codes (B, D) and ids (B,) from every rank: (N, D), (N,) with N the global count.

    A no-op outside an initialised ``torch.distributed`` group. Ranks may hold different B (a last,
    short batch): sizes are exchanged first and the padding is dropped.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return codes, ids
    if codes.dim() != 2:
        raise ValueError(f"codes must be (B, D), got {tuple(codes.shape)}")
    _check_pair(codes, ids, codes.shape[1])
    world = dist.get_world_size()
    codes, ids = codes.detach().contiguous(), ids.to(device=codes.device, dtype=torch.long).contiguous()
    local = torch.tensor([codes.shape[0]], device=codes.device)
    sizes = [torch.zeros_like(local) for _ in range(world)]
    dist.all_gather(sizes, local)
    counts = [int(size) for size in sizes]
    longest = max(counts)
    padded_codes, padded_ids = codes.new_zeros(longest, codes.shape[1]), ids.new_zeros(longest)
    padded_codes[: codes.shape[0]], padded_ids[: ids.shape[0]] = codes, ids
    all_codes = [torch.empty_like(padded_codes) for _ in range(world)]
    all_ids = [torch.empty_like(padded_ids) for _ in range(world)]
    dist.all_gather(all_codes, padded_codes)
    dist.all_gather(all_ids, padded_ids)
    return (
        torch.cat([c[:n] for c, n in zip(all_codes, counts, strict=True)]),
        torch.cat([i[:n] for i, n in zip(all_ids, counts, strict=True)]),
    )
