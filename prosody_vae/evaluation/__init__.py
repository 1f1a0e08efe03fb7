"""Evaluation: score synthesised speech against references, and diagnose a trained model.

* :func:`evaluate_pairs` scores (reference, output) pairs with the metrics of
  :mod:`prosody_vae.metrics` in a process pool, and summarises them (mean, Student-t interval,
  reference-vs-output correlations of utterance prosody); :func:`write_report` writes CSV, JSON and
  figures. Pairs come from :func:`pairs_from_dirs`, :func:`pairs_from_scp` or
  :func:`pairs_from_manifest` (the synthesis manifest), or are given as path tuples.
* :func:`model_diagnostics` measures a checkpoint on a data split: KL per latent dimension and in
  total against C, beta, active units, and IWAE-k bounds.
* :mod:`.speakers`: for pairs whose reference voice and target voice are known, transfer correlations
  relative to each voice's mean (:func:`cross_voice_correlations`) and speaker-identity checks
  (:func:`identity_check`, :func:`voice_similarity`); reported by :class:`EvaluationResult`.

``prosody-vae evaluate`` is the command-line front end; docs/evaluation.md describes the metrics.
"""

from .diagnostics import BoundSummary, ModelDiagnostics, model_diagnostics
from .evaluate import evaluate_pairs
from .pairs import EvaluationItem, Pairing, Problem, pairs_from_dirs, pairs_from_manifest, pairs_from_scp
from .report import write_json, write_report
from .result import PAIR_METRICS, TRANSFER_QUANTITIES, EvaluationResult
from .scoring import ItemScore, analysis_config
from .speakers import (
    NORMALISED_QUANTITIES,
    CrossVoiceCorrelations,
    CrossVoiceItem,
    IdentityCheck,
    VoiceSimilarity,
    cross_voice_correlations,
    identity_check,
    label_reference_voices,
    normalised_values,
    recording_means,
    voice_means,
    voice_similarity,
)
from .statistics import Correlation, MetricSummary, correlate, summarise

__all__ = [
    "NORMALISED_QUANTITIES",
    "PAIR_METRICS",
    "TRANSFER_QUANTITIES",
    "BoundSummary",
    "Correlation",
    "CrossVoiceCorrelations",
    "CrossVoiceItem",
    "EvaluationItem",
    "EvaluationResult",
    "IdentityCheck",
    "ItemScore",
    "MetricSummary",
    "ModelDiagnostics",
    "Pairing",
    "Problem",
    "VoiceSimilarity",
    "analysis_config",
    "correlate",
    "cross_voice_correlations",
    "evaluate_pairs",
    "identity_check",
    "label_reference_voices",
    "model_diagnostics",
    "normalised_values",
    "pairs_from_dirs",
    "pairs_from_manifest",
    "pairs_from_scp",
    "summarise",
    "recording_means",
    "voice_means",
    "voice_similarity",
    "write_json",
    "write_report",
]
