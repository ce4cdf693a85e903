"""The daily continuous-training cycle for one batch: thin Prefect wiring over ctpipe.cycle."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from ctpipe import settings

settings.configure_environment()

import pandas as pd
from prefect import flow, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from ctpipe import audit, cycle, landing, registry, reports
from ctpipe.cycle import CycleRecord
from ctpipe.drift import DriftReport
from ctpipe.flows.common import (
    RETRAIN_LABEL,
    TASK,
    FlowRun,
    artifact_key,
    batch_day,
    emit,
    explain_outages,
    flow_run_name,
    mlflow_run,
    notify_failure,
    tag_flow_run,
)
from ctpipe.flows.retrain import load_champion, retrain_and_decide
from ctpipe.validation import (
    BatchReadError,
    ValidationResult,
    batch_period,
    validate_frame,
    write_data_docs,
)
from ctpipe.workspace import Workspace, open_workspace


class NoNewBatch(RuntimeError):
    """The newest batch in the landing zone was already processed: the new one is late."""


class BatchQuarantined(RuntimeError):
    """The batch failed validation; the cycle stops and the champion stays as it was."""


@task(name="load-batch", **TASK)
def load_batch(ws: Workspace, day: dt.date) -> pd.DataFrame:
    return cycle.load_batch(ws, day)


@task(name="validate-batch", **TASK)
def validate_batch(ws: Workspace, day: dt.date, batch: pd.DataFrame) -> ValidationResult:
    rules = ws.config.validation
    previous = [d for d in landing.batch_dates(ws.landing) if d < day][-rules.row_count_window:]
    recent = [landing.row_count(landing.batch_path(ws.landing, d)) for d in previous]
    now = None
    if ws.backtest:  # a replay validates as if just after the batch's period closed
        now = dt.datetime.combine(batch_period(day, ws.config.data.batch_frequency)[1],
                                  dt.time(), tzinfo=dt.UTC)
    return validate_frame(batch, ws.config, batch_date=day, recent_rows=recent, now=now)


@task(name="quarantine-batch", **TASK)
def quarantine_batch(ws: Workspace, day: dt.date, result: ValidationResult | None,
                     read_error: str | None) -> str:
    source = str(landing.batch_path(ws.landing, day))
    if result is None:
        message = f"{source}: batch could not be read: {read_error}"
        summary, gx_result = f"# Validation FAILED: {source}\n\n{read_error}\n", {}
    else:
        message, summary = result.message(source), result.summary_markdown(source)
        gx_result = result.gx_result
    folder = cycle.quarantine_batch(ws, day, gx_result, summary)
    docs = ""
    if result is not None:
        page = write_data_docs(result, ws.config, ws.root / "data_docs" / ws.name,
                               batch_name=day.isoformat())
        docs = f"\n\nGX Data Docs: [{page.name}]({page.as_uri()})"
        create_link_artifact(page.as_uri(), link_text="GX Data Docs",
                             key=artifact_key(ws, "data-docs"), description="Failed validation")
    create_markdown_artifact(summary + f"\n\nQuarantined to `{folder}`.{docs}",
                             key=artifact_key(ws, "validation"), description="Validation: FAILED")
    emit(ws, "ctpipe.validation.failed", {"batch_date": day.isoformat(), "message": message,
                                           "quarantine": folder})
    audit.record("validation.failed", ws.name, message, path=ws.audit_path,
                 details={"batch_date": day.isoformat(), "quarantine": folder})
    return message


@task(name="detect-drift", **TASK)
def detect_drift(ws: Workspace, day: dt.date, batch: pd.DataFrame,
                 champion: registry.LoadedVersion | None) -> cycle.DriftAssessment:
    return cycle.assess_drift(ws, day, batch, champion)


def _drift_artifacts(ws: Workspace, assessment: cycle.DriftAssessment, run: FlowRun) -> None:
    report: DriftReport | None = assessment.report
    if report is not None:
        rows = report.to_records() + [
            {**o.to_record(), "kind": f"{o.kind} ({o.feature}, not in share)"}
            for o in assessment.outputs]
        create_table_artifact(rows, key=artifact_key(ws, "drift-table"),
                              description=f"Drift per feature (share {report.drift_share:.0%})")
    lines = ["# Drift", "", report.summary_markdown() if report else "No champion: no reference."]
    for o in assessment.outputs:
        verdict = "drifted" if o.drifted else "stable"
        lines += ["", f"{o.feature.capitalize()} distribution vs the champion's training rows: "
                  f"{verdict} ({o.test} {o.statistic:.4f}, threshold {o.threshold:.4g})."]
    if assessment.performance:
        p = assessment.performance
        lines += ["", f"Performance on {p['batch']}: {p['metric']} {p['current']:.4f} vs "
                  f"{p['baseline']:.4f} at promotion ({p['degradation']:+.1%}; drift: "
                  f"{p['drifted']})"]
    lines += ["", f"Decision: {assessment.retrain_reason or 'no retraining needed'}",
              "", f"MLflow run (drift plot, metrics): [{run.run_id}]({run.link})"]
    create_markdown_artifact("\n".join(lines), key=artifact_key(ws, "drift"),
                             description="Drift verdict")


def _log_drift_plot(ws: Workspace, run_id: str, champion: registry.LoadedVersion,
                    batch: pd.DataFrame, report: DriftReport) -> None:
    with tempfile.TemporaryDirectory(prefix="ctpipe-drift-") as tmp:
        path = reports.plot_drift(champion.profile, batch, report, Path(tmp) / "drift.png")
        registry.client().log_artifact(run_id, str(path), artifact_path="drift")


@flow(name="ctpipe-cycle", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def cycle_flow(use_case: str = "demand", batch_date: str | None = None,
               backtest: bool = False, retrain_inline: bool = True) -> dict:
    """Validate → drift → (retrain → evaluate → gate → approve → promote) for one batch.

    With ``retrain_inline=False`` (the scheduled deployment) a retrain is requested by event
    and the retraining deployment does it.
    """
    ws = open_workspace(use_case, backtest)
    day = batch_day(ws, batch_date)
    tag_flow_run(ws)
    done = ws.read_record(day.isoformat())
    if not batch_date and done and done["status"] not in ("running", "failed"):
        # A scheduled run passes no date: a late batch must not make it redo yesterday's.
        raise NoNewBatch(f"{ws.landing / 'batches'}: no new batch; the newest, {day}, was "
                         f"already processed ({done['status']}); pass batch_date to redo it")
    record = CycleRecord(use_case=ws.name, batch_date=day.isoformat())
    try:
        with explain_outages(), mlflow_run(ws, day, "cycle") as run:
            record.mlflow_run_id = run.run_id
            try:
                _run_cycle(ws, day, record, run, retrain_inline)
            finally:
                if record.status == "running":
                    record.status = "failed"
                run.tags["cycle_status"] = record.status
    except BaseException as exc:
        if record.status in ("running", "failed") and not record.message:
            record.status = "failed"
            record.message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        cycle.write_record(ws, record)
    return record.__dict__


def _run_cycle(ws: Workspace, day: dt.date, record: CycleRecord, run: FlowRun,
               retrain_inline: bool) -> None:
    tags, metrics = run.tags, run.metrics
    try:
        batch = load_batch(ws, day)
        result, read_error = validate_batch(ws, day, batch), None
    except BatchReadError as exc:
        result, read_error = None, str(exc)
    tags["validation"] = "passed" if result and result.passed else "failed"
    if result is None or not result.passed:
        record.status = "quarantined"
        record.validation_failures = (
            [read_error] if result is None
            else [f.line() for f in result.failures])
        record.message = quarantine_batch(ws, day, result, read_error)
        raise BatchQuarantined(record.message)
    record.validation_passed = True
    warned = f" with {len(result.warnings)} warnings" if result.warnings else ""
    create_markdown_artifact(result.summary_markdown(str(landing.batch_path(ws.landing, day))),
                             key=artifact_key(ws, "validation"),
                             description=f"Validation: passed{warned}")
    audit.record("validation.passed", ws.name, f"{result.rows} rows, {result.evaluated} "
                 f"expectations{warned}", path=ws.audit_path,
                 details={"batch_date": day.isoformat(),
                          "warnings": [w.line() for w in result.warnings]})

    champion = load_champion(ws)
    record.champion_version = champion.info.version if champion else None
    assessment = detect_drift(ws, day, batch, champion)
    record.drift_detected = assessment.drift_detected
    record.performance_drift = assessment.performance
    record.output_drift = [o.to_record() for o in assessment.outputs]
    if assessment.report is not None:
        record.drift_share = assessment.report.drift_share
        record.drifted_features = assessment.report.drifted_features
        metrics["drift_share"] = assessment.report.drift_share
    tags["drift"] = "detected" if assessment.drift_detected else "none"
    _drift_artifacts(ws, assessment, run)
    if assessment.report is not None and assessment.report.drifted_features:
        _log_drift_plot(ws, run.run_id, champion, batch, assessment.report)
    audit.record("drift.checked", ws.name, assessment.retrain_reason or "no drift",
                 path=ws.audit_path, details={"batch_date": day.isoformat(),
                                              "drifted_features": record.drifted_features,
                                              "performance": assessment.performance})
    if assessment.drift_detected:
        emit(ws, "ctpipe.drift.detected", labels={
            RETRAIN_LABEL: "inline" if retrain_inline else "by-event"}, payload={
            "batch_date": day.isoformat(), "reason": assessment.retrain_reason,
            "drifted_features": record.drifted_features,
            "drift_share": record.drift_share, "performance": assessment.performance,
            "outputs_drifted": [o.feature for o in assessment.outputs if o.drifted]})
    record.retrain_reason = assessment.retrain_reason
    if assessment.retrain_reason is None:
        record.status = "no-drift"
        record.message = "no drift: champion kept"
        return
    if not retrain_inline:
        if not assessment.drift_detected:  # no champion yet, or the retrain schedule is due
            emit(ws, "ctpipe.retrain.requested", {"batch_date": day.isoformat(),
                                                  "reason": assessment.retrain_reason},
                 labels={RETRAIN_LABEL: "by-event"})
        record.status = "retrain-requested"
        record.message = f"retraining requested by event: {assessment.retrain_reason}"
        return
    retrain_and_decide(ws, day, record, run, assessment.retrain_reason)
