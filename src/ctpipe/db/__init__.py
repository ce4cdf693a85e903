"""ctpipe's own database: what production scored (the prediction log), how it did (live
metrics) and what monitoring decided. SQLAlchemy 2 Core on SQLite or PostgreSQL, migrated by
Alembic on open.

Everything takes the ``Database`` that ``open_database`` returns as its first argument.
"""

from ctpipe.db.decision_log import MonitoringDecision, decisions, record_decision
from ctpipe.db.engine import Database, DatabaseUnavailable, dispose_databases, open_database
from ctpipe.db.forget import forget_model
from ctpipe.db.metric_log import LiveMetric, live_metrics, save_live_metrics
from ctpipe.db.prediction_log import (
    CHAMPION,
    INPUT_PREFIX,
    ROLES,
    SHADOW,
    ScoredBatch,
    ScoringRun,
    log_predictions,
    prediction_count,
    read_predictions,
    scored_batches,
    scoring_runs,
)

__all__ = [
    "CHAMPION",
    "INPUT_PREFIX",
    "ROLES",
    "SHADOW",
    "ScoredBatch",
    "scored_batches",
    "Database",
    "DatabaseUnavailable",
    "LiveMetric",
    "MonitoringDecision",
    "ScoringRun",
    "decisions",
    "dispose_databases",
    "forget_model",
    "live_metrics",
    "log_predictions",
    "open_database",
    "prediction_count",
    "read_predictions",
    "record_decision",
    "save_live_metrics",
    "scoring_runs",
]
