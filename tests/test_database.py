"""ctpipe's database (src/ctpipe/db) on SQLite and on the local PostgreSQL server.

Every test takes ``database_url`` (tests/conftest.py): a fresh SQLite file, then a fresh
PostgreSQL database created for the test and dropped after it.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from ctpipe import settings
from ctpipe.db import (
    DatabaseUnavailable,
    LiveMetric,
    MonitoringDecision,
    ScoringRun,
    decisions,
    forget_model,
    live_metrics,
    log_predictions,
    open_database,
    prediction_count,
    read_predictions,
    record_decision,
    save_live_metrics,
    scoring_runs,
)
from ctpipe.db.engine import VERSION_TABLE, dispose_databases
from ctpipe.db.schema import metadata

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


def _run(batch: str = "2026-03-02", role: str = "champion", version: int = 1,
         model: str = "ctpipe-fraud", rows: int = 0, **extra: object) -> ScoringRun:
    return ScoringRun(model_name=model, use_case="fraud", batch=batch, role=role,
                      model_version=version, artifact_sha256="ab" * 32, rows=rows,
                      scored_at=T0, **extra)


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"row_index": np.arange(rows), "row_id": [f"tx{i}" for i in range(rows)],
                         "score": rng.random(rows)})


def _count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _open_in_child(url: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()  # every process starts on the fresh database at the same moment
    open_database(url)


def test_concurrent_starts_migrate_once(database_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited engines
    barrier = ctx.Barrier(4)
    children = [ctx.Process(target=_open_in_child, args=(database_url, barrier))
                for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]

    assert _count(database_url, f"SELECT count(*) FROM {VERSION_TABLE}") == 1
    db = open_database(database_url)
    assert open_database(database_url) is db  # once per process
    with db.read() as conn:
        assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == "0001"


def test_a_start_waits_for_another_creating_the_sqlite_file(tmp_path: Path) -> None:
    # What two starts on a new SQLite database meet: one holds the write lock of the rollback
    # journal (here the holder; in life the other's first switch to WAL). SQLite answers
    # "database is locked" at once there, without waiting its busy timeout.
    import sqlite3

    path = tmp_path / "ctpipe.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))
    released.start()
    try:
        db = open_database(f"sqlite:///{path}")
        with db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar_one() == 1
    finally:
        released.join()
        holder.close()
        dispose_databases()


def test_the_migration_creates_what_the_code_uses(database_url: str) -> None:
    db = open_database(database_url)
    with db.read() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_each_prediction_is_logged_once(database_url: str) -> None:
    db = open_database(database_url)
    frame = pd.DataFrame({"row_index": [0, 1, 2, 3], "row_id": ["a", None, "", "d"],
                          "score": [0.1, 0.25, 1 / 3, 0.9]})

    assert log_predictions(db, _run(output="/out/x.parquet", estimated_metric=0.4), frame) == 4

    assert prediction_count(db, "ctpipe-fraud") == 4
    assert prediction_count(db) == 4
    assert prediction_count(db, "ctpipe-fraud", role="shadow") == 0
    back = read_predictions(db, "ctpipe-fraud", "2026-03-02", "champion", 1)
    assert back["row_index"].tolist() == [0, 1, 2, 3]
    assert back["score"].tolist() == frame["score"].tolist()  # exact, not approximate
    ids = back["row_id"].tolist()
    assert ids[0] == "a" and pd.isna(ids[1]) and ids[2] == "" and ids[3] == "d"
    [run] = scoring_runs(db, "ctpipe-fraud")
    assert run == _run(rows=4, output="/out/x.parquet", estimated_metric=0.4)
    assert run.scored_at.tzinfo is not None


def test_shadow_scores_have_their_own_table(database_url: str) -> None:
    db = open_database(database_url)
    frame = pd.DataFrame({"row_index": [0, 1, 2], "row_id": ["a", "b", "c"],
                          "score": [0.1, 0.2, 0.3]})
    log_predictions(db, _run(), frame)
    log_predictions(db, _run(role="shadow", version=0), frame.assign(score=[0.3, 0.2, 0.1]))
    with db.read() as conn:
        # What was served is exactly the predictions table: an auditor's plain count.
        assert conn.execute(text("SELECT count(*) FROM predictions")).scalar_one() == 3
        assert conn.execute(text("SELECT count(*) FROM shadow_predictions")).scalar_one() == 3
    assert prediction_count(db, role=None) == 6
    shadow = read_predictions(db, "ctpipe-fraud", "2026-03-02", "shadow", 0)
    assert shadow["score"].tolist() == [0.3, 0.2, 0.1]
    forget_model(db, "ctpipe-fraud")
    assert prediction_count(db, role=None) == 0


def test_a_frame_without_ids_and_with_integer_ids(database_url: str) -> None:
    db = open_database(database_url)
    log_predictions(db, _run(batch="a"), pd.DataFrame({"score": [0.5, 0.6]}))
    log_predictions(db, _run(batch="b"), pd.DataFrame({"row_index": [0, 1],
                                                       "row_id": [17, 18], "score": [0.1, 0.2]}))

    assert read_predictions(db, "ctpipe-fraud", "a", "champion", 1)["row_id"].isna().all()
    assert read_predictions(db, "ctpipe-fraud", "b", "champion", 1)["row_id"].tolist() == [
        "17", "18"]
    assert read_predictions(db, "ctpipe-fraud", "never", "champion", 1).empty


def test_relogging_a_run_replaces_it(database_url: str) -> None:
    db = open_database(database_url)
    log_predictions(db, _run(), _frame(50))
    log_predictions(db, _run(role="shadow"), _frame(50))
    log_predictions(db, _run(version=2), _frame(50))

    log_predictions(db, _run(), _frame(30, seed=1))  # the champion's batch scored again

    assert prediction_count(db, "ctpipe-fraud") == 80
    assert prediction_count(db, "ctpipe-fraud", role=None) == 130
    runs = scoring_runs(db, "ctpipe-fraud", batch="2026-03-02", role="champion")
    assert sorted((r.model_version, r.rows) for r in runs) == [(1, 30), (2, 50)]
    back = read_predictions(db, "ctpipe-fraud", "2026-03-02", "champion", 1)
    assert back["score"].tolist() == _frame(30, seed=1)["score"].tolist()


def test_scoring_runs_newest_batch_last(database_url: str) -> None:
    db = open_database(database_url)
    for batch in ("2026-03-03", "2026-03-01", "2026-03-02"):
        log_predictions(db, _run(batch=batch), _frame(2))
    assert [r.batch for r in scoring_runs(db, "ctpipe-fraud")] == [
        "2026-03-01", "2026-03-02", "2026-03-03"]


@pytest.mark.parametrize("broken", ["duplicate row_index late in the frame",
                                    "missing row_index", "score not a number",
                                    "infinite score"])
def test_a_failed_write_leaves_the_previous_log(database_url: str, broken: str) -> None:
    db = open_database(database_url)
    log_predictions(db, _run(), _frame(2000))
    frame = _frame(3000, seed=1)
    if broken.startswith("duplicate"):
        # Only the database sees this, after the old rows were deleted and 2500 new ones
        # written: the whole transaction must roll back.
        frame.loc[2500, "row_index"] = 3
    elif broken.startswith("missing"):
        frame["row_index"] = frame["row_index"].astype("float64")
        frame.loc[10, "row_index"] = np.nan
    elif broken.startswith("score"):
        frame["score"] = frame["score"].astype(object)
        frame.loc[10, "score"] = "high"
    else:
        frame.loc[10, "score"] = np.inf

    import sqlite3

    import psycopg
    from sqlalchemy.exc import IntegrityError

    # Refused before writing (ValueError), or the key violated mid-write, in the driver.
    expected = (IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError) \
        if broken.startswith("duplicate") else ValueError
    with pytest.raises(expected):
        log_predictions(db, _run(), frame)

    assert prediction_count(db, "ctpipe-fraud") == 2000
    [run] = scoring_runs(db, "ctpipe-fraud")
    assert run.rows == 2000
    back = read_predictions(db, "ctpipe-fraud", "2026-03-02", "champion", 1)
    assert back["score"].tolist() == _frame(2000)["score"].tolist()


def test_concurrent_writers_wait_for_each_other(database_url: str) -> None:
    db = open_database(database_url)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for round_ in range(3):
                log_predictions(db, _run(batch=f"2026-03-{i + 1:02d}"), _frame(5000, round_))
                save_live_metrics(db, [_metric(f"2026-03-{i + 1:02d}", value=round_ / 10)])
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert prediction_count(db, "ctpipe-fraud") == 4 * 5000
    assert [m.value for m in live_metrics(db, "ctpipe-fraud")] == [0.2] * 4


def _metric(batch: str, slice_: str = "", value: float | None = 0.4, version: int = 1,
            model: str = "ctpipe-fraud") -> LiveMetric:
    return LiveMetric(model_name=model, use_case="fraud", batch=batch, role="champion",
                      model_version=version, slice=slice_, metric="pr_auc", value=value,
                      rows_labelled=900, rows_scored=1000, realized_precision=0.5,
                      prediction_p99=0.97)


def test_live_metrics_replace_by_key(database_url: str) -> None:
    db = open_database(database_url)
    save_live_metrics(db, [_metric("2026-03-03"), _metric("2026-03-02"),
                           _metric("2026-03-02", "channel=pos", 0.3)])

    save_live_metrics(db, [_metric("2026-03-02", value=0.45),  # more labels arrived
                           _metric("2026-03-02", value=None, version=2)])

    whole = live_metrics(db, "ctpipe-fraud")
    assert [(m.batch, m.model_version, m.value) for m in whole] == [
        ("2026-03-02", 1, 0.45), ("2026-03-02", 2, None), ("2026-03-03", 1, 0.4)]
    assert whole[0].realized_precision == 0.5 and whole[0].prediction_p99 == 0.97
    assert whole[0].computed_at.tzinfo is not None
    assert [m.value for m in live_metrics(db, "ctpipe-fraud", slice_="channel=pos")] == [0.3]
    assert len(live_metrics(db, "ctpipe-fraud", slice_=None)) == 4
    assert live_metrics(db, "other-model") == []


def test_monitoring_decisions_round_trip(database_url: str) -> None:
    db = open_database(database_url)
    rollback = MonitoringDecision(model_name="ctpipe-fraud", use_case="fraud",
                                  batch="2026-03-05", kind="rollback", champion_version=3,
                                  target_version=2, reason="automatic: 3 bad batches",
                                  details={"bad_batches": ["2026-03-03", "2026-03-04"]},
                                  decided_at=T0 + dt.timedelta(days=3))
    healthy = MonitoringDecision(model_name="ctpipe-fraud", use_case="fraud",
                                 batch="2026-03-02", kind="healthy", champion_version=3,
                                 decided_at=T0)
    record_decision(db, rollback)
    record_decision(db, healthy)

    assert decisions(db, "ctpipe-fraud") == [healthy, rollback]
    assert decisions(db, "someone-else") == []


def test_forget_model_deletes_only_that_model(database_url: str) -> None:
    db = open_database(database_url)
    for model in ("ctpipe-fraud", "ctpipe-fraud-backtest"):
        log_predictions(db, _run(model=model), _frame(10))
        log_predictions(db, _run(model=model, role="shadow"), _frame(10))
        save_live_metrics(db, [_metric("2026-03-02", model=model)])
        record_decision(db, MonitoringDecision(model_name=model, use_case="fraud",
                                               batch="2026-03-02", kind="healthy",
                                               champion_version=1))

    forget_model(db, "ctpipe-fraud-backtest")

    assert scoring_runs(db, "ctpipe-fraud-backtest") == []
    assert prediction_count(db, "ctpipe-fraud-backtest", role=None) == 0
    assert live_metrics(db, "ctpipe-fraud-backtest") == []
    assert decisions(db, "ctpipe-fraud-backtest") == []
    assert prediction_count(db, role=None) == 20  # the other model's, untouched
    assert len(live_metrics(db, "ctpipe-fraud")) == 1
    assert len(decisions(db, "ctpipe-fraud")) == 1


def test_an_unreachable_database_is_one_line_without_the_password(
        database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("postgresql"):
        # Nothing listens on port 1; the password must not reach the message.
        url = "postgresql+psycopg://ctpipe:secret@127.0.0.1:1/x"
        expected = "postgresql+psycopg://ctpipe:***@127.0.0.1:1/x: "
    else:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the database's folder should be")
        url = f"sqlite:///{blocker}/ctpipe.db"
        expected = f"{url}: "

    with pytest.raises(DatabaseUnavailable) as raised:
        open_database(url)

    message = str(raised.value)
    assert message.startswith(expected), message
    assert "secret" not in message and "\n" not in message
    assert len(message) > len(expected)  # says why
    assert isinstance(raised.value, ValueError)


def test_a_database_lost_after_opening_fails_in_one_line(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_database(database_url)
    log_predictions(db, _run(), _frame(10))
    if database_url.startswith("postgresql"):
        # The server ends every session and refuses new ones to this database.
        name = database_url.rsplit("/", 1)[1]
        with create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                           isolation_level="AUTOCOMMIT").connect() as admin:
            admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = :name"), {"name": name})
        try:
            with pytest.raises(DatabaseUnavailable) as raised:
                log_predictions(db, _run(batch="b"), _frame(10))
        finally:
            with create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                               isolation_level="AUTOCOMMIT").connect() as admin:
                admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    else:
        # Another process holds the write lock for longer than the busy timeout.
        import sqlite3

        from ctpipe.db import engine as engine_module

        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            db.engine.dispose()  # new connections pick up the short timeout below
            monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
            with pytest.raises(DatabaseUnavailable) as raised:
                log_predictions(db, _run(batch="b"), _frame(10))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert str(raised.value).startswith(f"{db.name}: ") and "\n" not in str(raised.value)
    assert scoring_runs(db, "ctpipe-fraud", batch="b") == []  # nothing half written
    assert prediction_count(db, "ctpipe-fraud") == 10


def test_database_url_defaults_to_sqlite_under_home(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("CTPIPE_HOME", str(tmp_path))
    monkeypatch.delenv("CTPIPE_DATABASE_URL", raising=False)
    assert settings.database_url() == f"sqlite:///{tmp_path.resolve() / 'ctpipe.db'}"
    monkeypatch.setenv("CTPIPE_DATABASE_URL", "postgresql+psycopg://u:p@h/db")
    assert settings.database_url() == "postgresql+psycopg://u:p@h/db"
    assert settings.redact_uri(settings.database_url()) == "postgresql+psycopg://u:***@h/db"


def test_two_runs_rescoring_the_same_batch_at_once_leave_one_copy(database_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    db = open_database(database_url)
    frames = [_frame(20_000, seed) for seed in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        logged = list(pool.map(lambda f: log_predictions(db, _run(), f), frames))
    assert logged == [20_000] * 4
    assert prediction_count(db, "ctpipe-fraud") == 20_000
    [run] = scoring_runs(db, "ctpipe-fraud")
    back = read_predictions(db, "ctpipe-fraud", "2026-03-02", "champion", 1)
    # One of the four, whole: never rows of two runs mixed.
    assert any(back["score"].tolist() == f["score"].tolist() for f in frames)


def test_a_shadow_pairs_only_with_the_champion_run_it_was_logged_after() -> None:
    from ctpipe.db import scored_batches

    t = [T0 + dt.timedelta(minutes=i) for i in range(4)]
    v7 = ScoringRun("m", "u", "b", "champion", 7, "", 1, t[0])
    v6_shadow = ScoringRun("m", "u", "b", "shadow", 6, "", 1, t[1])
    v8 = ScoringRun("m", "u", "b", "champion", 8, "", 1, t[2])
    assert scored_batches([v7, v6_shadow])["b"].shadow == v6_shadow
    # Re-scored by v8 whose shadow (v7) failed to load: v6's old shadow run is not v8's.
    pair = scored_batches([v7, v6_shadow, v8])["b"]
    assert pair.champion == v8 and pair.shadow is None
    v7_shadow = ScoringRun("m", "u", "b", "shadow", 7, "", 1, t[3])
    assert scored_batches([v7, v6_shadow, v8, v7_shadow])["b"].shadow == v7_shadow


def test_a_champion_and_its_shadow_are_logged_together_or_not_at_all(database_url: str) -> None:
    db = open_database(database_url)
    champion, shadow = _run(), _run(role="shadow", version=0)
    log_predictions(db, champion, _frame(100), (shadow, _frame(100, seed=1)))
    assert prediction_count(db, role="champion") == prediction_count(db, role="shadow") == 100
    broken = _frame(200, seed=2)
    broken.loc[150, "row_index"] = 3  # the shadow's rows break the key mid-write
    with pytest.raises(Exception, match="(?i)unique|duplicate|primary"):
        log_predictions(db, champion, _frame(200, seed=3), (shadow, broken))
    # Neither was replaced: the champion's new rows went with the shadow's failure.
    assert prediction_count(db, role="champion") == prediction_count(db, role="shadow") == 100
