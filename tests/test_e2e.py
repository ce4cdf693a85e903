"""End-to-end replays of both reference scenarios through the real cycle flow (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from ctpipe.backtest import mean
from ctpipe.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def _demo(tmp_path: Path, *args: str) -> tuple[dict, str]:
    """The demo's result per use case and its printed output."""
    out = tmp_path / "demo.json"
    png = tmp_path / "demo.png"
    result = CliRunner().invoke(app, ["demo", *args, "--json", str(out), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 10_000
    return json.loads(out.read_text())["use_cases"], result.output


# One test per use case: the replays are the suite's longest tests, and xdist can only
# balance them across workers when they are separate.
@pytest.mark.parametrize("use_case", ["demand", "fraud"])
def test_shift_scenario_retrains_promotes_and_beats_static(ctpipe_home: Path, tmp_path: Path,
                                                           use_case: str) -> None:
    # One cron schedule from the cold start only keeps the replay affordable (its other
    # starts would fit every batch); it still shows the baselines at work.
    cases, output = _demo(tmp_path, use_case, "--days", "50", "--shift-day", "30",
                          "--cron", "4", "--no-cron-starts")
    assert list(cases) == [use_case]
    assert "phases" not in cases[use_case]["cron"] and "over 4 starts" not in output
    for name, result in cases.items():
        days, shift = result["days"], result["shift_day"]
        assert shift == 30 and len(days) == 50
        assert all(d["validation_passed"] for d in days)
        cold = next(i for i, d in enumerate(days) if d["champion_version"] is not None)
        assert cold < shift and days[cold]["gate_passed"]
        # no drift between the cold start and the shift
        assert not any(d["drift_detected"] for d in days[cold + 1: shift]), name
        first_drift = next(i for i, d in enumerate(days) if i >= shift and d["drift_detected"])
        assert first_drift - shift <= 3, name
        promoted = next(i for i, d in enumerate(days)
                        if i >= shift and d["retrained"] and d["gate_passed"])
        assert days[promoted]["champion_version"] != days[cold]["champion_version"]
        after = days[promoted + 1: promoted + 11]
        assert len(after) == 10, f"{name}: promotion at {promoted} leaves too few batches"
        champion = mean([d["champion_metric"] for d in after])
        static = mean([d["static_metric"] for d in after])
        better = champion > static if result["higher_is_better"] else champion < static
        assert better, f"{name}: champion {champion:.4f} vs static {static:.4f}"
        # drift days leave the plot of the most drifted features in their MLflow run
        client = MlflowClient()
        experiment = client.get_experiment_by_name(f"ctpipe-{name}-backtest")
        runs = client.search_runs([experiment.experiment_id], "tags.drift = 'detected'")
        assert runs
        assert [a.path for a in client.list_artifacts(runs[0].info.run_id, "drift")] \
            == ["drift/drift.png"]
        # rejected challengers never moved the alias
        for prev, d in zip(days, days[1:], strict=False):
            if d["retrained"] and d["gate_passed"] is False:
                assert d["champion_version"] == prev["champion_version"]
        # the cron baseline ran on the same batches, from the same cold start
        assert result["cron"]["best"] == 4 and result["cron"]["cold_start"] == cold
        assert all(d["cron_metric"] is not None for d in days[cold:])
        assert f"{name}: ctpipe {result['metric_name'].upper()}" in output
        assert "cron every 4 batches" in output and "retrains vs" in output
        assert f"event {days[shift]['date']} (batch {shift}): drift or retrain after" in output


@pytest.mark.parametrize("use_case", ["demand", "fraud"])
def test_no_shift_control_never_retrains_after_cold_start(ctpipe_home: Path, tmp_path: Path,
                                                          use_case: str) -> None:
    cases, _ = _demo(tmp_path, use_case, "--days", "52", "--no-shift", "--no-baselines")
    assert list(cases) == [use_case]
    for name, result in cases.items():
        days = result["days"]
        assert result["shift_day"] is None
        cold = next(i for i, d in enumerate(days) if d["champion_version"] is not None)
        later = days[cold + 1:]
        assert len(later) >= 30, name
        assert not any(d["drift_detected"] or d["retrained"] for d in later), name
        assert {d["champion_version"] for d in later} == {days[cold]["champion_version"]}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_bad_promotion_is_rolled_back_automatically(ctpipe_home: Path, tmp_path: Path,
                                                    database_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The daily loop on PostgreSQL: a campaign-fitted champion, then the rollback by itself."""
    from sqlalchemy import create_engine, text

    monkeypatch.setenv("CTPIPE_DATABASE_URL", database_url)
    out = tmp_path / "demo.json"
    result = CliRunner().invoke(app, ["demo", "fraud", "--scenario", "bad-promotion",
                                      "--days", "44", "--no-baselines", "--json", str(out),
                                      "--png", str(tmp_path / "demo.png")])
    assert result.exit_code == 0, result.output
    fraud = json.loads(out.read_text())["use_cases"]["fraud"]
    days = fraud["days"]
    assert fraud["scenario"] == "bad-promotion" and fraud["shift_day"] == 30
    promoted = next(i for i, d in enumerate(days)
                    if i >= 30 and d["retrained"] and d["gate_passed"])
    before = days[promoted - 1]["champion_version"]
    rolled = [i for i, d in enumerate(days) if d["rolled_back"]]
    assert len(rolled) == 1 and rolled[0] > promoted, rolled
    # Labels come 3 batches late and K = 3: never before the third bad batch's labels.
    assert rolled[0] - promoted >= 3 + 3 - 1
    # The rollback's batch was served (and is measured) by the bad champion; the one it
    # rolled back to serves from the next batch on.
    bad = days[promoted]["champion_version"]
    assert days[rolled[0]]["champion_version"] == days[rolled[0] - 1]["champion_version"] == bad
    assert days[rolled[0]]["rolled_back_to"] == before
    assert rolled[0] + 1 == len(days) or days[rolled[0] + 1]["champion_version"] == before
    assert f"fraud: automatic rollback on {days[rolled[0]]['date']} -> champion v{before}: " \
        in result.output and "automatic: v" in result.output
    # Every row the replay scored is in the prediction log, once.
    cold = next(i for i, d in enumerate(days) if d["champion_version"] is not None)
    assert [d["rows_scored"] for d in days] == [0] * cold + [20_000] * (len(days) - cold)
    scored = sum(d["rows_scored"] for d in days)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        logged = conn.execute(text("SELECT count(*) FROM predictions")).scalar_one()
    engine.dispose()
    assert logged == scored
    live = [d["live_metric"] for d in days[promoted:rolled[0]] if d["live_metric"] is not None]
    assert live and all(d["estimated_metric"] is not None for d in days if d["rows_scored"])
