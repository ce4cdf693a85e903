"""Promote a gated challenger: record the intent, move the alias by compare-and-swap, trace it."""

from __future__ import annotations

import datetime as dt

from ctpipe.decisions.outcome import CycleStatus
from ctpipe.decisions.retraining import ChampionChanged
from ctpipe.faults import pause_point
from ctpipe.lineage import Lineage
from ctpipe.links import mlflow_version_link
from ctpipe.records import PromotionIntent
from ctpipe.steps.attempt import Attempt
from ctpipe.steps.ports import Runtime, TrackingRun
from ctpipe.trace import Artifact, Decision


def promote(attempt: Attempt, day: dt.date, version: int, reason: str, approver: str) -> None:
    rt, record = attempt.rt, attempt.record
    intent = PromotionIntent(rt.model_name, version, record.champion_version, day.isoformat(),
                             reason, approver)
    # Recorded before the alias moves: a run that dies from here on is reconciled by the next
    # (ctpipe.decisions.recovery); cleared once the move is traced, or refused.
    rt.store.record_intent(intent)
    try:
        # Only the registry move is retried: promote is safe to repeat, the decision that
        # follows is published once.
        rt.step("promote", rt.models.promote, version, intent.expected, promotion_tags(intent),
                remote=True)
    except ChampionChanged as exc:
        rt.store.clear_intent(intent.id)
        attempt.conclude(CycleStatus.CHAMPION_CHANGED, str(exc))
        attempt.decide(Decision(
            kind="promotion.refused", use_case=rt.use_case,
            subject=f"{rt.model_name} v{version}", reason=str(exc),
            details={"model": rt.model_name, "version": version,
                     "batch_date": day.isoformat()},
            event="ctpipe.gate.rejected",
            event_payload={"version": version, "reasons": [str(exc)],
                           "batch_date": day.isoformat()}))
        return
    pause_point("promote.before-trace")
    attempt.conclude(CycleStatus.PROMOTED, f"v{version} promoted to champion ({reason})")
    record.champion_version = version
    attempt.decide(promoted_decision(rt, intent, attempt.run))
    rt.store.clear_intent(intent.id)


def promotion_tags(intent: PromotionIntent) -> Lineage:
    return Lineage(approver=intent.approver, previous_champion=str(intent.expected or ""),
                   promoted_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def promoted_decision(rt: Runtime, intent: PromotionIntent, run: TrackingRun | None,
                      note: str = "") -> Decision:
    """The promotion's trace; its id is the intent's, so a recovering run can tell whether
    the run that died had published it."""
    version, previous = intent.version, intent.expected
    link = mlflow_version_link(rt.model_name, version)
    details = {"model": rt.model_name, "version": version, "previous": previous,
               "batch_date": intent.batch_date, "approver": intent.approver,
               **({"recovered": note} if note else {})}
    run_line = f"- MLflow run: [{run.run_id}]({run.link})\n" if run else ""
    return Decision(
        kind="model.promoted", use_case=rt.use_case, subject=f"{rt.model_name} v{version}",
        reason=intent.reason, actor=intent.approver, details=details, id=intent.id,
        artifact=Artifact("promotion", f"Promoted v{version}", (
            f"# Promoted: {rt.model_name} v{version}\n\n"
            f"- champion: v{previous or '-'} → **v{version}**\n- batch: {intent.batch_date}\n"
            f"- why: {intent.reason}\n- approver: {intent.approver}\n"
            + (f"- recovered: {note}\n" if note else "") +
            f"- model version: [{rt.model_name} v{version}]({link})\n{run_line}\n"
            f"Roll back with `ctpipe rollback {rt.use_case} --reason TEXT`.")),
        event="ctpipe.model.promoted",
        event_payload={"model": rt.model_name, "version": version, "previous": previous,
                       "batch_date": intent.batch_date},
        notify=None if rt.replay else (f"{rt.model_name} v{version} promoted to champion "
                                       f"(was v{previous or '-'})"),
        notify_details={**details, "why": intent.reason, "model_link": link,
                        "mlflow_run": run.link if run else None})
