"""End to end: the dual optimisation holds the KL at the capacity C, and more capacity reconstructs better.

Toy data generated here: mel-like images (T frames x 16 bins) holding one "pitch" line on a noisy
floor, whose height, slope and level vary continuously per item (three factors of variation). A
CapacitronVAE encodes each image, a small per-frame MLP decodes it from z, and the capacity objective
plus DualOptimizer (Adam on beta_raw at the recommended lr) train both. For C = 5 and C = 20 nats,
the batch-mean KL over the last 100 of 600 steps must lie within 15% of C.

Set PROSODY_VAE_TEST_ARTIFACTS=<dir> to keep a plot of KL, C and beta over the steps.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from prosody_vae.prosody.capacity import CapacityObjective
from prosody_vae.prosody.dual_optimizer import RECOMMENDED_BETA_LR, DualOptimizer, main_parameters
from prosody_vae.prosody.likelihood import masked_l1
from prosody_vae.prosody.vae import CapacitronVAE

T, N_MELS, LATENT, BATCH, STEPS, LAST = 32, 16, 8, 32, 600, 100


def _toy_batch(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """(n, T, N_MELS) images and (n,) lengths in [3T/4, T]."""

    def uniform(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(n, 1, generator=gen)

    height, slope, level = uniform(3, 12), uniform(-0.15, 0.15), uniform(-1, 1)
    centre = height + slope * (torch.arange(T) - T / 2)  # (n, T) line position in bins
    line = torch.exp(-((torch.arange(N_MELS) - centre.unsqueeze(-1)) ** 2) / (2 * 1.5**2))  # (n, T, N_MELS)
    mel = -4.0 + level.unsqueeze(-1) + 4.0 * line + 0.1 * torch.randn(n, T, N_MELS, generator=gen)
    lengths = torch.randint(3 * T // 4, T + 1, (n,), generator=gen)
    return mel, lengths


class _FrameDecoder(nn.Module):
    """Stand-in for a TTS decoder: each frame from [z, fixed time features] through an MLP."""

    def __init__(self) -> None:
        super().__init__()
        t = torch.arange(T) / T * math.pi
        features = [torch.sin(k * t) for k in range(1, 5)] + [torch.cos(k * t) for k in range(4)]
        self.register_buffer("time", torch.stack(features, dim=-1), persistent=False)  # (T, 8)
        self.net = nn.Sequential(nn.Linear(LATENT + 8, 128), nn.Tanh(), nn.Linear(128, N_MELS))

    def forward(self, z: Tensor) -> Tensor:
        """(B, D) -> (B, T, N_MELS)."""
        frames = torch.cat([z.unsqueeze(1).expand(-1, T, -1), self.time.expand(z.shape[0], -1, -1)], dim=-1)
        return self.net(frames)


def _train(
    capacity: float, *, seed: int = 0, beta_optimizer: str = "adam", beta_lr: float = RECOMMENDED_BETA_LR
) -> dict[str, list[float]]:
    """Train on fresh toy batches; per-step batch-mean KL, reconstruction and beta.

    Also used by ``bench/bench_capacitron.py --beta-sweep`` to compare beta optimisers on this task.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vae = CapacitronVAE(
        n_mels=N_MELS,
        latent_dim=LATENT,
        reference_encoder=dict(channels=(8, 16, 16), rnn_size=32),
        posterior_hidden_dim=32,
    )
    model = nn.ModuleDict(dict(vae=vae, decoder=_FrameDecoder()))
    objective = CapacityObjective(capacity)
    optimizer = DualOptimizer(
        main_parameters=main_parameters(model, objective.lagrange_parameters()),
        lagrange_parameters=objective.lagrange_parameters(),
        main_lr=1e-2,
        beta_optimizer=beta_optimizer,
        beta_lr=beta_lr,
    )
    history: dict[str, list[Tensor]] = {"kl": [], "reconstruction": [], "beta": []}
    for _ in range(STEPS):
        mel, lengths = _toy_batch(BATCH, gen)
        prosody = vae.encode(mel, lengths)
        parts = objective(masked_l1(model["decoder"](prosody.z), mel, lengths), prosody.kl)
        optimizer.step(parts.loss, parts.beta_loss)
        for key in history:
            history[key].append(getattr(parts, key).detach())
    return {key: torch.stack(values).tolist() for key, values in history.items()}


def _plot(runs: dict[float, dict[str, list[float]]], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_kl, ax_beta) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for capacity, history in runs.items():
        (line,) = ax_kl.plot(history["kl"], lw=0.8, label=f"KL, C = {capacity:g}")
        ax_kl.axhline(capacity, color=line.get_color(), ls="--", lw=0.8)
        ax_beta.plot(history["beta"], color=line.get_color(), label=f"C = {capacity:g}")
    ax_kl.set_ylabel("batch-mean KL (nats)")
    ax_beta.set_ylabel("beta")
    ax_beta.set_yscale("log")
    ax_beta.set_xlabel("step")
    ax_kl.legend()
    ax_beta.legend()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "capacitron_convergence.png", dpi=100)
    plt.close(fig)


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, and the machine is shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.slow
def test_kl_settles_at_capacity_and_more_capacity_reconstructs_better(one_thread):
    runs = {capacity: _train(capacity) for capacity in (5.0, 20.0)}
    if os.environ.get("PROSODY_VAE_TEST_ARTIFACTS"):
        _plot(runs, Path(os.environ["PROSODY_VAE_TEST_ARTIFACTS"]))

    def tail_mean(values: list[float]) -> float:
        return sum(values[-LAST:]) / LAST

    for capacity, history in runs.items():
        kl = tail_mean(history["kl"])
        assert abs(kl - capacity) <= 0.15 * capacity, (
            f"C={capacity}: mean KL over the last {LAST} steps {kl:.2f}"
        )
    # A tighter budget needs more pressure on the KL, and leaves less information for the decoder.
    assert runs[5.0]["beta"][-1] > runs[20.0]["beta"][-1]
    assert tail_mean(runs[20.0]["reconstruction"]) < tail_mean(runs[5.0]["reconstruction"])
