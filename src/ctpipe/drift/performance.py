"""A seeded bootstrap interval of a metric on labelled rows: how sure the performance check is.

Pure numpy (the metric function is passed in). Rows are resampled with replacement; a resample
on which the metric is undefined (NaN: ROC-AUC or PR-AUC with one class only, WAPE with a zero
total) is skipped and counted in ``degenerate``, so the caller can say so and refuse to judge
when too many were.

Large pools are bootstrapped on a seeded sample of ``MAX_BOOTSTRAP_ROWS`` rows (m-out-of-n
bootstrap): the resampled metrics' spread is scaled by sqrt(m / n) around the metric on all
rows, so a 2-million-row fraud batch costs the same as a 20,000-row one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_BOOTSTRAP_ROWS = 20_000


def _roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic (average ranks for ties): sklearn's value,
    without its input checks, which cost ~100x more than the sum on a few hundred rows."""
    from scipy.stats import rankdata

    positives = float(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def _average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """sklearn's average_precision_score (ties form one threshold), without its checks."""
    positives = float(y.sum())
    if positives == 0 or positives == len(y):
        return math.nan
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last row of each distinct score
    tp = np.cumsum(t)[last]
    precision = tp / (last + 1)
    recall = tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# Same values as the registry's functions (tests/test_retraining_policy.py checks), faster:
# a bootstrap calls the metric hundreds of times per cycle.
FAST_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": _roc_auc, "pr_auc": _average_precision}


@dataclass(frozen=True)
class MetricInterval:
    """The metric on all rows and its two-sided percentile interval at ``confidence``."""

    point: float
    low: float
    high: float
    confidence: float
    resamples: int  # asked for
    degenerate: int  # skipped: the metric was undefined on the resample
    rows: int

    @property
    def used(self) -> int:
        return self.resamples - self.degenerate


def bootstrap_metric(y: np.ndarray, pred: np.ndarray,
                     metric: Callable[[np.ndarray, np.ndarray], float], *, resamples: int,
                     confidence: float, seed: int,
                     max_rows: int = MAX_BOOTSTRAP_ROWS,
                     name: str | None = None) -> MetricInterval:
    """``metric(y, pred)`` with a seeded percentile bootstrap interval over the rows.

    ``name``: the registered metric's name; resamples then use its FAST_METRICS twin if any.
    ``low``/``high`` are NaN when no resample gave a finite metric (or the point is NaN).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    y = np.asarray(y, dtype="float64")
    pred = np.asarray(pred, dtype="float64")
    n = len(y)
    point = float(metric(y, pred)) if n else math.nan
    rng = np.random.default_rng(seed)
    m = min(n, max_rows)
    ys, ps = y, pred
    if m < n:  # m-out-of-n: resample a seeded subsample, rescale the spread below
        keep = rng.choice(n, size=m, replace=False)
        ys, ps = y[keep], pred[keep]
    resampled = FAST_METRICS.get(name or "", metric)
    values = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, m, size=m) if m else np.empty(0, dtype=int)
        values[i] = resampled(ys[idx], ps[idx]) if m else math.nan
    finite = values[np.isfinite(values)]
    degenerate = resamples - int(finite.size)
    if not finite.size or not math.isfinite(point):
        return MetricInterval(point, math.nan, math.nan, confidence, resamples, degenerate, n)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    if m < n:
        centre = float(resampled(ys, ps))
        scale = math.sqrt(m / n)
        lo, hi = point + (lo - centre) * scale, point + (hi - centre) * scale
    return MetricInterval(point, float(lo), float(hi), confidence, resamples, degenerate, n)
