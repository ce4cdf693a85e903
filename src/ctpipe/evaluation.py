"""Metrics and per-slice evaluation of a model's predictions on labelled rows."""

from __future__ import annotations

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
__all__ = ["Evaluation", "evaluate", "mae", "metric_fn", "pr_auc", "recall_at_budget", "rmse",
           "roc_auc", "wape"]


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
