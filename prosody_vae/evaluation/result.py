"""The outcome of an evaluation: per-item metrics, problems, and their corpus-level summaries."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from prosody_vae.audio import AudioConfig

from .pairs import Problem
from .scoring import ItemScore
from .speakers import (
    NORMALISED_QUANTITIES,
    CrossVoiceItem,
    VoiceSimilarity,
    cross_voice_correlations,
    identity_check,
)
from .statistics import Correlation, MetricSummary, correlate, summarise

__all__ = ["EvaluationResult", "PAIR_METRICS", "TRANSFER_QUANTITIES", "json_safe"]

# The pairwise metrics in table order (lower is better for the first seven; see docs/evaluation.md).
PAIR_METRICS = (
    "ffe",
    "gpe",
    "vde",
    "mcd13",
    "mcd_db",
    "mcd_world_db",
    "log_f0_rmse_cents",
    "f0_correlation",
    "duration_ratio",
    "speaking_rate_ratio",
)

# Utterance statistics whose reference-vs-output correlation across pairs says whether prosody
# transfers: an output that follows its reference's level, range and pace correlates with it. The
# tempo (the rate relative to the sentence's neutral duration, .tempo) needs both texts: a table
# leaves it out where no pair has them.
TRANSFER_QUANTITIES = (
    ("f0_mean_hz", "F0 mean"),
    ("f0_range_st", "F0 range"),
    ("speaking_rate", "speaking rate"),
    ("tempo", "tempo"),
)


def json_safe(value: Any) -> Any:
    """JSON-safe copy: NamedTuples become dicts, nan and inf become None."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {key: json_safe(item) for key, item in value._asdict().items()}
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class EvaluationResult:
    """Scored items (input order), the items that could not be scored, and the analysis used.

    Attributes:
        scores: one :class:`~prosody_vae.evaluation.scoring.ItemScore` per scored item.
        problems: items skipped while pairing or scoring, with the reason.
        config: the analysis (sample rate, F0 range).
        level: confidence level of the intervals.
        voice_similarity: the cepstral nearest-voice check of the pairs with both voices known
            (:func:`~prosody_vae.evaluation.speakers.voice_similarity`), or None.
    """

    scores: list[ItemScore]
    problems: list[Problem] = field(default_factory=list)
    config: AudioConfig = field(default_factory=AudioConfig)
    level: float = 0.95
    voice_similarity: VoiceSimilarity | None = None

    # ---- selections ------------------------------------------------------------------------------

    def paired(self, kind: str | None = None) -> list[ItemScore]:
        return [s for s in self.scores if s.item.paired and (kind is None or s.item.kind == kind)]

    def unpaired(self, kind: str | None = None) -> list[ItemScore]:
        return [s for s in self.scores if not s.item.paired and (kind is None or s.item.kind == kind)]

    @property
    def kinds(self) -> list[str]:
        return sorted({s.item.kind for s in self.scores if s.item.kind is not None})

    @staticmethod
    def metric_names(scores: list[ItemScore]) -> list[str]:
        """Numeric columns of ``scores`` in first-seen order."""
        names: dict[str, None] = {}
        for score in scores:
            names.update(dict.fromkeys(score.values or {}))
        return list(names)

    @staticmethod
    def rows(scores: list[ItemScore]) -> list[dict[str, Any]]:
        """One flat row per score: id, kind, files, then the metrics."""
        voices = any(s.item.speaker or s.item.reference_speaker for s in scores)
        return [
            {
                "id": s.item.id,
                "kind": s.item.kind or "",
                "reference": str(s.item.reference) if s.item.reference is not None else "",
                "output": str(s.item.output),
                **(
                    {"reference_speaker": s.item.reference_speaker or "", "speaker": s.item.speaker or ""}
                    if voices
                    else {}
                ),
                **(s.values or {}),
            }
            for s in scores
        ]

    def cross_voice_items(self, kind: str | None = None) -> list[CrossVoiceItem]:
        """The scored pairs whose reference voice and target voice are both known."""
        # a statistic "a|b" reads a where present, else b: pass on only the ones measured
        prefix_stats = [key for _, _, stat, _ in NORMALISED_QUANTITIES for key in stat.split("|")]
        return [
            CrossVoiceItem(
                reference=str(s.item.reference),
                reference_voice=s.item.reference_speaker,
                target_voice=s.item.speaker,
                reference_stats={k: s.values[f"ref_{k}"] for k in prefix_stats if f"ref_{k}" in s.values},
                output_stats={k: s.values[f"out_{k}"] for k in prefix_stats if f"out_{k}" in s.values},
            )
            for s in self.paired(kind)
            if s.item.speaker and s.item.reference_speaker
        ]

    def cross_voice(self, kind: str | None = None) -> dict[str, Any] | None:
        """Speaker-normalised correlations and the identity checks (:mod:`.speakers`), or None when
        no pair has both voices."""
        items = self.cross_voice_items(kind)
        if not items:
            return None
        correlations = cross_voice_correlations(items, level=self.level)
        return {
            "n_pairs": len(items),
            "voice_means": "of the evaluated set: references per reference voice, outputs per target voice",
            "normalised_correlations": correlations.pooled,
            "raw_correlations": correlations.raw,
            "by_reference_voice": correlations.by_reference_voice,
            "by_target_voice": correlations.by_target_voice,
            "identity": identity_check(items),
            "voice_similarity": self.voice_similarity if kind is None else None,
        }

    # ---- summaries -------------------------------------------------------------------------------

    def summary(self, scores: list[ItemScore]) -> dict[str, MetricSummary]:
        """Mean and Student-t interval of every metric over ``scores``."""
        return {
            name: summarise([s.values.get(name, math.nan) for s in scores], level=self.level)
            for name in self.metric_names(scores)
        }

    def correlations(self, scores: list[ItemScore]) -> dict[str, Correlation]:
        """Pearson r across pairs of the reference's and the output's utterance statistics."""
        return {
            key: correlate(
                [s.values.get(f"ref_{key}", math.nan) for s in scores],
                [s.values.get(f"out_{key}", math.nan) for s in scores],
                level=self.level,
            )
            for key, _ in TRANSFER_QUANTITIES
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything of ``summary.json``: counts, problems, summaries overall and per kind."""

        def section(kind: str | None) -> dict[str, Any]:
            paired, unpaired = self.paired(kind), self.unpaired(kind)
            return {
                "n_paired": len(paired),
                "n_unpaired": len(unpaired),
                "paired": self.summary(paired),
                "transfer_correlations": self.correlations(paired),
                "unpaired": self.summary(unpaired),
                "cross_voice": self.cross_voice(kind),
            }

        return json_safe(
            {
                "analysis": dataclasses.asdict(self.config),
                "f0_extractor": "pyworld harvest + stonemask",
                "interval": f"{self.level:.0%} Student t interval on the mean over utterances",
                "correlation_interval": f"{self.level:.0%} Fisher z interval",
                "n_problems": len(self.problems),
                "problems": [p._asdict() for p in self.problems],
                **section(None),
                "by_kind": {kind: section(kind) for kind in self.kinds} if len(self.kinds) > 1 else {},
            }
        )

    # ---- text ------------------------------------------------------------------------------------

    def format_table(self) -> str:
        """A Markdown table of the pairwise metrics and transfer correlations, plus counts."""
        lines = []
        paired, unpaired = self.paired(), self.unpaired()
        pct = f"{self.level:.0%}"
        if paired:
            lines += [f"| metric | mean | {pct} CI | n |", "|---|---|---|---|"]
            summary = self.summary(paired)
            for name in PAIR_METRICS:
                if name in summary:
                    lines.append(_row(name, summary[name]))
            correlations = self.correlations(paired)
            for key, label in TRANSFER_QUANTITIES:
                c = correlations[key]
                if c.n == 0:  # not measured (the tempo without the texts)
                    continue
                lines.append(
                    f"| r(ref, out) {label} | {c.r:.3f} | [{c.ci_low:.3f}, {c.ci_high:.3f}] | {c.n} |"
                )
        lines += self._cross_voice_lines()
        if unpaired:
            lines += ["", f"unpaired items: {len(unpaired)}", f"| statistic | mean | {pct} CI | std | n |"]
            lines.append("|---|---|---|---|---|")
            for name, s in self.summary(unpaired).items():
                lines.append(
                    f"| {name} | {s.mean:.4g} | [{s.ci_low:.4g}, {s.ci_high:.4g}] | {s.std:.4g} | {s.n} |"
                )
        lines.append("")
        lines.append(f"{len(paired)} pairs, {len(unpaired)} unpaired, {len(self.problems)} skipped")
        for problem in self.problems:
            lines.append(
                f"  skipped {problem.id}: {problem.reason}" + (f" ({problem.path})" if problem.path else "")
            )
        return "\n".join(lines)

    def _cross_voice_lines(self) -> list[str]:
        """The cross-voice table: normalised r pooled and per reference voice, then identity checks."""
        section = self.cross_voice()
        if section is None:
            return []
        # quantities measured on some pair (the tempo needs the texts)
        measured = [q for q in NORMALISED_QUANTITIES if section["raw_correlations"][q[0]].n > 0]
        labels = [label for _, label, _, _ in measured]
        keys = [key for key, *_ in measured]

        def cells(correlations: dict[str, Correlation]) -> str:
            return " | ".join(f"{correlations[k].r:.3f} (n={correlations[k].n})" for k in keys)

        lines = [
            "",
            f"cross-voice transfer, {section['n_pairs']} pairs: r(ref, out) relative to each voice's mean",
            f"| voices | {' | '.join(labels)} |",
            "|---|" + "---|" * len(keys),
            f"| pooled, speaker-normalised | {cells(section['normalised_correlations'])} |",
            f"| pooled, raw | {cells(section['raw_correlations'])} |",
        ]
        for voice, correlations in section["by_reference_voice"].items():
            lines.append(f"| reference voice {voice} | {cells(correlations)} |")
        for voice, correlations in section["by_target_voice"].items():
            lines.append(f"| target voice {voice} | {cells(correlations)} |")
        identity = section["identity"]
        lines.append(
            f"identity: output F0 level inside the target voice's range {identity.inside_range:.2f} "
            f"(n={identity.n_range}); nearer the target voice than the reference voice "
            f"{identity.nearer_target:.2f} (n={identity.n_nearer})"
        )
        similarity = section["voice_similarity"]
        if similarity is not None:
            lines.append(
                f"voice similarity (mean cepstrum): nearest voice is the target {similarity.accuracy:.2f} "
                f"(n={similarity.n}); nearer the target than the reference voice "
                f"{similarity.nearer_target:.2f} (n={similarity.n_nearer})"
            )
        return lines


def _row(name: str, s: MetricSummary) -> str:
    missing = f" ({s.n_missing} undefined)" if s.n_missing else ""
    return f"| {name} | {s.mean:.4g} | [{s.ci_low:.4g}, {s.ci_high:.4g}] | {s.n}{missing} |"
