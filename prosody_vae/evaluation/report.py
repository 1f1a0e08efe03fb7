"""Writing an evaluation to a folder: metrics.csv, summary.json and figures."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from prosody_vae.atomic import atomic_path, write_text_atomic
from prosody_vae.plots import save_figure

from .figures import plot_f0_overlay, plot_metric_histograms
from .result import PAIR_METRICS, EvaluationResult

__all__ = ["write_json", "write_report"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Indented JSON with a trailing newline (payload must already be JSON-safe: no nan)."""
    write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return path


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    with atomic_path(path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _save(fig, path: Path) -> Path:
    save_figure(fig, path)
    return path


def write_report(result: EvaluationResult, directory: str | Path, *, plots: int = 6) -> list[Path]:
    """Write the report of ``result`` into ``directory`` (created); returns the files written.

    * ``metrics.csv``: one row per pair (id, kind, files, every metric); ``unpaired.csv`` likewise
      for unpaired items, when there are any;
    * ``summary.json``: :meth:`EvaluationResult.to_dict` (nan written as null);
    * ``figures/f0_<id>.png``: F0 overlays of the first ``plots`` pairs whose tracks were kept;
      ``figures/histograms.png`` of the pairwise metrics; ``figures/unpaired_histograms.png``.
    """
    out = Path(directory)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = []
    paired, unpaired = result.paired(), result.unpaired()
    if paired:
        written.append(_write_csv(out / "metrics.csv", result.rows(paired)))
    if unpaired:
        written.append(_write_csv(out / "unpaired.csv", result.rows(unpaired)))
    written.append(write_json(out / "summary.json", result.to_dict()))

    audio = result.config
    for score in [s for s in paired if s.tracks is not None][:plots]:
        fig = plot_f0_overlay(
            score.tracks, sample_rate=audio.sample_rate, hop_length=audio.hop_length, title=score.item.id
        )
        written.append(_save(fig, figures / f"f0_{_UNSAFE.sub('_', score.item.id)}.png"))
    for scores, names, name in (
        (paired, PAIR_METRICS, "histograms.png"),
        (unpaired, None, "unpaired_histograms.png"),
    ):
        if not scores:
            continue
        summary = result.summary(scores)
        keys = [k for k in (names or summary) if k in summary and summary[k].n > 0]
        if keys:
            values = {k: [s.values.get(k, float("nan")) for s in scores] for k in keys}
            written.append(_save(plot_metric_histograms(values, summary), figures / name))
    return written
