"""`ctpipe doctor`: load what the invariants need, check them (decisions.health), repair what
is safe to repair, and audit every repair."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from ctpipe import audit, landing, registry
from ctpipe.decisions.health import (
    AliasMove,
    HealthInputs,
    Note,
    Problem,
    check,
    last_move_made,
    notes,
)
from ctpipe.integrity import ArtifactsUnreadable, IntegrityError
from ctpipe.steps.ports import Runtime
from ctpipe.steps.recovery import reconcile
from ctpipe.steps.set_aside import finish_set_asides
from ctpipe.trace import Decision, TraceSink
from ctpipe.workspace import Workspace


@dataclass(frozen=True)
class Diagnosis:
    problems: list[Problem]
    repaired: list[str]
    notes: list[Note] = field(default_factory=list)  # never a problem: healthy ignores them

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"healthy": self.healthy, "repaired": self.repaired,
                "problems": [{"code": p.code, "message": p.message, "fix": p.fix,
                              "repairable": p.repairable} for p in self.problems],
                "notes": [{"code": n.code, "message": n.message} for n in self.notes]}


def examine(ws: Workspace, verify: Callable[[int], IntegrityError | None]) -> HealthInputs:
    """Everything the invariants look at, read without changing anything."""
    model = ws.model_name
    versions = registry.list_versions(model)
    champion = registry.get_alias(model, registry.CHAMPION)
    entries, unreadable = _audit_entries(ws)
    unreadable += _unreadable_records(ws)
    moves: dict[int, bool] = {}
    if champion is not None:
        moves[champion.version] = last_move_made(
            [m for e in entries if (m := _alias_move(e, model)) is not None], champion.version)
    store = ws.store
    interrupted = [f"{model}: the {i.action} from v{i.expected or '-'} to v{i.version} "
                   f"({i.at}) was interrupted" for i in store.claim_orphaned_intents()]
    store.release_intents()  # only looked at: the repair, or the next run, reconciles them
    chain = audit.scan_chain(ws.audit_path)
    problems = {v.version: verify(v.version) for v in versions}
    return HealthInputs(
        use_case=shlex.quote(ws.ref or ws.name), model_name=model, versions=versions,
        champion=champion,
        challenger=registry.get_alias(model, registry.CHALLENGER),
        integrity={v: str(p) if p and not isinstance(p, ArtifactsUnreadable) else None
                   for v, p in problems.items()},
        unverified={v: str(p) for v, p in problems.items() if isinstance(p, ArtifactsUnreadable)},
        interrupted=interrupted, alias_moves_traced=moves,
        audit_chain_breaks=[b.text for b in chain.breaks],
        audit_breaks_accepted=[(a.found.text, a.line, a.at, a.who, a.why)
                               for a in chain.accepted],
        dead_slot_holders=_dead_slot_holders(ws), unreadable=unreadable,
        abandoned=[(r.batch_date, r.started_at) for r in store.abandoned()],
        labels_set_aside=[(a.day.isoformat(), a.problem, str(a.folder),
                           str(landing.labels_path(ws.landing, a.day)))
                          for a in landing.labels_set_aside(ws.landing, ws.quarantine)],
        landed=[d.isoformat() for d in store.batch_dates()],
        cycled=sorted(p.stem for p in ws.records_dir.glob("*.json"))
        if ws.records_dir.is_dir() else [],
        unlanded=[f"{ws.landing / kind}: {found}" for kind in landing.LANDED
                  if (found := landing.unlanded_files(ws.landing, kind=kind))]
        + [f"{ws.landing / 'batches'}: {found}"
           for found in [landing.misnamed_batches(ws.landing, ws.config)] if found],
        pending_set_asides=[(p.day.isoformat(), str(p.intent.get("operator")), p.folder)
                            for p in store.pending_set_asides()])


def _alias_move(entry: dict, model: str) -> AliasMove | None:
    """The alias move of ``model`` an audit line records (None: not such a line; a use
    case's earlier model_name moved other versions)."""
    details = entry.get("details") or {}
    if details.get("model", model) != model:
        return None
    action, at = entry.get("action"), entry.get("at", "")
    if action == "model.promoted" and details.get("version") is not None:
        return AliasMove(details["version"], details.get("previous"), "previous" in details, at)
    if action == "model.rolled_back" and details.get("to") is not None:
        return AliasMove(details["to"], details.get("from"), "from" in details, at)
    if action == "champion.observed" and details.get("version") is not None:
        return AliasMove(details["version"], None, False, at)
    return None


def _audit_entries(ws: Workspace) -> tuple[list[dict], list[str]]:
    if not ws.audit_path.is_file():
        return [], []
    entries, bad = [], []
    lines = [(n, raw) for n, raw in enumerate(ws.audit_path.read_bytes().split(b"\n"), 1)
             if raw.strip()]
    for i, (n, raw) in enumerate(lines):
        try:
            entry = json.loads(raw)
        except ValueError:  # also bytes that are no UTF-8
            following = lines[i + 1][1] if i + 1 < len(lines) else b""
            if not audit.vouched_for(raw, following):  # else torn by a crash, chained over
                bad.append(f"{ws.audit_path}: line {n} is not JSON")
            continue
        if isinstance(entry, dict) and entry.get("use_case") == ws.name:
            entries.append(entry)
    return entries, bad


def _unreadable_records(ws: Workspace) -> list[str]:
    bad = []
    for path in sorted(ws.records_dir.glob("*.json")) if ws.records_dir.is_dir() else []:
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            bad.append(f"{path}: not a readable cycle record ({exc})")
    return bad


def _dead_slot_holders(ws: Workspace) -> list[str]:
    """A retraining slot taken while no retraining of this use case runs (Prefect server only:
    embedded servers let a dead holder's lease lapse by themselves)."""
    if not os.environ.get("PREFECT_API_URL"):
        return []
    from ctpipe.flows.slot import slot_holders_dead

    return slot_holders_dead(ws)


def diagnose(ws: Workspace, verify: Callable[[int], IntegrityError | None], *,
             repair: bool = False, actor: str | None = None) -> Diagnosis:
    seen = examine(ws, verify)
    problems = check(seen)
    if not repair or not any(p.repairable for p in problems):
        return Diagnosis(problems, [], notes(seen))
    repaired = _repair(ws, problems, actor or audit.actor())
    seen = examine(ws, verify)
    return Diagnosis(check(seen), repaired, notes(seen))


def _repair(ws: Workspace, problems: list[Problem], actor: str) -> list[str]:
    sink = TraceSink(ws.audit_path)
    done: list[str] = []
    codes = {p.code for p in problems if p.repairable}
    rt = Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                 models=ws.registry, publish=sink.publish, traced=sink.traced)
    if "interrupted-promotion" in codes:
        done += [f"{d.kind}: {d.reason}" for d in reconcile(rt)]
    if "set-aside-unfinished" in codes:
        done += [f"{d.kind}: {d.reason}" for d in finish_set_asides(rt)]
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    if "untraced-alias-move" in codes and champion is not None:
        sink.publish(Decision(
            kind="champion.observed", use_case=ws.name,
            subject=f"{ws.model_name} v{champion.version}", actor=actor,
            reason=f"champion v{champion.version} found without an audit record of the move "
                   "that made it champion; recorded by ctpipe doctor --repair",
            details={"model": ws.model_name, "version": champion.version}))
        done.append(f"recorded the untraced move to champion v{champion.version}")
    if "dangling-challenger" in codes:
        registry.client().delete_registered_model_alias(ws.model_name, registry.CHALLENGER)
        sink.publish(Decision(kind="challenger.cleared", use_case=ws.name,
                              subject=ws.model_name, actor=actor,
                              reason="challenger alias pointed at a version without a gate "
                                     "decision; removed by ctpipe doctor --repair"))
        done.append("removed the dangling challenger alias")
    if "dead-slot-holder" in codes:
        from ctpipe.flows.slot import free_dead_slot

        done.append(free_dead_slot(ws, sink.publish, actor))
    return done
