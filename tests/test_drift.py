"""Drift engine: every statistic against scipy (1e-9), edge cases, policy, report, profile I/O."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from ctpipe.config import DriftConfig
from ctpipe.drift import (
    NULL_KEY,
    DriftReport,
    FeatureDrift,
    ReferenceProfile,
    build_profile,
    detect_drift,
    ks_2samp_sorted,
    ks_statistic,
    performance_drift,
    wasserstein_sorted,
)

TOL = {"rel_tol": 1e-9, "abs_tol": 1e-12}
# database=None: no .hypothesis folder in the repo; the seeds are printed on failure anyway.
FAST = settings(max_examples=50, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LARGE = settings(max_examples=12, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
# scipy's exact KS p-value gives up on some tie patterns and says so; that is scipy's answer too.
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation:RuntimeWarning")


# --------------------------------------------------------------------------- strategies

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
tied = st.integers(-3, 3).map(float)  # few distinct values: ties within and across samples


@st.composite
def column(draw: st.DrawFn, min_size: int = 1, max_size: int = 60) -> np.ndarray:
    """A numeric column with ties, NaNs and (for infinite) +-inf, in random order."""
    element = draw(st.sampled_from([tied, finite, st.one_of(tied, finite)]))
    missing = st.sampled_from([math.nan, math.inf, -math.inf])
    values = draw(st.lists(st.one_of(element, element, element, missing),
                           min_size=min_size, max_size=max_size))
    return np.array(values, dtype=np.float64)


@st.composite
def large_pair(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Samples past scipy's exact-KS limit (10,000), continuous or heavily tied, unequal sizes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n1, n2 = draw(st.integers(10_001, 25_000)), draw(st.integers(1, 25_000))
    distinct = draw(st.sampled_from([None, 2, 7, 500]))
    shift = draw(st.sampled_from([0.0, 0.01, 0.3]))
    if distinct is None:
        a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    else:
        a = rng.integers(0, distinct, n1).astype(float)
        b = (rng.integers(0, distinct, n2) + (rng.random(n2) < shift)).astype(float)
    return (a, b) if draw(st.booleans()) else (b, a)


categories = st.lists(st.one_of(st.sampled_from(["a", "b", "c", "d", "e"]), st.none()),
                      min_size=1, max_size=80)


def clean(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def one_feature(ref: np.ndarray | list, cur: np.ndarray | list, *, kind: str = "numeric",
                test: str | None = None, **config: object) -> FeatureDrift:
    """Run the public API on a one-column frame and return that column's result."""
    if kind == "numeric":
        ref_frame, cur_frame = pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})
        profile = build_profile(ref_frame, ["x"], [])
    else:
        ref_frame = pd.DataFrame({"x": pd.Series(ref, dtype="str")})
        cur_frame = pd.DataFrame({"x": pd.Series(cur, dtype="str")})
        profile = build_profile(ref_frame, [], ["x"])
    per_feature = {"x": test} if test else {}
    report = detect_drift(profile, cur_frame, DriftConfig(per_feature=per_feature, **config))
    (result,) = report.features
    return result


def shares(values: list, keys: list[str]) -> np.ndarray:
    counts = pd.Series(values, dtype="str").value_counts()
    return np.array([counts.get(k, 0) for k in keys], dtype=float) / counts.sum()


# --------------------------------------------------------------------------- scipy equivalence


@FAST
@given(column(), column())
def test_ks_matches_scipy_with_ties_and_missing(ref: np.ndarray, cur: np.ndarray) -> None:
    a, b = clean(ref), clean(cur)
    assume(a.size and b.size)
    result = one_feature(ref, cur, test="ks")
    expected = stats.ks_2samp(a, b)
    assert math.isclose(result.statistic, expected.statistic, **TOL)
    assert math.isclose(result.p_value, expected.pvalue, **TOL)
    assert result.drifted == (expected.pvalue < 0.05)
    assert (result.n_reference, result.n_current) == (a.size, b.size)
    assert (result.nan_reference, result.nan_current) == (ref.size - a.size, cur.size - b.size)


@FAST
@given(column(), column())
def test_ks_statistic_alone_is_scipys(ref: np.ndarray, cur: np.ndarray) -> None:
    a, b = np.sort(clean(ref)), np.sort(clean(cur))
    assume(a.size and b.size)
    expected = stats.ks_2samp(a, b).statistic  # up to the order of one subtraction
    assert math.isclose(ks_statistic(a, b), expected, **TOL)
    assert math.isclose(ks_statistic(b, a), expected, **TOL)


@LARGE
@given(large_pair())
def test_ks_asymptotic_path_matches_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    statistic, p_value = ks_2samp_sorted(np.sort(a), np.sort(b))
    expected = stats.ks_2samp(a, b)
    assert math.isclose(statistic, expected.statistic, **TOL)
    assert math.isclose(p_value, expected.pvalue, **TOL)


@FAST
@given(column(), column())
def test_wasserstein_matches_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    a, b = clean(ref), clean(cur)
    assume(a.size and b.size)
    raw = stats.wasserstein_distance(a, b)
    assert math.isclose(wasserstein_sorted(np.sort(a), np.sort(b)), raw, **TOL)
    result = one_feature(ref, cur, test="wasserstein")
    # No spread (np.std of a constant can round to 1e-11 instead of 0, hence ptp): raw distance,
    # drifted iff the current values differ at all.
    if np.ptp(a) == 0 or np.std(a) == 0:
        assert math.isclose(result.statistic, raw, **TOL)
        assert result.threshold == 0.0 and result.drifted == (raw > 0)
        assert "raw distance" in result.note
    else:
        assert math.isclose(result.statistic, raw / np.std(a), **TOL)
        assert result.drifted == (result.statistic >= 0.1)
    assert result.p_value is None


@LARGE
@given(large_pair())
def test_wasserstein_large_unequal_sizes_matches_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    assert math.isclose(wasserstein_sorted(np.sort(a), np.sort(b)),
                        stats.wasserstein_distance(a, b), **TOL)


@FAST
@given(categories, categories)
def test_chisquare_matches_scipy_as_evidently(ref: list, cur: list) -> None:
    ref_clean = [v for v in ref if v is not None]
    cur_clean = [v for v in cur if v is not None]
    keys = sorted(set(ref_clean) | set(cur_clean))
    assume(ref_clean and cur_clean and len(keys) > 1)
    result = one_feature(ref, cur, kind="categorical", test="chisquare")
    observed = shares(cur_clean, keys) * len(cur_clean)
    expected_counts = shares(ref_clean, keys) * len(cur_clean)  # reference share * n_current
    with np.errstate(divide="ignore"):
        expected = stats.chisquare(observed, expected_counts)
    assert math.isclose(result.statistic, expected.statistic, **TOL)
    assert math.isclose(result.p_value, expected.pvalue, **TOL)
    assert (result.nan_reference, result.nan_current) == (ref.count(None), cur.count(None))
    unseen = set(cur_clean) - set(ref_clean)
    if unseen:  # unseen categories are drift evidence: zero expected count, p = 0
        assert math.isinf(result.statistic) and result.p_value == 0.0 and result.drifted
        assert "not in reference" in result.note


@FAST
@given(categories, categories)
def test_jensenshannon_matches_scipy(ref: list, cur: list) -> None:
    ref_clean = [v for v in ref if v is not None]
    cur_clean = [v for v in cur if v is not None]
    assume(ref_clean and cur_clean)
    keys = sorted(set(ref_clean) | set(cur_clean))
    result = one_feature(ref, cur, kind="categorical", test="jensenshannon")
    expected = distance.jensenshannon(shares(ref_clean, keys), shares(cur_clean, keys))
    assert math.isclose(result.statistic, expected, **TOL)
    assert result.statistic <= math.sqrt(math.log(2)) + 1e-12  # natural log, as Evidently
    assert result.drifted == (result.statistic >= 0.1)


def _psi(r: np.ndarray, c: np.ndarray) -> float:
    """Independent PSI: Evidently's zero filling, then sum (r - c) ln(r / c)."""
    def fill(p: np.ndarray) -> np.ndarray:
        low = p[p > 0].min()
        return np.where(p == 0, low / 1e6 if low <= 1e-4 else 1e-4, p)
    r, c = fill(r), fill(c)
    return float(np.sum((r - c) * np.log(r / c)))


@FAST
@given(categories, categories)
def test_categorical_psi(ref: list, cur: list) -> None:
    ref_clean = [v for v in ref if v is not None]
    cur_clean = [v for v in cur if v is not None]
    assume(ref_clean and cur_clean)
    keys = sorted(set(ref_clean) | set(cur_clean))
    result = one_feature(ref, cur, kind="categorical", test="psi")
    expected = _psi(shares(ref_clean, keys), shares(cur_clean, keys))
    assert math.isclose(result.statistic, expected, **TOL)
    assert result.drifted == (expected >= 0.2)


@FAST
@given(column(), column())
def test_numeric_psi_on_reference_deciles(ref: np.ndarray, cur: np.ndarray) -> None:
    a, b = clean(ref), clean(cur)
    assume(a.size and b.size)
    result = one_feature(ref, cur, test="psi")
    ordered = np.sort(a)  # edges: smallest reference value x with F(x) >= k/10
    edges = np.unique([ordered[math.ceil(Fraction(k, 10) * a.size) - 1] for k in range(1, 10)])
    bins = np.concatenate(([-np.inf], edges, [np.inf]))
    ref_bins = np.bincount(pd.cut(a, bins, right=True, labels=False), minlength=bins.size - 1)
    cur_bins = np.bincount(pd.cut(b, bins, right=True, labels=False), minlength=bins.size - 1)
    expected = _psi(ref_bins / a.size, cur_bins / b.size)
    assert math.isclose(result.statistic, expected, **TOL)


@FAST
@given(column(max_size=40), column(max_size=40))
def test_numeric_chisquare_treats_distinct_values_as_categories(ref: np.ndarray,
                                                                 cur: np.ndarray) -> None:
    a, b = clean(ref), clean(cur)
    keys = np.union1d(a, b)
    assume(a.size and b.size and keys.size > 1)
    result = one_feature(ref, cur, test="chisquare")
    observed = np.array([(b == k).sum() for k in keys], dtype=float)
    expected_counts = np.array([(a == k).sum() for k in keys]) * (b.size / a.size)
    with np.errstate(divide="ignore"):
        expected = stats.chisquare(observed, expected_counts)
    assert math.isclose(result.statistic, expected.statistic, **TOL)
    assert math.isclose(result.p_value, expected.pvalue, **TOL)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("test", ["ks", "wasserstein", "psi", "chisquare", "jensenshannon"])
def test_empty_current_column_is_not_tested_and_says_so(test: str) -> None:
    result = one_feature([1.0, 2.0, 3.0], [np.nan, np.inf, np.nan], test=test)
    assert not result.tested and not result.drifted and math.isnan(result.statistic)
    assert "empty current column" in result.note
    assert (result.n_current, result.nan_current) == (0, 3)
    assert result.to_record()["statistic"] is None


def test_empty_reference_and_empty_categorical() -> None:
    assert "empty reference column" in one_feature([np.nan, np.nan], [1.0], test="ks").note
    result = one_feature(["a", "b"], [None, None], kind="categorical")
    assert not result.tested and "empty current column" in result.note
    assert result.nan_current == 2


def test_untested_features_leave_the_drift_share_denominator() -> None:
    ref = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0)})
    cur = pd.DataFrame({"x": np.arange(50.0) + 100, "y": np.full(50, np.nan)})
    report = detect_drift(build_profile(ref, ["x", "y"], []), cur, DriftConfig(drift_share=0.9))
    assert report.n_tested == 1 and report.drift_share == 1.0 and report.dataset_drift
    assert report.drifted_features == ["x"]


def test_constant_reference_column_wasserstein() -> None:
    same = one_feature(np.full(20, 5.0), np.full(7, 5.0), test="wasserstein")
    assert same.statistic == 0.0 and not same.drifted and same.threshold == 0.0
    assert "constant reference" in same.note
    moved = one_feature(np.full(20, 5.0), [5.0] * 99 + [5.5], test="wasserstein")
    assert moved.drifted and math.isclose(moved.statistic, 0.005, **TOL)


def test_reference_std_underflow_does_not_divide_by_zero() -> None:
    result = one_feature([0.0, 1e-200, 1e-200], [0.0, 0.0, 1.0], test="wasserstein")
    assert result.threshold == 0.0 and result.drifted and "underflows" in result.note
    assert math.isclose(result.statistic, stats.wasserstein_distance([0, 1e-200, 1e-200],
                                                                     [0, 0, 1]), **TOL)


def test_constant_columns_ks_and_psi() -> None:
    ks = one_feature(np.full(10, 1.0), np.full(12, 1.0), test="ks")
    assert (ks.statistic, ks.p_value, ks.drifted) == (0.0, 1.0, False)
    psi = one_feature(np.full(10, 1.0), np.full(12, 1.0), test="psi")
    assert psi.statistic == 0.0 and not psi.drifted


def test_single_category_on_both_sides() -> None:
    result = one_feature(["a"] * 5, ["a"] * 9, kind="categorical", test="chisquare")
    assert (result.statistic, result.p_value, result.drifted) == (0.0, 1.0, False)
    assert "single category" in result.note


def test_integer_codes_match_across_float_and_nullable_columns() -> None:
    ref = pd.DataFrame({"mcc": np.array([5411, 5411, 7995, 5812] * 30)})
    cur = pd.DataFrame({"mcc": [5411.0, np.nan, 7995.0, 5812.0] * 30})  # NaN made it float
    report = detect_drift(build_profile(ref, [], ["mcc"]), cur, DriftConfig())
    (result,) = report.features
    assert "not in reference" not in result.note and result.nan_current == 30
    nullable = pd.DataFrame({"mcc": pd.array([5411, None, 7995, 5812] * 30, dtype="Int64")})
    assert detect_drift(build_profile(ref, [], ["mcc"]), nullable,
                        DriftConfig()).features[0].statistic == result.statistic


def test_categorical_dtype_unused_categories_are_not_categories() -> None:
    dtype = pd.CategoricalDtype(["web", "pos", "atm", "unused"])
    ref = pd.DataFrame({"ch": pd.Series(["web", "pos", None, "atm"] * 10, dtype=dtype)})
    cur = pd.DataFrame({"ch": pd.Series(["web", "pos", "pos", "atm"] * 5, dtype=dtype)})
    profile = build_profile(ref, [], ["ch"])
    assert profile.categorical["ch"] == {"web": 10, "pos": 10, "atm": 10, NULL_KEY: 10}
    (result,) = detect_drift(profile, cur, DriftConfig()).features
    expected = stats.chisquare([5, 10, 5], [20 / 3] * 3)
    assert math.isclose(result.p_value, expected.pvalue, **TOL) and result.nan_reference == 10


def test_arrow_string_counts_on_sliced_chunked_and_object_columns() -> None:
    values = ["a", None, "b", NULL_KEY, "", "é€", "a", "a\x00"] * 7
    base = pd.Series(values, dtype="str")
    for series in (base, base.iloc[3:], pd.concat([base, base.iloc[:5]], ignore_index=True),
                   pd.Series(values, dtype=object)):
        expected: dict[str, int] = {}
        for v in series.tolist():
            key = NULL_KEY if v is None or (isinstance(v, float) and math.isnan(v)) else v
            expected[key] = expected.get(key, 0) + 1
        profile = build_profile(pd.DataFrame({"c": series}), [], ["c"])
        assert profile.categorical["c"] == expected


def test_repeated_checks_are_identical_and_leave_the_batch_untouched() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=3000), "y": rng.normal(size=3000)})
    cur = pd.DataFrame({"x": rng.normal(0.2, 1.0, 2500),
                        "y": np.r_[rng.normal(size=2499), np.nan]})
    before = cur.copy()
    profile = build_profile(ref, ["x", "y"], [])
    config = DriftConfig(numeric_test="wasserstein")
    first = detect_drift(profile, cur, config)
    second = detect_drift(profile, cur, config)  # cached reference std, reused sort buffer
    assert first.to_records() == second.to_records()
    pd.testing.assert_frame_equal(cur, before)
    for result in first.features:
        a, b = ref[result.feature].to_numpy(), clean(cur[result.feature].to_numpy())
        expected = stats.wasserstein_distance(a, b) / np.std(a)
        assert math.isclose(result.statistic, expected, **TOL)


def test_numeric_input_dtypes() -> None:
    ref = pd.DataFrame({"x": pd.array([1, 2, None, 4], dtype="Int64"),
                        "b": [True, False, True, True]})
    profile = build_profile(ref, ["x", "b"], [])
    assert profile.numeric["x"].tolist() == [1.0, 2.0, 4.0] and profile.numeric_nan["x"] == 1
    assert profile.numeric["b"].tolist() == [0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="'x'"):
        build_profile(pd.DataFrame({"x": pd.Series(["a", "b"], dtype="str")}), ["x"], [])


def test_missing_columns_and_bad_tests_raise_naming_the_column() -> None:
    profile = build_profile(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}), ["x"], ["c"])
    with pytest.raises(ValueError, match="'c'"):
        detect_drift(profile, pd.DataFrame({"x": [1.0]}), DriftConfig())
    with pytest.raises(ValueError, match="'zz'"):
        detect_drift(profile, pd.DataFrame({"x": [1.0], "c": ["a"]}),
                     DriftConfig(per_feature={"zz": "ks"}))
    with pytest.raises(ValueError, match="'c'"):
        detect_drift(profile, pd.DataFrame({"x": [1.0], "c": ["a"]}),
                     DriftConfig(per_feature={"c": "wasserstein"}))
    with pytest.raises(ValueError, match="'nope'"):
        build_profile(pd.DataFrame({"x": [1.0]}), ["x", "nope"], [])


# --------------------------------------------------------------------------- policy


def _policy_frames(n: int, extra_nan: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.normal(size=n), np.full(extra_nan, np.nan)])
    c = np.concatenate([rng.choice(["a", "b"], n), np.full(extra_nan, None)])
    ref = pd.DataFrame({"x": x, "c": pd.Series(c, dtype="str")})
    return ref, ref.iloc[: max(n // 2, 1)]


@pytest.mark.parametrize(("n", "numeric", "categorical"), [
    (1000, "ks", "chisquare"), (1001, "wasserstein", "jensenshannon")])
def test_auto_policy_switches_at_small_reference_rows(n: int, numeric: str,
                                                      categorical: str) -> None:
    ref, cur = _policy_frames(n, extra_nan=50)  # missing values do not count as rows
    report = detect_drift(build_profile(ref, ["x"], ["c"]), cur, DriftConfig())
    assert [f.test for f in report.features] == [numeric, categorical]
    thresholds = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1}
    assert [f.threshold for f in report.features] == [thresholds[numeric],
                                                      thresholds[categorical]]
    assert all((f.p_value is None) == (f.test not in ("ks", "chisquare"))
               for f in report.features)


def test_explicit_tests_and_per_feature_override() -> None:
    ref, cur = _policy_frames(200)
    profile = build_profile(ref, ["x"], ["c"])
    report = detect_drift(profile, cur, DriftConfig(small_reference_rows=10))
    assert [f.test for f in report.features] == ["wasserstein", "jensenshannon"]
    report = detect_drift(profile, cur, DriftConfig(numeric_test="psi", categorical_test="psi"))
    assert [(f.test, f.threshold) for f in report.features] == [("psi", 0.2), ("psi", 0.2)]
    report = detect_drift(profile, cur, DriftConfig(numeric_test="psi",
                                                    per_feature={"x": "ks", "c": "psi"}))
    assert [f.test for f in report.features] == ["ks", "psi"]


def test_dataset_drift_share_threshold() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({f"x{i}": rng.normal(size=500) for i in range(4)})
    cur = pd.DataFrame({f"x{i}": rng.normal(3.0 if i < 2 else 0.0, 1.0, 400) for i in range(4)})
    profile = build_profile(ref, list(ref.columns), [])
    at_half = detect_drift(profile, cur, DriftConfig(drift_share=0.5))
    assert at_half.drifted_features == ["x0", "x1"] and at_half.drift_share == 0.5
    assert at_half.dataset_drift and at_half.threshold_share == 0.5
    above = detect_drift(profile, cur, DriftConfig(drift_share=0.51))
    assert not above.dataset_drift and above.drift_share == 0.5


@pytest.mark.parametrize("n", [600, 20_000])  # small (KS/chi-square) and large (distances)
def test_shift_is_flagged_and_same_distribution_is_not(n: int) -> None:
    rng = np.random.default_rng(11)

    def batch(size: int, shift: float) -> pd.DataFrame:
        p = np.array([0.5, 0.3, 0.2]) if not shift else np.array([0.2, 0.3, 0.5])
        return pd.DataFrame({
            "amount": rng.lognormal(3.0 + shift, 1.0, size).round(2),
            "hour": rng.integers(0, 24, size).astype(float),
            "channel": pd.Series(rng.choice(["web", "pos", "atm"], size, p=p), dtype="str")})

    profile = build_profile(batch(n, 0.0), ["amount", "hour"], ["channel"])
    same = detect_drift(profile, batch(n, 0.0), DriftConfig())
    assert same.drifted_features == [] and not same.dataset_drift
    shifted = detect_drift(profile, batch(n, 0.5), DriftConfig())
    assert shifted.drifted_features == ["amount", "channel"] and shifted.dataset_drift
    assert "median" in shifted.features[0].note and "largest shift" in shifted.features[2].note


# --------------------------------------------------------------------------- report and profile


def test_report_records_and_markdown() -> None:
    result = one_feature(["a"] * 30, ["a"] * 20 + ["zz"] * 10, kind="categorical")
    assert result.test == "chisquare" and math.isinf(result.statistic)
    report = DriftReport(features=[result], drift_share=1.0, threshold_share=0.5,
                         dataset_drift=True)
    records = report.to_records()
    json.dumps(records, allow_nan=False)  # strictly JSON: inf/NaN became None
    assert records[0]["statistic"] is None and records[0]["p_value"] == 0.0
    assert records[0]["drifted"] is True and records[0]["feature"] == "x"
    text = report.summary_markdown()
    assert "Dataset drift detected" in text and "| x | chisquare |" in text
    assert "'zz'" in text


def test_profile_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame({
        "cont": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "hour": rng.integers(0, 24, n).astype(float),  # stored as runs
        "all missing": np.full(n, np.nan),
        "ünï/cödé": pd.Series(rng.choice(["a", "b", None], n), dtype="str"),
    })
    profile = build_profile(frame, ["cont", "hour", "all missing"], ["ünï/cödé"])
    assert profile.categorical["ünï/cödé"][NULL_KEY] == frame["ünï/cödé"].isna().sum()
    path = tmp_path / "profile.bin"
    profile.save(path)
    assert path.exists() and not (tmp_path / "profile.bin.npz").exists()
    with np.load(path, allow_pickle=False) as archive:  # no pickle inside
        assert "meta" in archive.files
    loaded = ReferenceProfile.load(path)
    assert loaded.n_rows == n and loaded.features == profile.features
    assert loaded.numeric_nan == profile.numeric_nan
    assert loaded.categorical == profile.categorical
    for name, values in profile.numeric.items():
        assert np.array_equal(loaded.numeric[name], values) and loaded.numeric[name].dtype == float
    current = frame.sample(frac=0.5, random_state=1)
    config = DriftConfig(small_reference_rows=100)
    assert (detect_drift(loaded, current, config).to_records()
            == detect_drift(profile, current, config).to_records())


def test_profile_load_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, data=np.arange(3))
    with pytest.raises(ValueError, match="not a ctpipe reference profile"):
        ReferenceProfile.load(path)


# --------------------------------------------------------------------------- performance drift


def test_performance_drift_both_directions() -> None:
    drifted, degradation = performance_drift(0.80, 0.50, higher_is_better=True, tolerance=0.3)
    assert drifted and math.isclose(degradation, 0.375)
    drifted, degradation = performance_drift(0.80, 0.90, higher_is_better=True, tolerance=0.3)
    assert not drifted and math.isclose(degradation, -0.125)
    drifted, degradation = performance_drift(10.0, 14.0, higher_is_better=False, tolerance=0.3)
    assert drifted and math.isclose(degradation, 0.4)
    drifted, degradation = performance_drift(10.0, 12.0, higher_is_better=False, tolerance=0.3)
    assert not drifted and math.isclose(degradation, 0.2)
    assert performance_drift(-2.0, -3.0, higher_is_better=True, tolerance=0.3) == (True, 0.5)
    assert performance_drift(0.0, 0.1, higher_is_better=False, tolerance=0.3) == (True, math.inf)
    assert performance_drift(0.0, 0.0, higher_is_better=False, tolerance=0.3) == (False, 0.0)
    with pytest.raises(ValueError):
        performance_drift(math.nan, 0.5, higher_is_better=True, tolerance=0.3)
