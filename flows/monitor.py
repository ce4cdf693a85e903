"""Live monitoring: measure logged predictions as labels arrive; roll back on confirmed decay."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.states import State

from ctpipe import settings
from ctpipe.db import open_database
from ctpipe.decisions.outcome import Outcome
from ctpipe.decisions.rollback import AUTOMATIC_ROLLBACK_OPERATOR
from ctpipe.flows.common import (
    batch_day,
    explain_outages,
    final_state,
    flow_run_name,
    notify_failure,
    runtime,
    tag_flow_run,
)
from ctpipe.flows.trace_sink import prefect_sink
from ctpipe.rollback import run_rollback
from ctpipe.steps.monitor import run_monitor
from ctpipe.workspace import Workspace, open_workspace


def automatic_rollback(ws: Workspace):  # noqa: ANN201 - a RollBack port
    """The rollback port: the same planned, locked, audited path as `ctpipe rollback`."""
    def roll_back(reason: str, target: int, judged: int) -> Outcome:
        with explain_outages():
            return run_rollback(ws.model_name, reason, operator=AUTOMATIC_ROLLBACK_OPERATOR,
                                to_version=target, publish=prefect_sink(ws).publish,
                                journal=ws.store, expected_current=judged)
    return roll_back


@flow(name="ctpipe-monitor", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def monitor_flow(use_case: str = "demand", batch_date: str | None = None,
                 backtest: bool = False) -> State:
    """Measure every batch whose labels arrived by ``batch_date`` (default: the newest)."""
    settings.configure_environment()
    ws = open_workspace(use_case, backtest=backtest)
    tag_flow_run(ws)
    as_of = batch_day(ws, batch_date)
    outcome = run_monitor(runtime(ws), open_database(), as_of,
                          roll_back=automatic_rollback(ws))
    publish_report(ws)
    return final_state(outcome)


def publish_report(ws: Workspace) -> Path | None:
    """Write the monitoring report and link it from the flow run; its path, None if not written.

    The report is a view of what monitoring recorded: failing to draw it (a full disk, a
    matplotlib problem) is logged, never a failed monitoring run or a missed rollback.
    """
    from prefect import get_run_logger
    from prefect.artifacts import create_link_artifact

    from ctpipe.monitoring_report import write_monitoring_report

    try:
        page, _ = write_monitoring_report(ws, open_database())
        # Artifact keys allow lowercase letters, digits and dashes only.
        key = f"{ws.name}{'-backtest' if ws.backtest else ''}-monitoring-report"
        create_link_artifact(key=key.replace("_", "-"), link=page.as_uri(),
                             link_text=f"{ws.name} monitoring report",
                             description=f"Monitoring report of {ws.name} ({ws.model_name}): "
                                         "live metric, estimate, drift, slices, rollbacks")
    except Exception as exc:  # whatever it was: see the docstring
        get_run_logger().warning("monitoring report of %s not written: %s", ws.name, exc)
        return None
    return page
