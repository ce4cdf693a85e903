"""Replay a history batch by batch through the real cycle flow, scoring champion vs static."""

from __future__ import annotations

import datetime as dt
import sys

from prefect import flow
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from ctpipe import backtest, landing, settings
from ctpipe.baselines import attach, replay_cron
from ctpipe.db import Database, open_database
from ctpipe.decisions.baselines import DEFAULT_CRON_SCHEDULES
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.flows.common import runtime
from ctpipe.flows.cycle import cycle_flow
from ctpipe.flows.monitor import automatic_rollback, publish_report
from ctpipe.flows.trace_sink import artifact_key
from ctpipe.monitoring_view import batch_rows
from ctpipe.steps.monitor import run_monitor
from ctpipe.steps.score import run_score
from ctpipe.workspace import Workspace, open_workspace


def print_progress(i: int, total: int, day: dict) -> None:
    champ = day["champion_metric"]
    static = day["static_metric"]
    fmt = (lambda v: "   -  " if v is None else f"{v:.4f}")  # noqa: E731
    flags = "".join([
        "V" if day["validation_passed"] else "Q",
        "D" if day["drift_detected"] else ".",
        "R" if day["retrained"] else ".",
        {True: "P", False: "x", None: "."}[day["gate_passed"]],
    ])
    rolled = f"  ROLLED BACK to v{day.get('rolled_back_to')}" if day.get("rolled_back") else ""
    # Why a batch was quarantined is otherwise only in the JSON and the batch's evidence.
    why = f"  {day['message']}" if not day["validation_passed"] and day.get("message") else ""
    print(f"  [{i + 1:>3}/{total}] {day['date']} {flags} champion v{day['champion_version'] or '-'}"
          f" {fmt(champ)}  static {fmt(static)}{rolled}{why}", file=sys.stderr, flush=True)


@flow(name="ctpipe-backtest", flow_run_name="backtest-{use_case}")
def backtest_flow(use_case: str, shift_day: int | None = None, quiet: bool = False,
                  cron: list[int] | None = None, events: list[str] | None = None,
                  cron_starts: bool = True) -> dict:
    """Run the cycle on every batch in the replay's landing zone, oldest first, then the cron
    baselines on the same batches.

    ``cron``: the baselines' schedules, N batches each (None: 1, 4 and 12; empty: none).
    ``cron_starts``: each schedule also started on every later batch of its period.
    ``events``: known change dates (ISO) the summary reports detection and recovery for.
    """
    settings.configure_environment()  # a deployed run's process: MLflow's limits, logging
    ws = open_workspace(use_case, backtest=True)
    dates = landing.batch_dates(ws.landing, ws.config)
    if not dates:
        raise FileNotFoundError(f"{ws.landing}: no batches to replay")
    problem = backtest.check_events(dates, [dt.date.fromisoformat(e) for e in events or []])
    if problem is not None:  # a deployment's parameters skip the command line's check
        raise ValueError(problem)
    bar = create_progress_artifact(0.0, key=artifact_key(ws, "progress"),
                                   description=f"Replay of {len(dates)} batches")
    days: list[dict] = []
    static_version: int | None = None
    db = open_database()
    for i, day in enumerate(dates):
        row, champion = _replay_day(ws, db, day, static_version)
        days.append(row)
        # The static model is the first champion (the first model that passed the gate, as a
        # cron schedule's first model): never replaced.
        static_version = static_version or champion
        update_progress_artifact(bar, 100.0 * (i + 1) / len(dates))
        if not quiet:
            print_progress(i, len(dates), row)
    # A batch's live metric is known only once its labels arrive, days after it was scored.
    live = {r["batch"]: r["live_metric"] for r in batch_rows(db, ws.model_name)}
    for row in days:
        row["live_metric"] = live.get(row["date"])
    result = {
        "metric_name": ws.config.evaluation.metric,
        "higher_is_better": ws.config.higher_is_better,
        "batch_frequency": ws.config.data.batch_frequency,
        "gate_tolerance": ws.config.gate.min_improvement,
        "shift_day": shift_day,
        "events": list(events or []),
        "days": days,
    }
    schedules = DEFAULT_CRON_SCHEDULES if cron is None else tuple(cron)
    if schedules:
        replay = replay_cron(ws.config, ws.store, dates,
                             [d["validation_passed"] for d in days], schedules,
                             lambda day: backtest.labelled_batch(ws, day), phases=cron_starts)
        attach(result, replay)
        if not quiet:
            print(f"  cron baselines {list(schedules)}: {replay.fits} fits in "
                  f"{replay.seconds:.1f} s", file=sys.stderr, flush=True)
    result["policies"] = backtest.policies(result)
    # One flat row per batch: the per-schedule figures and the warnings stay in the JSON.
    nested = ("cron_metrics", "validation_warnings")
    create_table_artifact([{k: v for k, v in d.items() if k not in nested} for d in days],
                          key=artifact_key(ws, "days"),
                          description="Backtest: one row per batch")
    # The monitoring report of the replay, as a bank would read it.
    report = publish_report(ws)
    result["report"] = None if report is None else str(report)
    return result


def _replay_day(ws: Workspace, db: Database, day: dt.date,
                static_version: int | None) -> tuple[dict, int | None]:
    # Heartbeats guard long unattended runs; for a replay's short subflows, the heartbeat
    # thread's shutdown (up to 1 s each) would dominate.
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        state = cycle_flow(use_case=ws.ref, batch_date=day.isoformat(), backtest=True,
                           return_state=True)
    record = ws.read_record(day.isoformat())
    if record is None or record["status"] == CycleStatus.FAILED:
        # A crash is not a verdict on the data: stop the replay with the cycle's own error.
        state.result()
        raise RuntimeError(f"cycle {ws.name} {day} failed: {state.message}")
    champion = record["champion_version"]
    score = backtest.score_day(ws, day, champion, static_version or champion)
    # The daily loop a bank runs: cycle, then score the day's batch, then monitor.
    rt = runtime(ws)
    scored = run_score(rt, db, day, explicit_date=True) if record["validation_passed"] else None
    watched = run_monitor(rt, db, day, roll_back=automatic_rollback(ws))
    rolled_back = watched.status is CycleStatus.ROLLED_BACK
    return {
        "date": day.isoformat(),
        "validation_passed": record["validation_passed"],
        "validation_warnings": record.get("validation_warnings") or [],
        "drift_detected": record["drift_detected"],
        "drift_share": record["drift_share"],
        "retrained": record["retrained"],
        "gate_passed": record["gate_passed"],
        # The version that served the batch, beside its metric; a rollback after it is
        # rolled_back_to (the version serving from the next batch on).
        "champion_version": champion,
        "champion_metric": score.champion_metric,
        "static_metric": score.static_metric,
        "rows_scored": scored.result.get("rows", 0) if scored is not None else 0,
        "live_metric": None,  # filled in once the batch's labels have arrived
        "estimated_metric": None if scored is None else scored.result.get("estimated_metric"),
        "rolled_back": rolled_back,
        "rolled_back_to": watched.result.get("champion_version") if rolled_back else None,
        "rollback_reason": watched.message if rolled_back else None,
        # The cycle's own verdict: the summary says from it why nothing was served.
        "message": record.get("message"),
    }, champion
