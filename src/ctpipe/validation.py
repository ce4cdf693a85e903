"""Batch validation: a Great Expectations suite generated from the use-case config.

A batch arrives WITHOUT its target (labels land later in a separate file); it carries the time
column, the id column (if configured) and every feature. The suite checks, in this order
(the names in brackets are the rule names `validation.warn` / `validation.ignore` accept):

- the row count is within ``validation.min_rows`` .. ``validation.max_rows`` [row_count];
  an empty batch always fails, whatever the config says;
- the row count is within ``validation.row_count_tolerance`` of the median of the recent
  batches' row counts, when the caller passes at least ``row_count_min_history`` of them
  [row_count_recent];
- the time column, the id column and every feature column exist [column_exists];
- no other columns than those and the target (``validation.unexpected_columns``);
- numeric features have a numeric dtype (a column of strings or mixed values fails here) and
  the time column a timestamp dtype [dtype];
- at most ``validation.max_null_fraction`` nulls per column (``validation.null_fraction``
  overrides it per column) [nulls];
- ``validation.ranges`` [range] and ``validation.domains`` [domain] hold; a domain tolerates
  ``unseen_category_share`` (or its per-column override) of values outside it (GX ``mostly``);
- the id column is unique [unique];
- every timestamp lies inside the batch's period [period] and none is after ``now`` [future],
  when the caller passes the batch date (see ``batch_period``);
- every expectation listed under ``validation.extra``, with its own severity.

Each rule is an error (the batch fails and is quarantined) unless the config marks it a warning
(reported under its own heading; ``ValidationResult.passed`` stays True) or ignores it. The
severity is also set on the GX expectation itself (GX ``severity`` critical / warning), so the
GX result and its Data Docs tell the same story.

A missing column is reported once ("column exists"); the errors its other expectations raise
are follow-ons and are dropped, as are range errors on a column already failing its dtype check
and period/future errors on a time column that is not a timestamp.

GX objects (context, data source, asset, batch definition, base suite) are built once per process
and config and reused: building them costs far more than validating a small batch. Rules that
depend on the call (period, future, recent row counts) are appended to a fresh, unattached copy
of the suite per call; nothing is stored in the context, so it does not grow. All GX work runs
under one lock, because a data source's execution engine caches "the" batch under a fixed id, so
two threads validating through it at once would read each other's frames.

Data Docs (``write_data_docs``) are rendered by GX from the stored result, in a file-mode
context of their own: the batch is never validated a second time.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import os
import re
import statistics
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import pandas as pd

from ctpipe.config import UseCaseConfig

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import AbstractDataContext

# Nothing may reach outside this machine; must be set before great_expectations is imported
# (it is imported lazily below: the import alone takes 3-7 s, which `ctpipe --help` should not pay).
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

EXAMPLES = 5  # offending values shown per failure
ERROR, WARNING = "error", "warning"
# BASIC, not SUMMARY: SUMMARY also builds unexpected index lists, and GX does that by listing every
# unexpected row index in Python before keeping 20: measured on 2M rows, a batch with 17 broken
# rules took 8.2 s with SUMMARY vs 3.3 s with BASIC (1.5 vs 1.3 s for a clean batch). BASIC still
# gives partial_unexpected_list (the examples); null rows are located with pandas instead.
_RESULT_FORMAT = "BASIC"
_MAX_PLANS = 16  # configs kept built: a process that reloads edited configs stays bounded

# Numeric dtypes the model path accepts (features.py runs pd.to_numeric + float64). "int"/"float"
# also admit an object column holding only Python numbers; GX checks such columns value by value.
_NUMERIC_TYPES = [
    "int", "float",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
    "Float32", "Float64",
]
# Any numpy datetime64 unit matches "datetime64"; tz-aware columns are made naive first
# (_prepare), so this one type covers every timestamp column pandas can hold.
_TIME_TYPE = "datetime64"

# Expectation kinds, stored in each expectation's meta so results map back without relying on
# result order (GX returns results in metric-graph order, not suite order).
_EXISTS, _DTYPE, _NULLS, _RANGE, _DOMAIN, _ROWS, _UNIQUE = (
    "exists", "dtype", "nulls", "range", "domain", "rows", "unique")
_TIME_DTYPE, _COLUMNS, _RECENT, _PERIOD, _FUTURE, _EXTRA = (
    "time_dtype", "columns", "recent_rows", "period", "future", "extra")
# The config's rule name (validation.warn / validation.ignore) for each kind.
_RULE_OF_KIND = {
    _ROWS: "row_count", _RECENT: "row_count_recent", _EXISTS: "column_exists", _DTYPE: "dtype",
    _TIME_DTYPE: "dtype", _NULLS: "nulls", _RANGE: "range", _DOMAIN: "domain",
    _UNIQUE: "unique", _PERIOD: "period", _FUTURE: "future",
}


class BatchReadError(ValueError):
    """A batch file that cannot be read; the message names the file and the problem."""

    def __init__(self, message: str, *, path: Path | None = None,
                 problem: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.problem = problem or message  # the message without the path in front


def _read_error(path: Path, problem: str) -> BatchReadError:
    return BatchReadError(f"{path}: {problem}", path=path, problem=problem)


@dataclass(frozen=True)
class Failure:
    column: str | None  # None for table-level rules
    rule: str  # short human name: "not null", "in range [0, 23]", "in set", ...
    expectation: str  # GX expectation type
    observed: str  # what was found, e.g. "3.2% null (max 0.0%; 64 of 2,000 rows)"
    examples: list[str] = field(default_factory=list)  # at most EXAMPLES offending values
    severity: str = ERROR  # or WARNING

    def line(self) -> str:
        text = f"{self.column or 'table'}: {self.rule}: {self.observed}"
        return text + (f" (e.g. {', '.join(self.examples)})" if self.examples else "")


@dataclass(frozen=True)
class ValidationResult:
    passed: bool  # False only when an error-severity rule failed (or the file was unreadable)
    rows: int
    failures: list[Failure]  # errors: what made the batch fail
    evaluated: int  # number of expectations evaluated
    gx_result: dict  # the GX suite validation result, JSON-able (for the quarantine file)
    warnings: list[Failure] = field(default_factory=list)  # reported, the batch still passes
    skipped: list[str] = field(default_factory=list)  # configured rules not run, and why
    read_error: str | None = None  # the file could not be read (then nothing was evaluated)

    def summary_markdown(self, source: str) -> str:
        if self.read_error is not None:
            return f"# Validation FAILED: `{source}`\n\nThe batch could not be read: " \
                   f"{self.read_error}\n"
        verdict = "passed" if self.passed else "FAILED"
        if self.passed and self.warnings:
            verdict = "passed with warnings"
        lines = [
            f"# Validation {verdict}: `{source}`",
            "",
            f"{self.rows:,} rows, {self.evaluated} expectations evaluated, "
            f"{len(self.failures)} failed, {len(self.warnings)} "
            f"warning{'s' if len(self.warnings) != 1 else ''}.",
        ]
        for heading, items in (("Errors", self.failures), ("Warnings", self.warnings)):
            if items:
                lines += ["", f"## {heading}", "",
                          "| column | rule | observed | examples |", "|---|---|---|---|"]
                for f in items:
                    cells = [f.column or "(table)", f.rule, f.observed, ", ".join(f.examples)]
                    lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        if self.skipped:
            lines += ["", "## Not checked", ""] + [f"- {s}" for s in self.skipped]
        return "\n".join(lines) + "\n"

    def message(self, source: str) -> str:
        """One line: the verdict and every failed expectation (errors, then warnings)."""
        if self.read_error is not None:
            return f"{source}: batch could not be read: {self.read_error}"
        warned = ""
        if self.warnings:
            n = len(self.warnings)
            warned = (f" Warnings ({n}): "
                      + "; ".join(f.line() for f in self.warnings) + ".")
        if self.passed:
            return (f"{source}: batch passed validation ({self.rows:,} rows, "
                    f"{self.evaluated} expectations).{warned}")
        if not self.failures:
            return f"{source}: batch failed validation ({self.rows:,} rows).{warned}"
        problems = "; ".join(f.line() for f in self.failures)
        return (f"{source}: batch failed validation with {len(self.failures)} problem"
                f"{'s' if len(self.failures) != 1 else ''} ({self.rows:,} rows, "
                f"{self.evaluated} expectations evaluated): {problems}.{warned}")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- config checks


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip()).lower()


def expectation_class(type_name: str) -> Any:
    """The GX expectation class for a snake_case or CamelCase type name, from GX's registry."""
    _gx()
    from great_expectations.expectations.registry import (
        get_expectation_impl,
        list_registered_expectation_implementations,
    )

    snake = _snake(type_name)
    try:
        return get_expectation_impl(snake)
    except Exception as exc:  # GX raises its own ExpectationNotFoundError
        close = difflib.get_close_matches(snake, list_registered_expectation_implementations(),
                                          n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown Great Expectations expectation type {type_name!r}{hint}") \
            from exc


# Registered in GX but evaluated only by SQL engines: on a pandas batch they could never pass.
_SQL_ONLY = frozenset({"expect_query_results_to_match_comparison",
                       "unexpected_rows_expectation"})


def check_extra_expectation(type_name: str, kwargs: Mapping[str, Any]) -> None:
    """Raise ValueError unless GX knows ``type_name`` and accepts ``kwargs`` for it.

    Called by config.ExtraExpectation when a config is loaded, so a typo names its config key
    before any batch is read.
    """
    cls = expectation_class(type_name)
    if cls.expectation_type in _SQL_ONLY:
        raise ValueError(f"{cls.expectation_type} runs SQL queries; batches are validated as "
                         "pandas frames")
    try:
        cls(**kwargs)
    except Exception as exc:  # GX's pydantic (v1) model: missing, unknown or mistyped kwargs
        detail = " ".join(str(exc).split())
        raise ValueError(f"{_snake(type_name)}: invalid kwargs {dict(kwargs)}: {detail}") \
            from exc


# --------------------------------------------------------------------------- suite


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _range_text(lo: float | None, hi: float | None) -> str:
    left = "(-inf" if lo is None else f"[{_num(lo)}"
    right = "inf)" if hi is None else f"{_num(hi)}]"
    return f"{left}, {right}"


def _max_null(config: UseCaseConfig, column: str) -> float:
    return config.validation.null_fraction.get(column, config.validation.max_null_fraction)


def _unseen_share(config: UseCaseConfig, column: str) -> float:
    v = config.validation
    return v.unseen_category_share_by_column.get(column, v.unseen_category_share)


def _batch_columns(config: UseCaseConfig) -> list[str]:
    """Columns a batch must carry: time, id (if any), features. Not the target."""
    data = config.data
    return [data.time_column, *([data.id_column] if data.id_column else []),
            *config.features.raw]


def _allowed_columns(config: UseCaseConfig) -> list[str]:
    # The target may ride along (a labelled file validated by hand): it is never a feature.
    return [*_batch_columns(config), config.data.target]


_PRESENT_COLUMNS = "ctpipe_allowed_columns_present"  # GX suite parameter, set per batch


def _present_allowed(frame: pd.DataFrame, config: UseCaseConfig) -> list[str]:
    allowed = set(_allowed_columns(config))
    return [c for c in frame.columns if c in allowed]


@dataclass(frozen=True)
class _Spec:
    kind: str
    rule: str  # the human rule text shown in messages
    cls: Any
    kwargs: dict[str, Any]
    severity: str = ERROR
    info: dict[str, Any] = field(default_factory=dict)  # extra meta for the description


def _rule_columns(config: UseCaseConfig, rule: str) -> list[str]:
    """Columns a column rule applies to, for checking `column:rule` entries in warn/ignore."""
    data, v = config.data, config.validation
    return {
        "column_exists": _batch_columns(config),
        "nulls": _batch_columns(config),
        "dtype": [data.time_column, *config.features.numeric],
        "range": list(v.ranges),
        "domain": list(v.domains),
        "unique": [data.id_column] if data.id_column else [],
        "period": [data.time_column],
        "future": [data.time_column],
    }.get(rule, [])


def _check_rule_columns(config: UseCaseConfig) -> None:
    for key in ("warn", "ignore"):
        for entry in getattr(config.validation, key):
            column, _, rule = entry.rpartition(":")
            if column and column not in _rule_columns(config, rule):
                allowed = ", ".join(_rule_columns(config, rule)) or "none"
                raise ValueError(f"use case {config.name!r}: validation.{key}: {entry!r}: rule "
                                 f"{rule} does not apply to column {column!r} (it applies to: "
                                 f"{allowed})")


def _severity(config: UseCaseConfig, kind: str, column: str | None) -> str | None:
    """ERROR, WARNING, or None when the config ignores the rule for this column."""
    v = config.validation
    if kind == _COLUMNS:
        return {"error": ERROR, "warn": WARNING, "ignore": None}[v.unexpected_columns]
    rule = _RULE_OF_KIND[kind]
    # The column's own entry wins over the bare rule name: `ignore: [nulls]` with
    # `warn: [amount:nulls]` still checks amount (as a warning).
    for name in ([f"{column}:{rule}"] if column else []) + [rule]:
        if name in v.ignore:
            return None
        if name in v.warn:
            return WARNING
    return ERROR


def _extra_columns(kwargs: Mapping[str, Any]) -> list[str]:
    cols = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    cols += list(kwargs.get("column_list") or [])
    return [c for c in cols if isinstance(c, str)]


def _static_specs(config: UseCaseConfig) -> list[_Spec]:
    gx = _gx()
    E = gx.expectations
    v = config.validation
    data = config.data
    columns = _batch_columns(config)
    unknown = sorted(set(v.null_fraction) - set(columns))
    if unknown:
        # Also checked by config.py; kept for configs built in code with model_copy(update=...).
        raise ValueError(f"use case {config.name!r}: validation.null_fraction names columns "
                         f"that are not in the batch: {unknown}")
    _check_rule_columns(config)

    specs: list[_Spec] = []
    rows = {"min_value": v.min_rows, "max_value": v.max_rows}
    specs.append(_Spec(_ROWS, "row count", E.ExpectTableRowCountToBeBetween, rows))
    specs += [_Spec(_EXISTS, "column exists", E.ExpectColumnToExist, {"column": c})
              for c in columns]
    # The set is filled in per batch (_present_allowed): the allowed columns the batch has. An
    # extra column then fails it, while a missing one stays the "column exists" rule's to report
    # (a fixed set would also fail every batch without the optional target column).
    specs.append(_Spec(_COLUMNS, "no unexpected columns", E.ExpectTableColumnsToMatchSet,
                       {"column_set": {"$PARAMETER": _PRESENT_COLUMNS}, "exact_match": True}))
    specs.append(_Spec(_TIME_DTYPE, "timestamp dtype", E.ExpectColumnValuesToBeOfType,
                       {"column": data.time_column, "type_": _TIME_TYPE}))
    specs += [_Spec(_DTYPE, "numeric dtype", E.ExpectColumnValuesToBeInTypeList,
                    {"column": c, "type_list": _NUMERIC_TYPES}) for c in config.features.numeric]
    for col in columns:
        limit = _max_null(config, col)
        if limit < 1:  # a limit of 100 % constrains nothing
            specs.append(_Spec(_NULLS, "not null", E.ExpectColumnValuesToNotBeNull,
                               {"column": col, "mostly": 1.0 - limit}))
    for col, rule in v.ranges.items():
        if rule.min is not None or rule.max is not None:
            specs.append(_Spec(_RANGE, f"in range {_range_text(rule.min, rule.max)}",
                               E.ExpectColumnValuesToBeBetween,
                               {"column": col, "min_value": rule.min, "max_value": rule.max}))
    for col, values in v.domains.items():
        share = _unseen_share(config, col)
        kwargs: dict[str, Any] = {"column": col, "value_set": list(values)}
        if share > 0:
            kwargs["mostly"] = 1.0 - share
        specs.append(_Spec(_DOMAIN, "in set", E.ExpectColumnValuesToBeInSet, kwargs))
    if data.id_column:
        specs.append(_Spec(_UNIQUE, "unique", E.ExpectColumnValuesToBeUnique,
                           {"column": data.id_column}))

    specs = _apply_severity(config, specs)
    for i, extra in enumerate(v.extra):
        missing = sorted(set(_extra_columns(extra.kwargs)) - set(columns))
        if missing:
            raise ValueError(f"use case {config.name!r}: validation.extra.{i} ({extra.type}) "
                             f"names columns that are not in the batch: {missing}")
        cls = expectation_class(extra.type)
        specs.append(_Spec(_EXTRA, extra.rule or cls.expectation_type, cls, dict(extra.kwargs),
                           ERROR if extra.severity == "error" else WARNING, {"index": i}))
    return specs


def _apply_severity(config: UseCaseConfig, specs: list[_Spec]) -> list[_Spec]:
    """Each spec with the severity the config gives its rule; ignored rules are dropped."""
    out = []
    for spec in specs:
        severity = _severity(config, spec.kind, spec.kwargs.get("column"))
        if severity is not None:
            out.append(_Spec(spec.kind, spec.rule, spec.cls, spec.kwargs, severity, spec.info))
    return out


def _expectations(specs: list[_Spec]) -> list[Any]:
    from great_expectations.expectations.metadata_types import FailureSeverity

    gx_severity = {ERROR: FailureSeverity.CRITICAL, WARNING: FailureSeverity.WARNING}
    return [
        spec.cls(**spec.kwargs, severity=gx_severity[spec.severity], meta={"ctpipe": {
            "kind": spec.kind, "rule": spec.rule, "order": order, "severity": spec.severity,
            **spec.info}})
        for order, spec in enumerate(specs)
    ]


def build_suite(config: UseCaseConfig) -> gx.ExpectationSuite:
    """The expectation suite for one batch of this use case (not attached to any context).

    Holds the rules that depend on the config alone; validate_frame appends the period, future
    and recent-row-count rules when their inputs are given. The unexpected-columns rule takes
    the suite parameter ``ctpipe_allowed_columns_present`` (the allowed columns the batch has).
    """
    gx = _gx()
    # Passed to the constructor: suite.add_expectation() needs a Data Context (it persists the
    # suite when the suite belongs to one), and build_suite must work without one.
    return gx.ExpectationSuite(name=f"ctpipe-{config.name}-{config.config_hash}",
                               expectations=_expectations(_static_specs(config)))


# --------------------------------------------------------------------------- call-time rules


def batch_period(batch_date: dt.date, frequency: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the batch period containing ``batch_date``, as naive datetimes.

    daily: that day; weekly: Monday to Monday (landing.split_into_batches names a weekly batch by
    its Monday); monthly: the calendar month.
    """
    if frequency == "daily":
        start = batch_date
        end = start + dt.timedelta(days=1)
    elif frequency == "weekly":
        start = batch_date - dt.timedelta(days=batch_date.weekday())
        end = start + dt.timedelta(days=7)
    elif frequency == "monthly":
        start = batch_date.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown batch frequency {frequency!r}")
    return (dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time()))


def _stamp(value: dt.datetime) -> str:
    text = value.isoformat(sep=" ", timespec="seconds")
    return text[:-3] if text.endswith(":00") and value.second == 0 else text


def _call_specs(config: UseCaseConfig, batch_date: dt.date | None,
                recent_rows: list[int] | None, now: dt.datetime | None,
                tz: Any) -> tuple[list[_Spec], list[str]]:
    """The rules that depend on this call's arguments, and notes on those skipped."""
    gx = _gx()
    E = gx.expectations
    v, data = config.validation, config.data
    specs: list[_Spec] = []
    skipped: list[str] = []
    time = data.time_column

    if v.row_count_tolerance is not None:
        recent = [int(n) for n in (recent_rows or [])][-v.row_count_window:]
        if len(recent) < v.row_count_min_history:
            skipped.append(f"row count vs recent batches: {len(recent)} recent row count"
                           f"{'s' if len(recent) != 1 else ''} given, "
                           f"{v.row_count_min_history} needed")
        else:
            median = statistics.median(recent)
            lo = max(math.floor(median * (1 - v.row_count_tolerance)), 0)
            hi = math.ceil(median * (1 + v.row_count_tolerance))
            specs.append(_Spec(
                _RECENT, f"row count within {v.row_count_tolerance:.0%} of recent batches",
                E.ExpectTableRowCountToBeBetween, {"min_value": lo, "max_value": hi},
                info={"median": median, "batches": len(recent)}))

    if batch_date is not None:
        if isinstance(batch_date, dt.datetime):  # a datetime is a date too: keep the day only
            batch_date = batch_date.date()
        start, end = batch_period(batch_date, data.batch_frequency)
        label = f"[{_stamp(start)}, {_stamp(end)})"
        specs.append(_Spec(_PERIOD, "in batch period",
                           E.ExpectColumnValuesToBeBetween,
                           {"column": time, "min_value": start, "max_value": end,
                            "strict_max": True},
                           info={"period": label, "frequency": data.batch_frequency}))
        limit = _wall_clock(now, tz)
        specs.append(_Spec(_FUTURE, "not in the future", E.ExpectColumnValuesToBeBetween,
                           {"column": time, "max_value": limit},
                           info={"now": _stamp(limit) + (f" {tz}" if tz else " UTC")}))
    elif any(_severity(config, kind, time) for kind in (_PERIOD, _FUTURE)):
        skipped.append("timestamps inside the batch period and not in the future: no batch "
                       "date given")
    return _apply_severity(config, specs), skipped


def _wall_clock(now: dt.datetime | None, tz: Any) -> dt.datetime:
    """``now`` as a naive wall-clock time in the time column's zone (UTC for naive columns).

    A naive ``now`` is read as UTC, like a naive time column.
    """
    stamp = pd.Timestamp(now if now is not None else dt.datetime.now(dt.UTC))
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert(tz or "UTC").tz_localize(None).to_pydatetime()


# --------------------------------------------------------------------------- GX plumbing


def _gx() -> Any:
    import great_expectations as gx

    return gx


@dataclass
class _Plan:
    specs: list[_Spec]  # the config-only rules
    suite: Any  # those rules as a suite, not attached to the context
    datasource: Any
    batch_definition: BatchDefinition


_LOCK = threading.RLock()
_CONTEXT: AbstractDataContext | None = None
_PLANS: OrderedDict[str, _Plan] = OrderedDict()


def _context() -> AbstractDataContext:
    """One ephemeral (in-memory) context per process; callers hold _LOCK."""
    global _CONTEXT
    if _CONTEXT is None:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX md5-hashes every in-memory batch under 1 GB (pandas.util.hash_pandas_object) only to
        # put a fingerprint in batch_markers: 2.6 s on a 2M-row fraud batch, twice what all the
        # expectations cost. We do not use that fingerprint (training has its own), so skip it.
        # A module constant, so this holds process-wide; ctpipe has no other GX user.
        if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
            pandas_execution_engine.HASH_THRESHOLD = 0
        context = gx.get_context(mode="ephemeral")
        # tqdm bars on stderr would clutter Prefect task logs and pytest output.
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        _CONTEXT = context
    return _CONTEXT


def _plan(config: UseCaseConfig) -> _Plan:
    """GX objects for this config, built on first use; callers hold _LOCK."""
    key = config.config_hash
    plan = _PLANS.get(key)
    if plan is not None:
        _PLANS.move_to_end(key)
        return plan
    context = _context()
    name = f"ctpipe-{config.name}-{key}"
    # The suite stays out of the context: Batch.validate only reads its expectations, and the
    # context's suite store would otherwise grow with every edited config.
    specs = _static_specs(config)
    suite = _gx().ExpectationSuite(name=name, expectations=_expectations(specs))
    datasource = context.data_sources.add_pandas(name)
    batch_definition = datasource.add_dataframe_asset("batch").add_batch_definition_whole_dataframe(
        "whole-batch")
    plan = _PLANS[key] = _Plan(specs, suite, datasource, batch_definition)
    while len(_PLANS) > _MAX_PLANS:
        _, old = _PLANS.popitem(last=False)
        context.data_sources.delete(old.datasource.name)
    return plan


def _release_batch(plan: _Plan) -> None:
    """Drop the frame GX keeps cached in the data source's execution engine after a run.

    Without this every use case pins its last batch (hundreds of MB for fraud) until the next one.
    """
    manager = plan.datasource.get_execution_engine().batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


# --------------------------------------------------------------------------- validation


def _as_category_text(frame: pd.DataFrame, config: UseCaseConfig) -> dict[str, pd.Series]:
    """Domain columns compared on their string form, as features.py feeds them to the model.

    Domains in the config are strings; a categorical arriving as int/bool codes (e.g. a Parquet
    file written with integer codes) would otherwise fail every row. String-typed columns pass
    through untouched, so the common case costs nothing.
    """
    return {
        col: frame[col].astype("str").where(frame[col].notna())
        for col in config.validation.domains
        if col in frame.columns and not pd.api.types.is_string_dtype(frame[col])
    }


def _parse_times(values: pd.Series) -> pd.Series | None:
    """Text timestamps parsed as features.py would (pd.to_datetime); None if any value fails."""
    present = values.notna()
    for fmt in ("ISO8601", None):  # ISO first: fast, and it takes date-only and full stamps
        try:
            parsed = pd.to_datetime(values, errors="coerce", format=fmt)
        except (ValueError, TypeError, OverflowError):  # e.g. mixed UTC offsets
            continue
        if not (parsed.isna() & present).any():
            return parsed
    return None


def _prepare(frame: pd.DataFrame, config: UseCaseConfig) -> tuple[pd.DataFrame, Any]:
    """The frame as the suite sees it, and the time column's time zone (None if naive).

    - domain columns as text (see _as_category_text);
    - a text time column that parses completely becomes timestamps (a CSV batch; features.py
      parses it the same way); one that does not stays text and fails the dtype rule;
    - a tz-aware time column becomes naive wall-clock time in its own zone, so a daily batch is
      the local day and one dtype ("datetime64") covers every column.
    """
    changes = _as_category_text(frame, config)
    time = config.data.time_column
    tz = None
    if time in frame.columns:
        values = frame[time]
        if pd.api.types.is_string_dtype(values) or (
                values.dtype == object and values.map(_is_text_or_date, na_action="ignore")
                .fillna(True).all()):
            # Not an object column holding numbers: to_datetime would read them as epoch
            # nanoseconds, hiding a broken column behind "dates in 1970".
            parsed = _parse_times(values)
            if parsed is not None and pd.api.types.is_datetime64_any_dtype(parsed):
                values = changes[time] = parsed
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            tz = values.dt.tz
            values = changes[time] = values.dt.tz_localize(None)
        if pd.api.types.is_datetime64_dtype(values) and values.dtype != "datetime64[ns]":
            # GX compares datetime64[ns] columns vectorised but any other unit (pandas 3 and
            # Parquet give [us]) value by value in Python: measured 1.4 s per rule on 200,000
            # rows that way, against milliseconds vectorised.
            try:
                changes[time] = values.astype("datetime64[ns]")
            except (OverflowError, ValueError):  # outside 1677..2262: the slow path still works
                pass
    for col in config.validation.ranges:
        # Likewise GX vectorises ranges only on int64/float64 columns; int32, float32 or
        # nullable Int64 columns would be compared one value at a time.
        values = frame[col] if col in frame.columns else None
        if (values is not None and pd.api.types.is_numeric_dtype(values)
                and not pd.api.types.is_bool_dtype(values)
                and values.dtype not in ("int64", "float64")):
            changes[col] = values.astype("float64")
    return (frame.assign(**changes) if changes else frame), tz


def validate_frame(frame: pd.DataFrame, config: UseCaseConfig, *,
                   batch_date: dt.date | None = None, recent_rows: list[int] | None = None,
                   now: dt.datetime | None = None) -> ValidationResult:
    """Validate one batch (no target column) against the suite built from ``config``.

    ``batch_date`` enables the period and future rules (``now`` defaults to the current UTC
    time; naive timestamps are read as UTC). ``recent_rows``, the row counts of the batches
    before this one (oldest first), enables the row-count-vs-recent rule when the config sets
    ``validation.row_count_tolerance``.
    """
    prepared, tz = _prepare(frame, config)
    call_specs, skipped = _call_specs(config, batch_date, recent_rows, now, tz)
    with _LOCK:
        plan = _plan(config)
        suite = plan.suite
        if call_specs:
            # Fresh expectation objects: copying GX's deep-copies the suite each one points to
            # (0.6 s per call); building ~50 small pydantic models costs a few milliseconds.
            suite = _gx().ExpectationSuite(
                name=plan.suite.name,
                expectations=_expectations([*plan.specs, *call_specs]))
        try:
            batch = plan.batch_definition.get_batch(batch_parameters={"dataframe": prepared})
            result = batch.validate(suite, result_format=_RESULT_FORMAT, expectation_parameters={
                _PRESENT_COLUMNS: _present_allowed(prepared, config)})
        finally:
            _release_batch(plan)
    gx_result = result.to_json_dict()
    found = _failures(gx_result["results"], prepared)
    if len(prepared) == 0 and not any(f.expectation == "expect_table_row_count_to_be_between"
                                      and f.severity == ERROR for f in found):
        # An empty batch is never acceptable: it would reach drift and training with no rows.
        found.insert(0, Failure(None, "row count", "expect_table_row_count_to_be_between",
                                "0 rows: the batch is empty"))
    errors = [f for f in found if f.severity == ERROR]
    return ValidationResult(
        passed=not errors,
        rows=len(prepared),
        failures=errors,
        evaluated=int(gx_result["statistics"]["evaluated_expectations"]),
        gx_result=gx_result,
        warnings=[f for f in found if f.severity != ERROR],
        skipped=skipped,
    )


def validate_file(path: Path, config: UseCaseConfig, *, batch_date: dt.date | None = None,
                  recent_rows: list[int] | None = None,
                  now: dt.datetime | None = None) -> ValidationResult:
    """Read and validate a batch file; a file that cannot be read is a failed result, not a raise.

    For `ctpipe validate <use case> --file PATH`: ``result.message(str(path))`` is the one-line
    verdict, ``result.summary_markdown(str(path))`` the report.
    """
    try:
        frame = read_batch_file(path, config)
    except BatchReadError as exc:
        failure = Failure(None, "readable file", "read_batch_file", exc.problem)
        return ValidationResult(passed=False, rows=0, failures=[failure], evaluated=0,
                                gx_result={}, read_error=exc.problem)
    return validate_frame(frame, config, batch_date=batch_date, recent_rows=recent_rows, now=now)


def _exception_message(info: dict | None) -> str | None:
    """GX reports errors either flat or keyed by metric id, each with an exception_message."""
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info["raised_exception"] else None
    messages = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
    messages = [m for m in messages if m]
    return messages[0] if messages else None


def _failures(results: list[dict], frame: pd.DataFrame) -> list[Failure]:
    def meta(r: dict) -> dict:
        return r["expectation_config"].get("meta", {}).get("ctpipe", {})

    def failed_columns(*kinds: str) -> set[str]:
        return {r["expectation_config"]["kwargs"].get("column") for r in results
                if meta(r).get("kind") in kinds and not r["success"]}

    results = sorted(results, key=lambda r: meta(r).get("order", math.inf))
    # Follow-on errors are suppressed: everything about a missing column, range errors on a
    # column whose dtype is already reported as wrong, period/future errors on a time column
    # that is not a timestamp.
    missing = failed_columns(_EXISTS)
    bad_dtype = failed_columns(_DTYPE)
    bad_time = failed_columns(_TIME_DTYPE)
    failures = []
    for r in results:
        if r["success"]:
            continue
        cfg = r["expectation_config"]
        info = meta(r)
        kind = info.get("kind")
        kwargs = cfg["kwargs"]
        column = kwargs.get("column")
        error = _exception_message(r.get("exception_info"))
        if kind != _EXISTS and column in missing:
            continue
        if error and kind == _RANGE and column in bad_dtype:
            continue
        if kind in (_PERIOD, _FUTURE) and column in bad_time:
            continue
        if kind == _EXTRA and set(_extra_columns(kwargs)) & missing:
            continue
        if kind == _COLUMNS:
            # Only missing columns, or extras that look like a missing column renamed: both are
            # reported once, by "column exists" (which names the look-alike).
            renamed = {c for m in missing for c in _similar(m, frame.columns)}
            extra = [c for c in _unexpected_columns(r.get("result") or {}) if c not in renamed]
            if not extra:
                continue
            r = {**r, "result": {"details": {"mismatched": {"unexpected": extra}}}}
        rule = info.get("rule", cfg["type"])
        severity = info.get("severity", ERROR)
        if error:
            failures.append(Failure(column, rule, cfg["type"], f"could not be evaluated: {error}",
                                    severity=severity))
            continue
        observed, examples = _describe(kind, kwargs, r.get("result") or {}, column, frame, info)
        failures.append(Failure(column, rule, cfg["type"], observed, examples, severity))
    return failures


def _similar(column: str | None, columns: Any) -> list[str]:
    return difflib.get_close_matches(str(column), [str(c) for c in columns], n=3)


def _unexpected_columns(result: dict) -> list[str]:
    return list(((result.get("details") or {}).get("mismatched") or {}).get("unexpected") or [])


def _values(count: int) -> str:
    return f"{count:,} value{'s' if count != 1 else ''}"


def _pct(share: float) -> str:
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share:.1%}"


def _value_text(value: Any) -> str:
    # repr for text so an empty string or stray whitespace is visible; plain str otherwise.
    return repr(value) if isinstance(value, str) else str(value)


def _distinct_examples(result: dict, text: Any = _value_text) -> list[str]:
    # The partial list holds the first 20 unexpected values, repeats included.
    values = dict.fromkeys(text(v) for v in result.get("partial_unexpected_list") or [])
    return list(values)[:EXAMPLES]


def _stamp_text(value: Any) -> str:
    # GX serialises timestamps as ISO text; show them as times, not as quoted strings.
    return str(value).replace("T", " ")


def _bad_values(values: pd.Series, good: pd.Series) -> list[str]:
    """Up to EXAMPLES distinct non-null values where ``good`` is False (failures only)."""
    bad = values[values.notna() & ~good.astype(bool)]
    return [_value_text(v) for v in dict.fromkeys(bad.head(1000).tolist())][:EXAMPLES]


def _describe(kind: str | None, kwargs: dict, result: dict, column: str | None,
              frame: pd.DataFrame, info: dict) -> tuple[str, list[str]]:
    """The observed text and examples for one failed expectation."""
    count = int(result.get("unexpected_count") or 0)
    total = int(result.get("element_count") or 0)
    if kind == _EXISTS:
        close = _similar(str(column), frame.columns)
        hint = f" (similar: {', '.join(repr(c) for c in close)})" if close else ""
        return f"missing from the batch{hint}", []
    if kind == _COLUMNS:
        extra = _unexpected_columns(result)
        return (f"{len(extra)} column{'s' if len(extra) != 1 else ''} not in the config "
                f"(allowed: time, id, target and feature columns)",
                [repr(c) for c in extra[:EXAMPLES]])
    if kind in (_ROWS, _RECENT):
        rows = int(result.get("observed_value") or 0)
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        if kind == _RECENT:
            return (f"{rows:,} row{'s' if rows != 1 else ''} (expected {lo:,} to {hi:,}: median "
                    f"{info.get('median', 0):,.0f} of the last {info.get('batches')} batches)",
                    [])
        bound = f"max {hi:,}" if hi is not None and rows > hi else f"min {lo:,}"
        empty = ": the batch is empty" if rows == 0 else ""
        return f"{rows:,} row{'s' if rows != 1 else ''} ({bound}){empty}", []
    if kind == _DTYPE:
        if "unexpected_count" in result:  # object column: GX checked each value's type
            return (f"dtype object with {count:,} non-numeric value{'s' if count != 1 else ''} "
                    f"({_pct(count / total if total else 0)})"), _distinct_examples(result)
        observed = f"dtype {result.get('observed_value')} (expected an int or float dtype)"
        if column in frame.columns and pd.api.types.is_string_dtype(frame[column]):
            # Numbers stored as text: name the values that are not numbers at all.
            values = frame[column]
            bad = _bad_values(values, pd.to_numeric(values, errors="coerce").notna())
            return observed + (f"; e.g. non-numbers {', '.join(bad)}" if bad else ""), []
        return observed, []
    if kind == _TIME_DTYPE:
        values = frame[column]
        if pd.api.types.is_string_dtype(values):  # text that did not parse completely
            good = pd.to_datetime(values, errors="coerce", format="ISO8601").notna()
        elif values.dtype == object:  # mixed values: timestamps and others
            good = values.map(_is_stamp)
        else:  # e.g. epoch numbers: nothing says which unit they are in
            return f"dtype {values.dtype} (expected datetime64)", []
        n_bad = int((values.notna() & ~good.astype(bool)).sum())
        return (f"dtype {values.dtype} with {n_bad:,} value{'s' if n_bad != 1 else ''} that "
                f"{'are' if n_bad != 1 else 'is'} not a timestamp (expected datetime64)",
                _bad_values(values, good))
    if kind == _NULLS:
        limit = 1.0 - float(kwargs.get("mostly", 1.0))
        share = count / total if total else 0.0
        # Null "values" say nothing; where they are does. One vectorised pass, failures only.
        where = frame.index[frame[column].isna().to_numpy()][:EXAMPLES]
        return (f"{_pct(share)} null (max {_pct(limit)}; {count:,} of {total:,} rows)",
                [f"row {i}" for i in where])
    if kind == _RANGE:
        bounds = _range_text(kwargs.get("min_value"), kwargs.get("max_value"))
        return f"{_values(count)} outside {bounds}", _distinct_examples(result)
    if kind == _DOMAIN:
        allowed = ", ".join(str(v) for v in kwargs.get("value_set", []))
        text = f"{_values(count)} not in {{{allowed}}}"
        if "mostly" in kwargs:
            share = count / total if total else 0.0
            text += (f" ({_pct(share)} of non-null values; at most "
                     f"{_pct(1.0 - float(kwargs['mostly']))} may be unseen)")
        return text, _distinct_examples(result)
    if kind == _UNIQUE:
        return f"{count:,} rows share a duplicated value", _distinct_examples(result)
    if kind == _PERIOD:
        return (f"{_values(count)} outside the {info.get('frequency')} period "
                f"{info.get('period')}",
                _distinct_examples(result, _stamp_text))
    if kind == _FUTURE:
        return (f"{_values(count)} after now ({info.get('now')})",
                _distinct_examples(result, _stamp_text))
    return _describe_extra(kwargs, result, count, total)


def _is_stamp(value: Any) -> bool:
    return isinstance(value, (dt.datetime, pd.Timestamp))


def _is_text_or_date(value: Any) -> bool:
    return isinstance(value, (str, dt.date))


def _describe_extra(kwargs: dict, result: dict, count: int,
                    total: int) -> tuple[str, list[str]]:
    """Any other expectation: its unexpected values, or its observed value and the bounds."""
    if "unexpected_count" in result:
        share = f" ({_pct(count / total)} of {total:,})" if total else ""
        return f"{_values(count)} unexpected{share}", _distinct_examples(result)
    shown = {k: v for k, v in kwargs.items() if v is not None and k not in (
        "column", "column_A", "column_B", "column_list", "batch_id")}
    expected = ", ".join(f"{k}={_num(v) if isinstance(v, float) else v}"
                         for k, v in shown.items())
    observed = result.get("observed_value")
    if isinstance(observed, float):
        observed = f"{observed:,.6g}"
    text = f"observed {observed}" if observed is not None else "failed"
    return text + (f" (expected {expected})" if expected else ""), []


# --------------------------------------------------------------------------- Data Docs

_DOCS_LOCK = threading.Lock()
_SITE = "local_site"
# GX's pages load their logo from GX's S3 bucket, the header's with the data context id and a
# timestamp appended (a tracking pixel), the dark-mode CSS another one: point them at the copy
# GX writes next to the pages instead, so opening a report tells nobody outside anything.
_REMOTE_ASSET = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/([\w.-]+)"
    r"(?:\?[^\"')\s]*)?")


def write_data_docs(result: ValidationResult | Mapping[str, Any] | Path,
                    config: UseCaseConfig, folder: Path, *, batch_name: str = "batch",
                    run_time: dt.datetime | None = None, keep: int = 30) -> Path:
    """Render GX Data Docs for one validation result; return the HTML page of that result.

    ``result`` is a ValidationResult, its ``gx_result`` dict, or a saved ``gx_result.json``
    (e.g. from a quarantine folder): the page is rendered from the stored result, the batch is
    not validated again. ``folder`` holds a file-mode GX project (created on first use); reuse
    one folder per use case for one site whose ``index.html`` lists the newest ``keep``
    validations: GX re-reads every stored result to build the index (0.3 s with one, 1.3 s with
    120, on 2 cores), so older results are removed from the site, pages included (the
    quarantine folder keeps each failed batch's gx_result.json, from which a page can be
    rendered again at any time).
    """
    if isinstance(result, ValidationResult):
        if result.read_error is not None:
            raise ValueError("an unreadable batch has no GX result to render")
        gx_result: Mapping[str, Any] = result.gx_result
    elif isinstance(result, Path):
        gx_result = json.loads(result.read_text(encoding="utf-8"))
    else:
        gx_result = result
    if not gx_result.get("results") and "statistics" not in gx_result:
        raise ValueError("not a GX validation result (no results or statistics)")
    gx = _gx()
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    loaded = ExpectationSuiteValidationResultSchema().load(dict(gx_result))
    suite_name = gx_result.get("suite_name") or f"ctpipe-{config.name}"
    when = run_time or dt.datetime.now(dt.UTC)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=RunIdentifier(run_name=f"{config.name}-{batch_name}", run_time=when),
        batch_identifier=batch_name)
    folder = Path(folder).resolve()
    with _DOCS_LOCK:
        # get_context makes the file context GX's "current" one; put the previous one back so
        # nothing else in the process is redirected to it (our own objects name their context).
        previous = getattr(project_manager, "_project", None)
        try:
            context = gx.get_context(mode="file", project_root_dir=str(folder))
            site = context.variables.data_docs_sites or {}
            if site.get(_SITE, {}).get("show_how_to_buttons", True):
                # Tutorial buttons linking to GX's website have no place in an operator's report.
                site[_SITE]["show_how_to_buttons"] = False
                context.variables.data_docs_sites = site
                context.variables.save()
            store = context.validation_results_store
            store.set(key, loaded)
            _prune(store, keep)
            context.build_data_docs(site_names=[_SITE], resource_identifiers=[key])
            url = context.get_docs_sites_urls(resource_identifier=key,
                                              site_name=_SITE)[0]["site_url"]
        finally:
            project_manager.set_project(previous)
    page = Path(unquote(urlparse(url).path))
    site_root = folder / "gx" / "uncommitted" / "data_docs" / _SITE
    styles = site_root / "static" / "styles"
    for html in (page, site_root / "index.html", *styles.glob("*.css")):
        _localise_assets(html, site_root / "static" / "images")
    # GX deletes pruned results and their pages but leaves their run folders behind.
    for root in (site_root / "validations", folder / "gx" / "uncommitted" / "validations"):
        _remove_empty_dirs(root)
    return page


def _remove_empty_dirs(root: Path) -> None:
    for path, _, _ in os.walk(root, topdown=False):  # children first, so parents empty out
        if Path(path) != root and not any(Path(path).iterdir()):
            Path(path).rmdir()


def _prune(store: Any, keep: int) -> None:
    """Keep the newest ``keep`` results in a docs site's store (the index lists only those)."""
    keys = sorted(store.list_keys(), key=lambda k: (str(k.run_id.run_time), str(k.run_id)))
    for old in keys[:max(len(keys) - max(keep, 1), 0)]:
        store.remove_key(old)


def _localise_assets(path: Path, images: Path) -> None:
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")

    def local(match: re.Match[str]) -> str:
        name = match.group(1) if (images / match.group(1)).is_file() else "logo-long.png"
        return f"{os.path.relpath(images, path.parent)}/{name}"

    fixed = _REMOTE_ASSET.sub(local, text)
    if fixed != text:
        path.write_text(fixed, encoding="utf-8")


# --------------------------------------------------------------------------- reading files

_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_DELIMITERS = (",", ";", "\t", "|")


def read_batch_file(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    """Read a Parquet or CSV batch; every failure is a BatchReadError naming file and problem."""
    path = Path(path)
    try:
        if not path.exists():
            raise _read_error(path, "batch file not found")
        if path.is_dir():
            raise _read_error(path, "is a directory, expected a Parquet or CSV file")
        size = path.stat().st_size
        if size == 0:
            raise _read_error(path, "file is empty (0 bytes)")
        with path.open("rb") as handle:
            head = handle.read(4)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as exc:
        raise _read_error(path, f"cannot open: {exc.strerror or exc}") from exc

    if head == _PARQUET_MAGIC:
        if tail != _PARQUET_MAGIC or size < 12:
            raise _read_error(
                path, f"truncated Parquet file ({size:,} bytes): it starts like Parquet but "
                "the footer is missing; the writer probably did not finish")
        return _read_parquet(path)
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        raise _read_error(
            path, f"not a Parquet file (it starts with {head!r}, not {_PARQUET_MAGIC!r})")
    return _read_csv(path, config)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, NotImplementedError, pa.ArrowException) as exc:
        # Arrow's messages can span lines; the quarantine message is one line.
        raise _read_error(path, f"unreadable Parquet file: {' '.join(str(exc).split())}") \
            from exc


def _read_csv(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    delimiter = config.data.csv_delimiter
    # Categoricals stay text, as they are in Parquet: "01" must not become the integer 1.
    text_columns = {c: "str" for c in config.features.categorical}
    try:
        frame = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", dtype=text_columns)
    except UnicodeDecodeError as exc:
        raise _read_error(
            path, f"not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "export the file as UTF-8") from exc
    except pd.errors.EmptyDataError as exc:
        raise _read_error(path, "CSV file has no header line and no data") from exc
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise _read_error(
            path, f"malformed CSV (delimiter {delimiter!r}): {exc}".strip()) from exc
    if frame.shape[1] == 1 and len(_batch_columns(config)) > 1:
        raise _read_error(path, _one_column_problem(frame.columns[0], delimiter))
    return frame


def _one_column_problem(header: object, delimiter: str) -> str:
    text = str(header)
    counts = {d: text.count(d) for d in _DELIMITERS if d != delimiter}
    likely = max(counts, key=lambda d: counts[d])
    hint = (f"; the header looks {likely!r}-delimited" if counts[likely] else "")
    return (f"only one column found ({text[:80]!r}) with delimiter {delimiter!r} "
            f"(config data.csv_delimiter): wrong delimiter?{hint}")
