"""Wiring shared by the flows: artifact keys, events, notifications, the MLflow run of a flow."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ctpipe import settings

settings.configure_environment()

from mlflow.entities import Metric, RunTag
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

from ctpipe import landing, notify, registry, retry
from ctpipe.config import ConfigError, load_config
from ctpipe.workspace import Workspace, open_workspace

# DataFrames flow between tasks: hashing them for cache keys would cost more than the work.
TASK = {"cache_policy": NO_CACHE, "persist_result": False}
# Steps that talk to MLflow: a store that is unreachable for a moment is retried with backoff.
REMOTE_TASK = {**TASK, **retry.task_retry_options()}


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


def artifact_key(ws: Workspace, what: str) -> str:
    return f"{ws.name}-{'backtest-' if ws.backtest else ''}{what}".lower().replace("_", "-")


# Resource label on drift and retrain-request events: "by-event" asks the retraining
# deployment to act; "inline" says the emitting cycle retrains itself (no duplicate work).
RETRAIN_LABEL = "ctpipe.retrain"


def emit(ws: Workspace, event: str, payload: dict, labels: dict[str, str] | None = None) -> None:
    """A ctpipe event about the use case; the payload names it so triggers can template it."""
    ref = ws.ref or ws.name
    if ref.endswith((".yaml", ".yml")):  # a triggered run may start in another folder
        ref = str(Path(ref).resolve())
    emit_event(event=event, resource={"prefect.resource.id": ws.event_resource,
                                      "ctpipe.use-case": ws.name, **(labels or {})},
               payload={"use_case": ref, **payload})


def batch_day(ws: Workspace, batch_date: str | None) -> dt.date:
    """The batch a run works on: the date given, or the newest batch in the landing zone."""
    if batch_date:
        try:
            return dt.date.fromisoformat(batch_date)
        except ValueError as exc:
            raise ValueError(f"batch_date {batch_date!r}: expected YYYY-MM-DD") from exc
    dates = landing.batch_dates(ws.landing)
    if not dates:
        raise FileNotFoundError(f"{ws.landing / 'batches'}: no batches in the landing zone")
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
    except (ConfigError, OSError):
        return f"{Path(use_case).stem}-{batch_date or 'latest'}"
    if not batch_date:
        try:
            batch_date = batch_day(ws, None).isoformat()
        except (OSError, ValueError):
            batch_date = "latest"
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


def mlflow_run_link(experiment_id: str, run_id: str) -> str:
    return f"{settings.mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_version_link(model_name: str, version: int) -> str:
    return f"{settings.mlflow_ui_url()}/#/models/{model_name}/versions/{version}"


def notify_failure(flow, flow_run, state) -> None:  # noqa: ANN001 - Prefect hook signature
    """on_failure/on_crashed hook: tell the webhook which run failed and why."""
    params = flow_run.parameters or {}
    notify.notify("ctpipe.flow.failed", use_case_label(str(params.get("use_case", ""))),
                  f"{flow.name} run {flow_run.name} {state.name.lower()}: {state.message}",
                  {"flow": flow.name, "flow_run": flow_run.name, "flow_run_id": str(flow_run.id),
                   "state": state.name, "link": prefect_ui_link(flow_run.id)})


@dataclass
class FlowRun:
    """The MLflow run behind one flow run; tags and metrics are written once, at the end."""

    run_id: str
    experiment_id: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def link(self) -> str:
        return mlflow_run_link(self.experiment_id, self.run_id)


@task(name="open-mlflow-run", **REMOTE_TASK)
def _open_run(experiment: str, name: str, tags: dict[str, str]) -> tuple[str, str]:
    experiment_id = registry.ensure_experiment(experiment)
    run = registry.client().create_run(experiment_id, run_name=name, tags=tags)
    return run.info.run_id, experiment_id


@task(name="close-mlflow-run", **REMOTE_TASK)
def _close_run(run: FlowRun, status: str) -> None:
    # One store round trip for everything the flow collected, not a dozen.
    now = int(time.time() * 1000)
    c = registry.client()
    c.log_batch(run.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in run.metrics.items()],
                tags=[RunTag(k, str(v)) for k, v in run.tags.items()])
    c.set_terminated(run.run_id, status)


@contextmanager
def mlflow_run(ws: Workspace, day: dt.date, kind: str) -> Iterator[FlowRun]:
    """An MLflow run for the flow; FINISHED or FAILED with what was collected, whatever happens."""
    run_id, experiment_id = _open_run(
        ws.experiment, f"{ws.name}-{day}" + ("" if kind == "cycle" else f"-{kind}"),
        {"use_case": ws.name, "batch_date": day.isoformat(), "kind": kind,
         "config_hash": ws.config.config_hash})
    run = FlowRun(run_id, experiment_id)
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    finally:
        _close_run(run, status)
