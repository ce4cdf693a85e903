"""Metrics and per-slice evaluation of a model's predictions on labelled rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from ctpipe.config import UseCaseConfig

HIGHER_IS_BETTER = {"pr_auc", "roc_auc", "recall_at_budget"}


def wape(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(np.abs(y).sum())
    return float(np.abs(y - pred).sum() / total) if total > 0 else float("nan")


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y - pred)))


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    # Undefined without both classes; NaN keeps a slice from deciding anything.
    return float(average_precision_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def recall_at_budget(y: np.ndarray, score: np.ndarray, budget: float) -> float:
    """Share of positives caught when alerting on the top ``budget`` share of rows."""
    positives = y.sum()
    if positives == 0:
        return float("nan")
    alerts = max(1, int(round(budget * len(y))))
    top = np.argsort(-score, kind="stable")[:alerts]
    return float(y[top].sum() / positives)


def metric_fn(config: UseCaseConfig) -> Callable[[np.ndarray, np.ndarray], float]:
    name = config.evaluation.metric
    if name == "recall_at_budget":
        budget = config.evaluation.alert_budget
        return lambda y, s: recall_at_budget(y, s, budget)
    return {"wape": wape, "mae": mae, "rmse": rmse, "pr_auc": pr_auc, "roc_auc": roc_auc}[name]


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
    extra: dict[str, float] = {}
    if config.data.task == "binary":
        extra["recall_at_budget"] = recall_at_budget(y, pred, config.evaluation.alert_budget)
        extra["roc_auc"] = roc_auc(y, pred)
        extra["positive_rate"] = float(y.mean())
    else:
        extra["mae"] = mae(y, pred)
    extra.pop(config.evaluation.metric, None)
    return Evaluation(config.evaluation.metric, fn(y, pred), len(y), slices, extra)
