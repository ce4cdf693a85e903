"""`ctpipe backtest --source` refusing a file it cannot use, before any flow runs: no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctpipe.cli import app
from tests.test_backtest_cli import BIKES_CONFIG, _bike_history


@pytest.mark.parametrize("delimiter", [";", ","])
@pytest.mark.parametrize("indent", [None, 2])
def test_backtest_names_a_json_source_as_json(ctpipe_home: Path, tmp_path: Path,
                                              delimiter: str, indent: int | None) -> None:
    # Before: "wrong delimiter?" with ";", a tokenizing error or "target column missing"
    # with ",", depending on the indentation.
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG.replace('csv_delimiter: ";"',
                                           f"csv_delimiter: {json.dumps(delimiter)}"))
    source = tmp_path / "history.json"
    source.write_text(_bike_history(days=1).to_json(orient="records", indent=indent,
                                                     date_format="iso"))

    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"cannot use {source} as the backtest source: {source}: looks like JSON, not CSV or "
        "Parquet: export it as CSV or Parquet"]
