"""Build the built-in corpus and check by measurement that its prosody labels are real.

Synthesises the espeak-ng corpus with known prosody factors, prepares its features and splits (both
stages idempotent: a second run reuses them), correlates each drawn factor with its realised
measurement, and prints a summary (``prosody-vae check-corpus``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from prosody_vae.data import prepare_corpus
from prosody_vae.data.espeak.synthesis import build_corpus
from prosody_vae.data.manifest import read_manifest

__all__ = ["check_corpus", "label_correlations"]

# (drawn factor, realised measurement, what a positive/negative correlation shows)
_CHECKS = (
    ("pitch", "f0_mean_hz", "F0 level follows the pitch setting"),
    ("pitch_range", "f0_range_st", "F0 spread follows the range setting"),
    ("rate", "duration_s", "utterances get shorter as the rate rises"),
)


def label_correlations(manifest: str | Path) -> list[tuple[str, str, str, float]]:
    """Pearson r between each drawn prosody factor and its realised measurement over a manifest."""
    utterances = read_manifest(manifest)
    rows = []
    for factor, measured, meaning in _CHECKS:
        pairs = [
            (u.labels[factor], u.labels[measured])
            for u in utterances
            if factor in u.labels and measured in u.labels and np.isfinite(u.labels[measured])
        ]
        if len(pairs) < 3:
            continue
        x, y = np.asarray(pairs, dtype=float).T
        rows.append((factor, measured, meaning, float(np.corrcoef(x, y)[0, 1])))
    return rows


def check_corpus(
    out_dir: str | Path = "corpus_check", *, n_utterances: int = 300, seed: int = 0, num_workers: int = 2
) -> dict:
    """Build + prepare the built-in corpus under ``out_dir`` and report what was made and measured."""
    out_dir = Path(out_dir)
    print(
        f"[check-corpus] 1/3 synthesising {n_utterances} utterances with espeak-ng into {out_dir / 'corpus'}"
    )
    manifest = build_corpus(out_dir / "corpus", n_utterances=n_utterances, seed=seed, num_workers=num_workers)
    print(f"[check-corpus] 2/3 extracting log-mels, F0 and energy into {out_dir / 'prepared'}")
    prepared = out_dir / "prepared"
    prepare_corpus(
        "manifest",
        manifest,
        prepared,
        num_workers=num_workers,
        # every held-out sentence (and the held-out prosody corner) goes to the test split
        held_out_texts=set((manifest.parent / "held_out_texts.txt").read_text().splitlines()),
        group_by="text",
    )
    print(
        "[check-corpus] 3/3 checking that the prosody labels are real (Pearson r, drawn factor vs measurement)"
    )
    rows = label_correlations(manifest)
    for factor, measured, meaning, r in rows:
        print(f"  {factor:>12} vs {measured:<12} r = {r:+.3f}   ({meaning})")
    splits = {p.stem: sum(1 for _ in p.open()) for p in sorted((prepared / "splits").glob("*.jsonl"))}
    summary = {
        "manifest": str(manifest),
        "features": str(prepared / "features"),
        "splits": splits,
        "label_correlations": {f"{f}~{m}": r for f, m, _, r in rows},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[check-corpus] splits: {splits}; summary written to {out_dir / 'summary.json'}")
    return summary
