"""Rollback: `champion` back to the previous (or a named) version, in one step, with a trace."""

from __future__ import annotations

from ctpipe import settings

settings.configure_environment()

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from ctpipe import notify, rollback
from ctpipe.flows.common import (
    artifact_key,
    emit,
    explain_outages,
    mlflow_version_link,
    notify_failure,
    tag_flow_run,
)
from ctpipe.workspace import Workspace, open_workspace


def perform_rollback(ws: Workspace, reason: str, *, to_version: int | None = None,
                     force: bool = False, operator: str, send_event: bool = True) -> dict:
    """Plan (refusing what must not serve), move the alias, then tell everyone.

    Also called by `ctpipe rollback` directly, so an operator can roll back while the Prefect
    server is down: the registry move does not depend on it, only the event does
    (``send_event=False`` when no Prefect server is configured).
    """
    plan = rollback.plan_rollback(ws.model_name, to_version, force=force)
    summary = rollback.apply_rollback(plan, reason, operator=operator, audit_path=ws.audit_path)
    if send_event:
        emit(ws, "ctpipe.model.rolled_back", summary)
    notify.notify("ctpipe.model.rolled_back", ws.name,
                  f"{ws.model_name} rolled back: champion v{summary['from_version']} → "
                  f"v{summary['to_version']} by {operator}: {reason}",
                  {**summary, "model_link": mlflow_version_link(ws.model_name,
                                                                summary["to_version"])})
    return summary


@flow(name="ctpipe-rollback", flow_run_name="{use_case}-rollback", log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def rollback_flow(use_case: str, reason: str, operator: str, to_version: int | None = None,
                  force: bool = False) -> dict:
    """Move `champion` back to the previously promoted version, or to ``to_version``."""
    ws = open_workspace(use_case)
    tag_flow_run(ws)
    with explain_outages():
        summary = perform_rollback(ws, reason, to_version=to_version, force=force,
                                   operator=operator)
    forced = " (forced: this version never passed the gate)" if summary.get("forced") else ""
    create_markdown_artifact(
        f"# Rolled back {ws.model_name}\n\n- champion: v{summary['from_version']} → "
        f"**v{summary['to_version']}**{forced}\n- by: {operator}\n- reason: {reason}\n"
        f"- model version: [{ws.model_name} v{summary['to_version']}]"
        f"({mlflow_version_link(ws.model_name, summary['to_version'])})",
        key=artifact_key(ws, "rollback"), description=f"Rolled back to v{summary['to_version']}")
    print(f"{ws.model_name}: champion v{summary['from_version']} -> v{summary['to_version']}")
    return summary
