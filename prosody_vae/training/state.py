"""What a training run carries from one step to the next, how it is set up, and how it is saved.

:func:`setup_training` builds a :class:`TrainingState`, fresh or resumed from a checkpoint; the step
(:func:`prosody_vae.training.step.train_step`) and the loop (:func:`prosody_vae.training.loop.train`)
only read and advance it. Everything a resumed run needs to continue exactly is in
:meth:`TrainingState.checkpoint_state`: step, model and objective, both optimisers, the learning-rate
schedule, the global RNG, the position inside the epoch and the best validation score (the ACN code
bank is a buffer of the model, so it comes with the model).

Set-up order matters for exact resume and for a fresh run's reproducibility: the global RNG is seeded
first, then data, model and optimisers are built (model initialisation draws from it), and a
checkpoint's RNG state is restored last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader

from prosody_vae.checkpoint import CheckpointError, CheckpointManager, describe_load_error, load_checkpoint
from prosody_vae.config import ExperimentConfig, save_config
from prosody_vae.errors import ProsodyVAEError, one_line
from prosody_vae.prosody.capacity import CapacityObjective, MultiCapacityObjective
from prosody_vae.prosody.dual_optimizer import DualOptimizer
from prosody_vae.prosody.priors import AssociativePrior
from prosody_vae.training.acn import RefreshSchedule
from prosody_vae.training.data import TrainingData, build_training_data
from prosody_vae.training.distributed import DistributedContext, setup_distributed
from prosody_vae.training.folder import check_experiment_folder, clear_partial_writes, move_aside, trim_log
from prosody_vae.training.initialise import initialise_from
from prosody_vae.training.monitor import TrainingMonitor
from prosody_vae.training.objective import TrainingModule
from prosody_vae.training.optimizer import build_optimizer, build_scheduler
from prosody_vae.tts.model import ProsodyTTS, build_model

__all__ = ["TrainingError", "TrainingState", "epoch_loader", "setup_training"]


class TrainingError(ProsodyVAEError, RuntimeError):
    """Training cannot continue (e.g. too many non-finite losses); a checkpoint was written first."""


@dataclass(eq=False)
class TrainingState:
    """A training run between two steps. Built by :func:`setup_training`.

    ``module`` is what is optimised and checkpointed (model + capacity objective); ``network`` is
    what the step calls: ``module`` itself, or its ``DistributedDataParallel`` wrapper under
    ``torchrun``. ``step`` counts optimisation steps (one per accumulation window);
    ``batches_done`` counts micro-batches taken from the current ``epoch``.
    """

    config: ExperimentConfig
    context: DistributedContext
    data: TrainingData
    module: TrainingModule
    network: nn.Module
    optimizer: DualOptimizer
    scheduler: LambdaLR
    checkpoints: CheckpointManager
    monitor: TrainingMonitor
    refresh: RefreshSchedule | None = None  # the ACN code bank's refresh schedule; None otherwise
    step: int = 0
    epoch: int = 0
    batches_done: int = 0
    best_valid: float = math.inf  # lowest validation Lagrangian so far (selects best.pt)
    last_valid: dict[str, float] = field(default_factory=dict)
    skipped: int = 0  # updates discarded for non-finite gradients, this session
    last_checkpoint: Path | None = None

    @property
    def model(self) -> ProsodyTTS:
        return self.module.model

    @property
    def objective(self) -> CapacityObjective | MultiCapacityObjective:
        return self.module.objective

    @property
    def prior(self) -> AssociativePrior | None:
        """The associative prior whose code bank the step keeps up to date, or None."""
        return self.refresh.prior if self.refresh is not None else None

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything :func:`setup_training` needs to resume this run exactly, and the model's recipe
        (config, symbol table, speakers) for inference. Tensors and plain values only."""
        return {
            "step": self.step,
            "sampler": self.data.sampler.state_dict(consumed=self.batches_done),
            "best_valid": self.best_valid,
            "config": self.config.to_dict(),
            "tokenizer": self.data.tokenizer.config(),
            "speakers": list(self.data.speakers),
            "training_module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        }

    def save(self, *, is_best: bool = False) -> Path | None:
        """Write a checkpoint at the current step (atomically; rank 0 only, other ranks return None).

        Call it between optimisation steps: gradients of a half-finished accumulation window are not
        part of the state.
        """
        if not self.context.is_main:
            return None
        self.last_checkpoint = self.checkpoints.save(self.step, self.checkpoint_state(), is_best=is_best)
        return self.last_checkpoint

    def next_epoch(self) -> None:
        """Mark the end of the epoch: the next :func:`epoch_loader` starts a fresh shuffle."""
        self.epoch += 1
        self.batches_done = 0


def epoch_loader(state: TrainingState) -> DataLoader:
    """The training batches of ``state.epoch`` from ``state.batches_done`` on (a resumed run
    continues mid-epoch). Call :meth:`TrainingState.next_epoch` once it is exhausted."""
    state.data.sampler.set_epoch(state.epoch)
    return DataLoader(
        state.data.train_set,
        batch_sampler=state.data.sampler,
        collate_fn=state.data.collate,
        num_workers=state.config.data.num_workers,
        # The loader draws a worker seed per epoch; from its own generator, so that it does not shift
        # the global RNG that dropout uses (resume must replay the same random numbers).
        generator=torch.Generator().manual_seed(state.config.train.seed * 100003 + state.epoch),
    )


def setup_training(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    resume: bool | str | Path = False,
    force: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> TrainingState:
    """Build a run: data, model, objective, optimisers, schedule, monitor; restored from a checkpoint
    when ``resume`` is True (the latest in ``out_dir``; a fresh start when there is none) or a path.

    A new run (no ``resume``) needs an ``out_dir`` that holds no run (``checkpoints/``,
    ``tensorboard/``, ``log.jsonl``): else an :class:`~prosody_vae.training.folder.ExperimentExistsError`,
    unless ``force``, which moves the old run's files to ``<out_dir>.old-<N>/`` once the new run is
    set up (:mod:`prosody_vae.training.folder`).

    Also initialises the process group under ``torchrun``, seeds the global RNG (``train.seed`` plus
    the rank), removes the temporary files of a write that a kill interrupted, cuts ``log.jsonl``
    back to the resumed step and writes ``out_dir/config.yaml`` (rank 0).
    """
    out_dir = Path(out_dir)
    move_old_run = check_experiment_folder(out_dir, resume=bool(resume), force=force)
    context = setup_distributed(device)
    torch.manual_seed(config.train.seed + context.rank)
    if context.is_main and not move_old_run:
        clear_partial_writes(out_dir)
    checkpoints = CheckpointManager(out_dir / "checkpoints", keep_last=config.train.keep_last)
    resume_path = checkpoints.latest() if resume is True else (Path(resume) if resume else None)
    saved = load_checkpoint(resume_path, map_location=context.device) if resume_path is not None else None
    init_from = config.train.init_from
    start = load_checkpoint(init_from, map_location=context.device) if init_from and saved is None else None
    # A resumed (or initialised) run keeps the symbol table its weights were trained with.
    source = saved or start
    data = build_training_data(config, context, tokenizer_config=source["tokenizer"] if source else None)
    module = _build_module(config, data, context.device)
    if start is not None:
        fresh = initialise_from(module, start, init_from)
        if context.is_main:
            print(f"[train] weights from {init_from}; new parameters: {', '.join(fresh) or 'none'}")
    if data.voice_f0 is not None and module.model.voice_pitch is not None:
        # measured on this run's training split, after init_from (whose table may be another corpus's)
        module.model.voice_pitch.set_table(data.voice_f0)
    scaler = None
    if config.optim.amp == "fp16" and context.device.type == "cuda":
        scaler = torch.amp.GradScaler("cuda")
    optimizer = build_optimizer(module, config, grad_scaler=scaler)
    scheduler = build_scheduler(optimizer, config.optim)
    refresh = _code_bank_schedule(module.model, data, config)
    network = _distributed(module, context)
    position = _restore(saved, resume_path, module, optimizer, scheduler, data) if saved is not None else {}
    if context.is_main:
        if move_old_run:
            print(f"[train] --force: moved the run that was in {out_dir} to {move_aside(out_dir)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, out_dir / "config.yaml")
        dropped = trim_log(out_dir / "log.jsonl", position.get("step", 0))
        if dropped:
            print(f"[train] {out_dir / 'log.jsonl'}: dropped {dropped} record(s) after the resumed step")
    monitor = TrainingMonitor(
        out_dir, config, enabled=context.is_main, progress=progress, start_step=position.get("step", 0)
    )
    return TrainingState(
        config=config,
        context=context,
        data=data,
        module=module,
        network=network,
        optimizer=optimizer,
        scheduler=scheduler,
        checkpoints=checkpoints,
        monitor=monitor,
        refresh=refresh,
        last_checkpoint=checkpoints.latest(),
        **position,
    )


def _build_module(config: ExperimentConfig, data: TrainingData, device: torch.device) -> TrainingModule:
    """The model for this corpus's symbols and speakers, with the capacity objective and the weights
    of the auxiliary losses (``train`` section)."""
    tc = config.train
    model = build_model(config, n_symbols=data.tokenizer.vocab_size, n_speakers=len(data.speakers))
    model = model.to(device)
    cc = config.capacity
    objective: CapacityObjective | MultiCapacityObjective
    if config.prosody.hierarchical:  # C_s for z_s, C_p for z_p, one multiplier each
        objective = MultiCapacityObjective(
            {"high": cc.high_capacity, "low": cc.capacity}, beta_init=cc.beta_init
        )
    else:
        objective = CapacityObjective(cc.capacity, beta_init=cc.beta_init)
    objective = objective.to(device)
    return TrainingModule(
        model=model,
        objective=objective,
        stop_weight=tc.stop_weight,
        stop_pos_weight=tc.stop_pos_weight,
        guided_attention_weight=tc.guided_attention_weight,
        guided_attention_sigma=tc.guided_attention_sigma,
        pitch_scale=tc.pitch_scale,
        voice_adversary_weight=config.prosody.voice_adversary_weight,
        contour_weight=config.prosody.contour_weight,
    )


def _code_bank_schedule(
    model: ProsodyTTS, data: TrainingData, config: ExperimentConfig
) -> RefreshSchedule | None:
    """With the associative prior: the bank sized to the training set, and its refresh schedule."""
    if not model.uses_associative_prior:
        return None
    prior = model.prosody.prior
    if len(data.train_set) <= prior.k_neighbours:
        raise ValueError(
            f"the associative prior needs more than prosody.acn_neighbours={prior.k_neighbours} "
            f"training utterances, got {len(data.train_set)}"
        )
    prior.bank.reserve(len(data.train_set))  # full size before DDP registers the buffers
    return RefreshSchedule(prior, config.prosody.acn_refresh_every)


def _distributed(module: TrainingModule, context: DistributedContext) -> nn.Module:
    """``module`` wrapped in DDP under ``torchrun``, else ``module`` itself.

    DDP averages the gradients of theta and of beta_raw (the objective is part of ``module``), so
    every rank applies the same update. It also broadcasts rank 0's buffers before every forward
    (``broadcast_buffers``, the default), the ACN code bank included: a no-op in value, since every
    rank writes the same gathered codes, at the cost of N x D floats per step, small beside the
    gradients' all-reduce. Excluding the bank from that broadcast would need a private DDP API.
    ``find_unused_parameters=True``: a configuration whose forward leaves a parameter without a
    gradient still trains.
    """
    if not context.enabled:
        return module
    return DistributedDataParallel(module, find_unused_parameters=True)


def _restore(
    saved: dict[str, Any],
    path: Path,
    module: TrainingModule,
    optimizer: DualOptimizer,
    scheduler: LambdaLR,
    data: TrainingData,
) -> dict[str, Any]:
    """Load a checkpoint into the run's pieces; returns the position fields of :class:`TrainingState`.

    The sampler's state is checked against the data and batching of this run (a changed corpus,
    batch size or world size is refused there). Weights or optimiser state that do not fit the model
    this config builds (a changed shape) are a one-line :class:`CheckpointError` naming ``path``. The
    RNG state comes last: nothing after it draws before the first step.
    """
    try:
        module.load_state_dict(saved["training_module"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"{path}: cannot resume with this config, the checkpoint's model differs "
            f"({describe_load_error(error)}); resume with the config it was trained with, "
            "or start a new run"
        ) from None
    try:
        data.sampler.load_state_dict(saved["sampler"])
    except (ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: cannot resume on this data: {one_line(error)}") from None
    torch.set_rng_state(saved["rng"]["torch"])
    return {
        "step": saved["step"],
        "epoch": data.sampler.epoch,
        "batches_done": saved["sampler"]["position"],
        "best_valid": saved.get("best_valid", math.inf),
    }
