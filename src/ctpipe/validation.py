"""Batch validation: a Great Expectations suite generated from the use-case config.

A batch arrives WITHOUT its target (labels land later in a separate file); it carries the time
column, the id column (if configured) and every feature. The suite checks, in this order:

- the row count is within ``validation.min_rows`` .. ``validation.max_rows``;
- the time column, the id column and every feature column exist;
- numeric features have a numeric dtype (a column of strings or mixed values fails here);
- at most ``validation.max_null_fraction`` nulls per column (``validation.null_fraction``
  overrides it per column);
- ``validation.ranges`` and ``validation.domains`` hold;
- the id column is unique.

A missing column is reported once ("column exists"); the errors its other expectations raise
are follow-ons and are dropped, as are range errors on a column already failing its dtype check.

GX objects (context, data source, asset, batch definition, suite) are built once per process and
config and reused: building them costs far more than validating a small batch. All GX work runs
under one lock, because a data source's execution engine caches "the" batch under a fixed id, so
two threads validating through it at once would read each other's frames.
"""

from __future__ import annotations

import difflib
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

# Expectation kinds, stored in each expectation's meta so results map back without relying on
# result order (GX returns results in metric-graph order, not suite order).
_EXISTS, _DTYPE, _NULLS, _RANGE, _DOMAIN, _ROWS, _UNIQUE = (
    "exists", "dtype", "nulls", "range", "domain", "rows", "unique")


class BatchReadError(ValueError):
    """A batch file that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Failure:
    column: str | None  # None for table-level rules
    rule: str  # short human name: "not null", "in range [0, 23]", "in set", ...
    expectation: str  # GX expectation type
    observed: str  # what was found, e.g. "3.2% null (max 0.0%; 64 of 2,000 rows)"
    examples: list[str] = field(default_factory=list)  # at most EXAMPLES offending values
    severity: str = "error"

    def line(self) -> str:
        text = f"{self.column or 'table'}: {self.rule}: {self.observed}"
        return text + (f" (e.g. {', '.join(self.examples)})" if self.examples else "")


@dataclass(frozen=True)
class ValidationResult:
    passed: bool
    rows: int
    failures: list[Failure]
    evaluated: int  # number of expectations evaluated
    gx_result: dict  # the GX suite validation result, JSON-able (for the quarantine file)

    def summary_markdown(self, source: str) -> str:
        verdict = "passed" if self.passed else "FAILED"
        lines = [
            f"# Validation {verdict}: `{source}`",
            "",
            f"{self.rows:,} rows, {self.evaluated} expectations evaluated, "
            f"{len(self.failures)} failed.",
        ]
        if self.failures:
            lines += ["", "| column | rule | observed | examples |", "|---|---|---|---|"]
            for f in self.failures:
                cells = [f.column or "(table)", f.rule, f.observed, ", ".join(f.examples)]
                lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def message(self, source: str) -> str:
        if self.passed:
            return (f"{source}: batch passed validation ({self.rows:,} rows, "
                    f"{self.evaluated} expectations).")
        if not self.failures:
            return f"{source}: batch failed validation ({self.rows:,} rows)."
        problems = "; ".join(f.line() for f in self.failures)
        return (f"{source}: batch failed validation with {len(self.failures)} problem"
                f"{'s' if len(self.failures) != 1 else ''} ({self.rows:,} rows, "
                f"{self.evaluated} expectations evaluated): {problems}.")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- suite


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _range_text(lo: float | None, hi: float | None) -> str:
    left = "(-inf" if lo is None else f"[{_num(lo)}"
    right = "inf)" if hi is None else f"{_num(hi)}]"
    return f"{left}, {right}"


def _max_null(config: UseCaseConfig, column: str) -> float:
    return config.validation.null_fraction.get(column, config.validation.max_null_fraction)


def _batch_columns(config: UseCaseConfig) -> list[str]:
    """Columns a batch must carry: time, id (if any), features. Not the target."""
    data = config.data
    return [data.time_column, *([data.id_column] if data.id_column else []),
            *config.features.raw]


def build_suite(config: UseCaseConfig) -> gx.ExpectationSuite:
    """The expectation suite for one batch of this use case (not attached to any context)."""
    gx = _gx()
    E = gx.expectations
    v = config.validation
    columns = _batch_columns(config)
    unknown = sorted(set(v.null_fraction) - set(columns))
    if unknown:
        # config.py does not cross-check these keys; a typo would silently disable an override.
        raise ValueError(f"use case {config.name!r}: validation.null_fraction names columns "
                         f"that are not in the batch: {unknown}")

    specs: list[tuple[str, str, Any, dict[str, Any]]] = []  # (kind, rule, class, kwargs)
    specs.append((_ROWS, "row count", E.ExpectTableRowCountToBeBetween,
                  {"min_value": v.min_rows, "max_value": v.max_rows}))
    specs += [(_EXISTS, "column exists", E.ExpectColumnToExist, {"column": c}) for c in columns]
    specs += [(_DTYPE, "numeric dtype", E.ExpectColumnValuesToBeInTypeList,
               {"column": c, "type_list": _NUMERIC_TYPES}) for c in config.features.numeric]
    for col in columns:
        limit = _max_null(config, col)
        if limit < 1:  # a limit of 100 % constrains nothing
            specs.append((_NULLS, "not null", E.ExpectColumnValuesToNotBeNull,
                          {"column": col, "mostly": 1.0 - limit}))
    for col, rule in v.ranges.items():
        if rule.min is not None or rule.max is not None:
            specs.append((_RANGE, f"in range {_range_text(rule.min, rule.max)}",
                          E.ExpectColumnValuesToBeBetween,
                          {"column": col, "min_value": rule.min, "max_value": rule.max}))
    specs += [(_DOMAIN, "in set", E.ExpectColumnValuesToBeInSet,
               {"column": c, "value_set": list(values)}) for c, values in v.domains.items()]
    if config.data.id_column:
        specs.append((_UNIQUE, "unique", E.ExpectColumnValuesToBeUnique,
                      {"column": config.data.id_column}))

    # Passed to the constructor: suite.add_expectation() needs a Data Context (it persists the
    # suite when the suite belongs to one), and build_suite must work without one.
    expectations = [cls(**kwargs, meta={"ctpipe": {"kind": kind, "rule": rule, "order": order}})
                    for order, (kind, rule, cls, kwargs) in enumerate(specs)]
    return gx.ExpectationSuite(name=f"ctpipe-{config.name}-{config.config_hash}",
                               expectations=expectations)


# --------------------------------------------------------------------------- GX plumbing


def _gx() -> Any:
    import great_expectations as gx

    return gx


@dataclass
class _Plan:
    suite: Any
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
    suite = context.suites.add(build_suite(config))
    datasource = context.data_sources.add_pandas(name)
    batch_definition = datasource.add_dataframe_asset("batch").add_batch_definition_whole_dataframe(
        "whole-batch")
    plan = _PLANS[key] = _Plan(suite, datasource, batch_definition)
    while len(_PLANS) > _MAX_PLANS:
        _, old = _PLANS.popitem(last=False)
        context.data_sources.delete(old.datasource.name)
        context.suites.delete(old.suite.name)
    return plan


def _release_batch(plan: _Plan) -> None:
    """Drop the frame GX keeps cached in the data source's execution engine after a run.

    Without this every use case pins its last batch (hundreds of MB for fraud) until the next one.
    """
    manager = plan.datasource.get_execution_engine().batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


# --------------------------------------------------------------------------- validation


def _as_category_text(frame: pd.DataFrame, config: UseCaseConfig) -> pd.DataFrame:
    """Domain columns compared on their string form, as features.py feeds them to the model.

    Domains in the config are strings; a categorical arriving as int/bool codes (e.g. a Parquet
    file written with integer codes) would otherwise fail every row. String-typed columns pass
    through untouched, so the common case costs nothing.
    """
    convert = {
        col: frame[col].astype("str").where(frame[col].notna())
        for col in config.validation.domains
        if col in frame.columns and not pd.api.types.is_string_dtype(frame[col])
    }
    return frame.assign(**convert) if convert else frame


def validate_frame(frame: pd.DataFrame, config: UseCaseConfig) -> ValidationResult:
    """Validate one batch (no target column) against the suite built from ``config``."""
    frame = _as_category_text(frame, config)
    with _LOCK:
        plan = _plan(config)
        try:
            batch = plan.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(plan.suite, result_format=_RESULT_FORMAT)
        finally:
            _release_batch(plan)
    gx_result = result.to_json_dict()
    failures = _failures(gx_result["results"], frame)
    return ValidationResult(
        passed=bool(gx_result["success"]) and not failures,
        rows=len(frame),
        failures=failures,
        evaluated=int(gx_result["statistics"]["evaluated_expectations"]),
        gx_result=gx_result,
    )


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

    results = sorted(results, key=lambda r: meta(r).get("order", math.inf))
    # Follow-on errors are suppressed: everything about a missing column, and range errors on a
    # column whose dtype is already reported as wrong.
    missing = {r["expectation_config"]["kwargs"]["column"] for r in results
               if meta(r).get("kind") == _EXISTS and not r["success"]}
    bad_dtype = {r["expectation_config"]["kwargs"]["column"] for r in results
                 if meta(r).get("kind") == _DTYPE and not r["success"]}
    failures = []
    for r in results:
        if r["success"]:
            continue
        cfg = r["expectation_config"]
        info = meta(r)
        kind = info.get("kind")
        column = cfg["kwargs"].get("column")
        error = _exception_message(r.get("exception_info"))
        if kind != _EXISTS and column in missing:
            continue
        if error and kind == _RANGE and column in bad_dtype:
            continue
        rule = info.get("rule", cfg["type"])
        if error:
            failures.append(Failure(column, rule, cfg["type"], f"could not be evaluated: {error}"))
            continue
        observed, examples = _describe(kind, cfg["kwargs"], r.get("result") or {}, column,
                                       frame)
        failures.append(Failure(column, rule, cfg["type"], observed, examples))
    return failures


def _values(count: int) -> str:
    return f"{count:,} value{'s' if count != 1 else ''}"


def _pct(share: float) -> str:
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share:.1%}"


def _value_text(value: Any) -> str:
    # repr for text so an empty string or stray whitespace is visible; plain str otherwise.
    return repr(value) if isinstance(value, str) else str(value)


def _distinct_examples(result: dict) -> list[str]:
    # The partial list holds the first 20 unexpected values, repeats included.
    values = dict.fromkeys(_value_text(v) for v in result.get("partial_unexpected_list") or [])
    return list(values)[:EXAMPLES]


def _describe(kind: str | None, kwargs: dict, result: dict, column: str | None,
              frame: pd.DataFrame) -> tuple[str, list[str]]:
    """The observed text and examples for one failed expectation."""
    count = int(result.get("unexpected_count") or 0)
    total = int(result.get("element_count") or 0)
    if kind == _EXISTS:
        close = difflib.get_close_matches(str(column), [str(c) for c in frame.columns], n=3)
        hint = f" (similar: {', '.join(repr(c) for c in close)})" if close else ""
        return f"missing from the batch{hint}", []
    if kind == _ROWS:
        rows = int(result.get("observed_value") or 0)
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        bound = f"max {hi:,}" if hi is not None and rows > hi else f"min {lo:,}"
        return f"{rows:,} row{'s' if rows != 1 else ''} ({bound})", []
    if kind == _DTYPE:
        if "unexpected_count" in result:  # object column: GX checked each value's type
            return (f"dtype object with {count:,} non-numeric value{'s' if count != 1 else ''} "
                    f"({_pct(count / total if total else 0)})"), _distinct_examples(result)
        return f"dtype {result.get('observed_value')} (expected an int or float dtype)", []
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
        return f"{_values(count)} not in {{{allowed}}}", _distinct_examples(result)
    if kind == _UNIQUE:
        return f"{count:,} rows share a duplicated value", _distinct_examples(result)
    return f"{_values(count)} unexpected", _distinct_examples(result)


# --------------------------------------------------------------------------- reading files

_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_DELIMITERS = (",", ";", "\t", "|")


def read_batch_file(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    """Read a Parquet or CSV batch; every failure is a BatchReadError naming file and problem."""
    path = Path(path)
    try:
        if not path.exists():
            raise BatchReadError(f"{path}: batch file not found")
        if path.is_dir():
            raise BatchReadError(f"{path}: is a directory, expected a Parquet or CSV file")
        size = path.stat().st_size
        if size == 0:
            raise BatchReadError(f"{path}: file is empty (0 bytes)")
        with path.open("rb") as handle:
            head = handle.read(4)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as exc:
        raise BatchReadError(f"{path}: cannot open: {exc.strerror or exc}") from exc

    if head == _PARQUET_MAGIC:
        if tail != _PARQUET_MAGIC or size < 12:
            raise BatchReadError(
                f"{path}: truncated Parquet file ({size:,} bytes): it starts like Parquet but "
                "the footer is missing; the writer probably did not finish")
        return _read_parquet(path)
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        raise BatchReadError(
            f"{path}: not a Parquet file (it starts with {head!r}, not {_PARQUET_MAGIC!r})")
    return _read_csv(path, config)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, NotImplementedError, pa.ArrowException) as exc:
        raise BatchReadError(f"{path}: unreadable Parquet file: {exc}") from exc


def _read_csv(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    delimiter = config.data.csv_delimiter
    # Categoricals stay text, as they are in Parquet: "01" must not become the integer 1.
    text_columns = {c: "str" for c in config.features.categorical}
    try:
        frame = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", dtype=text_columns)
    except UnicodeDecodeError as exc:
        raise BatchReadError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "export the file as UTF-8") from exc
    except pd.errors.EmptyDataError as exc:
        raise BatchReadError(f"{path}: CSV file has no header line and no data") from exc
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise BatchReadError(
            f"{path}: malformed CSV (delimiter {delimiter!r}): {exc}".strip()) from exc
    if frame.shape[1] == 1 and len(_batch_columns(config)) > 1:
        raise BatchReadError(_one_column_message(path, frame.columns[0], delimiter))
    return frame


def _one_column_message(path: Path, header: object, delimiter: str) -> str:
    text = str(header)
    counts = {d: text.count(d) for d in _DELIMITERS if d != delimiter}
    likely = max(counts, key=lambda d: counts[d])
    hint = (f"; the header looks {likely!r}-delimited" if counts[likely] else "")
    return (f"{path}: only one column found ({text[:80]!r}) with delimiter {delimiter!r} "
            f"(config data.csv_delimiter): wrong delimiter?{hint}")
