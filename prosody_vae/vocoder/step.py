"""One vocoder training step: ``vocoder_step(state, batch) -> VocoderStepResult``.

As in the paper and the release, one step on a batch of segments is

1. the generator renders the segments' mels: ``G(s)`` (B, N);
2. the discriminators' update on real audio and the detached ``G(s)`` (LSGAN, eq. 1);
3. the generator's update: mel L1 against the real segment's mel, and the updated discriminators'
   scores and feature maps of ``G(s)`` (eq. 6); the real audio's feature maps are computed without
   gradients (they are targets).

Before ``train.discriminator_start`` (0 in the paper) the discriminators are neither run nor updated
and the generator learns from the mel L1 alone. A non-finite discriminator loss skips the whole
step; a non-finite generator loss skips the generator's update (the discriminators' has been taken).
Either is counted, the step counter does not advance, and the loop stops after
``train.max_nonfinite`` of them.
Learning rates decay by ``optim.lr_decay`` every ``optim.lr_decay_every`` steps (the paper: every
epoch; steps make the schedule independent of the corpus size).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import torch
from torch import Tensor

from prosody_vae.vocoder.data import SegmentBatch
from prosody_vae.vocoder.losses import DiscriminatorLoss, GeneratorLoss, discriminator_loss, generator_loss
from prosody_vae.vocoder.state import VocoderState

__all__ = ["VocoderStepResult", "vocoder_step"]


class VocoderStepResult(NamedTuple):
    stepped: bool  # the networks were updated and ``state.step`` advanced
    nonfinite: bool  # the loss was NaN or infinite: nothing was updated
    generator: GeneratorLoss | None  # detached parts; None when the batch had no usable item
    discriminator: DiscriminatorLoss | None  # None before train.discriminator_start


def _finite(*values: Tensor) -> bool:
    return all(bool(torch.isfinite(value)) for value in values)


def vocoder_step(state: VocoderState, batch: SegmentBatch) -> VocoderStepResult:
    """Train on one batch of segments (see the module docstring); advances ``state``."""
    start = time.perf_counter()
    state.batches_done += 1
    if len(batch) == 0:  # every sampled item was skipped: no update, the batch still counts as seen
        return VocoderStepResult(False, False, None, None)
    batch = batch.to(state.device)
    adversarial = state.step >= state.config.train.discriminator_start
    generator, discriminators = state.generator, state.discriminators
    generator.train()
    discriminators.train()
    fake = generator(batch.mels)  # (B, N)

    d_loss = None
    if adversarial:
        state.optimizer_d.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(discriminators(batch.audio), discriminators(fake.detach()))
        if not _finite(d_loss.loss):
            return _discard(state)
        d_loss.loss.backward()
        state.optimizer_d.step()

    state.optimizer_g.zero_grad(set_to_none=True)
    real_mel = state.loss_mel(batch.audio)  # (B, T, n_mels), no gradient needed
    fake_mel = state.loss_mel(fake)
    real_out = fake_out = None
    if adversarial:
        with torch.no_grad():
            real_out = discriminators(batch.audio)
        fake_out = discriminators(fake)
    lc = state.config.loss
    g_loss = generator_loss(
        real_mel, fake_mel, real_out, fake_out, mel_weight=lc.mel_weight, feature_weight=lc.feature_weight
    )
    if not _finite(g_loss.loss):
        return _discard(state)
    g_loss.loss.backward()
    state.optimizer_g.step()
    state.optimizer_d.zero_grad(set_to_none=True)  # the generator's backward reached the discriminators
    state.scheduler_g.step()
    state.scheduler_d.step()
    state.step += 1

    g_parts = GeneratorLoss(*(part.detach() for part in g_loss))
    d_parts = DiscriminatorLoss(*(part.detach() for part in d_loss)) if d_loss is not None else None
    state.monitor.log_step(
        state.step,
        {
            "generator": float(g_parts.loss),
            "adversarial": float(g_parts.adversarial),
            "feature_matching": float(g_parts.feature_matching),
            "mel_l1": float(g_parts.mel_l1),
            "discriminator": float(d_parts.loss) if d_parts is not None else 0.0,
            "lr": state.scheduler_g.get_last_lr()[0],
            "items": float(len(batch)),
            "seconds": time.perf_counter() - start,
        },
    )
    return VocoderStepResult(True, False, g_parts, d_parts)


def _discard(state: VocoderState) -> VocoderStepResult:
    """A non-finite loss: drop its gradients unapplied and count it."""
    state.optimizer_g.zero_grad(set_to_none=True)
    state.optimizer_d.zero_grad(set_to_none=True)
    state.nonfinite += 1
    state.monitor.warn(f"non-finite loss at step {state.step + 1}: update skipped ({state.nonfinite} so far)")
    return VocoderStepResult(False, True, None, None)
