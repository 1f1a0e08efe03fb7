"""Figures a person wants to look at: alignments, mel spectrograms, F0 contours, KL/beta curves.

All functions return a matplotlib Figure (Agg backend, no display needed); callers save or log it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "figure_to_array",
    "plot_alignment",
    "plot_f0_contours",
    "plot_mels",
    "plot_training_curves",
    "save_figure",
]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def plot_alignment(alignment, *, title: str = "", token_length: int | None = None) -> Figure:
    """Attention weights (T_dec, L): decoder steps on x, tokens on y."""
    a = _np(alignment)
    if token_length is not None:
        a = a[:, :token_length]
    fig, ax = plt.subplots(figsize=(6, 4))
    im = ax.imshow(a.T, aspect="auto", origin="lower", interpolation="none", cmap="viridis")
    ax.set_xlabel("decoder step")
    ax.set_ylabel("token")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def plot_mels(
    mels: Sequence, titles: Sequence[str], *, sample_rate: int = 22050, hop_length: int = 256
) -> Figure:
    """Stacked log-mel spectrograms, each (T, n_mels), with a shared colour scale."""
    arrays = [_np(m) for m in mels]
    vmin = min(float(a.min()) for a in arrays)
    vmax = max(float(a.max()) for a in arrays)
    fig, axes = plt.subplots(len(arrays), 1, figsize=(8, 2.2 * len(arrays)), squeeze=False)
    for ax, a, title in zip(axes[:, 0], arrays, titles, strict=True):
        seconds = a.shape[0] * hop_length / sample_rate
        ax.imshow(
            a.T, aspect="auto", origin="lower", vmin=vmin, vmax=vmax, extent=(0, seconds, 0, a.shape[1])
        )
        ax.set_title(title)
        ax.set_ylabel("mel bin")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def plot_f0_contours(
    contours: Sequence,
    labels: Sequence[str],
    *,
    sample_rate: int = 22050,
    hop_length: int = 256,
    title: str = "",
) -> Figure:
    """Overlaid F0 contours (T,) in Hz; unvoiced frames (0) are left as gaps."""
    fig, ax = plt.subplots(figsize=(8, 3))
    for f0, label in zip(contours, labels, strict=True):
        f0 = _np(f0).astype(float)
        t = np.arange(len(f0)) * hop_length / sample_rate
        ax.plot(t, np.where(f0 > 0, f0, np.nan), label=label, linewidth=1.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("F0 (Hz)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def plot_training_curves(steps, kl, beta, capacity: float, *, title: str = "") -> Figure:
    """KL against C on the left axis, beta on the right axis, over training steps."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(_np(steps), _np(kl), label="KL (nats)", color="tab:blue")
    ax.axhline(capacity, color="tab:blue", linestyle="--", label=f"C = {capacity:g}")
    ax.set_xlabel("step")
    ax.set_ylabel("KL (nats per utterance)")
    twin = ax.twinx()
    twin.plot(_np(steps), _np(beta), color="tab:red", label="beta")
    twin.set_ylabel("beta", color="tab:red")
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    names = ax.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
    ax.legend(lines, names, loc="upper right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path, *, dpi: int = 100) -> None:
    """Write a figure to ``path`` (format from the suffix) atomically and close it, so long runs do
    not leak."""
    from prosody_vae.atomic import atomic_path

    try:
        with atomic_path(path) as temporary:
            fig.savefig(temporary, dpi=dpi)
    finally:
        plt.close(fig)


def figure_to_array(fig: Figure) -> np.ndarray:
    """RGB uint8 array (H, W, 3) of a figure, for TensorBoard; closes the figure."""
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image
