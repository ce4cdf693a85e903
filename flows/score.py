"""Batch scoring: the champion scores a validated batch (or an input file); each prediction is
logged with the version that made it, and the previous champion scores it in shadow."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.states import State

from ctpipe import settings
from ctpipe.batch_reader import read_batch_file
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
from ctpipe.workspace import open_workspace


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
        sha256 = file_sha256(source)  # before the read: the key names bytes no newer than those
        frame = read_batch_file(source, ws.config)
        return final_state(run_score_file(runtime(ws), db, frame, source, Path(output_path),
                                          sha256))
    day = batch_day(ws, batch_date)
    return final_state(run_score(runtime(ws), db, day, explicit_date=bool(batch_date)))
