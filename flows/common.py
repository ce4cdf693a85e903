"""Prefect wiring shared by the flows: steps as named tasks, the trace sink, the MLflow run of
a flow run, and final states named by the outcome."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
from prefect.states import Completed, Failed, State

from ctpipe import landing, notify, retry, settings
from ctpipe.config import ConfigError, load_config
from ctpipe.decisions.outcome import Outcome
from ctpipe.flows.tasks import REMOTE_TASK, run_step
from ctpipe.flows.trace_sink import prefect_sink, run_logger
from ctpipe.flows.tracking import mlflow_run
from ctpipe.steps.ports import Runtime
from ctpipe.workspace import Workspace, open_workspace


class ServiceUnavailable(RuntimeError):
    """MLflow or the Prefect API stayed unreachable through every retry."""


def _from_mlflow(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__module__.split(".")[0] in ("mlflow", "requests", "urllib3"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def explain_outages() -> Iterator[None]:
    """Turn an outage that outlived the retries into one line naming the service and cause."""
    try:
        yield
    except Exception as exc:
        if not retry.is_transient(exc):
            raise
        what = retry.mlflow_label(settings.tracking_uri()) if _from_mlflow(exc) \
            else retry.prefect_label(PREFECT_API_URL.value())
        raise ServiceUnavailable(retry.clear_failure(exc, what, REMOTE_TASK["retries"] + 1)) \
            from exc


def batch_day(ws: Workspace, batch_date: str | None) -> dt.date:
    """The batch a run works on: the date given, or the newest batch in the landing zone."""
    if batch_date:
        try:
            return dt.date.fromisoformat(batch_date)
        except ValueError as exc:
            raise ValueError(f"batch_date {batch_date!r}: expected YYYY-MM-DD") from exc
    dates = landing.batch_dates(ws.landing, ws.config)
    if not dates:
        misnamed = landing.misnamed_batches(ws.landing, ws.config)
        raise FileNotFoundError(f"{ws.landing / 'batches'}: no batches in the landing zone"
                                + (f": {misnamed}" if misnamed else ""))
    return dates[-1]


def use_case_label(ref: str) -> str:
    """The use case's name for a flow parameter that may be a config path."""
    try:
        return load_config(ref).name
    except (ConfigError, OSError):  # the run itself reports the bad config
        return Path(ref).stem


def flow_run_name() -> str:
    """`<use_case>-<batch date>`, the newest batch when no date was given."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    use_case = str(parameters.get("use_case", ""))
    batch_date = parameters.get("batch_date")
    try:  # a bad config or an empty landing zone: the run itself reports it
        ws = open_workspace(use_case)
        batch_date = batch_date or batch_day(ws, None).isoformat()
    except (ConfigError, OSError, ValueError):
        return f"{Path(use_case).stem}-{batch_date or 'latest'}"
    return f"{ws.name}-{batch_date}"


def tag_flow_run(ws: Workspace) -> None:
    """Tag the running flow run with its use case, so the UI filters runs by use case."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    wanted = {ws.name, "backtest"} if ws.backtest else {ws.name}
    if wanted <= set(ctx.flow_run.tags):
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(ctx.flow_run.id, tags=sorted(set(ctx.flow_run.tags) | wanted))


def prefect_ui_link(flow_run_id: object) -> str | None:
    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


def notify_failure(flow, flow_run, state) -> None:  # noqa: ANN001 - Prefect hook signature
    """on_failure/on_crashed hook: tell the webhook which run failed and why."""
    params = flow_run.parameters or {}
    notify.notify("ctpipe.flow.failed", use_case_label(str(params.get("use_case", ""))),
                  f"{flow.name} run {flow_run.name} {state.name.lower()}: {state.message}",
                  {"flow": flow.name, "flow_run": flow_run.name, "flow_run_id": str(flow_run.id),
                   "state": state.name, "link": prefect_ui_link(flow_run.id)})



def runtime(ws: Workspace, **ports: Any) -> Runtime:
    """The core's ports, backed by Prefect, MLflow and the landing zone."""
    sink = prefect_sink(ws)
    return Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                   models=ws.registry, publish=sink.publish, traced=sink.traced,
                   replay=ws.backtest,
                   step=run_step, tracking=mlflow_run(ws), guard=explain_outages,
                   data_docs=ws.root / "data_docs" / ws.name, **ports)


def final_state(outcome: Outcome) -> State:
    """The run's final state, named by its outcome, with its one-line message."""
    run_logger().info("%s: %s", outcome.state_name, outcome.message)
    kind = Failed if outcome.failed else Completed
    return kind(name=outcome.state_name, message=outcome.message[:1000], data=outcome.result)
