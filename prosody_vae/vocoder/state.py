"""What a vocoder training run carries between steps, how it is set up, saved and resumed.

:func:`setup_vocoder_training` builds a :class:`VocoderState`, fresh or from a checkpoint; the step
(:func:`prosody_vae.vocoder.step.vocoder_step`) and the loop only read and advance it. A checkpoint
(:meth:`VocoderState.checkpoint_state`) holds everything needed to continue exactly: step, generator
and discriminators, both optimisers and schedules, the global RNG, the sampler's epoch and position,
the best validation score and the utterances already reported as skipped. It is a plain dict of
tensors and numbers, written atomically, that loads with ``torch.load(..., weights_only=True)``.

Set-up order matters for exact resume: the global RNG is seeded first, then the networks are built
(initialisation draws from it), and a checkpoint's RNG state is restored last.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader

from prosody_vae.audio import MelSpectrogram
from prosody_vae.audio.hifigan import HifiGanGenerator
from prosody_vae.checkpoint import CheckpointError, CheckpointManager, describe_load_error, load_checkpoint
from prosody_vae.data.manifest import Utterance
from prosody_vae.devices import resolve_device
from prosody_vae.training.folder import check_experiment_folder, clear_partial_writes, move_aside, trim_log
from prosody_vae.vocoder.config import VocoderConfig, save_vocoder_config
from prosody_vae.vocoder.data import SegmentDataset, build_vocoder_data, collate_segments
from prosody_vae.vocoder.discriminators import (
    Discriminators,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
)
from prosody_vae.vocoder.export import build_generator, exported_generators, load_generator_weights
from prosody_vae.vocoder.monitor import VocoderMonitor
from prosody_vae.vocoder.sampler import ShuffledBatches
from prosody_vae.vocoder.teacher_forced import cache_teacher_forced

__all__ = ["VocoderState", "epoch_loader", "setup_vocoder_training"]


@dataclass(eq=False)
class VocoderState:
    """A vocoder run between two steps. Built by :func:`setup_vocoder_training`."""

    config: VocoderConfig
    out_dir: Path
    device: torch.device
    generator: HifiGanGenerator
    discriminators: Discriminators
    optimizer_g: AdamW
    optimizer_d: AdamW
    scheduler_g: LambdaLR
    scheduler_d: LambdaLR
    loss_mel: MelSpectrogram  # the mel L1's front end (ours, with loss.mel_f_max as its top)
    train_set: SegmentDataset
    valid_set: SegmentDataset
    sampler: ShuffledBatches
    checkpoints: CheckpointManager
    monitor: VocoderMonitor
    step: int = 0
    epoch: int = 0
    batches_done: int = 0
    best_valid: float = math.inf  # lowest validation mel L1 so far (selects best.pt)
    last_valid: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # utterance id -> why, each reported once
    nonfinite: int = 0  # steps discarded for a non-finite loss, this session
    last_checkpoint: Path | None = None
    last_export: Path | None = None

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "sampler": self.sampler.state_dict(consumed=self.batches_done),
            "best_valid": self.best_valid,
            "skipped": dict(self.skipped),
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminators": self.discriminators.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "scheduler_g": self.scheduler_g.state_dict(),
            "scheduler_d": self.scheduler_d.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        }

    def save(self, *, is_best: bool = False) -> Path:
        """Checkpoint at the current step and export the generator beside it (both atomic)."""
        from prosody_vae.vocoder.export import export_generator

        self.last_checkpoint = self.checkpoints.save(self.step, self.checkpoint_state(), is_best=is_best)
        keep = self.config.train.keep_last
        self.last_export = export_generator(
            self.generator, self.config, self.out_dir, self.step, keep_last=keep
        )
        return self.last_checkpoint

    def next_epoch(self) -> None:
        self.epoch += 1
        self.batches_done = 0


def epoch_loader(state: VocoderState) -> DataLoader:
    """The training batches of ``state.epoch`` from ``state.batches_done`` on."""
    state.sampler.set_epoch(state.epoch)
    return DataLoader(
        state.train_set,
        batch_sampler=state.sampler,
        collate_fn=collate_segments,
        num_workers=state.config.data.num_workers,
        generator=torch.Generator().manual_seed(state.config.train.seed),  # not the global RNG
    )


def _teacher_forced(
    config: VocoderConfig, out_dir: Path, device: torch.device, progress: bool
) -> Callable[[list[Utterance]], Path]:
    """The callback that caches the acoustic model's teacher-forced mels into ``out_dir``."""
    dc = config.data

    def cache(utterances: list[Utterance]) -> Path:
        folder = out_dir / "teacher_forced"
        report = cache_teacher_forced(
            dc.teacher_forced_from,
            utterances,
            Path(dc.root) / "features",
            folder,
            config.audio,
            batch_size=dc.teacher_forced_batch_size,
            device=device,
            progress=progress,
        )
        print(
            f"[train-vocoder] teacher-forced mels from {dc.teacher_forced_from}: {len(report.written)} "
            f"computed, {len(report.cached)} cached, {len(report.skipped)} skipped"
        )
        return folder

    return cache


def _networks(config: VocoderConfig, device: torch.device) -> tuple[HifiGanGenerator, Discriminators]:
    dc = config.discriminator
    discriminators = Discriminators(
        MultiPeriodDiscriminator(periods=dc.periods, channels=dc.period_channels),
        MultiScaleDiscriminator(scales=dc.scales, channels=dc.scale_channels, groups=dc.scale_groups),
    )
    return build_generator(config).to(device), discriminators.to(device)


def _loss_mel(config: VocoderConfig, device: torch.device) -> MelSpectrogram:
    """Our front end with the loss's filterbank top: ``loss.mel_f_max``, else Nyquist (the release's)."""
    top = config.loss.mel_f_max if config.loss.mel_f_max is not None else config.audio.sample_rate / 2
    return MelSpectrogram(replace(config.audio, f_max=top)).to(device)


def _move_old_run(out_dir: Path) -> None:
    """``--force``: the old run's files, its exported generators and their config.json go aside."""
    aside = move_aside(out_dir)
    for path in [*exported_generators(out_dir), out_dir / "config.json"]:
        if path.exists():
            path.rename(aside / path.name)
    print(f"[train-vocoder] --force: moved the run that was in {out_dir} to {aside}")


def setup_vocoder_training(
    config: VocoderConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> VocoderState:
    """Build a run fresh, or from the latest checkpoint in ``out_dir`` with ``resume`` (a fresh start
    when there is none). A new run needs a folder without a run, unless ``force``: once the new run
    is set up, the old one (``checkpoints/``, ``tensorboard/``, ``log.jsonl``, ``config.yaml``, the
    exported generators and their ``config.json``) is moved to ``<out_dir>.old-<N>/``. A teacher-forced
    cache in ``out_dir`` stays: it is rebuilt only for another acoustic checkpoint."""
    out_dir = Path(out_dir)
    move_old = check_experiment_folder(out_dir, resume=resume, force=force)
    if not move_old:
        clear_partial_writes(out_dir)
    dev = resolve_device(device)
    tc, dc = config.train, config.data
    torch.manual_seed(tc.seed)  # before the networks are built: their initialisation draws from it
    checkpoints = CheckpointManager(out_dir / "checkpoints", keep_last=tc.keep_last)
    resume_path = checkpoints.latest() if resume else None
    saved = load_checkpoint(resume_path) if resume_path is not None else None
    generator, discriminators = _networks(config, dev)
    data = build_vocoder_data(
        Path(dc.root),
        config.audio,
        train_split=dc.train_split,
        valid_split=dc.valid_split,
        segment_size=dc.segment_size,
        valid_items=tc.valid_items,
        seed=tc.seed,
        teacher_forced=_teacher_forced(config, out_dir, dev, progress) if dc.teacher_forced_from else None,
    )
    sampler = ShuffledBatches(len(data.train_set), dc.batch_size, seed=tc.seed)
    if tc.init_from and saved is None:
        load_generator_weights(generator, tc.init_from, config)
        print(f"[train-vocoder] generator weights from {tc.init_from}")
    oc = config.optim
    optimizers = tuple(
        AdamW(net.parameters(), oc.lr, betas=oc.adam_betas, weight_decay=oc.weight_decay)
        for net in (generator, discriminators)
    )
    schedulers = tuple(
        LambdaLR(opt, lambda step: oc.lr_decay ** (step // oc.lr_decay_every)) for opt in optimizers
    )
    position: dict[str, Any] = {}
    if saved is not None:
        position = _restore(saved, resume_path, generator, discriminators, optimizers, schedulers, sampler)
    if move_old:
        _move_old_run(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_vocoder_config(config, out_dir / "config.yaml")
    start = position.get("step", 0)
    dropped = trim_log(out_dir / "log.jsonl", start)
    if dropped:
        print(f"[train-vocoder] {out_dir / 'log.jsonl'}: dropped {dropped} record(s) after the resumed step")
    monitor = VocoderMonitor(
        out_dir, log_every=tc.log_every, total_steps=tc.steps, start_step=start, progress=progress
    )
    state = VocoderState(
        config=config,
        out_dir=out_dir,
        device=dev,
        generator=generator,
        discriminators=discriminators,
        optimizer_g=optimizers[0],
        optimizer_d=optimizers[1],
        scheduler_g=schedulers[0],
        scheduler_d=schedulers[1],
        loss_mel=_loss_mel(config, dev),
        train_set=data.train_set,
        valid_set=data.valid_set,
        sampler=sampler,
        checkpoints=checkpoints,
        monitor=monitor,
        last_checkpoint=checkpoints.latest(),
        last_export=next(reversed(exported_generators(out_dir)), None),
        **position,
    )
    for item in data.too_short:
        if item.id not in state.skipped:
            state.skipped[item.id] = item.reason
            monitor.log_skipped(state.step, item.id, item.reason)
    return state


def _restore(
    saved: dict[str, Any],
    path: Path,
    generator: HifiGanGenerator,
    discriminators: Discriminators,
    optimizers: tuple[AdamW, AdamW],
    schedulers: tuple[LambdaLR, LambdaLR],
    sampler: ShuffledBatches,
) -> dict[str, Any]:
    """Load a checkpoint into the run's pieces; returns the position fields of :class:`VocoderState`.
    The RNG state comes last: nothing after it draws before the first step."""
    try:
        generator.load_state_dict(saved["generator"])
        discriminators.load_state_dict(saved["discriminators"])
        optimizers[0].load_state_dict(saved["optimizer_g"])
        optimizers[1].load_state_dict(saved["optimizer_d"])
        schedulers[0].load_state_dict(saved["scheduler_g"])
        schedulers[1].load_state_dict(saved["scheduler_d"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"{path}: cannot resume with this config, the checkpoint's networks differ "
            f"({describe_load_error(error)}); resume with the config it was trained with, or start a new run"
        ) from None
    try:
        sampler.load_state_dict(saved["sampler"])
    except (ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: cannot resume on this data: {error}") from None
    torch.set_rng_state(saved["rng"]["torch"])
    return {
        "step": saved["step"],
        "epoch": sampler.epoch,
        "batches_done": saved["sampler"]["position"],
        "best_valid": saved.get("best_valid", math.inf),
        "skipped": dict(saved.get("skipped", {})),
    }
