"""Batch scoring: the champion scores a validated batch (or an input file); each prediction is
logged with the version that made it, and the previous champion scores it in shadow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import flow
from prefect.states import State

from ctpipe import settings
from ctpipe.batch_reader import BatchReadError, read_batch_file
from ctpipe.db import open_database
from ctpipe.flows.common import (
    batch_day,
    final_state,
    flow_run_name,
    notify_failure,
    runtime,
    tag_flow_run,
)
from ctpipe.integrity import file_sha256
from ctpipe.steps.score import run_score, run_score_file
from ctpipe.workspace import Workspace, open_workspace


@flow(name="ctpipe-score", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def score_flow(use_case: str = "demand", batch_date: str | None = None,
               input_path: str | None = None, output_path: str | None = None,
               backtest: bool = False) -> State:
    """Score one batch of the landing zone (or ``input_path`` into ``output_path``)."""
    settings.configure_environment()  # a deployed run's process: MLflow's limits, logging
    ws = open_workspace(use_case, backtest=backtest)
    tag_flow_run(ws)
    db = open_database()
    if input_path is not None:
        if output_path is None:
            raise ValueError("input_path needs output_path")
        source = Path(input_path)
        frame, sha256 = _read_whole(source, ws)
        return final_state(run_score_file(runtime(ws), db, frame, source, Path(output_path),
                                          sha256))
    day = batch_day(ws, batch_date)
    return final_state(run_score(runtime(ws), db, day, explicit_date=bool(batch_date)))


def _read_whole(source: Path, ws: Workspace) -> tuple[pd.DataFrame, str]:
    """The file's rows and the sha256 of the very bytes they came from: hashed before and
    after the read, refused (one line) when a writer changed it in between."""
    if not source.is_file():
        read_batch_file(source, ws.config)  # raises, naming what it is: missing, a folder
    try:
        before = file_sha256(source)
        frame = read_batch_file(source, ws.config)
        after = file_sha256(source)
    except OSError as exc:
        raise BatchReadError(f"{source}: cannot be read whole ({exc})", path=source,
                             problem=f"cannot be read whole ({exc})") from exc
    if after != before:
        raise BatchReadError(f"{source}: changed while it was read; score it once it is "
                             "complete", path=source, problem="changed while it was read")
    return frame, after
