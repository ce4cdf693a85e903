"""What the validation modules share: rule kinds, severities, the Spec record, batch columns.

A Spec is one rule before it becomes a GX expectation: its kind (stored in the expectation's
meta, so a result maps back to its rule without relying on result order), the human rule text,
the GX expectation class and kwargs, and the severity the config gives it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ctpipe.config import UseCaseConfig

ERROR, WARNING = "error", "warning"

# Expectation kinds, stored in each expectation's meta so results map back without relying on
# result order (GX returns results in metric-graph order, not suite order).
EXISTS, DTYPE, NULLS, RANGE, DOMAIN, ROWS, UNIQUE = (
    "exists", "dtype", "nulls", "range", "domain", "rows", "unique")
TIME_DTYPE, COLUMNS, RECENT, PERIOD, FUTURE, EXTRA = (
    "time_dtype", "columns", "recent_rows", "period", "future", "extra")
SEEN = "seen_in_training"


# The config's rule name (validation.warn / validation.ignore) for each kind.
_RULE_OF_KIND = {
    ROWS: "row_count", RECENT: "row_count_recent", EXISTS: "column_exists", DTYPE: "dtype",
    TIME_DTYPE: "dtype", NULLS: "nulls", RANGE: "range", DOMAIN: "domain",
    UNIQUE: "unique", PERIOD: "period", FUTURE: "future", SEEN: "seen_in_training",
}
_SEVERITY = {"error": ERROR, "warn": WARNING, "ignore": None}


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# The bound a numeric rule puts on an open side: the largest float, so that only infinity
# falls outside it. Training would take an infinite value as a number and learn nothing from it.
FINITE = sys.float_info.max


def finite_bounds(lo: float | None, hi: float | None) -> tuple[float, float]:
    """A range's bounds for GX, the open sides closed at the largest finite float."""
    return (-FINITE if lo is None else lo), (FINITE if hi is None else hi)


def range_text(lo: float | None, hi: float | None) -> str:
    """[0, 23], or (-inf, inf) for a side that is open (None, or closed only at FINITE)."""
    left = "(-inf" if lo is None or lo <= -FINITE else f"[{number_text(lo)}"
    right = "inf)" if hi is None or hi >= FINITE else f"{number_text(hi)}]"
    return f"{left}, {right}"


def max_null_share(config: UseCaseConfig, column: str) -> float:
    """The share of nulls a batch's column may hold: its validation.null_fraction entry, or
    validation.max_null_fraction."""
    return config.validation.null_fraction.get(column, config.validation.max_null_fraction)


PRESENT_COLUMNS = "ctpipe_allowed_columns_present"  # GX suite parameter, set per batch


def extra_columns(kwargs: Mapping[str, Any]) -> list[str]:
    cols = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    cols += list(kwargs.get("column_list") or [])
    return [c for c in cols if isinstance(c, str)]


@dataclass(frozen=True)
class Spec:
    kind: str
    rule: str  # the human rule text shown in messages
    cls: Any
    kwargs: dict[str, Any]
    severity: str = ERROR
    info: dict[str, Any] = field(default_factory=dict)  # extra meta for the description


def rule_severity(config: UseCaseConfig, kind: str, column: str | None) -> str | None:
    """ERROR, WARNING, or None when the config ignores the rule for this column."""
    v = config.validation
    if kind == COLUMNS:
        return _SEVERITY[v.unexpected_columns]
    rule = _RULE_OF_KIND[kind]
    # The column's own entry wins over the bare rule name: `ignore: [nulls]` with
    # `warn: [amount:nulls]` still checks amount (as a warning).
    for name in ([f"{column}:{rule}"] if column else []) + [rule]:
        if name in v.ignore:
            return None
        if name in v.warn:
            return WARNING
    if kind == SEEN:  # its own default (a new category is often normal): a config field
        return _SEVERITY[v.unseen_in_training]
    return ERROR


def apply_severity(config: UseCaseConfig, specs: list[Spec]) -> list[Spec]:
    """Each spec with the severity the config gives its rule; ignored rules are dropped."""
    out = []
    for spec in specs:
        severity = rule_severity(config, spec.kind, spec.kwargs.get("column"))
        if severity is not None:
            out.append(Spec(spec.kind, spec.rule, spec.cls, spec.kwargs, severity, spec.info))
    return out


def load_gx() -> Any:
    """great_expectations, imported on first use (the import alone takes 3-7 s).

    Nothing may reach outside this machine: settings.configure_environment() switches GX's
    analytics off for every ctpipe entry point. For callers that skip it (a notebook, a script)
    the same default is set here, at call time and before GX's first import, which is when GX
    versions that send analytics read it. Importing this module sets nothing.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx
