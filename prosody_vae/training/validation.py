"""Validation: teacher-forced losses, alignment diagnostics, and one free-running example to look at."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from prosody_vae.config import ExperimentConfig
from prosody_vae.plots import plot_alignment, plot_mels
from prosody_vae.prosody.bounds import active_units
from prosody_vae.training.distributed import DistributedContext, all_reduce_mean
from prosody_vae.training.monitor import TrainingMonitor
from prosody_vae.training.objective import TrainingModule
from prosody_vae.tts.attention_metrics import diagonality

__all__ = ["validate"]

# Enough utterances for a stable estimate; the whole valid split of a big corpus would stall training.
_MAX_VALID_ITEMS = 128


@torch.no_grad()
def validate(
    module: TrainingModule,
    data,
    config: ExperimentConfig,
    context: DistributedContext,
    monitor: TrainingMonitor,
    step: int,
) -> dict[str, float]:
    """Mean validation losses (posterior mean z, as at inference) and alignment scores; logs figures."""
    module.eval()
    count = min(len(data.valid_set), _MAX_VALID_ITEMS)
    indices = list(range(count))[context.rank :: context.world_size]
    loader = DataLoader(
        torch.utils.data.Subset(data.valid_set, indices),
        batch_size=config.data.batch_size,
        collate_fn=data.collate,
    )
    totals: dict[str, float] = {}
    seen = 0
    first = None
    means, kl_per_dim = [], []  # posterior means (n, D) and per-dimension KL (n, D): active units
    hierarchical = module.model.hierarchical
    high_means = []  # a hierarchical model's z_s means (n, D_s)
    for batch in loader:
        batch = batch.to(context.device)
        parts, output = module(batch, use_guided_attention=True)
        decoder_lengths = module.model.backbone.decoder_lengths(batch.mel_lengths)
        diag = diagonality(output.tacotron.alignments, batch.token_lengths, decoder_lengths)
        n = batch.tokens.shape[0]
        values = {
            "lagrangian": parts.lagrangian,
            "postnet_l1": parts.postnet_l1,
            "decoder_l1": parts.decoder_l1,
            "pitch": parts.pitch,
            "kl": parts.kl,
            "kl_high": parts.kl_high,
            "voice_adversary": parts.voice_adversary,
            "contour": parts.contour,
            "utterance_length": parts.utterance_length,
            "spoken_length": parts.spoken_length,
            "stop": parts.stop,
            "diagonality": diag.mean(),
        }
        for key, value in values.items():
            totals[key] = totals.get(key, 0.0) + float(value) * n
        seen += n
        means.append(output.prosody.mean.float().cpu())
        if hierarchical:  # the low-level set, z_p (what the decoder reads); z_s's means for its units
            kl_per_dim.append(output.prosody.kl_p_per_dim.float().cpu())
            high_means.append(output.prosody.mean_s.float().cpu())
        else:
            kl_per_dim.append(output.prosody.kl_per_dim.float().cpu())
        if first is None:
            first = (batch, output)
    scalars = {}
    for key, total in totals.items():
        local = torch.tensor(total / max(seen, 1), device=context.device)
        scalars[f"valid/{key}"] = float(all_reduce_mean(local, context))
    if hierarchical:
        scalars["valid/beta"] = float(module.objective.beta["low"])
        scalars["valid/beta_high"] = float(module.objective.beta["high"])
    else:
        scalars.pop("valid/kl_high", None)  # always 0 for a flat model
        scalars["valid/beta"] = float(module.objective.beta)
    if module.model.voice_adversary is None:
        scalars.pop("valid/voice_adversary", None)  # always 0 without the adversary
    if module.model.contour_head is None:
        scalars.pop("valid/contour", None)  # always 0 without the contour head
    if len(means) and sum(m.shape[0] for m in means) >= 2:
        # on this rank's share of the split (all of it in one process): the units the posterior
        # mean moves over the data (variance > 0.01), and where the KL goes, dimension by dimension
        scalars["valid/active_units"] = float(active_units(torch.cat(means)).count)
        if hierarchical:
            scalars["valid/active_units_high"] = float(active_units(torch.cat(high_means)).count)
        monitor.log_scalars(
            step,
            {f"valid_kl_per_dim/z{i:02d}": float(v) for i, v in enumerate(torch.cat(kl_per_dim).mean(0))},
        )
    monitor.log_valid(step, scalars)
    if context.is_main and first is not None:
        _log_example(module, first, config, monitor, step)
    module.train()
    return scalars


def _log_example(
    module: TrainingModule, first, config: ExperimentConfig, monitor: TrainingMonitor, step: int
) -> None:
    batch, output = first
    t_len = int(batch.mel_lengths[0])
    l_len = int(batch.token_lengths[0])
    r = module.model.backbone.r
    monitor.log_figure(
        "valid/alignment_teacher_forced",
        plot_alignment(
            output.tacotron.alignments[0, : (t_len + r - 1) // r], token_length=l_len, title=f"step {step}"
        ),
        step,
    )
    z = output.prosody.mean[:1]
    speakers = batch.speakers[:1] if module.model.speaker_embedding is not None else None
    max_steps = 2 * ((t_len + r - 1) // r) + 10
    inference = module.model.infer(
        batch.tokens[:1, :l_len], batch.token_lengths[:1], z, speakers=speakers, max_steps=max_steps
    )
    free = inference.mel_post[0, : int(inference.mel_lengths[0])]
    monitor.log_figure(
        "valid/alignment_free_running",
        plot_alignment(inference.alignments[0], token_length=l_len, title=f"free running, step {step}"),
        step,
    )
    monitor.log_figure(
        "valid/mels",
        plot_mels(
            [batch.mels[0, :t_len], output.tacotron.mel_post[0, :t_len], free],
            ["reference", "teacher forced", "free running (posterior mean z)"],
            sample_rate=config.audio.sample_rate,
            hop_length=config.audio.hop_length,
        ),
        step,
    )
    if config.train.valid_audio and free.shape[0] > 0:
        from prosody_vae.audio.vocoders import GriffinLimVocoder, vocode
        from prosody_vae.audio.world import WorldVocoder
        from prosody_vae.tts.pitch import decode_pitch

        if inference.pitch is not None:  # the model's own F0 through WORLD, as users will hear it
            f0 = decode_pitch(inference.pitch[0, : free.shape[0]])
            wav = vocode(WorldVocoder(config.audio), free, f0)
        else:
            wav = vocode(GriffinLimVocoder(config.audio, n_iter=16).to(free.device), free)
        monitor.log_audio("valid/free_running", wav.float().cpu(), step, config.audio.sample_rate)
