"""Prefect wiring shared by the flows: steps as named tasks, the trace sink, the MLflow run of
a flow run, and final states named by the outcome."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
from prefect.states import Completed, Failed, State

from ctpipe import landing, notify, registry, retry, settings
from ctpipe.config import ConfigError, load_config
from ctpipe.decisions.outcome import Outcome
from ctpipe.links import mlflow_run_link
from ctpipe.steps.ports import RunLog, Runtime
from ctpipe.trace import Decision, TraceSink
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


# ----------------------------------------------------------------------------- the trace sink


def _artifact_key(ws: Workspace, what: str) -> str:
    return f"{ws.name}-{'backtest-' if ws.backtest else ''}{what}".lower().replace("_", "-")


def emit(ws: Workspace, event: str, payload: dict, labels: dict[str, str] | None = None) -> None:
    """A ctpipe event about the use case; the payload names it so triggers can template it."""
    ref = ws.ref or ws.name
    if ref.endswith((".yaml", ".yml")):  # a triggered run may start in another folder
        ref = str(Path(ref).resolve())
    emit_event(event=event, resource={"prefect.resource.id": ws.event_resource,
                                      "ctpipe.use-case": ws.name, **(labels or {})},
               payload={"use_case": ref, **payload})


def prefect_sink(ws: Workspace, *, artifacts_too: bool = True,
                 events: bool = True) -> TraceSink:
    """Audit record, Prefect artifact, event and webhook for each decision, once.

    Outside a flow run (the CLI's rollback, which must work with Prefect down) there is no run
    to hold an artifact, and with no Prefect server configured no event is sent.
    """

    def artifacts(d: Decision) -> None:
        a = d.artifact
        if a.table is not None:
            create_table_artifact([dict(row) for row in a.table],
                                  key=_artifact_key(ws, a.table_key or f"{a.key}-table"),
                                  description=a.table_description or a.description)
        if a.link is not None:
            create_link_artifact(a.link[0], link_text=a.link[1],
                                 key=_artifact_key(ws, a.link_key or f"{a.key}-link"),
                                 description=a.description)
        create_markdown_artifact(a.markdown, key=_artifact_key(ws, a.key),
                                 description=a.description)

    def event(d: Decision) -> None:
        emit(ws, d.event, dict(d.event_payload), dict(d.event_labels))

    def notifier(d: Decision) -> None:
        notify.notify(d.event or f"ctpipe.{d.kind}", ws.name, d.notify, dict(d.notify_details))

    return TraceSink(ws.audit_path, artifacts=artifacts if artifacts_too else None,
                     events=event if events else None,
                     notifier=notifier, log=lambda line: _log().info(line))


def _log() -> Any:
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a run (the CLI's rollback): the console
        import logging

        return logging.getLogger("ctpipe")


# ----------------------------------------------------------------------- the MLflow run


@task(name="open-mlflow-run", **REMOTE_TASK)
def _open_run(experiment: str, name: str, tags: dict[str, str]) -> tuple[str, str]:
    experiment_id = registry.ensure_experiment(experiment)
    run = registry.client().create_run(experiment_id, run_name=name, tags=tags)
    return run.info.run_id, experiment_id


@task(name="close-mlflow-run", **REMOTE_TASK)
def _close_run(run: RunLog, status: str) -> None:
    # One store round trip for everything the flow collected, not a dozen.
    now = int(time.time() * 1000)
    c = registry.client()
    c.log_batch(run.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in run.metrics.items()],
                tags=[RunTag(k, str(v)) for k, v in run.tags.items()])
    c.set_terminated(run.run_id, status)


def mlflow_run(ws: Workspace) -> Callable[[dt.date, str], Any]:
    @contextmanager
    def opened(day: dt.date, kind: str) -> Iterator[RunLog]:
        """FINISHED or FAILED with what was collected, whatever happens."""
        run_id, experiment_id = _open_run(
            ws.experiment, f"{ws.name}-{day}" + ("" if kind == "cycle" else f"-{kind}"),
            {"use_case": ws.name, "batch_date": day.isoformat(), "kind": kind,
             "config_hash": ws.config.config_hash})
        run = RunLog(run_id, mlflow_run_link(experiment_id, run_id), attach=lambda path,
                     folder: registry.client().log_artifact(run_id, str(path), folder))
        ended = "FAILED"
        try:
            yield run
            ended = run.status
        finally:
            _close_run(run, ended)
    return opened


# ----------------------------------------------------------------------------- the runtime

_TASKS: dict[tuple[str, bool], Any] = {}


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def run_step(name: str, fn: Callable[..., Any], *args: Any, remote: bool = False,
             **kwargs: Any) -> Any:
    """Run one step of the core as a named Prefect task (retried when it talks to MLflow)."""
    if (name, remote) not in _TASKS:
        _TASKS[name, remote] = task(name=name, **(REMOTE_TASK if remote else TASK))(_call)
    return _TASKS[name, remote](fn, *args, **kwargs)


def runtime(ws: Workspace, **ports: Any) -> Runtime:
    """The core's ports, backed by Prefect, MLflow and the landing zone."""
    return Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                   models=ws.registry, publish=prefect_sink(ws).publish, replay=ws.backtest,
                   step=run_step, tracking=mlflow_run(ws), guard=explain_outages,
                   data_docs=ws.root / "data_docs" / ws.name, **ports)


def final_state(outcome: Outcome) -> State:
    """The run's final state, named by its outcome, with its one-line message."""
    _log().info("%s: %s", outcome.state_name, outcome.message)
    kind = Failed if outcome.failed else Completed
    return kind(name=outcome.state_name, message=outcome.message[:1000], data=outcome.result)
