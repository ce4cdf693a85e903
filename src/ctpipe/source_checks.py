"""Rules a labelled history must meet before a replay starts, judged on the source alone.

Each breaks every batch or every labels file the same way: a replay that starts anyway runs
for minutes, quarantines or sets aside everything and serves nothing. Each function is pure
(a frame and a config in, a one-line reason or None out) and names the config field and the
rule; ``backtest.cut_source`` puts the file in front.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.validation.spec import allowed_columns

_SHOWN = 5  # values named in a message; more are counted


def _quoted(values: list[object]) -> str:
    return ", ".join(repr(str(v)) for v in values)


def target_problem(frame: pd.DataFrame, config: UseCaseConfig) -> str | None:
    """A target the labels check (landing.check_labels) would refuse in every labels file.

    The same rule as there: numeric (bool counts) and, for a binary task, 0 or 1 (0.0 and
    1.0 too). Nulls are left to that check: data.drop_null_targets decides their fate, and
    they break only the batches that hold them. ``frame`` is the source after
    data.target_from, so a derived target is judged as training would see it.
    """
    data = config.data
    column = data.target
    values = frame[column].dropna()
    if values.empty or pd.api.types.is_bool_dtype(values):
        return None
    numeric = pd.api.types.is_numeric_dtype(values)
    if data.task == "regression":
        if numeric:
            return None
        return (f"data.target: column {column!r} holds {_text_values(values)}, not numbers "
                "(task regression): a category cannot be a regression target")
    if numeric:
        distinct = np.unique(values.astype("float64").to_numpy())
        if np.isin(distinct, (0.0, 1.0)).all():
            return None
        if len(distinct) <= _SHOWN:
            held = ", ".join(f"{v:g}" for v in distinct)
        else:
            held = (f"{len(distinct):,} distinct numbers ({distinct[0]:g}.."
                    f"{distinct[-1]:g})")
    else:
        held = _text_values(values)
    return (f"data.target: column {column!r} holds {held}, not 0/1 (task binary): derive "
            "it with data.target_from or map it to 0/1")


def _text_values(values: pd.Series) -> str:
    distinct = sorted(values.astype("str").unique())
    if len(distinct) <= _SHOWN:
        return _quoted(distinct)
    return f"{len(distinct):,} distinct values (e.g. {_quoted(distinct[:3])})"


def unexpected_columns_problem(frame: pd.DataFrame, config: UseCaseConfig) -> str | None:
    """Source columns the config does not use while validation.unexpected_columns is error.

    "Used" is validation's own list (spec.allowed_columns): the time and id columns, the
    features and the target. data.target_from's column is already gone from ``frame``
    (landing.derive_target drops it). Every batch would carry the columns and fail the
    "no unexpected columns" rule.
    """
    if config.validation.unexpected_columns != "error":
        return None
    allowed = set(allowed_columns(config))
    extra = [str(c) for c in frame.columns if c not in allowed]
    if not extra:
        return None
    named = _quoted(extra[:8]) + (f" and {len(extra) - 8} more" if len(extra) > 8 else "")
    which = f"column {named} is" if len(extra) == 1 else f"columns {named} are"
    return (f"validation.unexpected_columns: {which} not used by the config (features, "
            "target, time or id column), and unexpected_columns: error (the default) "
            "quarantines every batch: list them as features, or set "
            "validation.unexpected_columns: ignore")


def _labelled_rows(batches: dict, config: UseCaseConfig) -> np.ndarray:
    """Labelled rows (target not null) per batch, in date order, but for the newest
    data.label_delay batches: their labels never arrive before the replay ends."""
    target = config.data.target
    rows = [int(part[target].notna().sum()) for _, part in sorted(batches.items())]
    return np.array(rows[:len(rows) - config.data.label_delay], dtype=int)


def _short_run(batches: dict, config: UseCaseConfig, run: int,
               needed: int) -> tuple[int, int] | None:
    """(batches in a run, most labelled rows any run of them holds) when that is below
    ``needed``; None when some run holds enough (or nothing is ever labelled)."""
    rows = _labelled_rows(batches, config)
    if rows.size == 0:
        return None
    run = min(run, rows.size)
    most = int(np.convolve(rows, np.ones(run, dtype=int), mode="valid").max())
    return None if most >= needed else (run, most)


def training_rows_problem(batches: dict, config: UseCaseConfig) -> str | None:
    """Why no challenger could ever train on these batches (None: one could).

    A challenger trains on the window's batches but the held-out ones (training.split_window),
    and only from training.min_train_rows labelled rows (training.train_model). When no run of
    that many consecutive labelled batches holds enough rows, every cycle says "cannot retrain
    yet" and the replay serves nothing. ``batches`` maps each batch's date to its rows, as the
    replay cuts them; window_problem judges first whether there are batches enough.
    """
    training = config.training
    short = _short_run(batches, config, training.window - training.holdout,
                       training.min_train_rows)
    if short is None:
        return None
    run, most = short
    return (f"training.min_train_rows {training.min_train_rows:,}: at most {most:,} labelled "
            f"rows in any {run} consecutive batches (training.window {training.window} minus "
            f"training.holdout {training.holdout}), so no challenger could ever train: lower "
            "training.min_train_rows or widen training.window")


def performance_rows_problem(batches: dict, config: UseCaseConfig) -> str | None:
    """Why the performance check could never judge on these batches (None: it could somewhere).

    It pools the labelled rows of up to drift.performance_window batches and judges only from
    drift.min_performance_rows (steps.drift.check_performance). When no run of that many
    consecutive batches holds enough labelled rows, a model can degrade on this history and the
    replay still report no performance drift. Not a refusal: feature drift still works.
    ``batches`` maps each batch's date to its rows, as the replay cuts them.
    """
    drift = config.drift
    if drift.performance_tolerance is None or "performance" not in drift.triggers:
        return None
    short = _short_run(batches, config, drift.performance_window, drift.min_performance_rows)
    if short is None:
        return None
    window, most = short
    return (f"drift.min_performance_rows: at most {most:,} labelled rows in any "
            f"{window} consecutive batches (drift.performance_window {drift.performance_window})"
            f", below {drift.min_performance_rows:,}: performance drift will never be judged "
            "on this history; lower drift.min_performance_rows or widen "
            "drift.performance_window")
