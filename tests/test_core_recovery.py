"""A run that dies at any boundary of a promotion: the next run, with no flags, ends consistent.

The crash is simulated in-process (a BaseException no step catches, and the in-memory store
forgetting which intents a live run holds); tests/test_crash_kill.py does the same with real
processes killed by SIGKILL.
"""

from __future__ import annotations

import pytest

from ctpipe.decisions.outcome import CycleStatus
from ctpipe.steps.retrain import run_retrain
from tests.fakes import CHAMPION
from tests.test_core_outcomes import Ports, _config, day


class Killed(BaseException):
    """What a SIGKILL looks like to the code after it: nothing more runs."""


def _ports(days: int = 10, **config: dict) -> Ports:
    p = Ports(_config(**config), days=days)
    p.rt = p.rt.__class__(**{**p.rt.__dict__, "traced": lambda decision_id: any(
        d.id == decision_id for d in p.published)})
    return p


def _die_once(obj: object, name: str, *, after: bool = False) -> None:
    """Make ``obj.name`` die once (before, or after doing its work)."""
    real = getattr(obj, name)

    def dying(*args: object, **kwargs: object) -> object:
        setattr(obj, name, real)
        if after:
            real(*args, **kwargs)
        raise Killed(name)

    setattr(obj, name, dying)


def _restart(p: Ports) -> None:
    p.store.live.clear()  # the dead process held no lock any more


def _promotions(p: Ports) -> list:
    return [d for d in p.published if d.kind == "model.promoted"]


def _consistent(p: Ports) -> None:
    """One champion, gate-passed, with its promotion tags, and an audit record of its move."""
    champion = p.models.champion()
    assert champion is not None and champion.lineage.gate_passed
    assert champion.lineage.promoted_at and champion.lineage.previous_champion is not None
    assert [d.details["version"] for d in _promotions(p)].count(champion.version) == 1
    assert p.store.intents == {}
    batches = [v.lineage.batch_date for v in p.models.versions()]
    assert len(batches) == len(set(batches))  # no duplicate version for a batch


def test_killed_before_the_move_the_next_run_completes_the_promotion() -> None:
    p = _ports()
    _die_once(p.models, "promote")
    with pytest.raises(Killed):
        p.cycle(7)
    assert CHAMPION not in p.models.aliases and len(p.store.intents) == 1
    # (in-process the finally blocks still write "failed"; a real SIGKILL leaves "running")
    assert not p.store.records[day(7).isoformat()].status.final
    _restart(p)
    out = p.cycle(8)
    assert [d.kind for d in out.decisions][:1] == ["model.promoted"]
    assert "promoted after an interrupted run" in out.decisions[0].details["recovered"]
    assert p.models.aliases[CHAMPION] == 1
    assert p.store.records[day(7).isoformat()].status is CycleStatus.PROMOTED
    _consistent(p)


def test_killed_after_the_move_before_the_trace_the_next_run_finishes_it() -> None:
    p = _ports()
    real, died = p.rt.publish, []

    def publish(decision):  # noqa: ANN001, ANN202
        if decision.kind == "model.promoted" and not died:
            died.append(decision)
            raise Killed("publish")
        real(decision)

    p.rt = p.rt.__class__(**{**p.rt.__dict__, "publish": publish})
    with pytest.raises(Killed):
        p.cycle(7)
    assert p.models.aliases[CHAMPION] == 1 and _promotions(p) == []
    _restart(p)
    p.cycle(8)
    assert "already champion" in _promotions(p)[0].details["recovered"]
    _consistent(p)


def test_killed_after_the_trace_the_promotion_is_not_traced_twice() -> None:
    p = _ports()
    _die_once(p.store, "clear_intent")
    with pytest.raises(Killed):
        p.cycle(7)
    assert len(_promotions(p)) == 1 and len(p.store.intents) == 1
    _restart(p)
    p.cycle(8)
    assert len(_promotions(p)) == 1
    _consistent(p)


def test_killed_between_registration_and_the_intent_the_rerun_promotes_that_version() -> None:
    p = _ports()
    _die_once(p.store, "record_intent")
    with pytest.raises(Killed):
        p.cycle(7)
    assert sorted(p.models.loaded) == [1] and CHAMPION not in p.models.aliases
    _restart(p)
    out = run_retrain(p.rt, day(7), "rerun")  # the same batch, no force
    assert out.status is CycleStatus.PROMOTED and sorted(p.models.loaded) == [1]
    _consistent(p)


def test_a_champion_moved_meanwhile_wins_over_an_interrupted_promotion() -> None:
    # Any challenger as good as the champion passes: the retrain below reaches promotion.
    p = _ports(days=11, gate={"min_improvement": 0.0, "slice_tolerance": 10.0})
    p.cycle(7)
    _die_once(p.models, "promote")
    with pytest.raises(Killed):
        run_retrain(p.rt, day(9), "second", force=True)
    assert p.models.aliases[CHAMPION] == 1 and len(p.store.intents) == 1
    # Meanwhile an operator serves another version (v3, a copy of v1 registered by hand).
    p.models.loaded[3] = p.models.loaded[1]
    p.models.aliases[CHAMPION] = 3
    _restart(p)
    out = p.cycle(10)
    abandoned = [d for d in out.decisions if d.kind == "promotion.abandoned"]
    assert len(abandoned) == 1
    assert "champion is v3 now, not v1 that v2 was gated against" in abandoned[0].reason
    assert p.models.aliases[CHAMPION] == 3 and p.store.intents == {}
    assert p.models.version(2).lineage.promotion_abandoned
    assert p.store.records[day(9).isoformat()].status is CycleStatus.CHAMPION_CHANGED
    # ... and a rerun of that batch does not resurrect it.
    assert run_retrain(p.rt, day(9), "again").status is CycleStatus.SKIPPED


def test_a_rerun_keeps_every_attempt_of_the_batch() -> None:
    p = _ports()
    assert p.cycle(7).status is CycleStatus.PROMOTED
    assert p.cycle(7).status is not CycleStatus.PROMOTED  # a champion now: no cold start
    record = p.store.records[day(7).isoformat()]
    assert [a["status"] for a in record.attempts][-1] == "promoted"
    assert len({a["attempt_id"] for a in record.attempts} | {record.attempt_id}) == \
        len(record.attempts) + 1


def test_a_rollback_killed_after_its_move_is_finished_by_the_next_run() -> None:
    from ctpipe.records import PromotionIntent

    p = _ports(days=11, gate={"min_improvement": 0.0, "slice_tolerance": 10.0})
    p.cycle(7)
    assert run_retrain(p.rt, day(9), "second", force=True).status is CycleStatus.PROMOTED
    # What apply_rollback leaves when killed right after the move: intent + moved alias.
    intent = PromotionIntent(p.models.model_name, 1, 2, "", "INC-7", "oncall",
                             action="rollback")
    p.store.record_intent(intent)
    p.models.aliases[CHAMPION] = 1
    _restart(p)
    out = p.cycle(10)
    rolled = [d for d in out.decisions if d.kind == "model.rolled_back"]
    assert len(rolled) == 1 and rolled[0].id == intent.id and rolled[0].actor == "oncall"
    tags = p.models.version(1).lineage
    assert (tags.rolled_back_from, tags.rolled_back_by, tags.rollback_reason) == \
        ("2", "oncall", "INC-7")
    assert p.models.version(2).lineage.demoted_by_rollback_to == "1"
    assert p.models.aliases[CHAMPION] == 1 and p.store.intents == {}


def test_a_rollback_killed_before_its_move_is_abandoned_not_guessed() -> None:
    from ctpipe.records import PromotionIntent

    p = _ports()
    p.cycle(7)  # v1 serves; a rollback to v5 died before its move
    intent = PromotionIntent(p.models.model_name, 5, 1, "", "r", "oncall", action="rollback")
    p.store.record_intent(intent)
    _restart(p)
    out = p.cycle(8)
    assert [d.kind for d in out.decisions][:1] == ["rollback.abandoned"]
    assert p.models.aliases[CHAMPION] == 1 and p.store.intents == {}


def test_a_resumed_promotion_waits_for_approval_after_an_operators_rollback() -> None:
    from ctpipe.decisions.retraining import ApprovalAnswer
    from ctpipe.lineage import Lineage

    # v1 serves; v2 is gated against it and registered, then the run dies before its intent.
    p = _ports(gate={"min_improvement": 0.0})
    assert p.cycle(7).status is CycleStatus.PROMOTED
    _die_once(p.store, "record_intent")
    with pytest.raises(Killed):
        p.retrain(8, force=True)
    assert sorted(p.models.loaded) == [1, 2] and p.models.aliases[CHAMPION] == 1
    _restart(p)
    # Meanwhile an operator put v1 back (a rollback to the serving version, for the hold).
    p.models.tag(1, Lineage(rolled_back_from="9", rolled_back_by="oncall",
                            rolled_back_at="2026-03-10T08:00:00+00:00", rollback_reason="INC-3"))
    p.answer = ApprovalAnswer(decision="reject", approver="Ada", reason="not v2")
    out = p.retrain(8)  # no force: resumes v2
    assert [r.version for r in p.asked] == [2] and "oncall's rollback" in p.asked[0].hold
    assert out.status is CycleStatus.REJECTED and p.models.aliases[CHAMPION] == 1
