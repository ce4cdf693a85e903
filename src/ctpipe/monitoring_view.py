"""What monitoring knows per batch, read back from the database: one row per scored batch.

The rows behind `ctpipe monitor`'s table and JSON, the demo's per-day figures and the
monitoring report: the champion's scoring run, its label-free estimate, the live metric once
labels arrived, the shadow's metric on the same rows, and what monitoring decided.
"""

from __future__ import annotations

from ctpipe import db as production
from ctpipe.db import CHAMPION, INPUT_PREFIX, Database


def batch_rows(db: Database, model_name: str, limit: int | None = None) -> list[dict]:
    """Per scored batch, oldest first (the newest ``limit`` when given)."""
    scored = production.scored_batches(production.scoring_runs(db, model_name))
    metrics = {(m.batch, m.role, m.model_version): m
               for m in production.live_metrics(db, model_name)}
    decided = {}
    for d in production.decisions(db, model_name):
        decided[d.batch] = d
    rows = []
    # Files scored with --input are logged too, but only landed batches get labels to watch.
    landed = [b for b in scored if not b.startswith(INPUT_PREFIX)]
    for batch in landed[-limit if limit else None:]:
        run, shadow_run = scored[batch].champion, scored[batch].shadow
        live = metrics.get((batch, CHAMPION, run.model_version))
        shadow = None if shadow_run is None else \
            metrics.get((batch, shadow_run.role, shadow_run.model_version))
        decision = decided.get(batch)
        rows.append({
            "batch": batch,
            "version": run.model_version,
            "rows_scored": run.rows,
            "rows_labelled": None if live is None else live.rows_labelled,
            "metric": None if live is None else live.metric,
            "live_metric": None if live is None else live.value,
            "estimated_metric": run.estimated_metric,
            "realized_precision": None if live is None else live.realized_precision,
            "estimated_precision": run.estimated_precision,
            "realized_recall": None if live is None else live.realized_recall,
            "estimated_recall": run.estimated_recall,
            "prediction_mean": None if live is None else live.prediction_mean,
            "shadow_version": None if shadow_run is None else shadow_run.model_version,
            "shadow_metric": None if shadow is None else shadow.value,
            "decision": None if decision is None else decision.kind,
            # The champion the decision judged: after a promotion, not this batch's model.
            "decision_version": None if decision is None else decision.champion_version,
            "reason": None if decision is None else decision.reason,
        })
    return rows


def decision_text(row: dict) -> str:
    """A row's decision, naming the champion it judged when that is not the batch's model
    (the day after a promotion or rollback): ``healthy (on v3)``."""
    if not row["decision"]:
        return ""
    judged = row.get("decision_version")
    return row["decision"] if judged in (None, row["version"]) else \
        f"{row['decision']} (on v{judged})"


def slice_rows(db: Database, model_name: str) -> list[dict]:
    """The champion's live metric per slice and batch (for the report)."""
    scored = production.scored_batches(production.scoring_runs(db, model_name))
    return [{"batch": m.batch, "slice": m.slice, "version": m.model_version, "value": m.value,
             "rows_labelled": m.rows_labelled}
            for m in production.live_metrics(db, model_name, slice_=None)
            if m.slice and m.role == CHAMPION and m.batch in scored
            and scored[m.batch].champion.model_version == m.model_version]
