"""An operator moves batches out of the landing zone (`ctpipe set-aside`), durably.

For the batches the window check's breaker holds (decisions.retraining.window_check_refusal:
too many fail to move any by themselves) once someone has looked at them, or a batch known to
be wrong that passes the rules (a supplier's resend). Each batch is validated as it is now, and
its evidence and the operator's intent (who, why, the file's sha256) are written into a new
quarantine attempt folder before anything else; then the decision is audited, then the batch
moves, and a marker says it is done (a file put back later stays). A run killed anywhere in
between leaves the intent, which the next cycle or retrain (before it holds its own batch),
`ctpipe doctor --repair` or the command run again completes: audited if it is not yet, the
batch moved if it is still the file that was set aside, else a void audited saying why not.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

from ctpipe.steps.ports import Runtime
from ctpipe.steps.validate import evidence, validated_for_training
from ctpipe.store import SET_ASIDE_INTENT, PendingSetAside
from ctpipe.trace import Artifact, Decision

log = logging.getLogger(__name__)


class BatchBusy(RuntimeError):
    """A run works on the batch now: setting it aside under it would break that run."""


def set_aside(rt: Runtime, day: dt.date, *, reason: str, who: str) -> list[Decision]:
    """Validate, write the intent, audit, move; the decisions made (the set-aside, and a
    second one when the batch changed before it could move).

    Raises FileNotFoundError when the batch is not in the landing zone, BatchBusy when a run
    works on it.
    """
    with rt.store.idle(day) as free:
        if not free:
            raise BatchBusy(f"a run is working on batch {day} now; set it aside once the run "
                            "has ended")
        if day not in rt.store.batch_dates():
            raise FileNotFoundError(f"batch {day} is not in the landing zone "
                                    f"({rt.store.batch_source(day)})")
        step = validated_for_training(rt, day)
        if step is None or step.fingerprint is None:
            raise FileNotFoundError(f"batch {day} left the landing zone meanwhile")
        source = rt.store.batch_source(day)
        if step.result is None:
            verdict = f"it cannot be read: {step.read_error}"
        elif step.passed:
            verdict = "it passes the current validation rules"
        else:
            verdict = f"it fails the current validation rules: {step.result.message(source)}"
        found = evidence(rt, day, step)
        intent = {"operator": who, "reason": reason, "verdict": verdict,
                  "batch_sha256": step.fingerprint, "decision_id": uuid.uuid4().hex,
                  "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        header = f"# Set aside by {who}\n\n{reason}\n\nWhen set aside, {verdict}.\n\n"
        # The intent last: a run killed while writing the evidence leaves no intent to
        # complete, only an attempt folder with part of the evidence.
        folder = rt.store.open_attempt(day, {
            **found.files(), "summary.md": header + found.summary,
            SET_ASIDE_INTENT: json.dumps(intent, indent=2)})
        return _complete(rt, PendingSetAside(day, folder, intent))


def finish_set_asides(rt: Runtime) -> list[Decision]:
    """Every set-aside a killed run left between its intent and the move, completed. Called
    before a run holds its own batch (cycle, retrain), by `ctpipe doctor --repair` and by the
    command itself. One whose batch a run works on waits for the next call; one that cannot
    be completed now (a file system error) is logged and left for doctor to name."""
    decisions: list[Decision] = []
    for pending in rt.store.pending_set_asides():
        try:
            with rt.store.idle(pending.day) as free:
                if free:
                    decisions += _complete(rt, pending)
        except OSError as exc:
            log.warning("set-aside of batch %s not completed: %s", pending.day, exc)
    return decisions


def _complete(rt: Runtime, pending: PendingSetAside) -> list[Decision]:
    """Move the batch if it is still the file set aside, audited just before (once); else
    audit why it stays (a void)."""
    decision = _decision(rt, pending)

    def audit() -> None:
        if not rt.traced(decision.id):
            rt.publish(decision)

    why_not = rt.store.finish_set_aside(pending, before_move=audit)
    if why_not is None:
        return [decision]
    void = Decision(
        kind="batch.set_aside_void", use_case=rt.use_case, subject=f"batch {pending.day}",
        reason=f"not set aside after all: {why_not}; run ctpipe set-aside again if it is "
               "still meant", actor=pending.intent.get("operator"),
        details={"batch_date": pending.day.isoformat(), "quarantine": pending.folder,
                 "set_aside": decision.id},
        id=f"{decision.id}-void")
    if not rt.traced(void.id):
        rt.publish(void)
    rt.store.void_set_aside(pending, why_not)  # after the audit: a kill between repeats it
    return [void]


def _decision(rt: Runtime, pending: PendingSetAside) -> Decision:
    """The set-aside's decision, rebuilt from its intent alone (same id every time)."""
    intent, day = pending.intent, pending.day
    who, reason = str(intent.get("operator")), str(intent.get("reason"))
    return Decision(
        kind="batch.set_aside", use_case=rt.use_case, subject=f"batch {day}",
        reason=f"set aside by {who}: {reason} ({intent.get('verdict')})", actor=who,
        details={"batch_date": day.isoformat(), "quarantine": pending.folder,
                 "batch_sha256": intent.get("batch_sha256"),
                 "passed_validation": str(intent.get("verdict", "")).startswith(
                     "it passes")},
        artifact=Artifact("set-aside", "Batch set aside by an operator",
                          f"# Batch {day} set aside by {who}\n\n{reason}\n\nWhen set aside, "
                          f"{intent.get('verdict')}.\n\nEvidence: `{pending.folder}`."),
        event="ctpipe.batch.set_aside",
        event_payload={"batch_date": day.isoformat(), "operator": who, "reason": reason,
                       "quarantine": pending.folder},
        id=str(intent.get("decision_id")))
