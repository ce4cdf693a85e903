"""`ctpipe status --json`: the use case's registry and last cycle as one JSON document.

The field names are a contract (README "ctpipe status --json"); add fields, never rename.
"""

from __future__ import annotations

from collections.abc import Callable

from ctpipe import registry
from ctpipe.decisions.rollback import rollback_hold
from ctpipe.integrity import ArtifactsUnreadable, IntegrityError
from ctpipe.lineage import ModelVersionInfo
from ctpipe.workspace import Workspace

SCHEMA_VERSION = 1


def _integrity(problem: IntegrityError | None) -> str:
    if problem is None:
        return "verified"
    return f"{'not checked' if isinstance(problem, ArtifactsUnreadable) else 'failed'}: {problem}"


def _version(v: ModelVersionInfo, aliases: list[str],
             verify: Callable[[int], IntegrityError | None]) -> dict:
    t = v.lineage
    return {"version": v.version, "batch_date": t.batch_date, "aliases": aliases,
            "gate_decision": t.gate_decision, "approval": t.approval_decision,
            "metric_name": t.metric_name, "holdout_metric": t.metric,
            "promoted_at": t.promoted_at, "integrity": _integrity(verify(v.version))}


def status_report(ws: Workspace, verify: Callable[[int], IntegrityError | None]) -> dict:
    versions = registry.list_versions(ws.model_name)
    # A version search does not return aliases: they are read one by one.
    held = {alias: registry.get_alias(ws.model_name, alias)
            for alias in (registry.CHAMPION, registry.CHALLENGER)}
    by_number = {v.version: _version(v, sorted(a for a, h in held.items()
                                               if h and h.version == v.version), verify)
                 for v in versions}
    champion = held[registry.CHAMPION]
    last = ws.store.last_record()
    store = ws.store
    interrupted = store.claim_orphaned_intents()
    store.release_intents()
    pending = [{"version": v.version, "batch_date": v.lineage.batch_date, "waiting_for": "approval"}
               for v in versions if v.lineage.approval_decision == "pending"]
    pending += [{"version": i.version, "batch_date": i.batch_date,
                 "waiting_for": "recovery of an interrupted promotion"} for i in interrupted]
    return {
        "schema_version": SCHEMA_VERSION,
        "use_case": ws.name,
        "model": ws.model_name,
        "champion": None if champion is None else {
            **by_number[champion.version], "approver": champion.lineage.approver,
            "previous_champion": champion.lineage.previous,
            "train_window": [champion.lineage.train_start, champion.lineage.train_end],
            "holdout_window": [champion.lineage.holdout_start, champion.lineage.holdout_end],
            "holdout_share": champion.lineage.holdout_share,
            "data_fingerprint": champion.lineage.data_fingerprint,
            "artifact_sha256": champion.lineage.artifact_sha256,
            "restored_by_rollback": None if not champion.lineage.rolled_back_by else {
                "from_version": champion.lineage.rolled_back_from,
                "by": champion.lineage.rolled_back_by, "at": champion.lineage.rolled_back_at,
                "reason": champion.lineage.rollback_reason},
            "promotion_hold": rollback_hold(champion.lineage)},
        "versions": [by_number[v.version] for v in versions],
        "last_cycle": None if last is None else {
            "batch_date": last.batch_date, "status": str(last.status), "message": last.message,
            "champion_version": last.champion_version,
            "candidate_version": last.candidate_version, "attempts": len(last.attempts) + 1},
        "pending_promotions": pending,
    }
