"""The daily continuous-training cycle for one batch: thin Prefect wiring over ctpipe.cycle."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from ctpipe import settings

settings.configure_environment()

import mlflow
import pandas as pd
from mlflow.entities import Metric, RunTag
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from ctpipe import audit, cycle, gating, landing, registry, reports
from ctpipe.cycle import CycleRecord
from ctpipe.drift import DriftReport
from ctpipe.training import NotEnoughData
from ctpipe.validation import (
    BatchReadError,
    ValidationResult,
    batch_period,
    validate_frame,
    write_data_docs,
)
from ctpipe.workspace import Workspace, open_workspace

# DataFrames flow between tasks: hashing them for cache keys would cost more than the work.
_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


class BatchQuarantined(RuntimeError):
    """The batch failed validation; the cycle stops and the champion stays as it was."""


def _key(ws: Workspace, what: str) -> str:
    return f"{ws.name}-{'backtest-' if ws.backtest else ''}{what}".lower().replace("_", "-")


def _emit(ws: Workspace, event: str, payload: dict) -> None:
    emit_event(event=event, resource={"prefect.resource.id": ws.event_resource,
                                      "ctpipe.use-case": ws.name}, payload=payload)


@task(name="load-batch", **_TASK)
def load_batch(ws: Workspace, day: dt.date) -> pd.DataFrame:
    return cycle.load_batch(ws, day)


@task(name="validate-batch", **_TASK)
def validate_batch(ws: Workspace, day: dt.date, batch: pd.DataFrame) -> ValidationResult:
    rules = ws.config.validation
    previous = [d for d in landing.batch_dates(ws.landing) if d < day][-rules.row_count_window:]
    recent = [landing.row_count(landing.batch_path(ws.landing, d)) for d in previous]
    now = None
    if ws.backtest:  # a replay validates as if just after the batch's period closed
        now = dt.datetime.combine(batch_period(day, ws.config.data.batch_frequency)[1],
                                  dt.time(), tzinfo=dt.UTC)
    return validate_frame(batch, ws.config, batch_date=day, recent_rows=recent, now=now)


@task(name="quarantine-batch", **_TASK)
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
                             key=_key(ws, "data-docs"), description="Failed validation")
    create_markdown_artifact(summary + f"\n\nQuarantined to `{folder}`.{docs}",
                             key=_key(ws, "validation"), description="Validation: FAILED")
    _emit(ws, "ctpipe.validation.failed", {"batch_date": day.isoformat(), "message": message,
                                           "quarantine": folder})
    audit.record("validation.failed", ws.name, message, path=ws.audit_path,
                 details={"batch_date": day.isoformat(), "quarantine": folder})
    return message


@task(name="detect-drift", **_TASK)
def detect_drift(ws: Workspace, day: dt.date, batch: pd.DataFrame,
                 champion: registry.LoadedVersion | None) -> cycle.DriftAssessment:
    return cycle.assess_drift(ws, day, batch, champion)


@task(name="train-challenger", **_TASK)
def train_challenger(ws: Workspace, day: dt.date) -> cycle.Candidate:
    return cycle.train_candidate(ws, day)


@task(name="evaluate-models", **_TASK)
def evaluate_models(ws: Workspace, candidate: cycle.Candidate,
                    champion: registry.LoadedVersion | None):
    challenger, finite = cycle.evaluate_on_holdout(ws, candidate.model, candidate.holdout)
    incumbent = None
    if champion is not None:
        incumbent, _ = cycle.evaluate_on_holdout(ws, champion.model, candidate.holdout)
    return challenger, incumbent, finite


@task(name="register-challenger", **_TASK)
def register_challenger(ws: Workspace, run_id: str, candidate: cycle.Candidate,
                        tags: dict[str, str]) -> registry.ModelVersionInfo:
    with mlflow.start_run(run_id=run_id):
        return registry.register_candidate(ws.model_name, candidate.model, candidate.profile,
                                           candidate.outputs, tags, sample=candidate.holdout)


@task(name="promote", **_TASK)
def promote(ws: Workspace, day: dt.date, version: int, previous: int | None, why: str) -> None:
    approver = f"auto: jurisdiction {ws.config.promotion.jurisdiction or 'unset'} " \
               "requires no approval"
    registry.promote(ws.model_name, version, previous, {
        "approver": approver, "previous_champion": str(previous or ""),
        "promoted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })
    audit.record("model.promoted", ws.name, why, path=ws.audit_path, details={
        "model": ws.model_name, "version": version, "previous": previous,
        "batch_date": day.isoformat(), "approver": approver})
    _emit(ws, "ctpipe.model.promoted", {"model": ws.model_name, "version": version,
                                        "previous": previous, "batch_date": day.isoformat()})


def _drift_artifacts(ws: Workspace, assessment: cycle.DriftAssessment) -> None:
    report: DriftReport | None = assessment.report
    if report is not None:
        rows = report.to_records() + [
            {**o.to_record(), "kind": f"{o.kind} ({o.feature}, not in share)"}
            for o in assessment.outputs]
        create_table_artifact(rows, key=_key(ws, "drift-table"),
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
    lines += ["", f"Decision: {assessment.retrain_reason or 'no retraining needed'}"]
    create_markdown_artifact("\n".join(lines), key=_key(ws, "drift"),
                             description="Drift verdict")


def _log_drift_plot(ws: Workspace, run_id: str, champion: registry.LoadedVersion,
                    batch: pd.DataFrame, report: DriftReport) -> None:
    with tempfile.TemporaryDirectory(prefix="ctpipe-drift-") as tmp:
        path = reports.plot_drift(champion.profile, batch, report, Path(tmp) / "drift.png")
        registry.client().log_artifact(run_id, str(path), artifact_path="drift")


def _flush_run(c, run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:  # noqa: ANN001
    now = int(time.time() * 1000)
    c.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                tags=[RunTag(k, str(v)) for k, v in tags.items()])


def _batch_day(ws: Workspace, batch_date: str | None) -> dt.date:
    if batch_date:
        try:
            return dt.date.fromisoformat(batch_date)
        except ValueError as exc:
            raise ValueError(f"batch_date {batch_date!r}: expected YYYY-MM-DD") from exc
    dates = landing.batch_dates(ws.landing)
    if not dates:
        raise FileNotFoundError(f"{ws.landing / 'batches'}: no batches in the landing zone")
    return dates[-1]


@flow(name="ctpipe-cycle", flow_run_name="{use_case}-{batch_date}", log_prints=True,
      validate_parameters=True)
def cycle_flow(use_case: str = "demand", batch_date: str | None = None,
               backtest: bool = False) -> dict:
    """Validate → drift → (retrain → evaluate → gate → promote) for one batch."""
    logger = get_run_logger()
    ws = open_workspace(use_case, backtest)
    day = _batch_day(ws, batch_date)
    record = CycleRecord(use_case=ws.name, batch_date=day.isoformat())
    c = registry.client()
    run = c.create_run(registry.ensure_experiment(ws.experiment), run_name=f"{ws.name}-{day}",
                       tags={"use_case": ws.name, "batch_date": day.isoformat(),
                             "config_hash": ws.config.config_hash})
    record.mlflow_run_id = run.info.run_id
    # Collected and written in one batch at the end: one store round trip, not a dozen.
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    try:
        _run_cycle(ws, day, record, run.info.run_id, logger, tags, metrics)
        c.set_terminated(run.info.run_id, "FINISHED")
    except BaseException as exc:
        if record.status == "running":
            record.status = "failed"
            record.message = f"{type(exc).__name__}: {exc}"
        c.set_terminated(run.info.run_id, "FAILED")
        raise
    finally:
        tags["cycle_status"] = record.status
        _flush_run(c, run.info.run_id, tags, metrics)
        cycle.write_record(ws, record)
    return record.__dict__


def _run_cycle(ws: Workspace, day: dt.date, record: CycleRecord, run_id: str, logger,
               tags: dict[str, str], metrics: dict[str, float]) -> None:
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
                             key=_key(ws, "validation"), description=f"Validation: passed{warned}")
    audit.record("validation.passed", ws.name, f"{result.rows} rows, {result.evaluated} "
                 f"expectations{warned}", path=ws.audit_path,
                 details={"batch_date": day.isoformat(),
                          "warnings": [w.line() for w in result.warnings]})

    champion = registry.load_champion(ws.model_name)
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
    _drift_artifacts(ws, assessment)
    if assessment.report is not None and assessment.report.drifted_features:
        _log_drift_plot(ws, run_id, champion, batch, assessment.report)
    audit.record("drift.checked", ws.name, assessment.retrain_reason or "no drift",
                 path=ws.audit_path, details={"batch_date": day.isoformat(),
                                              "drifted_features": record.drifted_features,
                                              "performance": assessment.performance})
    if assessment.drift_detected:
        _emit(ws, "ctpipe.drift.detected", {
            "batch_date": day.isoformat(), "drifted_features": record.drifted_features,
            "drift_share": record.drift_share, "performance": assessment.performance,
            "outputs_drifted": [o.feature for o in assessment.outputs if o.drifted]})
    record.retrain_reason = assessment.retrain_reason
    if assessment.retrain_reason is None:
        record.status = "no-drift"
        record.message = "no drift: champion kept"
        return

    try:
        cycle.check_training_window(ws, day)
    except NotEnoughData as exc:
        record.status = "waiting"
        record.message = f"cannot retrain yet: {exc}"
        tags["training"] = record.message
        return
    logger.info("retraining %s: %s", ws.name, assessment.retrain_reason)
    candidate = train_challenger(ws, day)
    record.retrained = True
    challenger, incumbent, finite = evaluate_models(ws, candidate, champion)
    decision = gating.decide(ws.config.gate, challenger, incumbent, predictions_finite=finite)
    record.gate_passed = decision.passed
    record.gate_reasons = decision.reasons
    record.challenger_metric = challenger.value
    record.champion_holdout_metric = incumbent.value if incumbent else None
    metrics.update(challenger.as_mlflow_metrics("challenger"))
    if incumbent:
        metrics.update(incumbent.as_mlflow_metrics("champion"))
    tags["gate"] = "passed" if decision.passed else "rejected"
    tags["gate_reasons"] = " | ".join(decision.reasons)[:5000]

    tags = cycle.lineage_tags(ws, day, candidate, challenger, decision, assessment.retrain_reason)
    version = register_challenger(ws, run_id, candidate, tags)
    record.candidate_version = version.version
    link = f"{settings.mlflow_ui_url()}/#/models/{ws.model_name}/versions/{version.version}"
    create_markdown_artifact(
        reports.gate_markdown(ws.name, day.isoformat(), decision, challenger, incumbent,
                              version.version, record.champion_version, link),
        key=_key(ws, "gate"), description=f"Gate {'passed' if decision.passed else 'rejected'}")
    audit.record("gate.decided", ws.name, "; ".join(decision.reasons), path=ws.audit_path,
                 details={"version": version.version, "passed": decision.passed,
                          "batch_date": day.isoformat()})
    if not decision.passed:
        record.status = "rejected"
        record.message = f"challenger v{version.version} rejected: " + "; ".join(decision.reasons)
        _emit(ws, "ctpipe.gate.rejected", {"version": version.version,
                                           "reasons": decision.reasons,
                                           "batch_date": day.isoformat()})
        return
    promote(ws, day, version.version, record.champion_version, assessment.retrain_reason)
    record.status = "promoted"
    record.message = f"v{version.version} promoted to champion ({assessment.retrain_reason})"
    record.champion_version = version.version
