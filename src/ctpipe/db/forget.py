"""Forgetting a model: a replay (backtest) starts from an empty log for its model name."""

from __future__ import annotations

from sqlalchemy import delete, select

from ctpipe.db import schema
from ctpipe.db.engine import Database


def forget_model(db: Database, model_name: str) -> None:
    """Delete every row recorded for ``model_name`` (runs, predictions, live metrics,
    monitoring decisions) in one transaction. Other models' rows are untouched."""
    runs = schema.scoring_runs
    with db.write() as conn:
        for predictions in schema.PREDICTION_TABLES.values():
            conn.execute(delete(predictions).where(predictions.c.run_id.in_(
                select(runs.c.id).where(runs.c.model_name == model_name))))
        conn.execute(delete(runs).where(runs.c.model_name == model_name))
        for table in (schema.live_metrics, schema.monitoring_decisions):
            conn.execute(delete(table).where(table.c.model_name == model_name))
