"""Retraining: the slot, the approval pause and the training progress bar around
ctpipe.steps.retrain. The daily cycle runs the same path inline (replays, `ctpipe cycle`);
deployed, the retraining deployment runs it when a drift event arrives."""

from __future__ import annotations

import os
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
from prefect.exceptions import FlowPauseTimeout, ObjectAlreadyExists, ObjectNotFound
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import State

from ctpipe.decisions.retraining import ApprovalAnswer
from ctpipe.flows.common import (
    _artifact_key,
    batch_day,
    final_state,
    flow_run_name,
    notify_failure,
    prefect_sink,
    prefect_ui_link,
    runtime,
    tag_flow_run,
)
from ctpipe.links import mlflow_version_link
from ctpipe.steps.ports import ApprovalRequest
from ctpipe.steps.retrain import run_retrain
from ctpipe.trace import Artifact, Decision
from ctpipe.workspace import Workspace, open_workspace

SLOT_WAIT_SECONDS = 3 * 3600  # far longer than a training; longer means a lost lease


class ApprovalInput(RunInput, ApprovalAnswer):
    """The resume form an approver fills in the Prefect UI."""


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


def approval_poll_seconds() -> int:
    # How often a paused run asks the API whether it was resumed; tests shorten it.
    return max(1, int(os.environ.get("CTPIPE_APPROVAL_POLL_SECONDS", "10")))


def ask_approval(ws: Workspace) -> Callable[[ApprovalRequest], ApprovalAnswer | None]:
    def ask(req: ApprovalRequest) -> ApprovalAnswer | None:
        """Pause the flow run with a typed form; None when nobody answered in time."""
        run_id = FlowRunContext.get().flow_run.id
        link = mlflow_version_link(req.model_name, req.version)
        prefect_sink(ws).publish(Decision(
            kind="approval.requested", use_case=req.use_case,
            subject=f"{req.model_name} v{req.version}",
            reason=f"jurisdiction {req.jurisdiction} requires a human decision",
            details={"version": req.version, "flow_run_id": str(run_id)},
            artifact=Artifact("approval", f"Approval needed for v{req.version}", (
                f"# Approval needed: {req.model_name} v{req.version}\n\n"
                f"Jurisdiction {req.jurisdiction} requires a human decision before "
                f"v{req.version} replaces v{req.champion_version or '-'} as champion.\n\n"
                f"- Resume this run in the UI and fill in the form, or from a shell:\n"
                f"  `ctpipe approve {run_id} --approver NAME --reason TEXT` /"
                f" `ctpipe reject {run_id} --approver NAME --reason TEXT`\n"
                f"- No decision within {req.timeout_seconds} s rejects the promotion.\n"
                f"- Model version: [{req.model_name} v{req.version}]({link})")),
            notify=f"{req.model_name} v{req.version} waits for approval (flow run {run_id})",
            notify_details={"model": req.model_name, "version": req.version,
                            "flow_run_id": str(run_id), "link": prefect_ui_link(run_id),
                            "timeout_seconds": req.timeout_seconds}))
        # WARNING, so a shell running `ctpipe cycle` shows it too (the console shows no INFO).
        get_run_logger().warning("v%s waits for approval: ctpipe approve|reject %s --approver "
                                 "NAME --reason TEXT (timeout %s s)", req.version, run_id,
                                 req.timeout_seconds)
        try:
            answer = pause_flow_run(wait_for_input=ApprovalInput, timeout=req.timeout_seconds,
                                    poll_interval=min(approval_poll_seconds(),
                                                      req.timeout_seconds),
                                    key=f"approve-v{req.version}")
        except FlowPauseTimeout:
            return None
        return ApprovalAnswer.model_validate(answer.model_dump(
            include={"decision", "approver", "reason"}))
    return ask


def training_progress(ws: Workspace) -> Callable[[float], None]:
    bar: list[Any] = []

    def report(percent: float) -> None:
        try:
            if not bar:
                bar.append(create_progress_artifact(
                    0.0, key=_artifact_key(ws, "training-progress"),
                    description="Training the challenger"))
            update_progress_artifact(bar[0], percent)
        except Exception as exc:  # noqa: BLE001 - a progress bar must never stop a training
            get_run_logger().warning("training progress not updated: %s", exc)
    return report


def approval_ports(ws: Workspace) -> dict[str, Any]:
    """The ports only an orchestrator has: the retraining slot, the pause, the progress bar."""
    return {"slot": retraining_slot(ws), "ask_approval": ask_approval(ws),
            "progress": training_progress(ws)}


@flow(name="ctpipe-retrain", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def retrain_flow(use_case: str = "demand", batch_date: str | None = None,
                 reason: str | None = "requested", force: bool = False) -> State:
    """Retrain on the window as of one batch, gate, ask approval where required, promote."""
    ws = open_workspace(use_case)
    day = batch_day(ws, batch_date)
    tag_flow_run(ws)
    outcome = run_retrain(runtime(ws, **approval_ports(ws)), day, reason or "requested",
                          force=force)
    return final_state(outcome)
