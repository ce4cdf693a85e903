"""Production log: scoring runs, predictions and shadow predictions, live metrics, monitoring
decisions.

Revision ID: 0001
Revises:
Create Date: 2026-03-01

Written out rather than generated from ``ctpipe.db.schema`` so that the revision stays what it
was when later revisions change the schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scoring_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("use_case", sa.String(200), nullable=False),
        sa.Column("batch", sa.String(300), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("output", sa.Text, nullable=False, server_default=""),
        sa.Column("estimated_metric", sa.Float, nullable=True),
        sa.Column("estimated_precision", sa.Float, nullable=True),
        sa.Column("estimated_recall", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scoring_runs"),
        sa.UniqueConstraint("model_name", "batch", "role", "model_version",
                            name="uq_scoring_runs_model_name_batch_role_model_version"),
    )
    for table in ("predictions", "shadow_predictions"):
        op.create_table(
            table,
            sa.Column("run_id", sa.Integer, nullable=False),
            sa.Column("row_index", sa.BigInteger, nullable=False),
            sa.Column("row_id", sa.Text, nullable=True),
            sa.Column("score", sa.Float, nullable=False),
            sa.PrimaryKeyConstraint("run_id", "row_index", name=f"pk_{table}"),
            sqlite_with_rowid=False,
        )
    op.create_table(
        "live_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("use_case", sa.String(200), nullable=False),
        sa.Column("batch", sa.String(300), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("slice", sa.String(300), nullable=False, server_default=""),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("rows_labelled", sa.Integer, nullable=False),
        sa.Column("rows_scored", sa.Integer, nullable=False),
        sa.Column("realized_precision", sa.Float, nullable=True),
        sa.Column("realized_recall", sa.Float, nullable=True),
        sa.Column("prediction_mean", sa.Float, nullable=True),
        sa.Column("prediction_p50", sa.Float, nullable=True),
        sa.Column("prediction_p90", sa.Float, nullable=True),
        sa.Column("prediction_p99", sa.Float, nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_live_metrics"),
        sa.UniqueConstraint("model_name", "batch", "role", "model_version", "slice",
                            name="uq_live_metrics_model_name_batch_role_model_version_slice"),
    )
    op.create_table(
        "monitoring_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("use_case", sa.String(200), nullable=False),
        sa.Column("batch", sa.String(300), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("champion_version", sa.Integer, nullable=False),
        sa.Column("target_version", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_monitoring_decisions"),
    )
    op.create_index("ix_monitoring_decisions_model_name", "monitoring_decisions",
                    ["model_name"])


def downgrade() -> None:
    op.drop_index("ix_monitoring_decisions_model_name", table_name="monitoring_decisions")
    op.drop_table("monitoring_decisions")
    op.drop_table("live_metrics")
    op.drop_table("shadow_predictions")
    op.drop_table("predictions")
    op.drop_table("scoring_runs")
