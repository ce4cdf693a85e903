"""Roll ``champion`` back to an earlier version: plan it (every check), then apply it (one move).

By default the target is the version the current champion replaced (its ``previous_champion``
tag). That tag is never rewritten, so rolling back twice walks two promotions back. A version
that never served (gate rejected, approval refused) is refused unless forced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.tracking import MlflowClient

from ctpipe import audit, registry
from ctpipe.registry import CHAMPION, ModelVersionInfo

TAG_VALUE_LIMIT = 5000  # the full reason goes to the audit log; the tag keeps a readable head


class RollbackRefused(ValueError):
    """The rollback was not done; the message says why and what to do instead."""


@dataclass(frozen=True)
class RollbackPlan:
    model_name: str
    current: ModelVersionInfo  # never None: without a champion the plan is refused
    target: ModelVersionInfo
    forced: bool = False  # True only when --force overrode a refusal, not merely when passed
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def use_case(self) -> str:
        tags = self.target.tags.get("use_case") or self.current.tags.get("use_case")
        return tags or self.model_name


def never_served(info: ModelVersionInfo) -> str | None:
    """Why ``info`` must not serve without --force (it never passed the gate or approval)."""
    gate = info.tags.get("gate_decision", "")
    if gate != "passed":
        reasons = " ".join(info.tags.get("gate_reasons", "").split())
        reasons = reasons if len(reasons) <= 200 else reasons[:197] + "..."
        detail = f"gate_decision={gate or 'unset'}" + (f": {reasons}" if reasons else "")
        return f"version {info.version} of {info.name} never passed the gate ({detail})"
    approval = info.tags.get("approval_decision")
    if approval is not None and approval != "approved":
        return (f"version {info.version} of {info.name} was never approved "
                f"(approval_decision={approval or 'unset'})")
    return None


def version_span(versions: list[int]) -> str:
    """``1..4`` or ``1..2, 5``: the existing versions, for error messages."""
    runs: list[list[int]] = []
    for v in sorted(versions):
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(f"{r[0]}..{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs) or "none"


def choose_target(model_name: str, current: ModelVersionInfo | None,
                  versions: dict[int, ModelVersionInfo], to_version: int | None = None, *,
                  force: bool = False) -> RollbackPlan:
    """The plan for a registry in this state (pure: no registry access)."""
    if current is None:
        raise RollbackRefused(f"{model_name}: no champion to roll back from")
    recorded = current.tags.get("previous_champion", "").strip()
    existing = version_span(list(versions))
    if to_version is None:
        if not recorded.isdigit():
            raise RollbackRefused(
                f"{model_name}: champion v{current.version} records no previous champion; "
                f"name the version to serve with --to (versions: {existing})")
        number = int(recorded)
        if number not in versions:
            raise RollbackRefused(
                f"{model_name}: the previous champion v{number} (recorded on champion "
                f"v{current.version}) no longer exists; name another with --to "
                f"(versions: {existing})")
    else:
        number = to_version
        if number not in versions:
            raise RollbackRefused(f"version {number} of {model_name} does not exist; "
                                  f"versions: {existing}")
    if number == current.version:
        raise RollbackRefused(f"version {number} of {model_name} is already champion")
    target = versions[number]
    notes: list[str] = []
    refusal = never_served(target)
    if refusal and not force:
        raise RollbackRefused(f"{refusal}; use --force to serve it anyway")
    if refusal:
        notes.append(f"forced: {refusal}")
    if to_version is not None and recorded.isdigit() and int(recorded) != number:
        notes.append(f"skips v{recorded}, the previous champion recorded on v{current.version}")
    notes.extend(_metric_note(current, target))
    return RollbackPlan(model_name, current, target, forced=bool(refusal), notes=tuple(notes))


def _metric_note(current: ModelVersionInfo, target: ModelVersionInfo) -> list[str]:
    name = target.tags.get("metric_name") or current.tags.get("metric_name")
    before, after = current.metric(), target.metric()
    if not name or before is None or after is None:
        return []
    return [f"holdout {name}: v{current.version} {before:.4f} -> v{target.version} "
            f"{after:.4f} (each on its own holdout window)"]


def plan_rollback(model_name: str, to_version: int | None = None, *,
                  force: bool = False) -> RollbackPlan:
    """Read the registry and decide; raises RollbackRefused and changes nothing."""
    current = registry.get_alias(model_name, CHAMPION)
    if current is None:
        raise RollbackRefused(f"{model_name}: no champion to roll back from")
    versions = {v.version: v for v in registry.list_versions(model_name)}
    return choose_target(model_name, current, versions, to_version, force=force)


def apply_rollback(plan: RollbackPlan, reason: str, *, operator: str,
                   audit_path: Path | None = None) -> dict:
    """Move ``champion`` to the plan's target in one alias move, tag both versions, audit it.

    If tagging fails, the alias moves back and the tags are restored before the error
    propagates: either the whole rollback happened or none of it.
    """
    why = reason.strip()
    if not why:
        raise RollbackRefused("a rollback needs a reason (--reason TEXT)")
    model, old, new = plan.model_name, plan.current, plan.target
    c = registry.client()
    live = registry.get_alias(model, CHAMPION)
    if live is None or live.version != old.version:
        now = f"v{live.version}" if live else "nothing"
        raise RollbackRefused(f"{model}: champion is {now}, not v{old.version} as planned; "
                              "plan the rollback again")
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    changes = [
        (new, {"rolled_back_from": str(old.version), "rollback_reason": why[:TAG_VALUE_LIMIT],
               "rolled_back_at": at, "rolled_back_by": operator,
               "rollback_forced": str(plan.forced).lower()}),
        (old, {"demoted_at": at, "demoted_by_rollback_to": str(new.version)}),
    ]
    c.set_registered_model_alias(model, CHAMPION, str(new.version))
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
    audit.record("model.rolled_back", plan.use_case, why, who=operator, path=audit_path,
                 details={"model": model, "from": old.version, "to": new.version,
                          "forced": plan.forced, "notes": list(plan.notes)})
    return summary


def _restore_tags(c: MlflowClient, info: ModelVersionInfo, tags: dict[str, str]) -> None:
    """Put back the values ``info`` had before (it may carry an earlier rollback's tags)."""
    for key in tags:
        try:
            if key in info.tags:
                c.set_model_version_tag(info.name, str(info.version), key, info.tags[key])
            else:
                c.delete_model_version_tag(info.name, str(info.version), key)
        except Exception:  # best effort: the error that stopped the rollback is the one to see
            continue
