"""Live performance of logged predictions once their labels arrive: the join and the figures.

Predictions are joined to labels by the data's id column, or by position in the batch when the
data has no ids (the batch is the join key). The figures are the configured metric on the whole
batch and on each slice with enough labelled rows, precision and recall at the alert budget for
binary models, and the distribution of the scores (over every scored row, labelled or not).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.evaluation import metric_fn
from ctpipe.metrics import precision_at_budget, recall_at_budget


class JoinError(ValueError):
    """Predictions and labels of a batch cannot be matched row for row."""


@dataclass(frozen=True)
class Figures:
    value: float | None  # the configured metric; None when undefined (e.g. one class only)
    rows: int
    precision: float | None = None  # binary: among the alerted rows
    recall: float | None = None


@dataclass(frozen=True)
class BatchFigures:
    overall: Figures
    rows_scored: int
    distribution: dict[str, float]
    slices: dict[str, Figures] = field(default_factory=dict)  # "column=value" -> figures


def join_labels(predictions: pd.DataFrame, labelled: pd.DataFrame,
                config: UseCaseConfig) -> pd.DataFrame:
    """The labelled rows with their logged ``score``; unlabelled predictions drop out.

    ``predictions`` has row_index, row_id and score; ``labelled`` is the batch joined with its
    labels (Store.read_labelled). Joined by id when the data has one, else by position.
    """
    target = config.data.target
    id_col = config.data.id_column
    if id_col:
        keys = labelled[id_col].astype("str")
        if keys.duplicated().any():
            raise JoinError(f"{id_col}: duplicate ids in the labelled batch; cannot join")
        scores = pd.Series(predictions["score"].to_numpy(),
                           index=predictions["row_id"].astype("str"))
        if scores.index.duplicated().any():
            raise JoinError(f"{id_col}: duplicate ids among the logged predictions")
        joined = labelled.assign(score=keys.map(scores).to_numpy())
        joined = joined[joined["score"].notna()]
    else:
        if len(labelled) != len(predictions):
            raise JoinError(f"no id column: {len(labelled)} labelled rows and "
                            f"{len(predictions)} logged predictions cannot be matched by "
                            "position")
        ordered = predictions.sort_values("row_index")
        joined = labelled.assign(score=ordered["score"].to_numpy())
    return joined[joined[target].notna()].reset_index(drop=True)


def _figures(config: UseCaseConfig, y: np.ndarray, score: np.ndarray) -> Figures:
    value = metric_fn(config)(y, score) if len(y) else float("nan")
    precision = recall = None
    if config.data.task == "binary" and len(y):
        budget = config.evaluation.alert_budget
        precision = _finite(precision_at_budget(y, score, budget))
        recall = _finite(recall_at_budget(y, score, budget))
    return Figures(_finite(value), len(y), precision, recall)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def distribution(scores: np.ndarray) -> dict[str, float]:
    if not len(scores):
        return {}
    p50, p90, p99 = np.quantile(scores, [0.5, 0.9, 0.99])
    return {"mean": float(scores.mean()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99)}


def measure(config: UseCaseConfig, joined: pd.DataFrame, scores: np.ndarray) -> BatchFigures:
    """Figures of one scoring run: ``joined`` from join_labels, ``scores`` every logged score."""
    y = joined[config.data.target].to_numpy(dtype="float64")
    score = joined["score"].to_numpy(dtype="float64")
    slices: dict[str, Figures] = {}
    for col in config.evaluation.slices:
        if col not in joined.columns:
            continue
        codes = joined[col].astype("str").to_numpy()
        for level in np.unique(codes):
            mask = codes == level
            if mask.sum() >= config.evaluation.min_slice_rows:
                slices[f"{col}={level}"] = _figures(config, y[mask], score[mask])
    return BatchFigures(_figures(config, y, score), len(scores), distribution(scores), slices)
