"""Live metrics: how a model did on a batch once its labels arrived, whole and per slice.

One row per model, batch, role, version and slice; saving a batch's figures again replaces its
rows (monitoring measures a batch once, when its labels file has arrived).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, insert, select

from ctpipe.db import schema
from ctpipe.db.engine import Database


@dataclass(frozen=True)
class LiveMetric:
    model_name: str
    use_case: str
    batch: str
    role: str
    model_version: int
    slice: str  # '' = the whole batch, else 'column=value'
    metric: str  # the metric's name (e.g. pr_auc)
    value: float | None  # None: not computable yet (no labels, one class only)
    rows_labelled: int
    rows_scored: int
    # Binary models, at the alert budget.
    realized_precision: float | None = None
    realized_recall: float | None = None
    # The scores' distribution over the batch (or slice).
    prediction_mean: float | None = None
    prediction_p50: float | None = None
    prediction_p90: float | None = None
    prediction_p99: float | None = None
    computed_at: datetime = field(default_factory=schema.utc_now)


_FIELDS = tuple(LiveMetric.__dataclass_fields__)
_KEY = ("model_name", "batch", "role", "model_version", "slice")


def save_live_metrics(db: Database, rows: list[LiveMetric]) -> None:
    """Store ``rows``, each replacing the row with its model, batch, role, version and slice;
    one transaction."""
    if not rows:
        return
    table = schema.live_metrics
    # An executemany delete: one statement, one parameter set per row's key.
    key = and_(*(table.c[name] == bindparam(f"k_{name}") for name in _KEY))
    values = [{name: getattr(row, name) for name in _FIELDS} for row in rows]
    keys = [{f"k_{name}": v[name] for name in _KEY} for v in values]
    with db.write() as conn:
        conn.execute(delete(table).where(key), keys)
        # Two rows with one key in the same call: the last wins, as it would call by call.
        unique = list({tuple(k.values()): v for k, v in zip(keys, values, strict=True)}.values())
        conn.execute(insert(table), unique)


def live_metrics(db: Database, model_name: str, *, slice_: str | None = "") -> list[LiveMetric]:
    """The model's live metrics, ordered by batch; ``slice_`` '' (the default) is the whole
    batch, a 'column=value' one slice, None every slice."""
    table = schema.live_metrics
    query = select(*(table.c[name] for name in _FIELDS)).where(table.c.model_name == model_name)
    if slice_ is not None:
        query = query.where(table.c.slice == slice_)
    query = query.order_by(table.c.batch, table.c.role, table.c.model_version, table.c.slice,
                           table.c.id)
    with db.read() as conn:
        return [LiveMetric(**row._asdict()) for row in conn.execute(query)]
