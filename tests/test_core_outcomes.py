"""Every outcome branch of a cycle and of a retraining, on the core with in-memory ports.

Real validation (GX), drift statistics, LightGBM training and the gate run here; the store,
the registry and the trace sink are in-memory, the approval pause is a function. No Prefect
server, no MLflow, no folder of state: the whole file runs in seconds.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ctpipe.config import UseCaseConfig, repo_configs_dir
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.decisions.retraining import COLD_START, ApprovalAnswer
from ctpipe.decisions.rollback import AUTOMATIC_ROLLBACK_OPERATOR, rollback_hold
from ctpipe.lineage import Lineage
from ctpipe.simulate import generate_day
from ctpipe.steps.cycle import run_cycle
from ctpipe.steps.drift import recent_attempts
from ctpipe.steps.ports import ApprovalRequest, Runtime
from ctpipe.steps.retrain import run_retrain
from ctpipe.trace import Decision
from tests.fakes import CHAMPION, MemoryRegistry, MemoryStore

START = dt.date(2026, 3, 2)


def day(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def _config(**changes: dict) -> UseCaseConfig:
    raw = yaml.safe_load((repo_configs_dir() / "demand.yaml").read_text())
    raw["training"].update({"window": 6, "holdout": 2, "min_train_rows": 200,
                            "params": {"n_estimators": 40, "learning_rate": 0.1,
                                       "num_leaves": 15, "min_child_samples": 20}})
    for section, values in changes.items():
        raw.setdefault(section, {}).update(values)
    return UseCaseConfig.model_validate(raw)


class Ports:
    """A runtime over in-memory ports, with what was published and asked kept for asserts."""

    def __init__(self, config: UseCaseConfig, days: int, *, replay: bool = False,
                 answer=None) -> None:  # noqa: ANN001
        self.store = MemoryStore(config)
        for i in range(days):
            self.store.add(day(i), generate_day("demand", i, day(i), rows=None, shift_day=None,
                                                seed=7))
        self.models = MemoryRegistry(config.registered_model)
        self.published: list[Decision] = []
        self.asked: list[ApprovalRequest] = []
        self.answer = answer
        self.rt = Runtime(config=config, model_name=config.registered_model, store=self.store,
                          models=self.models, publish=self.published.append, replay=replay,
                          ask_approval=self._ask)

    def _ask(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        self.asked.append(request)
        # While the run waits, the batch's record says so.
        assert self.store.records[self.day].status \
            is CycleStatus.PENDING_APPROVAL
        return self.answer(self) if callable(self.answer) else self.answer

    def cycle(self, i: int, **kwargs: object):  # noqa: ANN201
        self.day = day(i).isoformat()
        return run_cycle(self.rt, day(i), explicit_date=True, **kwargs)

    def retrain(self, i: int, **kwargs: object):  # noqa: ANN201
        self.day = day(i).isoformat()
        return run_retrain(self.rt, day(i), "test", **kwargs)

    def kinds(self) -> list[str]:
        return [d.kind for d in self.published]

    def events(self) -> list[str]:
        return [d.event for d in self.published if d.event]


def test_waiting_for_history_then_cold_start_promotes() -> None:
    p = Ports(_config(), days=9)
    waiting = p.cycle(3)
    assert waiting.status is CycleStatus.WAITING and waiting.state_name == "Waiting"
    assert "labelled batches, the training window needs 6" in waiting.message
    assert p.models.loaded == {}

    promoted = p.cycle(7)
    assert promoted.status is CycleStatus.PROMOTED and not promoted.failed
    assert promoted.message == f"v1 promoted to champion ({COLD_START})"
    assert p.models.aliases[CHAMPION] == 1
    lineage = p.models.champion().lineage
    assert (lineage.train_start, lineage.train_end) == (day(1).isoformat(), day(4).isoformat())
    assert lineage.gate_decision == "passed" and lineage.approver.startswith("auto:")
    assert [d.kind for d in promoted.decisions] == [
        "validation.passed", "drift.checked", "gate.decided", "model.promoted"]
    assert "ctpipe.model.promoted" in p.events()
    assert p.store.records[day(7).isoformat()].status is CycleStatus.PROMOTED


def test_a_holdout_without_demand_leaves_the_challenger_unjudged_and_out_of_the_cooldown(
        ) -> None:
    """WAPE is undefined on a holdout with no demand: the challenger is not promoted, the
    record says it could not be judged, and the cooldown does not count it as a rejection."""
    p = Ports(_config(), days=11)
    assert p.cycle(7).status is CycleStatus.PROMOTED
    target = p.rt.config.data.target
    for i in (7, 8):  # the holdout of a retrain on day 9
        p.store.labels[day(i)][target] = 0.0
    out = p.cycle(9, force=True)
    assert out.status is CycleStatus.REJECTED, out.message
    assert out.message.startswith("challenger v2 cannot be judged on its holdout, not "
                                  "promoted: sanity: ")
    assert "wape is undefined on this holdout" in out.message
    record = p.store.records[day(9).isoformat()]
    assert record.retrained and record.gate_unjudged and record.gate_passed is False
    assert p.models.aliases[CHAMPION] == 1
    # The version, its gate artifact and the audit decision say "unjudged", not "rejected".
    assert p.models.version(2).lineage.gate_decision == "unjudged"
    (gate,) = [d for d in out.decisions if d.kind == "gate.decided"]
    assert gate.artifact.description == "Gate unjudged"
    assert gate.details["verdict"] == "unjudged" and gate.details["passed"] is False
    assert gate.artifact.markdown.startswith("# Gate UNJUDGED: ")
    assert "the gate has no verdict on the challenger" in gate.artifact.markdown
    since = p.models.champion().lineage.seen_until
    # Newest first, past the unjudged one back to the promotion (what the cooldown reads).
    assert [(a.batch_date, a.unjudged, a.rejected)
            for a in recent_attempts(p.rt, day(10), since)] == [
        (day(9), True, False), (day(7), False, False)]


def test_quarantine_leaves_the_registry_alone() -> None:
    p = Ports(_config(), days=9)
    p.cycle(7)
    before = (dict(p.models.aliases), sorted(p.models.loaded))
    p.store.batches[day(8)].loc[:4, "border_wait_minutes"] = -30.0
    out = p.cycle(8)
    assert out.status is CycleStatus.QUARANTINED and out.failed
    assert out.state_name == "Quarantined" and "border_wait_minutes" in out.message
    assert [d.kind for d in out.decisions] == ["validation.failed"]
    assert out.decisions[0].event == "ctpipe.validation.failed"
    assert "summary.md" in p.store.quarantined[day(8)] and day(8) not in p.store.batches
    assert (dict(p.models.aliases), sorted(p.models.loaded)) == before


def test_a_bad_batch_is_quarantined_while_the_registry_is_down() -> None:
    """Validation compares categories with the champion's training, but a registry that
    cannot be read must not stop a bad batch from being set aside."""
    p = Ports(_config(), days=9)
    p.cycle(7)

    def down() -> None:
        raise ConnectionError("MLflow unreachable")

    p.models.load_champion = down  # type: ignore[method-assign]
    p.store.batches[day(8)].loc[:4, "border_wait_minutes"] = -30.0
    out = p.cycle(8)
    assert out.status is CycleStatus.QUARANTINED, out.message
    assert "border_wait_minutes" in out.message
    assert "summary.md" in p.store.quarantined[day(8)] and day(8) not in p.store.batches


def test_no_drift_keeps_the_champion() -> None:
    p = Ports(_config(), days=10)
    p.cycle(7)
    out = p.cycle(8)
    assert out.status is CycleStatus.NO_DRIFT and out.message == "no drift: champion kept"
    assert out.state_name == "NoDrift"
    assert [d.kind for d in out.decisions] == ["validation.passed", "drift.checked"]
    assert sorted(p.models.loaded) == [1]


def test_retrain_requested_by_event_when_not_inline() -> None:
    p = Ports(_config(), days=9)
    out = p.cycle(7, retrain_inline=False)
    assert out.status is CycleStatus.RETRAIN_REQUESTED and out.state_name == "RetrainRequested"
    assert out.decisions[-1].event == "ctpipe.retrain.requested"
    assert out.decisions[-1].event_labels == {"ctpipe.retrain": "by-event"}
    assert p.models.loaded == {}


def test_a_retrained_batch_is_skipped_unless_forced() -> None:
    p = Ports(_config(), days=9)
    assert p.retrain(7).status is CycleStatus.PROMOTED
    skipped = p.retrain(7)
    assert skipped.status is CycleStatus.SKIPPED and skipped.state_name == "Skipped"
    assert skipped.message.startswith(f"batch {day(7)} already retrained under this config: v1")
    assert skipped.result["retrain"] == "skipped"
    # A skipped run leaves the batch's record as the deciding run wrote it.
    assert p.store.records[day(7).isoformat()].status is CycleStatus.PROMOTED
    assert sorted(p.models.loaded) == [1]
    assert not p.store.records[day(7).isoformat()].forced
    forced = p.retrain(7, force=True)
    assert forced.status in (CycleStatus.PROMOTED, CycleStatus.REJECTED)
    assert sorted(p.models.loaded) == [1, 2]
    assert p.store.records[day(7).isoformat()].forced  # the record says an operator forced it


def test_force_retrains_a_batch_the_policy_holds_back() -> None:
    """An operator's --force retrains during a cooldown (here: the wait for labelled batches
    from the drift's onset), where the cycle alone keeps the champion."""
    p = Ports(_config(), days=9)
    p.cycle(7)
    p.store.add(day(9), generate_day("demand", 9, day(9), rows=None, shift_day=0, seed=7,
                                     scenario="covariate"))
    held = p.cycle(9)
    assert held.status is CycleStatus.COOLING_DOWN, held.message
    assert not p.store.records[day(9).isoformat()].forced
    assert sorted(p.models.loaded) == [1]
    forced = p.cycle(9, force=True)
    assert forced.status in (CycleStatus.PROMOTED, CycleStatus.REJECTED), forced.message
    assert sorted(p.models.loaded) == [1, 2]
    record = p.store.records[day(9).isoformat()]
    assert record.forced and not record.attempts[-1]["forced"]
    assert record.retrained and record.retrain_reason.startswith(
        "forced by the operator (--force, or force=true on a run); the retraining policy alone "
        "would keep the champion: drift persists (data drift: ")


def test_gate_rejects_a_challenger_below_the_floor() -> None:
    p = Ports(_config(gate={"floor": 0.0001}), days=9)
    out = p.cycle(7)
    assert out.status is CycleStatus.REJECTED and out.state_name == "Rejected"
    assert out.message.startswith("challenger v1 rejected: floor:")
    assert CHAMPION not in p.models.aliases
    assert p.models.loaded[1].info.lineage.gate_decision == "rejected"
    assert "ctpipe.gate.rejected" in p.events() and "model.promoted" not in p.kinds()


APPROVAL = {"jurisdiction": "HK", "approval_jurisdictions": ["HK"]}


@pytest.mark.parametrize("answer,status,promoted", [
    (ApprovalAnswer(decision="approve", approver="Ada", reason="checked"),
     CycleStatus.PROMOTED, True),
    (ApprovalAnswer(decision="reject", approver="Grace", reason="quarter close"),
     CycleStatus.REJECTED, False),
    (None, CycleStatus.TIMED_OUT, False),
])
def test_approval_pending_then_approved_rejected_or_timed_out(answer, status, promoted) -> None:  # noqa: ANN001
    p = Ports(_config(promotion=APPROVAL), days=9, answer=answer)
    out = p.cycle(7)
    assert [r.version for r in p.asked] == [1]
    asked = [d for d in out.decisions if d.kind == "approval.requested"]
    assert len(asked) == 1 and asked[0].notify.startswith("ctpipe-demand v1 waits for approval")
    assert CycleStatus.PENDING_APPROVAL in p.store.writes  # written before the pause
    assert out.status is status
    assert (p.models.aliases.get(CHAMPION) == 1) is promoted
    tags = p.models.loaded[1].info.lineage
    assert tags.approval_decision == {CycleStatus.PROMOTED: "approved",
                                      CycleStatus.REJECTED: "rejected",
                                      CycleStatus.TIMED_OUT: "timeout"}[status]
    decided = [d for d in out.decisions if d.kind == "approval.decided"]
    assert len(decided) == 1 and decided[0].actor == tags.approver
    if status is CycleStatus.TIMED_OUT:
        assert out.failed and out.state_name == "TimedOut" and "approval timeout" in out.message
    if not promoted:
        assert "ctpipe.approval.rejected" in p.events()


def test_a_replay_never_asks_for_approval() -> None:
    p = Ports(_config(promotion=APPROVAL), days=9, replay=True)
    out = p.cycle(7)
    assert out.status is CycleStatus.PROMOTED and p.asked == []
    assert p.models.champion().lineage.approver.startswith("auto: a replay asks nobody")


@pytest.mark.parametrize("answer,status,held_after", [
    (ApprovalAnswer(decision="approve", approver="Ada", reason="v2 checked"),
     CycleStatus.PROMOTED, False),
    (ApprovalAnswer(decision="reject", approver="Ada", reason="not yet"),
     CycleStatus.REJECTED, True),
])
def test_after_an_operators_rollback_the_next_promotion_waits_for_approval(
        answer, status, held_after) -> None:  # noqa: ANN001
    # No jurisdiction asks for approval here: only the rollback does.
    p = Ports(_config(gate={"min_improvement": 0.0}), days=10, answer=answer)
    assert p.cycle(7).status is CycleStatus.PROMOTED
    p.models.tag(1, Lineage(rolled_back_from="3", rolled_back_by="alice",
                            rolled_back_at="2026-03-09T08:00:00+00:00",
                            rollback_reason="INC-7: v3 overshoots"))
    out = p.retrain(8, force=True)
    assert [r.version for r in p.asked] == [2]
    assert p.asked[0].hold == rollback_hold(p.models.loaded[1].info.lineage)
    assert "alice's rollback" in p.asked[0].hold and "INC-7: v3 overshoots" in p.asked[0].hold
    asked = next(d for d in out.decisions if d.kind == "approval.requested")
    assert asked.reason == p.asked[0].hold
    assert p.store.records[day(8).isoformat()].status is status
    assert out.status is status
    assert (p.models.aliases[CHAMPION] == 1) is held_after
    champion = p.models.champion().lineage
    assert (rollback_hold(champion) is not None) is held_after


def test_the_monitors_automatic_rollback_holds_no_promotion() -> None:
    p = Ports(_config(gate={"min_improvement": 0.0}), days=10)
    assert p.cycle(7).status is CycleStatus.PROMOTED
    p.models.tag(1, Lineage(rolled_back_from="3", rolled_back_by=AUTOMATIC_ROLLBACK_OPERATOR,
                            rolled_back_at="2026-03-09T08:00:00+00:00",
                            rollback_reason="v3 bad on 3 batches"))
    out = p.retrain(8, force=True)
    assert out.status is CycleStatus.PROMOTED and p.asked == []
    assert p.models.aliases[CHAMPION] == 2


def test_champion_changed_during_the_approval_is_not_overwritten() -> None:
    p = Ports(_config(promotion=APPROVAL, gate={"min_improvement": 0.0}), days=10,
              answer=ApprovalAnswer(decision="approve", approver="Ada", reason="ok"))
    assert p.cycle(7).status is CycleStatus.PROMOTED

    def rollback_meanwhile(ports: Ports) -> ApprovalAnswer:
        ports.models.aliases[CHAMPION] = 99  # someone moved the champion while we waited
        return ApprovalAnswer(decision="approve", approver="Ada", reason="late")

    p.answer = rollback_meanwhile
    p.models.loaded[99] = p.models.loaded[1]
    out = p.retrain(8, force=True)
    assert out.status is CycleStatus.CHAMPION_CHANGED, out.message
    assert out.state_name == "ChampionChanged"
    assert "champion is v99 now, not v1" in out.message
    assert p.models.aliases[CHAMPION] == 99
    assert out.decisions[-1].kind == "promotion.refused"


def test_a_scheduled_run_refuses_a_decided_batch() -> None:
    p = Ports(_config(), days=9)
    p.cycle(3)
    before = p.store.records[day(3).isoformat()]
    late = run_cycle(p.rt, day(3), explicit_date=False)
    assert late.status is CycleStatus.NO_NEW_BATCH and late.failed
    assert late.state_name == "NoNewBatch" and late.decisions == ()
    assert f"no new batch; the newest, {day(3)}, was already processed (waiting)" in late.message
    assert p.store.records[day(3).isoformat()] == before
    assert p.cycle(3).status is CycleStatus.WAITING  # an explicit date redoes it


def test_a_date_with_no_batch_is_refused_and_writes_nothing() -> None:
    p = Ports(_config(), days=9)
    out = p.cycle(20)
    assert out.status is CycleStatus.REFUSED and out.state_name == "Refused"
    assert f"no batch for {day(20)} has landed" in out.message
    assert p.store.records == {} and p.store.quarantined == {} and p.published == []


def test_a_crash_leaves_a_failed_record() -> None:
    p = Ports(_config(), days=9)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone")

    p.store.read_labelled = broken
    with pytest.raises(OSError, match="disk gone"):
        p.cycle(7)
    record = p.store.records[day(7).isoformat()]
    assert record.status is CycleStatus.FAILED and record.message == "OSError: disk gone"


def test_a_tracking_store_down_at_the_start_leaves_a_failed_record() -> None:
    p = Ports(_config(), days=9)

    def unreachable(day: dt.date, kind: str):  # noqa: ANN202
        raise ConnectionError("tracking store unreachable")

    p.rt = Runtime(**{**p.rt.__dict__, "tracking": unreachable})
    with pytest.raises(ConnectionError):
        p.cycle(7)
    record = p.store.records[day(7).isoformat()]
    assert record.status is CycleStatus.FAILED
    assert record.message == "ConnectionError: tracking store unreachable"


def test_every_status_names_a_state_and_every_decision_is_published_once() -> None:
    p = Ports(_config(), days=9)
    out = p.cycle(7)
    assert len({d.id for d in p.published}) == len(p.published) == len(out.decisions)
    assert np.all([d.use_case == "demand" for d in p.published])


def test_the_core_imports_no_orchestrator_or_registry() -> None:
    code = ("import sys, ctpipe.decisions, ctpipe.decisions.retraining, "
            "ctpipe.decisions.rollback; "
            "heavy = {'prefect', 'mlflow', 'great_expectations', 'lightgbm'}; "
            "assert not heavy & set(sys.modules), heavy & set(sys.modules); "
            "import ctpipe.steps.cycle, ctpipe.steps.score; "
            "assert not {'prefect', 'mlflow'} & set(sys.modules), "
            "{'prefect', 'mlflow'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_failure_while_waiting_for_approval_leaves_the_batch_failed_and_open() -> None:
    p = Ports(_config(promotion=APPROVAL), days=9,
              answer=ApprovalAnswer(decision="approve", approver="Ada", reason="ok"))

    def registry_gone(*args: object) -> None:
        raise OSError("registry gone")

    p.models.tag = registry_gone  # recording the approval fails after the pause
    with pytest.raises(OSError, match="registry gone"):
        p.cycle(7)
    record = p.store.records[day(7).isoformat()]
    assert record.status is CycleStatus.FAILED and record.message == "OSError: registry gone"
    assert CHAMPION not in p.models.aliases
    assert p.cycle(7).status is not CycleStatus.FAILED  # the next run takes the batch again


def test_scoring_traces_each_prediction_and_never_redoes_a_scored_batch(tmp_path) -> None:
    from ctpipe.db import open_database, prediction_count
    from ctpipe.steps.score import run_score

    p = Ports(_config(), days=9)
    db = open_database(f"sqlite:///{tmp_path / 'ctpipe.db'}")
    refused = run_score(p.rt, db, day(8), explicit_date=True)
    assert refused.status is CycleStatus.REFUSED and refused.state_name == "Refused"
    assert refused.message == "ctpipe-demand: no champion yet; run a cycle first"
    assert [d.kind for d in refused.decisions] == ["scoring.refused"]
    p.cycle(7)
    out = run_score(p.rt, db, day(8), explicit_date=True)
    assert out.status is CycleStatus.SCORED and out.state_name == "Scored"
    frame = p.store.predictions[day(8)]
    assert len(frame) == len(p.store.batches[day(8)]) == out.result["rows"]
    assert set(frame["model_version"]) == {1} and frame["score"].notna().all()
    assert [d.kind for d in out.decisions] == ["batch.scored"]
    assert prediction_count(db, p.rt.model_name) == len(frame)  # one logged row each
    scored = p.store.predictions[day(8)]
    again = run_score(p.rt, db, day(8), explicit_date=False)
    assert again.status is CycleStatus.NO_NEW_BATCH and "already scored" in again.message
    assert p.store.predictions[day(8)] is scored
    p.store.batches[day(8)].loc[:4, "border_wait_minutes"] = -30.0
    bad = run_score(p.rt, db, day(8), explicit_date=True)
    assert bad.status is CycleStatus.REFUSED and "border_wait_minutes" in bad.message
    assert p.store.predictions[day(8)] is scored  # nothing written
    assert prediction_count(db, p.rt.model_name) == len(frame)  # nor logged
