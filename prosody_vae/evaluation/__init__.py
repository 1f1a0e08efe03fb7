"""Evaluation: score synthesised speech against references, and diagnose a trained model.

* :func:`evaluate_pairs` scores (reference, output) pairs with the metrics of
  :mod:`prosody_vae.metrics` in a process pool, and summarises them (mean, Student-t interval,
  reference-vs-output correlations of utterance prosody); :func:`write_report` writes CSV, JSON and
  figures. Pairs come from :func:`pairs_from_dirs`, :func:`pairs_from_scp` or
  :func:`pairs_from_manifest` (the synthesis manifest), or are given as path tuples.
* :func:`model_diagnostics` measures a checkpoint on a data split: KL per latent dimension and in
  total against C, beta, active units, and IWAE-k bounds.

``prosody-vae evaluate`` is the command-line front end; docs/evaluation.md describes the metrics.
"""

from .diagnostics import BoundSummary, ModelDiagnostics, model_diagnostics
from .evaluate import evaluate_pairs
from .pairs import EvaluationItem, Pairing, Problem, pairs_from_dirs, pairs_from_manifest, pairs_from_scp
from .report import write_json, write_report
from .result import PAIR_METRICS, TRANSFER_QUANTITIES, EvaluationResult
from .scoring import ItemScore, analysis_config
from .statistics import Correlation, MetricSummary, correlate, summarise

__all__ = [
    "PAIR_METRICS",
    "TRANSFER_QUANTITIES",
    "BoundSummary",
    "Correlation",
    "EvaluationItem",
    "EvaluationResult",
    "ItemScore",
    "MetricSummary",
    "ModelDiagnostics",
    "Pairing",
    "Problem",
    "analysis_config",
    "correlate",
    "evaluate_pairs",
    "model_diagnostics",
    "pairs_from_dirs",
    "pairs_from_manifest",
    "pairs_from_scp",
    "summarise",
    "write_json",
    "write_report",
]
