"""The MLflow run behind one flow run: opened first, closed FINISHED or FAILED with the tags
and metrics the steps collected, in one store round trip."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mlflow.entities import Metric, RunTag
from prefect import task

from ctpipe import registry
from ctpipe.flows.tasks import REMOTE_TASK
from ctpipe.links import mlflow_run_link
from ctpipe.steps.ports import TrackingRun
from ctpipe.workspace import Workspace


@task(name="open-mlflow-run", **REMOTE_TASK)
def _open_run(experiment: str, name: str, tags: dict[str, str]) -> tuple[str, str]:
    experiment_id = registry.ensure_experiment(experiment)
    run = registry.client().create_run(experiment_id, run_name=name, tags=tags)
    return run.info.run_id, experiment_id


@task(name="close-mlflow-run", **REMOTE_TASK)
def _close_run(run: TrackingRun, status: str) -> None:
    # One store round trip for everything the flow collected, not a dozen.
    now = int(time.time() * 1000)
    c = registry.client()
    c.log_batch(run.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in run.metrics.items()],
                tags=[RunTag(k, str(v)) for k, v in run.tags.items()])
    c.set_terminated(run.run_id, status)


def mlflow_run(ws: Workspace) -> Callable[[dt.date, str], Any]:
    @contextmanager
    def opened(day: dt.date, kind: str) -> Iterator[TrackingRun]:
        """FINISHED or FAILED with what was collected, whatever happens."""
        run_id, experiment_id = _open_run(
            ws.experiment, f"{ws.name}-{day}" + ("" if kind == "cycle" else f"-{kind}"),
            {"use_case": ws.name, "batch_date": day.isoformat(), "kind": kind,
             "config_hash": ws.config.config_hash})
        run = TrackingRun(run_id, mlflow_run_link(experiment_id, run_id), attach=lambda path,
                     folder: registry.client().log_artifact(run_id, str(path), folder))
        ended = "FAILED"
        try:
            yield run
            ended = run.status
        finally:
            _close_run(run, ended)
    return opened


