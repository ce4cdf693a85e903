"""A label-free performance estimate for binary models, in the spirit of NannyML's CBPE.

Labels arrive days after a batch is scored (fraud: chargebacks). Until then the model's scores
are all there is. If the scores are turned into calibrated probabilities (P(label = 1 | score),
learned on the holdout at training time), the expected number of positives among any set of
rows is the sum of their probabilities, and the expected value of any metric is its average
over label vectors drawn from those probabilities. That is Confidence-Based Performance
Estimation; it holds while the score -> probability relation stays what it was on the holdout
(covariate shift is fine, concept drift is not: that is what the realized metric catches once
labels land).

- :class:`Calibration`: isotonic regression of label on score, fitted on the holdout, stored
  with the model version as ``calibration.json`` (thresholds, applied with ``np.interp``).
- :func:`estimate_binary`: precision and recall at the alert budget in closed form, and the
  configured metric by seeded Monte Carlo over labels drawn from the calibrated probabilities.

Regression is not estimated: CBPE needs class probabilities, and a regression model gives a
point prediction with no distribution around it. Estimating its error without labels needs a
second model trained to predict the first one's error (NannyML's Direct Loss Estimation),
which is not built; regression versions carry no calibration (:data:`REGRESSION_NOT_ESTIMATED`).

nannyml itself is not used: it pins lightgbm below our version and pulls cloud storage
clients, FLAML, kaleido and a telemetry client.

Pure numpy (sklearn and scipy imported where used); no Prefect, MLflow or LightGBM.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ctpipe.metrics import alerted, get_metric

FORMAT = "ctpipe-calibration/isotonic-v1"
REGRESSION_NOT_ESTIMATED = (
    "not estimated for regression: a label-free estimate needs class probabilities (CBPE); "
    "estimating regression error needs a second model of the error (DLE), not built")
# Monte Carlo label draws for the metric; seeded so the same scores give the same estimate.
DRAWS = 32
# Cells (draws x rows) per Monte Carlo chunk: bounds memory on 2M-row batches (~32 MB).
_CHUNK_CELLS = 1 << 22


@dataclass(frozen=True)
class Calibration:
    """Score -> P(label = 1): isotonic regression's breakpoints, linear in between.

    Outside ``thresholds`` the end probabilities apply (``np.interp`` clips, as sklearn's
    ``out_of_bounds="clip"``). ``holdout_rows`` and ``positive_rate`` describe what it was
    fitted on: a calibration from a few hundred rows or a handful of positives is coarse.
    """

    thresholds: tuple[float, ...]  # scores, strictly increasing
    probabilities: tuple[float, ...]  # calibrated probability at each threshold, non-decreasing
    holdout_rows: int
    positive_rate: float

    def __post_init__(self) -> None:
        x = np.asarray(self.thresholds, dtype="float64")
        y = np.asarray(self.probabilities, dtype="float64")
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"calibration needs as many probabilities as thresholds (at least "
                             f"one), got {len(x)} thresholds and {len(y)} probabilities")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("calibration thresholds and probabilities must be finite")
        if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any():
            raise ValueError("calibration thresholds must increase and probabilities must not "
                             "decrease")
        if y[0] < 0 or y[-1] > 1:
            raise ValueError("calibrated probabilities must lie in [0, 1]")

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for ``scores``."""
        return np.interp(np.asarray(scores, dtype="float64"), self.thresholds,
                         self.probabilities)

    def to_json(self) -> str:
        # json writes floats as their shortest repr, which reads back to the same double.
        return json.dumps({"format": FORMAT, "holdout_rows": self.holdout_rows,
                           "positive_rate": self.positive_rate,
                           "thresholds": list(self.thresholds),
                           "probabilities": list(self.probabilities)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ValueError(f"not a calibration this ctpipe reads: format {found!r}, "
                             f"expected {FORMAT!r}")
        return cls(thresholds=tuple(float(v) for v in raw["thresholds"]),
                   probabilities=tuple(float(v) for v in raw["probabilities"]),
                   holdout_rows=int(raw["holdout_rows"]),
                   positive_rate=float(raw["positive_rate"]))


def fit_calibration(scores: np.ndarray, labels: np.ndarray) -> Calibration:
    """Isotonic regression of ``labels`` (0/1) on ``scores``, as thresholds.

    Isotonic, not Platt: it assumes only that a higher score never means a lower probability,
    which is what ranking by score already assumes; a sigmoid would force a shape the booster's
    scores need not have (they are often under-confident at the top after recency weighting).
    """
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(scores, dtype="float64")
    y = np.asarray(labels, dtype="float64")
    if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
        raise ValueError(f"calibration needs one label per score, got {x.shape} scores and "
                         f"{y.shape} labels")
    if not np.isfinite(x).all():
        raise ValueError("calibration scores must be finite")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("calibration labels must be 0 or 1")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(x, y)
    return Calibration(thresholds=tuple(float(v) for v in iso.X_thresholds_),
                       probabilities=tuple(float(v) for v in iso.y_thresholds_),
                       holdout_rows=len(x), positive_rate=float(y.mean()))


@dataclass(frozen=True)
class Estimate:
    """What the scores alone say about a batch; None where nothing can be said.

    ``metric`` is the configured metric's expectation; ``metric_sd`` the spread of the realized
    metric around it that label noise alone would give (the Monte Carlo draws' standard
    deviation): a realized value several of these away is news, one within it is not.
    """

    metric: float | None
    precision: float | None  # at the alert budget
    recall: float | None  # at the alert budget
    metric_sd: float | None = None


NOT_ESTIMATED = Estimate(None, None, None)


def estimate_binary(scores: np.ndarray, calibration: Calibration | None, alert_budget: float,
                    metric_name: str, *, draws: int = DRAWS, seed: int = 0) -> Estimate:
    """Expected precision and recall at ``alert_budget`` and expected ``metric_name``.

    The alerted rows are the top ``alert_budget`` share of scores (``metrics.alerted``, the
    rule the realized figures use). With p the calibrated probabilities, E[TP] = sum of p over
    the alerted rows; precision = E[TP] / alerts (exact); recall = E[TP] / sum of all p (the
    ratio of expectations: the expected number of positives in the batch is sum p).

    Nothing is estimated (all None) without a calibration (a regression model, or a version
    registered before calibrations were stored), for an empty batch, or when a score is not
    finite (no ranking). ``metric`` is None when the metric is not a binary metric (the model
    gives no probabilities for it) or is undefined on every draw (pr_auc with no positive:
    a batch whose calibrated probabilities are all 0).
    """
    if calibration is None:
        return NOT_ESTIMATED
    s = np.asarray(scores, dtype="float64")
    if len(s) == 0 or not np.isfinite(s).all():
        return NOT_ESTIMATED
    p = calibration.apply(s)
    top = alerted(s, alert_budget)
    expected_tp = float(p[top].sum())
    expected_positives = float(p.sum())
    metric, sd = expected_metric(metric_name, s, p, alert_budget, draws=draws, seed=seed)
    return Estimate(metric=metric, precision=expected_tp / len(top),
                    recall=expected_tp / expected_positives if expected_positives > 0 else None,
                    metric_sd=sd)


def expected_metric(metric_name: str, scores: np.ndarray, probabilities: np.ndarray,
                    alert_budget: float, *, draws: int = DRAWS, seed: int = 0,
                    vectorised: bool = True) -> tuple[float | None, float | None]:
    """E[metric(y, scores)] for y ~ Bernoulli(probabilities), and its standard deviation.

    Monte Carlo over ``draws`` seeded label vectors. pr_auc, roc_auc and recall_at_budget are
    computed for a chunk of draws at once from one sort of the scores; any other registered
    binary metric is called once per draw. ``vectorised=False`` forces the per-draw path on
    the same labels, which the tests use to check the vectorised one. Draws where the metric
    is undefined (NaN: pr_auc with one class only) are left out.
    """
    metric = get_metric(metric_name)
    if "binary" not in metric.tasks:
        return None, None
    s = np.asarray(scores, dtype="float64")
    p = np.asarray(probabilities, dtype="float64")
    n = len(s)
    # Labels are drawn in score order, so the vectorised metrics need no gather per draw.
    order = np.argsort(-s, kind="stable")
    ranked = _Ranked(s, order, p[order])
    fast = _VECTORISED.get(metric.name) if vectorised else None
    if fast is not None:
        per_chunk = fast(ranked, alert_budget)
    else:
        scorer = metric.scorer(alert_budget)

        def per_chunk(y: np.ndarray) -> np.ndarray:
            labels = np.empty(n, dtype="float64")
            out = []
            for row in y:
                labels[order] = row
                out.append(scorer(labels, s))
            return np.array(out, dtype="float64")

    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    values = []
    for start in range(0, draws, chunk):
        # float32 uniforms: half the cost of float64 on 2M rows; a 6e-8 grain in p is nothing.
        y = rng.random((min(chunk, draws - start), n), dtype="float32") < ranked.probabilities
        values.append(per_chunk(y))
    v = np.concatenate(values) if values else np.empty(0)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None, None
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


@dataclass(frozen=True)
class _Ranked:
    """A batch in descending score order (ties in row order): what the vectorised metrics use."""

    scores: np.ndarray  # original order
    order: np.ndarray  # row positions, highest score first (metrics.alerted's order)
    probabilities: np.ndarray  # calibrated, in ``order``


# A vectorised metric: (ranked batch, alert budget) -> function of a (draws x rows) bool label
# matrix in score order giving one value per draw, NaN where ctpipe.metrics gives NaN.
_Batch = Callable[[np.ndarray], np.ndarray]


def _pr_auc(ranked: _Ranked, alert_budget: float) -> _Batch:
    # Average precision as sklearn computes it: sum over distinct thresholds of
    # (R_k - R_{k-1}) * P_k, tied scores forming one threshold. Per row that is
    # y_i * precision at the end of i's tie group / P, summed.
    n = len(ranked.order)
    desc = ranked.scores[ranked.order]
    ties = bool((desc[1:] == desc[:-1]).any())
    last = np.flatnonzero(np.r_[desc[1:] != desc[:-1], True])  # last row of each tie group
    group_end = np.repeat(last, np.diff(np.r_[-1, last])) if ties else np.arange(n)
    inverse_alerts = 1.0 / (group_end + 1.0)

    def batch(y: np.ndarray) -> np.ndarray:
        tp = np.cumsum(y, axis=1, dtype="int64")
        if ties:
            tp = tp[:, group_end]
        positives = tp[:, -1].astype("float64")
        weighted = np.einsum("ij,ij,j->i", y, tp, inverse_alerts)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = weighted / positives
        return np.where((positives > 0) & (positives < n), out, np.nan)

    return batch


def _roc_auc(ranked: _Ranked, alert_budget: float) -> _Batch:
    # Mann-Whitney with mid-ranks: ties count one half, as sklearn's roc_auc_score.
    from scipy.stats import rankdata

    ranks = rankdata(ranked.scores)[ranked.order]
    n = len(ranks)

    def batch(y: np.ndarray) -> np.ndarray:
        positives = y.sum(axis=1, dtype="float64")
        negatives = n - positives
        u = y @ ranks - positives * (positives + 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            out = u / (positives * negatives)
        return np.where((positives > 0) & (negatives > 0), out, np.nan)

    return batch


def _recall_at_budget(ranked: _Ranked, alert_budget: float) -> _Batch:
    # The alerted rows' places in score order, found through metrics.alerted itself.
    place = np.empty(len(ranked.order), dtype="int64")
    place[ranked.order] = np.arange(len(ranked.order))
    top = place[alerted(ranked.scores, alert_budget)]

    def batch(y: np.ndarray) -> np.ndarray:
        positives = y.sum(axis=1, dtype="float64")
        with np.errstate(invalid="ignore", divide="ignore"):
            out = y[:, top].sum(axis=1) / positives
        return np.where(positives > 0, out, np.nan)

    return batch


_VECTORISED: dict[str, Callable[[_Ranked, float], _Batch]] = {
    "pr_auc": _pr_auc, "roc_auc": _roc_auc, "recall_at_budget": _recall_at_budget}
