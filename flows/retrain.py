"""Retrain → evaluate → gate → (approval) → promote, one retraining per use case at a time.

The daily cycle runs this path inline (replays, `ctpipe cycle`); deployed, the cycle only
emits `ctpipe.drift.detected` and the retraining deployment, triggered by that event, runs it.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import ExitStack, contextmanager

from ctpipe import settings

settings.configure_environment()

import mlflow
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from ctpipe import approval, audit, cycle, gating, notify, registry, reports
from ctpipe.approval import ApprovalAnswer
from ctpipe.cycle import CycleRecord
from ctpipe.flows.common import (
    REMOTE_TASK,
    TASK,
    FlowRun,
    artifact_key,
    batch_day,
    emit,
    explain_outages,
    flow_run_name,
    mlflow_run,
    mlflow_version_link,
    notify_failure,
    prefect_ui_link,
    tag_flow_run,
)
from ctpipe.training import NotEnoughData
from ctpipe.workspace import Workspace, open_workspace


class ApprovalInput(RunInput, ApprovalAnswer):
    """The resume form an approver fills in the Prefect UI."""


class ApprovalTimedOut(RuntimeError):
    """Nobody decided within promotion.approval_timeout_seconds: the promotion is rejected."""


def retrain_limit_name(ws: Workspace) -> str:
    return f"ctpipe-retrain-{ws.name}" + ("-backtest" if ws.backtest else "")


def _ensure_limit(name: str) -> None:
    # Created on first use, so a fresh server needs no setup step; strict=True below then
    # guarantees the limit is really enforced rather than silently skipped.
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass


class RetrainingSlotBusy(RuntimeError):
    """The use case's retraining slot stayed taken for SLOT_WAIT_SECONDS."""


SLOT_WAIT_SECONDS = 3 * 3600  # far longer than a training; longer means a lost lease


@contextmanager
def retraining_slot(ws: Workspace):
    """At most one retraining per use case at a time, across processes and machines."""
    name = retrain_limit_name(ws)
    _ensure_limit(name)
    ctx = FlowRunContext.get()
    holder = ConcurrencyLeaseHolder(type="flow_run", id=ctx.flow_run.id) \
        if ctx and ctx.flow_run else None
    with ExitStack() as stack:
        try:
            stack.enter_context(concurrency(name, occupy=1, strict=True, holder=holder,
                                            timeout_seconds=SLOT_WAIT_SECONDS))
        except TimeoutError as exc:
            raise RetrainingSlotBusy(
                f"global concurrency limit {name}: no free slot for {SLOT_WAIT_SECONDS} s; "
                "another retraining holds it, or a lease was lost (see docs/RUNBOOK.md)") from exc
        yield


@task(name="find-versions-for-batch", **REMOTE_TASK)
def find_versions_for_batch(ws: Workspace, day: dt.date) -> list[registry.ModelVersionInfo]:
    return registry.versions_for_batch(ws.model_name, day.isoformat(), ws.config.config_hash)


@task(name="load-champion", **REMOTE_TASK)
def load_champion(ws: Workspace) -> registry.LoadedVersion | None:
    return registry.load_champion(ws.model_name)


@task(name="train-challenger", **TASK)
def train_challenger(ws: Workspace, day: dt.date) -> cycle.Candidate:
    bar = create_progress_artifact(0.0, key=artifact_key(ws, "training-progress"),
                                   description=f"Training the challenger on the window to {day}")

    def report(percent: float) -> None:
        try:
            update_progress_artifact(bar, percent)
        except Exception as exc:  # noqa: BLE001 - a progress bar must never stop a training
            get_run_logger().warning("training progress not updated: %s", exc)

    return cycle.train_candidate(ws, day, progress=report)


@task(name="evaluate-models", **TASK)
def evaluate_models(ws: Workspace, candidate: cycle.Candidate,
                    champion: registry.LoadedVersion | None):
    challenger, finite = cycle.evaluate_on_holdout(ws, candidate.model, candidate.holdout)
    incumbent = None
    if champion is not None:
        incumbent, _ = cycle.evaluate_on_holdout(ws, champion.model, candidate.holdout)
    return challenger, incumbent, finite


@task(name="register-challenger", **REMOTE_TASK)
def register_challenger(ws: Workspace, run_id: str, candidate: cycle.Candidate,
                        tags: dict[str, str]) -> registry.ModelVersionInfo:
    with mlflow.start_run(run_id=run_id):
        return registry.register_candidate(ws.model_name, candidate.model, candidate.profile,
                                           candidate.outputs, tags, sample=candidate.holdout)


@task(name="record-approval", **REMOTE_TASK)
def record_approval(ws: Workspace, day: dt.date, version: int, tags: dict[str, str]) -> None:
    registry.tag_version(ws.model_name, version, tags)
    audit.record("approval.decided", ws.name, tags["approval_reason"], who=tags["approver"],
                 path=ws.audit_path, details={"model": ws.model_name, "version": version,
                                              "decision": tags["approval_decision"],
                                              "batch_date": day.isoformat()})


@task(name="promote", **REMOTE_TASK)
def promote_alias(ws: Workspace, version: int, previous: int | None, approver: str) -> None:
    # Only the registry move is retried: registry.promote is safe to repeat, the audit
    # record, event and notification below must happen once.
    registry.promote(ws.model_name, version, previous, {
        "approver": approver, "previous_champion": str(previous or ""),
        "promoted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })


def _promote(ws: Workspace, day: dt.date, record: CycleRecord, run: FlowRun, version: int,
             reason: str, approver: str) -> None:
    previous = record.champion_version
    try:
        promote_alias(ws, version, previous, approver)
    except registry.ChampionChanged as exc:
        record.status = "rejected"
        record.message = str(exc)
        audit.record("promotion.refused", ws.name, str(exc), path=ws.audit_path,
                     details={"model": ws.model_name, "version": version,
                              "batch_date": day.isoformat()})
        emit(ws, "ctpipe.gate.rejected", {"version": version, "reasons": [str(exc)],
                                          "batch_date": day.isoformat()})
        return
    record.status = "promoted"
    record.message = f"v{version} promoted to champion ({reason})"
    record.champion_version = version
    audit.record("model.promoted", ws.name, reason, who=approver, path=ws.audit_path, details={
        "model": ws.model_name, "version": version, "previous": previous,
        "batch_date": day.isoformat(), "approver": approver})
    link = mlflow_version_link(ws.model_name, version)
    emit(ws, "ctpipe.model.promoted", {"model": ws.model_name, "version": version,
                                       "previous": previous, "batch_date": day.isoformat()})
    if not ws.backtest:
        notify.notify("ctpipe.model.promoted", ws.name,
                      f"{ws.model_name} v{version} promoted to champion (was v{previous or '-'})",
                      {"model": ws.model_name, "version": version, "previous": previous,
                       "batch_date": day.isoformat(), "approver": approver, "why": reason,
                       "model_link": link, "mlflow_run": run.link})
    create_markdown_artifact(
        f"# Promoted: {ws.model_name} v{version}\n\n"
        f"- champion: v{previous or '-'} → **v{version}**\n- batch: {day}\n- why: {reason}\n"
        f"- approver: {approver}\n- model version: [{ws.model_name} v{version}]({link})\n"
        f"- MLflow run: [{run.run_id}]({run.link})\n\n"
        f"Roll back with `ctpipe rollback {ws.name} --reason TEXT`.",
        key=artifact_key(ws, "promotion"), description=f"Promoted v{version}")


def _ask_approval(ws: Workspace, day: dt.date, version: int,
                  champion_version: int | None) -> ApprovalAnswer | None:
    """Pause the flow run with a typed form; None when nobody answered in time."""
    from prefect.exceptions import FlowPauseTimeout

    timeout = ws.config.promotion.approval_timeout_seconds
    run_id = FlowRunContext.get().flow_run.id
    create_markdown_artifact(
        f"# Approval needed: {ws.model_name} v{version}\n\n"
        f"Jurisdiction {ws.config.promotion.jurisdiction} requires a human decision before "
        f"v{version} replaces v{champion_version or '-'} as champion.\n\n"
        f"- Resume this run in the UI and fill in the form, or from a shell:\n"
        f"  `ctpipe approve {run_id} --approver NAME --reason TEXT` /"
        f" `ctpipe reject {run_id} --approver NAME --reason TEXT`\n"
        f"- No decision within {timeout} s rejects the promotion.\n"
        f"- Model version: [{ws.model_name} v{version}]"
        f"({mlflow_version_link(ws.model_name, version)})",
        key=artifact_key(ws, "approval"), description=f"Approval needed for v{version}")
    notify.notify("ctpipe.approval.requested", ws.name,
                  f"{ws.model_name} v{version} waits for approval (flow run {run_id})",
                  {"model": ws.model_name, "version": version, "flow_run_id": str(run_id),
                   "link": prefect_ui_link(run_id), "timeout_seconds": timeout})
    # WARNING, so a shell running `ctpipe cycle` shows it too (the default level hides INFO).
    get_run_logger().warning("v%s waits for approval: ctpipe approve|reject %s --approver NAME "
                             "--reason TEXT (timeout %s s)", version, run_id, timeout)
    try:
        answer = pause_flow_run(wait_for_input=ApprovalInput, timeout=timeout,
                                poll_interval=min(approval_poll_seconds(), timeout),
                                key=f"approve-v{version}")
    except FlowPauseTimeout:
        return None
    return ApprovalAnswer.model_validate(answer.model_dump(include={"decision", "approver",
                                                                   "reason"}))


def approval_poll_seconds() -> int:
    # How often a paused run asks the API whether it was resumed; tests shorten it.
    return max(1, int(os.environ.get("CTPIPE_APPROVAL_POLL_SECONDS", "10")))


def retrain_and_decide(ws: Workspace, day: dt.date, record: CycleRecord, run: FlowRun,
                       reason: str, *, force: bool = False) -> None:
    """Train, gate and register inside the use case's retraining slot; ask approval outside
    it (a human may take a day, the use case's other retrains must not wait for one); promote
    inside the slot again, only if the champion is still the one the challenger beat."""
    needs_approval = ws.config.promotion.requires_approval and not ws.backtest
    with retraining_slot(ws):
        version = _train_and_gate(ws, day, record, run, reason, force, needs_approval)
        if version is None:
            return
        if not needs_approval:
            approver = (f"auto: jurisdiction {ws.config.promotion.jurisdiction or 'unset'} "
                        "requires no approval")
            if ws.config.promotion.requires_approval:
                approver = "auto: a replay asks nobody (production would pause for approval)"
            _promote(ws, day, record, run, version, reason, approver)
            return
    answer = _ask_approval(ws, day, version, record.champion_version)
    decided = approval.decision_tags(answer, ws.config.promotion.approval_timeout_seconds)
    record_approval(ws, day, version, decided)
    run.tags["approval"] = decided["approval_decision"]
    if answer is None or answer.decision == "reject":
        record.status = "rejected"
        record.message = (f"challenger v{version} not promoted: approval "
                          f"{decided['approval_decision']} by {decided['approver']}: "
                          f"{decided['approval_reason']}")
        emit(ws, "ctpipe.approval.rejected", {"version": version, "batch_date": day.isoformat(),
                                              "approver": decided["approver"]})
        if answer is None:
            raise ApprovalTimedOut(record.message)
        return
    with retraining_slot(ws):
        _promote(ws, day, record, run, version, reason, answer.approver)


def _train_and_gate(ws: Workspace, day: dt.date, record: CycleRecord, run: FlowRun,
                    reason: str, force: bool, needs_approval: bool) -> int | None:
    """The registered challenger's version when it passed the gate, else None."""
    # Checked inside the slot: five drift events for one batch train one model, not five.
    done = [] if force else find_versions_for_batch(ws, day)
    if done:
        v = done[-1]
        record.status = "skipped"
        record.message = (f"batch {day} already retrained under this config: v{v.version} "
                          f"(gate {v.tags.get('gate_decision')}, approval "
                          f"{v.tags.get('approval_decision', 'not needed')}); "
                          "run with force=true to train again")
        run.tags["retrain"] = "skipped"
        return None
    champion = load_champion(ws)
    record.champion_version = champion.info.version if champion else None
    try:
        cycle.check_training_window(ws, day)
    except NotEnoughData as exc:
        record.status = "waiting"
        record.message = f"cannot retrain yet: {exc}"
        run.tags["training"] = record.message
        return None
    get_run_logger().info("retraining %s: %s", ws.name, reason)
    record.retrain_reason = reason
    candidate = train_challenger(ws, day)
    record.retrained = True
    challenger, incumbent, finite = evaluate_models(ws, candidate, champion)
    decision = gating.decide(ws.config.gate, challenger, incumbent, predictions_finite=finite)
    record.gate_passed = decision.passed
    record.gate_reasons = decision.reasons
    record.challenger_metric = challenger.value
    record.champion_holdout_metric = incumbent.value if incumbent else None
    run.metrics.update(challenger.as_mlflow_metrics("challenger"))
    if incumbent:
        run.metrics.update(incumbent.as_mlflow_metrics("champion"))
    run.tags["gate"] = "passed" if decision.passed else "rejected"
    run.tags["gate_reasons"] = " | ".join(decision.reasons)[:5000]

    tags = cycle.lineage_tags(ws, day, candidate, challenger, decision, reason)
    if needs_approval and decision.passed:
        # Until someone decides, the version must not serve (rollback refuses it) and a
        # repeated drift event must not train another one.
        tags["approval_decision"] = "pending"
    version = register_challenger(ws, run.run_id, candidate, tags)
    record.candidate_version = version.version
    create_markdown_artifact(
        reports.gate_markdown(ws.name, day.isoformat(), decision, challenger, incumbent,
                              version.version, record.champion_version,
                              mlflow_version_link(ws.model_name, version.version),
                              run_link=run.link),
        key=artifact_key(ws, "gate"),
        description=f"Gate {'passed' if decision.passed else 'rejected'}")
    audit.record("gate.decided", ws.name, "; ".join(decision.reasons), path=ws.audit_path,
                 details={"version": version.version, "passed": decision.passed,
                          "batch_date": day.isoformat()})
    if not decision.passed:
        record.status = "rejected"
        record.message = f"challenger v{version.version} rejected: " + "; ".join(decision.reasons)
        emit(ws, "ctpipe.gate.rejected", {"version": version.version,
                                          "reasons": decision.reasons,
                                          "batch_date": day.isoformat()})
        return None
    return version.version


def _record_for(ws: Workspace, day: dt.date) -> CycleRecord:
    existing = ws.read_record(day.isoformat())
    if existing is None:
        return CycleRecord(use_case=ws.name, batch_date=day.isoformat())
    return CycleRecord(**existing)


@flow(name="ctpipe-retrain", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def retrain_flow(use_case: str = "demand", batch_date: str | None = None,
                 reason: str | None = "requested", force: bool = False) -> dict:
    """Retrain on the window as of one batch, gate, ask approval where required, promote."""
    ws = open_workspace(use_case)
    day = batch_day(ws, batch_date)
    tag_flow_run(ws)
    record = _record_for(ws, day)
    before = CycleRecord(**record.__dict__)
    with explain_outages(), mlflow_run(ws, day, "retrain") as run:
        try:
            retrain_and_decide(ws, day, record, run, reason or "requested", force=force)
        except BaseException as exc:
            if isinstance(exc, ApprovalTimedOut):
                record.status, record.message = "rejected", str(exc)
            elif record.retrained:
                record.status = "failed"
                record.message = f"retraining failed: {type(exc).__name__}: {exc}"
            raise
        finally:
            run.tags["cycle_status"] = record.status
            # Only a run that trained (or found the window too short) decides the batch's
            # record; a skipped or early-failed run leaves it as the deciding run wrote it.
            if record.retrained or record.status == "waiting":
                cycle.write_record(ws, record)
    if record.status == "skipped":
        print(record.message)
        return {**before.__dict__, "retrain": "skipped", "message": record.message}
    return record.__dict__
