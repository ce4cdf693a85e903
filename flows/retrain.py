"""Retraining: the slot, the approval pause and the training progress bar around
ctpipe.steps.retrain. The daily cycle runs the same path inline (replays, `ctpipe cycle`);
deployed, the retraining deployment runs it when a drift event arrives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
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
from ctpipe.flows.trace_sink import artifact_key
from ctpipe.steps.retrain import run_retrain
from ctpipe.workspace import Workspace, open_workspace

SLOT_WAIT_SECONDS = 3 * 3600  # far longer than a training; longer means a lost lease


class RetrainingSlotBusy(RuntimeError):
    """The use case's retraining slot stayed taken for SLOT_WAIT_SECONDS."""


def retrain_limit_name(ws: Workspace) -> str:
    return f"ctpipe-retrain-{ws.name}" + ("-backtest" if ws.backtest else "")


def _ensure_limit(name: str) -> None:
    # Created on first use, so a fresh server needs no setup step; strict=True below then
    # guarantees the limit is really enforced rather than silently skipped.
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass


def retraining_slot(ws: Workspace) -> Callable[[], Any]:
    """At most one retraining per use case at a time, across processes and machines."""

    @contextmanager
    def slot() -> Iterator[None]:
        name = retrain_limit_name(ws)
        _ensure_limit(name)
        ctx = FlowRunContext.get()
        holder = ConcurrencyLeaseHolder(type="flow_run", id=ctx.flow_run.id) \
            if ctx and ctx.flow_run else None
        with ExitStack() as stack:
            try:
                stack.enter_context(concurrency(name, occupy=1, strict=True, holder=holder,
                                                timeout_seconds=SLOT_WAIT_SECONDS))
            except TimeoutError as exc:
                raise RetrainingSlotBusy(
                    f"global concurrency limit {name}: no free slot for {SLOT_WAIT_SECONDS} s;"
                    " another retraining holds it, or a lease was lost (see docs/RUNBOOK.md)"
                ) from exc
            yield
    return slot


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
