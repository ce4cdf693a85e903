"""`ctpipe backtest` on a data set that is not one of ours: only a new config file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ctpipe.cli import app

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
                            "rolled_back", "rollback_reason", "cron_metric", "cron_metrics"}
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
    assert bikes["cron"]["retrains"] == {"4": 2} and bikes["cron"]["fits"] == 2
    assert all(d["cron_metrics"] == {"4": d["cron_metric"]} for d in days)
    assert [d["cron_metric"] for d in days[6:10]] == pytest.approx(scored[:4], rel=1e-9)
    assert set(bikes["policies"]) == {"ctpipe", "static", "cron-4"}
    assert bikes["batch_frequency"] == "daily" and bikes["events"] == ["2025-06-09"]
    assert "vs static" in result.output and "cron every 4 batches" in result.output
    assert "event 2025-06-09 (batch 7): drift or retrain" in result.output
    # No drift, no retrain after the cold start: said in words, and not as a no-shift control.
    assert ("event 2025-06-09 (batch 7): drift or retrain not detected, promotion none"
            in result.output)
    assert ("bikes: known change events above (no simulated shift); 1 retrain (cold start "
            "included), 1 promotion") in result.output


def test_static_is_the_first_champion_not_a_rejected_cold_start(ctpipe_home: Path,
                                                                 tmp_path: Path) -> None:
    # MAE must be at most 0: every challenger fails the floor, so there is never a champion,
    # and the static model (the first champion) scores nothing either.
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG.replace("floor: 20.0", "floor: 0.0"), encoding="utf-8")
    source = tmp_path / "history.csv"
    _bike_history(days=8).to_csv(source, sep=";", index=False)
    out = tmp_path / "bikes.json"
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source),
                                      "--json", str(out), "--no-baselines"])
    assert result.exit_code == 0, result.output
    bikes = json.loads(out.read_text())["use_cases"]["bikes"]
    days = bikes["days"]
    assert bikes["policies"]["static"] == {"mean": None, "retrains": 0, "promotions": 0}
    assert [d["retrained"] for d in days] == [False] * 6 + [True] * 2
    assert [d["gate_passed"] for d in days[6:]] == [False, False]
    assert all(d["champion_metric"] is None and d["static_metric"] is None for d in days)
    assert ("bikes: no challenger ever passed the gate: nothing served, nothing compared"
            in result.output)


@pytest.mark.parametrize(("value", "message"), [
    ("2024-01-01", "--events 2024-01-01: outside the replay's batches (2025-06-02 to "
                   "2025-06-05)"),
    ("june", "--events june: not a date (YYYY-MM-DD)"),
])
def test_backtest_refuses_an_event_outside_the_replay(ctpipe_home: Path, tmp_path: Path,
                                                      value: str, message: str) -> None:
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG, encoding="utf-8")
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
