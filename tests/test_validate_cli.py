import datetime as dt
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from ctpipe import registry
from ctpipe.cli import app
from ctpipe.config import load_config
from ctpipe.drift import build_profile
from ctpipe.landing import BATCH_KEY
from ctpipe.lineage import Lineage
from ctpipe.simulate import generate_day
from ctpipe.training import train_model
from ctpipe.workspace import open_workspace
from tests.helpers import day


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
    page = Path(failed.output.split("Data Docs: ")[1].splitlines()[0].strip())
    assert page.suffix == ".html" and "border_wait_minutes" in page.read_text()

    missing = runner.invoke(app, ["validate", "demand", "--file", str(tmp_path / "no.parquet")])
    assert missing.exit_code == 2
    assert missing.output.strip() == f"{tmp_path / 'no.parquet'}: batch file not found (--file)"
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")  # there, but no batch: that fails validation
    unreadable = runner.invoke(app, ["validate", "demand", "--file", str(empty)])
    assert unreadable.exit_code == 1 and "could not be read: file is empty" in unreadable.output


def test_validate_cli_checks_the_future_without_a_date(tmp_path: Path, ctpipe_home: Path) -> None:
    day = dt.date(2026, 3, 2)
    batch = generate_day("demand", 0, day).drop(columns="volume_tonnes")
    batch.loc[[4, 5], "date"] = pd.Timestamp("2099-01-01")
    batch.to_parquet(tmp_path / "future.parquet")
    out = CliRunner().invoke(app, ["validate", "demand", "--file",
                                   str(tmp_path / "future.parquet")])
    assert out.exit_code == 1, out.output
    verdict = out.output.strip().splitlines()[-1]
    assert verdict.startswith(f"{tmp_path / 'future.parquet'}: batch failed validation with 1 "
                              "problem")
    assert "date: not in the future: 2 values after now (" in verdict
    assert "(e.g. 2099-01-01 00:00:00)" in verdict
    assert "Traceback" not in out.output
    # No champion in this workspace (no registry at all): said, not silently skipped.
    assert "- no champion: categories not compared with training" in out.output
    assert not (ctpipe_home / "mlflow.db").exists()  # nothing created just to find that out
    # With --date, as before: the period rule runs too.
    dated = CliRunner().invoke(app, ["validate", "demand", "--file",
                                     str(tmp_path / "future.parquet"), "--date", day.isoformat()])
    assert dated.exit_code == 1
    assert "date: in batch period: 2 values outside the daily period" in dated.output


@pytest.mark.slow
def test_validate_cli_compares_categories_with_the_champion(tmp_path: Path,
                                                           ctpipe_home: Path) -> None:
    """A real champion in the workspace's registry; a lane it never saw is a warning."""
    cfg = load_config("demand")
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"params": {"n_estimators": 10}})})
    frame = pd.concat([generate_day("demand", i, pd.Timestamp(day(i)).date())
                       .assign(**{BATCH_KEY: day(i)}) for i in range(5)], ignore_index=True)
    profile = build_profile(frame, cfg.features.numeric, cfg.features.categorical)
    model_name = open_workspace("demand").model_name
    with mlflow.start_run(experiment_id=registry.ensure_experiment("ctpipe-validate-cli")):
        registry.register_candidate(model_name, train_model(cfg, frame), profile, profile,
                                    Lineage(gate_decision="passed", use_case="demand"),
                                    sample=frame)
    registry.promote(model_name, 1, None, Lineage(previous_champion=""))

    when = dt.date(2026, 3, 9)
    batch = generate_day("demand", 7, when).drop(columns="volume_tonnes")
    new = batch.index[:12]
    batch.loc[new, "lane"] = "HK-MO"  # a lane no training row had, and no domain lists lanes
    batch.to_parquet(tmp_path / "b.parquet")
    out = CliRunner().invoke(app, ["validate", "demand", "--file", str(tmp_path / "b.parquet"),
                                   "--date", when.isoformat()])
    assert out.exit_code == 0, out.output
    share = f"{12 / len(batch):.1%}"
    assert (f"| lane | seen in training | 'HK-MO' {share} of non-null values: never seen in the "
            "champion's training data (champion v1) |") in out.output
    assert "no champion" not in out.output
