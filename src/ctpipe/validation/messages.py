"""Failures as people read them: GX results turned into Failure lines, messages and markdown.

A missing column is reported once ("column exists"); the errors its other expectations raise
are follow-ons and are dropped, as are range errors on a column already failing its dtype check
and period/future errors on a time column that is not a timestamp.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ctpipe.batch_reader import numeric_times
from ctpipe.validation.learned import describe_unseen
from ctpipe.validation.spec import (
    COLUMNS,
    DOMAIN,
    DTYPE,
    ERROR,
    EXISTS,
    EXTRA,
    FUTURE,
    NULLS,
    PERIOD,
    RANGE,
    RECENT,
    ROWS,
    SEEN,
    TIME_DTYPE,
    UNIQUE,
    extra_columns,
    number_text,
    range_text,
)

EXAMPLES = 5  # offending values shown per failure


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


def _exception_message(info: dict | None) -> str | None:
    """GX reports errors either flat or keyed by metric id, each with an exception_message."""
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info["raised_exception"] else None
    messages = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
    messages = [m for m in messages if m]
    return messages[0] if messages else None


def describe_failures(results: list[dict], frame: pd.DataFrame) -> list[Failure]:
    def meta(r: dict) -> dict:
        return r["expectation_config"].get("meta", {}).get("ctpipe", {})

    def failed_columns(*kinds: str) -> set[str]:
        return {r["expectation_config"]["kwargs"].get("column") for r in results
                if meta(r).get("kind") in kinds and not r["success"]}

    results = sorted(results, key=lambda r: meta(r).get("order", math.inf))
    # Follow-on errors are suppressed: everything about a missing column, range errors on a
    # column whose dtype is already reported as wrong, period/future errors on a time column
    # that is not a timestamp.
    missing = failed_columns(EXISTS)
    bad_dtype = failed_columns(DTYPE)
    bad_time = failed_columns(TIME_DTYPE)
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
        if kind != EXISTS and column in missing:
            continue
        if error and kind == RANGE and column in bad_dtype:
            continue
        if kind in (PERIOD, FUTURE) and column in bad_time:
            continue
        if kind == EXTRA and set(extra_columns(kwargs)) & missing:
            continue
        if kind == COLUMNS:
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
    if kind == EXISTS:
        close = _similar(str(column), frame.columns)
        hint = f" (similar: {', '.join(repr(c) for c in close)})" if close else ""
        return f"missing from the batch{hint}", []
    if kind == COLUMNS:
        extra = _unexpected_columns(result)
        return (f"{len(extra)} column{'s' if len(extra) != 1 else ''} not in the config "
                f"(allowed: time, id, target and feature columns)",
                [repr(c) for c in extra[:EXAMPLES]])
    if kind in (ROWS, RECENT):
        rows = int(result.get("observed_value") or 0)
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        if kind == RECENT:
            return (f"{rows:,} row{'s' if rows != 1 else ''} (expected {lo:,} to {hi:,}: median "
                    f"{info.get('median', 0):,.0f} of the last {info.get('batches')} "
                    f"batch{'' if info.get('batches') == 1 else 'es'})",
                    [])
        bound = f"max {hi:,}" if hi is not None and rows > hi else f"min {lo:,}"
        empty = ": the batch is empty" if rows == 0 else ""
        return f"{rows:,} row{'s' if rows != 1 else ''} ({bound}){empty}", []
    if kind == DTYPE:
        if "unexpected_count" in result:  # object column: GX checked each value's type
            return (f"dtype object with {count:,} non-numeric value{'s' if count != 1 else ''} "
                    f"({_pct(count / total if total else 0)})"), _distinct_examples(result)
        observed = f"dtype {result.get('observed_value')} (expected an int or float dtype)"
        if column in frame.columns and pd.api.types.is_string_dtype(frame[column]):
            # Numbers stored as text: name the values that are not numbers at all.
            values = frame[column]
            bad = _bad_values(values, pd.to_numeric(values, errors="coerce").notna())
            return (observed + ("; values that are not numbers" if bad else ""), bad)
        return observed, []
    if kind == TIME_DTYPE:
        values = frame[column]
        if pd.api.types.is_string_dtype(values):  # text that did not parse completely
            good = pd.to_datetime(values, errors="coerce", format="ISO8601").notna()
        elif values.dtype == object:  # mixed values: timestamps and others
            good = values.map(_is_stamp)
        else:  # e.g. epoch numbers or years: nothing says which unit they are in
            numbers = numeric_times(values)
            return (f"dtype {values.dtype} (expected datetime64)"
                    + (f": {numbers}" if numbers else "")), []
        n_bad = int((values.notna() & ~good.astype(bool)).sum())
        return (f"dtype {values.dtype} with {n_bad:,} value{'s' if n_bad != 1 else ''} that "
                f"{'are' if n_bad != 1 else 'is'} not a timestamp (expected datetime64)",
                _bad_values(values, good))
    if kind == NULLS:
        limit = 1.0 - float(kwargs.get("mostly", 1.0))
        share = count / total if total else 0.0
        # Null "values" say nothing; where they are does. One vectorised pass, failures only.
        # Positions counted from 1, as a reader counts the rows under a header (a CSV's file
        # line is one more); never the frame's index, which starts at 0 and may have gaps.
        where = np.flatnonzero(frame[column].isna().to_numpy())[:EXAMPLES]
        return (f"{_pct(share)} null (max {_pct(limit)}, validation.null_fraction; {count:,} "
                f"of {total:,} rows)",
                [f"data row {i + 1}" for i in where])
    if kind == RANGE:
        bounds = range_text(kwargs.get("min_value"), kwargs.get("max_value"))
        return f"{_values(count)} outside {bounds}", _distinct_examples(result)
    if kind == DOMAIN:
        allowed = ", ".join(str(v) for v in kwargs.get("value_set", []))
        text = f"{_values(count)} not in {{{allowed}}}"
        if "mostly" in kwargs:
            share = count / total if total else 0.0
            text += (f" ({_pct(share)} of non-null values; at most "
                     f"{_pct(1.0 - float(kwargs['mostly']))} may be unseen)")
        return text, _distinct_examples(result)
    if kind == UNIQUE:
        return f"{count:,} rows share a duplicated value", _distinct_examples(result)
    if kind == SEEN:
        return describe_unseen(frame[column], kwargs.get("value_set", []), kwargs,
                               info.get("source"), EXAMPLES), []
    if kind == PERIOD:
        return (f"{_values(count)} outside the {info.get('frequency')} period "
                f"{info.get('period')}",
                _distinct_examples(result, _stamp_text))
    if kind == FUTURE:
        return (f"{_values(count)} after now ({info.get('now')})",
                _distinct_examples(result, _stamp_text))
    return _describe_extra(kwargs, result, count, total)


def _is_stamp(value: Any) -> bool:
    return isinstance(value, (dt.datetime, pd.Timestamp))


def _describe_extra(kwargs: dict, result: dict, count: int,
                    total: int) -> tuple[str, list[str]]:
    """Any other expectation: its unexpected values, or its observed value and the bounds."""
    if "unexpected_count" in result:
        share = f" ({_pct(count / total)} of {total:,})" if total else ""
        return f"{_values(count)} unexpected{share}", _distinct_examples(result)
    shown = {k: v for k, v in kwargs.items() if v is not None and k not in (
        "column", "column_A", "column_B", "column_list", "batch_id")}
    expected = ", ".join(f"{k}={number_text(v) if isinstance(v, float) else v}"
                         for k, v in shown.items())
    observed = result.get("observed_value")
    if isinstance(observed, float):
        observed = f"{observed:,.6g}"
    text = f"observed {observed}" if observed is not None else "failed"
    return text + (f" (expected {expected})" if expected else ""), []
