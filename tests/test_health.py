"""The invariants `ctpipe doctor` checks (ctpipe.decisions.health): plain values only."""

from __future__ import annotations

from ctpipe.decisions.health import (
    REQUIRED_LINEAGE,
    AliasMove,
    HealthInputs,
    check,
    last_move_made,
    notes,
)
from ctpipe.lineage import ModelVersionInfo

COMPLETE = {name: "x" for name in REQUIRED_LINEAGE} | {"gate_decision": "passed",
                                                     "batch_date": "2026-03-09"}


def _v(n: int, aliases: tuple[str, ...] = (), **tags: str) -> ModelVersionInfo:
    return ModelVersionInfo("m", n, {**COMPLETE, **tags}, list(aliases), None)


def _inputs(**changes: object) -> HealthInputs:
    champion = _v(2, ("champion", "challenger"), promoted_at="t", previous_champion="1")
    base = {"use_case": "demand", "model_name": "m", "versions": [_v(1), champion],
            "champion": champion, "challenger": champion, "integrity": {1: None, 2: None},
            "interrupted": [], "alias_moves_traced": {2: True}}
    return HealthInputs(**{**base, **changes})


def _codes(h: HealthInputs) -> list[str]:
    return [p.code for p in check(h)]


def test_a_healthy_use_case_has_no_problem() -> None:
    assert check(_inputs()) == []
    assert check(_inputs(versions=[], champion=None, challenger=None, integrity={},
                         alias_moves_traced={})) == []  # nothing trained yet


def test_each_broken_invariant_is_one_problem_with_its_fix() -> None:
    assert _codes(_inputs(interrupted=["m v3: promotion from v2 was interrupted"])) == \
        ["interrupted-promotion"]
    no_champion = check(_inputs(champion=None, alias_moves_traced={}))
    assert [p.code for p in no_champion] == ["no-champion"]
    assert no_champion[0].fix == "ctpipe rollback demand --to 2 --reason TEXT"
    rejected = _v(2, ("champion",), gate_decision="rejected")
    assert _codes(_inputs(champion=rejected, versions=[_v(1), rejected])) == ["champion-unfit"]
    pending = _v(2, ("champion",), approval_decision="pending")
    assert _codes(_inputs(champion=pending, versions=[_v(1), pending])) == ["champion-unfit"]
    tampered = check(_inputs(integrity={1: None, 2: "sha256 expected aa, found bb"}))
    assert [p.code for p in tampered] == ["champion-tampered"]
    assert tampered[0].message == "m v2: sha256 expected aa, found bb"
    named = check(_inputs(integrity={2: "m v2: stored files do not match"}))
    assert named[0].message == "m v2: stored files do not match"  # not named twice
    assert _codes(_inputs(alias_moves_traced={2: False})) == ["untraced-alias-move"]
    assert _codes(_inputs(challenger=_v(3, gate_decision=""))) == ["dangling-challenger"]
    assert _codes(_inputs(dead_slot_holders=["slot taken"])) == ["dead-slot-holder"]
    bare = _v(1, data_fingerprint="", config_hash="")
    missing = check(_inputs(versions=[bare, _inputs().champion]))
    assert [p.code for p in missing] == ["lineage-missing"]
    assert "lacks data_fingerprint, config_hash" in missing[0].message
    assert _codes(_inputs(integrity={1: "bad", 2: None})) == ["version-tampered"]
    unverified = check(_inputs(unverified={2: "m v2: its stored files could not be read"}))
    assert [p.code for p in unverified] == ["champion-unverified"]
    assert unverified[0].message.startswith("m v2: its stored files could not be read (it ")
    assert "ctpipe doctor demand`" in unverified[0].fix and not unverified[0].repairable
    assert _codes(_inputs(unverified={1: "m v1: its stored files could not be read"})) == []
    assert _codes(_inputs(unreadable=["cycles/x.json: not JSON"])) == ["unreadable"]
    assert _codes(_inputs(unlanded=["landing/demand/labels: found 2026-03-09.csv, ..."])) == \
        ["files-not-landed"]
    [left_open] = check(_inputs(abandoned=[("2026-03-09", "2026-03-09T06:00:00+00:00")]))
    assert left_open.line() == (
        "batch-left-open: batch 2026-03-09: its run died before deciding (the record has said "
        "running since 2026-03-09T06:00:00+00:00) (fix: ctpipe cycle demand --date 2026-03-09)")


def test_batches_the_cycles_skipped_after_the_first_are_named() -> None:
    landed = [f"2026-03-{d:02d}" for d in range(1, 13)]
    # History before the first cycle (03-08) is never cycled by design; 03-10 and 03-11
    # landed while the schedule was down, and the next scheduled cycle took 03-12 only.
    problems = check(_inputs(landed=landed, cycled=["2026-03-08", "2026-03-09",
                                                    "2026-03-12"]))
    assert [p.line() for p in problems] == [
        "batches-never-cycled: 2 landed batches between cycled ones never went through a "
        "cycle: 2026-03-10, 2026-03-11 (not checked for drift, not scored, validated only "
        "once a training window reaches them) (fix: ctpipe cycle demand --date D for each, "
        "oldest first)"]
    assert check(_inputs(landed=landed, cycled=[])) == []  # nothing cycled yet
    assert check(_inputs(landed=landed, cycled=landed[7:])) == []
    # Landed after the newest cycle: waiting for the next one, not skipped.
    assert check(_inputs(landed=landed, cycled=landed[7:10])) == []


def test_only_safe_problems_are_repairable() -> None:
    problems = check(_inputs(interrupted=["i"], alias_moves_traced={2: False},
                             integrity={1: None, 2: "bad"}, audit_chain_breaks=["line 9"]))
    assert {p.code: p.repairable for p in problems} == {
        "interrupted-promotion": True, "untraced-alias-move": True, "champion-tampered": False,
        "audit-chain-broken": False}
    assert problems[0].line().startswith("interrupted-promotion: i (fix: ctpipe doctor demand")


def test_a_version_a_rollback_chose_may_serve_even_if_its_promotion_was_abandoned() -> None:
    chosen = _v(2, ("champion",), promotion_abandoned="champion moved")
    assert check(_inputs(champion=chosen, versions=[_v(1), chosen])) == []


def test_an_accepted_audit_break_is_a_note_and_no_problem() -> None:
    accepted = [("audit.jsonl: line 4 has no prev_sha256 after chained lines", 9,
                 "2026-12-07T10:05:00+00:00", "ops-lead", "worker on 0.x during the upgrade")]
    h = _inputs(audit_breaks_accepted=accepted)
    assert check(h) == []
    assert [n.line() for n in notes(h)] == [
        "audit-break-accepted: audit.jsonl: line 4 has no prev_sha256 after chained lines; "
        "accepted on line 9 by ops-lead at 2026-12-07T10:05:00+00:00 (reason: worker on 0.x "
        "during the upgrade)"]
    assert notes(_inputs()) == []


def _move(to: int, came_from: int | None, at: str = "2026-03-09T06:00:00+00:00",
          knows_from: bool = True) -> AliasMove:
    return AliasMove(to, came_from, knows_from, at)


def test_the_last_move_must_make_the_champion() -> None:
    promoted = [_move(1, None), _move(2, 1)]
    assert last_move_made(promoted, 2)
    assert not last_move_made(promoted, 1)  # v1's own promotion does not account for it
    assert not last_move_made([], 2)
    back = [*promoted, _move(4, 2), _move(2, 4)]  # promoted v4, rolled back to v2
    assert last_move_made(back, 2) and not last_move_made(back, 4)


def test_a_promotion_and_a_rollback_that_met_are_read_in_the_order_they_moved() -> None:
    # v2 serves; a promotion moves it to v4 and, before it writes its line, a rollback moves
    # it back to v2 and writes its own: the trail reads "4 -> 2" before "2 -> 4".
    met = [_move(1, None), _move(2, 1), _move(2, 4, "2026-03-09T06:00:01+00:00"),
           _move(4, 2, "2026-03-09T06:00:02+00:00")]
    assert last_move_made(met, 2)
    assert last_move_made(met, 4)  # the last line names the champion: traced, as always
    assert last_move_made([_move(2, 4), _move(4, None)], 2)  # v4 the first champion ever
    assert not last_move_made([_move(2, 4), _move(4, 3)], 2)  # from v3, but none came before
    # Not so: the swapped lines do not continue the chain (the promotion was from v3)...
    assert not last_move_made([*met[:2], met[2], _move(4, 3)], 2)
    # ...minutes apart (two moves ctpipe made do not account for a third it did not)...
    assert not last_move_made([*met[:3], _move(4, 2, "2026-03-09T06:05:00+00:00")], 2)
    # ...or a line that does not say which champion it replaced.
    assert not last_move_made([*met[:3], _move(4, 2, knows_from=False)], 2)
    assert not last_move_made([*met[:3], _move(4, 2, at="")], 2)
