#!/usr/bin/env python
"""Check that the espeak-ng corpus labels are real: drawn factors vs realised measurements.

Reads a manifest written by ``build_corpus``, prints a Markdown table of Pearson and Spearman
correlations (drawn factor vs measured quantity, plus cross-effects), for a corpus of several voices
the same check within each voice (``prosody_vae.data.espeak.check.voice_label_checks``), a duration
summary and,
with ``--harvest N``, how the stored F0 labels compare with the library's tracker (Harvest +
StoneMask, ``prosody_vae.audio.f0_energy``) run again on N utterances: they agree exactly for a corpus
built with the current labels, and differ for one built before labels used that tracker (its
``corpus.json`` then names another ``f0_method``).
Optionally saves a figure with the three main scatter plots.

    python recipes/check_corpus_labels.py --manifest data/espeak_prosody/corpus/manifest.jsonl \\
        --figure docs/figures/espeak_corpus_labels.png --harvest 60
    python recipes/check_corpus_labels.py --manifest data/espeak_multivoice/corpus/manifest.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from prosody_vae.data.espeak.check import CONTOUR_MIN_RANGE, voice_label_checks
from prosody_vae.data.manifest import Utterance, read_manifest

# (drawn factor, realised quantity, what it checks); quantities are computed by _quantity().
_PAIRS = (
    ("pitch", "f0_mean_hz", "pitch base -> mean F0"),
    ("pitch_range", "f0_range_st", "range -> F0 spread (p90/p10, semitones)"),
    ("pitch_range", "f0_std_hz", "range -> F0 standard deviation"),
    ("rate", "s_per_phone", "rate -> seconds per phone"),
    ("rate", "s_per_char", "rate -> seconds per letter"),
    ("rate", "duration_s", "rate -> duration (text varies too)"),
    # Cross-effects: how much one factor leaks into another's measurement.
    ("pitch_range", "f0_mean_hz", "cross: range -> mean F0"),
    ("pitch", "f0_range_st", "cross: pitch base -> F0 spread"),
    ("rate", "f0_mean_hz", "cross: rate -> mean F0"),
)
# The stylised contour's labels (intonation "contour"); the peak position only where the contour has
# a height (pitch_range >= CONTOUR_MIN_RANGE).
_CONTOUR_PAIRS = (
    ("pitch_range", "f0_spread_st", "range -> cleaned F0 spread (semitones)"),
    ("contour", "f0_peak_position", f"contour -> F0 peak position (range >= {CONTOUR_MIN_RANGE:g})"),
    ("contour", "f0_spread_st", "cross: contour -> cleaned F0 spread"),
    ("contour", "f0_mean_hz", "cross: contour -> mean F0"),
)
# Columns of the per-voice table: (factor, measurement) as voice_label_checks names them.
_VOICE_COLUMNS = (
    (("pitch", "f0_mean_hz"), "pitch / F0 mean"),
    (("pitch_range", "f0_range_st"), "range / F0 p90/p10"),
    (("pitch_range", "f0_spread_st"), "range / cleaned spread"),
    (("contour", "f0_peak_position"), "contour / peak position"),
    (("rate", "s_per_phone"), "rate / s per phone"),
)


def _quantity(utt: Utterance, name: str) -> float:
    labels = utt.labels
    if name == "s_per_phone":
        return labels["duration_s"] / labels["n_phones"]
    if name == "s_per_char":
        return labels["duration_s"] / sum(char.isalpha() for char in utt.text)
    return labels[name]


def _column(utts: list[Utterance], name: str) -> np.ndarray:
    try:
        return np.array([_quantity(utt, name) for utt in utts], dtype=np.float64)
    except KeyError as error:
        raise ValueError(f"manifest lacks label {error}; was it written by build_corpus?") from error


def correlation_table(utts: list[Utterance]) -> str:
    """Markdown table of Pearson r and Spearman rho for every pair in ``_PAIRS`` (and ``_CONTOUR_PAIRS``
    for a corpus with the stylised contour)."""
    rows = [
        "| drawn factor | realised quantity | checks | Pearson r | Spearman rho |",
        "|---|---|---|---|---|",
    ]
    contour = all("contour" in utt.labels for utt in utts)
    for factor, quantity, meaning in _PAIRS + (_CONTOUR_PAIRS if contour else ()):
        group = utts
        if (factor, quantity) == ("contour", "f0_peak_position"):
            group = [utt for utt in utts if utt.labels["pitch_range"] >= CONTOUR_MIN_RANGE]
        x, y = _column(group, factor), _column(group, quantity)
        pearson = stats.pearsonr(x, y).statistic
        spearman = stats.spearmanr(x, y).statistic
        rows.append(f"| {factor} | {quantity} | {meaning} | {pearson:+.3f} | {spearman:+.3f} |")
    return "\n".join(rows)


def per_voice_table(utts: list[Utterance]) -> str:
    """Pearson r of each factor with its measurement within each voice (the voice shifts F0 on its own)."""
    checks = voice_label_checks(utts)
    columns = [(key, title) for key, title in _VOICE_COLUMNS if any(key in c.correlations for c in checks)]
    rows = [
        "| voice | held out | n | median of F0 means (Hz) | "
        + " | ".join(title for _, title in columns)
        + " |",
        "|---|---|---|---|" + "---|" * len(columns),
    ]
    for check in checks:
        cells = [
            f"{check.correlations[key]:+.3f}" if key in check.correlations else "-" for key, _ in columns
        ]
        rows.append(
            f"| {check.voice} | {'yes' if check.held_out else ''} | {check.n} | {check.f0_median_hz:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    for key, title in columns:
        values = np.array([c.correlations[key] for c in checks if key in c.correlations])
        rows.append(
            f"\n{title}: within-voice r from {values.min():+.3f} to {values.max():+.3f}, median {np.median(values):+.3f}"
        )
    return "\n".join(rows)


def summary(utts: list[Utterance]) -> str:
    duration = _column(utts, "duration_s")
    held_text = sum(utt.labels["held_out_text"] == 1.0 for utt in utts)
    held_prosody = sum(utt.labels["held_out_prosody"] == 1.0 for utt in utts)
    held_voice = sum(utt.labels.get("held_out_voice") == 1.0 for utt in utts)
    words = np.array([len(utt.text.split()) for utt in utts])
    return (
        f"{len(utts)} utterances, {duration.sum() / 60:.1f} min; duration (trimmed) min {duration.min():.2f} s, "
        f"10% {np.percentile(duration, 10):.2f} s, median {np.median(duration):.2f} s, "
        f"90% {np.percentile(duration, 90):.2f} s, max {duration.max():.2f} s; words {words.min()}-{words.max()}, "
        f"median {np.median(words):.0f}; held out: text {held_text}, prosody {held_prosody}"
        + (f", voice {held_voice}" if held_voice else "")
    )


def harvest_comparison(utts: list[Utterance], n: int, seed: int) -> str:
    """Compare the stored ``f0_mean_hz`` labels with F0 tracked again now on ``n`` utterances.

    The labels' tracker is the library's (``prosody_vae.audio.f0_energy``), so a current corpus gives
    zero difference; a corpus whose labels came from another tracker shows by how much they differ.
    """
    from prosody_vae.audio import AudioConfig, f0_energy, load_audio

    config = AudioConfig()
    chosen = np.random.default_rng(seed).choice(len(utts), size=min(n, len(utts)), replace=False)
    stored, tracked = [], []
    for index in chosen:
        f0, _ = f0_energy(load_audio(utts[index].audio, config), config)
        voiced = f0[f0 > 0]
        stored.append(utts[index].labels["f0_mean_hz"])
        tracked.append(float(voiced.mean()))
    stored_arr, tracked_arr = np.array(stored), np.array(tracked)
    diff = stored_arr - tracked_arr
    return (
        f"stored F0 labels vs Harvest tracked now on {len(chosen)} utterances: "
        f"Pearson r {stats.pearsonr(stored_arr, tracked_arr).statistic:.4f}, "
        f"mean difference {diff.mean():+.2f} Hz, median |difference| {np.median(np.abs(diff)):.2f} Hz, "
        f"max |difference| {np.abs(diff).max():.2f} Hz"
    )


def f0_method(manifest: Path) -> str:
    """How the corpus's F0 labels were tracked, as its ``corpus.json`` records it."""
    description = manifest.parent / "corpus.json"
    try:
        method = json.loads(description.read_text(encoding="utf-8")).get("f0_method")
    except (OSError, json.JSONDecodeError, AttributeError):
        method = None
    return f"F0 labels tracked with: {method or f'not recorded ({description} has no f0_method)'}"


def save_figure(utts: list[Utterance], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    held = np.array([utt.labels["held_out_prosody"] == 1.0 for utt in utts])
    panels = [
        ("pitch", "f0_mean_hz", "pitch setting (-p)", "mean F0 (Hz)"),
        ("pitch_range", "f0_range_st", "range setting (SSML prosody range)", "F0 p90/p10 (semitones)"),
        ("rate", "s_per_phone", "rate setting (-s, words/min)", "seconds per phone"),
    ]
    if all("contour" in utt.labels for utt in utts):  # the stylised contour: its own range and peak
        panels[1] = (
            "pitch_range",
            "f0_spread_st",
            "range setting (contour height)",
            "cleaned F0 spread (st)",
        )
        panels.append(
            ("contour", "f0_peak_position", "contour setting (peak position)", "measured peak position")
        )
    figure, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4))
    for axis, (factor, quantity, xlabel, ylabel) in zip(axes, panels, strict=True):
        x, y = _column(utts, factor), _column(utts, quantity)
        axis.scatter(x[~held], y[~held], s=6, alpha=0.5, label="training pool and held-out text")
        axis.scatter(x[held], y[held], s=10, alpha=0.8, marker="x", label="held-out prosody corner")
        rho = stats.spearmanr(x, y).statistic
        axis.set(xlabel=xlabel, ylabel=ylabel, title=f"Spearman rho = {rho:+.3f}")
    axes[0].legend(fontsize=7, loc="upper left")
    figure.suptitle(f"espeak-ng corpus: drawn factors vs realised prosody ({len(utts)} utterances)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True, help="manifest.jsonl written by build_corpus")
    parser.add_argument(
        "--figure", type=Path, default=None, help="save the scatter plots of factor vs measurement here (PNG)"
    )
    parser.add_argument(
        "--harvest", type=int, default=0, help="compare the F0 labels with F0 tracked again on N utterances"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --harvest subset")
    args = parser.parse_args(argv)
    try:
        utts = read_manifest(args.manifest)
        if len(utts) < 3:
            raise ValueError(f"{args.manifest}: need at least 3 utterances, found {len(utts)}")
        print(summary(utts), end="\n")
        print(f0_method(args.manifest), end="\n\n")
        print(correlation_table(utts), end="\n\n")
        if len({utt.speaker for utt in utts}) > 1:
            print(per_voice_table(utts), end="\n\n")
        if args.harvest > 0:
            print(harvest_comparison(utts, args.harvest, args.seed), end="\n\n")
        if args.figure is not None:
            save_figure(utts, args.figure)
            print(f"figure: {args.figure}")
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
