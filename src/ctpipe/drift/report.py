"""The drift check and its report: a reference profile against a new batch, feature by feature."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ctpipe.config import DriftConfig
from ctpipe.drift.columns import NULL_KEY, category_counts, require_columns, sorted_finite
from ctpipe.drift.profile import ReferenceProfile
from ctpipe.drift.stattests import Outcome, StatTest, choose_test, join_notes


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric" | "categorical"
    test: str  # a registered drift test (ctpipe.drift.stattests)
    statistic: float  # NaN when the feature could not be tested (see note)
    threshold: float
    drifted: bool
    p_value: float | None  # tests that decide on a p-value (ks, chisquare) only
    n_reference: int  # non-missing values compared
    n_current: int
    nan_reference: int
    nan_current: int
    note: str = ""

    @property
    def tested(self) -> bool:
        return not math.isnan(self.statistic)

    def to_record(self) -> dict[str, Any]:
        return {
            "feature": self.feature, "kind": self.kind, "test": self.test,
            "statistic": _json_float(self.statistic), "threshold": float(self.threshold),
            "p_value": None if self.p_value is None else _json_float(self.p_value),
            "drifted": bool(self.drifted), "tested": self.tested,
            "n_reference": int(self.n_reference), "n_current": int(self.n_current),
            "nan_reference": int(self.nan_reference), "nan_current": int(self.nan_current),
            "note": self.note,
        }


@dataclass(frozen=True)
class DriftReport:
    features: list[FeatureDrift]
    drift_share: float  # drifted / tested features
    threshold_share: float
    dataset_drift: bool  # drift_share >= threshold_share

    @property
    def n_tested(self) -> int:
        """Features with values on both sides (the drift share's denominator)."""
        return sum(f.tested for f in self.features)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-able dict per feature (non-finite numbers become None)."""
        return [f.to_record() for f in self.features]

    def summary_markdown(self) -> str:
        drifted = [f for f in self.features if f.drifted]
        verdict = "**Dataset drift detected.**" if self.dataset_drift else "No dataset drift."
        if self.n_tested == 0:
            lines = [verdict, "", "No feature could be tested (all values missing)."]
        else:
            op = ">=" if self.dataset_drift else "<"
            lines = [f"{verdict} {len(drifted)} of {self.n_tested} tested features drifted "
                     f"(share {self.drift_share:.0%} {op} threshold {self.threshold_share:.0%})."]
        if drifted:
            lines += ["", "| feature | test | statistic | threshold | why |",
                      "|---|---|---|---|---|"]
            for f in drifted:
                stat = f"p={f.p_value:.3g}" if f.p_value is not None else _fmt(f.statistic)
                lines.append(f"| {f.feature} | {f.test} | {stat} | {_fmt(f.threshold)} | "
                             f"{f.note or ''} |")
        remarks = [f for f in self.features if f.note and not f.drifted]
        if remarks:
            lines += ["", "Notes:"] + [f"- {f.feature}: {f.note}" for f in remarks]
        return "\n".join(lines)


def detect_drift(reference: ReferenceProfile, current: pd.DataFrame,
                 config: DriftConfig) -> DriftReport:
    """Compare every profiled feature of ``current`` with the reference profile."""
    unknown = sorted(set(config.per_feature) - set(reference.features))
    if unknown:
        raise ValueError(f"drift.per_feature names columns missing from the reference profile: "
                         f"{unknown}")
    require_columns(current, reference.features, "current batch")

    # Choose every test before computing anything, so a bad config fails fast.
    plan: list[tuple[str, str, StatTest]] = []
    for name, values in reference.numeric.items():
        plan.append((name, "numeric", choose_test(name, "numeric", values.size, config)))
    for name, counts in reference.categorical.items():
        n_ref = sum(v for k, v in counts.items() if k != NULL_KEY)
        plan.append((name, "categorical", choose_test(name, "categorical", n_ref, config)))

    # One sort buffer for every numeric column: each column's sorted values are only needed
    # until its statistic is computed, and reusing the memory avoids re-faulting fresh pages.
    buffer = np.empty(len(current) if reference.numeric else 0, dtype=np.float64)
    results = []
    for name, kind, test in plan:
        if kind == "numeric":
            results.append(_numeric_drift(name, test, reference.numeric[name],
                                          reference.numeric_nan[name], current[name], config,
                                          reference.reference_std, buffer))
        else:
            results.append(_categorical_drift(name, test, reference.categorical[name],
                                              current[name], config))
    n_tested = sum(r.tested for r in results)
    share = sum(r.drifted for r in results) / n_tested if n_tested else 0.0
    return DriftReport(features=results, drift_share=share, threshold_share=config.drift_share,
                       dataset_drift=n_tested > 0 and share >= config.drift_share)


def performance_drift(baseline: float, current: float, *, higher_is_better: bool,
                      tolerance: float) -> tuple[bool, float]:
    """Relative degradation of ``current`` versus ``baseline`` (positive = worse).

    Relative to ``|baseline|`` so the sign keeps its meaning for negative metrics; a zero
    baseline gives an infinite degradation for any worsening. Drifted when > ``tolerance``.
    """
    if not (math.isfinite(baseline) and math.isfinite(current)):
        raise ValueError(f"performance_drift needs finite metrics, got baseline={baseline!r}, "
                         f"current={current!r}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    worse = (baseline - current) if higher_is_better else (current - baseline)
    if baseline == 0:
        degradation = 0.0 if worse == 0 else math.copysign(math.inf, worse)
    else:
        degradation = worse / abs(baseline)
    return degradation > tolerance, float(degradation)


def _numeric_drift(name: str, test: StatTest, ref: np.ndarray, nan_ref: int, series: pd.Series,
                   config: DriftConfig, reference_std: Callable[[str], float],
                   buffer: np.ndarray) -> FeatureDrift:
    cur, nan_cur = sorted_finite(series, name, buffer)
    base = dict(feature=name, kind="numeric", test=test.name, threshold=test.threshold_for(config),
                n_reference=int(ref.size), n_current=int(cur.size), nan_reference=int(nan_ref),
                nan_current=int(nan_cur))
    empty = _empty_note(ref.size, cur.size)
    if empty:
        return FeatureDrift(statistic=math.nan, drifted=False, p_value=None, note=empty, **base)
    assert test.numeric is not None  # choose_test checked the kind
    outcome = test.numeric(ref, cur, lambda: reference_std(name))
    return _feature_drift(test, outcome, base, "", lambda: _median_note(ref, cur))


def _categorical_drift(name: str, test: StatTest, ref_counts: Mapping[str, int],
                       series: pd.Series, config: DriftConfig) -> FeatureDrift:
    cur_counts = category_counts(series)
    nan_ref = ref_counts.get(NULL_KEY, 0)
    nan_cur = cur_counts.get(NULL_KEY, 0)
    keys = sorted((set(ref_counts) | set(cur_counts)) - {NULL_KEY})
    f_ref = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.int64)
    f_cur = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.int64)
    n_ref, n_cur = int(f_ref.sum()), int(f_cur.sum())
    base = dict(feature=name, kind="categorical", test=test.name,
                threshold=test.threshold_for(config), n_reference=n_ref, n_current=n_cur,
                nan_reference=int(nan_ref), nan_current=int(nan_cur))
    empty = _empty_note(n_ref, n_cur)
    if empty:
        return FeatureDrift(statistic=math.nan, drifted=False, p_value=None, note=empty, **base)
    assert test.categorical is not None  # choose_test checked the kind
    outcome = test.categorical(f_ref, f_cur)
    unseen = [k for k, r, c in zip(keys, f_ref, f_cur, strict=True) if r == 0 and c > 0]
    unseen_note = ""
    if unseen:
        shown = ", ".join(repr(k) for k in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
        noun = "category" if len(unseen) == 1 else "categories"
        unseen_note = f"{len(unseen)} {noun} not in reference: {shown}"

    def largest_shift() -> str:
        share_ref, share_cur = f_ref / n_ref, f_cur / n_cur
        k = int(np.argmax(np.abs(share_cur - share_ref)))
        return f"largest shift {keys[k]!r}: {share_ref[k]:.1%} -> {share_cur[k]:.1%}"

    return _feature_drift(test, outcome, base, unseen_note, largest_shift)


def _feature_drift(test: StatTest, outcome: Outcome, base: dict[str, Any], remark: str,
                   explain: Callable[[], str]) -> FeatureDrift:
    """Apply the test's decision rule (unless it decided itself) and explain a drifted column."""
    note = join_notes(outcome.note, remark)
    if outcome.threshold is not None:
        base["threshold"] = outcome.threshold
    if outcome.drifted is not None:
        drifted = bool(outcome.drifted)
    else:
        drifted = test.is_drifted(outcome.statistic, outcome.p_value, base["threshold"])
        if drifted:
            note = join_notes(note, explain())
    return FeatureDrift(statistic=float(outcome.statistic), drifted=drifted,
                        p_value=outcome.p_value, note=note, **base)


def _empty_note(n_ref: int, n_cur: int) -> str:
    if n_ref == 0 and n_cur == 0:
        return "not tested: no values on either side (all missing)"
    if n_ref == 0:
        return "not tested: empty reference column (all missing)"
    if n_cur == 0:
        return "not tested: empty current column (all missing)"
    return ""


def _median_note(ref: np.ndarray, cur: np.ndarray) -> str:
    return f"median {_median(ref):.4g} -> {_median(cur):.4g}"


def _median(values: np.ndarray) -> float:
    mid = values.size // 2  # sorted already: O(1)
    return float(values[mid]) if values.size % 2 else float((values[mid - 1] + values[mid]) / 2)


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4g}"
