"""Rollback: `champion` back to the previous (or a named) version, in one step, with a trace."""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from ctpipe import settings
from ctpipe.flows.common import explain_outages, final_state, notify_failure, tag_flow_run
from ctpipe.flows.trace_sink import prefect_sink
from ctpipe.rollback import run_rollback
from ctpipe.workspace import open_workspace


@flow(name="ctpipe-rollback", flow_run_name="{use_case}-rollback", log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def rollback_flow(use_case: str, reason: str, operator: str, to_version: int | None = None,
                  force: bool = False) -> State:
    """Move `champion` back to the previously promoted version, or to ``to_version``."""
    settings.configure_environment()
    ws = open_workspace(use_case)
    tag_flow_run(ws)
    with explain_outages():
        outcome = run_rollback(ws.model_name, reason, operator=operator, to_version=to_version,
                               force=force, publish=prefect_sink(ws).publish,
                               journal=ws.store)
    return final_state(outcome)
