"""The prediction log: every score production made, one row per scored row, per run.

A run is one model version scoring one batch in one role (the champion, or the previous champion
in shadow). Logging a run again replaces it (its predictions included) in one transaction, so
re-scoring never duplicates rows and a failure half way leaves the previous rows in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, select, text

from ctpipe.db import schema
from ctpipe.db.engine import Database

ROLES = ("champion", "shadow")
CHAMPION, SHADOW = ROLES
INPUT_PREFIX = "input:"  # the batch key of a file scored with `ctpipe score --input`
# Rows per COPY chunk: bounds the CSV buffer (about 40 MB) whatever the batch size.
_COPY_CHUNK = 500_000


@dataclass(frozen=True)
class ScoringRun:
    model_name: str
    use_case: str
    batch: str
    role: str
    model_version: int
    artifact_sha256: str
    rows: int
    scored_at: datetime
    output: str = ""
    estimated_metric: float | None = None
    estimated_precision: float | None = None
    estimated_recall: float | None = None


_RUN_FIELDS = tuple(ScoringRun.__dataclass_fields__)


def _run_key(model_name: str, batch: str, role: str,
             model_version: int) -> ColumnElement[bool]:
    runs = schema.scoring_runs
    return and_(runs.c.model_name == model_name, runs.c.batch == batch, runs.c.role == role,
                runs.c.model_version == model_version)


def log_predictions(db: Database, run: ScoringRun, frame: pd.DataFrame,
                    *beside: tuple[ScoringRun, pd.DataFrame]) -> int:
    """Log ``frame`` (row_index, row_id, score) as ``run``, replacing an earlier log of it.

    One transaction: delete the run with the same model, batch, role and version and its
    predictions, insert the run, bulk-insert the rows (PostgreSQL: COPY; SQLite: executemany).
    ``beside``: more runs logged in the same transaction (the shadow's, with the champion's),
    so a crash never leaves one without the other.
    A run's ``rows`` is stored as its frame's length. Returns the rows logged for ``run``.
    Raises ``ValueError`` (nothing written) for a frame that cannot be logged, and
    ``DatabaseUnavailable`` when the database is lost.
    """
    batches = [(run, frame), *beside]
    for each, _ in batches:
        if each.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {each.role!r}")
    prepared = [(each, _columns(f)) for each, f in batches]
    with db.write() as conn:
        if db.dialect == "postgresql":
            # Two runs re-scoring the same batch and version: the second waits for the first
            # to commit, then replaces it (SQLite's writers are serialized already). Keys in
            # one order, so two writers of overlapping runs cannot deadlock.
            for key in sorted({_lock_key(each) for each, _ in batches}):
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                             {"key": key})
        for each, columns in prepared:
            _replace_run(conn, db.dialect, each, *columns)
    return len(prepared[0][1][2])


def _lock_key(run: ScoringRun) -> str:
    return f"{run.model_name}|{run.batch}|{run.role}|{run.model_version}"


def _replace_run(conn: Connection, dialect: str, run: ScoringRun, row_index: np.ndarray,
                 row_id: pd.Series | None, score: np.ndarray) -> None:
    rows = len(score)
    values = {name: getattr(run, name) for name in _RUN_FIELDS} | {"rows": rows}
    runs, predictions = schema.scoring_runs, schema.PREDICTION_TABLES[run.role]
    key = _run_key(run.model_name, run.batch, run.role, run.model_version)
    # The run's predictions first: there is no foreign key to cascade (schema.py).
    conn.execute(delete(predictions).where(predictions.c.run_id.in_(select(runs.c.id)
                                                                     .where(key))))
    conn.execute(delete(runs).where(key))
    run_id = conn.execute(insert(runs).values(values)).inserted_primary_key[0]
    if rows:
        bulk = _copy_postgres if dialect == "postgresql" else _executemany
        bulk(conn, predictions.name, run_id, row_index, row_id, score)


def _columns(frame: pd.DataFrame) -> tuple[np.ndarray, pd.Series | None, np.ndarray]:
    """row_index (int64), row_id (strings, missing as NA; None when the frame has no ids), score.

    Refuses (ValueError) what the log cannot hold, before anything is written.
    """
    if "score" not in frame.columns:
        raise ValueError("the predictions frame has no score column")
    score = pd.to_numeric(frame["score"], errors="raise").to_numpy(dtype="float64")
    if not np.isfinite(score).all():
        raise ValueError(f"{int((~np.isfinite(score)).sum())} scores are missing or infinite; "
                         "a prediction log holds numbers")
    if "row_index" in frame.columns:
        raw = pd.to_numeric(frame["row_index"], errors="raise")
        if raw.isna().any():
            raise ValueError(f"{int(raw.isna().sum())} rows have no row_index")
        row_index = raw.to_numpy(dtype="int64")
        if (row_index != raw.to_numpy(dtype="float64")).any():
            raise ValueError("row_index holds values that are not whole numbers")
    else:
        row_index = np.arange(len(frame), dtype="int64")
    row_id = None
    if "row_id" in frame.columns:
        ids = frame["row_id"]
        if not pd.api.types.is_string_dtype(ids.dtype) or ids.dtype == object:
            # Ids of any type are kept as their text; missing stays missing (pandas 2 would
            # turn NaN into "nan").
            ids = ids.astype(str).where(ids.notna(), None)
        row_id = ids.reset_index(drop=True)
    return row_index, row_id, score


def _copy_postgres(conn: Connection, table_name: str, run_id: int, row_index: np.ndarray,
                   row_id: pd.Series | None, score: np.ndarray) -> None:
    """COPY in CSV written by Arrow (vectorised, in C++); runs inside the caller's transaction."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rows = len(score)
    table = pa.table({
        "run_id": pa.array(np.full(rows, run_id, dtype="int64")),
        "row_index": pa.array(row_index),
        # Arrow quotes every string and leaves a null unquoted and empty: NULL to COPY's CSV,
        # while an empty id ("") stays an empty string.
        "row_id": (pa.array(row_id, type=pa.string(), from_pandas=True) if row_id is not None
                   else pa.nulls(rows, type=pa.string())),
        "score": pa.array(score),
    })
    options = pacsv.WriteOptions(include_header=False)
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(
            f"COPY {table_name} (run_id, row_index, row_id, score) FROM STDIN "
            "WITH (FORMAT csv)") as copy:
        for start in range(0, rows, _COPY_CHUNK):
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table.slice(start, _COPY_CHUNK), sink, write_options=options)
            copy.write(memoryview(sink.getvalue()))


def _executemany(conn: Connection, table_name: str, run_id: int, row_index: np.ndarray,
                 row_id: pd.Series | None, score: np.ndarray) -> None:
    """sqlite3's executemany on the raw connection, inside the caller's transaction.

    Each statement inserts ``_SQLITE_ROWS_PER_STATEMENT`` rows: half the time of one row per
    statement, the per-row cost being the statement's step, not the binding.
    """
    cursor = conn.connection.driver_connection.cursor()
    try:
        for start in range(0, len(score), _SQLITE_CHUNK):
            stop = min(start + _SQLITE_CHUNK, len(score))
            rows = np.empty((stop - start, 4), dtype=object)  # Python values, as sqlite3 binds
            rows[:, 0] = run_id
            rows[:, 1] = row_index[start:stop].tolist()
            if row_id is not None:
                ids = row_id.iloc[start:stop]
                rows[:, 2] = ids.tolist()
                rows[ids.isna().to_numpy(), 2] = None  # NaN -> NULL
            rows[:, 3] = score[start:stop].tolist()
            per = _SQLITE_ROWS_PER_STATEMENT
            whole = len(rows) // per * per
            if whole:
                cursor.executemany(_sqlite_insert(table_name, per),
                                   rows[:whole].reshape(-1, 4 * per).tolist())
            if whole < len(rows):
                cursor.executemany(_sqlite_insert(table_name, 1), rows[whole:].tolist())
    finally:
        cursor.close()


# 800 parameters per statement: under the 999 of SQLite builds before 3.32.
_SQLITE_ROWS_PER_STATEMENT = 200
_SQLITE_CHUNK = 100_000  # rows converted to Python values at a time (bounds memory)


def _sqlite_insert(table_name: str, rows: int) -> str:
    return (f"INSERT INTO {table_name} (run_id, row_index, row_id, score) VALUES "
            + ", ".join(["(?, ?, ?, ?)"] * rows))


def scoring_runs(db: Database, model_name: str, batch: str | None = None,
                 role: str | None = None) -> list[ScoringRun]:
    """The model's logged runs, oldest batch first (newest batch last)."""
    runs = schema.scoring_runs
    query = select(*(runs.c[name] for name in _RUN_FIELDS)).where(
        runs.c.model_name == model_name)
    if batch is not None:
        query = query.where(runs.c.batch == batch)
    if role is not None:
        query = query.where(runs.c.role == role)
    query = query.order_by(runs.c.batch, runs.c.scored_at, runs.c.id)
    with db.read() as conn:
        return [ScoringRun(**row._asdict()) for row in conn.execute(query)]


@dataclass(frozen=True)
class ScoredBatch:
    """A batch's newest champion run, and the shadow run scored beside it (None if none)."""

    champion: ScoringRun
    shadow: ScoringRun | None


def scored_batches(runs: list[ScoringRun]) -> dict[str, ScoredBatch]:
    """Per batch (oldest first), the champion run that counts and its own shadow run.

    A batch scored again by a newer champion counts with its newest run. A shadow run is paired
    only if it was logged with that run (scoring logs both in one transaction, with one time
    stamp), never an older one: comparing a champion with a version it did not replace would
    aim a rollback at the wrong version.
    """
    out: dict[str, ScoredBatch] = {}
    for run in sorted((r for r in runs if r.role == CHAMPION), key=lambda r: r.scored_at):
        out[run.batch] = ScoredBatch(run, None)
    for run in sorted((r for r in runs if r.role == SHADOW), key=lambda r: r.scored_at):
        pair = out.get(run.batch)
        if pair is not None and run.scored_at >= pair.champion.scored_at:
            out[run.batch] = ScoredBatch(pair.champion, run)
    return dict(sorted(out.items()))


def read_predictions(db: Database, model_name: str, batch: str, role: str,
                     model_version: int) -> pd.DataFrame:
    """One run's predictions ordered by row_index: row_index (int64), row_id (text, missing as
    NA), score (float64). Empty when the run was never logged."""
    runs = schema.scoring_runs
    with db.read() as conn:
        run_id = conn.execute(select(runs.c.id).where(
            _run_key(model_name, batch, role, model_version))).scalar_one_or_none()
        if run_id is None:
            frame = pd.DataFrame({"row_index": pd.Series(dtype="int64"),
                                  "row_id": pd.Series(dtype=_string_dtype()),
                                  "score": pd.Series(dtype="float64")})
        else:
            frame = _fetch(conn, schema.PREDICTION_TABLES[role].name, run_id,
                           postgres=db.dialect == "postgresql")
    return frame


def _string_dtype() -> object:
    # pandas' own choice for text: "str" under pandas 3, object before.
    return pd.Series(["x"]).dtype


def _fetch(conn: Connection, table_name: str, run_id: int, *, postgres: bool) -> pd.DataFrame:
    """The raw driver's cursor: SQLAlchemy's per-row result objects would triple the time of a
    2M-row read. (COPY TO was no faster: psycopg hands it over one row at a time.)"""
    driver = conn.connection.driver_connection
    # psycopg's binary protocol skips parsing numbers from text.
    cursor = driver.cursor(binary=True) if postgres else driver.cursor()
    placeholder = "%s" if postgres else "?"
    try:
        cursor.execute(f"SELECT row_index, row_id, score FROM {table_name} "
                       f"WHERE run_id = {placeholder} ORDER BY row_index", (run_id,))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    frame = pd.DataFrame.from_records(rows, columns=["row_index", "row_id", "score"])
    return frame.astype({"row_index": "int64", "row_id": _string_dtype(), "score": "float64"})


def prediction_count(db: Database, model_name: str | None = None,
                     role: str | None = "champion") -> int:
    """Logged predictions, of one model or all, of one role or (None) all."""
    runs = schema.scoring_runs
    total = 0
    with db.read() as conn:
        for each, predictions in schema.PREDICTION_TABLES.items():
            if role is not None and each != role:
                continue
            query = select(func.count()).select_from(
                predictions.join(runs, runs.c.id == predictions.c.run_id))
            if model_name is not None:
                query = query.where(runs.c.model_name == model_name)
            total += int(conn.execute(query).scalar_one())
    return total
