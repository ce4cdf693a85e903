"""Watching production end to end: real flows, a real MLflow registry, SQLite and PostgreSQL.

A fraud champion that passed the gate serves; a worse version is then promoted by hand (the
way a bad promotion reaches production); every day the champion scores the batch (the previous
champion in shadow), and monitoring measures what has labels. The automatic rollback must come
on exactly the K-th bad labelled batch, never before, through the audited rollback path.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from ctpipe import db as production
from ctpipe import landing, registry, settings
from ctpipe.db import open_database
from ctpipe.integrity import file_sha256
from ctpipe.lineage import Lineage
from ctpipe.training import ScoringModel
from tests.helpers import day, repo_configs_dir, simulated_workspace

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ROWS = 4000
K = 3


def fraud_config(tmp_path: Path) -> Path:
    raw = yaml.safe_load((repo_configs_dir() / "fraud.yaml").read_text())
    raw["data"]["label_delay"] = 1
    raw["validation"]["min_rows"] = 100
    raw["training"].update({"window": 6, "holdout": 2, "min_train_rows": 200,
                            "recency_half_life": None,
                            "params": {"n_estimators": 60, "learning_rate": 0.1,
                                       "num_leaves": 15, "min_child_samples": 20}})
    raw["evaluation"]["min_slice_rows"] = 50
    raw["gate"]["floor"] = 0.05
    raw["monitoring"] = {"rollback_after": K, "rollback_margin": 0.05}
    path = tmp_path / "fraud.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def promote_a_bad_version(ws) -> int:  # noqa: ANN001
    """Register a model trained on shuffled labels and make it champion over v1."""
    good = registry.load_version(ws.model_name, 1)
    frame = landing.load_labelled(ws.landing, ws.config,
                                  [dt.date.fromisoformat(day(i)) for i in range(6)])
    y = np.random.default_rng(3).permutation(frame[ws.config.data.target].to_numpy())
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": 3},
                        lgb.Dataset(good.model.spec.transform(frame), y), 30)
    bad = ScoringModel(spec=good.model.spec, booster=booster)
    mlflow.set_tracking_uri(settings.tracking_uri())
    with mlflow.start_run(experiment_id=registry.ensure_experiment(ws.experiment)) as run:
        info = registry.register_candidate(ws.model_name, bad, good.profile, good.outputs,
                                           Lineage(use_case=ws.name, batch_date=day(7),
                                                   gate_decision="passed"),
                                           frame.head(5))
    assert run.info.run_id
    registry.promote(ws.model_name, info.version, 1,
                     Lineage(previous_champion="1", gate_decision="passed"))
    return info.version


def champion_serving(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
                     days: int):  # noqa: ANN201 - a Workspace
    """A fraud workspace on ``database_url`` whose cycle on day 7 promoted v1."""
    from ctpipe.flows.cycle import cycle_flow

    monkeypatch.setenv("CTPIPE_DATABASE_URL", database_url)
    ws = simulated_workspace(fraud_config(tmp_path), days=days, rows=ROWS)
    assert cycle_flow(use_case=ws.ref, batch_date=day(7))["status"] == "promoted"
    return ws


def _two_days_scored(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    """The champion scored batches 7 and 8; batch 8's labels file (due on day 9)."""
    from ctpipe.flows.score import score_flow

    ws = champion_serving(tmp_path, database_url, monkeypatch, days=10)
    for i in (7, 8):
        score_flow(use_case=ws.ref, batch_date=day(i))
    return ws, landing.labels_path(ws.landing, dt.date.fromisoformat(day(8)))


def test_scoring_logs_monitoring_measures_and_rolls_back_after_exactly_k_bad_batches(
        ctpipe_home: Path, tmp_path: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ctpipe.flows.monitor import monitor_flow
    from ctpipe.flows.score import score_flow

    ws = champion_serving(tmp_path, database_url, monkeypatch, days=14)
    db = open_database()

    # v1 serves day 7: one logged row per prediction, and scoring again never duplicates.
    first = score_flow(use_case=ws.ref, batch_date=day(7))
    assert first["rows"] == ROWS and production.prediction_count(db, ws.model_name) == ROWS
    score_flow(use_case=ws.ref, batch_date=day(7))
    assert production.prediction_count(db, ws.model_name) == ROWS
    runs = production.scoring_runs(db, ws.model_name, batch=day(7))
    assert [(r.role, r.model_version, r.rows) for r in runs] == [("champion", 1, ROWS)]
    assert runs[0].estimated_precision is not None  # a binary champion carries an estimate
    logged = production.read_predictions(db, ws.model_name, day(7), "champion", 1)
    output = pd.read_parquet(first["path"])
    assert logged["row_id"].tolist() == output["transaction_id"].astype(str).tolist()
    np.testing.assert_array_equal(logged["score"].to_numpy(), output["score"].to_numpy())

    bad = promote_a_bad_version(ws)
    verdicts = []
    for i in range(8, 14):
        scored = score_flow(use_case=ws.ref, batch_date=day(i))
        assert scored["version"] == bad  # the loop ends on the rollback
        state = monitor_flow(use_case=ws.ref, batch_date=day(i), return_state=True)
        verdicts.append({"day": i, **state.result(), "state": state.name})
        if verdicts[-1]["rolled_back"]:
            break
    # Labels arrive a day late: day 9 measures batch 8, the first batch v2 scored. The K-th
    # bad batch is batch 8 + K - 1, measured on day 8 + K.
    assert [v["rolled_back"] for v in verdicts] == [False] * K + [True]
    assert verdicts[-1]["day"] == 8 + K and verdicts[-1]["state"] == "RolledBack"
    assert f"{K - 1} of {K} consecutive" in verdicts[-2]["verdict"]
    assert registry.get_alias(ws.model_name, registry.CHAMPION).version == 1

    # Every bad batch was scored by both: the champion and v1 in shadow, one row each.
    for i in range(8, 8 + K):
        roles = {(r.role, r.model_version) for r in production.scoring_runs(
            db, ws.model_name, batch=day(i))}
        assert roles == {("champion", bad), ("shadow", 1)}
    # Batches 8 .. 8 + K: scored by the bad champion with v1 in shadow (day 7 had no shadow).
    assert production.prediction_count(db, ws.model_name, role="shadow") == (K + 1) * ROWS
    audit = [json.loads(line) for line in ws.audit_path.read_text().splitlines()]
    rolled = [a for a in audit if a["action"] == "model.rolled_back"]
    assert len(rolled) == 1 and rolled[0]["why"].startswith(f"automatic: v{bad} pr_auc")
    assert rolled[0]["who"] == "ctpipe-monitor"
    decided = [d.kind for d in production.decisions(db, ws.model_name)]
    assert decided[-1] == "rollback" and decided.count("rollback") == 1
    # The bad batches before the K-th were watched, not logged as healthy.
    assert decided[-K:-1] == ["watching"] * (K - 1)

    # The next day judges v1, which scored none of those batches: the table says whom it
    # judged, not "healthy" beside the bad version's figures.
    from ctpipe.monitoring_view import batch_rows, decision_text

    monitor_flow(use_case=ws.ref, batch_date=day(9 + K))
    last = batch_rows(db, ws.model_name)[-1]
    assert (last["version"], last["decision_version"]) == (bad, 1)
    assert decision_text(last) == f"{last['decision']} (on v1)"


def test_late_labels_are_joined_when_they_arrive(
        ctpipe_home: Path, tmp_path: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ctpipe.flows.monitor import monitor_flow

    ws, labels = _two_days_scored(tmp_path, database_url, monkeypatch)
    held_back = labels.with_suffix(".late")
    labels.rename(held_back)  # batch 8's chargebacks have not come in yet
    db = open_database()
    monitor_flow(use_case=ws.ref, batch_date=day(9))
    measured = {m.batch for m in production.live_metrics(db, ws.model_name)}
    assert measured == {day(7)}
    held_back.rename(labels)
    monitor_flow(use_case=ws.ref, batch_date=day(9))
    live = {m.batch: m for m in production.live_metrics(db, ws.model_name)}
    assert set(live) == {day(7), day(8)}
    assert live[day(8)].rows_labelled == ROWS and live[day(8)].value is not None


def test_training_and_serving_compute_identical_features(
        ctpipe_home: Path, tmp_path: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ctpipe.flows.score import score_flow

    ws = champion_serving(tmp_path, database_url, monkeypatch, days=9)
    served = registry.load_version(ws.model_name, 1).model
    batch = dt.date.fromisoformat(day(5))
    training_rows = ws.store.read_labelled([batch])  # what the training path reads
    scoring_rows = ws.store.read_batch(batch)  # what the score flow reads
    csv = tmp_path / "input.csv"
    ws.store.read_batch(batch).to_csv(csv, index=False)
    from ctpipe.batch_reader import read_batch_file

    as_input = read_batch_file(csv, ws.config)  # what `ctpipe score --input` reads
    expected = served.spec.transform(training_rows)
    pd.testing.assert_frame_equal(served.spec.transform(scoring_rows), expected)
    pd.testing.assert_frame_equal(served.spec.transform(as_input), expected)

    out = tmp_path / "scores.csv"
    result = score_flow(use_case=ws.ref, input_path=str(csv), output_path=str(out))
    scores = pd.read_csv(out)
    assert result["rows"] == ROWS and list(scores.columns[:2]) == ["transaction_id",
                                                                    "event_time"]
    assert {"score", "model_name", "model_version", "artifact_sha256"} <= set(scores.columns)
    np.testing.assert_allclose(scores["score"].to_numpy(),
                               served.predict(training_rows), rtol=0, atol=1e-12)
    logged = production.prediction_count(open_database(), ws.model_name)
    assert logged == ROWS
    sha = file_sha256(csv)
    assert production.scoring_runs(open_database(), ws.model_name)[0].batch == \
        f"input:input.csv@{sha[:16]}"

    # Tomorrow's file under the same name is another batch: today's logged rows stay.
    tomorrow = tmp_path / "tomorrow"
    tomorrow.mkdir()
    ws.store.read_batch(batch + dt.timedelta(days=1)).to_csv(tomorrow / "input.csv", index=False)
    score_flow(use_case=ws.ref, input_path=str(tomorrow / "input.csv"),
               output_path=str(tomorrow / "scores.csv"))
    runs = production.scoring_runs(open_database(), ws.model_name)
    assert sorted(r.batch for r in runs) == sorted(
        [f"input:input.csv@{sha[:16]}",
         f"input:input.csv@{file_sha256(tomorrow / 'input.csv')[:16]}"])
    assert production.prediction_count(open_database(), ws.model_name) == 2 * ROWS
    # The same bytes scored again replace their own log, not add to it.
    score_flow(use_case=ws.ref, input_path=str(csv), output_path=str(out))
    assert production.prediction_count(open_database(), ws.model_name) == 2 * ROWS
    entry = next(json.loads(line) for line in ws.audit_path.read_text().splitlines()
                 if '"batch.scored"' in line)
    assert entry["details"]["input"] == str(csv.absolute())
    assert entry["details"]["input_sha256"] == sha


def test_a_tampered_champion_is_a_refusal_audited_and_nothing_is_scored(
        ctpipe_home: Path, tmp_path: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import unquote, urlparse

    from ctpipe.flows.score import score_flow

    ws = champion_serving(tmp_path, database_url, monkeypatch, days=9)
    stored = Path(unquote(urlparse(registry.client().get_model_version_download_uri(
        ws.model_name, "1")).path))
    booster = stored / "artifacts" / "booster.txt"
    booster.write_bytes(booster.read_bytes().replace(b"leaf_value=", b"leaf_value=9", 1))
    csv = tmp_path / "input.csv"
    ws.store.read_batch(dt.date.fromisoformat(day(8))).to_csv(csv, index=False)

    for run in ({"batch_date": day(8)},
                {"input_path": str(csv), "output_path": str(tmp_path / "scores.csv")}):
        state = score_flow(use_case=ws.ref, return_state=True, **run)
        assert not state.is_completed()
        assert state.message.startswith(
            "the champion failed its integrity check, nothing was scored: "
            f"{ws.model_name} v1: stored files do not match the sha256 recorded at registration")
    refusals = [json.loads(line) for line in ws.audit_path.read_text().splitlines()
                if '"scoring.refused"' in line]
    assert [r["details"].get("batch_date", r["details"].get("input")) for r in refusals] == [
        day(8), str(csv.absolute())]
    assert production.prediction_count(open_database(), ws.model_name) == 0
    assert not ws.store.predictions_exist(dt.date.fromisoformat(day(8)))
    assert not (tmp_path / "scores.csv").exists()
    from typer.testing import CliRunner

    from ctpipe.cli import app

    newest = CliRunner().invoke(app, ["score", ws.ref])  # no --date: the newest batch, named
    assert newest.exit_code == 1
    assert newest.output.strip().splitlines()[-1].startswith(
        f"score {ws.ref} {day(8)}: the champion failed its integrity check")
    shown = CliRunner().invoke(app, ["status", ws.ref]).output
    assert f"  INTEGRITY FAILED, it cannot serve: {ws.model_name} v1: stored files do not " \
        "match" in shown


def test_monitor_names_labels_it_set_aside(
        ctpipe_home: Path, tmp_path: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ctpipe.cli import app

    ws, labels = _two_days_scored(tmp_path, database_url, monkeypatch)
    target = ws.config.data.target
    pd.read_parquet(labels).rename(columns={target: "label"}).to_parquet(labels)

    figures = tmp_path / "monitor.json"
    shown = CliRunner().invoke(app, ["monitor", ws.ref, "--date", day(9), "--json",
                                     str(figures)])

    assert shown.exit_code == 0, shown.output
    [line] = [x for x in shown.output.splitlines() if x.startswith("labels of ")]
    assert line.startswith(f"labels of {day(8)} set aside, not measured: ") and target in line
    assert str(ws.quarantine / day(8) / "labels-attempt-1") in line
    [held] = json.loads(figures.read_text(encoding="utf-8"))["labels_set_aside"]
    assert (held["batch"], held["folder"]) == (day(8), str(ws.quarantine / day(8) /
                                                              "labels-attempt-1"))
    earlier = CliRunner().invoke(app, ["monitor", ws.ref, "--date", day(7)])
    assert "labels of " not in earlier.output  # as of day 7, day 8's labels were not due
    measured = {m.batch for m in production.live_metrics(open_database(), ws.model_name)}
    assert measured == {day(7)}


def test_an_input_file_changed_while_it_is_read_is_refused(
        ctpipe_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ctpipe.batch_reader import BatchReadError, read_batch_file
    from ctpipe.flows import score
    from ctpipe.workspace import open_workspace

    ws = open_workspace("demand")
    source = tmp_path / "today.csv"
    source.write_text("date,record_id\n2026-03-02,a\n", encoding="utf-8")

    def read_while_a_writer_appends(path: Path, config: object) -> pd.DataFrame:
        frame = read_batch_file(path, config)
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write("2026-03-02,b\n")
        return frame

    monkeypatch.setattr(score, "read_batch_file", read_while_a_writer_appends)
    with pytest.raises(BatchReadError, match=rf"^{source}: changed while it was read; score "
                       "it once it is complete$"):
        score._read_whole(source, ws)
    monkeypatch.setattr(score, "read_batch_file", read_batch_file)
    frame, sha = score._read_whole(source, ws)  # left alone: read, and hashed as read
    assert len(frame) == 2 and sha == file_sha256(source)
    with pytest.raises(BatchReadError, match="batch file not found"):
        score._read_whole(tmp_path / "none.csv", ws)
