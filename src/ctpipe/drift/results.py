"""What the drift check found: one result per feature, and the report with the drift share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# FeatureDrift.seasonal: the outcome of the seasonal check (drift.seasonal_period).
SEASONAL_CONFIRMED = "confirmed"  # drifted against training and one cycle earlier: counts
SEASONAL_EXPLAINED = "explained"  # drifted against training only: the season, not counted
SEASONAL_UNAVAILABLE = "unavailable"  # no batch one cycle earlier: judged against training


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric" | "categorical"
    test: str  # a registered drift test (ctpipe.drift.stattests)
    statistic: float  # NaN when the feature could not be tested (see note)
    threshold: float
    drifted: bool  # the verdict (after the seasonal check); counts only when in_share
    p_value: float | None  # tests that decide on a p-value (ks, chisquare) only
    n_reference: int  # non-missing values compared (batches, for a windowed feature)
    n_current: int
    nan_reference: int
    nan_current: int
    note: str = ""
    weight: float = 1.0  # in the drift share (drift.weights); 0 when excluded
    excluded: bool = False  # listed in drift.exclude: reported, never counted
    window: int = 0  # batches pooled (constant within the batch); 0: this batch alone
    seasonal: str = ""  # SEASONAL_*, or "" when no seasonal check was made
    reference: str = "training profile"  # what the feature was judged against

    @property
    def tested(self) -> bool:
        return not math.isnan(self.statistic)

    @property
    def in_share(self) -> bool:
        """Tested with a positive weight: part of the drift share's denominator."""
        return self.tested and self.weight > 0

    def to_record(self) -> dict[str, Any]:
        return {
            "feature": self.feature, "kind": self.kind, "test": self.test,
            "statistic": _json_float(self.statistic), "threshold": float(self.threshold),
            "p_value": None if self.p_value is None else _json_float(self.p_value),
            "drifted": bool(self.drifted), "tested": self.tested,
            "in_share": self.in_share, "weight": float(self.weight),
            "excluded": self.excluded, "window": self.window or None,
            "seasonal": self.seasonal or None, "reference": self.reference,
            "n_reference": int(self.n_reference), "n_current": int(self.n_current),
            "nan_reference": int(self.nan_reference), "nan_current": int(self.nan_current),
            "note": self.note,
        }


@dataclass(frozen=True)
class DriftReport:
    features: list[FeatureDrift]
    drift_share: float  # weighted share of drifted among features in the share
    threshold_share: float
    dataset_drift: bool  # drift_share >= threshold_share

    @property
    def n_tested(self) -> int:
        """Tested features with a positive weight (the drift share's denominator)."""
        return sum(f.in_share for f in self.features)

    @property
    def drifted_features(self) -> list[str]:
        """Drifted features that count in the share (excluded ones are reported only)."""
        return [f.feature for f in self.features if f.drifted and f.in_share]

    @property
    def weighted(self) -> bool:
        """Whether any counted feature weighs other than 1 (the share is then weighted)."""
        return any(f.weight != 1.0 for f in self.features if f.in_share)

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-able dict per feature (non-finite numbers become None)."""
        return [f.to_record() for f in self.features]

    def summary_markdown(self) -> str:
        drifted = [f for f in self.features if f.drifted and f.in_share]
        verdict = "**Dataset drift detected.**" if self.dataset_drift else "No dataset drift."
        if self.n_tested == 0:
            lines = [verdict, "", "No feature counted in the drift share could be tested."]
        else:
            op = ">=" if self.dataset_drift else "<"
            share = "weighted share" if self.weighted else "share"
            lines = [f"{verdict} {len(drifted)} of {self.n_tested} tested features drifted "
                     f"({share} {self.drift_share:.0%} {op} threshold "
                     f"{self.threshold_share:.0%})."]
        if drifted:
            lines += ["", "| feature | test | statistic | threshold | weight | judged against "
                      "| why |", "|---|---|---|---|---|---|---|"]
            for f in drifted:
                lines.append(f"| {f.feature} | {f.test} | {_statistic(f)} | {_fmt(f.threshold)} "
                             f"| {f.weight:g} | {f.reference} | {f.note or ''} |")
        listed = {f.feature for f in drifted}
        aside = [f for f in self.features if f.feature not in listed
                 and (not f.in_share or f.seasonal == SEASONAL_EXPLAINED) and f.tested]
        if aside:
            lines += ["", "Not counted in the share:"]
            for f in aside:
                lines.append(f"- {f.feature}: {_why_not_counted(f)}")
                listed.add(f.feature)
        windowed = [f for f in self.features if f.window and f.feature not in listed]
        if windowed:
            lines += ["", "Constant within the batch, judged over a window of batches:"]
            for f in windowed:
                state = "drifted" if f.drifted else "stable"
                lines.append(f"- {f.feature}: {state} ({f.test} {_statistic(f)}); {f.note}")
                listed.add(f.feature)
        remarks = [f for f in self.features if f.note and f.feature not in listed]
        if remarks:
            lines += ["", "Notes:"] + [f"- {f.feature}: {f.note}" for f in remarks]
        return "\n".join(lines)


def _why_not_counted(f: FeatureDrift) -> str:
    if f.excluded:
        why, state = "excluded (drift.exclude)", "drifted" if f.drifted else "stable"
    elif f.weight == 0:
        why, state = "weight 0 (drift.weights)", "drifted" if f.drifted else "stable"
    else:  # seasonally explained
        why, state = "the season (drift.seasonal_period)", "drifted against training only"
    parts = [why, f"{state} ({f.test} {_statistic(f)})", f.note]
    return "; ".join(p for p in parts if p)


def _statistic(f: FeatureDrift) -> str:
    return f"p={f.p_value:.3g}" if f.p_value is not None else _fmt(f.statistic)


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4g}"
