"""The approval pause: a typed form in the Prefect UI (or `ctpipe approve|reject`), asked
outside the retraining slot because a human may take a day."""

from __future__ import annotations

import os

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from ctpipe.decisions.retraining import ApprovalAnswer
from ctpipe.flows.common import prefect_ui_link
from ctpipe.steps.ports import ApprovalRequest, ApprovalRoute


class ApprovalInput(RunInput, ApprovalAnswer):
    """The resume form an approver fills in the Prefect UI."""


def approval_poll_seconds() -> int:
    # How often a paused run asks the API whether it was resumed; tests shorten it.
    return max(1, int(os.environ.get("CTPIPE_APPROVAL_POLL_SECONDS", "10")))


def approval_route() -> ApprovalRoute:
    """Where the approver answers: this flow run (its id for the CLI, its page in the UI)."""
    run_id = FlowRunContext.get().flow_run.id
    return ApprovalRoute(str(run_id), prefect_ui_link(run_id))


def ask_approval(req: ApprovalRequest) -> ApprovalAnswer | None:
    """Pause the flow run with a typed form; None when nobody answered in time."""
    run_id = FlowRunContext.get().flow_run.id
    # WARNING, so a shell running `ctpipe cycle` shows it too (the console shows no INFO).
    get_run_logger().warning("v%s waits for approval: ctpipe approve|reject %s --approver "
                             "NAME --reason TEXT (timeout %s s)", req.version, run_id,
                             req.timeout_seconds)
    try:
        answer = pause_flow_run(wait_for_input=ApprovalInput, timeout=req.timeout_seconds,
                                poll_interval=min(approval_poll_seconds(), req.timeout_seconds),
                                key=f"approve-v{req.version}")
    except FlowPauseTimeout:
        return None
    return ApprovalAnswer.model_validate(answer.model_dump(
        include={"decision", "approver", "reason"}))
