import datetime as dt
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from ctpipe.cli import app
from ctpipe.simulate import generate_day

START = dt.date(2026, 3, 2)


def _write(path: Path, days: range, shift_day: int | None) -> Path:
    frames = [generate_day("fraud", i, START + dt.timedelta(days=i), rows=4000,
                           shift_day=shift_day) for i in days]
    pd.concat(frames, ignore_index=True).to_parquet(path)
    return path


def test_drift_cli_flags_the_new_fraud_pattern(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.parquet", range(0, 3), None)
    same = _write(tmp_path / "same.parquet", range(10, 12), None)
    shifted = _write(tmp_path / "shifted.parquet", range(10, 12), shift_day=5)
    runner = CliRunner()

    calm = runner.invoke(app, ["drift", "fraud", "--reference", str(ref), "--current", str(same),
                               "--json", str(tmp_path / "calm.json")])
    assert calm.exit_code == 0, calm.output
    assert "no dataset drift: 0 of 11 tested features drifted" in calm.output

    alarm = runner.invoke(app, ["drift", "fraud", "--reference", str(ref), "--current",
                                str(shifted), "--json", str(tmp_path / "alarm.json"),
                                "--png", str(tmp_path / "alarm.png")])
    assert alarm.exit_code == 1, alarm.output
    report = json.loads((tmp_path / "alarm.json").read_text())
    assert report["dataset_drift"] is True and report["current_rows"] == 8000
    drifted = {f["feature"] for f in report["features"] if f["drifted"]}
    assert {"channel", "jurisdiction"} <= drifted
    by_name = {f["feature"]: f for f in report["features"]}
    assert by_name["channel"]["test"] == "jensenshannon"
    assert by_name["amount"]["test"] == "wasserstein"
    assert (tmp_path / "alarm.png").stat().st_size > 10_000


def test_drift_cli_names_a_missing_column(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.parquet", range(0, 1), None)
    cur = tmp_path / "cur.parquet"
    pd.read_parquet(ref).drop(columns="channel").to_parquet(cur)
    result = CliRunner().invoke(app, ["drift", "fraud", "--reference", str(ref),
                                      "--current", str(cur)])
    assert result.exit_code == 2
    assert "channel" in result.output
