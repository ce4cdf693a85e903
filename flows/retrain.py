"""Retraining: the slot, the approval pause and the training progress bar around
ctpipe.steps.retrain. The daily cycle runs the same path inline (replays, `ctpipe cycle`);
deployed, the retraining deployment runs it when a drift event arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import State

from ctpipe import settings
from ctpipe.flows.approval import approval_route, ask_approval
from ctpipe.flows.common import (
    batch_day,
    final_state,
    flow_run_name,
    notify_failure,
    runtime,
    tag_flow_run,
)
from ctpipe.flows.slot import retraining_slot
from ctpipe.flows.trace_sink import artifact_key
from ctpipe.steps.retrain import run_retrain
from ctpipe.workspace import Workspace, open_workspace


def training_progress(ws: Workspace) -> Callable[[float], None]:
    bar: list[Any] = []

    def report(percent: float) -> None:
        try:
            if not bar:
                bar.append(create_progress_artifact(
                    0.0, key=artifact_key(ws, "training-progress"),
                    description="Training the challenger"))
            update_progress_artifact(bar[0], percent)
        except Exception as exc:  # noqa: BLE001 - a progress bar must never stop a training
            get_run_logger().warning("training progress not updated: %s", exc)
    return report


def orchestrator_ports(ws: Workspace) -> dict[str, Any]:
    """The ports only an orchestrator has: the retraining slot, the pause, the progress bar."""
    return {"slot": retraining_slot(ws), "ask_approval": ask_approval,
            "approval_route": approval_route,
            "progress": training_progress(ws)}


@flow(name="ctpipe-retrain", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def retrain_flow(use_case: str = "demand", batch_date: str | None = None,
                 reason: str | None = "requested", force: bool = False) -> State:
    """Retrain on the window as of one batch, gate, ask approval where required, promote."""
    settings.configure_environment()  # a deployed run's process: MLflow's limits, logging
    ws = open_workspace(use_case)
    day = batch_day(ws, batch_date)
    tag_flow_run(ws)
    outcome = run_retrain(runtime(ws, **orchestrator_ports(ws)), day, reason or "requested",
                          force=force)
    return final_state(outcome)
