"""Training with the associative (ACN) prior: the code bank's refreshes, per-step writes and contexts.

Per step (see :func:`prior_context` and :func:`write_codes`): the prior context of each item is the
code of a random one of its K nearest neighbours in the bank, never the item itself; after the
update, the batch's posterior means (detached, gathered from every rank) overwrite the items' rows.

Full refreshes (:func:`refresh_code_bank`, on the schedule of :class:`RefreshSchedule`): a pass over
the training set in eval mode rewrites every row with the current posterior means, so codes of items
not visited for a while do not go stale. ``prosody.acn_refresh_every: 0`` (the default) refreshes at
the start of each epoch, N > 0 every N steps.

The first step is well defined because the bank is filled before it: the schedule refreshes
whenever the bank cannot serve a K-neighbour look-up, which includes the start of training. We prefer
this to a fallback on N(0, I) until the bank is ready: every step then optimises the same
objective, KL(q(z|x) || p(z|c)), so beta never has to re-adapt to a change of prior mid-run, and the
cost is one pass of the prosody encoder over the training set (a fraction of a training step per
item). The codes of an untrained encoder are nearly random, but so is everything else at step 0.

Where we deviate from ACN: the query for the K-NN look-up is the item's stored code (written at its
last visit or refresh), not the posterior mean of the current pass, so the context is known before
the forward pass and a step costs one pass, not two; with per-step writes and epoch refreshes the
stored code is at most an epoch old.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, Subset

from prosody_vae.prosody.priors import AssociativePrior, gather_codes
from prosody_vae.training.data import TrainingData
from prosody_vae.training.distributed import DistributedContext
from prosody_vae.tts.model import ProsodyTTS

__all__ = ["RefreshSchedule", "prior_context", "refresh_code_bank", "write_codes"]


class RefreshSchedule:
    """When the loop refreshes the whole bank: each epoch (``every == 0``) or every ``every`` steps.

    Always also when the bank cannot serve a look-up (the start of training). At most one refresh per
    optimisation step (gradient accumulation calls :meth:`due` once per micro-batch). The decision
    depends only on (step, position in the epoch, bank fill), all of which a checkpoint restores, so a
    resumed run refreshes exactly where an uninterrupted one does.
    """

    def __init__(self, prior: AssociativePrior, every: int) -> None:
        self.prior = prior
        self.every = every
        self._last_step: int | None = None

    def due(self, step: int, batches_done: int) -> bool:
        if self._last_step == step:
            return False
        epoch_start = self.every == 0 and batches_done == 0
        return epoch_start or self.prior.needs_refresh(step)

    def done(self, step: int) -> None:
        self._last_step = step


@torch.no_grad()
def refresh_code_bank(
    model: ProsodyTTS, data: TrainingData, context: DistributedContext, *, batch_size: int
) -> tuple[int, float]:
    """Rewrite the whole bank with posterior means of the training set; returns (codes, seconds).

    Each rank encodes every ``world_size``-th item (in length order, to keep padding small) in eval
    mode; the codes are gathered so every rank holds the same bank. Draws no random numbers: eval-mode
    posterior means are deterministic (the RNG is forked anyway, so that a future random layer in the
    encoder cannot shift the training trajectory).
    """
    prior = model.prosody.prior
    assert isinstance(prior, AssociativePrior), "refresh_code_bank needs a model with the ACN prior"
    started = time.perf_counter()
    order = sorted(range(len(data.train_set)), key=data.train_frames.__getitem__)
    loader = DataLoader(
        Subset(data.train_set, order[context.rank :: context.world_size]),
        batch_size=batch_size,
        collate_fn=data.collate,
    )
    was_training = model.training
    model.eval()
    codes, ids = [], []
    devices = [context.device] if context.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        for batch in loader:
            batch = batch.to(context.device)
            codes.append(
                model.posterior_means(
                    batch.mels,
                    batch.mel_lengths,
                    tokens=batch.tokens,
                    token_lengths=batch.token_lengths,
                    speakers=batch.speakers if model.speaker_embedding is not None else None,
                    f0=batch.f0,
                )
            )
            ids.append(batch.indices)
    model.train(was_training)
    local_codes = torch.cat(codes) if codes else prior.bank.codes.new_zeros(0, prior.latent_dim)
    local_ids = torch.cat(ids) if ids else torch.zeros(0, dtype=torch.long, device=context.device)
    all_codes, all_ids = gather_codes(local_codes, local_ids)
    finite = torch.isfinite(all_codes).all(dim=-1)  # a diverged item must not poison every look-up
    prior.refresh(all_codes[finite], all_ids[finite])
    return prior.bank.num_filled, time.perf_counter() - started


def prior_context(prior: AssociativePrior, indices: torch.Tensor) -> torch.Tensor:
    """Prior context (B, D) for training items ``indices`` (B,): a random one of each item's K
    nearest stored codes, never the item's own row (see :meth:`AssociativePrior.training_context`)."""
    return prior.training_context(indices)


def write_codes(prior: AssociativePrior, means: torch.Tensor, indices: torch.Tensor) -> None:
    """Store the batch's posterior means (B, D) at rows ``indices`` (B,), gathered from every rank.

    Collective under DDP: every rank must call it at the same step. Non-finite codes are dropped.
    """
    codes, ids = gather_codes(means.detach(), indices)
    finite = torch.isfinite(codes).all(dim=-1)
    prior.update_bank(codes[finite], ids[finite])
