"""Reconcile on start: finish, complete or abandon a promotion whose run died.

The rule is ctpipe.decisions.recovery.recover_promotion; this step loads what it needs (the
intents nobody carries out any more, the champion, the version's tags), applies the answer
through the registry's compare-and-swap, and traces it.
"""

from __future__ import annotations

import datetime as dt

from ctpipe.decisions.outcome import CycleStatus
from ctpipe.decisions.recovery import Recovery, recover_promotion, unfit_to_serve
from ctpipe.decisions.retraining import ChampionChanged
from ctpipe.lineage import Lineage
from ctpipe.records import CycleRecord, PromotionIntent
from ctpipe.steps.ports import Runtime
from ctpipe.steps.promote import promoted_decision, promotion_tags
from ctpipe.trace import Decision


def reconcile(rt: Runtime) -> list[Decision]:
    """Every interrupted promotion of this use case, resolved; the decisions made."""
    decisions = []
    for intent in rt.store.claim_orphaned_intents():
        decisions.extend(_resolve(rt, intent))
        rt.store.clear_intent(intent.id)
    return decisions


def _resolve(rt: Runtime, intent: PromotionIntent) -> list[Decision]:
    champion = rt.models.champion()
    current = champion.version if champion else None
    if intent.action == "rollback":
        return _resolve_rollback(rt, intent, current)
    lineage = rt.models.version(intent.version).lineage
    recovery = recover_promotion(version=intent.version, expected=intent.expected,
                                 current=current, problem=unfit_to_serve(lineage))
    if recovery.action != "abandon":
        try:
            rt.models.promote(intent.version, intent.expected, promotion_tags(intent))
        except ChampionChanged as exc:  # moved between our read and the swap: it wins
            recovery = Recovery("abandon", f"{exc}: promotion abandoned")
    if recovery.action == "abandon":
        rt.models.tag(intent.version, Lineage(promotion_abandoned=recovery.message))
        decision = Decision(
            kind="promotion.abandoned", use_case=rt.use_case,
            subject=f"{rt.model_name} v{intent.version}", reason=recovery.message,
            details={"model": rt.model_name, "version": intent.version,
                     "batch_date": intent.batch_date, "intent": intent.id})
        _settle_record(rt, intent, CycleStatus.CHAMPION_CHANGED if current != intent.expected
                       else CycleStatus.REJECTED, recovery.message, None)
    else:
        decision = promoted_decision(rt, intent, None, note=recovery.message)
        _settle_record(rt, intent, CycleStatus.PROMOTED,
                       f"v{intent.version} promoted to champion ({intent.reason}); "
                       f"{recovery.message}", intent.version)
        if rt.traced(decision.id):  # the run that died had published it already
            return []
    rt.publish(decision)
    return [decision]


def _resolve_rollback(rt: Runtime, intent: PromotionIntent,
                      current: int | None) -> list[Decision]:
    """A rollback that moved the alias is finished (tags, audit); one that did not is
    abandoned and audited: an operator's command, to be given again, not guessed."""
    common = {"model": rt.model_name, "from": intent.expected, "to": intent.version,
              "forced": intent.forced}
    if current == intent.version:
        rt.models.tag(intent.version, Lineage(
            rolled_back_from=str(intent.expected), rollback_reason=intent.reason,
            rolled_back_at=intent.at, rolled_back_by=intent.approver,
            rollback_forced=str(intent.forced).lower()))
        if intent.expected is not None:
            rt.models.tag(intent.expected, Lineage(demoted_at=intent.at,
                                                   demoted_by_rollback_to=str(intent.version)))
        decision = Decision(
            kind="model.rolled_back", use_case=rt.use_case,
            subject=f"{rt.model_name} v{intent.version}", reason=intent.reason,
            actor=intent.approver, id=intent.id,
            details={**common, "recovered": "the run died after moving the alias; its tags "
                     "and this record were written by the next run"},
            event="ctpipe.model.rolled_back",
            event_payload={**common, "reason": intent.reason, "operator": intent.approver})
        if rt.traced(decision.id):
            return []
    else:
        decision = Decision(
            kind="rollback.abandoned", use_case=rt.use_case,
            subject=f"{rt.model_name} v{intent.version}", actor=intent.approver,
            reason=f"the rollback to v{intent.version} died before moving the alias (champion "
                   f"is v{current or '-'}); nothing changed: give it again if still wanted",
            details=common)
    rt.publish(decision)
    return [decision]


def _settle_record(rt: Runtime, intent: PromotionIntent, status: CycleStatus, message: str,
                   champion: int | None) -> None:
    day = dt.date.fromisoformat(intent.batch_date)
    record = rt.store.read_record(day) or CycleRecord(rt.use_case, intent.batch_date)
    record.status, record.message = status, message
    record.candidate_version = intent.version
    if champion is not None:
        record.champion_version = champion
    rt.store.write_record(record)
