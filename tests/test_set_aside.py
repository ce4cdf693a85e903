"""`ctpipe set-aside`: an operator moves batches out of the landing zone, with the evidence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from ctpipe import landing
from ctpipe.cli import app
from tests.helpers import day, simulated_workspace, small_config


def test_an_operator_sets_batches_aside_with_the_reason_and_the_validation_result(
        ctpipe_home: Path, tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    broken = dt.date.fromisoformat(day(3))
    path = landing.batch_path(ws.landing, broken)
    frame = pd.read_parquet(path)
    frame.loc[:4, "border_wait_minutes"] = -30.0  # the demand suite's range rule
    frame.to_parquet(path)
    runner = CliRunner()

    # A date that did not land, or no reason: refused, nothing moved or audited.
    unknown = runner.invoke(app, ["set-aside", ws.ref, "--date", day(3), "--date", day(40),
                                  "--reason", "sensor swap"])
    assert unknown.exit_code == 2
    assert f"--date {day(40)}: no such batch in {ws.landing} (nothing was moved)" \
        in unknown.output
    blank = runner.invoke(app, ["set-aside", ws.ref, "--date", day(3), "--reason", " "])
    assert blank.exit_code == 2 and "--reason" in blank.output
    assert len(ws.store.batch_dates()) == 9 and not ws.audit_path.exists()

    result = runner.invoke(app, ["set-aside", ws.ref, "--date", day(3), "--date", day(5),
                                 "--reason", "sensor swap", "--operator", "ops"])
    assert result.exit_code == 0, result.output
    assert [d.isoformat() for d in ws.store.batch_dates()] == [
        day(i) for i in range(9) if i not in (3, 5)]
    entries = [json.loads(line) for line in ws.audit_path.read_text().splitlines()]
    set_aside = [e for e in entries if e["action"] == "batch.set_aside"]
    assert [(e["who"], e["details"]["batch_date"], e["details"]["passed_validation"])
            for e in set_aside] == [("ops", day(3), False), ("ops", day(5), True)]
    assert set_aside[0]["why"].startswith("set aside by ops: sensor swap (it fails the "
                                          "current validation rules: ")
    for i, verdict in ((3, "it fails the current validation rules"),
                       (5, "it passes the current validation rules")):
        folder = ws.quarantine / day(i) / "attempt-1"
        summary = (folder / "summary.md").read_text()
        assert summary.startswith(f"# Set aside by ops\n\nsensor swap\n\nWhen set aside, {verdict}")
        assert (folder / landing.batch_path(ws.landing, dt.date.fromisoformat(day(i))).name
                ).is_file()
        assert f"batch {day(i)}: moved to {folder}" in result.output
    assert "border_wait_minutes" in (ws.quarantine / day(3) / "attempt-1" / "summary.md"
                                     ).read_text()
