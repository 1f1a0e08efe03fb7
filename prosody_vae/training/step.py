"""One training step as a library function: ``train_step(state, batch) -> StepResult``.

The loop (:func:`prosody_vae.training.loop.train`) is this function called over the epochs, with
validation and checkpoints between updates; a user can drive it from a loop of their own::

    state = setup_training(config, "exp/mine")
    for batch in epoch_loader(state):
        result = train_step(state, batch)

One call takes one micro-batch through:

1. with the associative prior, a full code-bank refresh when the schedule says so, and each item's
   prior context (a neighbour's code; :mod:`prosody_vae.training.acn`);
2. the forward pass of the model and the capacity objective (:class:`TrainingModule`), with loss
   normalisers that are global means under DDP, so that the ranks' average is the single-process
   loss;
3. :meth:`DualOptimizer.step`: backward, and at the end of an accumulation window the updates of
   theta and beta (discarded when a gradient is not finite);
4. with the associative prior, the batch's posterior means written back to the bank;
5. after an update, the learning-rate schedule, the step counter and the log record (loss parts as
   means over ranks, checked to carry the same beta on every rank).
"""

from __future__ import annotations

import contextlib
import time
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

from prosody_vae.config import OptimConfig
from prosody_vae.data.dataset import Batch
from prosody_vae.prosody.dual_optimizer import StepInfo
from prosody_vae.training.acn import prior_context, refresh_code_bank, write_codes
from prosody_vae.training.distributed import DistributedContext, all_reduce_mean, pad_to_global_length
from prosody_vae.training.objective import LossParts
from prosody_vae.training.state import TrainingError, TrainingState
from prosody_vae.tts.model import ProsodyTTSOutput

__all__ = ["StepResult", "train_step"]


class StepResult(NamedTuple):
    """What one :func:`train_step` did."""

    stepped: bool  # theta and beta were updated and ``state.step`` advanced
    skipped_nonfinite: bool  # end of a window, but a gradient was inf/NaN: the update was discarded
    step: int  # ``state.step`` after this call
    losses: LossParts  # detached; after an update under DDP, means over ranks (what was logged)
    info: StepInfo  # the optimiser's report (gradient norm, micro-step)
    lr: float  # theta's learning rate for the next update


def train_step(state: TrainingState, batch: Batch) -> StepResult:
    """Train on one micro-batch of ``state``'s run; advances ``state`` (see the module docstring).

    Under DDP every rank must call it at the same time with its own share of the same step (it holds
    collectives). Logs through ``state.monitor``: the step record after an update, a warning after a
    discarded one (``state.skipped`` counts them; stopping is the caller's choice), and the code
    bank's refreshes.
    """
    context = state.context
    batch = pad_to_global_length(batch.to(context.device), context)
    codes = _prior_context(state, batch)
    state.module.train()
    started = time.perf_counter()
    parts, output = _forward(state, batch, codes)
    info = state.optimizer.step(parts.loss, parts.beta_loss)
    state.batches_done += 1
    if info.skipped_nonfinite:  # the optimiser discarded the update (inf/NaN gradients)
        state.skipped += 1
        state.monitor.warn(
            f"step {state.step}: non-finite loss or gradients, update skipped "
            f"({state.skipped}/{state.config.train.max_nonfinite}), batch {batch.ids}"
        )
        return _result(state, info, _detached(parts))
    extra = None
    if state.prior is not None:  # every micro-batch's codes, also inside an accumulation window
        write_codes(state.prior, output.prosody.mean, batch.indices)
        extra = {"bank_filled": state.prior.bank.num_filled / len(state.data.train_set)}
    if not info.stepped:  # inside a gradient-accumulation window
        return _result(state, info, _detached(parts))
    logged = _global_parts(parts, context)
    if state.model.hierarchical:  # the high-level set's rate and multiplier beside the low-level ones
        extra = {**(extra or {}), "kl_high": float(logged.kl_high), "beta_high": float(logged.beta_high)}
    if state.model.voice_adversary is not None:  # the voice classifier's loss on z: high = z hides the voice
        extra = {**(extra or {}), "voice_adversary": float(logged.voice_adversary)}
    if state.model.contour_head is not None:  # what z says of the F0 contour: low = z carries it
        extra = {**(extra or {}), "contour": float(logged.contour)}
    if state.model.utterance_length is not None:  # the length model's error: (log frames)^2
        extra = {**(extra or {}), "utterance_length": float(logged.utterance_length)}
    if state.model.spoken_length is not None:  # the text term read from the mel: (log frames)^2
        extra = {**(extra or {}), "spoken_length": float(logged.spoken_length)}
    state.scheduler.step()
    state.step += 1
    lr = state.scheduler.get_last_lr()[0]
    seconds = time.perf_counter() - started
    state.monitor.log_step(state.step, logged, info, lr=lr, seconds=seconds, extra=extra)
    return _result(state, info, logged)


def _result(state: TrainingState, info: StepInfo, losses: LossParts) -> StepResult:
    return StepResult(
        stepped=info.stepped,
        skipped_nonfinite=info.skipped_nonfinite,
        step=state.step,
        losses=losses,
        info=info,
        lr=state.scheduler.get_last_lr()[0],
    )


def _prior_context(state: TrainingState, batch: Batch) -> Tensor | None:
    """The associative prior's context (B, D) for the batch, refreshing the bank first when due;
    None with the standard prior.

    The bank is refreshed before the first step (it must serve a K-neighbour look-up) and then on
    ``prosody.acn_refresh_every``; the schedule's decision depends only on what a checkpoint
    restores, so a resumed run refreshes where an uninterrupted one does.
    """
    prior = state.prior
    if prior is None:
        return None
    if state.refresh.due(state.step, state.batches_done):
        batch_size = state.config.data.batch_size
        filled, seconds = refresh_code_bank(state.model, state.data, state.context, batch_size=batch_size)
        state.refresh.done(state.step)
        state.monitor.log_scalars(state.step, {"acn/refresh_seconds": seconds, "acn/bank_codes": filled})
        state.monitor.write(
            f"code bank refreshed before step {state.step + 1}: {filled} codes, {seconds:.1f} s"
        )
    return prior_context(prior, batch.indices)


def _forward(state: TrainingState, batch: Batch, codes: Tensor | None) -> tuple[LossParts, ProsodyTTSOutput]:
    """The teacher-forced pass of ``state.network`` over the batch, under autocast when configured.

    The loss normaliser (n_mels times the mean frames per item) and the mean decoder steps (for the
    guided attention loss) are means over the step's whole batch, all ranks together, so that
    padding a rank's share or splitting a batch over ranks does not reweight its items. Guided
    attention is on for the first ``train.guided_attention_until`` steps (always when that is <= 0).
    """
    context, tc = state.context, state.config.train
    lengths = torch.stack(
        [
            batch.mel_lengths.float().mean(),
            state.model.backbone.decoder_lengths(batch.mel_lengths).float().mean(),
        ]
    )
    mean_frames, mean_steps = all_reduce_mean(lengths, context).unbind()
    use_guided_attention = tc.guided_attention_until <= 0 or state.step < tc.guided_attention_until
    with _autocast(state.config.optim, context.device):
        return state.network(
            batch,
            use_guided_attention=use_guided_attention,
            normalizer=mean_frames * batch.mels.shape[-1],
            mean_decoder_steps=mean_steps if context.enabled else None,
            prior_context=codes,
        )


def _autocast(optim: OptimConfig, device: torch.device):
    """Mixed precision on CUDA (``optim.amp``: bf16 or fp16); full precision otherwise."""
    if optim.amp == "none" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if optim.amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _detached(parts: LossParts) -> LossParts:
    return LossParts(*(value.detach() for value in parts))


def _global_parts(parts: LossParts, context: DistributedContext) -> LossParts:
    """The logged loss parts as means over ranks (each rank saw only its share), detached.

    Also the place where the multiplier's synchronisation is enforced: DDP averages beta_raw's
    gradient, so every rank applies the same update and beta must be bitwise identical everywhere.
    """
    if not context.enabled:
        return _detached(parts)
    values = torch.stack([value.detach().float() for value in parts])  # (fields,)
    spread = torch.stack([parts.beta.detach().float(), -parts.beta.detach().float()])  # max, -min
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    if float(spread[0]) != -float(spread[1]):
        raise TrainingError(f"beta differs across ranks: {-float(spread[1])} .. {float(spread[0])}")
    return LossParts(*(values / context.world_size).unbind())
