"""Rules a labelled history must meet before a replay starts, judged on the source alone.

Each breaks every batch or every labels file the same way: a replay that starts anyway runs
for minutes, quarantines or sets aside everything and serves nothing. Each function is pure
(a frame and a config in, a one-line reason or None out) and names the config field and the
rule; ``backtest.cut_source`` puts the file in front.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.labelled_history import periods_between
from ctpipe.landing import null_targets_problem
from ctpipe.training import leaf_rows
from ctpipe.validation.spec import (
    ERROR,
    NULLS,
    max_null_share,
    rule_severity,
)
from ctpipe.wording import count_of, first_few

_SHOWN = 5  # values named in a message; more are counted


def _quoted(values: list[object]) -> str:
    return ", ".join(repr(str(v)) for v in values)


def target_problem(frame: pd.DataFrame, config: UseCaseConfig) -> str | None:
    """A target the labels check (landing.check_labels) would refuse in every labels file.

    The same rule as there: numeric (bool counts) and, for a binary task, 0 or 1 (0.0 and
    1.0 too); and over the whole source, both classes (one labels file may hold one class, a
    history may not: no classifier, no ROC-AUC). Nulls are left to that check:
    data.drop_null_targets decides their fate, and they break only the batches that hold
    them. ``frame`` is the source after data.target_from, so a derived target is judged as
    training would see it.
    """
    data = config.data
    column = data.target
    values = frame[column].dropna()
    if values.empty:
        return None
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("float64")
    numeric = pd.api.types.is_numeric_dtype(values)
    if data.task == "regression":
        if numeric:
            return None
        return (f"data.target: column {column!r} holds {_text_values(values)}, not numbers "
                "(task regression): a category cannot be a regression target")
    if numeric:
        distinct = np.unique(values.astype("float64").to_numpy())
        if np.isin(distinct, (0.0, 1.0)).all():
            return None if len(distinct) == 2 else _one_class(column, distinct[0], config)
        if len(distinct) <= _SHOWN:
            held = ", ".join(f"{v:g}" for v in distinct)
        else:
            held = (f"{len(distinct):,} distinct numbers ({distinct[0]:g}.."
                    f"{distinct[-1]:g})")
    else:
        held = _text_values(values)
    derive = ("derive a 0/1 target from it with data.target_from (1 above a threshold; "
              "data.target then names the new column) or map it to 0/1"
              if pd.api.types.is_numeric_dtype(values) else
              "map it to 0/1 in the file (data.target_from thresholds numbers only)")
    return (f"data.target: column {column!r} holds {held}, not 0/1 (task binary): {derive}")


def _one_class(column: str, value: float, config: UseCaseConfig) -> str:
    """Every labelled row is one class: no window can train a classifier, no metric is defined."""
    rule = config.data.target_from
    derived = ("" if rule is None else
               f" (data.target_from: {rule.column} is {'never' if value == 0 else 'always'} "
               f"above {rule.above:g})")
    return (f"data.target: column {column!r} is {value:g} on every labelled row{derived} "
            "(task binary): a classifier needs both classes")


def _text_values(values: pd.Series) -> str:
    distinct = sorted(values.astype("str").unique())
    if len(distinct) <= _SHOWN:
        return _quoted(distinct)
    return f"{len(distinct):,} distinct values (e.g. {_quoted(distinct[:3])})"


def unexpected_columns_problem(frame: pd.DataFrame, config: UseCaseConfig) -> str | None:
    """Source columns the config does not use while validation.unexpected_columns is error.

    "Used" is validation's own list (UseCaseConfig.read_columns): the time and id columns, the
    features and the target. data.target_from's column is already gone from ``frame``
    (labelled_history.derive_target drops it). Every batch would carry the columns and fail the
    "no unexpected columns" rule.
    """
    if config.validation.unexpected_columns != "error":
        return None
    allowed = set(config.read_columns)
    extra = [str(c) for c in frame.columns if c not in allowed]
    if not extra:
        return None
    named = first_few([repr(c) for c in extra], 8)
    which = f"column {named} is" if len(extra) == 1 else f"columns {named} are"
    return (f"validation.unexpected_columns: {which} not used by the config (features, "
            "target, time or id column), and unexpected_columns: error (the default) "
            "quarantines every batch: list them as features, or set "
            "validation.unexpected_columns: ignore")


Batches = dict[dt.date, pd.DataFrame]  # a cut source: each batch's date and its rows


def nulls_problem(batches: Batches, config: UseCaseConfig) -> str | None:
    """A batch column with more nulls than validation allows in every batch: the "not null"
    rule would quarantine them all. Features allow none by default, and real data has gaps."""
    for column in config.batch_columns:
        limit = max_null_share(config, column)
        if limit >= 1 or rule_severity(config, NULLS, column) != ERROR:
            continue
        shares = [part[column].isna().mean() for part in batches.values()
                  if column in part.columns and len(part)]
        if not shares or min(shares) <= limit:
            continue
        low, high = min(shares), max(shares)
        held = f"{low:.1%}" if f"{low:.1%}" == f"{high:.1%}" else f"{low:.1%} to {high:.1%}"
        setting = (f"validation.null_fraction.{column}" if column in
                   config.validation.null_fraction else "validation.max_null_fraction")
        return (f"{setting}: column {column!r} is null in more than {limit:.1%} of the rows "
                f"of every batch ({held}), so every batch would be quarantined: allow it with "
                f"validation.null_fraction: {{{column}: {math.ceil(high * 100) / 100:g}}}, or "
                "fill the gaps")
    return None


@dataclass(frozen=True)
class _UsableLabels:
    """The labelled rows a replay can use per batch, oldest first, judged as
    landing.labelled_dates and check_labels judge them; what was set aside, counted."""

    rows: np.ndarray
    set_aside: int

    @property
    def why_set_aside(self) -> str:
        if not self.set_aside:
            return ""
        which = "batch's labels" if self.set_aside == 1 else "batches' labels"
        return (f"; {self.set_aside} {which} set aside for null targets (data.drop_null_targets"
                ": true drops those rows instead)")


def _usable_labels(batches: Batches, config: UseCaseConfig) -> _UsableLabels:
    """The newest data.label_delay batches are never labelled before the replay ends; null
    targets set a batch's labels aside by landing's own rule (null_targets_problem). The
    windows reach past those."""
    data = config.data
    parts = [part for _, part in sorted(batches.items())]
    rows, set_aside = [], 0
    for part in parts[:max(len(parts) - data.label_delay, 0)]:
        nulls = int(part[data.target].isna().sum())
        if null_targets_problem(nulls, len(part), data.target, data.drop_null_targets):
            set_aside += 1
        else:
            rows.append(len(part) - nulls)
    return _UsableLabels(np.array(rows, dtype=int), set_aside)


def _most_in_a_run(rows: np.ndarray, run: int) -> int:
    """The most rows any ``run`` consecutive entries hold (all of them when fewer)."""
    if rows.size == 0:
        return 0
    run = min(run, rows.size)
    return int(np.convolve(rows, np.ones(run, dtype=int), mode="valid").max())


def training_rows_problem(batches: Batches, config: UseCaseConfig) -> str | None:
    """Why no challenger could ever train on these batches (None: one could).

    A challenger needs training.window usable labelled batches and trains on all but the
    newest training.holdout of them (training.split_window), from training.min_train_rows
    labelled rows (steps.train, training.train_model), and from twice LightGBM's rows per leaf
    to make any split. The newest holdout batches are held out on every cycle, never trained
    on. When no window passes, every cycle says "cannot retrain yet" (or the gate refuses a
    model without a split) and the replay serves nothing. window_problem judges the batch
    count first.
    """
    training = config.training
    usable = _usable_labels(batches, config)
    if usable.rows.size < training.window:
        return (f"training.window {training.window} needs {training.window} labelled batches; "
                f"{usable.rows.size} {'has' if usable.rows.size == 1 else 'have'} labels a "
                f"replay can use{usable.why_set_aside}")
    run = training.window - training.holdout
    most = _most_in_a_run(usable.rows[:usable.rows.size - training.holdout], run)
    at_most = (f"at most {most:,} labelled rows in any {run} consecutive batches (training."
               f"window {training.window} minus training.holdout {training.holdout})"
               f"{usable.why_set_aside}")
    if most < training.min_train_rows:
        return (f"training.min_train_rows {training.min_train_rows:,}: {at_most}, so no "
                "challenger could ever train: lower training.min_train_rows or widen "
                "training.window")
    name, per_leaf = leaf_rows(training.params)
    if most >= 2 * per_leaf:
        return None
    # LightGBM fits such a window without complaint: every model predicts one value.
    setting = f"training.params {name} {per_leaf}" if name in training.params \
        else f"LightGBM's {name} {per_leaf} (its default)"
    return (f"{setting}: a first split needs {2 * per_leaf} training rows, and {at_most}, so "
            f"every model would predict one value for every row: set a lower {name} in "
            "training.params or widen training.window")


def performance_rows_problem(batches: Batches, config: UseCaseConfig) -> str | None:
    """Why the performance check could never judge on these batches (None: it could somewhere).

    It pools the labelled rows of up to drift.performance_window batches and judges only from
    drift.min_performance_rows (steps.drift.check_performance). When no run of that many
    consecutive batches holds enough labelled rows, a model can degrade on this history and the
    replay still report no performance drift. Not a refusal: feature drift still works.
    """
    drift = config.drift
    if drift.performance_tolerance is None or "performance" not in drift.triggers:
        return None
    usable = _usable_labels(batches, config)
    most = _most_in_a_run(usable.rows, drift.performance_window)
    if most >= drift.min_performance_rows:
        return None
    pooled = (f"any {drift.performance_window} consecutive batches"
              if usable.rows.size > drift.performance_window
              else f"all {usable.rows.size} batches a replay can use the labels of")
    return (f"drift.min_performance_rows: at most {most:,} labelled rows in {pooled} "
            f"(drift.performance_window {drift.performance_window}){usable.why_set_aside}, "
            f"below {drift.min_performance_rows:,}: performance drift will never be judged on "
            "this history; lower drift.min_performance_rows or widen drift.performance_window")


def gaps_problem(batches: Batches, config: UseCaseConfig) -> str | None:
    """Which periods between the first and last batch have no rows (None: none).

    Not a refusal: a closed market's days or a sensor's outage leave no batch. But the replay
    counts batches, not calendar periods (training.window, data.label_delay, cron-N and
    drift.seasonal_period), so a reader of its figures should know.
    """
    dates = sorted(batches)
    missing = [d for d in periods_between(dates[0], dates[-1], config) if d not in batches]
    if not missing:
        return None
    shown = first_few([str(d) for d in missing], _SHOWN)
    return (f"no rows for {count_of(len(missing), config.data.batch_frequency + ' batch')} "
            f"between {dates[0]} and {dates[-1]} ({shown}): the replay skips them, and counts "
            "batches, not calendar periods (training.window, data.label_delay, cron schedules)")


def source_warnings(batches: Batches, config: UseCaseConfig) -> list[str]:
    """What a replay of these batches should say before it starts, but not refuse."""
    found = (gaps_problem(batches, config), performance_rows_problem(batches, config))
    return [warning for warning in found if warning is not None]
