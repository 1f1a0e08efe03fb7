"""Corpus-level statistics of per-utterance metrics: mean with a Student-t interval, and correlations.

Conventions:

* **Interval on the mean.** ``mean +- t_{(1+level)/2, n-1} * s / sqrt(n)`` with ``s`` the sample
  standard deviation (divisor n - 1): the Student-t interval, which assumes the per-utterance values
  are independent draws and their mean is close to normal (true for the tens of utterances an
  evaluation has, unless the metric is very skewed). It is an interval on the *mean* over
  utterances, not a range that covers individual utterances (``std`` describes those).
* **Missing values.** A metric that is undefined for an utterance (nan, e.g. GPE with no frame
  voiced in both) is left out of that metric's statistics and counted in ``n_missing``.
* **Correlation.** Pearson's r over utterances where both values are defined, with a 95 % interval
  from Fisher's z transform (``atanh(r) +- z_{0.975} / sqrt(n - 3)``), defined from n = 4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.stats

__all__ = ["Correlation", "MetricSummary", "correlate", "summarise"]


class MetricSummary(NamedTuple):
    """Mean of one metric over utterances, with its interval (nan where undefined)."""

    mean: float
    ci_low: float
    ci_high: float
    std: float  # sample std over utterances (divisor n - 1)
    n: int  # utterances with a defined value
    n_missing: int  # utterances where the metric is nan


class Correlation(NamedTuple):
    """Pearson correlation over utterances with its Fisher-z interval."""

    r: float
    ci_low: float
    ci_high: float
    n: int


def _values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be 1-D (one per utterance), got shape {array.shape}")
    return array


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def summarise(values: Sequence[float] | np.ndarray, *, level: float = 0.95) -> MetricSummary:
    """Mean, Student-t interval at ``level``, std and counts of ``values`` (N,); nans are skipped.

    One defined value gives its mean with a nan interval; none gives nan throughout.
    """
    _check_level(level)
    array = _values(values)
    defined = array[np.isfinite(array)]
    n, missing = int(defined.size), int(array.size - defined.size)
    if n == 0:
        return MetricSummary(math.nan, math.nan, math.nan, math.nan, 0, missing)
    mean = float(defined.mean())
    if n == 1:
        return MetricSummary(mean, math.nan, math.nan, math.nan, 1, missing)
    std = float(defined.std(ddof=1))
    half = float(scipy.stats.t.ppf(0.5 + level / 2, df=n - 1)) * std / math.sqrt(n)
    return MetricSummary(mean, mean - half, mean + half, std, n, missing)


def correlate(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *, level: float = 0.95
) -> Correlation:
    """Pearson r of ``x`` and ``y`` (N,) over entries defined in both (module docstring).

    r is nan with fewer than 3 such entries or a constant side; the interval is nan below 4.
    """
    _check_level(level)
    xs, ys = _values(x), _values(y)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have one value per utterance, got {xs.shape} and {ys.shape}")
    both = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[both], ys[both]
    n = int(both.sum())
    if n < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return Correlation(math.nan, math.nan, math.nan, n)
    r = float(np.clip(np.corrcoef(xs, ys)[0, 1], -1.0, 1.0))
    if n < 4 or abs(r) == 1.0:
        return Correlation(r, math.nan, math.nan, n)
    half = float(scipy.stats.norm.ppf(0.5 + level / 2)) / math.sqrt(n - 3)
    z = math.atanh(r)
    return Correlation(r, math.tanh(z - half), math.tanh(z + half), n)
