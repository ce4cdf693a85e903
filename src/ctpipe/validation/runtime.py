"""The GX runtime: validate a batch frame (or file) against the suite built from its config.

GX objects (context, data source, asset, batch definition, base suite) are built once per process
and config and reused: building them costs far more than validating a small batch. Rules that
depend on the call (period, future, recent row counts) are appended to a fresh, unattached copy
of the suite per call; nothing is stored in the context, so it does not grow. All GX work runs
under one lock, because a data source's execution engine caches "the" batch under a fixed id, so
two threads validating through it at once would read each other's frames.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ctpipe.batch_reader import (
    BatchReadError,
    as_numbers,
    local_times,
    naive_and_aware,
    read_batch_file,
)
from ctpipe.config import UseCaseConfig
from ctpipe.validation.learned import LearnedSchema, as_category_text, learned_specs
from ctpipe.validation.messages import Failure, ValidationResult, describe_failures
from ctpipe.validation.rules import call_time_specs
from ctpipe.validation.spec import (
    ERROR,
    PRESENT_COLUMNS,
    Spec,
    load_gx,
)
from ctpipe.validation.suite import static_specs, to_expectations

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import AbstractDataContext


# BASIC, not SUMMARY: SUMMARY also builds unexpected index lists, and GX does that by listing every
# unexpected row index in Python before keeping 20: measured on 2M rows, a batch with 17 broken
# rules took 8.2 s with SUMMARY vs 3.3 s with BASIC (1.5 vs 1.3 s for a clean batch). BASIC still
# gives partial_unexpected_list (the examples); null rows are located with pandas instead.
_RESULT_FORMAT = "BASIC"
_MAX_PLANS = 16  # configs kept built: a process that reloads edited configs stays bounded


@dataclass
class _Plan:
    specs: list[Spec]  # the config-only rules
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
        gx = load_gx()
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
    specs = static_specs(config)
    suite = load_gx().ExpectationSuite(name=name, expectations=to_expectations(specs))
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


def _present_allowed(frame: pd.DataFrame, config: UseCaseConfig) -> list[str]:
    # The target may ride along (a labelled file validated by hand): it is never a feature.
    allowed = set(config.read_columns)
    return [c for c in frame.columns if c in allowed]


def _as_category_text(frame: pd.DataFrame, config: UseCaseConfig,
                      learned: Sequence[str]) -> dict[str, pd.Series]:
    """Domain columns compared on their string form, as features.py feeds them to the model.

    Domains in the config are strings; a categorical arriving as int/bool codes (e.g. a Parquet
    file written with integer codes) would otherwise fail every row. Columns compared with the
    training categories (``learned``) are named as the drift profile names its categories (7.0
    and 7 are one code). String-typed columns pass through untouched, so the common case costs
    nothing.
    """
    changes = {
        col: frame[col].astype("str").where(frame[col].notna())
        for col in config.validation.domains
        if col in frame.columns and not pd.api.types.is_string_dtype(frame[col])
    }
    for col in learned:
        if col in frame.columns and not pd.api.types.is_string_dtype(frame[col]):
            changes[col] = as_category_text(frame[col])
    return changes


def _parse_times(values: pd.Series, zone: str) -> pd.Series | None:
    """Text timestamps parsed as features.py would (batch_reader.parse_local_times); None if
    any value fails."""
    present = values.notna()
    # ISO first: fast, and it takes date-only and full stamps. Then times with and without an
    # offset mixed, each by its rule (naive_and_aware). utc=True last: text with mixed UTC
    # offsets (a day across a DST change) parses only that way; local_times then converts
    # it to data.timezone.
    for fmt, utc in (("ISO8601", False), (None, False)):
        try:
            parsed = pd.to_datetime(values, errors="coerce", format=fmt, utc=utc)
        except (ValueError, TypeError, OverflowError):  # e.g. mixed UTC offsets
            continue
        if not (parsed.isna() & present).any():
            return parsed
    mixed = naive_and_aware(values, zone)
    if mixed is not None and not (mixed.isna() & present).any():
        return mixed
    try:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        return None
    return None if (parsed.isna() & present).any() else parsed


def _is_text_or_date(value: Any) -> bool:
    return isinstance(value, (str, dt.date))


def _prepare(frame: pd.DataFrame, config: UseCaseConfig,
             learned: Sequence[str] = ()) -> tuple[pd.DataFrame, str]:
    """The frame as the suite sees it, and the zone its naive time column is in.

    - domain columns, and the ``learned`` columns compared with the training categories, as
      text (see _as_category_text);
    - a text time column that parses completely becomes timestamps (a CSV batch; features.py
      parses it the same way); one that does not stays text and fails the dtype rule;
    - the time column as naive wall-clock time in data.timezone (batch_reader.local_times, as
      training and scoring see it), so a daily batch is that zone's day and one dtype
      ("datetime64") covers every column.
    """
    changes = _as_category_text(frame, config, learned)
    time = config.data.time_column
    if time in frame.columns:
        zone = config.data.timezone
        original = frame[time]
        values = local_times(original, zone)
        if pd.api.types.is_string_dtype(values) or (
                values.dtype == object and values.map(_is_text_or_date, na_action="ignore")
                .fillna(True).all()):
            # Not an object column holding numbers: to_datetime would read them as epoch
            # nanoseconds, hiding a broken column behind "dates in 1970".
            parsed = _parse_times(values, zone)
            if parsed is not None and pd.api.types.is_datetime64_any_dtype(parsed):
                values = local_times(parsed, zone)  # text with UTC offsets is tz-aware
        if values is not original:
            changes[time] = values
        if pd.api.types.is_datetime64_dtype(values) and values.dtype != "datetime64[ns]":
            # GX compares datetime64[ns] columns vectorised but any other unit (pandas 3 and
            # Parquet give [us]) value by value in Python: measured 1.4 s per rule on 200,000
            # rows that way, against milliseconds vectorised.
            try:
                changes[time] = values.astype("datetime64[ns]")
            except (OverflowError, ValueError):  # outside 1677..2262: the slow path still works
                pass
    for col in config.features.numeric:
        # Numbers in any form training reads as numbers (features.py: pd.to_numeric, float64):
        # booleans, nullable Int64/Float64 (GX refuses them by name), Decimals. GX also
        # vectorises ranges only on int64/float64; other dtypes compare value by value.
        values = frame[col] if col in frame.columns else None
        if values is None or values.dtype in ("int64", "float64"):
            continue
        numbers = as_numbers(values)
        if numbers is not None:
            changes[col] = numbers
    return (frame.assign(**changes) if changes else frame), config.data.timezone


def validate_frame(frame: pd.DataFrame, config: UseCaseConfig, *,
                   batch_date: dt.date | None = None, recent_rows: list[int] | None = None,
                   now: dt.datetime | None = None,
                   training: LearnedSchema | None = None) -> ValidationResult:
    """Validate one batch (no target column) against the suite built from ``config``.

    ``batch_date`` enables the period and future rules (``now`` defaults to the current time;
    the period is a day, week or month of data.timezone, naive timestamps are read as in that
    zone, tz-aware ones converted to it); ``now`` alone enables the future rule.
    ``recent_rows``, the row counts of the batches before this one (oldest first), enables the
    row-count-vs-recent rule when the config sets ``validation.row_count_tolerance``.
    ``training``, the categories the champion saw in training (``learned.NONE_LEARNED``: no
    champion), enables rule seen_in_training; without it the report says it was not checked.
    """
    learned, learned_skipped = learned_specs(config, training)
    prepared, zone = _prepare(frame, config, [s.kwargs["column"] for s in learned])
    call_specs, skipped = call_time_specs(config, batch_date, recent_rows, now, zone)
    call_specs, skipped = [*call_specs, *learned], [*skipped, *learned_skipped]
    with _LOCK:
        plan = _plan(config)
        suite = plan.suite
        if call_specs:
            # Fresh expectation objects: copying GX's deep-copies the suite each one points to
            # (0.6 s per call); building ~50 small pydantic models costs a few milliseconds.
            suite = load_gx().ExpectationSuite(
                name=plan.suite.name,
                expectations=to_expectations([*plan.specs, *call_specs]))
        try:
            batch = plan.batch_definition.get_batch(batch_parameters={"dataframe": prepared})
            result = batch.validate(suite, result_format=_RESULT_FORMAT, expectation_parameters={
                PRESENT_COLUMNS: _present_allowed(prepared, config)})
        finally:
            _release_batch(plan)
    gx_result = result.to_json_dict()
    found = describe_failures(gx_result["results"], prepared)
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
                  now: dt.datetime | None = None,
                  training: LearnedSchema | None = None) -> ValidationResult:
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
    return validate_frame(frame, config, batch_date=batch_date, recent_rows=recent_rows, now=now,
                          training=training)
