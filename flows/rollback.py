"""Rollback: `champion` back to the previous (or a named) version, in one step, with a trace."""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.flows.common import (
    explain_outages,
    final_state,
    notify_failure,
    prefect_sink,
    tag_flow_run,
)
from ctpipe.rollback import apply_rollback, plan_rollback
from ctpipe.workspace import open_workspace


@flow(name="ctpipe-rollback", flow_run_name="{use_case}-rollback", log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def rollback_flow(use_case: str, reason: str, operator: str, to_version: int | None = None,
                  force: bool = False) -> State:
    """Move `champion` back to the previously promoted version, or to ``to_version``."""
    ws = open_workspace(use_case)
    tag_flow_run(ws)
    sink = prefect_sink(ws)
    with explain_outages():
        summary = apply_rollback(plan_rollback(ws.model_name, to_version, force=force), reason,
                                 operator=operator, publish=sink.publish)
    return final_state(Outcome(
        CycleStatus.ROLLED_BACK, f"{ws.model_name}: champion v{summary['from_version']} -> "
        f"v{summary['to_version']}", tuple(sink.published), result=summary))
