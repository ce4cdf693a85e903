"""Metrics and per-slice evaluation of a model's predictions on labelled rows."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.metrics import (
    Scorer,
    extra_metrics,
    get_metric,
    mae,
    pr_auc,
    recall_at_budget,
    rmse,
    roc_auc,
    wape,
)

# The metric functions live in ctpipe.metrics (the registry); importable from here as before.
__all__ = ["Evaluation", "SliceComparison", "compare_slices", "evaluate", "mae", "metric_fn",
           "pr_auc", "recall_at_budget", "relative_gain", "rmse", "roc_auc", "wape"]

# The bootstrap is seeded per slice (this seed and the slice's name), so a gate decision is
# reproducible and one slice's interval does not depend on which other slices exist.
BOOTSTRAP_SEED = 12
# A slice whose metric is undefined on more than this share of resamples (ROC-AUC or PR-AUC
# with one class, WAPE with no demand) has no trustworthy interval: too small to judge.
MAX_UNDEFINED_SHARE = 0.10


def metric_fn(config: UseCaseConfig) -> Scorer:
    """The config's headline metric as a function of (y, pred)."""
    return get_metric(config.evaluation.metric).scorer(config.evaluation.alert_budget)


@dataclass(frozen=True)
class Evaluation:
    metric: str
    value: float
    rows: int
    slices: dict[str, float] = field(default_factory=dict)  # "column=value" -> metric
    extra: dict[str, float] = field(default_factory=dict)

    def as_mlflow_metrics(self, prefix: str) -> dict[str, float]:
        out = {f"{prefix}_{self.metric}": self.value, f"{prefix}_rows": float(self.rows)}
        out.update({f"{prefix}_{k}": v for k, v in self.extra.items()})
        return {k: v for k, v in out.items() if np.isfinite(v)}


def evaluate(config: UseCaseConfig, y: np.ndarray, pred: np.ndarray,
             frame: pd.DataFrame) -> Evaluation:
    """Headline metric, extra metrics and the metric per slice with enough rows."""
    y = np.asarray(y, dtype="float64")
    pred = np.asarray(pred, dtype="float64")
    fn = metric_fn(config)
    slices: dict[str, float] = {}
    for col in config.evaluation.slices:
        codes = frame[col].astype("str").to_numpy()
        for level in np.unique(codes):
            mask = codes == level
            if mask.sum() >= config.evaluation.min_slice_rows:
                value = fn(y[mask], pred[mask])
                if np.isfinite(value):
                    slices[f"{col}={level}"] = value
    extra = {m.name: m.scorer(config.evaluation.alert_budget)(y, pred)
             for m in extra_metrics(config.data.task) if m.name != config.evaluation.metric}
    if config.data.task == "binary":
        extra["positive_rate"] = float(y.mean())  # a diagnostic, not a metric
    return Evaluation(config.evaluation.metric, fn(y, pred), len(y), slices, extra)


def relative_gain(challenger: float, champion: float, higher_is_better: bool) -> float:
    """Positive when the challenger is better, as a share of the champion's value."""
    diff = challenger - champion if higher_is_better else champion - challenger
    return diff / abs(champion) if champion else (math.inf if diff > 0 else 0.0)


@dataclass(frozen=True)
class SliceComparison:
    """Both models' metric on one slice of the same holdout rows, and how sure the gain is.

    ``gain`` is the challenger's relative gain (positive: better). ``lower``/``upper`` are
    one-sided bootstrap bounds of that gain at ``gate.slice_confidence`` (paired: both models
    scored on the same resampled rows); None when not computed. ``unjudged`` says why the slice
    is too small to judge (None: it can be judged).
    """

    key: str  # "column=value"
    rows: int
    challenger: float
    champion: float
    gain: float
    lower: float | None = None
    upper: float | None = None
    unjudged: str | None = None


def compare_slices(config: UseCaseConfig, y: np.ndarray, challenger_pred: np.ndarray,
                   champion_pred: np.ndarray, frame: pd.DataFrame
                   ) -> tuple[SliceComparison, ...]:
    """Every level of every ``evaluation.slices`` column, compared between the two models.

    The bootstrap interval is computed only for slices whose point gain is below
    ``-gate.slice_tolerance``: the only ones the gate could veto on (a bootstrap of an
    sklearn metric costs about a second per slice, and the gate runs on every retrain of every
    replayed policy).
    """
    y = np.asarray(y, dtype="float64")
    chall = np.asarray(challenger_pred, dtype="float64")
    champ = np.asarray(champion_pred, dtype="float64")
    fn = metric_fn(config)
    higher = get_metric(config.evaluation.metric).higher_is_better
    min_rows, gate = config.evaluation.min_slice_rows, config.gate
    out: list[SliceComparison] = []
    for col in config.evaluation.slices:
        codes = frame[col].astype("str").to_numpy()
        for level in np.unique(codes):
            key, rows = f"{col}={level}", np.flatnonzero(codes == level)
            a, b = fn(y[rows], chall[rows]), fn(y[rows], champ[rows])
            gain = relative_gain(a, b, higher) if np.isfinite(a) and np.isfinite(b) else math.nan
            if len(rows) < min_rows:
                why = f"{len(rows)} rows < evaluation.min_slice_rows {min_rows}"
                out.append(SliceComparison(key, len(rows), a, b, gain, unjudged=why))
            elif not np.isfinite(gain):
                why = f"{config.evaluation.metric} undefined on the slice"
                out.append(SliceComparison(key, len(rows), a, b, gain, unjudged=why))
            elif gain >= -gate.slice_tolerance:
                out.append(SliceComparison(key, len(rows), a, b, gain))
            else:
                bounds = _paired_bootstrap(config.evaluation.metric, fn, higher, key, y[rows],
                                           chall[rows], champ[rows], gate.slice_resamples,
                                           gate.slice_confidence)
                if isinstance(bounds, str):
                    out.append(SliceComparison(key, len(rows), a, b, gain, unjudged=bounds))
                else:
                    out.append(SliceComparison(key, len(rows), a, b, gain, *bounds))
    return tuple(out)


def _paired_bootstrap(metric: str, fn: Scorer, higher: bool, key: str, y: np.ndarray,
                      chall: np.ndarray, champ: np.ndarray, resamples: int, confidence: float
                      ) -> tuple[float, float] | str:
    """One-sided bounds (lower, upper) of the relative gain at ``confidence``, or why none."""
    rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(key.encode())])
    draws = (rng.integers(0, len(y), len(y)) for _ in range(resamples))
    if metric in RANK_METRICS:
        a, b = _ranked_resamples(metric, y, chall, champ, draws)
    else:
        a, b = _looped_resamples(fn, y, chall, champ, draws, MAX_UNDEFINED_SHARE * resamples)
    defined = np.isfinite(a) & np.isfinite(b)
    if resamples - defined.sum() > MAX_UNDEFINED_SHARE * resamples:
        return (f"bootstrap degenerate: metric undefined on more than "
                f"{MAX_UNDEFINED_SHARE:.0%} of {resamples} resamples")
    sample = np.array([relative_gain(x, z, higher)
                       for x, z in zip(a[defined], b[defined], strict=True)])
    # "lower"/"higher" pick actual resampled values: no interpolation across an infinite gain,
    # and the upper bound errs towards not vetoing.
    return (float(np.quantile(sample, 1 - confidence, method="lower")),
            float(np.quantile(sample, confidence, method="higher")))


def _looped_resamples(fn: Scorer, y: np.ndarray, chall: np.ndarray, champ: np.ndarray,
                      draws: Iterator[np.ndarray], allowed_undefined: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Any registered metric, one call per resample; stops once too many are undefined."""
    a: list[float] = []
    b: list[float] = []
    undefined = 0
    for rows in draws:  # one resample at a time: bounded memory
        a.append(fn(y[rows], chall[rows]))
        b.append(fn(y[rows], champ[rows]))
        undefined += not (np.isfinite(a[-1]) and np.isfinite(b[-1]))
        if undefined > allowed_undefined:  # the interval is not trustworthy: no need to finish
            break
    return np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")


# ROC-AUC and PR-AUC through sklearn cost about 1-3 ms a call: 300 resamples x 2 models would
# take seconds per slice. A resample is the rows repeated by their draw counts, so both are
# computed here over all resamples at once from those counts; a test holds them equal to the
# registered metrics on the same resamples.
RANK_METRICS = ("roc_auc", "pr_auc")
_CHUNK_CELLS = 2_000_000  # resamples x rows per block: bounded memory on large slices


def _ranked_resamples(metric: str, y: np.ndarray, chall: np.ndarray, champ: np.ndarray,
                      draws: Iterator[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    n = len(y)
    per_block = max(1, _CHUNK_CELLS // max(n, 1))
    counts = [np.bincount(rows, minlength=n) for rows in draws]
    a, b = [], []
    for i in range(0, len(counts), per_block):
        weights = np.asarray(counts[i:i + per_block], dtype="float64")
        a.append(weighted_rank_metric(metric, y, chall, weights))
        b.append(weighted_rank_metric(metric, y, champ, weights))
    return np.concatenate(a), np.concatenate(b)


def weighted_rank_metric(metric: str, y: np.ndarray, score: np.ndarray,
                         weights: np.ndarray) -> np.ndarray:
    """``metric`` ("roc_auc" or "pr_auc") with each row counted ``weights[k, row]`` times, one
    value per row k of ``weights``; NaN where a resample lacks a class (as the registry's)."""
    if metric not in RANK_METRICS:
        raise ValueError(f"weighted_rank_metric: {metric!r} is not one of {RANK_METRICS}")
    # PR-AUC walks thresholds from the highest score down, ROC-AUC counts from the lowest up.
    key = -score if metric == "pr_auc" else score
    order = np.argsort(key, kind="stable")
    ranked = key[order]
    groups = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # tied scores: one step
    w = weights[:, order]
    pos = np.add.reduceat(w * y[order], groups, axis=1)
    neg = np.add.reduceat(w, groups, axis=1) - pos
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "roc_auc":  # Mann-Whitney: negatives ranked below, ties counted half
            below = np.cumsum(neg, axis=1) - neg
            value = (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
        else:  # average precision: precision at each threshold, weighted by the recall step
            tps, fps = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
            precision = np.where(tps + fps > 0, tps / (tps + fps), 0.0)
            value = (pos * precision).sum(axis=1) / total_pos
    return np.where((total_pos > 0) & (total_neg > 0), value, np.nan)
