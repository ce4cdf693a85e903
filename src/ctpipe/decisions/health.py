"""The invariants `ctpipe doctor` checks: pure rules over what the doctor step loaded.

A healthy use case has at most one champion (exactly one once any version passed the gate),
serving a complete, gate-passed, approved-where-required and integrity-verified version, whose
last alias move is in the audit trail; no dangling challenger; no interrupted promotion; no
retraining slot held by a dead run; no batch left "running" by a dead run; no operator's
set-aside left half done; no labels file
set aside and not replaced; no landed batch skipped by the cycles; no file in the landing zone
that no cycle sees (another format, another name); lineage on every version; readable records
and audit.
Each problem names the command that fixes it; `repairable` ones `--repair` fixes itself.
Notes are what a healthy use case's reader should still know (a break in the audit trail an
operator accepted): they change neither the verdict nor doctor's exit status.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from ctpipe.decisions.recovery import unfit_to_serve
from ctpipe.lineage import Lineage, ModelVersionInfo
from ctpipe.wording import first_few

# Tags every version must carry: without them it cannot be traced to its data and decision.
REQUIRED_LINEAGE = ("use_case", "batch_date", "train_start", "train_end", "holdout_start",
                    "holdout_end", "train_rows", "data_fingerprint", "config_hash",
                    "code_version", "artifact_sha256", "metric_name", "holdout_metric",
                    "gate_decision")


# Promotions and rollbacks write their audit line after they release the champion lock, so two
# that meet can write their lines in the opposite order to their moves, seconds apart at most.
SWAPPED_LINES_WITHIN_S = 60


@dataclass(frozen=True)
class AliasMove:
    """One champion move as an audit line records it."""

    to: int
    came_from: int | None  # the champion it replaced (None: there was none)
    knows_from: bool  # False: the line does not say (an observation, an older line)
    at: str  # when the line was written (ISO, whole seconds)


def last_move_made(moves: Sequence[AliasMove], champion: int) -> bool:
    """Whether the moves the trail records, in its order, end with ``champion``'s.

    Every move is a compare-and-swap from the champion it saw, so the moves must form a chain:
    each from the one before. When the last two lines break that chain and, swapped, close it
    and end at ``champion``, and they were written within seconds, they are a promotion and a
    rollback that met (each audits after releasing the lock): not a move ctpipe did not make.
    An earlier promotion of the champion never accounts for a later move back to it.
    """
    if moves and moves[-1].to == champion:
        return True
    if len(moves) < 2:
        return False
    second, first = moves[-2], moves[-1]  # in the order they would have happened
    before = moves[-3].to if len(moves) > 2 else None
    if not (first.knows_from and second.knows_from and first.came_from == before
            and second.came_from == first.to and second.to == champion):
        return False
    try:
        apart = dt.datetime.fromisoformat(first.at) - dt.datetime.fromisoformat(second.at)
    except (TypeError, ValueError):  # a line without its time: no grounds to swap
        return False
    return abs(apart.total_seconds()) <= SWAPPED_LINES_WITHIN_S


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    fix: str
    repairable: bool = False

    def line(self) -> str:
        return f"{self.code}: {self.message} (fix: {self.fix})"


@dataclass(frozen=True)
class Note:
    """Something doctor reports that is no problem: nothing to fix."""

    code: str
    message: str

    def line(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class HealthInputs:
    use_case: str  # as the operator named it (a name or a config path): the fixes' commands
    model_name: str
    versions: list[ModelVersionInfo]
    champion: ModelVersionInfo | None
    challenger: ModelVersionInfo | None
    integrity: dict[int, str | None]  # version -> why its files fail verification (None: ok)
    interrupted: list[str]  # descriptions of promotions whose run died
    alias_moves_traced: dict[int, bool]  # champion version -> an audit record of its move
    dead_slot_holders: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # records or audit lines that fail
    audit_chain_breaks: list[str] = field(default_factory=list)  # audit.chain_breaks
    # Breaks an acceptance counts for: (break, the acceptance's line, at, who, why).
    audit_breaks_accepted: list[tuple[str, int, str, str, str]] = field(default_factory=list)
    # Batches whose record says "running" while no run works on them: (date, started at).
    abandoned: list[tuple[str, str]] = field(default_factory=list)
    # Batches unlabelled because their labels were set aside: (date, why, where, put back at).
    labels_set_aside: list[tuple[str, str, str, str]] = field(default_factory=list)
    landed: list[str] = field(default_factory=list)  # batch dates in the landing zone
    cycled: list[str] = field(default_factory=list)  # batch dates with a cycle record
    # Files in the landing zone's batches/ or labels/ no cycle sees, and why (one line each).
    unlanded: list[str] = field(default_factory=list)
    # version -> why its stored files could not be read, so were not verified (store down).
    unverified: dict[int, str] = field(default_factory=dict)
    # Operator set-asides written down but never moved: (date, who, evidence folder).
    pending_set_asides: list[tuple[str, str, str]] = field(default_factory=list)


def never_cycled(landed: list[str], cycled: list[str]) -> list[str]:
    """Landed batches between the first and the newest cycled one that no cycle ran on.

    A scheduled cycle takes the newest batch only, so batches that landed while the schedule
    was down stay unchecked for drift and unscored, validated only once a training window
    reaches them. Batches before the first cycle are the history a use case starts from
    (landed in bulk, never cycled by design); batches after the newest are waiting for the
    next cycle.
    """
    if not cycled:
        return []
    first, last, done = min(cycled), max(cycled), set(cycled)
    return [d for d in sorted(landed) if first < d < last and d not in done]


def check(h: HealthInputs) -> list[Problem]:
    """Every broken invariant, most urgent first."""
    uc = h.use_case
    out: list[Problem] = []
    for what in h.interrupted:
        out.append(Problem("interrupted-promotion", what, f"ctpipe doctor {uc} --repair",
                           repairable=True))
    for day, who, folder in h.pending_set_asides:
        out.append(Problem("set-aside-unfinished", f"batch {day}: set aside by {who} "
                           f"(evidence in {folder}) but still in the landing zone: the run was "
                           "killed before the move", f"ctpipe doctor {uc} --repair",
                           repairable=True))
    passed = [v for v in h.versions if v.lineage.gate_passed]
    if h.champion is None and passed:
        out.append(Problem("no-champion", f"{h.model_name}: {len(passed)} versions passed the "
                           "gate but none serves", f"ctpipe rollback {uc} --to "
                           f"{passed[-1].version} --reason TEXT"))
    if h.champion is not None:
        v = h.champion.version
        # An abandoned promotion does not bar a version a rollback chose deliberately.
        unfit = unfit_to_serve(h.champion.lineage.merged(Lineage(promotion_abandoned="")))
        if unfit:
            out.append(Problem("champion-unfit", f"{h.model_name} v{v} serves although {unfit}",
                               f"ctpipe rollback {uc} --reason TEXT"))
        if h.integrity.get(v):
            out.append(Problem("champion-tampered", _named(h, v, h.integrity[v]),
                               f"ctpipe rollback {uc} --reason TEXT"))
        if v in h.unverified:
            # Not tampering as far as anyone can tell: an outage passes by itself, and a
            # rollback would need a version whose files can be read.
            out.append(Problem("champion-unverified", _named(h, v, h.unverified[v])
                               + " (it cannot serve until they can be read)",
                               "make the artifact store reachable and its files readable, then "
                               f"rerun `ctpipe doctor {uc}`; if they are lost: ctpipe rollback "
                               f"{uc} --reason TEXT"))
        if not h.alias_moves_traced.get(v, False):
            out.append(Problem("untraced-alias-move", f"{h.model_name}: champion v{v} has no "
                               "audit record of the move that made it champion",
                               f"ctpipe doctor {uc} --repair", repairable=True))
    if h.challenger is not None and not h.challenger.lineage.gate_decision:
        out.append(Problem("dangling-challenger", f"{h.model_name}: challenger "
                           f"v{h.challenger.version} has no gate decision",
                           f"ctpipe doctor {uc} --repair", repairable=True))
    for holder in h.dead_slot_holders:
        out.append(Problem("dead-slot-holder", holder, f"ctpipe doctor {uc} --repair",
                           repairable=True))
    for v in h.versions:
        missing = [t for t in REQUIRED_LINEAGE if not getattr(v.lineage, t)]
        if missing:
            out.append(Problem("lineage-missing", f"{h.model_name} v{v.version} lacks "
                               f"{', '.join(missing)}", "retrain the batch with "
                               f"`ctpipe cycle {uc} --date {v.lineage.batch_date} --force`"))
        if h.champion is None or v.version != h.champion.version:
            if h.integrity.get(v.version):
                out.append(Problem("version-tampered", _named(h, v.version, h.integrity[
                                   v.version]) + " (it can never serve)",
                                   "nothing to do unless you need it: retrain its batch"))
    for day, started in h.abandoned:
        out.append(Problem("batch-left-open", f"batch {day}: its run died before deciding (the "
                           f"record has said running since {started or 'an unknown time'})",
                           f"ctpipe cycle {uc} --date {day}"))
    for day, why, folder, expected in h.labels_set_aside:
        out.append(Problem("labels-set-aside", f"batch {day}: its labels were set aside "
                           f"({why}); it trains and is judged on nothing until they are "
                           f"replaced (the rejected file is in {folder})",
                           f"put a corrected labels file at {expected}, or, if none will "
                           f"come, ctpipe accept-unlabelled {uc} --date {day} --reason TEXT"))
    missed = never_cycled(h.landed, h.cycled)
    if missed:
        shown = first_few(missed, 5)
        out.append(Problem("batches-never-cycled", f"{len(missed)} landed "
                           f"batch{'es' if len(missed) != 1 else ''} between cycled ones "
                           f"never went through a cycle: {shown} (not checked for drift, not "
                           "scored, validated only once a training window reaches them)",
                           f"ctpipe cycle {uc} --date D for each, oldest first"))
    for what in h.unlanded:
        out.append(Problem("files-not-landed", what,
                           "convert or rename them as said, or move them out of the landing "
                           "zone"))
    for what in h.unreadable:
        out.append(Problem("unreadable", what, "restore the file from backup or move it aside"))
    for where in h.audit_chain_breaks:
        out.append(Problem("audit-chain-broken", where, "compare the audit trail with its "
                           "backup: a decision there was altered, removed or added after it "
                           "was written; a line an older ctpipe wrote during an upgrade: "
                           f"ctpipe accept-audit-break {uc} --line N --reason TEXT"))
    return out


def notes(h: HealthInputs) -> list[Note]:
    """What doctor reports beside the problems. An accepted break is no longer a problem, but
    the trail's reader must still see that the chain broke there, and on whose word."""
    return [Note("audit-break-accepted", f"{where}; accepted on line {line} by {who} at {at} "
                 f"(reason: {why})") for where, line, at, who, why in h.audit_breaks_accepted]


def _named(h: HealthInputs, version: int, why: str) -> str:
    """``why`` led by the model and version, once: the integrity check's text names them."""
    name = f"{h.model_name} v{version}: "
    return why if why.startswith(name) else name + why
