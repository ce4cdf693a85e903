"""The monitoring report: a self-contained page and PNG from what the database recorded."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import pytest

from ctpipe import db as production
from ctpipe.db import LiveMetric, MonitoringDecision, ScoringRun, open_database
from ctpipe.monitoring_report import markers, report_paths, write_monitoring_report
from ctpipe.records import CycleRecord
from ctpipe.workspace import Workspace, open_workspace
from tests.helpers import day, small_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REASON = ("automatic: v2's live pr_auc was worse than v1's shadow pr_auc by more than 5% on "
          "3 consecutive labelled batches (2026-03-05, 2026-03-06, 2026-03-07)")


@pytest.fixture
def ws(tmp_path: Path, ctpipe_home: Path) -> Workspace:
    return open_workspace(str(small_config(tmp_path, "fraud")))


def _run(ws: Workspace, i: int, role: str, version: int) -> ScoringRun:
    return ScoringRun(model_name=ws.model_name, use_case=ws.name, batch=day(i), role=role,
                      model_version=str(version), artifact_sha256="0" * 64, rows=1000,
                      scored_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC) + dt.timedelta(days=i),
                      estimated_metric=0.5 - 0.01 * i, estimated_precision=0.6)


def _metric(ws: Workspace, i: int, role: str, version: int, value: float,
            slice_: str = "") -> LiveMetric:
    return LiveMetric(model_name=ws.model_name, use_case=ws.name, batch=day(i), role=role,
                      model_version=str(version), slice=slice_, metric="pr_auc", value=value,
                      rows_labelled=1000, rows_scored=1000, realized_precision=0.55)


def _fill(ws: Workspace, db: production.Database) -> None:
    """v1 serves days 0-2, v2 (promoted) days 3-7 with v1 in shadow, v1 again from day 8
    after the rollback decided on day 7's labels."""
    serving = {i: 1 if i < 3 or i >= 8 else 2 for i in range(10)}
    for i, version in serving.items():
        production.log_predictions(db, _run(ws, i, "champion", version), _scores())
        if version == 2:
            production.log_predictions(db, _run(ws, i, "shadow", 1), _scores())
    metrics = []
    for i in range(8):  # labels of days 8 and 9 have not arrived
        live = 0.45 if serving[i] == 1 else 0.30
        metrics += [_metric(ws, i, "champion", serving[i], live),
                    _metric(ws, i, "champion", serving[i], live - 0.05, "channel=pos"),
                    _metric(ws, i, "champion", serving[i], live + 0.05, "channel=ecommerce")]
        if serving[i] == 2:
            metrics.append(_metric(ws, i, "shadow", 1, 0.44))
    production.save_live_metrics(db, metrics)
    production.record_decision(db, MonitoringDecision(
        model_name=ws.model_name, use_case=ws.name, batch=day(7),
        decided_at=dt.datetime(2026, 3, 12, tzinfo=dt.UTC), kind="rollback",
        champion_version="2", target_version="1", reason=REASON,
        details={"bad_batches": [day(5), day(6), day(7)]}))
    for i in range(4):
        ws.store.write_record(CycleRecord(use_case=ws.name, batch_date=day(i),
                                          drift_share=0.1 * i))


def _scores():  # noqa: ANN202
    import pandas as pd

    return pd.DataFrame({"row_index": range(3), "row_id": ["a", "b", "c"],
                         "score": [0.1, 0.5, 0.9]})


def test_report_marks_the_promotion_and_the_rollback(ws: Workspace, tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/x.db")
    _fill(ws, db)

    page, png = write_monitoring_report(ws, db)

    assert (page, png) == report_paths(ws)
    assert page.parent == ws.root / "reports" / ws.name
    text = page.read_text(encoding="utf-8")
    # Self-contained: nothing to fetch, the figure inline.
    assert not re.search(r"""(src|href)\s*=\s*['"]?https?://""", text, re.IGNORECASE)
    assert "<script" not in text
    assert "src='data:image/png;base64," in text
    assert "v2 promoted" in text and "rolled back to v1" in text
    assert html.escape(REASON) in text  # in full
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert len(png.read_bytes()) > 10_000  # a drawn figure, not a placeholder
    assert not list(page.parent.glob("*.tmp"))


def test_markers_do_not_count_the_rollbacks_version_drop_as_a_promotion() -> None:
    rows = [{"batch": day(i), "version": v} for i, v in enumerate([1, 1, 2, 2, 2, 1, 3, 1])]
    rollback = MonitoringDecision(model_name="m", use_case="u", batch=day(3),
                                  decided_at=dt.datetime.now(dt.UTC), kind="rollback",
                                  champion_version="2", target_version="1")

    marks = [(m.batch, m.label) for m in markers(rows, [rollback])]

    assert marks == [(day(2), "v2 promoted"), (day(3), "rolled back to v1"),
                     (day(6), "v3 promoted"),
                     (day(7), "rolled back to v1")]  # no decision: a manual rollback


def test_an_empty_database_gives_a_report_saying_nothing_was_scored(ws: Workspace,
                                                                   tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/empty.db")

    page, png = write_monitoring_report(ws, db, out_dir=tmp_path / "out")

    assert page == tmp_path / "out" / "monitoring.html"
    assert "Nothing was scored yet" in page.read_text(encoding="utf-8")
    assert png.read_bytes().startswith(PNG_SIGNATURE)
