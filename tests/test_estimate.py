"""The label-free estimate (ctpipe.estimate): known answers, the calibration's JSON, tracking of
realized precision and pr_auc on a stationary stream, and the calibration stored with a version."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ctpipe import registry
from ctpipe.config import load_config
from ctpipe.drift import build_profile
from ctpipe.estimate import (
    NOT_ESTIMATED,
    Calibration,
    estimate_binary,
    expected_metric,
    fit_calibration,
)
from ctpipe.integrity import IntegrityError
from ctpipe.lineage import Lineage
from ctpipe.metrics import pr_auc, precision_at_budget, recall_at_budget
from ctpipe.simulate import generate_day
from ctpipe.steps import train
from ctpipe.steps.ports import Runtime
from tests.fakes import MemoryStore
from tests.test_training_registry import _trained

IDENTITY = Calibration(thresholds=(0.0, 1.0), probabilities=(0.0, 1.0), holdout_rows=0,
                       positive_rate=0.5)


# ----------------------------------------------------------------------------- known answers


def test_precision_and_recall_at_budget_by_hand() -> None:
    # Perfectly calibrated scores (identity calibration): P(fraud) is the score itself.
    scores = np.array([0.0, 0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.5])
    est = estimate_binary(scores, IDENTITY, 0.3, "pr_auc")
    # 30 % of 10 rows = 3 alerts: 0.9, 0.8, 0.7 -> E[TP] = 2.4 of E[positives] = 4.5.
    assert est.precision == pytest.approx(2.4 / 3)
    assert est.recall == pytest.approx(2.4 / 4.5)


def _exact(metric, scores: np.ndarray, p: np.ndarray) -> float:  # noqa: ANN001
    """E[metric] over every label vector, weighted by its probability (NaN ones left out)."""
    total = weight = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=len(p)):
        y = np.array(bits)
        value = metric(y, scores)
        if math.isfinite(value):
            w = float(np.prod(np.where(y == 1, p, 1 - p)))
            total, weight = total + w * value, weight + w
    return total / weight


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by its definition: P(positive outscores negative), a tie counting one half."""
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


@pytest.mark.parametrize("name", ["pr_auc", "roc_auc", "recall_at_budget"])
def test_metric_expectation_matches_exact_enumeration(name: str) -> None:
    # 10 rows, tied scores included (tie groups are one threshold for pr_auc, half for roc_auc):
    # the exact expectation over all 1024 label vectors, against 20,000 Monte Carlo draws
    # (standard error < 0.3 / sqrt(20000) = 0.002; tolerance 0.01 is 5 of them).
    scores = np.array([0.95, 0.9, 0.9, 0.7, 0.5, 0.5, 0.5, 0.3, 0.2, 0.05])
    p = np.array([0.9, 0.6, 0.6, 0.5, 0.3, 0.3, 0.3, 0.2, 0.1, 0.05])
    scorers = {"pr_auc": pr_auc, "roc_auc": _pairwise_auc,
               "recall_at_budget": lambda y, s: recall_at_budget(y, s, 0.2)}
    exact = _exact(scorers[name], scores, p)
    mc, sd = expected_metric(name, scores, p, 0.2, draws=20_000, seed=1)
    assert mc == pytest.approx(exact, abs=0.01)
    assert sd > 0


@pytest.mark.parametrize("name", ["pr_auc", "roc_auc", "recall_at_budget"])
def test_vectorised_metrics_equal_the_registered_functions(name: str) -> None:
    # The same draws scored by the registered metric function one draw at a time.
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(3000), 2)  # many ties
    p = scores ** 2
    fast = expected_metric(name, scores, p, 0.01, draws=16, seed=5)
    slow = expected_metric(name, scores, p, 0.01, draws=16, seed=5, vectorised=False)
    assert fast == pytest.approx(slow, rel=1e-9)
    y = (np.random.default_rng(0).random(3000) < p).astype(float)
    assert _pairwise_auc(y, scores) == pytest.approx(roc_auc_score(y, scores))
    assert pr_auc(y, scores) == pytest.approx(average_precision_score(y, scores))


def test_deterministic_calibration_gives_the_realized_figures_exactly() -> None:
    # Labels a step function of the score, ties across the alert boundary: estimate and
    # realized count the same alerted rows (metrics.alerted), so they agree exactly.
    scores = np.array([0.2, 0.9, 0.9, 0.9, 0.4, 0.6, 0.1, 0.6, 0.3, 0.95])
    y = (scores > 0.5).astype(float)
    step = fit_calibration(scores, y)
    for budget in (0.1, 0.2, 0.3, 0.5, 0.7):
        est = estimate_binary(scores, step, budget, "pr_auc", draws=4)
        assert est.precision == pytest.approx(precision_at_budget(y, scores, budget))
        assert est.recall == pytest.approx(recall_at_budget(y, scores, budget))
        assert est.metric == pytest.approx(pr_auc(y, scores)) and est.metric_sd == 0


def test_fit_recovers_a_known_probability_curve() -> None:
    rng = np.random.default_rng(7)
    scores = rng.random(200_000)
    labels = (rng.random(200_000) < scores ** 2).astype(float)
    cal = fit_calibration(scores, labels)
    grid = np.linspace(0.05, 0.95, 19)
    assert np.abs(cal.apply(grid) - grid ** 2).max() < 0.02
    assert cal.holdout_rows == 200_000 and cal.positive_rate == pytest.approx(labels.mean())
    # Outside the holdout's scores the end probabilities apply.
    assert cal.apply(np.array([-1.0, 2.0])).tolist() == [cal.probabilities[0],
                                                          cal.probabilities[-1]]


def test_nothing_estimated_without_calibration_or_for_a_regression_metric() -> None:
    scores = np.array([0.1, 0.4, 0.9])
    # Regression versions carry no calibration: CBPE needs class probabilities.
    assert estimate_binary(scores, None, 0.5, "wape") == NOT_ESTIMATED
    assert estimate_binary(np.array([]), IDENTITY, 0.5, "pr_auc") == NOT_ESTIMATED
    assert estimate_binary(np.array([0.1, np.nan]), IDENTITY, 0.5, "pr_auc") == NOT_ESTIMATED
    est = estimate_binary(scores, IDENTITY, 0.5, "mae")
    assert est.metric is None and est.precision == pytest.approx(0.65)
    # Every calibrated probability 0: no positive in any draw, pr_auc is undefined.
    zero = Calibration((0.0, 1.0), (0.0, 0.0), holdout_rows=10, positive_rate=0.0)
    est = estimate_binary(scores, zero, 0.5, "pr_auc")
    assert est.metric is None and est.recall is None and est.precision == 0


def test_estimate_imports_nothing_heavy() -> None:
    # Scoring and monitoring import it; sklearn and scipy load only when fitting or ranking.
    code = ("import sys, ctpipe.estimate; "
            "heavy = {'prefect', 'mlflow', 'lightgbm', 'sklearn', 'scipy'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- serialisation


def test_calibration_round_trips_through_json() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random(5000) / 3  # thresholds are arbitrary doubles, not short decimals
    cal = fit_calibration(scores, (rng.random(5000) < scores).astype(float))
    text = cal.to_json()
    back = Calibration.from_json(text)
    assert back == cal
    probe = rng.random(1000)
    assert np.array_equal(back.apply(probe), cal.apply(probe))
    assert json.loads(text)["holdout_rows"] == 5000
    with pytest.raises(ValueError, match="format"):
        Calibration.from_json(json.dumps({"format": "other", "thresholds": [0.0]}))
    with pytest.raises(ValueError, match="must increase"):
        Calibration((0.5, 0.1), (0.1, 0.2), holdout_rows=2, positive_rate=0.5)
    with pytest.raises(ValueError, match="one label per score"):
        fit_calibration(np.array([0.1, 0.2]), np.array([1.0]))


# ----------------------------------------------------------------------------- a stationary stream

BATCHES, ROWS, BUDGET = 20, 20_000, 0.01  # 200 alerts per batch


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores of a miscalibrated model and labels drawn from the true probabilities.

    The model's score is sigmoid(1.5 z - 1.5), the true probability sigmoid(2 z - 5) of the
    same z: the ranking is right, the scores are far too high (mean 0.25, base rate 0.03).
    """
    z = rng.standard_normal(ROWS)
    labels = (rng.random(ROWS) < _sigmoid(2.0 * z - 5.0)).astype(float)
    return _sigmoid(1.5 * z - 1.5), labels


def test_estimate_tracks_realized_precision_recall_and_pr_auc_on_a_stationary_stream() -> None:
    """Calibrated on one holdout batch, the estimate tracks 20 later batches; the same
    estimator fed the raw scores (the miscalibrated model's own "probabilities") and a
    score-blind one (the holdout's positive rate as precision) miss by far more.

    The bounds come from the sampling noise a perfect estimator still sees. Precision at the
    budget is a share of k = 200 alerts: its sd is at most sqrt(0.25 / k) = 0.035 per batch,
    and the calibration's level over the alert region was itself learnt from ~200 holdout rows,
    another 0.035 shared by every batch. |error| then has sd <= 0.05 and mean <= 0.04; the bound
    is twice that, 0.08 (a seed sweep of 40 such streams gave median 0.031, max 0.079). Recall
    at the budget is precision * k / P with P ~ 650 positives per batch: 0.08 * 200 / 650 =
    0.025, plus P's own noise (4 %), so 0.04. pr_auc: four times the sd that label noise alone
    gives the realized value (the estimate's metric_sd, ~0.016), about 0.06 (seed sweep: median
    0.018, max 0.065, the calibration's top block learnt from few positives).
    """
    rng = np.random.default_rng(2026)
    calibration = fit_calibration(*_batch(rng))
    raw = IDENTITY  # the raw scores taken as probabilities
    rows = []
    for _ in range(BATCHES):
        scores, y = _batch(rng)
        est = estimate_binary(scores, calibration, BUDGET, "pr_auc")
        blind = estimate_binary(scores, raw, BUDGET, "pr_auc")
        rows.append([precision_at_budget(y, scores, BUDGET), est.precision, blind.precision,
                     recall_at_budget(y, scores, BUDGET), est.recall, blind.recall,
                     pr_auc(y, scores), est.metric, blind.metric, est.metric_sd])
    a = np.array(rows)

    def mae(realized: int, estimated: int) -> float:
        return float(np.abs(a[:, realized] - a[:, estimated]).mean())

    precision_bound = 2 * math.sqrt(2 / math.pi) * math.sqrt(2 * 0.25 / (ROWS * BUDGET))
    assert precision_bound == pytest.approx(0.08, abs=0.001)
    pr_auc_bound = 4 * float(a[:, 9].mean())
    assert 0.05 < pr_auc_bound < 0.07
    figures = {"precision": (mae(0, 1), mae(0, 2), precision_bound),
               "recall": (mae(3, 4), mae(3, 5), 0.04),
               "pr_auc": (mae(6, 7), mae(6, 8), pr_auc_bound)}
    print({k: [round(v, 4) for v in f] for k, f in figures.items()})
    for name, (calibrated, uncalibrated, bound) in figures.items():
        assert calibrated < bound, (name, calibrated, bound)
        assert uncalibrated > 3 * bound, (name, uncalibrated, bound)
    # Ignoring the scores altogether fails too: the base rate is no precision at the top.
    assert float(np.abs(a[:, 0] - calibration.positive_rate).mean()) > 5 * precision_bound


# ----------------------------------------------------------------------------- with a version

DAYS = [dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(7)]


def _fraud_runtime() -> Runtime:
    """The fraud config on 7 days of 5,000 rows: 4 labelled (label_delay 3), 3 train, 1 holdout."""
    cfg = load_config("fraud")
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={
        "window": 4, "holdout": 1, "min_train_rows": 1000, "params": {"n_estimators": 30}})})
    store = MemoryStore(cfg)
    for i, d in enumerate(DAYS):
        store.add(d, generate_day("fraud", i, d, rows=5000))
    return Runtime(config=cfg, model_name="m-fraud-est", store=store,
                   models=registry.ModelRegistry("m-fraud-est"), publish=lambda decision: None)


def test_binary_version_stores_its_holdout_calibration_and_regression_none(
        ctpipe_home: Path) -> None:
    rt = _fraud_runtime()
    # The retraining step's own path: train, then the gate's evaluation on the holdout.
    candidate = train.train_candidate(rt, DAYS[-1])
    gated = train.gate_challenger(rt.config, candidate.model, None, candidate.holdout)
    challenger, finite, calibration = gated.challenger, gated.finite, gated.calibration
    assert finite and calibration is not None
    scores = candidate.model.predict(candidate.holdout)
    labels = candidate.holdout["is_fraud"].to_numpy()
    assert calibration == fit_calibration(scores, labels)
    assert calibration.holdout_rows == len(candidate.holdout) == 5000
    assert challenger.value == pytest.approx(pr_auc(labels.astype(float), scores))
    candidate.model.calibration = calibration

    cfg, frame, demand_model = _trained()
    demand_profile = build_profile(frame, cfg.features.numeric, cfg.features.categorical)
    with mlflow.start_run(experiment_id=registry.ensure_experiment("ctpipe-test")):
        binary = registry.register_candidate("m-fraud-est", candidate.model, candidate.profile,
                                             candidate.outputs, Lineage(),
                                             sample=candidate.holdout)
        regression = registry.register_candidate("m-demand-est", demand_model, demand_profile,
                                                 demand_profile, Lineage(), sample=frame)
    assert "artifacts/calibration.json" in json.loads(binary.tags["artifact_files"])
    assert "calibration" not in regression.tags["artifact_files"]

    loaded = registry.load_version("m-fraud-est", binary.version)
    assert loaded.model.calibration == calibration
    assert registry.load_version("m-demand-est", regression.version).model.calibration is None
    # The served model still answers raw scores, not calibrated probabilities.
    served = registry.load_pyfunc("m-fraud-est", binary.version)
    assert np.allclose(np.asarray(served.predict(candidate.holdout.head(500))), scores[:500])

    # The calibration is inside the hashed model directory: changing it refuses the version.
    uri = registry.client().get_model_version_download_uri("m-fraud-est", str(binary.version))
    stored = Path(unquote(urlparse(uri).path)) / "artifacts" / "calibration.json"
    stored.write_text(stored.read_text().replace('"holdout_rows": 5000', '"holdout_rows": 9'))
    with pytest.raises(IntegrityError, match="calibration.json"):
        registry.load_version("m-fraud-est", binary.version)
