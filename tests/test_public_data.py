"""Real public data replayed with only a config (configs/public/): the files ship in a wheel.

The full replays are benchmarks/public_data.py; here the package source resolves, the derived
target is right, and a short stretch of each data set goes through `ctpipe backtest`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ctpipe import labelled_history
from ctpipe.cli import app
from ctpipe.config import ConfigError, load_config, parse_config

PUBLIC = Path(__file__).resolve().parents[1] / "configs" / "public"
CONFIGS = sorted(PUBLIC.glob("*.yaml"))
SEATTLE = "package:vega_datasets/_data/seattle-weather.csv"
CGM = "package:bokeh_sampledata/_data/CGM.csv.gz"

pytest.importorskip("vega_datasets", reason="pip install 'ctpipe[public-data]'")
pytest.importorskip("bokeh_sampledata", reason="pip install 'ctpipe[public-data]'")


@pytest.mark.parametrize("path", sorted(
    (PUBLIC.parents[1] / "benchmarks" / "other-data").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_other_data_configs_stay_valid(path: Path) -> None:
    # Their packages are not installed here (benchmarks/README.md): the configs are checked.
    config = load_config(path)
    assert config.data.source.startswith(labelled_history.PACKAGE_SOURCE)
    assert config.name == path.stem


def test_every_public_config_names_a_shipped_file() -> None:
    assert len(CONFIGS) >= 2
    for path in CONFIGS:
        config = load_config(path)
        assert config.data.source and config.data.source.startswith(labelled_history.PACKAGE_SOURCE)
        history = labelled_history.read_source(config.data.source, config)
        batches = labelled_history.split_into_batches(history, config)
        # dozens of batches with a meaningful number of rows each
        assert len(batches) >= 24, path.name
        assert min(len(b) for b in batches.values()) >= config.validation.min_rows, path.name
        assert config.data.target in history.columns


def test_package_source_resolves_to_the_installed_file() -> None:
    path = labelled_history.resolve_source(SEATTLE)
    assert path.is_file() and path.name == "seattle-weather.csv"
    assert "vega_datasets" in path.parts
    # Plain paths unchanged.
    assert labelled_history.resolve_source("data/x.csv") == Path("data/x.csv")


@pytest.mark.parametrize(("source", "message"), [
    ("package:no_such_package_h7/x.csv", "package 'no_such_package_h7' is not installed"),
    ("package:vega_datasets/_data/missing.csv", "'_data/missing.csv' not found in package"),
    ("package:vega_datasets", "expected package:<package>/<path inside it>"),
])
def test_package_source_problems_are_named(source: str, message: str) -> None:
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        labelled_history.resolve_source(source)


def test_a_package_source_is_named_once_as_the_config_names_it(ctpipe_home: Path,
                                                                tmp_path: Path) -> None:
    config = tmp_path / "rain.yaml"
    config.write_text((PUBLIC / "seattle-rain.yaml").read_text().replace(
        "column: precipitation", "column: precip"))
    result = CliRunner().invoke(app, ["backtest", str(config)])
    assert result.exit_code == 2
    assert result.output.startswith(
        f"cannot use {SEATTLE} as the backtest source: data.target_from.column 'precip' not "
        "found (columns: date, precipitation, ")
    assert "site-packages" not in result.output


def test_rain_target_is_derived_and_its_column_dropped() -> None:
    config = load_config(PUBLIC / "seattle-rain.yaml")
    raw = pd.read_csv(labelled_history.resolve_source(SEATTLE))
    history = labelled_history.read_source(SEATTLE, config)
    assert "precipitation" not in history.columns  # it would leak the target
    assert history["rain"].tolist() == (raw["precipitation"] > 0).astype(float).tolist()
    # the stream's point: the positive rate moves through the year
    month = pd.to_datetime(history["date"]).dt.month
    rate = history.groupby(month)["rain"].mean()
    assert rate[[11, 12, 1, 2]].min() > 0.5 and rate[7] < 0.15


def test_the_glucose_stream_reads_nil_as_missing_and_its_relation_moves() -> None:
    config = load_config(PUBLIC / "cgm-glucose.yaml")
    history = labelled_history.read_source(config.data.source, config)
    assert pd.api.types.is_float_dtype(history["isig"])  # "nil" would make it text
    day = pd.to_datetime(history["datetime"]).dt.date
    missing = history["isig"].isna().groupby(day).sum()
    assert missing.sum() == 1061 and set(missing[missing > 0].index.astype(str)) == {
        f"2010-08-{d}" for d in range(24, 29)}
    # the stream's point: the sensor's calibration (glucose per nA) moves from week to week
    ratio = (history["glucose"] / history["isig"]).groupby(
        pd.to_datetime(history["datetime"]).dt.to_period("W")).median()
    assert ratio.min() < 8 and ratio.max() > 12


def test_target_from_rules() -> None:
    base = ("name: x\ndata: {time_column: t, target: y, task: %s, target_from: {column: %s}}\n"
            "features: {numeric: [a]}\nevaluation: {metric: %s}\ngate: {floor: 0.5}\n")
    with pytest.raises(ConfigError, match="task must be binary"):
        parse_config(base % ("regression", "p", "mae"), Path("x.yaml"))
    with pytest.raises(ConfigError, match="must be another column"):
        parse_config(base % ("binary", "y", "roc_auc"), Path("x.yaml"))
    with pytest.raises(ConfigError, match="x.yaml: features must not include "
                       "data.target_from.column 'a': the target is derived from it"):
        parse_config(base % ("binary", "a", "roc_auc"), Path("x.yaml"))
    config = parse_config(base % ("binary", "p", "roc_auc"), Path("x.yaml"))
    frame = pd.DataFrame({"t": ["2024-01-01"] * 3, "a": [1, 2, 3], "p": [0.0, 2.5, None]})
    derived = labelled_history.derive_target(frame, config, "f.csv")
    assert derived["y"].iloc[:2].tolist() == [0.0, 1.0] and pd.isna(derived["y"].iloc[2])
    with pytest.raises(ValueError, match="has dtype"):
        labelled_history.derive_target(frame.assign(p=["a", "b", "c"]), config, "f.csv")
    # a source column with the target's name would be silently replaced by the 0/1 target
    with pytest.raises(ValueError, match="f.csv: data.target 'y' is already a column"):
        labelled_history.derive_target(frame.assign(y=[7.0, 8.0, 9.0]), config, "f.csv")


def _backtest(config: Path, source: Path, tmp_path: Path) -> tuple[dict, str]:
    """`ctpipe backtest CONFIG --source SOURCE` with cron-1 and cron-4: the config's replay
    from the JSON, and what the command printed."""
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source),
                                      "--json", str(out), "--cron", "1", "--cron", "4"])
    assert result.exit_code == 0, result.output
    (replay,) = json.loads(out.read_text())["use_cases"].values()
    return replay, result.output


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("name", ["seattle-temp", "seattle-rain"])
def test_fifteen_months_of_public_data_replays_with_baselines(name: str, ctpipe_home: Path,
                                                      tmp_path: Path) -> None:
    """The first 15 months through `ctpipe backtest`, its config unchanged.

    --source narrows the history to keep the test short (the config names the full file).
    The cold start needs a full window (training.window 13 labelled months, label delay 1):
    the 14th batch is the first a champion serves.
    """
    config = PUBLIC / f"{name}.yaml"
    raw = pd.read_csv(labelled_history.resolve_source(SEATTLE))
    months = raw[raw["date"] < "2013/04/01"]
    source = tmp_path / "seattle-15-months.csv"
    months.to_csv(source, index=False)
    replay, output = _backtest(config, source, tmp_path)
    days = replay["days"]
    assert len(days) == 15 and all(d["validation_passed"] for d in days)
    assert [d["champion_version"] for d in days[:13]] == [None] * 13
    assert days[13]["retrained"] and days[13]["gate_passed"]  # the cold start
    assert all(d["champion_metric"] is not None for d in days[13:])
    policies = replay["policies"]
    assert set(policies) == {"ctpipe", "static", "cron-1", "cron-4"}
    for figures in policies.values():
        assert figures["mean"] is not None and math.isfinite(figures["mean"])
        assert figures["retrains"] >= 1
    assert "vs static" in output


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_two_weeks_of_glucose_readings_replay_up_to_a_nil_day(ctpipe_home: Path,
                                                              tmp_path: Path) -> None:
    """15 days up to the first with "nil" readings through `ctpipe backtest`, its config
    unchanged: the cold start needs 8 labelled days (label delay 1), so the 9th is the first
    served; the last is scored with its unrecorded currents as missing values."""
    config = PUBLIC / "cgm-glucose.yaml"
    raw = pd.read_csv(labelled_history.resolve_source(CGM), dtype=str)  # as shipped, "nil" and all
    days = raw[(raw["datetime"] >= "2010-08-10") & (raw["datetime"] < "2010-08-25")]
    assert (days["isig"] == "nil").sum() == 86
    source = tmp_path / "cgm-15-days.csv"
    days.to_csv(source, index=False)
    replay, _ = _backtest(config, source, tmp_path)
    assert len(replay["days"]) == 15 and all(d["validation_passed"] for d in replay["days"])
    assert [d["champion_version"] for d in replay["days"][:8]] == [None] * 8
    assert replay["days"][8]["retrained"] and replay["days"][8]["gate_passed"]
    served = [d["champion_metric"] for d in replay["days"][8:]]
    assert all(m is not None and math.isfinite(m) and m > 0 for m in served), served
    last = replay["days"][-1]
    assert last["rows_scored"] == (days["datetime"] >= "2010-08-24").sum()
    assert set(replay["policies"]) == {"ctpipe", "static", "cron-1", "cron-4"}
