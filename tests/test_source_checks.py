"""Row counts a replay needs, judged on the cut source alone: pure, no server."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from ctpipe.backtest import feature_problem
from ctpipe.config import UseCaseConfig, parse_config
from ctpipe.source_checks import (
    performance_rows_problem,
    source_warnings,
    training_rows_problem,
)
from tests.test_backtest_cli import BIKES_CONFIG

WEEK0 = pd.Timestamp("2025-01-06").date()


def _config(extra: str = "", min_train_rows: int = 400, **sections: str) -> UseCaseConfig:
    text = BIKES_CONFIG.replace("  csv_delimiter", f"{extra}  csv_delimiter").replace(
        "min_train_rows: 400", f"min_train_rows: {min_train_rows}")
    for key, value in sections.items():
        text = text.replace("gate:", f"{key}: {value}\ngate:")
    return parse_config(text, Path("b.yaml"))


def _weekly(targets: list[list[float | None]]) -> dict:
    return {WEEK0 + pd.Timedelta(weeks=i).to_pytimedelta(): pd.DataFrame({"rentals": t})
            for i, t in enumerate(targets)}


@pytest.mark.parametrize(("drift", "problem"), [
    ("{}", "at most 42 labelled rows in any 14 consecutive batches (drift.performance_window "
           "14), below 50"),
    ("{performance_window: 17}", None),  # 17 batches hold 51 rows
    ("{min_performance_rows: 42}", None),
    ("{performance_window: 40, min_performance_rows: 100}", "at most 84 labelled rows in "
     "all 28 batches a replay can use the labels of (drift.performance_window 40), below 100"),
    ("{performance_tolerance: null}", None),  # the check is off: nothing to warn about
    ("{triggers: [data]}", None),
])
def test_performance_rows_against_the_batches_the_source_makes(drift: str,
                                                               problem: str | None) -> None:
    # 30 weekly batches of 4 rows, one target null in each, dropped (drop_null_targets): 3
    # labelled rows a batch. The newest 2 (data.label_delay) are never labelled in time.
    config = _config("  drop_null_targets: true\n", drift=drift)
    found = performance_rows_problem(_weekly([[1.0, 2.0, None, 4.0]] * 30), config)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(f"drift.min_performance_rows: {problem}")


def test_labels_with_a_null_target_are_set_aside_whole_by_default() -> None:
    found = performance_rows_problem(_weekly([[1.0, 2.0, None, 4.0]] * 30), _config())
    assert found == (
        "drift.min_performance_rows: at most 0 labelled rows in all 0 batches a replay can use "
        "the labels of (drift.performance_window 14); 28 batches' labels set aside for null "
        "targets (data.drop_null_targets: true drops those rows instead), below 50: "
        "performance drift will never be judged on this history; lower "
        "drift.min_performance_rows or widen drift.performance_window")


def test_windows_reach_past_batches_whose_labels_are_set_aside() -> None:
    # Every other batch has no target at all: set aside, so the window of 5 is 5 clean
    # batches, 4 of them trained on: 480 rows meet min_train_rows 400.
    clean, empty = [1.0] * 120, [None] * 120
    batches = _weekly([clean, empty] * 6)
    config = _config("  drop_null_targets: true\n")
    assert training_rows_problem(batches, config) is None
    assert training_rows_problem(batches, _config("  drop_null_targets: true\n",
                                                 min_train_rows=481)) is not None


@pytest.mark.parametrize(("rows", "problem"), [
    # The newest batch (holdout 1) is held out on every cycle: its 400 rows never train.
    ([10, 10, 10, 10, 10, 400, 10, 10], "training.min_train_rows 400: at most 40 labelled "
     "rows in any 4 consecutive batches (training.window 5 minus training.holdout 1), so no "
     "challenger could ever train: lower training.min_train_rows or widen training.window"),
    ([10, 10, 10, 10, 400, 10, 10, 10], None),  # batch 5 of 6 labelled: it can train
    ([100] * 8, None),
])
def test_training_rows_count_only_batches_a_challenger_trains_on(rows: list[int],
                                                                 problem: str | None) -> None:
    # Label delay 2: of 8 batches the last 2 are never labelled; of the 6 left, the newest
    # is always a holdout.
    batches = _weekly([[1.0] * n for n in rows])
    assert training_rows_problem(batches, _config()) == problem


@pytest.mark.parametrize(("params", "setting", "name"), [
    ("{n_estimators: 60}", "LightGBM's min_child_samples 20 (its default): a first split needs "
                           "40", "min_child_samples"),
    ("{min_data_in_leaf: 15}", "training.params min_data_in_leaf 15: a first split needs 30",
     "min_data_in_leaf"),
    ("{min_child_samples: 5}", None, None),
])
def test_windows_too_small_for_one_split_are_refused(params: str, setting: str | None,
                                                     name: str | None) -> None:
    # 1 row a week, window 12 (holdout 1): any window trains on 11 rows, enough for
    # min_train_rows 10 but, at 20 rows per leaf, not for a single split.
    text = (BIKES_CONFIG.replace("min_train_rows: 400", "min_train_rows: 10")
            .replace("window: 5", "window: 12")
            .replace("params: {n_estimators: 60, learning_rate: 0.1, num_leaves: 15}",
                     f"params: {params}"))
    found = training_rows_problem(_weekly([[1.0]] * 16), parse_config(text, Path("b.yaml")))
    if setting is None:
        assert found is None
    else:
        assert found == (f"{setting} training rows, and at most 11 labelled rows in any 11 "
                         "consecutive batches (training.window 12 minus training.holdout 1), so "
                         f"every model would predict one value for every row: set a lower {name} "
                         "in training.params or widen training.window")


def test_too_few_usable_labels_for_the_window_are_named() -> None:
    batches = _weekly([[1.0] * 120, [1.0, None]] * 5)
    assert training_rows_problem(batches, _config()) == (
        "training.window 5 needs 5 labelled batches; 4 have labels a replay can use; 4 batches' "
        "labels set aside for null targets (data.drop_null_targets: true drops those rows "
        "instead)")


def test_periods_without_rows_are_named_before_a_replay() -> None:
    # 30 weekly batches with weeks 3, 10-16 missing: a sensor's outage.
    batches = _weekly([[1.0, 2.0, 3.0, 4.0]] * 30)
    dates = sorted(batches)
    for i in (3, *range(10, 17)):
        del batches[dates[i]]
    config = _config(drift="{performance_tolerance: null}")
    weekly = config.model_copy(update={"data": config.data.model_copy(
        update={"batch_frequency": "weekly"})})
    assert source_warnings(batches, weekly) == [
        "no rows for 8 weekly batches between 2025-01-06 and 2025-07-28 (2025-01-27, "
        "2025-03-17, 2025-03-24, 2025-03-31, 2025-04-07 and 3 more): the replay skips them, "
        "and counts batches, not calendar periods (training.window, data.label_delay, cron "
        "schedules)"]
    # Daily: 204 days from the first to the last, 22 with rows.
    assert source_warnings(batches, config)[0].startswith("no rows for 182 daily batches ")
    assert source_warnings(_weekly([[1.0]] * 5), weekly) == []


def _bikes(**columns: list) -> pd.DataFrame:
    frame = pd.DataFrame({"temperature_c": [1.5, 2.0, 3.25, 4.0], "humidity": [50, 60, 70, 80],
                          "wind_kmh": [3, 4, 5, 6], "station": ["a"] * 4, "weather": ["rain"] * 4})
    return frame.assign(**columns)


@pytest.mark.parametrize(("column", "problem"), [
    # What training reads as numbers: booleans, nullable integers, Decimals.
    ([True, False, True, False], None),
    (pd.array([1, None, 3, 4], dtype="Int64"), None),
    ([Decimal("1.5"), Decimal("2"), None, Decimal("3")], None),
    # A marker of missing values among numbers: name it and the setting.
    (["1.5", "-", "3", "4"], "features.numeric: column 'wind_kmh' holds 1 value that is not a "
     "number ('-'); if they mark missing values, list them under data.na_values"),
    (["1,5", "2,25", "3", "4,0"], "features.numeric: column 'wind_kmh' holds numbers with a "
     "decimal comma (e.g. '1,5'): for a CSV file, set data.csv_decimal: ','; else write "
     "them with a decimal point"),
    (["calm", "gale", "calm", "storm"], "features.numeric: column 'wind_kmh' is not numeric "
     "(dtype str); a category belongs under features.categorical"),
    (["1.5", "2", "3", "4"], "features.numeric: column 'wind_kmh' holds numbers written as "
     "text (dtype str): write them as numbers"),
])
def test_a_numeric_feature_in_the_source(column: list, problem: str | None) -> None:
    frame = _bikes(wind_kmh=column)
    if isinstance(column[0], str):
        frame["wind_kmh"] = frame["wind_kmh"].astype("str")
    assert feature_problem(frame, _config()) == problem


def test_a_missing_feature_shows_the_blanks_around_a_found_name() -> None:
    frame = _bikes().rename(columns={"humidity": " humidity "})
    assert feature_problem(frame, _config()) == (
        "features.numeric: column 'humidity' is missing (columns: temperature_c, ' humidity ', "
        "wind_kmh, station, weather)")
