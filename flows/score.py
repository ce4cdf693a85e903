"""Batch scoring: the champion scores a validated batch; each prediction names its version."""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from ctpipe import settings
from ctpipe.flows.common import (
    batch_day,
    final_state,
    flow_run_name,
    notify_failure,
    runtime,
    tag_flow_run,
)
from ctpipe.steps.score import run_score
from ctpipe.workspace import open_workspace


@flow(name="ctpipe-score", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def score_flow(use_case: str = "demand", batch_date: str | None = None) -> State:
    """Score one batch of the landing zone with the current champion."""
    settings.configure_environment()  # a deployed run's process: MLflow's limits, logging
    ws = open_workspace(use_case)
    day = batch_day(ws, batch_date)
    tag_flow_run(ws)
    return final_state(run_score(runtime(ws), day, explicit_date=bool(batch_date)))
