"""Evaluation figures: per-utterance F0 overlays and per-metric histograms (matplotlib, Agg)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

import prosody_vae.plots  # noqa: F401  (selects the Agg backend before pyplot is imported)

from .scoring import F0Tracks
from .statistics import MetricSummary

__all__ = ["plot_f0_overlay", "plot_metric_histograms"]


def _voiced(f0: np.ndarray) -> np.ndarray:
    values = np.asarray(f0, dtype=float)
    return np.where(values > 0, values, np.nan)  # unvoiced frames become gaps


def plot_f0_overlay(tracks: F0Tracks, *, sample_rate: int, hop_length: int, title: str = "") -> Figure:
    """Reference and output F0, each on its own time axis (top) and along the DTW path (bottom).

    The bottom panel shows the frames the FFE/GPE/VDE and log-F0 RMSE compare: output frames mapped
    onto the reference's time axis by the MCD13 DTW path.
    """
    import matplotlib.pyplot as plt

    seconds = hop_length / sample_rate
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharey=True)
    for f0, label in ((tracks.reference, "reference"), (tracks.output, "output")):
        top.plot(np.arange(len(f0)) * seconds, _voiced(f0), label=label, linewidth=1.4)
    top.set_title(title)
    top.set_xlabel("own time (s)")
    top.legend(loc="best", fontsize=8)
    ref_frames, out_frames = tracks.path[:, 0], tracks.path[:, 1]
    x = ref_frames * seconds
    bottom.plot(x, _voiced(tracks.reference[ref_frames]), label="reference", linewidth=1.4)
    bottom.plot(x, _voiced(tracks.output[out_frames]), label="output (DTW-aligned)", linewidth=1.4)
    bottom.set_xlabel("reference time (s)")
    bottom.legend(loc="best", fontsize=8)
    for ax in (top, bottom):
        ax.set_ylabel("F0 (Hz)")
    fig.tight_layout()
    return fig


def plot_metric_histograms(
    values: dict[str, Sequence[float]], summaries: dict[str, MetricSummary], *, columns: int = 3
) -> Figure:
    """One histogram per metric over utterances, with the mean and its interval marked."""
    import matplotlib.pyplot as plt

    names = [name for name in values if any(math.isfinite(v) for v in values[name])]
    if not names:
        raise ValueError("no metric has a defined value to plot")
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        data = np.asarray(values[name], dtype=float)
        data = data[np.isfinite(data)]
        ax.hist(data, bins=min(20, max(5, data.size // 2)), color="tab:blue", alpha=0.75)
        s = summaries[name]
        ax.axvline(s.mean, color="black", linewidth=1.2, label="mean")
        if math.isfinite(s.ci_low):
            ax.axvspan(s.ci_low, s.ci_high, color="black", alpha=0.15, label="CI of the mean")
        ax.set_title(f"{name} (n={s.n})", fontsize=9)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
