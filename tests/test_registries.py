"""The metric and drift-test registries: one entry makes a metric or a test usable from a config,
unknown or misplaced names are refused with the known ones listed, direction lives in one place."""

from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from ctpipe import evaluation
from ctpipe.config import ConfigError, DataConfig, DriftConfig, GateConfig, parse_config
from ctpipe.decisions.gate import decide
from ctpipe.drift import (
    STATTESTS,
    Outcome,
    StatTest,
    build_profile,
    detect_drift,
    get_stattest,
    register_stattest,
    stattest_names,
)
from ctpipe.evaluation import Evaluation, evaluate, metric_fn
from ctpipe.metrics import METRICS, Metric, get_metric, metric_names, register_metric

CONFIG = """
name: toy
data: {time_column: t, target: y, task: TASK}
features: {numeric: [x], categorical: [c]}
evaluation: {metric: METRIC}
gate: {floor: 0.5}
"""


def config_text(metric: str = "wape", task: str = "regression", drift: str = "") -> str:
    text = CONFIG.replace("TASK", task).replace("METRIC", metric)
    return text + (f"drift: {drift}\n" if drift else "")


@pytest.fixture(autouse=True)
def restore_registries() -> Iterator[None]:
    """Whatever a test registers is gone afterwards (the registries are module globals)."""
    tests, metrics = dict(STATTESTS), dict(METRICS)
    yield
    STATTESTS.clear()
    STATTESTS.update(tests)
    METRICS.clear()
    METRICS.update(metrics)


# --------------------------------------------------------------------------- metrics


def _max_error(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.max(np.abs(y - pred)))


def test_one_metric_entry_makes_it_usable_from_a_config() -> None:
    register_metric(Metric("max_error", ("regression",), higher_is_better=False, fn=_max_error))
    cfg = parse_config(config_text("max_error"), Path("toy.yaml"))
    assert cfg.evaluation.metric == "max_error" and cfg.higher_is_better is False
    y, pred = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 0.0])
    ev = evaluate(cfg, y, pred, pd.DataFrame({"x": [0, 0, 0]}))
    assert (ev.metric, ev.value) == ("max_error", 3.0)
    assert ev.extra == {"mae": pytest.approx(3.5 / 3)}  # the task's extra metrics, as before
    gate = GateConfig(floor=2.0, min_improvement=0.0)
    assert not decide(gate, ev, None).passed  # lower is better: 3.0 is above the 2.0 ceiling


def test_a_budget_metric_gets_the_configured_budget() -> None:
    def top_share(y: np.ndarray, score: np.ndarray, budget: float) -> float:
        return budget  # enough to see which budget arrives

    register_metric(Metric("top_share", ("binary",), higher_is_better=True, fn=top_share,
                           needs_budget=True))
    text = config_text("top_share", "binary").replace("metric: top_share}",
                                                      "metric: top_share, alert_budget: 0.02}")
    cfg = parse_config(text, Path("toy.yaml"))
    assert metric_fn(cfg)(np.array([0.0, 1.0]), np.array([0.1, 0.9])) == 0.02
    assert cfg.higher_is_better is True


def test_unknown_metric_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_text("f1"), Path("toy.yaml"))
    message = str(err.value)
    assert message.startswith("toy.yaml: evaluation: metric: unknown metric 'f1'"), message
    assert f"known: {', '.join(metric_names())}" in message
    assert "wape, mae, rmse, pr_auc" in message


def test_metric_for_another_task_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_text("pr_auc", "regression"), Path("toy.yaml"))
    assert ("evaluation.metric does not fit data.task: metric 'pr_auc' is for binary tasks, "
            "not regression; metrics for regression: wape, mae, rmse") in str(err.value)
    with pytest.raises(ConfigError, match="metrics for binary: pr_auc, recall_at_budget, roc_auc"):
        parse_config(config_text("wape", "binary"), Path("toy.yaml"))


def test_direction_is_declared_once_in_the_registry() -> None:
    assert not hasattr(evaluation, "HIGHER_IS_BETTER")
    assert {n for n, m in METRICS.items() if m.higher_is_better} == {
        "pr_auc", "roc_auc", "recall_at_budget"}
    cfg = parse_config(config_text("rmse"), Path("toy.yaml"))
    gate = GateConfig(floor=0.5, min_improvement=0.0)
    challenger = Evaluation("rmse", 0.4, 100)
    assert cfg.higher_is_better is False and decide(gate, challenger, None).passed
    # Flip the one entry: the config, the gate (and so performance drift) all follow it.
    flipped = Metric("rmse", ("regression",), higher_is_better=True, fn=get_metric("rmse").fn)
    register_metric(flipped, replace=True)
    assert cfg.higher_is_better is True
    assert not decide(gate, challenger, None).passed  # now 0.4 is below a 0.5 minimum


def test_every_metric_names_known_tasks_and_duplicates_are_refused() -> None:
    tasks = set(typing.get_args(DataConfig.model_fields["task"].annotation))
    assert all(set(m.tasks) <= tasks for m in METRICS.values())
    with pytest.raises(ValueError, match="'wape' is already registered"):
        register_metric(Metric("wape", ("regression",), higher_is_better=False, fn=_max_error))
    with pytest.raises(ValueError, match="at least one task"):
        Metric("nothing", (), higher_is_better=True, fn=_max_error)


def test_config_and_metrics_import_without_sklearn() -> None:
    code = ("import sys, ctpipe.config, ctpipe.metrics; "
            "assert 'sklearn' not in sys.modules, 'sklearn imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- drift tests


def _mean_shift(ref: np.ndarray, cur: np.ndarray,
                reference_std: Callable[[], float]) -> Outcome:
    return Outcome(abs(float(cur.mean()) - float(ref.mean())))


def _always_p(f_ref: np.ndarray, f_cur: np.ndarray) -> Outcome:
    return Outcome(1.0, p_value=0.02, note="toy")


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=500),
                        "c": pd.Series(rng.choice(["a", "b"], 500), dtype="str")})
    cur = pd.DataFrame({"x": rng.normal(1.0, 1.0, 400),
                        "c": pd.Series(rng.choice(["a", "b"], 400), dtype="str")})
    return ref, cur


def test_one_drift_test_entry_makes_it_usable_from_a_config() -> None:
    register_stattest(StatTest("mean_shift", decision="statistic", threshold=0.5,
                               numeric=_mean_shift))
    assert get_stattest("mean_shift").kinds == ("numeric",)
    cfg = parse_config(config_text(drift="{numeric_test: mean_shift}"), Path("toy.yaml"))
    ref, cur = _frames()
    report = detect_drift(build_profile(ref, ["x"], ["c"]), cur, cfg.drift)
    x, c = report.features
    assert (x.test, x.threshold, x.p_value) == ("mean_shift", 0.5, None)
    assert x.statistic == pytest.approx(abs(cur["x"].mean() - ref["x"].mean())) and x.drifted
    assert x.note.startswith("median ")  # the report explains a drifted numeric column
    assert c.test == "chisquare"  # categorical columns keep the auto policy


def test_a_new_p_value_test_can_share_the_p_value_setting() -> None:
    register_stattest(StatTest("always_p", decision="p_value", threshold="p_value",
                               categorical=_always_p))
    ref, cur = _frames()
    profile = build_profile(ref, ["x"], ["c"])
    loose = detect_drift(profile, cur, DriftConfig(per_feature={"c": "always_p"}))
    (c,) = [f for f in loose.features if f.feature == "c"]
    assert (c.test, c.threshold, c.p_value, c.drifted) == ("always_p", 0.05, 0.02, True)
    assert c.note.startswith("toy; largest shift 'a'")
    strict = detect_drift(profile, cur, DriftConfig(categorical_test="always_p", p_value=0.01))
    (c,) = [f for f in strict.features if f.feature == "c"]
    assert (c.threshold, c.drifted, c.note) == (0.01, False, "toy")
    with pytest.raises(ValueError, match="'always_p' does not apply to numeric feature 'x'"):
        detect_drift(profile, cur, DriftConfig(per_feature={"x": "always_p"}))


@pytest.mark.parametrize(("drift", "message"), [
    ({"numeric_test": "kss"}, "numeric_test: unknown drift test 'kss'; known: ks, wasserstein, "
                              "chisquare, jensenshannon, psi"),
    ({"categorical_test": "ks"}, "categorical_test: drift test 'ks' does not apply to "
                                 "categorical columns; tests for categorical columns: "
                                 "chisquare, jensenshannon, psi"),
    ({"numeric_test": "auto", "per_feature": {"x": "nope"}},
     "per_feature.x: unknown drift test 'nope'"),
])
def test_unknown_or_misplaced_drift_tests_are_refused(drift: dict, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        DriftConfig(**drift)
    assert message in str(err.value)
    text = config_text(drift="{" + ", ".join(f"{k}: {v}" for k, v in drift.items()) + "}")
    with pytest.raises(ConfigError, match=r"^toy\.yaml: drift: "):
        parse_config(text, Path("toy.yaml"))


def test_bad_drift_test_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="'psi' is already registered"):
        register_stattest(StatTest("psi", decision="statistic", threshold=0.2,
                                   numeric=_mean_shift))
    with pytest.raises(ValueError, match="'psi_treshold' is not a DriftConfig setting"):
        StatTest("toy", decision="statistic", threshold="psi_treshold", numeric=_mean_shift)
    with pytest.raises(ValueError, match="needs a numeric or a categorical function"):
        StatTest("toy", decision="statistic", threshold=0.1)
    with pytest.raises(ValueError, match="'auto' is not allowed"):
        StatTest("auto", decision="statistic", threshold=0.1, numeric=_mean_shift)
    with pytest.raises(ValueError, match="decision must be"):
        StatTest("toy", decision="pvalue", threshold=0.1, numeric=_mean_shift)  # type: ignore[arg-type]


def test_builtin_tests_keep_their_kinds_rules_and_settings() -> None:
    """The table drift.py hard-coded before the registry (NUMERIC_TESTS and friends)."""
    assert stattest_names("numeric") == ["ks", "wasserstein", "chisquare", "jensenshannon", "psi"]
    assert stattest_names("categorical") == ["chisquare", "jensenshannon", "psi"]
    assert {n: (t.decision, t.threshold) for n, t in STATTESTS.items()} == {
        "ks": ("p_value", "p_value"), "chisquare": ("p_value", "p_value"),
        "wasserstein": ("statistic", "distance_threshold"),
        "jensenshannon": ("statistic", "distance_threshold"),
        "psi": ("statistic", "psi_threshold")}


def test_default_drift_config_imports_no_drift_code() -> None:
    code = ("import sys; from ctpipe.config import DriftConfig, load_config; DriftConfig(); "
            "load_config('fraud'); load_config('demand'); "
            "assert 'ctpipe.drift' not in sys.modules and 'scipy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
