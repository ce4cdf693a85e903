import datetime as dt
from pathlib import Path

from typer.testing import CliRunner

from ctpipe.cli import app
from ctpipe.simulate import generate_day


def test_validate_cli_exit_codes_summary_and_docs(tmp_path: Path) -> None:
    day = dt.date(2026, 3, 2)
    good = generate_day("demand", 0, day).drop(columns="volume_tonnes")
    good.to_parquet(tmp_path / "good.parquet")
    bad = good.copy()
    bad.loc[:2, "border_wait_minutes"] = 5000.0
    bad.to_parquet(tmp_path / "bad.parquet")
    runner = CliRunner()

    ok = runner.invoke(app, ["validate", "demand", "--file", str(tmp_path / "good.parquet"),
                             "--date", day.isoformat()])
    assert ok.exit_code == 0, ok.output
    assert "FAILED" not in ok.output

    failed = runner.invoke(app, ["validate", "demand", "--file", str(tmp_path / "bad.parquet"),
                                 "--docs", str(tmp_path / "docs")])
    assert failed.exit_code == 1
    assert "border_wait_minutes" in failed.output and "3 values outside [0, 1440]" in failed.output
    page = Path(failed.output.split("Data Docs: ")[1].strip())
    assert page.suffix == ".html" and "border_wait_minutes" in page.read_text()

    missing = runner.invoke(app, ["validate", "demand", "--file", str(tmp_path / "no.parquet")])
    assert missing.exit_code == 1 and "could not be read" in missing.output
