"""The daily cycle for one batch: validate → drift → (retrain → gate → approve → promote).

Each step loads its inputs through the runtime's ports, then asks ctpipe.decisions; the cycle
record and the outcome carry what was decided. flows/cycle.py runs this inside Prefect.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.decisions.retraining import after_drift, refuse_processed
from ctpipe.records import CycleRecord
from ctpipe.steps import drift, validate
from ctpipe.steps.attempt import Attempt
from ctpipe.steps.labels_set_aside import audit_labels_set_aside
from ctpipe.steps.ports import Runtime
from ctpipe.steps.recovery import reconcile
from ctpipe.steps.retrain import retrain_and_decide
from ctpipe.steps.set_aside import finish_set_asides
from ctpipe.trace import Decision


def run_cycle(rt: Runtime, day: dt.date, *, explicit_date: bool,
              retrain_inline: bool = True, force: bool = False) -> Outcome:
    """Run the cycle on ``day``'s batch; the record is written whatever happens."""
    # Before the batch is held: a set-aside of this very batch, killed before its move, must
    # not be validated and trained on by its own cycle.
    finish_set_asides(rt)
    audit_labels_set_aside(rt)  # any an earlier run set aside and did not live to audit
    previous = rt.store.read_record(day)
    refusal = refuse_processed(previous.status if previous else None,
                               explicit_date=explicit_date, day=day,
                               where=str(Path(rt.store.batch_source(day)).parent),
                               landed=day in rt.store.batch_dates())
    if not refusal.go_on:  # nothing is written: the batch's record stays as it was
        return Outcome(refusal.status, refusal.message)
    with rt.store.working_on(day):
        outcome = _run_cycle(rt, day, retrain_inline, force)
    audit_labels_set_aside(rt)  # those this run's labelled reads set aside
    return outcome


def _run_cycle(rt: Runtime, day: dt.date, retrain_inline: bool, force: bool) -> Outcome:
    attempt = Attempt(rt, CycleRecord(use_case=rt.use_case, batch_date=day.isoformat(),
                                      forced=force))
    record = attempt.record
    try:
        with rt.guard():
            attempt.decisions.extend(reconcile(rt))
            rt.store.write_record(record)  # "running": a run that dies leaves its batch open
        with rt.guard(), rt.tracking(day, "cycle") as run:
            attempt.run = run
            record.mlflow_run_id = run.run_id
            try:
                _cycle(attempt, day, retrain_inline, force)
            finally:
                if not record.status.final and record.status is not CycleStatus.FAILED:
                    # An error before the run decided (or while it waited for approval); a
                    # run that failed by a rule (too much of the window failing) keeps its
                    # message.
                    attempt.conclude(CycleStatus.FAILED, "")
                run.tags["cycle_status"] = str(record.status)
                if attempt.outcome().failed:
                    run.status = "FAILED"
    except BaseException as exc:
        if not record.status.final and not record.message:  # e.g. MLflow down at the start
            attempt.conclude(CycleStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if not attempt.saved_as_is():  # a retrain started by its events may have written since
            rt.store.write_record(record)
    return attempt.outcome()


def _cycle(attempt: Attempt, day: dt.date, retrain_inline: bool, force: bool) -> None:
    rt, record, run = attempt.rt, attempt.record, attempt.run
    checked = validate.load_and_validate(rt, day)
    run.tags["validation"] = "passed" if checked.passed else "failed"
    if not checked.passed:
        decision = rt.step("quarantine-batch", validate.quarantine, rt, day, checked)
        record.validation_failures = checked.failures()
        attempt.conclude(CycleStatus.QUARANTINED, decision.reason)
        attempt.decide(decision)
        return
    record.validation_passed = True
    record.validation_warnings = [w.line() for w in checked.result.warnings]
    checked.remember_if_passed(rt, day)
    attempt.decide(validate.passed_decision(rt, day, checked.result))

    # Loaded once: validation already loaded it when it compared categories with training.
    champion = checked.champion if checked.champion_loaded \
        else rt.step("load-champion", rt.models.load_champion, remote=True)
    record.champion_version = champion.info.version if champion else None
    verdict = rt.step("detect-drift", drift.assess_drift, rt, day, checked.batch, champion,
                      force=force)
    record.drift_detected = verdict.drift_detected
    record.drift_onset = verdict.onset.isoformat() if verdict.onset else None
    record.change_onset = verdict.change_onset.isoformat() if verdict.change_onset else None
    # A dict whenever there is a champion: judged, or why it could not judge ("judged": false).
    record.performance_drift = verdict.performance.to_dict() if verdict.performance else None
    record.output_drift = [o.to_record() for o in verdict.outputs]
    if verdict.report is not None:
        record.drift_share = verdict.report.drift_share
        record.drifted_features = verdict.report.drifted_features
        run.metrics["drift_share"] = verdict.report.drift_share
    run.tags["drift"] = "detected" if verdict.drift_detected else "none"
    if champion is not None:
        drift.attach_drift_plot(run, champion, checked.batch, verdict)
    drift_decision = drift.drift_decision(rt, day, verdict, run, retrain_inline=retrain_inline,
                                          force=force)
    record.retrain_reason = verdict.retrain_reason
    next_step = after_drift(retrain_reason=verdict.retrain_reason, retrain_inline=retrain_inline,
                            cooling=verdict.cooling, performance=verdict.performance,
                            triggers=verdict.triggers, labels_judged=verdict.labels_judged)
    if not next_step.go_on:
        attempt.conclude(next_step.status, next_step.message)
        # Stored before the events go out: the retrain they start reads this record (the
        # change it learns) and must write after it, never under it.
        attempt.save()
        attempt.decide(drift_decision)
        if next_step.status is CycleStatus.RETRAIN_REQUESTED and not verdict.drift_detected:
            # No champion yet, or the schedule is due: the drift event did not ask for it.
            attempt.decide(Decision(
                kind="retrain.requested", use_case=rt.use_case, subject=f"batch {day}",
                reason=verdict.retrain_reason,
                details={"batch_date": day.isoformat()},
                event="ctpipe.retrain.requested",
                event_labels={drift.RETRAIN_LABEL: "by-event"},
                event_payload={"batch_date": day.isoformat(),
                               "reason": verdict.retrain_reason, "force": force}))
        return
    attempt.decide(drift_decision)
    retrain_and_decide(attempt, day, verdict.retrain_reason, force=force)
