"""Build the built-in corpus and check by measurement that its prosody labels are real.

Synthesises the espeak-ng corpus with known prosody factors, prepares its features and splits (both
stages idempotent: a second run reuses them), correlates each drawn factor with its realised
measurement, and prints a summary (``prosody-vae check-corpus``). :func:`voice_label_checks` makes
the same check within each voice of a multi-voice corpus, where the voice alone moves F0 and would
otherwise pass for the pitch setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prosody_vae.data import prepare_corpus
from prosody_vae.data.espeak.synthesis import build_corpus
from prosody_vae.data.manifest import Utterance, read_manifest

__all__ = ["CONTOUR_MIN_RANGE", "VoiceCheck", "check_corpus", "label_correlations", "voice_label_checks"]

# The peak position is only defined where the contour has a height: its check counts utterances
# whose pitch_range is at least this (a flat utterance's highest frames fall anywhere).
CONTOUR_MIN_RANGE = 40.0

# (drawn factor, realised measurement, what a positive/negative correlation shows); rows whose labels
# a corpus lacks (the stylised contour's, for the original corpus) are left out.
_CHECKS = (
    ("pitch", "f0_mean_hz", "F0 level follows the pitch setting"),
    ("pitch_range", "f0_range_st", "F0 spread follows the range setting"),
    ("pitch_range", "f0_spread_st", "cleaned F0 spread follows the range setting"),
    (
        "contour",
        "f0_peak_position",
        f"the F0 peak falls where the contour puts it (range >= {CONTOUR_MIN_RANGE:g})",
    ),
    ("rate", "duration_s", "utterances get shorter as the rate rises"),
)
# Within a voice: the same factors, rate against seconds per phone (the sentence's length divided out).
_VOICE_CHECKS = (
    ("pitch", "f0_mean_hz"),
    ("pitch_range", "f0_range_st"),
    ("pitch_range", "f0_spread_st"),
    ("contour", "f0_peak_position"),
    ("rate", "s_per_phone"),
)


def _value(utt: Utterance, name: str) -> float | None:
    labels = utt.labels
    if name == "s_per_phone":
        if "duration_s" not in labels or not labels.get("n_phones"):
            return None
        return labels["duration_s"] / labels["n_phones"]
    return labels.get(name)


def _pearson(utterances: list[Utterance], factor: str, measured: str) -> float | None:
    """Pearson r of a factor and a measurement over the utterances holding both; None if fewer than 3."""
    pairs = []
    for utt in utterances:
        x, y = _value(utt, factor), _value(utt, measured)
        if x is None or y is None or not np.isfinite(y):
            continue
        if factor == "contour" and utt.labels.get("pitch_range", 0.0) < CONTOUR_MIN_RANGE:
            continue
        pairs.append((x, y))
    if len(pairs) < 3:
        return None
    x, y = np.asarray(pairs, dtype=float).T
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def label_correlations(manifest: str | Path) -> list[tuple[str, str, str, float]]:
    """Pearson r between each drawn prosody factor and its realised measurement over a manifest."""
    utterances = read_manifest(manifest)
    rows = []
    for factor, measured, meaning in _CHECKS:
        r = _pearson(utterances, factor, measured)
        if r is not None:
            rows.append((factor, measured, meaning, r))
    return rows


@dataclass(frozen=True)
class VoiceCheck:
    """The label check within one voice: Pearson r per ``(factor, measurement)`` pair it could compute."""

    voice: str
    n: int
    held_out: bool
    f0_median_hz: float
    correlations: dict[tuple[str, str], float]


def voice_label_checks(utterances: list[Utterance]) -> list[VoiceCheck]:
    """Label checks within each voice (the manifest's ``speaker``), in the order of ``corpus.json``'s
    ``voices`` (by ``voice_index``: training voices, then held-out voices).

    Within a voice only the drawn factors move the prosody, so these are the correlations that say
    whether a label is real; pooled over voices, the voices' own pitch inflates or hides them. Rate
    is checked against seconds per phone, the contour's peak position over utterances with a
    ``pitch_range`` of at least :data:`CONTOUR_MIN_RANGE`.
    """
    order = {utt.speaker: utt.labels.get("voice_index", float("inf")) for utt in utterances}
    voices = sorted(dict.fromkeys(utt.speaker for utt in utterances), key=lambda voice: order[voice])
    checks = []
    for voice in voices:
        group = [utt for utt in utterances if utt.speaker == voice]
        correlations = {}
        for factor, measured in _VOICE_CHECKS:
            r = _pearson(group, factor, measured)
            if r is not None:
                correlations[(factor, measured)] = r
        means = [utt.labels["f0_mean_hz"] for utt in group if "f0_mean_hz" in utt.labels]
        checks.append(
            VoiceCheck(
                voice=voice,
                n=len(group),
                held_out=any(utt.labels.get("held_out_voice") == 1.0 for utt in group),
                f0_median_hz=float(np.median(means)) if means else float("nan"),
                correlations=correlations,
            )
        )
    return checks


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
