"""Per-batch rules: the ones that depend on the call, not on the config alone.

- period [period]: every timestamp lies inside the batch's period (see ``batch_period``); run
  when the caller passes the batch date;
- future [future]: no timestamp is after ``now`` (wall-clock time in ``data.timezone``, the
  zone validation converts the time column to); run when the caller passes the batch date
  (``now`` then defaults to the current time) or ``now`` itself (`ctpipe validate` without
  ``--date`` passes the current time);
- row count vs recent batches [row_count_recent]: within ``validation.row_count_tolerance``
  of the median of the recent batches' row counts, when the caller passes at least
  ``row_count_min_history`` of them.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics

import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.validation.spec import (
    FUTURE,
    PERIOD,
    RECENT,
    Spec,
    apply_severity,
    load_gx,
    rule_severity,
)


def batch_period(batch_date: dt.date, frequency: str,
                 week_start: str = "monday") -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the batch period containing ``batch_date``, as naive datetimes.

    daily: that day; weekly: a week from ``week_start`` (data.week_start, Monday by default)
    to the next (labelled_history.split_into_batches names a weekly batch by that day); monthly: the
    calendar month.
    """
    if frequency == "daily":
        start = batch_date
        end = start + dt.timedelta(days=1)
    elif frequency == "weekly":
        back = (batch_date.weekday() + (1 if week_start == "sunday" else 0)) % 7
        start = batch_date - dt.timedelta(days=back)
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


def call_time_specs(config: UseCaseConfig, batch_date: dt.date | None,
                    recent_rows: list[int] | None, now: dt.datetime | None,
                    tz: str) -> tuple[list[Spec], list[str]]:
    """The rules that depend on this call's arguments, and notes on those skipped.

    ``tz`` is the zone the time column's naive wall-clock values are in (data.timezone).
    """
    gx = load_gx()
    E = gx.expectations
    v, data = config.validation, config.data
    specs: list[Spec] = []
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
            specs.append(Spec(
                RECENT, f"row count within {v.row_count_tolerance:.0%} of recent batches",
                E.ExpectTableRowCountToBeBetween, {"min_value": lo, "max_value": hi},
                info={"median": median, "batches": len(recent)}))

    if batch_date is not None:
        if isinstance(batch_date, dt.datetime):  # a datetime is a date too: keep the day only
            batch_date = batch_date.date()
        start, end = batch_period(batch_date, data.batch_frequency, data.week_start)
        label = f"[{_stamp(start)}, {_stamp(end)})"
        specs.append(Spec(PERIOD, "in batch period",
                          E.ExpectColumnValuesToBeBetween,
                          {"column": time, "min_value": start, "max_value": end,
                           "strict_max": True},
                          info={"period": label, "frequency": data.batch_frequency}))
    elif now is not None:
        if rule_severity(config, PERIOD, time):
            skipped.append("timestamps inside the batch period: no batch date given")
    elif any(rule_severity(config, kind, time) for kind in (PERIOD, FUTURE)):
        skipped.append("timestamps inside the batch period and not in the future: no batch "
                       "date given")
    if batch_date is not None or now is not None:
        limit = _wall_clock(now, tz)
        specs.append(Spec(FUTURE, "not in the future", E.ExpectColumnValuesToBeBetween,
                          {"column": time, "max_value": limit},
                          info={"now": f"{_stamp(limit)} {tz}"}))
    return apply_severity(config, specs), skipped


def _wall_clock(now: dt.datetime | None, tz: str) -> dt.datetime:
    """``now`` as a naive wall-clock time in ``tz`` (the time column's zone, data.timezone).

    A naive ``now`` is read as UTC.
    """
    stamp = pd.Timestamp(now if now is not None else dt.datetime.now(dt.UTC))
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert(tz).tz_localize(None).to_pydatetime()
