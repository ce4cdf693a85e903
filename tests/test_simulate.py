"""The synthetic generators: reproducible, schema- and rule-conformant, and the scenario bites."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctpipe.config import UseCaseConfig, load_config
from ctpipe.simulate import generate_day, holiday_for

START = dt.date(2025, 3, 3)  # a Monday with no holiday nearby
USE_CASES = ("demand", "fraud")


def day_of(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def gen(use_case: str, i: int, **kwargs: object) -> pd.DataFrame:
    return generate_day(use_case, i, day_of(i), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def configs() -> dict[str, UseCaseConfig]:
    return {name: load_config(name) for name in USE_CASES}


def expected_columns(config: UseCaseConfig) -> list[str]:
    return [config.data.time_column, config.data.id_column, *config.features.numeric,
            *config.features.categorical, config.data.target]


def assert_valid(config: UseCaseConfig, frame: pd.DataFrame) -> None:
    """The rules the pipeline's validation step enforces, checked straight from the config."""
    rules = config.validation
    assert len(frame) >= rules.min_rows
    for col in expected_columns(config):
        allowed = rules.null_fraction.get(col, rules.max_null_fraction)
        assert frame[col].isna().mean() <= allowed, col
    for col, rng in rules.ranges.items():
        values = frame[col].dropna()
        if rng.min is not None:
            assert values.min() >= rng.min, col
        if rng.max is not None:
            assert values.max() <= rng.max, col
    for col, domain in rules.domains.items():
        assert set(frame[col].unique()) <= set(domain), col


@pytest.mark.parametrize("use_case", USE_CASES)
def test_same_arguments_give_identical_frames(use_case: str) -> None:
    a = gen(use_case, 3, shift_day=2, rows=2000)
    b = gen(use_case, 3, shift_day=2, rows=2000)
    pd.testing.assert_frame_equal(a, b)
    other_seed = gen(use_case, 3, shift_day=2, rows=2000, seed=8)
    target = "volume_tonnes" if use_case == "demand" else "amount"
    assert not np.array_equal(a[target].to_numpy(), other_seed[target].to_numpy())


@pytest.mark.parametrize("use_case", USE_CASES)
def test_days_before_the_shift_match_the_control_stream(use_case: str) -> None:
    pd.testing.assert_frame_equal(gen(use_case, 9, shift_day=10), gen(use_case, 9))
    after = gen(use_case, 10, shift_day=10)
    assert not after.equals(gen(use_case, 10))


@pytest.mark.parametrize("use_case", USE_CASES)
def test_columns_and_dtypes_follow_the_config(use_case: str, configs) -> None:
    config = configs[use_case]
    frame = gen(use_case, 0, shift_day=0)
    assert list(frame.columns) == expected_columns(config)
    assert pd.api.types.is_datetime64_dtype(frame[config.data.time_column])
    assert frame[config.data.id_column].dtype == "int64"
    for col in config.features.numeric:
        assert pd.api.types.is_numeric_dtype(frame[col]), col
    for col in config.features.categorical:
        assert frame[col].dtype == "str", col
    target = frame[config.data.target]
    if config.data.task == "binary":
        assert target.dtype == "int64" and set(target.unique()) <= {0, 1}
    else:
        assert target.dtype == "float64" and (target >= 0).all()


@pytest.mark.parametrize("use_case", USE_CASES)
@pytest.mark.parametrize("shift_day", [None, 0])
def test_values_satisfy_the_validation_rules(use_case: str, shift_day: int | None,
                                             configs) -> None:
    for i in (0, 5, 6):
        assert_valid(configs[use_case], gen(use_case, i, shift_day=shift_day))


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(use_case=st.sampled_from(USE_CASES), day_index=st.integers(0, 2000),
       seed=st.integers(0, 10**6), shifted=st.booleans())
def test_rules_hold_for_any_day_and_seed(use_case: str, day_index: int, seed: int, shifted: bool,
                                         configs) -> None:
    # Any seed, any date (typhoons, holidays, Lunar New Year), either side of the shift.
    frame = generate_day(use_case, day_index, dt.date(2024, 1, 1) + dt.timedelta(day_index),
                         rows=None if use_case == "demand" else 3000,
                         shift_day=0 if shifted else None, seed=seed)
    assert_valid(configs[use_case], frame)


def test_time_columns_sit_inside_the_day() -> None:
    day = day_of(4)
    demand = gen("demand", 4)
    assert (demand["date"] == pd.Timestamp(day)).all()
    fraud = gen("fraud", 4)
    times = fraud["event_time"]
    assert times.min() >= pd.Timestamp(day)
    assert times.max() < pd.Timestamp(day + dt.timedelta(days=1))
    assert times.is_monotonic_increasing
    assert (times.dt.hour == fraud["hour"]).all()


@pytest.mark.parametrize("use_case", USE_CASES)
def test_ids_are_unique_across_days(use_case: str, configs) -> None:
    id_col = configs[use_case].data.id_column
    ids = pd.concat([gen(use_case, 0)[id_col], gen(use_case, 1)[id_col]])
    assert ids.is_unique


@pytest.mark.parametrize(("use_case", "rows"), [
    ("demand", None), ("demand", 100), ("demand", 500), ("fraud", None), ("fraud", 1234),
])
def test_rows_parameter_is_respected(use_case: str, rows: int | None) -> None:
    default = {"demand": 240, "fraud": 20_000}[use_case]
    assert len(gen(use_case, 2, rows=rows)) == (rows or default)


def test_unknown_use_case_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="demand, fraud"):
        generate_day("churn", 0, START)


def test_demand_scenario_changes_the_bookings_to_volume_relationship() -> None:
    pre = pd.concat([gen("demand", i, shift_day=10) for i in range(3, 10)])
    post = pd.concat([gen("demand", i, shift_day=10) for i in range(10, 17)])

    def tonnes_per_booking(frame: pd.DataFrame, commodity: str) -> float:
        rows = frame[frame["commodity"] == commodity]
        return rows["volume_tonnes"].sum() / rows["advance_bookings"].sum()

    assert tonnes_per_booking(post, "medical_supplies") > 2 * tonnes_per_booking(
        pre, "medical_supplies")
    assert tonnes_per_booking(post, "consumer_goods") < 0.5 * tonnes_per_booking(
        pre, "consumer_goods")
    assert tonnes_per_booking(post, "electronics") == pytest.approx(
        tonnes_per_booking(pre, "electronics"), rel=0.15)
    # The marginals move too: more medical accounts, longer border waits.
    assert (post["commodity"] == "medical_supplies").mean() > 1.5 * (
        pre["commodity"] == "medical_supplies").mean()
    assert post["border_wait_minutes"].median() > pre["border_wait_minutes"].median() + 10


def test_fraud_scenario_adds_wallet_fraud_in_singapore() -> None:
    pre = pd.concat([gen("fraud", i, shift_day=3) for i in range(0, 3)])
    post = pd.concat([gen("fraud", i, shift_day=3) for i in range(3, 6)])

    def wallet_sg(frame: pd.DataFrame) -> pd.Series:
        return (frame["channel"] == "wallet") & (frame["jurisdiction"] == "SG")

    assert 0.004 < pre["is_fraud"].mean() < 0.012
    assert post.loc[wallet_sg(post), "is_fraud"].mean() > 3 * pre.loc[
        wallet_sg(pre), "is_fraud"].mean()
    assert post.loc[wallet_sg(post), "is_fraud"].mean() > 4 * pre["is_fraud"].mean()
    assert wallet_sg(post).mean() > 2 * wallet_sg(pre).mean()
    # The new fraud is small and slow: unlike the established patterns the old model knows.
    new = post[wallet_sg(post) & (post["is_fraud"] == 1)]
    old = pre[pre["is_fraud"] == 1]
    assert new["amount_vs_avg_30d"].median() < 0.5 * old["amount_vs_avg_30d"].median()
    assert new["txn_count_1h"].mean() < old["txn_count_1h"].mean()


def test_fraud_control_stream_is_stationary() -> None:
    early, late = gen("fraud", 5), gen("fraud", 40)
    for col in ("channel", "jurisdiction", "merchant_category", "cross_border"):
        shares = pd.concat([early[col].value_counts(normalize=True),
                            late[col].value_counts(normalize=True)], axis=1).fillna(0)
        assert (shares.iloc[:, 0] - shares.iloc[:, 1]).abs().max() < 0.015, col
    for col in ("amount", "txn_count_24h", "card_age_days", "distance_from_home_km"):
        qs = [0.25, 0.5, 0.75]
        assert np.allclose(early[col].quantile(qs), late[col].quantile(qs), rtol=0.1), col


def test_demand_control_stream_is_stationary() -> None:
    # Days 5 and 40 are the same weekday, so the weekly pattern cancels out.
    early, late = gen("demand", 5), gen("demand", 40)
    for col in ("lane", "commodity"):
        pd.testing.assert_series_equal(early[col].value_counts(normalize=True).sort_index(),
                                       late[col].value_counts(normalize=True).sort_index())
    for col in ("advance_bookings", "border_wait_minutes"):
        assert early[col].median() == pytest.approx(late[col].median(), rel=0.1), col


def test_holiday_calendar() -> None:
    assert holiday_for(dt.date(2025, 10, 1)) == "both"
    assert holiday_for(dt.date(2025, 10, 3)) == "mainland"
    assert holiday_for(dt.date(2025, 12, 25)) == "hk"
    assert holiday_for(dt.date(2025, 1, 29)) == "both"  # Lunar New Year
    assert holiday_for(dt.date(2025, 3, 12)) == "none"
    assert (gen("demand", 0)["holiday"] == holiday_for(START)).all()


# --------------------------------------------------------------------------- bad-promotion

CAMPAIGN = {"shift_day": 10, "scenario": "bad-promotion", "campaign_days": 4}  # days 10..13


def ring_segment(frame: pd.DataFrame) -> pd.Series:
    return (frame["channel"] == "wallet") & (frame["merchant_category"] == "online_services")


def test_bad_promotion_outside_the_campaign_is_the_control_stream() -> None:
    for i in (9, 14, 20):  # before it, the day it ends, later
        pd.testing.assert_frame_equal(gen("fraud", i, **CAMPAIGN), gen("fraud", i))
    assert not gen("fraud", 13, **CAMPAIGN).equals(gen("fraud", 13))
    # shift_day=None is the control stream, whatever the scenario.
    pd.testing.assert_frame_equal(gen("fraud", 3, scenario="bad-promotion"), gen("fraud", 3))


def test_bad_promotion_campaign_hits_one_normally_legitimate_segment() -> None:
    before = pd.concat([gen("fraud", i, **CAMPAIGN) for i in range(6, 10)])
    during = pd.concat([gen("fraud", i, **CAMPAIGN) for i in range(10, 14)])
    after = pd.concat([gen("fraud", i, **CAMPAIGN) for i in range(14, 18)])
    for frame in (before, after):
        assert ring_segment(frame).sum() > 1000  # busy ...
        assert frame.loc[ring_segment(frame), "is_fraud"].mean() < 0.003  # ... and legitimate
    rate = during.loc[ring_segment(during), "is_fraud"].mean()
    assert rate > 0.8
    assert rate > 50 * before["is_fraud"].mean()
    # The ring replaces legitimate rows only: every established fraud of the day is still there.
    control = pd.concat([gen("fraud", i) for i in range(10, 14)])
    ring = ring_segment(during) & (during["is_fraud"] == 1)
    assert during["is_fraud"].sum() - ring.sum() == control["is_fraud"].sum()
    assert ring_segment(during).mean() > 5 * ring_segment(before).mean()


def test_bad_promotion_ring_looks_like_the_segments_legitimate_evening_traffic() -> None:
    during = pd.concat([gen("fraud", i, **CAMPAIGN) for i in range(10, 14)])
    control = pd.concat([gen("fraud", i) for i in range(10, 14)])
    ring = during[ring_segment(during) & (during["is_fraud"] == 1)]
    legit = control[ring_segment(control) & control["hour"].between(18, 23)]
    assert ring["hour"].between(18, 23).all()
    for col in ("amount", "amount_vs_avg_30d", "txn_count_1h", "txn_count_24h",
                "card_age_days", "distance_from_home_km"):
        qs = [0.25, 0.5, 0.75]
        assert np.allclose(ring[col].quantile(qs), legit[col].quantile(qs), rtol=0.25,
                           atol=1), col


def test_bad_promotion_day_is_the_control_day_with_rows_replaced(configs) -> None:
    control = gen("fraud", 11)
    day = gen("fraud", 11, **CAMPAIGN)
    assert_valid(configs["fraud"], day)
    assert len(day) == len(control)
    assert day["event_time"].is_monotonic_increasing
    assert (day["transaction_id"] == control["transaction_id"]).all()
    ring = ring_segment(day) & (day["is_fraud"] == 1)
    kept = day[~ring].drop(columns="transaction_id")
    matched = kept.merge(control.drop(columns="transaction_id"), how="left", indicator=True)
    assert (matched["_merge"] == "both").all()
    assert len(kept) == len(control) - ring.sum()


def test_bad_promotion_campaign_drifts_the_marginals(configs) -> None:
    from ctpipe.drift import build_profile, detect_drift

    config = configs["fraud"]
    reference = pd.concat([gen("fraud", i) for i in range(5, 8)])
    profile = build_profile(reference, config.features.numeric, config.features.categorical)
    assert detect_drift(profile, gen("fraud", 12, **CAMPAIGN), config.drift).dataset_drift
    assert not detect_drift(profile, gen("fraud", 14, **CAMPAIGN), config.drift).dataset_drift


def test_scenarios_are_checked() -> None:
    with pytest.raises(ValueError, match="^scenario 'bad-promotion' is simulated for fraud "
                                         "only, not 'demand'; allowed for demand: shift, none, "
                                         "gradual, seasonal, covariate, concept$"):
        gen("demand", 12, **CAMPAIGN)
    with pytest.raises(ValueError, match="^unknown scenario 'drift' for fraud; allowed: shift, "
                                         "none, gradual, seasonal, covariate, concept, "
                                         "bad-promotion$"):
        gen("fraud", 12, shift_day=10, scenario="drift")
    with pytest.raises(ValueError, match="campaign_days must be at least 1"):
        gen("fraud", 12, shift_day=10, scenario="bad-promotion", campaign_days=0)
    with pytest.raises(ValueError, match="ramp_days must be at least 1"):
        gen("fraud", 12, shift_day=10, scenario="gradual", ramp_days=0)


@pytest.mark.parametrize("scenario", ["none", "gradual", "seasonal", "covariate", "concept"])
@pytest.mark.parametrize("use_case", USE_CASES)
def test_every_scenario_satisfies_the_validation_rules(use_case: str, scenario: str,
                                                       configs) -> None:
    for i in (4, 5, 9):
        frame = gen(use_case, i, shift_day=4, scenario=scenario,
                    rows=None if use_case == "demand" else 3000)
        assert list(frame.columns) == expected_columns(configs[use_case])
        assert_valid(configs[use_case], frame)
        assert frame[configs[use_case].data.id_column].is_unique
        if use_case == "fraud":
            assert frame["event_time"].is_monotonic_increasing


@pytest.mark.parametrize("scenario", ["gradual", "seasonal", "covariate", "concept"])
@pytest.mark.parametrize("use_case", USE_CASES)
def test_every_scenario_is_reproducible(use_case: str, scenario: str) -> None:
    kwargs = {"shift_day": 2, "scenario": scenario, "rows": 1000}
    pd.testing.assert_frame_equal(gen(use_case, 5, **kwargs), gen(use_case, 5, **kwargs))
    other = gen(use_case, 5, seed=8, **kwargs)
    assert not gen(use_case, 5, **kwargs).equals(other)
