"""Retrain → evaluate → gate → (approval) → promote, as one use case's retraining.

Train, gate and register run inside the use case's retraining slot; approval is asked outside
it (a human may take a day, the use case's other retrains must not wait for one); promotion
takes the slot again and moves the alias only if the champion is still the one the challenger
beat. Every branch ends in a status set from a rule in ctpipe.decisions.
"""

from __future__ import annotations

import datetime as dt

from ctpipe import reports
from ctpipe.decisions.change import learns_the_same_change
from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.decisions.recovery import resumable
from ctpipe.decisions.retraining import (
    ApprovalVerdict,
    PriorVersion,
    after_gate,
    automatic_approver,
    before_training,
    judge_approval,
    needs_approval,
    writes_record,
)
from ctpipe.decisions.rollback import rollback_hold
from ctpipe.lineage import Lineage, ModelVersionInfo
from ctpipe.links import mlflow_version_link
from ctpipe.records import CycleRecord
from ctpipe.steps import train, validate
from ctpipe.steps.attempt import Attempt
from ctpipe.steps.drift import drift_onset, drift_persists
from ctpipe.steps.labels_set_aside import audit_labels_set_aside
from ctpipe.steps.ports import ApprovalRequest, ApprovalRoute, Runtime
from ctpipe.steps.promote import promote
from ctpipe.steps.recovery import reconcile
from ctpipe.steps.set_aside import finish_set_asides
from ctpipe.trace import Artifact, Decision
from ctpipe.training import NotEnoughData


def retrain_and_decide(attempt: Attempt, day: dt.date, reason: str, *,
                       force: bool = False) -> None:
    """Concludes the attempt's record with what happened to this batch's challenger."""
    rt = attempt.rt
    cfg = rt.config
    with rt.slot():
        gated = _train_and_gate(attempt, day, reason, force=force)
        if gated is None:
            return
        version, hold = gated
        if not needs_approval(requires_approval=cfg.promotion.requires_approval,
                              replay=rt.replay, hold=hold):
            promote(attempt, day, version, reason, automatic_approver(
                jurisdiction=cfg.promotion.jurisdiction,
                requires_approval=cfg.promotion.requires_approval))
            return
    # Visible (`ctpipe status`) while a human decides.
    rt.store.write_record(attempt.record)
    verdict = _ask(attempt, day, version, hold)
    if not verdict.verdict.go_on:
        attempt.conclude(verdict.verdict.status, verdict.verdict.message)
        return
    with rt.slot():
        promote(attempt, day, version, reason, verdict.approver)


def _train_and_gate(attempt: Attempt, day: dt.date, reason: str, *,
                    force: bool) -> tuple[int, str | None] | None:
    """The registered challenger's version when it passed the gate, with why its promotion
    waits for a human beyond the jurisdiction (decisions.rollback.rollback_hold); else None."""
    rt, record, run = attempt.rt, attempt.record, attempt.run
    # Checked inside the slot: five drift events for one batch train one model, not five.
    done = [] if force else rt.step("find-versions-for-batch", rt.models.versions_for_batch,
                                    day.isoformat(), rt.config.config_hash, remote=True)
    resumed = _resumable(attempt, done)
    if resumed is not None:
        # Registered when no approval was needed; an operator may have rolled back since.
        current = rt.models.champion()
        hold = rollback_hold(current.lineage if current else None)
        if needs_approval(requires_approval=False, replay=rt.replay, hold=hold):
            # As a fresh challenger would be: never served, never rolled to, while it waits.
            rt.step("record-pending-approval", rt.models.tag, resumed,
                    Lineage(approval_decision="pending"), remote=True)
            after = after_gate(passed=True, reasons=[], version=resumed, needs_approval=True,
                               hold=hold)
            attempt.conclude(after.status, after.message)
        return resumed, hold
    champion = None
    if not done:
        champion = rt.step("load-champion", rt.models.load_champion, remote=True)
        record.champion_version = champion.info.version if champion else None
        if not _window_checked(attempt, day):
            return None
    hold = rollback_hold(champion.info.lineage if champion else None)
    ask = needs_approval(requires_approval=rt.config.promotion.requires_approval,
                         replay=rt.replay, hold=hold)
    verdict = before_training(
        day=day, force=force,
        trained=[PriorVersion(v.version, v.lineage) for v in done],
        window_problem=None if done else _with_set_aside(train.window_problem(rt, day),
                                                         record.training_set_aside))
    if not verdict.go_on:
        attempt.conclude(verdict.status, verdict.message)
        if verdict.status is CycleStatus.SKIPPED:
            run.tags["retrain"] = "skipped"
        else:
            run.tags["training"] = verdict.message
        return None
    record.retrain_reason = reason
    # A challenger after drift learns the new regime from its first batches: they weigh more.
    onset = dt.date.fromisoformat(record.change_onset) if record.change_onset else \
        drift_onset(rt, day, champion.info.lineage.seen_until) if champion else None
    try:
        candidate = rt.step("train-challenger", train.train_candidate, rt, day, rt.progress,
                            onset, onset is not None
                            and drift_persists(rt, day, record.drifted_features),
                            verified=True)
    except NotEnoughData as exc:  # rows the window's label count included but training drops
        verdict = before_training(day=day, force=force, trained=[], window_problem=str(exc))
        attempt.conclude(verdict.status, verdict.message)
        run.tags["training"] = verdict.message
        return None
    record.retrained = True
    gated = rt.step("evaluate-models", train.gate_challenger, rt.config, candidate.model,
                    champion.model if champion else None, candidate.holdout,
                    follows_up=learns_the_same_change(
                        champion.info.lineage if champion else None, onset))
    challenger, incumbent, gate = gated.challenger, gated.champion, gated.decision
    candidate.model.calibration = gated.calibration  # registered with the version
    record.gate_passed = gate.passed
    record.gate_reasons = gate.reasons
    record.gate_unjudged = gate.unjudged
    record.challenger_metric = challenger.value
    record.champion_holdout_metric = incumbent.value if incumbent else None
    run.metrics.update(challenger.as_mlflow_metrics("challenger"))
    if incumbent:
        run.metrics.update(incumbent.as_mlflow_metrics("champion"))
    run.tags["gate"] = gate.verdict
    run.tags["gate_reasons"] = " | ".join(gate.reasons)[:5000]

    tags = train.lineage(rt, day, candidate, challenger, gate, reason,
                         record.champion_version)
    if ask and gate.passed:
        # Until someone decides, the version must not serve (rollback refuses it) and a
        # repeated drift event must not train another one.
        tags = tags.merged(Lineage(approval_decision="pending"))
    version = rt.step("register-challenger", rt.models.register, run.run_id, candidate.model,
                      candidate.profile, candidate.outputs, tags, candidate.holdout,
                      remote=True).version
    record.candidate_version = version
    after = after_gate(passed=gate.passed, reasons=gate.reasons, version=version,
                       needs_approval=ask, hold=hold, unjudged=gate.unjudged)
    link = mlflow_version_link(rt.model_name, version)
    attempt.decide(Decision(
        kind="gate.decided", use_case=rt.use_case, subject=f"{rt.model_name} v{version}",
        reason="; ".join(gate.reasons),
        details={"version": version, "passed": gate.passed, "verdict": gate.verdict,
                 "batch_date": day.isoformat()},
        artifact=Artifact("gate", f"Gate {gate.verdict}",
                          reports.gate_markdown(rt.use_case, day.isoformat(), gate, challenger,
                                                incumbent, version, record.champion_version,
                                                link, run_link=run.link)),
        event=None if gate.passed else "ctpipe.gate.rejected",
        event_payload={"version": version, "reasons": gate.reasons,
                       "batch_date": day.isoformat()}))
    if after.status is CycleStatus.REJECTED:
        attempt.conclude(after.status, after.message)
        return None
    if after.status is CycleStatus.PENDING_APPROVAL:
        attempt.conclude(after.status, after.message)
    return version, hold


def _with_set_aside(problem: str | None, set_aside: list[str]) -> str | None:
    """A window too short says so when this run just quarantined some of it."""
    if problem is None or not set_aside:
        return problem
    n = len(set_aside)
    return (f"{problem} ({n} batch{'es' if n != 1 else ''} of it failed validation just now: "
            "see training_set_aside)")


def _window_checked(attempt: Attempt, day: dt.date) -> bool:
    """Validate the training window's unchecked batches (steps.validate.check_training_window):
    each one quarantined is traced and listed in the record; False, with the run concluded,
    when too many fail to move any."""
    rt, record = attempt.rt, attempt.record

    def set_aside(decision: Decision) -> None:
        record.training_set_aside.append(decision.reason)
        attempt.window_findings = True
        attempt.decide(decision)

    refusal = rt.step("validate-training-window", validate.check_training_window, rt, day,
                      set_aside)
    if refusal is None:
        return True
    attempt.window_findings = True
    attempt.conclude(CycleStatus.FAILED, refusal)
    attempt.run.tags["training"] = refusal[:5000]
    attempt.decide(Decision(kind="retrain.refused", use_case=rt.use_case,
                            subject=f"batch {day}", reason=refusal,
                            details={"batch_date": day.isoformat()}))
    return False


def _resumable(attempt: Attempt, done: list[ModelVersionInfo]) -> int | None:
    """The version of this batch a crash left gated but unpromoted, to promote now."""
    if not done:
        return None
    rt, record = attempt.rt, attempt.record
    latest = done[-1]
    champion = rt.models.champion()
    current = champion.version if champion else None
    if not resumable(latest.lineage, is_champion=current == latest.version, current=current):
        return None
    record.champion_version = current
    record.candidate_version = latest.version
    record.gate_passed = True
    record.retrain_reason = latest.lineage.retrain_reason
    attempt.run.tags["retrain"] = "resumed"
    return latest.version


def _ask(attempt: Attempt, day: dt.date, version: int, hold: str | None) -> ApprovalVerdict:
    rt, cfg = attempt.rt, attempt.rt.config
    if rt.ask_approval is None:
        raise RuntimeError(f"{rt.use_case}: promotion needs approval and nobody can be asked")
    request = ApprovalRequest(rt.use_case, rt.model_name, version,
                              attempt.record.champion_version, cfg.promotion.jurisdiction,
                              cfg.promotion.approval_timeout_seconds, hold)
    attempt.decide(_approval_requested(request, rt.approval_route()))
    answer = rt.ask_approval(request)
    verdict = judge_approval(answer, version=version, now=dt.datetime.now(dt.UTC),
                             timeout_seconds=cfg.promotion.approval_timeout_seconds)
    rt.step("record-approval", rt.models.tag, version, verdict.lineage, remote=True)
    attempt.run.tags["approval"] = verdict.lineage.approval_decision or ""
    tags = verdict.lineage
    attempt.decide(Decision(
        kind="approval.decided", use_case=rt.use_case, subject=f"{rt.model_name} v{version}",
        reason=tags.approval_reason or "", actor=tags.approver,
        details={"model": rt.model_name, "version": version,
                 "decision": tags.approval_decision, "batch_date": day.isoformat()},
        event=None if verdict.verdict.go_on else "ctpipe.approval.rejected",
        event_payload={"version": version, "batch_date": day.isoformat(),
                       "approver": tags.approver}))
    return verdict


def _approval_requested(req: ApprovalRequest, route: ApprovalRoute) -> Decision:
    link = mlflow_version_link(req.model_name, req.version)
    answer = "--approver NAME --reason TEXT"
    why = req.hold or f"jurisdiction {req.jurisdiction} requires a human decision"
    return Decision(
        kind="approval.requested", use_case=req.use_case,
        subject=f"{req.model_name} v{req.version}",
        reason=why,
        details={"version": req.version, "flow_run_id": route.run_id},
        artifact=Artifact("approval", f"Approval needed for v{req.version}", (
            f"# Approval needed: {req.model_name} v{req.version}\n\n"
            f"A human decides before v{req.version} replaces "
            f"v{req.champion_version or '-'} as champion: {why}.\n\n"
            f"- Resume this run in the UI and fill in the form, or from a shell:\n"
            f"  `ctpipe approve {route.run_id} {answer}` /"
            f" `ctpipe reject {route.run_id} {answer}`\n"
            f"- No decision within {req.timeout_seconds} s rejects the promotion.\n"
            f"- Model version: [{req.model_name} v{req.version}]({link})")),
        notify=f"{req.model_name} v{req.version} waits for approval (flow run {route.run_id})",
        notify_details={"model": req.model_name, "version": req.version,
                        "flow_run_id": route.run_id, "link": route.link,
                        "timeout_seconds": req.timeout_seconds})


def run_retrain(rt: Runtime, day: dt.date, reason: str, *, force: bool = False) -> Outcome:
    """A retraining on its own (the drift-triggered deployment)."""
    finish_set_asides(rt)  # before the batch is held, as the cycle does
    with rt.store.working_on(day):
        outcome = _run_retrain(rt, day, reason, force)
    audit_labels_set_aside(rt)  # those its training window's read set aside
    return outcome


def _run_retrain(rt: Runtime, day: dt.date, reason: str, force: bool) -> Outcome:
    existing = rt.store.read_record(day)
    record = existing.next_attempt() if existing else CycleRecord(use_case=rt.use_case,
                                                                  batch_date=day.isoformat())
    record.retrained = False  # set again only if this run trains
    record.forced = force
    record.training_set_aside = []
    attempt = Attempt(rt, record)
    with rt.guard():
        attempt.decisions.extend(reconcile(rt))
    with rt.guard(), rt.tracking(day, "retrain") as run:
        attempt.run = run
        try:
            retrain_and_decide(attempt, day, reason, force=force)
        except BaseException as exc:
            if record.retrained or attempt.window_findings:
                attempt.conclude(CycleStatus.FAILED,
                                 f"retraining failed: {type(exc).__name__}: {exc}")
            raise
        finally:
            run.tags["cycle_status"] = str(record.status)
            if writes_record(trained=record.retrained, status=record.status,
                             window_findings=attempt.window_findings):
                rt.store.write_record(record)
        if attempt.outcome().failed:
            run.status = "FAILED"
    outcome = attempt.outcome()
    if record.status is CycleStatus.SKIPPED:
        before = existing.to_dict() if existing else {}
        return Outcome(outcome.status, outcome.message, outcome.decisions,
                       result={**before, "retrain": "skipped", "message": record.message})
    return outcome
