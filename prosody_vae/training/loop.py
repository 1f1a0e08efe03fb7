"""The training loop: data, model, dual optimiser, checkpoints, validation and logging.

``train(config, out_dir)`` runs on one process or under ``torchrun`` (one process per rank). Work is
never lost: checkpoints are written atomically every ``checkpoint_every`` steps and when SIGINT or
SIGTERM arrives, and ``resume=True`` continues from the latest one exactly (step, model, both
optimisers, beta, learning-rate schedule, RNG, the position inside the epoch and, with the associative
prior, its code bank, which lives in the model's buffers).

With ``prosody.prior: associative`` the loop also runs the code bank (:mod:`prosody_vae.training.acn`):
a full refresh before the first step and on the configured schedule, a neighbour's code as each
item's prior context, and the batch's posterior means written back after every update.

Under DDP (``torchrun``) each step's global batch is ``data.batch_size * world_size`` items dealt
out by :class:`~prosody_vae.training.data.RankSlices`; gradients (of theta and of beta) are averaged,
the loss normaliser and the logged losses are global means, and beta is checked to be identical on
every rank at every step.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from prosody_vae.checkpoint import CheckpointManager, load_checkpoint
from prosody_vae.config import ExperimentConfig, save_config
from prosody_vae.prosody.capacity import CapacityObjective
from prosody_vae.prosody.dual_optimizer import DualOptimizer, main_parameters
from prosody_vae.training.acn import RefreshSchedule, prior_context, refresh_code_bank, write_codes
from prosody_vae.training.data import build_training_data
from prosody_vae.training.distributed import (
    DistributedContext,
    all_reduce_mean,
    pad_to_global_length,
    setup_distributed,
)
from prosody_vae.training.monitor import TrainingMonitor
from prosody_vae.training.objective import LossParts, TrainingModule
from prosody_vae.training.validation import validate
from prosody_vae.tts.model import build_model

__all__ = ["TrainingError", "TrainResult", "train"]


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. too many non-finite losses); a checkpoint was written first."""


@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None
    interrupted: bool
    skipped_steps: int
    last_valid: dict[str, float]


def _lr_lambda(config: ExperimentConfig):
    oc = config.optim

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, oc.warmup_steps))
        decay = 1.0
        if step > oc.decay_start:
            decay = oc.decay_rate ** ((step - oc.decay_start) / oc.decay_steps)
        return max(warm * decay, oc.lr_min / oc.lr)

    return factor


def _build_optimizer(module: TrainingModule, config: ExperimentConfig, scaler) -> DualOptimizer:
    oc, cc = config.optim, config.capacity
    lagrange = module.objective.lagrange_parameters()
    main = main_parameters(module, lagrange)

    def beta_factory(params):
        if cc.beta_optimizer == "adam":
            return torch.optim.Adam(params, lr=cc.beta_lr)
        return torch.optim.SGD(params, lr=cc.beta_lr, momentum=cc.beta_momentum)

    return DualOptimizer(
        main_parameters=main,
        lagrange_parameters=lagrange,
        main_optimizer_factory=lambda params: torch.optim.Adam(
            params, lr=oc.lr, betas=tuple(oc.adam_betas), eps=oc.adam_eps, weight_decay=oc.weight_decay
        ),
        beta_optimizer_factory=beta_factory,
        max_grad_norm=oc.max_grad_norm,
        grad_scaler=scaler,
        accumulation_steps=oc.accumulation_steps,
    )


def _autocast(config: ExperimentConfig, device: torch.device):
    if config.optim.amp == "none" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if config.optim.amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _global_parts(parts: LossParts, context: DistributedContext) -> LossParts:
    """The logged loss parts as means over ranks (rank 0 alone saw half the batch), detached.

    Also the place where the multiplier's synchronisation is enforced: DDP averages beta_raw's
    gradient, so every rank applies the same update and beta must be bitwise identical everywhere.
    """
    if not context.enabled:
        return parts
    values = torch.stack([value.detach().float() for value in parts])  # (fields,)
    spread = torch.stack([parts.beta.detach().float(), -parts.beta.detach().float()])  # max, -min
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    if float(spread[0]) != -float(spread[1]):
        raise TrainingError(f"beta differs across ranks: {-float(spread[1])} .. {float(spread[0])}")
    return LossParts(*(values / context.world_size).unbind())


class _StopRequested:
    """SIGINT/SIGTERM set a flag; the loop checkpoints and returns at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopRequested:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread: leave handlers alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    resume: bool | str | Path = False,
    device: str | None = None,
    max_steps: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train (or continue training) a ProsodyTTS model; returns where it stopped.

    Args:
        config: the experiment; saved beside the checkpoints and inside each of them.
        out_dir: experiment folder (``checkpoints/``, ``tensorboard/``, ``log.jsonl``, ``config.yaml``).
        resume: True to continue from the latest checkpoint in ``out_dir`` (fresh start when there is
            none), or a checkpoint path.
        device: "cpu", "cuda" or None (CUDA when available).
        max_steps: stop after this global step even if ``config.train.steps`` is larger (the schedule
            still follows ``config.train.steps``); useful to train in several sessions.
    """
    out_dir = Path(out_dir)
    context = setup_distributed(device)
    tc = config.train
    torch.manual_seed(tc.seed + context.rank)
    manager = CheckpointManager(out_dir / "checkpoints", keep_last=tc.keep_last)
    resume_path = manager.latest() if resume is True else (Path(resume) if resume else None)
    state = load_checkpoint(resume_path, map_location=context.device) if resume_path is not None else None
    # A resumed run keeps the symbol table it was trained with, whatever the installed version's default.
    data = build_training_data(config, context, tokenizer_config=state["tokenizer"] if state else None)
    model = build_model(config, n_symbols=data.tokenizer.vocab_size, n_speakers=len(data.speakers)).to(
        context.device
    )
    objective = CapacityObjective(config.capacity.capacity, beta_init=config.capacity.beta_init).to(
        context.device
    )
    module = TrainingModule(
        model=model,
        objective=objective,
        stop_weight=tc.stop_weight,
        stop_pos_weight=tc.stop_pos_weight,
        guided_attention_weight=tc.guided_attention_weight,
        guided_attention_sigma=tc.guided_attention_sigma,
    )
    scaler = None
    if config.optim.amp == "fp16" and context.device.type == "cuda":
        scaler = torch.amp.GradScaler("cuda")
    optimizer = _build_optimizer(module, config, scaler)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer.main, _lr_lambda(config))
    prior = model.prosody.prior if model.uses_associative_prior else None
    schedule = None
    if prior is not None:
        if len(data.train_set) <= prior.k_neighbours:
            raise ValueError(
                f"the associative prior needs more than prosody.acn_neighbours={prior.k_neighbours} "
                f"training utterances, got {len(data.train_set)}"
            )
        prior.bank.reserve(len(data.train_set))  # full size before DDP registers the buffers
        schedule = RefreshSchedule(prior, config.prosody.acn_refresh_every)
    if context.enabled:
        if prior is not None:
            # Every rank writes the same gathered codes: broadcasting the bank from rank 0 at every
            # forward (DDP's default for buffers) would only cost bandwidth.
            bank = {id(prior.bank.codes), id(prior.bank.filled)}
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                module, [name for name, buffer in module.named_buffers() if id(buffer) in bank]
            )
        wrapped = DistributedDataParallel(module, find_unused_parameters=True)
    else:
        wrapped = module

    step, epoch, batches_done, best_valid = 0, 0, 0, math.inf
    if state is not None:
        module.load_state_dict(state["training_module"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        data.sampler.load_state_dict(state["sampler"])  # checks that data and batching match the saved run
        step, epoch, batches_done = state["step"], data.sampler.epoch, state["sampler"]["position"]
        best_valid = state.get("best_valid", math.inf)
    if context.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, out_dir / "config.yaml")
    monitor = TrainingMonitor(out_dir, config, enabled=context.is_main, progress=progress, start_step=step)

    def checkpoint_state() -> dict:
        return {
            "step": step,
            "sampler": data.sampler.state_dict(consumed=batches_done),
            "best_valid": best_valid,
            "config": config.to_dict(),
            "tokenizer": data.tokenizer.config(),
            "speakers": list(data.speakers),
            "training_module": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        }

    last_path: Path | None = manager.latest()
    last_valid: dict[str, float] = {}
    skipped = 0
    final_step = min(tc.steps, max_steps) if max_steps is not None else tc.steps
    interrupted = False
    with _StopRequested() as stop:
        while step < final_step and not stop.requested:
            data.sampler.set_epoch(epoch)
            loader = DataLoader(
                data.train_set,
                batch_sampler=data.sampler,
                collate_fn=data.collate,
                num_workers=config.data.num_workers,
                # The loader draws a worker seed per epoch; from its own generator, so that it does not
                # shift the global RNG that dropout uses (resume must replay the same random numbers).
                generator=torch.Generator().manual_seed(tc.seed * 100003 + epoch),
            )
            for batch in loader:
                batch = pad_to_global_length(batch.to(context.device), context)
                context_codes = None
                if prior is not None:
                    if schedule.due(step, batches_done):
                        filled, seconds = refresh_code_bank(
                            model, data, context, batch_size=config.data.batch_size
                        )
                        schedule.done(step)
                        monitor.log_scalars(step, {"acn/refresh_seconds": seconds, "acn/bank_codes": filled})
                        monitor.write(
                            f"code bank refreshed before step {step + 1}: {filled} codes, {seconds:.1f} s"
                        )
                    context_codes = prior_context(prior, batch.indices)
                module.train()
                started = time.perf_counter()
                # Global means over the step's whole batch (this rank's own under one process).
                mean_frames, mean_steps = all_reduce_mean(
                    torch.stack(
                        [
                            batch.mel_lengths.float().mean(),
                            model.backbone.decoder_lengths(batch.mel_lengths).float().mean(),
                        ]
                    ),
                    context,
                ).unbind()
                normalizer = mean_frames * batch.mels.shape[-1]
                use_ga = tc.guided_attention_until <= 0 or step < tc.guided_attention_until
                with _autocast(config, context.device):
                    parts, output = wrapped(
                        batch,
                        use_guided_attention=use_ga,
                        normalizer=normalizer,
                        mean_decoder_steps=mean_steps if context.enabled else None,
                        prior_context=context_codes,
                    )
                info = optimizer.step(parts.loss, parts.beta_loss)
                batches_done += 1
                if info.skipped_nonfinite:  # the optimiser discarded the update (inf/NaN gradients)
                    skipped += 1
                    monitor.warn(
                        f"step {step}: non-finite loss or gradients, update skipped "
                        f"({skipped}/{tc.max_nonfinite}), batch {batch.ids}"
                    )
                    if skipped >= tc.max_nonfinite:
                        if context.is_main:
                            last_path = manager.save(step, checkpoint_state())
                        raise TrainingError(
                            f"{skipped} non-finite updates: training stopped at step {step}; last checkpoint {last_path}"
                        )
                    continue
                extra = None
                if prior is not None:  # every micro-batch's codes, also inside an accumulation window
                    write_codes(prior, output.prosody.mean, batch.indices)
                    extra = {"bank_filled": prior.bank.num_filled / len(data.train_set)}
                if not info.stepped:  # inside a gradient-accumulation window
                    continue
                logged = _global_parts(parts, context)
                scheduler.step()
                step += 1
                monitor.log_step(
                    step,
                    logged,
                    info,
                    lr=scheduler.get_last_lr()[0],
                    seconds=time.perf_counter() - started,
                    extra=extra,
                )
                if step % tc.valid_every == 0 or step == final_step:
                    # Validation draws random numbers (prenet dropout at inference); forking the RNG
                    # keeps the training trajectory independent of when validation runs, so a run
                    # resumed from any checkpoint continues exactly.
                    devices = [context.device] if context.device.type == "cuda" else []
                    with torch.random.fork_rng(devices=devices):
                        last_valid = validate(module, data, config, context, monitor, step)
                    is_best = last_valid.get("valid/lagrangian", math.inf) < best_valid
                    best_valid = min(best_valid, last_valid.get("valid/lagrangian", math.inf))
                    if context.is_main:
                        last_path = manager.save(step, checkpoint_state(), is_best=is_best)
                elif step % tc.checkpoint_every == 0 and context.is_main:
                    last_path = manager.save(step, checkpoint_state())
                if step >= final_step or stop.requested:
                    break
            else:
                epoch += 1
                batches_done = 0
        if stop.requested:
            interrupted = True
            if context.is_main:
                last_path = manager.save(step, checkpoint_state())
                monitor.warn(f"interrupted: checkpoint written at step {step} ({last_path})")
    if context.is_main and (last_path is None or manager.latest() is None or not last_path.exists()):
        last_path = manager.save(step, checkpoint_state())
    monitor.close()
    return TrainResult(
        step=step, checkpoint=last_path, interrupted=interrupted, skipped_steps=skipped, last_valid=last_valid
    )
