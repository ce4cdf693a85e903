"""Roll ``champion`` back: read the registry, let the rule choose (ctpipe.decisions.rollback),
then move the alias in one compare-and-swap step and hand the decision to the trace sink.

The target's files are verified against their sha256 first (ctpipe.integrity), and the
check-and-move runs under the model's lock (ctpipe.locks), announced to a promotion in flight
so that the rollback wins over it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from mlflow.tracking import MlflowClient

from ctpipe import locks, registry
from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.decisions.rollback import (
    RollbackPlan,
    RollbackRefused,
    choose_target,
    rollback_hold,
    version_span,
)
from ctpipe.faults import pause_point
from ctpipe.integrity import IntegrityError
from ctpipe.lineage import TAG_VALUE_LIMIT, Lineage, ModelVersionInfo
from ctpipe.links import mlflow_version_link
from ctpipe.records import PromotionIntent
from ctpipe.registry import CHAMPION
from ctpipe.trace import Artifact, Decision

__all__ = ["TAG_VALUE_LIMIT", "RollbackPlan", "RollbackRefused", "TargetTampered",
           "apply_rollback", "plan_rollback", "run_rollback", "version_span"]


class TargetTampered(RollbackRefused, IntegrityError):
    """The target's stored files changed since it was registered: it must not serve.

    Both a refusal (the CLI and flows report it as one) and an IntegrityError.
    """


def plan_rollback(model_name: str, to_version: int | None = None, *,
                  force: bool = False) -> RollbackPlan:
    """Read the registry and decide; raises RollbackRefused and changes nothing."""
    current = registry.get_alias(model_name, CHAMPION)
    if current is None:
        raise RollbackRefused(f"{model_name}: no champion to roll back from")
    versions = {v.version: v for v in registry.list_versions(model_name)}
    return choose_target(model_name, current, versions, to_version, force=force)


def apply_rollback(plan: RollbackPlan, reason: str, *, operator: str,
                   publish: Callable[[Decision], None], journal: Journal | None = None) -> dict:
    """Move ``champion`` to the plan's target in one alias move, tag both versions, publish.

    Refuses (TargetTampered) a target whose stored files no longer match their sha256, even
    with --force: force overrides the gate, never integrity. The check that the champion is
    still the planned one and the move happen under the model's lock; a promotion waiting to
    move the alias meanwhile stands down. If tagging fails, the alias moves back and the tags
    are restored before the error propagates: either the whole rollback happened or none of it.
    With a ``journal`` (the use case's store), the intent is recorded before the move and
    cleared once the rollback is traced: a run killed in between is finished by the next run
    (ctpipe.steps.recovery).
    """
    why = reason.strip()
    if not why:
        raise RollbackRefused("a rollback needs a reason (--reason TEXT)")
    model, old, new = plan.model_name, plan.current, plan.target
    try:
        # Before the locks: hashing downloads the model, and nobody should wait for that.
        registry.verify_version(model, new.version)
    except IntegrityError as exc:
        raise TargetTampered(f"{exc}; name another version with --to") from exc
    c = registry.client()
    with locks.rollback_announced(model), \
            locks.champion_lock(model, f"rollback v{old.version} -> v{new.version}"):
        live = registry.get_alias(model, CHAMPION)
        if live is None or live.version != old.version:
            now = f"v{live.version}" if live else "nothing"
            raise RollbackRefused(f"{model}: champion is {now}, not v{old.version} as planned; "
                                  "plan the rollback again")
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        changes = [
            (new, Lineage(rolled_back_from=str(old.version), rollback_reason=why,
                          rolled_back_at=at, rolled_back_by=operator,
                          rollback_forced=str(plan.forced).lower(),
                          # "" clears a hold an earlier rollback left on this version.
                          held_since_rollback=rollback_hold(old.lineage) or "")),
            (old, Lineage(demoted_at=at, demoted_by_rollback_to=str(new.version))),
        ]
        pause_point("rollback.before-move")
        intent = PromotionIntent(model, new.version, old.version, "", why, operator,
                                 action="rollback", forced=plan.forced, at=at)
        if journal is not None:
            journal.record_intent(intent)
        c.set_registered_model_alias(model, CHAMPION, str(new.version))
        pause_point("rollback.after-move")
        try:
            for info, tags in changes:
                registry.tag_version(model, info.version, tags)
        except BaseException:
            c.set_registered_model_alias(model, CHAMPION, str(old.version))
            for info, tags in changes:
                _restore_tags(c, info, tags)
            raise
    summary = {"model": model, "use_case": plan.use_case, "from_version": old.version,
               "to_version": new.version, "forced": plan.forced, "reason": why,
               "operator": operator, "at": at, "notes": list(plan.notes)}
    publish(rollback_decision(plan, summary, decision_id=intent.id))
    if journal is not None:
        journal.clear_intent(intent.id)
    return summary


def run_rollback(model_name: str, reason: str, *, operator: str,
                 publish: Callable[[Decision], None], to_version: int | None = None,
                 force: bool = False, journal: Journal | None = None,
                 expected_current: int | None = None) -> Outcome:
    """Plan, apply, and say what happened: the rollback flow's, the CLI's and monitoring's call.

    ``expected_current``: roll back only from this champion (monitoring judged that one; a
    promotion since then is not what the evidence was about).
    """
    decisions: list[Decision] = []

    def keep(decision: Decision) -> None:
        decisions.append(decision)
        publish(decision)

    plan = plan_rollback(model_name, to_version, force=force)
    if expected_current is not None and plan.current.version != expected_current:
        raise RollbackRefused(f"{model_name}: champion is v{plan.current.version}, not "
                              f"v{expected_current} as judged; judge it again")
    summary = apply_rollback(plan, reason, operator=operator, publish=keep, journal=journal)
    return Outcome(CycleStatus.ROLLED_BACK, f"{model_name}: champion v{summary['from_version']}"
                   f" -> v{summary['to_version']}", tuple(decisions), result=summary)


class Journal(Protocol):
    """Where the intent of an alias move is recorded (ctpipe.store.Store does this)."""

    def record_intent(self, intent: PromotionIntent) -> None: ...
    def clear_intent(self, intent_id: str) -> None: ...


def rollback_decision(plan: RollbackPlan, summary: dict,
                      decision_id: str | None = None) -> Decision:
    model, old, new = plan.model_name, summary["from_version"], summary["to_version"]
    link = mlflow_version_link(model, new)
    forced = " (forced: this version never passed the gate)" if plan.forced else ""
    return Decision(
        **({"id": decision_id} if decision_id else {}),
        kind="model.rolled_back", use_case=plan.use_case, subject=f"{model} v{new}",
        reason=summary["reason"], actor=summary["operator"],
        details={"model": model, "from": old, "to": new, "forced": plan.forced,
                 "notes": list(plan.notes)},
        artifact=Artifact("rollback", f"Rolled back to v{new}", (
            f"# Rolled back {model}\n\n- champion: v{old} → **v{new}**{forced}\n"
            f"- by: {summary['operator']}\n- reason: {summary['reason']}\n"
            f"- model version: [{model} v{new}]({link})")),
        event="ctpipe.model.rolled_back", event_payload=summary,
        notify=(f"{model} rolled back: champion v{old} → v{new} by {summary['operator']}: "
                f"{summary['reason']}"),
        notify_details={**summary, "model_link": link})


def _restore_tags(c: MlflowClient, info: ModelVersionInfo, tags: Lineage) -> None:
    """Put back the values ``info`` had before (it may carry an earlier rollback's tags)."""
    for key in tags.to_tags():
        try:
            if key in info.tags:
                c.set_model_version_tag(info.name, str(info.version), key, info.tags[key])
            else:
                c.delete_model_version_tag(info.name, str(info.version), key)
        except Exception:  # best effort: the error that stopped the rollback is the one to see
            continue
