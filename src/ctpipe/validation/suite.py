"""The GX expectation suite built from a use-case config, and the check of `validation.extra`.

The suite holds the rules that depend on the config alone (row count, columns, dtypes, nulls,
ranges, domains, uniqueness, the extra expectations); rules.py adds those that depend on the
call (period, future, recent row counts).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.config import ConfigError, UseCaseConfig, config_problems
from ctpipe.validation.spec import (
    COLUMNS,
    DOMAIN,
    DTYPE,
    ERROR,
    EXISTS,
    EXTRA,
    NULLS,
    PRESENT_COLUMNS,
    RANGE,
    ROWS,
    TIME_DTYPE,
    UNIQUE,
    WARNING,
    Spec,
    apply_severity,
    extra_columns,
    finite_bounds,
    load_gx,
    max_null_share,
    range_text,
)

if TYPE_CHECKING:
    import great_expectations as gx


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
# (runtime._prepare), so this one type covers every timestamp column pandas can hold.
_TIME_TYPE = "datetime64"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip()).lower()


def expectation_class(type_name: str) -> Any:
    """The GX expectation class for a snake_case or CamelCase type name, from GX's registry."""
    load_gx()
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


def check_extra_expectation(type_name: str, kwargs: Mapping[str, Any]) -> Any:
    """The GX expectation class; ValueError unless GX knows ``type_name`` and takes ``kwargs``."""
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
    return cls


def check_config_expectations(config: UseCaseConfig, source: Path | str) -> None:
    """Raise ConfigError unless GX knows every ``validation.extra`` expectation and its kwargs.

    config.py does not import GX (seconds to import); workspace.open_workspace calls this right
    after loading a config, so a typo names its file and config key before any batch is read.
    The message reads like config.py's own errors, one line per bad entry.
    """
    problems = []
    for i, extra in enumerate(config.validation.extra):
        try:
            check_extra_expectation(extra.type, extra.kwargs)
        except ValueError as exc:
            problems.append((f"validation.extra.{i}", str(exc)))
    if problems:
        raise ConfigError(config_problems(source, problems))


def _unseen_share(config: UseCaseConfig, column: str) -> float:
    v = config.validation
    return v.unseen_category_share_by_column.get(column, v.unseen_category_share)


def _rule_columns(config: UseCaseConfig, rule: str) -> list[str]:
    """Columns a column rule applies to, for checking `column:rule` entries in warn/ignore."""
    data, v = config.data, config.validation
    return {
        "column_exists": config.batch_columns,
        "nulls": config.batch_columns,
        "dtype": [data.time_column, *config.features.numeric],
        "range": list(config.features.numeric),
        "domain": list(v.domains),
        "unique": [data.id_column] if data.id_column else [],
        "period": [data.time_column],
        "future": [data.time_column],
        "seen_in_training": list(config.features.categorical),
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


def static_specs(config: UseCaseConfig) -> list[Spec]:
    gx = load_gx()
    E = gx.expectations
    v = config.validation
    data = config.data
    columns = config.batch_columns
    unknown = sorted(set(v.null_fraction) - set(columns))
    if unknown:
        # Also checked by config.py; kept for configs built in code with model_copy(update=...).
        raise ValueError(f"use case {config.name!r}: validation.null_fraction names columns "
                         f"that are not in the batch: {unknown}")
    _check_rule_columns(config)

    specs: list[Spec] = []
    rows = {"min_value": v.min_rows, "max_value": v.max_rows}
    specs.append(Spec(ROWS, "row count", E.ExpectTableRowCountToBeBetween, rows))
    specs += [Spec(EXISTS, "column exists", E.ExpectColumnToExist, {"column": c})
              for c in columns]
    # The set is filled in per batch (runtime): the allowed columns the batch has. An
    # extra column then fails it, while a missing one stays the "column exists" rule's to report
    # (a fixed set would also fail every batch without the optional target column).
    specs.append(Spec(COLUMNS, "no unexpected columns", E.ExpectTableColumnsToMatchSet,
                      {"column_set": {"$PARAMETER": PRESENT_COLUMNS}, "exact_match": True}))
    specs.append(Spec(TIME_DTYPE, "timestamp dtype", E.ExpectColumnValuesToBeOfType,
                      {"column": data.time_column, "type_": _TIME_TYPE}))
    specs += [Spec(DTYPE, "numeric dtype", E.ExpectColumnValuesToBeInTypeList,
                   {"column": c, "type_list": _NUMERIC_TYPES}) for c in config.features.numeric]
    for col in columns:
        limit = max_null_share(config, col)
        if limit < 1:  # a limit of 100 % constrains nothing
            specs.append(Spec(NULLS, "not null", E.ExpectColumnValuesToNotBeNull,
                              {"column": col, "mostly": 1.0 - limit}))
    for col in config.features.numeric:
        # Every numeric feature is at least finite: an open side of a range admits no infinity.
        rule = v.ranges.get(col)
        lo, hi = (rule.min, rule.max) if rule is not None else (None, None)
        name = "finite" if lo is None and hi is None else f"in range {range_text(lo, hi)}"
        low, high = finite_bounds(lo, hi)
        specs.append(Spec(RANGE, name, E.ExpectColumnValuesToBeBetween,
                          {"column": col, "min_value": low, "max_value": high}))
    for col, values in v.domains.items():
        share = _unseen_share(config, col)
        kwargs: dict[str, Any] = {"column": col, "value_set": list(values)}
        if share > 0:
            kwargs["mostly"] = 1.0 - share
        specs.append(Spec(DOMAIN, "in set", E.ExpectColumnValuesToBeInSet, kwargs))
    if data.id_column:
        specs.append(Spec(UNIQUE, "unique", E.ExpectColumnValuesToBeUnique,
                          {"column": data.id_column}))

    specs = apply_severity(config, specs)
    for i, extra in enumerate(v.extra):
        missing = sorted(set(extra_columns(extra.kwargs)) - set(columns))
        if missing:
            raise ValueError(f"use case {config.name!r}: validation.extra.{i} ({extra.type}) "
                             f"names columns that are not in the batch: {missing}")
        try:  # open_workspace checked this; a config built in code may not have been
            cls = check_extra_expectation(extra.type, extra.kwargs)
        except ValueError as exc:
            raise ValueError(f"use case {config.name!r}: validation.extra.{i}: {exc}") from exc
        specs.append(Spec(EXTRA, extra.rule or cls.expectation_type, cls, dict(extra.kwargs),
                          ERROR if extra.severity == "error" else WARNING, {"index": i}))
    return specs


def to_expectations(specs: list[Spec]) -> list[Any]:
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
    gx = load_gx()
    # Passed to the constructor: suite.add_expectation() needs a Data Context (it persists the
    # suite when the suite belongs to one), and build_suite must work without one.
    return gx.ExpectationSuite(name=f"ctpipe-{config.name}-{config.config_hash}",
                               expectations=to_expectations(static_specs(config)))
