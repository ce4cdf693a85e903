"""Which version a rollback serves, or why it is refused: pure, over the registry's state.

By default the target is the version the current champion replaced (its ``previous_champion``
tag). That tag is never rewritten, so rolling back twice walks two promotions back. A version
that never served (gate rejected, approval refused or pending) is refused unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctpipe.lineage import Lineage, ModelVersionInfo

# Who the monitor's automatic rollbacks are recorded as (rolled_back_by).
AUTOMATIC_ROLLBACK_OPERATOR = "ctpipe-monitor"


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
        return self.target.lineage.use_case or self.current.lineage.use_case or self.model_name


def never_served(info: ModelVersionInfo) -> str | None:
    """Why ``info`` must not serve without --force (it never passed the gate or approval)."""
    tags = info.lineage
    if not tags.gate_passed:
        reasons = " ".join((tags.gate_reasons or "").split())
        reasons = reasons if len(reasons) <= 200 else reasons[:197] + "..."
        detail = f"gate_decision={tags.gate_decision or 'unset'}" + \
            (f": {reasons}" if reasons else "")
        return f"version {info.version} of {info.name} never passed the gate ({detail})"
    if tags.approval_missing:
        return (f"version {info.version} of {info.name} was never approved "
                f"(approval_decision={tags.approval_decision or 'unset'})")
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
    """The plan for a registry in this state; raises RollbackRefused."""
    if current is None:
        raise RollbackRefused(f"{model_name}: no champion to roll back from")
    recorded = current.lineage.previous
    existing = version_span(list(versions))
    if to_version is None:
        if recorded is None:
            raise RollbackRefused(
                f"{model_name}: champion v{current.version} records no previous champion; "
                f"name the version to serve with --to (versions: {existing})")
        number = recorded
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
    if to_version is not None and recorded is not None and recorded != number:
        notes.append(f"skips v{recorded}, the previous champion recorded on v{current.version}")
    notes.extend(_metric_note(current, target))
    return RollbackPlan(model_name, current, target, forced=bool(refusal), notes=tuple(notes))


def _metric_note(current: ModelVersionInfo, target: ModelVersionInfo) -> list[str]:
    name = target.lineage.metric_name or current.lineage.metric_name
    before, after = current.lineage.metric, target.lineage.metric
    if not name or before is None or after is None:
        return []
    return [f"holdout {name}: v{current.version} {before:.4f} -> v{target.version} "
            f"{after:.4f} (each on its own holdout window)"]


def rollback_hold(champion: Lineage | None) -> str | None:
    """Why a promotion must wait for a human: the champion was put back by an operator.

    An operator's rollback says the newer model was wrong in a way the gate did not see, so the
    next challenger passing the same gate (often a follow-up of the same change) must not undo
    it unattended. The hold ends when an approved challenger becomes champion (its lineage has
    no rollback). The monitor's automatic rollbacks hold nothing: they are the unattended
    loop's own repair, and the next challenger is gated against the version they restored;
    but one from a held champion carries the hold over (``held_since_rollback``), so no
    automatic step ends what only an approval may end.
    """
    if champion is None or not champion.rolled_back_by:
        return None
    if champion.rolled_back_by == AUTOMATIC_ROLLBACK_OPERATOR:
        # The monitor rolled back from a held champion: the operator's hold goes on.
        return champion.held_since_rollback or None
    reason = f": {champion.rollback_reason}" if champion.rollback_reason else ""
    return (f"the champion was restored from v{champion.rolled_back_from} by "
            f"{champion.rolled_back_by}'s rollback at {champion.rolled_back_at}{reason}; "
            "promotions wait for approval until an approved challenger replaces it")
