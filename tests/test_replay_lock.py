"""One replay per use case and CTPIPE_HOME at a time: a second one stops before it resets the
first one's folder (no server: the refusal comes before any flow runs)."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from ctpipe.cli import app
from ctpipe.locks import replay_lock
from ctpipe.workspace import open_workspace
from tests.test_backtest_cli import BIKES_CONFIG, _bike_history


def test_a_second_backtest_of_a_use_case_stops_and_resets_nothing(ctpipe_home: Path,
                                                                  tmp_path: Path) -> None:
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG, encoding="utf-8")
    source = tmp_path / "history.csv"
    _bike_history(days=20).to_csv(source, sep=";", index=False)
    ws = open_workspace(str(config), backtest=True)
    evidence = ws.root / "cycles" / "2025-01-01.json"  # the running replay's record
    evidence.parent.mkdir(parents=True)
    evidence.write_text("{}", encoding="utf-8")

    with replay_lock(ws.model_name, "ctpipe backtest since 09:00"):
        result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source)])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        f"{ws.model_name}: another replay of it is running in {ctpipe_home} (holder: pid "
        f"{os.getpid()}, ctpipe backtest since 09:00): let it finish, or set "
        "CTPIPE_HOME to another folder for this one (with MLFLOW_TRACKING_URI set, point it at "
        "another registry too)")
    assert evidence.read_text(encoding="utf-8") == "{}"
    assert not (ws.root / "landing").exists()  # no batch of the second replay was written


def test_a_demo_stops_while_a_replay_of_its_use_case_runs(ctpipe_home: Path) -> None:
    ws = open_workspace("demand", backtest=True)
    with replay_lock(ws.model_name, "ctpipe demo since 09:00"):
        result = CliRunner().invoke(app, ["demo", "demand", "--days", "10",
                                          "--shift-day", "5"])
    assert result.exit_code == 1, result.output
    assert "another replay of it is running" in result.output.splitlines()[-1]
    assert not (ws.root / "landing").exists()
