"""The approval pause: a typed form in the Prefect UI (or `ctpipe approve|reject`), asked
outside the retraining slot because a human may take a day."""

from __future__ import annotations

import os
from collections.abc import Callable

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from ctpipe.decisions.retraining import ApprovalAnswer
from ctpipe.flows.common import prefect_ui_link
from ctpipe.flows.trace_sink import prefect_sink
from ctpipe.links import mlflow_version_link
from ctpipe.steps.ports import ApprovalRequest
from ctpipe.trace import Artifact, Decision
from ctpipe.workspace import Workspace


class ApprovalInput(RunInput, ApprovalAnswer):
    """The resume form an approver fills in the Prefect UI."""


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
