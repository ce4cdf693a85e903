"""ctpipe's tables (SQLAlchemy Core): what production scored, how it did, what monitoring decided.

This is the shape the code reads and writes; ``migrations/versions`` creates it. The two must
agree (tests/test_database.py compares a migrated database with this metadata).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Names for constraints and indexes, so a later migration can drop or alter them by name on
# every backend (SQLite's batch mode needs them).
metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})



def utc_now() -> datetime:
    """The default time stamp of a row (aware, UTC)."""
    return datetime.now(UTC)

class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every backend.

    SQLite has no time zone type: it would hand back naive values (and store an aware one's
    local wall time). Everything is converted to UTC on the way in and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # A naive value is taken as UTC already (ctpipe never writes local times).
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Version(TypeDecorator[int]):
    """A registry version number (MLflow's are integers); "7" is taken as 7 on the way in."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: int | str | None, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


_NAME = 200  # model names, use cases, metric names: short identifiers
_BATCH = 300  # an ISO date or "input:<file name>@<sha256 start>"

scoring_runs = Table(
    "scoring_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(_NAME), nullable=False),
    Column("use_case", String(_NAME), nullable=False),
    Column("batch", String(_BATCH), nullable=False),
    Column("role", String(20), nullable=False),  # 'champion' | 'shadow'
    Column("model_version", Version(), nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("scored_at", UTCDateTime(), nullable=False),
    Column("output", Text, nullable=False, server_default=""),
    # The label-free estimate (binary models): from the scores alone, before labels arrive.
    Column("estimated_metric", Float, nullable=True),
    Column("estimated_precision", Float, nullable=True),
    Column("estimated_recall", Float, nullable=True),
    # Re-scoring a batch replaces its run: one run per model, batch, role and version.
    UniqueConstraint("model_name", "batch", "role", "model_version"),
)


def _prediction_table(name: str) -> Table:
    return Table(
        name, metadata,
        # No foreign key, on purpose: PostgreSQL checks one with a trigger per inserted row,
        # which made COPY of 2M rows 4-5 times slower (measured: 4 s -> 18-26 s). Only this
        # package writes the table, and it deletes a run's predictions with the run in one
        # transaction (prediction_log.log_predictions, forget.forget_model).
        Column("run_id", Integer, nullable=False),
        Column("row_index", BigInteger, nullable=False),  # position in the batch
        Column("row_id", Text, nullable=True),  # the id column's value as text (None: no ids)
        Column("score", Float, nullable=False),
        # One row per prediction: a position appears once per run. The key's first column is
        # the run_id index every read and the cascade delete use.
        PrimaryKeyConstraint("run_id", "row_index"),
        # SQLite: the table is that key's b-tree (no rowid table beside it): one tree to write
        # per row instead of two, and a run's rows read in order.
        sqlite_with_rowid=False,
    )


# One row per logged prediction of a champion: `SELECT count(*) FROM predictions` is what was
# served. The previous champion's shadow scores of the same rows go to their own table.
predictions = _prediction_table("predictions")
shadow_predictions = _prediction_table("shadow_predictions")
PREDICTION_TABLES = {"champion": predictions, "shadow": shadow_predictions}


live_metrics = Table(
    "live_metrics", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(_NAME), nullable=False),
    Column("use_case", String(_NAME), nullable=False),
    Column("batch", String(_BATCH), nullable=False),
    Column("role", String(20), nullable=False),
    Column("model_version", Version(), nullable=False),
    Column("slice", String(_BATCH), nullable=False, server_default=""),  # '' = whole batch
    Column("metric", String(_NAME), nullable=False),
    Column("value", Float, nullable=True),
    Column("rows_labelled", Integer, nullable=False),
    Column("rows_scored", Integer, nullable=False),
    Column("realized_precision", Float, nullable=True),
    Column("realized_recall", Float, nullable=True),
    Column("prediction_mean", Float, nullable=True),
    Column("prediction_p50", Float, nullable=True),
    Column("prediction_p90", Float, nullable=True),
    Column("prediction_p99", Float, nullable=True),
    Column("computed_at", UTCDateTime(), nullable=False),
    UniqueConstraint("model_name", "batch", "role", "model_version", "slice"),
)

monitoring_decisions = Table(
    "monitoring_decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(_NAME), nullable=False, index=True),
    Column("use_case", String(_NAME), nullable=False),
    Column("batch", String(_BATCH), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=False),
    Column("kind", String(_NAME), nullable=False),
    Column("champion_version", Version(), nullable=False),
    Column("target_version", Version(), nullable=True),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False, server_default="{}"),  # JSON
)
