"""`ctpipe backtest` on a data set that is not one of ours: only a new config file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ctpipe import backtest as bt
from ctpipe.cli import app
from ctpipe.config import UseCaseConfig, parse_config
from ctpipe.source_checks import target_problem, unexpected_columns_problem

pytestmark = pytest.mark.usefixtures("prefect_server")

BIKES_CONFIG = """
# Hourly bike rentals per station: no id column, semicolon CSV, a count target.
name: bikes
model_name: bike-rentals
data:
  time_column: hour_start
  target: rentals
  task: regression
  batch_frequency: daily
  label_delay: 2
  csv_delimiter: ";"
features:
  numeric: [temperature_c, humidity, wind_kmh]
  categorical: [station, weather]
  calendar: [day_of_week]
validation:
  ranges:
    humidity: {min: 0, max: 100}
  domains:
    weather: [clear, cloudy, rain]
  min_rows: 100
training:
  window: 5
  holdout: 1
  min_train_rows: 400
  params: {n_estimators: 60, learning_rate: 0.1, num_leaves: 15}
evaluation:
  metric: mae
  slices: [station]
gate:
  floor: 20.0
  min_improvement: 0.02
"""


def _bike_history(days: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hours = pd.date_range("2025-06-02", periods=days * 24, freq="h")
    stations = ["central", "harbour", "campus", "park", "market"]
    frame = pd.DataFrame({
        "hour_start": np.repeat(hours, len(stations)),
        "station": np.tile(stations, len(hours)),
    })
    n = len(frame)
    hour = frame["hour_start"].dt.hour.to_numpy()
    frame["temperature_c"] = 18 + 8 * np.sin((hour - 9) / 24 * 2 * np.pi) + rng.normal(0, 2, n)
    frame["humidity"] = np.clip(rng.normal(60, 15, n), 0, 100)
    frame["wind_kmh"] = np.abs(rng.normal(12, 6, n))
    frame["weather"] = rng.choice(["clear", "cloudy", "rain"], n, p=[0.5, 0.35, 0.15])
    base = {"central": 40, "harbour": 25, "campus": 30, "park": 15, "market": 20}
    rush = np.where(np.isin(hour, [8, 9, 17, 18]), 2.0, 1.0)
    rain = np.where(frame["weather"] == "rain", 0.4, 1.0)
    mean = frame["station"].map(base).to_numpy() * rush * rain * (frame["temperature_c"] / 18)
    frame["rentals"] = rng.poisson(np.clip(mean, 0.5, None)).astype(float)
    return frame


def test_backtest_foreign_csv_with_only_a_config(ctpipe_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG, encoding="utf-8")
    source = tmp_path / "history"
    source.mkdir()
    history = _bike_history(days=12)
    # A station opens on the last two days: a category no champion saw, warned about.
    history.loc[(history["hour_start"] >= "2025-06-12") & (history["station"] == "market"),
                "station"] = "pier"
    # A folder of files, split unevenly: batches come from the time column, not the files.
    history.iloc[:1000].to_csv(source / "part-1.csv", sep=";", index=False)
    history.iloc[1000:].to_csv(source / "part-2.csv", sep=";", index=False)
    out = tmp_path / "bikes.json"

    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source),
                                      "--json", str(out), "--cron", "4",
                                      "--events", "2025-06-09"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    bikes = report["use_cases"]["bikes"]
    assert bikes["metric_name"] == "mae" and bikes["higher_is_better"] is False
    assert bikes["shift_day"] is None
    days = bikes["days"]
    assert [d["date"] for d in days] == [f"2025-06-{i:02d}" for i in range(2, 14)]
    assert set(days[0]) == {"date", "validation_passed", "drift_detected", "drift_share",
                            "retrained", "gate_passed", "champion_version", "champion_metric",
                            "static_metric", "rows_scored", "live_metric", "estimated_metric",
                            "rolled_back", "rolled_back_to", "rollback_reason", "message",
                            "cron_metric",
                            "cron_metrics", "validation_warnings"}
    assert [bool(d["validation_warnings"]) for d in days] == [False] * 10 + [True] * 2
    assert ("bikes: validation warned on 2 batches, first 2025-06-12: station: seen in "
            "training: 'pier' 20.0% of non-null values") in result.output
    assert all(d["validation_passed"] for d in days)
    # label delay 2: on day t batches 0..t-2 are labelled, so a window of 5 is full at t = 6
    assert [d["champion_version"] for d in days[:6]] == [None] * 6
    assert days[6]["retrained"] and days[6]["gate_passed"] and days[6]["champion_version"] == 1
    scored = [d["champion_metric"] for d in days[6:]]
    assert all(m is not None and 0 < m < 20 for m in scored)
    # The daily loop scored every batch once a champion served, and monitored it: the live
    # metric of a batch whose labels arrived (2 batches later) is the replay's own figure.
    assert [d["rows_scored"] > 0 for d in days] == [False] * 6 + [True] * 6
    assert not any(d["rolled_back"] for d in days)
    assert all(d["estimated_metric"] is None for d in days)  # regression: nothing estimated
    for d in days[6:10]:
        assert d["live_metric"] == pytest.approx(d["champion_metric"], rel=1e-9)
    assert all(d["live_metric"] is None for d in days[10:])  # labels not arrived by the end
    assert "bikes" in result.output  # the summary table
    # The cron baseline (every 4 batches, behind the same gate) on the same batches: it
    # retrains at the cold start and 4 batches later, and serves the cold-start model until
    # then, like ctpipe (which has no reason to retrain on a stationary history).
    assert bikes["cron"]["schedules"] == [4] and bikes["cron"]["best"] == 4
    assert bikes["cron"]["retrains"] == {"4": 2}
    # The same schedule started 1, 2 and 3 batches after the cold start: 6 fits in all (each
    # batch from the cold start once, shared). After the cold start (batch 6) each retrains
    # on 10; 7 and 11; 8; 9.
    assert bikes["cron"]["fits"] == 6
    assert [(r["phase"], r["retrains"]) for r in bikes["cron"]["phases"]["4"]] == [
        (0, 2), (1, 3), (2, 2), (3, 2)]
    assert bikes["cron"]["phases"]["4"][0]["mean"] == pytest.approx(
        bikes["policies"]["cron-4"]["mean"], rel=1e-12)
    assert "cron-4 median" in result.output and "over 4 starts" in result.output
    assert all(d["cron_metrics"] == {"4": d["cron_metric"]} for d in days)
    assert [d["cron_metric"] for d in days[6:10]] == pytest.approx(scored[:4], rel=1e-9)
    assert set(bikes["policies"]) == {"ctpipe", "static", "cron-4"}
    assert bikes["batch_frequency"] == "daily" and bikes["events"] == ["2025-06-09"]
    assert "vs static" in result.output and "cron every 4 batches" in result.output
    assert "event 2025-06-09 (batch 7): drift or retrain" in result.output
    # No drift, no retrain after the cold start: said in words, and not as a no-shift control.
    assert ("event 2025-06-09 (batch 7): drift or retrain not detected, promotion none"
            in result.output)
    assert ("bikes: known change events above; 1 retrain (cold start included), 1 promotion"
            in result.output)


def _replay_bikes(config_text: str, days: int, tmp_path: Path) -> tuple[str, dict]:
    """`ctpipe backtest --no-baselines` of ``days`` days of bike history: output and result."""
    config = tmp_path / "bikes.yaml"
    config.write_text(config_text, encoding="utf-8")
    source = tmp_path / "history.csv"
    _bike_history(days=days).to_csv(source, sep=";", index=False)
    out = tmp_path / "bikes.json"
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source),
                                      "--json", str(out), "--no-baselines"])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())["use_cases"]["bikes"]


def test_static_is_the_first_champion_not_a_rejected_cold_start(ctpipe_home: Path,
                                                                 tmp_path: Path) -> None:
    # MAE must be at most 0: every challenger fails the floor, so there is never a champion,
    # and the static model (the first champion) scores nothing either.
    output, bikes = _replay_bikes(BIKES_CONFIG.replace("floor: 20.0", "floor: 0.0"), 8,
                                  tmp_path)
    days = bikes["days"]
    assert bikes["policies"]["static"] == {"mean": None, "retrains": 0, "promotions": 0}
    assert [d["retrained"] for d in days] == [False] * 6 + [True] * 2
    assert [d["gate_passed"] for d in days[6:]] == [False, False]
    assert all(d["champion_metric"] is None and d["static_metric"] is None for d in days)
    # The summary quotes the last rejection, from the days' cycle messages.
    assert days[-1]["message"].startswith("challenger v2 rejected: ")
    assert (f"bikes: no challenger ever passed the gate: nothing served, nothing compared; "
            f"last: {days[-1]['message']}") in output


def test_a_replay_that_never_trains_says_why(ctpipe_home: Path, tmp_path: Path) -> None:
    # Rows enough for training.min_train_rows on the source, but every other day carries a
    # weather outside the domain: those batches are quarantined and the window never fills.
    # Nothing was trained, so no gate was involved; the summary says what stopped the training.
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG, encoding="utf-8")
    history = _bike_history(days=8)
    odd_day = history["hour_start"].dt.day % 2 == 1
    history.loc[odd_day & (history["station"] == "park"), "weather"] = "hail"
    source = tmp_path / "history.csv"
    history.to_csv(source, sep=";", index=False)
    out = tmp_path / "bikes.json"
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source),
                                      "--json", str(out), "--no-baselines"])
    assert result.exit_code == 0, result.output
    days = json.loads(out.read_text())["use_cases"]["bikes"]["days"]
    assert [d["validation_passed"] for d in days] == [True, False] * 4
    assert not any(d["retrained"] for d in days)
    assert ("bikes: no challenger was ever trained: nothing served, nothing compared; on the "
            "last valid batch (2025-06-08): ") in result.output
    assert "4 of 8 batches quarantined, the first: " in result.output
    assert "passed the gate" not in result.output


def test_a_replay_where_performance_drift_can_never_be_judged_says_so(
        ctpipe_home: Path, tmp_path: Path) -> None:
    # 120 labelled rows a day; of 5 days the last 2 are never labelled in time (label delay
    # 2): 360 rows at most, never the 1,000 asked for. The replay still runs (feature drift
    # works); it warns before it starts.
    text = BIKES_CONFIG.replace("window: 5", "window: 2").replace(
        "min_train_rows: 400", "min_train_rows: 100").replace(
        "gate:", "drift:\n  min_performance_rows: 1000\n  performance_window: 5\ngate:")
    output, bikes = _replay_bikes(text, 5, tmp_path)
    assert (f"warning: {tmp_path / 'history.csv'}: drift.min_performance_rows: at most 360 "
            "labelled rows in all 3 batches a replay can use the labels of "
            "(drift.performance_window 5), below 1,000: performance drift will never be judged "
            "on this history; lower drift.min_performance_rows or widen "
            "drift.performance_window") in output
    assert len(bikes["days"]) == 5
    # A user's history without --events is not a simulated control stream.
    assert "bikes: no known change date given (--events); " in output
    assert "no-shift control" not in output and "simulated shift" not in output


@pytest.mark.parametrize(("value", "message"), [
    ("2024-01-01", "--events 2024-01-01: outside the replay's batches (2025-06-02 to "
                   "2025-06-05)"),
    ("june", "--events 'june': not a valid date YYYY-MM-DD (Invalid isoformat string: 'june')"),
])
def test_backtest_refuses_an_event_outside_the_replay(ctpipe_home: Path, tmp_path: Path,
                                                      value: str, message: str) -> None:
    config = tmp_path / "bikes.yaml"
    # A window that 4 daily batches fill (label delay 2): the events are what is wrong.
    config.write_text(BIKES_CONFIG.replace("window: 5", "window: 2").replace(
        "min_train_rows: 400", "min_train_rows: 100"), encoding="utf-8")
    source = tmp_path / "history.csv"
    _bike_history(days=4).to_csv(source, sep=";", index=False)
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source),
                                      "--events", "2025-06-03", "--events", value])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [message]


def test_backtest_reports_unreadable_source(ctpipe_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG, encoding="utf-8")
    bad = tmp_path / "bad.csv"
    _bike_history(days=2).drop(columns="hour_start").to_csv(bad, sep=";", index=False)
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(bad)])
    assert result.exit_code == 2
    assert "hour_start" in result.output


def test_config_error_is_clear(ctpipe_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG.replace("label_delay: 2", "label_delay: 2\n  colour: red"))
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(tmp_path)])
    assert result.exit_code == 2
    assert "data.colour: unknown key" in result.output


# --- refused before the replay starts ---------------------------------------------------------
# Each of these used to replay for minutes, quarantine or set aside everything, and exit 0.

BINARY = BIKES_CONFIG.replace("task: regression", "task: binary").replace(
    "metric: mae", "metric: roc_auc").replace("floor: 20.0", "floor: 0.5")


def _refused(tmp_path: Path, config_text: str, history: pd.DataFrame) -> str:
    """The one line `ctpipe backtest` refuses with (exit 2), after the source's own name."""
    config = tmp_path / "bikes.yaml"
    config.write_text(config_text, encoding="utf-8")
    source = tmp_path / "history.csv"
    history.to_csv(source, sep=";", index=False)
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    prefix = f"cannot use {source} as the backtest source: "
    assert lines[0].startswith(prefix)
    problem = lines[0].removeprefix(prefix)
    assert str(source) not in problem  # named once, in the prefix
    return problem


@pytest.mark.parametrize(("config_text", "change", "problem"), [
    (BIKES_CONFIG, lambda h: h.assign(hour_start=h["hour_start"].dt.year),
     "data.time_column: column 'hour_start' holds numbers (2025..2025), not dates or "
     "times: write them as dates (e.g. 2025-01-01)"),
    (BIKES_CONFIG, lambda h: h.assign(notes="ok", rider_id=7),
     "validation.unexpected_columns: columns 'notes', 'rider_id' are not used by the "
     "config (features, target, time or id column), and unexpected_columns: error (the "
     "default) quarantines every batch: list them as features, or set "
     "validation.unexpected_columns: ignore"),
    (BINARY, lambda h: h.assign(rentals=np.where(h["rentals"] > 20, "yes", "no")),
     "data.target: column 'rentals' holds 'no', 'yes', not 0/1 (task binary): map it to "
     "0/1 in the file (data.target_from thresholds numbers only)"),
    (BINARY, lambda h: h,
     "data.target: column 'rentals' holds 95 distinct numbers (1..119), not 0/1 "
     "(task binary): derive a 0/1 target from it with data.target_from (1 above a "
     "threshold; data.target then names the new column) or map it to 0/1"),
    (BIKES_CONFIG, lambda h: h[h["hour_start"] < "2025-06-06"],
     "training.window 5 needs 5 labelled batches; the source makes 4 daily batches"),
    (BIKES_CONFIG, lambda h: h[h["hour_start"] < "2025-06-08"],
     "training.window 5 needs 5 labelled batches; the source makes 6 daily batches, 4 of them "
     "labelled by the last one (data.label_delay 2)"),
    (BIKES_CONFIG.replace("min_train_rows: 400", "min_train_rows: 500"), lambda h: h,
     "training.min_train_rows 500: at most 480 labelled rows in any 4 consecutive "
     "batches (training.window 5 minus training.holdout 1), so no challenger could ever "
     "train: lower training.min_train_rows or widen training.window"),
    (BIKES_CONFIG, lambda h: h.assign(humidity=h["humidity"].where(h.index % 8 != 0)),
     "validation.max_null_fraction: column 'humidity' is null in more than 0.0% of the rows "
     "of every batch (12.5%), so every batch would be quarantined: allow it with "
     "validation.null_fraction: {humidity: 0.13}, or fill the gaps"),
], ids=["numeric-time", "unexpected-columns", "binary-text", "binary-counts", "window",
        "window-label-delay", "min-train-rows", "nulls-in-every-batch"])
def test_a_source_that_would_replay_nothing_is_refused_up_front(
        ctpipe_home: Path, tmp_path: Path, config_text: str, change: object,
        problem: str) -> None:
    assert _refused(tmp_path, config_text, change(_bike_history(days=8))) == problem


def _binary(**data: object) -> UseCaseConfig:
    extra = "".join(f", {k}: {v}" for k, v in data.items())
    return parse_config("name: x\ndata: {time_column: t, target: y, task: binary"
                        f"{extra}}}\nfeatures: {{numeric: [a]}}\n"
                        "evaluation: {metric: roc_auc}\ngate: {floor: 0.5}\n", Path("x.yaml"))


@pytest.mark.parametrize(("target", "held"), [
    (["Male", "Female", "Male", None], "'Female', 'Male'"),
    (["yes", "no", "no", "yes"], "'no', 'yes'"),
    (["drizzle", "rain", "sun", "snow", "fog", "hail"], "6 distinct values (e.g. 'drizzle', "
     "'fog', 'hail')"),
    ([0, 1, 2, 1], "0, 1, 2"),
    ([1.0, 2.0, 1.0, 2.0], "1, 2"),
    ([12.5, 13.0, 15.5, 16.0, 17.5, 21.0], "6 distinct numbers (12.5..21)"),
])
def test_a_binary_target_that_is_not_0_or_1_is_named(target: list, held: str) -> None:
    frame = pd.DataFrame({"t": "2025-01-01", "a": range(len(target)), "y": target})
    # data.target_from thresholds a number: it is offered only for numbers.
    fix = ("derive a 0/1 target from it with data.target_from (1 above a threshold; "
           "data.target then names the new column) or map it to 0/1"
           if isinstance(target[0], int | float) else
           "map it to 0/1 in the file (data.target_from thresholds numbers only)")
    assert target_problem(frame, _binary()) == (
        f"data.target: column 'y' holds {held}, not 0/1 (task binary): {fix}")


@pytest.mark.parametrize("target", [[0, 1, 1], [0.0, 1.0, None], [True, False, True],
                                    [None, None, None]])
def test_binary_targets_the_labels_check_takes_pass(target: list) -> None:
    # The labels check's own rule (landing.check_labels): numbers 0 and 1 or booleans; a
    # null breaks only its own batch (data.drop_null_targets), so it is not refused here.
    frame = pd.DataFrame({"t": "2025-01-01", "a": range(3), "y": target})
    assert target_problem(frame, _binary()) is None


@pytest.mark.parametrize(("target", "value"), [([1, 1, 1], "1"), ([0.0, None, 0.0], "0"),
                                               ([True, True, True], "1")])
def test_a_binary_target_of_one_class_is_named(target: list, value: str) -> None:
    frame = pd.DataFrame({"t": "2025-01-01", "a": range(3), "y": target})
    assert target_problem(frame, _binary()) == (
        f"data.target: column 'y' is {value} on every labelled row (task binary): a "
        "classifier needs both classes")


def test_a_regression_target_of_words_is_named() -> None:
    config = parse_config(BIKES_CONFIG, Path("bikes.yaml"))
    frame = _bike_history(days=1).assign(rentals="many")
    assert target_problem(frame, config) == (
        "data.target: column 'rentals' holds 'many', not numbers (task regression): a "
        "category cannot be a regression target")


@pytest.mark.parametrize(("above", "problem"), [
    (0, None),
    (3, "data.target: column 'y' is 0 on every labelled row (data.target_from: p is never "
        "above 3) (task binary): a classifier needs both classes"),
])
def test_a_derived_target_is_judged_and_its_column_is_used(tmp_path: Path, above: int,
                                                           problem: str | None) -> None:
    from ctpipe import labelled_history

    config = _binary(target_from=f"{{column: p, above: {above}}}")
    source = tmp_path / "history.csv"
    pd.DataFrame({"t": "2025-01-01", "a": [1, 2, 3], "p": [0.0, 2.5, 1.0]}).to_csv(
        source, index=False)
    frame = labelled_history.read_source(source, config)  # target_from applied, p dropped
    assert target_problem(frame, config) == problem
    assert unexpected_columns_problem(frame, config) is None


@pytest.mark.parametrize("setting", ["warn", "ignore"])
def test_unexpected_columns_are_fine_unless_they_are_an_error(setting: str) -> None:
    config = parse_config(BIKES_CONFIG.replace(
        "validation:\n", f"validation:\n  unexpected_columns: {setting}\n"), Path("b.yaml"))
    frame = _bike_history(days=1).assign(notes="ok")
    assert unexpected_columns_problem(frame, config) is None


@pytest.mark.parametrize(("batches", "delay", "problem"), [
    (48, 1, "training.window 60 needs 60 labelled batches; f.csv makes 48 monthly batches"),
    (60, 1, "training.window 60 needs 60 labelled batches; f.csv makes 60 monthly batches, 59 "
            "of them labelled by the last one (data.label_delay 1)"),
    (60, 0, None),
    (61, 1, None),
    (1, 0, "training.window 60 needs 60 labelled batches; f.csv makes 1 monthly batch"),
])
def test_window_against_the_batches_the_source_makes(batches: int, delay: int,
                                                     problem: str | None) -> None:
    text = BIKES_CONFIG.replace("label_delay: 2", f"label_delay: {delay}").replace(
        "batch_frequency: daily", "batch_frequency: monthly").replace("window: 5", "window: 60")
    assert bt.window_problem(batches, parse_config(text, Path("b.yaml")), "f.csv") == problem


def _day(date: str, *, valid: bool = True, retrained: bool = False,
         message: str = "") -> dict:
    return {"date": date, "validation_passed": valid, "retrained": retrained,
            "champion_version": None, "message": message}


def test_nothing_served_says_why_from_the_cycle_messages() -> None:
    quarantined = [_day(f"2025-0{i}-01", valid=False, message=f"b{i}.parquet: batch failed "
                        "validation") for i in (1, 2)]
    assert bt.nothing_served({"days": quarantined}) == (
        "2 of 2 batches quarantined: b1.parquet: batch failed validation")
    waiting = [quarantined[0], _day("2025-02-01", message="cannot retrain yet: 1 labelled "
                                    "batch, the training window needs 60")]
    assert bt.nothing_served({"days": waiting}) == (
        "no challenger was ever trained: nothing served, nothing compared; on the last valid "
        "batch (2025-02-01): cannot retrain yet: 1 labelled batch, the training window needs "
        "60; 1 of 2 batches quarantined, the first: b1.parquet: batch failed validation")
    rejected = [*waiting, _day("2025-03-01", retrained=True,
                               message="challenger v1 rejected: mae 9.0 above the floor 4.0")]
    assert bt.nothing_served({"days": rejected}) == (
        "no challenger ever passed the gate: nothing served, nothing compared; last: "
        "challenger v1 rejected: mae 9.0 above the floor 4.0")


@pytest.mark.parametrize(("mine", "base", "text"), [
    (1.0025, 1.0, "0.2% worse"),  # mae: lower is better
    (0.99, 1.0, "1% better"),
    (0.5, 1.0, "50% better"),
    (1.0, 1.0, "the same"),
])
def test_the_headline_shows_a_change_under_one_percent(mine: float, base: float,
                                                       text: str) -> None:
    days = [{"champion_metric": mine, "static_metric": base, "champion_version": 1,
             "retrained": True, "gate_passed": True}]
    line = bt.headline({"days": days, "metric_name": "mae", "higher_is_better": False})
    assert line == f"ctpipe MAE {mine:.4f} over 1 batch vs static {base:.4f} ({text}); 1 retrain"



def test_a_quarantined_batch_s_progress_line_says_why(capsys: pytest.CaptureFixture) -> None:
    from ctpipe.flows.backtest import print_progress

    day = {"date": "2013-03-01", "validation_passed": False, "drift_detected": None,
           "retrained": False, "gate_passed": None, "champion_version": 3,
           "champion_metric": None, "static_metric": None,
           "message": "2013-03-01.parquet: batch failed validation with 1 problem (5 rows, 25 "
                      "expectations evaluated): table: row count: 5 rows (min 50)."}
    print_progress(0, 2, day)
    print_progress(1, 2, {**day, "validation_passed": True, "message": "no drift: kept"})
    quarantined, served = capsys.readouterr().err.splitlines()
    assert quarantined.endswith("Q... champion v3    -    static    -    2013-03-01.parquet: "
                                "batch failed validation with 1 problem (5 rows, 25 "
                                "expectations evaluated): table: row count: 5 rows (min 50).")
    assert served.endswith("static    -  ")


@pytest.mark.parametrize(("validation", "clean_day", "refused"), [
    ("", False, True),
    ("", True, False),  # one batch passes: the replay can use it, so it runs
    ("  null_fraction: {humidity: 0.2}\n", False, False),
    ("  null_fraction: {humidity: 0.1}\n", False, True),  # 12.5% in each: still too many
    ("  warn: ['humidity:nulls']\n", False, False),  # a warning quarantines nothing
])
def test_nulls_are_refused_only_when_they_would_quarantine_every_batch(
        validation: str, clean_day: bool, refused: bool) -> None:
    from ctpipe import labelled_history
    from ctpipe.source_checks import nulls_problem

    config = parse_config(BIKES_CONFIG.replace("validation:\n", "validation:\n" + validation),
                          Path("b.yaml"))
    history = _bike_history(days=3)
    history = history.assign(humidity=history["humidity"].where(
        (history.index % 8 != 0) | (clean_day & (history.index < 120))))
    problem = nulls_problem(labelled_history.split_into_batches(history, config), config)
    assert (problem is not None) is refused
    if refused:
        setting = "null_fraction.humidity" if "null_fraction" in validation else \
            "max_null_fraction"
        assert problem.startswith(f"validation.{setting}: column 'humidity' is null in more")
