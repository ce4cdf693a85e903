"""Monitoring decisions: what monitoring decided about a batch (hold, roll back, …) and why."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from ctpipe.db import schema
from ctpipe.db.engine import Database


@dataclass(frozen=True)
class MonitoringDecision:
    model_name: str
    use_case: str
    batch: str  # the last labelled batch the decision judged
    kind: str  # healthy, watching (bad, not yet confirmed), degraded or rollback
    champion_version: int
    target_version: int | None = None  # a rollback's target
    reason: str = ""
    # Stored as JSON text; read back as a dict. A str is taken as JSON already.
    details: dict[str, Any] = field(default_factory=dict)
    decided_at: datetime = field(default_factory=schema.utc_now, kw_only=True)


_FIELDS = tuple(MonitoringDecision.__dataclass_fields__)


def record_decision(db: Database, d: MonitoringDecision) -> None:
    values = {name: getattr(d, name) for name in _FIELDS}
    details = d.details
    values["details"] = (json.dumps(json.loads(details)) if isinstance(details, str)
                         else json.dumps(details, sort_keys=True, default=str))
    with db.write() as conn:
        conn.execute(insert(schema.monitoring_decisions).values(values))


def decisions(db: Database, model_name: str) -> list[MonitoringDecision]:
    """The model's monitoring decisions, oldest first."""
    table = schema.monitoring_decisions
    query = (select(*(table.c[name] for name in _FIELDS))
             .where(table.c.model_name == model_name)
             .order_by(table.c.decided_at, table.c.id))
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [MonitoringDecision(**(row._asdict() | {"details": json.loads(row.details or "{}")}))
            for row in rows]
