"""Model diagnostics on a data split: KL per dimension vs C, beta, active units, IWAE-k bounds.

What is measured, per utterance of the split (the first ``max_items`` in manifest order):

* the posterior N(mean, std^2) of the reference encoder on the utterance's own mel (and transcript,
  for models with a text summary), in eval mode;
* the closed-form KL(q(z|x) || p(z)) per latent dimension, in nats; its mean over the split is
  ``kl_per_dim`` and its sum ``kl_total``, the number the capacity C constrains during training;
* active units (Burda et al. 2016): dimensions whose posterior mean varies over the split with
  variance above ``au_threshold``;
* optionally the IWAE-k bound (:func:`prosody_vae.prosody.bounds.iwae_bound`) for each requested k, with
  k teacher-forced decoder passes batched together. ``k = 1`` is the (single-sample) ELBO.

The likelihood in the bound. ``log p(x|z)`` is the Laplace log-density, unit scale, of the target
log-mel around the model's final (post-net) output, with its normalising constant
(:func:`prosody_vae.prosody.likelihood.laplace_nll`), so values are true nats per utterance and comparable across
models on the same data. Training's reconstruction term sums the L1 of the pre- and post-net outputs;
that sum is not the log-density of one distribution, so the bound uses the output the model speaks
with. Tacotron 2 keeps prenet dropout on at inference, so a teacher-forced pass is random even for a
fixed z: each of the k samples draws its own dropout mask together with its z. The masks are then
part of the latent variable with q = p for them, and the bound is a bound on the likelihood of the
model *with* its inference-time dropout, which is the model that synthesises.

With the associative (ACN) prior, each item's context is the code of a random one of its K nearest
training codes (the bank saved with the checkpoint), and KL and bound are relative to p(z | c).

Randomness (z samples, dropout masks, ACN neighbours) comes from ``seed``; the global torch random
state is restored afterwards.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm import tqdm

from prosody_vae.checkpoint import load_checkpoint
from prosody_vae.data.dataset import Batch, ProsodyDataset, collate
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer
from prosody_vae.prosody.bounds import (
    active_units,
    dimensions_by_activity,
    iwae_bound,
    kl_per_dimension_summary,
)
from prosody_vae.prosody.likelihood import laplace_nll
from prosody_vae.tts.model import ProsodyTTS

from .result import json_safe
from .statistics import MetricSummary, summarise

__all__ = ["BoundSummary", "ModelDiagnostics", "model_diagnostics"]


class BoundSummary(NamedTuple):
    """The IWAE-k bound over a split, nats per utterance (higher is tighter)."""

    k: int
    bound: MetricSummary  # mean over utterances of the IWAE-k bound, with its t interval
    elbo: MetricSummary  # mean single-sample ELBO over the same k samples (an ELBO estimate)
    nats_per_value: float  # sum of bounds / sum of (frames x mel bins): a per-element view
    gain: MetricSummary  # per-utterance bound minus the bound at the smallest k asked for (paired)


@dataclass
class ModelDiagnostics:
    """What :func:`model_diagnostics` measured (see the module docstring for the conventions)."""

    checkpoint: str
    step: int | None
    split: str
    ids: list[str]
    prior: str
    capacity: float
    beta: float | None  # None when the checkpoint holds no capacity objective
    kl_total: MetricSummary  # nats per utterance
    kl_per_dim: list[float]  # (D,) mean over the split, nats; sums to kl_total.mean
    au_threshold: float
    active_units: int
    posterior_mean_variance: list[float]  # (D,) the active-units statistic
    dims_by_activity: list[int]  # dimensions, most KL first
    bounds: dict[int, BoundSummary] = field(default_factory=dict)
    seed: int = 0
    seconds: float = 0.0

    @property
    def n_items(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for ``diagnostics.json``."""
        raw = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "bounds"}
        raw["n_items"] = self.n_items
        raw["latent_dim"] = len(self.kl_per_dim)
        raw["likelihood"] = "Laplace(post-net output, scale 1) of the log-mel, normalised; nats per utterance"
        raw["bounds"] = {f"iwae_{k}": b for k, b in sorted(self.bounds.items())}
        return json_safe(raw)

    def format(self) -> str:
        """A few lines for the terminal."""
        kl = self.kl_total
        beta = "n/a" if self.beta is None else f"{self.beta:.3f}"
        top = ", ".join(f"z{d} {self.kl_per_dim[d]:.2f}" for d in self.dims_by_activity[:8])
        lines = [
            f"model: {self.checkpoint} (step {self.step}), split {self.split!r}, {self.n_items} items, "
            f"{self.prior} prior",
            f"KL: {kl.mean:.3f} nats/utt [{kl.ci_low:.3f}, {kl.ci_high:.3f}] vs C = {self.capacity:g}; "
            f"beta = {beta}",
            f"active units: {self.active_units} / {len(self.kl_per_dim)} (variance of the posterior mean "
            f"> {self.au_threshold:g})",
            f"KL per dimension, largest first: {top}",
        ]
        for k, b in sorted(self.bounds.items()):
            lines.append(
                f"IWAE-{k}: {b.bound.mean:.2f} nats/utt [{b.bound.ci_low:.2f}, {b.bound.ci_high:.2f}] "
                f"({b.nats_per_value:.4f} nats per mel value); over IWAE-{min(self.bounds)}: "
                f"{b.gain.mean:+.2f} [{b.gain.ci_low:+.2f}, {b.gain.ci_high:+.2f}]"
            )
        return "\n".join(lines)


def _parse_ks(ks: Sequence[int]) -> list[int]:
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"IWAE k must be positive ints, got {k!r}")
        if k not in out:
            out.append(k)
    return out


def _posterior(
    model: ProsodyTTS, batch: Batch, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Posterior mean, std (B, D), KL per dim (B, D) and the prior context (B, D) or None.

    One pass of the prosody encoder; a prior that needs a context (ACN) gets a random one of each
    item's nearest training codes (the items are outside the code bank), drawn with ``generator``.
    """
    posterior = model.prosody_posterior(
        batch.mels,
        batch.mel_lengths,
        tokens=batch.tokens if model.uses_text_summary else None,
        token_lengths=batch.token_lengths if model.uses_text_summary else None,
        speakers=batch.speakers if model.speaker_embedding is not None else None,
        f0=batch.f0,
    )
    prior = model.prosody.prior
    context = None
    if prior.needs_context:
        if prior.bank.num_filled <= prior.k_neighbours:
            raise ValueError(
                f"the checkpoint's ACN code bank holds {prior.bank.num_filled} codes, too few for "
                f"{prior.k_neighbours} neighbours"
            )
        outside = torch.full((posterior.mean.shape[0],), -1, dtype=torch.long, device=posterior.mean.device)
        context = prior.neighbour_context(posterior.mean, outside, generator=generator)
    kl_per_dim = model.prosody.kl(posterior, context).kl_per_dim
    return posterior.mean, posterior.std, kl_per_dim, context


def _log_likelihood(model: ProsodyTTS, batch: Batch):
    """``z (n * B, D) -> log p(x | z) (n * B,)``: teacher-forced passes of the repeated batch."""
    size = batch.tokens.shape[0]

    def log_px(z: Tensor) -> Tensor:
        n = z.shape[0] // size
        conditioning = z
        if model.speaker_embedding is not None:  # the model's order: [z, speaker]
            conditioning = torch.cat([z, model.speaker_embedding(batch.speakers).repeat(n, 1)], dim=-1)
        mels, lengths = batch.mels.repeat(n, 1, 1), batch.mel_lengths.repeat(n)
        out = model.backbone(
            batch.tokens.repeat(n, 1), batch.token_lengths.repeat(n), mels, lengths, conditioning=conditioning
        )
        return -laplace_nll(out.mel_post, mels, lengths)

    return log_px


@torch.no_grad()
def model_diagnostics(
    checkpoint: str | Path,
    *,
    data_root: str | Path | None = None,
    split: str = "valid",
    max_items: int | None = None,
    batch_size: int = 8,
    au_threshold: float = 0.01,
    bound_ks: Sequence[int] = (),
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_sequences: int = 64,
    level: float = 0.95,
    progress: bool | None = False,
) -> ModelDiagnostics:
    """KL per dimension, KL vs C, beta, active units and IWAE-k bounds of a checkpoint on a split.

    Args:
        checkpoint: a training checkpoint.
        data_root: prepared data (``<root>/splits/<split>.jsonl``, ``<root>/features``); default the
            checkpoint config's ``data.root``.
        split: split name.
        max_items: use the first this many utterances of the split (all if None); at least 2.
        batch_size: utterances per batch.
        au_threshold: active-unit variance threshold.
        bound_ks: IWAE sample counts (e.g. ``(1, 5, 50)``); empty to skip the bound.
        seed: seed of the z samples, dropout masks and neighbour draws.
        device: where the model runs.
        max_sequences: most teacher-forced sequences per decoder call (k samples x batch are split
            into chunks of this size); bounds memory, not the result.
        level: confidence level of the intervals.
        progress: a bar over the batches on stderr: True always, False never, None when stderr is a
            terminal.
    """
    start = time.perf_counter()
    ks = _parse_ks(bound_ks)
    if max_items is not None and (
        isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 2
    ):
        raise ValueError(f"max_items must be an int >= 2 (active units need a spread), got {max_items!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    state = load_checkpoint(checkpoint)
    synth = Synthesizer.from_checkpoint(checkpoint, device=device)
    model, config = synth.model, synth.config
    root = Path(data_root if data_root is not None else config.data.root)
    manifest = root / "splits" / f"{split}.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest}: split {split!r} not found (pass --data, the prepared data folder)"
        )
    utterances = read_manifest(manifest)[:max_items]
    if len(utterances) < 2:
        raise ValueError(f"{manifest}: {len(utterances)} utterance(s); diagnostics need at least 2")
    dataset = ProsodyDataset(utterances, root / "features", synth.tokenizer, speakers=synth.speakers)

    beta_raw = state.get("training_module", {}).get("objective.beta_raw")
    # a training checkpoint holds the multiplier's raw parameter, a packed model the value itself
    beta = state.get("beta") if beta_raw is None else float(F.softplus(beta_raw.float()))
    dev = torch.device(device)
    generator = torch.Generator(device=dev).manual_seed(seed)
    means, kls, bounds, elbos, n_values = [], [], {k: [] for k in ks}, {k: [] for k in ks}, []
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)  # the prenet dropout masks
        starts = range(0, len(dataset), batch_size)
        disable = None if progress is None else not progress
        for first in tqdm(
            starts, desc="diagnostics", unit="batch", file=sys.stderr, leave=False, disable=disable
        ):
            batch = collate([dataset[i] for i in range(first, min(first + batch_size, len(dataset)))]).to(dev)
            mean, std, kl_per_dim, context = _posterior(model, batch, generator)
            means.append(mean)
            kls.append(kl_per_dim)
            n_values.append(batch.mel_lengths * batch.mels.shape[-1])
            log_px = _log_likelihood(model, batch)
            chunk = max(1, max_sequences // mean.shape[0])
            for k in ks:
                result = iwae_bound(
                    log_px,
                    mean,
                    std,
                    model.prosody.prior,
                    k,
                    prior_context=context,
                    chunk_size=chunk,
                    generator=generator,
                )
                bounds[k].append(result.bound)
                elbos[k].append(result.elbo)
    kl_all = torch.cat(kls).double().cpu()  # (N, D)
    au = active_units(torch.cat(means).double().cpu(), threshold=au_threshold)
    per_dim = kl_per_dimension_summary(kl_all)
    total_values = float(torch.cat(n_values).double().sum())
    bound_summaries = {}
    base = torch.cat(bounds[min(ks)]).double().cpu() if ks else None
    for k in ks:
        b, e = torch.cat(bounds[k]).double().cpu(), torch.cat(elbos[k]).double().cpu()
        bound_summaries[k] = BoundSummary(
            k=k,
            bound=summarise(b.numpy(), level=level),
            elbo=summarise(e.numpy(), level=level),
            nats_per_value=float(b.sum()) / total_values,
            # the same utterances at two k: the paired difference has far less spread than either
            # bound, whose spread across utterances is mostly utterance length
            gain=summarise((b - base).numpy(), level=level),
        )
    return ModelDiagnostics(
        checkpoint=str(checkpoint),
        step=state.get("step"),
        split=split,
        ids=[u.id for u in utterances],
        prior=config.prosody.prior,
        capacity=float(config.capacity.capacity),
        beta=beta,
        kl_total=summarise(kl_all.sum(-1).numpy(), level=level),
        kl_per_dim=[float(v) for v in per_dim],
        au_threshold=au_threshold,
        active_units=au.count,
        posterior_mean_variance=[float(v) for v in au.variances],
        dims_by_activity=[int(d) for d in dimensions_by_activity(per_dim)],
        bounds=bound_summaries,
        seed=seed,
        seconds=time.perf_counter() - start,
    )
