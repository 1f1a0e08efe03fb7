"""Distributed set-up for ``torchrun``: NCCL on CUDA, gloo on CPU; a no-op for one process."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist
import torch.nn.functional as F

from prosody_vae.data.dataset import Batch
from prosody_vae.devices import resolve_device

__all__ = [
    "DistributedContext",
    "all_reduce_mean",
    "pad_to_global_length",
    "setup_distributed",
    "teardown_distributed",
]


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistributedContext:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and initialise the process group.

    ``device`` is "cpu", "cuda" or None (CUDA when available). With one process nothing is initialised.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(device).type == "cuda"  # an unknown name or a missing GPU: ValueError
    if use_cuda:
        torch.cuda.set_device(local_rank)
        resolved = torch.device("cuda", local_rank)
    else:
        resolved = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, device=resolved)


def teardown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Mean of a tensor over ranks (the tensor itself when not distributed)."""
    if not context.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / context.world_size


def pad_to_global_length(batch: Batch, context: DistributedContext) -> Batch:
    """Pad this rank's share of a step to the frames and tokens of the longest share on any rank.

    The stop-token loss supervises padded frames too (target 1, a mean over B * T), so its value and
    gradient depend on how far a batch is padded: a rank padded to its own longest item would weight
    its stop frames differently from one process padding the whole global batch. With every share
    padded to the global maximum, the mean of the ranks' losses is the single-process loss. Everything
    else is padding-invariant (masked), so the extra zeros change nothing but the compute.
    """
    if not context.enabled:
        return batch
    sizes = torch.tensor([batch.mels.shape[1], batch.tokens.shape[1]], device=batch.mels.device)
    dist.all_reduce(sizes, op=dist.ReduceOp.MAX)
    frames, tokens = int(sizes[0]) - batch.mels.shape[1], int(sizes[1]) - batch.tokens.shape[1]
    if frames == 0 and tokens == 0:
        return batch
    # (B, T, n_mels): pad T; (B, L): pad L. Zero is the padding value of both (pad token id 0).
    f0 = None if batch.f0 is None else F.pad(batch.f0, (0, frames))  # (B, T): 0 is unvoiced
    return replace(
        batch, mels=F.pad(batch.mels, (0, 0, 0, frames)), tokens=F.pad(batch.tokens, (0, tokens)), f0=f0
    )
