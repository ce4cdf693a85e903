"""Batch scoring: the champion scores a validated batch; each prediction names its version."""

from __future__ import annotations

import datetime as dt

from ctpipe import settings

settings.configure_environment()

import pandas as pd
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from ctpipe import audit, cycle, landing, registry, scoring
from ctpipe.flows.common import (
    TASK,
    artifact_key,
    batch_day,
    explain_outages,
    flow_run_name,
    mlflow_version_link,
    notify_failure,
    tag_flow_run,
)
from ctpipe.flows.retrain import load_champion
from ctpipe.validation import validate_frame
from ctpipe.workspace import Workspace, open_workspace


class NothingToScore(RuntimeError):
    """No champion yet, or the batch failed validation: no prediction is written."""


@task(name="score-batch", **TASK)
def score_batch(ws: Workspace, day: dt.date, batch: pd.DataFrame,
                champion: registry.LoadedVersion) -> scoring.ScoredBatch:
    return scoring.score_batch(ws, day, batch, champion)


@flow(name="ctpipe-score", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def score_flow(use_case: str = "demand", batch_date: str | None = None) -> dict:
    """Score one batch of the landing zone with the current champion."""
    ws = open_workspace(use_case)
    day = batch_day(ws, batch_date)
    tag_flow_run(ws)
    if not batch_date and scoring.predictions_path(ws, day).exists():
        # A scheduled run passes no date: never rewrite predictions already handed out.
        raise NothingToScore(f"{scoring.predictions_path(ws, day)}: batch {day} already scored;"
                             " no new batch has landed (pass batch_date to score it again)")
    batch = cycle.load_batch(ws, day)
    # Scoring may run before the day's cycle: bad input must never reach the model.
    result = validate_frame(batch, ws.config, batch_date=day)
    if not result.passed:
        raise NothingToScore(result.message(str(landing.batch_path(ws.landing, day))))
    with explain_outages():
        champion = load_champion(ws)
    if champion is None:
        raise NothingToScore(f"{ws.model_name}: no champion yet; run a cycle first")
    scored = score_batch(ws, day, batch, champion)
    audit.record("batch.scored", ws.name, f"{scored.rows} rows scored by v{scored.version}",
                 path=ws.audit_path, details={"batch_date": day.isoformat(),
                                              "model": scored.model, "version": scored.version,
                                              "predictions": str(scored.path)})
    create_markdown_artifact(
        f"# Scored {ws.name} {day}\n\n- rows: {scored.rows}\n- model: [{scored.model} "
        f"v{scored.version}]({mlflow_version_link(scored.model, scored.version)})\n"
        f"- mean prediction: {scored.mean_prediction:.4f}\n- predictions: `{scored.path}`",
        key=artifact_key(ws, "scoring"), description=f"Scored by v{scored.version}")
    return {"use_case": ws.name, "batch_date": day.isoformat(), "rows": scored.rows,
            "model": scored.model, "version": scored.version, "path": str(scored.path)}
