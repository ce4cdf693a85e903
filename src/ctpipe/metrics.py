"""The metric registry: every metric a config can name, declared once with its direction.

An entry says which tasks the metric applies to ("binary", "regression"), whether higher is
better (the gate, performance drift and reports read it here and nowhere else), and its function
``fn(y, pred)``, or ``fn(y, pred, alert_budget)`` when ``needs_budget``. ``extra`` metrics are
reported beside the headline metric in every evaluation of their task.

Adding a metric: one :func:`register_metric` entry (here, or in any module imported before the
config is loaded). sklearn is imported inside the functions that use it, so importing this
module (as ``ctpipe.config`` does when it validates a metric) stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ctpipe.registries import Registry

Scorer = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    name: str
    tasks: tuple[str, ...]  # of DataConfig.task: "binary", "regression"
    higher_is_better: bool
    fn: Callable[..., float]
    needs_budget: bool = False  # fn takes evaluation.alert_budget as its third argument
    extra: bool = False  # reported beside the headline metric for its tasks
    # The values fn can return: a gate floor beyond them is a config no model can pass.
    bounds: tuple[float, float] = (-math.inf, math.inf)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError(f"metric {self.name!r} must apply to at least one task")

    def scorer(self, alert_budget: float) -> Scorer:
        """``fn`` as a function of (y, pred), the alert budget bound when it needs one."""
        if not self.needs_budget:
            return self.fn
        fn = self.fn
        return lambda y, pred: fn(y, pred, alert_budget)


METRICS: Registry[Metric] = Registry(
    "metric", lambda m: m.tasks,
    lambda name, m, task: (f"metric {name!r} is for {' and '.join(m.tasks)} tasks, not {task}; "
                           f"metrics for {task}: {', '.join(METRICS.names(task))}"))
"""Registered metrics by name, in registration order; add with :func:`register_metric`."""


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    return METRICS.register(metric.name, metric, replace=replace)


def metric_names(task: str | None = None) -> list[str]:
    return METRICS.names(task)


def get_metric(name: str, task: str | None = None) -> Metric:
    """The registered metric ``name``; with ``task``, refuse a metric for another task."""
    return METRICS.lookup(name, task)


def higher_is_better(name: str) -> bool:
    return get_metric(name).higher_is_better


def extra_metrics(task: str) -> list[Metric]:
    return [m for m in METRICS.values() if m.extra and task in m.tasks]


# --------------------------------------------------------------------------- built-in metrics


def wape(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(np.abs(y).sum())
    return float(np.abs(y - pred).sum() / total) if total > 0 else float("nan")


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y - pred)))


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    # Undefined without both classes; NaN keeps a slice from deciding anything.
    return float(average_precision_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def alerted(score: np.ndarray, budget: float) -> np.ndarray:
    """Positions of the rows alerted at ``budget``: the top ``budget`` share of scores.

    The one alerting rule: the budget metrics, realized precision and the label-free estimate
    (ctpipe.estimate) all count alerts with it. At least one alert; ties keep row order.
    """
    alerts = max(1, int(round(budget * len(score))))
    return np.argsort(-np.asarray(score), kind="stable")[:alerts]


def recall_at_budget(y: np.ndarray, score: np.ndarray, budget: float) -> float:
    """Share of positives caught when alerting on the top ``budget`` share of rows."""
    positives = y.sum()
    if positives == 0:
        return float("nan")
    return float(y[alerted(score, budget)].sum() / positives)


def precision_at_budget(y: np.ndarray, score: np.ndarray, budget: float) -> float:
    """Share of the alerted rows (top ``budget`` share of scores) that are positive.

    Not a registered metric (a config cannot gate on it); monitoring reports it beside recall.
    """
    if len(y) == 0:
        return float("nan")
    return float(np.mean(y[alerted(score, budget)]))


_ERROR = (0.0, math.inf)  # an error is never negative
_SHARE = (0.0, 1.0)  # an area under a curve or a recall
register_metric(Metric("wape", ("regression",), higher_is_better=False, fn=wape, bounds=_ERROR))
register_metric(Metric("mae", ("regression",), higher_is_better=False, fn=mae, extra=True,
                       bounds=_ERROR))
register_metric(Metric("rmse", ("regression",), higher_is_better=False, fn=rmse, bounds=_ERROR))
register_metric(Metric("pr_auc", ("binary",), higher_is_better=True, fn=pr_auc, bounds=_SHARE))
register_metric(Metric("recall_at_budget", ("binary",), higher_is_better=True,
                       fn=recall_at_budget, needs_budget=True, extra=True, bounds=_SHARE))
register_metric(Metric("roc_auc", ("binary",), higher_is_better=True, fn=roc_auc, extra=True,
                       bounds=_SHARE))
