"""Scenarios of the reference simulators: each changes what it should and nothing else.

Measured on generated frames with the pipeline's own blocks (ctpipe.drift.detect_drift,
ctpipe.training.train_model, ctpipe.evaluation.evaluate) and the reference configs; no Prefect.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import pandas as pd
import pytest

from ctpipe.config import UseCaseConfig, load_config
from ctpipe.drift import build_profile, detect_drift
from ctpipe.evaluation import evaluate, relative_gain
from ctpipe.landing import BATCH_KEY
from ctpipe.metrics import get_metric
from ctpipe.simulate import (
    SCENARIOS,
    SEASONAL_PERIOD,
    check_scenario,
    generate_day,
    scenarios_for,
    shift_intensity,
)
from ctpipe.training import ScoringModel, train_model

START = dt.date(2025, 8, 4)  # a Monday; no holiday in the 8 weeks after it
SHIFT = 21  # the first shifted batch
ROWS = {"demand": None, "fraud": 4000}  # fraud at 4,000 rows a day keeps the fits fast
USE_CASES = ("demand", "fraud")
FEATURE_DRIFT_FREE = ("none", "concept")


def day_of(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


@cache
def gen(use_case: str, i: int, scenario: str = "none", shift_day: int | None = SHIFT
        ) -> pd.DataFrame:
    frame = generate_day(use_case, i, day_of(i), rows=ROWS[use_case], shift_day=shift_day,
                         scenario=scenario)
    return frame.assign(**{BATCH_KEY: day_of(i).isoformat()})


def frames(use_case: str, days: range, scenario: str = "none") -> pd.DataFrame:
    return pd.concat([gen(use_case, i, scenario) for i in days], ignore_index=True)


@cache
def config(use_case: str) -> UseCaseConfig:
    return load_config(use_case)


def features(use_case: str) -> list[str]:
    cfg = config(use_case)
    return [*cfg.features.numeric, *cfg.features.categorical]


def profile_of(use_case: str, frame: pd.DataFrame):  # noqa: ANN201 - ReferenceProfile
    cfg = config(use_case)
    return build_profile(frame, cfg.features.numeric, cfg.features.categorical)


def train_days(end: int, use_case: str) -> range:
    """The training part of the config's window for a fit whose holdout starts at ``end``."""
    cfg = config(use_case)
    return range(end - (cfg.training.window - cfg.training.holdout), end)


@cache
def fitted(use_case: str, scenario: str, end: int) -> ScoringModel:
    return train_model(config(use_case), frames(use_case, train_days(end, use_case), scenario))


def metric(use_case: str, model: ScoringModel, frame: pd.DataFrame) -> float:
    cfg = config(use_case)
    return evaluate(cfg, frame[cfg.data.target].to_numpy(), model.predict(frame), frame).value


def refit_gain(use_case: str, scenario: str) -> float:
    """How much better than the champion (fitted before the shift) a retrain 12 batches later
    is, on the 3 batches after it: the gate's ``beats_champion`` figure."""
    holdout = frames(use_case, range(SHIFT + 12, SHIFT + 15), scenario)
    champion = metric(use_case, fitted(use_case, "none", SHIFT), holdout)
    challenger = metric(use_case, fitted(use_case, scenario, SHIFT + 12), holdout)
    higher = get_metric(config(use_case).evaluation.metric).higher_is_better
    return relative_gain(challenger, champion, higher)


# --------------------------------------------------------------------------- names


def test_every_scenario_is_simulated_for_both_use_cases_but_bad_promotion() -> None:
    assert scenarios_for("demand") == ["shift", "none", "gradual", "seasonal", "covariate",
                                       "concept"]
    assert scenarios_for("fraud") == list(SCENARIOS)


def test_an_unknown_scenario_is_refused_in_one_line_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError) as exc:
        check_scenario("demand", "drift")
    assert str(exc.value) == ("unknown scenario 'drift' for demand; allowed: shift, none, "
                              "gradual, seasonal, covariate, concept")
    with pytest.raises(ValueError) as exc:
        check_scenario("demand", "bad-promotion")
    assert str(exc.value) == ("scenario 'bad-promotion' is simulated for fraud only, not "
                              "'demand'; allowed for demand: shift, none, gradual, seasonal, "
                              "covariate, concept")
    assert "\n" not in str(exc.value)


def test_the_command_line_help_names_every_scenario() -> None:
    from ctpipe.cli_base import _SCENARIO_HELP

    for name in SCENARIOS:
        assert f"{name}:" in _SCENARIO_HELP, name
    assert f"period {SEASONAL_PERIOD}" in _SCENARIO_HELP


# --------------------------------------------------------------------------- none


@pytest.mark.parametrize("use_case", USE_CASES)
def test_none_is_the_control_stream_and_shows_no_drift(use_case: str) -> None:
    for i in (SHIFT - 1, SHIFT, SHIFT + 9):
        pd.testing.assert_frame_equal(gen(use_case, i, "none"), gen(use_case, i, "shift", None))
    reference = profile_of(use_case, frames(use_case, train_days(SHIFT, use_case)))
    for i in range(SHIFT, SHIFT + 14, 3):
        report = detect_drift(reference, gen(use_case, i, "none"), config(use_case).drift)
        assert not report.dataset_drift, (i, report.drifted_features)


# --------------------------------------------------------------------------- concept


@pytest.mark.parametrize("use_case", USE_CASES)
def test_concept_keeps_every_input_value_and_changes_the_target(use_case: str) -> None:
    target = config(use_case).data.target
    for i in (SHIFT, SHIFT + 5):
        control, concept = gen(use_case, i, "none"), gen(use_case, i, "concept")
        pd.testing.assert_frame_equal(concept.drop(columns=target),
                                      control.drop(columns=target))
        assert (concept[target] != control[target]).mean() > 0.002
    pd.testing.assert_frame_equal(gen(use_case, SHIFT - 1, "concept"),
                                  gen(use_case, SHIFT - 1, "none"))
    reference = profile_of(use_case, frames(use_case, train_days(SHIFT, use_case), "concept"))
    for i in range(SHIFT, SHIFT + 14, 3):
        assert not detect_drift(reference, gen(use_case, i, "concept"),
                                config(use_case).drift).dataset_drift


@pytest.mark.slow
@pytest.mark.parametrize("use_case", USE_CASES)
def test_concept_makes_a_model_fitted_before_measurably_worse(use_case: str) -> None:
    after = range(SHIFT + 12, SHIFT + 15)
    champion = fitted(use_case, "none", SHIFT)
    as_before = metric(use_case, champion, frames(use_case, after, "none"))
    concept = metric(use_case, champion, frames(use_case, after, "concept"))
    higher = get_metric(config(use_case).evaluation.metric).higher_is_better
    assert relative_gain(concept, as_before, higher) < -0.4  # far worse on the same inputs
    assert refit_gain(use_case, "concept") > 0.3  # and a retrain learns the new relation


# --------------------------------------------------------------------------- covariate


@pytest.mark.parametrize("use_case", USE_CASES)
def test_covariate_moves_the_inputs_enough_to_flag_drift(use_case: str) -> None:
    pd.testing.assert_frame_equal(gen(use_case, SHIFT - 1, "covariate"),
                                  gen(use_case, SHIFT - 1, "none"))
    reference = profile_of(use_case, frames(use_case, train_days(SHIFT, use_case)))
    for i in range(SHIFT, SHIFT + 14, 3):
        report = detect_drift(reference, gen(use_case, i, "covariate"), config(use_case).drift)
        assert report.dataset_drift, i


@pytest.mark.slow
@pytest.mark.parametrize("use_case", USE_CASES)
def test_covariate_gives_a_retrain_no_edge_over_the_champion(use_case: str) -> None:
    # Two fits on different windows differ by a few per cent even when nothing changes (demand
    # more than the gate's margin): the shift must add no more than the margin to that.
    margin = config(use_case).gate.min_improvement
    assert refit_gain(use_case, "covariate") < max(refit_gain(use_case, "none"), 0) + margin
    if use_case == "demand":  # WAPE does not depend on a base rate: same level as the control
        after = range(SHIFT + 12, SHIFT + 15)
        champion = fitted(use_case, "none", SHIFT)
        assert metric(use_case, champion, frames(use_case, after, "covariate")) == pytest.approx(
            metric(use_case, champion, frames(use_case, after, "none")), rel=0.1)


def test_covariate_mix_moves_demand_accounts_and_fraud_channels() -> None:
    before, after = frames("demand", range(14, 21)), frames("demand", range(21, 28), "covariate")
    share = lambda f, col, v: (f[col] == v).mean()  # noqa: E731
    assert share(after, "lane", "HK-ZH") > 1.5 * share(before, "lane", "HK-ZH")
    assert share(after, "commodity", "consumer_goods") < 0.7 * share(before, "commodity",
                                                                      "consumer_goods")
    # The same bookings -> tonnes relation per commodity.
    for name in ("electronics", "machinery"):
        ratio = [f.loc[f["commodity"] == name, "volume_tonnes"].sum()
                 / f.loc[f["commodity"] == name, "advance_bookings"].sum() for f in (before, after)]
        assert ratio[1] == pytest.approx(ratio[0], rel=0.1), name
    fb, fa = frames("fraud", range(18, 21)), frames("fraud", range(21, 24), "covariate")
    assert share(fa, "channel", "wallet") > 2 * share(fb, "channel", "wallet")
    assert share(fa, "channel", "pos") < 0.7 * share(fb, "channel", "pos")


# --------------------------------------------------------------------------- seasonal


@pytest.mark.parametrize("use_case", USE_CASES)
def test_seasonal_repeats_with_its_period_from_the_first_batch(use_case: str) -> None:
    cfg = config(use_case)
    assert cfg.training.window - cfg.training.holdout >= SEASONAL_PERIOD  # whole cycles
    # No change point: the same stream whatever shift_day.
    pd.testing.assert_frame_equal(gen(use_case, 3, "seasonal", None), gen(use_case, 3,
                                                                          "seasonal"))
    for i in (14, 17):
        same_phase = detect_drift(profile_of(use_case, gen(use_case, i - SEASONAL_PERIOD,
                                                           "seasonal")),
                                  gen(use_case, i, "seasonal"), cfg.drift)
        assert not same_phase.dataset_drift, (i, same_phase.drifted_features)
    # Peak (phase 0) against trough (phase 3): the cycle is big enough to look like drift.
    peak_vs_trough = detect_drift(profile_of(use_case, gen(use_case, 14, "seasonal")),
                                  gen(use_case, 17, "seasonal"), cfg.drift)
    assert peak_vs_trough.dataset_drift


def test_seasonal_cycle_moves_inputs_and_target_with_the_stated_period() -> None:
    def weekly(use_case: str, column: str, value: str | None = None) -> np.ndarray:
        out = []
        for i in range(28):
            frame = gen(use_case, i, "seasonal")
            out.append(frame[column].mean() if value is None else (frame[column] == value).mean())
        return np.array(out)

    for series in (weekly("demand", "volume_tonnes"), weekly("demand", "advance_bookings"),
                   weekly("demand", "commodity", "food"), weekly("fraud", "channel", "pos")):
        by_phase = series.reshape(4, SEASONAL_PERIOD)
        spread = by_phase.mean(axis=0).max() - by_phase.mean(axis=0).min()
        # Each phase comes back alike every period; the phases differ far more than that.
        assert by_phase.std(axis=0).max() < 0.35 * spread
    commodities = [gen("demand", i, "seasonal")["commodity"].value_counts() for i in (2, 9, 16)]
    pd.testing.assert_series_equal(commodities[0], commodities[1])  # the same quotas
    pd.testing.assert_series_equal(commodities[0], commodities[2])


# --------------------------------------------------------------------------- gradual


def test_gradual_intensity_ramps_linearly_to_the_full_shift() -> None:
    ramp = [shift_intensity("gradual", i, 10, ramp_days=10) for i in range(8, 22)]
    assert ramp[:2] == [0.0, 0.0] and ramp[2] == pytest.approx(0.1)
    assert all(b - a == pytest.approx(0.1) for a, b in zip(ramp[2:11], ramp[3:12], strict=True))
    assert ramp[11:] == [1.0, 1.0, 1.0]
    assert shift_intensity("shift", 10, 10) == 1.0 and shift_intensity("none", 15, 10) == 0.0


@pytest.mark.parametrize("use_case", USE_CASES)
def test_gradual_grows_monotonically_into_the_shift(use_case: str) -> None:
    last = SHIFT + 9  # the tenth batch of the ramp carries all of it
    for i in (SHIFT - 1, last, last + 3):
        pd.testing.assert_frame_equal(gen(use_case, i, "gradual"), gen(use_case, i, "shift"))
    if use_case == "demand":
        def measure(frame: pd.DataFrame) -> float:
            return (frame["commodity"] == "medical_supplies").mean()
    else:
        def measure(frame: pd.DataFrame) -> float:
            return ((frame["channel"] == "wallet") & (frame["jurisdiction"] == "SG")).mean()
    ramp = [measure(gen(use_case, i, "gradual")) for i in range(SHIFT - 1, last + 1)]
    assert all(b >= a - 0.015 for a, b in zip(ramp, ramp[1:], strict=False)), ramp
    assert ramp[0] < ramp[3] < ramp[6] < ramp[-1]
    assert ramp[5] == pytest.approx((ramp[0] + ramp[-1]) / 2, abs=0.25 * (ramp[-1] - ramp[0]))


# --------------------------------------------------------------------------- the policy
# The cycle's drift decision replayed without Prefect: the champion fitted at the cold start
# (training window, then holdout, as ctpipe.training.split_window), its profile, and for each
# later batch the data-drift report (with the batches before it, for windowed and seasonal
# features), the pooled performance check on the batches whose labels have arrived, and
# ctpipe.decisions.retraining.retrain_reason on both.


def retrain_calls(use_case: str, scenario: str, days: range,
                  **drift: object) -> dict[int, str | None]:
    from ctpipe.decisions.performance import judge_performance, pool_labelled
    from ctpipe.decisions.retraining import retrain_reason
    from ctpipe.drift.performance import bootstrap_metric
    from ctpipe.evaluation import metric_fn

    cfg = config(use_case)
    settings = cfg.drift.model_copy(update=drift)
    holdout_start = SHIFT - cfg.training.holdout
    champion = fitted(use_case, scenario, holdout_start)
    profile = profile_of(use_case, frames(use_case, train_days(holdout_start, use_case),
                                          scenario))
    baseline = metric(use_case, champion, frames(use_case, range(holdout_start, SHIFT),
                                                 scenario))
    spec = get_metric(cfg.evaluation.metric)
    batches = [gen(use_case, i, scenario) for i in range(days.stop)]
    calls = {}
    for d in days:
        report = detect_drift(profile, batches[d], settings, history=batches[:d])
        labelled = range(SHIFT, d - cfg.data.label_delay + 1)
        pooled = pool_labelled([(day_of(i), len(batches[i])) for i in labelled],
                               window=settings.performance_window,
                               min_rows=settings.min_performance_rows)
        rows = pd.concat([batches[(p - START).days] for p in pooled]) if pooled else None
        interval = None if rows is None else bootstrap_metric(
            rows[cfg.data.target].to_numpy(), champion.predict(rows), metric_fn(cfg),
            resamples=settings.performance_resamples, confidence=settings.performance_confidence,
            seed=d, name=cfg.evaluation.metric)
        performance = judge_performance(
            batches=[p.isoformat() for p in pooled], metric=cfg.evaluation.metric,
            baseline=baseline, interval=interval, rows=0 if rows is None else len(rows),
            min_rows=settings.min_performance_rows, tolerance=settings.performance_tolerance,
            higher_is_better=spec.higher_is_better)
        calls[d] = retrain_reason(report=report, performance=performance,
                                  triggers=settings.triggers).reason
    return calls


@pytest.mark.slow
@pytest.mark.parametrize("use_case", USE_CASES)
def test_policy_never_retrains_on_the_control_stream(use_case: str) -> None:
    calls = retrain_calls(use_case, "none", range(SHIFT, SHIFT + 14))
    assert [d for d, why in calls.items() if why] == [], calls


@pytest.mark.slow
@pytest.mark.parametrize("use_case", USE_CASES)
def test_policy_does_not_retrain_every_season_with_the_seasonal_reference(use_case: str) -> None:
    days = range(SHIFT, SHIFT + 2 * SEASONAL_PERIOD)
    seasonal = retrain_calls(use_case, "seasonal", days, seasonal_period=SEASONAL_PERIOD)
    assert [d for d, why in seasonal.items() if why] == [], seasonal
    # Without it the peaks and troughs look like drift: the setting is what saves the retrains.
    naive = retrain_calls(use_case, "seasonal", days, seasonal_period=None)
    assert sum(why is not None for why in naive.values()) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("use_case", USE_CASES)
def test_policy_sees_a_concept_shift_through_performance_only(use_case: str) -> None:
    calls = retrain_calls(use_case, "concept", range(SHIFT, SHIFT + 10))
    first = min((d for d, why in calls.items() if why), default=None)
    assert first is not None, calls
    assert first - SHIFT <= config(use_case).data.label_delay + 3  # labels, then a few batches
    assert "performance" in (calls[first] or "") and "data drift" not in (calls[first] or "")
