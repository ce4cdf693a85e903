"""The pure rules of ctpipe.decisions, the Lineage type and the trace sink: plain values only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ctpipe.decisions.outcome import STATE_NAMES, CycleStatus, Outcome
from ctpipe.decisions.performance import judge_performance
from ctpipe.decisions.retraining import (
    COLD_START,
    ApprovalAnswer,
    ChampionChanged,
    PriorVersion,
    RetrainHistory,
    Unservable,
    after_drift,
    after_gate,
    automatic_approver,
    before_training,
    judge_approval,
    needs_approval,
    promotion_move,
    refuse_processed,
    refuse_scoring,
    retrain_reason,
    window_check_refusal,
    writes_record,
)
from ctpipe.decisions.rollback import AUTOMATIC_ROLLBACK_OPERATOR, rollback_hold
from ctpipe.drift import DriftReport, MetricInterval
from ctpipe.lineage import Lineage
from ctpipe.trace import Artifact, Decision, TraceSink

DAY = dt.date(2026, 3, 20)


def test_every_status_has_a_state_name_and_failures_are_failed() -> None:
    assert set(STATE_NAMES) == set(CycleStatus)
    failed = {s for s in CycleStatus if Outcome(s, "").failed}
    assert failed == {CycleStatus.RUNNING, CycleStatus.QUARANTINED, CycleStatus.TIMED_OUT,
                      CycleStatus.NO_NEW_BATCH, CycleStatus.REFUSED, CycleStatus.FAILED}
    assert {s for s in CycleStatus if not s.final} == {
        CycleStatus.RUNNING, CycleStatus.PENDING_APPROVAL, CycleStatus.FAILED}
    assert len({name for name, _ in STATE_NAMES.values()}) == len(CycleStatus)


def test_a_scheduled_run_refuses_only_a_decided_batch() -> None:
    for open_batch in (None, CycleStatus.FAILED, CycleStatus.RUNNING,
                       CycleStatus.PENDING_APPROVAL):
        assert refuse_processed(open_batch, explicit_date=False, day=DAY, where="b").go_on
    assert refuse_processed(CycleStatus.PROMOTED, explicit_date=True, day=DAY, where="b").go_on
    never = refuse_processed(None, explicit_date=True, day=DAY, where="b", landed=False)
    assert never.status is CycleStatus.REFUSED and f"no batch for {DAY} has landed" in \
        never.message
    late = refuse_processed(CycleStatus.NO_DRIFT, explicit_date=False, day=DAY, where="b")
    assert late.status is CycleStatus.NO_NEW_BATCH
    # The operator's words first: on the command line the option is --date.
    assert late.message == (f"b: no new batch; the newest, {DAY}, was already processed "
                            f"(no-drift); pass --date {DAY} (batch_date as a flow parameter) "
                            "to redo it")


def test_after_drift_and_which_runs_rewrite_a_record() -> None:
    assert after_drift(retrain_reason=None, retrain_inline=True).status is CycleStatus.NO_DRIFT
    asked = after_drift(retrain_reason="data drift", retrain_inline=False)
    assert asked.status is CycleStatus.RETRAIN_REQUESTED
    assert asked.message == "retraining requested by event: data drift"
    assert after_drift(retrain_reason="data drift", retrain_inline=True).go_on
    assert writes_record(trained=True, status=CycleStatus.REJECTED)
    assert writes_record(trained=False, status=CycleStatus.WAITING)
    assert not writes_record(trained=False, status=CycleStatus.SKIPPED)
    assert not writes_record(trained=False, status=CycleStatus.FAILED)
    assert writes_record(trained=False, status=CycleStatus.FAILED, window_findings=True)


def test_a_training_window_mostly_failing_is_refused_before_anything_moves() -> None:
    day = dt.date(2026, 3, 9)

    def refused(failing: int, checked: int, window: int = 6) -> bool:
        return window_check_refusal(day=day, window=window, checked=checked,
                                    failing=[f"b{i}: bad" for i in range(failing)]) is not None

    assert not refused(3, 6) and refused(4, 6)  # more than half of the window
    assert not refused(3, 9)  # reaching back past three failures to fill the window
    assert refused(3, 5, window=12) and refused(5, 5, window=12)  # a young history
    assert not refused(1, 1) and not refused(1, 2, window=2)  # one bad batch is set aside
    message = window_check_refusal(day=day, window=6, checked=6,
                                   failing=["x.parquet: batch failed validation", "y"] * 2)
    assert message == ("training window as of batch 2026-03-09: 4 of 6 batches checked fail "
                       "validation, more than half of 6 (training.window 6), so none is moved "
                       "aside and nothing is trained (a rule changed since they passed? a "
                       "backlog in another shape? fix the rule, or move aside those you judge "
                       "wrong with ctpipe set-aside); first: x.parquet: batch failed validation")


def test_scoring_refusals_in_order() -> None:
    common = {"where": "p", "day": DAY}
    late = refuse_scoring(already_scored=True, explicit_date=False, invalid="bad",
                          champion_model="m", **common)
    assert late.status is CycleStatus.NO_NEW_BATCH and late.message == (
        f"p: batch {DAY} already scored; no new batch has landed (pass --date {DAY}, or "
        "batch_date as a flow parameter, to score it again)")
    assert refuse_scoring(already_scored=True, explicit_date=True, invalid=None,
                          champion_model=None, **common).go_on
    assert refuse_scoring(already_scored=False, explicit_date=True, invalid="bad",
                          champion_model="m", **common).message == "bad"
    assert refuse_scoring(already_scored=False, explicit_date=True, invalid=None,
                          champion_model="m", **common).message == \
        "m: no champion yet; run a cycle first"
    # A champion failing its integrity check comes before the input's own problems.
    tampered = refuse_scoring(already_scored=False, explicit_date=True, invalid="bad",
                              champion_model=None, unservable=Unservable("m v2: files changed"),
                              **common)
    assert (tampered.status, tampered.message) == (
        CycleStatus.REFUSED, "the champion failed its integrity check, nothing was scored: "
        "m v2: files changed")
    unread = refuse_scoring(already_scored=False, explicit_date=True, invalid="bad",
                            champion_model=None, unservable=Unservable(
                                "m v2: its stored files could not be read", unread=True),
                            **common)
    assert (unread.status, unread.message) == (
        CycleStatus.REFUSED, "the champion could not be verified, nothing was scored: "
        "m v2: its stored files could not be read")


def _report(drifted: bool) -> DriftReport:
    from ctpipe.drift import FeatureDrift

    feats = [FeatureDrift("a", "numeric", "ks", 0.5 if drifted else 0.01, 0.05, drifted,
                          0.001 if drifted else 0.9, 10, 10, 0, 0, "")]
    return DriftReport(features=feats, drift_share=1.0 if drifted else 0.0, threshold_share=0.5,
                       dataset_drift=drifted)


def test_retrain_reason_in_order_of_precedence() -> None:
    # More cases (pooled performance, triggers, schedule, cooldown): test_retraining_policy.py
    assert retrain_reason(report=None, performance=None).reason == COLD_START
    history = RetrainHistory(since_training=9)
    assert retrain_reason(report=_report(True), performance=None, history=history,
                          retrain_every=1).reason.startswith("data drift: 1 of 1 tested features")
    perf = judge_performance(batches=["d"], metric="wape", baseline=0.2, rows=99, min_rows=1,
                             interval=MetricInterval(0.4, 0.35, 0.45, 0.95, 400, 0, 99),
                             tolerance=0.3, higher_is_better=False)
    assert retrain_reason(report=_report(False), performance=perf, history=history,
                          retrain_every=1).reason.startswith("performance drift: wape 0.4000")
    assert retrain_reason(report=_report(False), performance=None,
                          history=RetrainHistory(since_training=3), retrain_every=3).reason == \
        "scheduled: 3 batches since the champion's training window"
    assert retrain_reason(report=_report(False), performance=None,
                          history=RetrainHistory(since_training=2),
                          retrain_every=3).reason is None


def test_before_training_skips_then_waits_then_goes_on() -> None:
    prior = [PriorVersion(4, Lineage(gate_decision="passed"))]
    skipped = before_training(day=DAY, trained=prior, force=False, window_problem="short")
    assert skipped.status is CycleStatus.SKIPPED and skipped.message == (
        f"batch {DAY} already retrained under this config: v4 (gate passed, approval not "
        "needed); run again with --force (force=true as a flow parameter) to train again")
    forced = before_training(day=DAY, trained=prior, force=True, window_problem="short")
    assert forced.status is CycleStatus.WAITING and forced.message == "cannot retrain yet: short"
    assert before_training(day=DAY, trained=[], force=False, window_problem=None).go_on


def test_after_gate() -> None:
    rejected = after_gate(passed=False, reasons=["floor: x"], version=3, needs_approval=True)
    assert rejected.status is CycleStatus.REJECTED
    assert rejected.message == "challenger v3 rejected: floor: x"
    assert after_gate(passed=True, reasons=[], version=3, needs_approval=True).status \
        is CycleStatus.PENDING_APPROVAL
    assert after_gate(passed=True, reasons=[], version=3, needs_approval=False).go_on
    held = after_gate(passed=True, reasons=[], version=3, needs_approval=True, hold="why")
    assert held.message == "challenger v3 passed the gate and waits for approval: why"


def test_only_an_operators_rollback_holds_promotions() -> None:
    restored = Lineage(rolled_back_from="5", rolled_back_by="alice",
                       rolled_back_at="2026-03-25T08:00:00+00:00",
                       rollback_reason="INC-7: v5 overshoots")
    assert rollback_hold(restored) == (
        "the champion was restored from v5 by alice's rollback at 2026-03-25T08:00:00+00:00: "
        "INC-7: v5 overshoots; promotions wait for approval until an approved challenger "
        "replaces it")
    assert rollback_hold(restored.merged(Lineage(
        rolled_back_by=AUTOMATIC_ROLLBACK_OPERATOR))) is None
    assert rollback_hold(Lineage(approver="auto: jurisdiction SG requires no approval")) is None
    assert rollback_hold(None) is None


def test_who_approves() -> None:
    assert needs_approval(requires_approval=True, replay=False)
    assert not needs_approval(requires_approval=True, replay=True)
    assert not needs_approval(requires_approval=False, replay=False)
    assert needs_approval(requires_approval=False, replay=False, hold="restored by a rollback")
    assert not needs_approval(requires_approval=False, replay=True, hold="restored")
    assert automatic_approver(jurisdiction="SG", requires_approval=False) == \
        "auto: jurisdiction SG requires no approval"
    assert "replay" in automatic_approver(jurisdiction="HK", requires_approval=True)


def test_approval_verdicts() -> None:
    now = dt.datetime(2026, 3, 20, 6, tzinfo=dt.UTC)
    yes = judge_approval(ApprovalAnswer(decision="approve", approver="Ada", reason="ok"),
                         version=2, timeout_seconds=60, now=now)
    assert yes.verdict.go_on and yes.approver == "Ada"
    assert yes.lineage.to_tags() == {"approval_decision": "approved", "approver": "Ada",
                                     "approval_reason": "ok",
                                     "approval_at": "2026-03-20T06:00:00+00:00"}
    no = judge_approval(ApprovalAnswer(decision="reject", approver="Bo", reason="not now"),
                        version=2, timeout_seconds=60, now=now)
    assert no.verdict.status is CycleStatus.REJECTED
    assert no.verdict.message == "challenger v2 not promoted: approval rejected by Bo: not now"
    late = judge_approval(None, version=2, timeout_seconds=60, now=now)
    assert late.verdict.status is CycleStatus.TIMED_OUT
    assert late.lineage.approval_decision == "timeout"
    assert "approval timeout by nobody (timeout)" in late.verdict.message


def test_promotion_is_a_compare_and_swap() -> None:
    assert promotion_move(model_name="m", version=3, expected=2, current=2) == "move"
    assert promotion_move(model_name="m", version=3, expected=None, current=None) == "move"
    assert promotion_move(model_name="m", version=3, expected=2, current=3) == \
        "already-champion"
    with pytest.raises(ChampionChanged, match="champion is v1 now, not v2 that v3 was gated"):
        promotion_move(model_name="m", version=3, expected=2, current=1)


def test_lineage_owns_every_tag_name_and_keeps_unknown_tags() -> None:
    tags = {"gate_decision": "passed", "holdout_metric": "0.25", "previous_champion": "3",
            "set_by_hand": "x"}
    lineage = Lineage.from_tags(tags)
    assert lineage.gate_passed and lineage.metric == 0.25 and lineage.previous == 3
    assert lineage.other == {"set_by_hand": "x"}
    assert Lineage.from_tags(lineage.to_tags()) == lineage
    assert Lineage(gate_reasons="r" * 9000).to_tags()["gate_reasons"] == "r" * 5000
    assert Lineage(approval_decision="pending").approval_missing
    assert not Lineage().approval_missing
    merged = Lineage(gate_decision="passed").merged(Lineage(approver="A"))
    assert merged.to_tags() == {"gate_decision": "passed", "approver": "A"}


def test_the_sink_publishes_each_decision_exactly_once(tmp_path: Path) -> None:
    seen: dict[str, list[str]] = {"artifact": [], "event": [], "notify": [], "log": []}
    sink = TraceSink(tmp_path / "audit.jsonl",
                     artifacts=lambda d: seen["artifact"].append(d.kind),
                     events=lambda d: seen["event"].append(d.event),
                     notifier=lambda d: seen["notify"].append(d.notify),
                     log=seen["log"].append)
    promoted = Decision(kind="model.promoted", use_case="demand", subject="m v2", reason="why",
                        actor="Ada", details={"version": 2},
                        artifact=Artifact("promotion", "Promoted v2", "# md"),
                        event="ctpipe.model.promoted", notify="m v2 promoted")
    quiet = Decision(kind="drift.checked", use_case="demand", subject="batch d", reason="no")
    sink.publish(promoted)
    sink.publish(promoted)  # a retried publisher must not write the trace twice
    sink.publish(quiet)
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(a["action"], a["who"], a["why"]) for a in audit] == [
        ("model.promoted", "Ada", "why"), ("drift.checked", audit[1]["who"], "no")]
    assert audit[0]["details"]["version"] == 2
    assert audit[0]["details"]["decision_id"] == promoted.id
    assert seen == {"artifact": ["model.promoted"], "event": ["ctpipe.model.promoted"],
                    "notify": ["m v2 promoted"],
                    "log": ["model.promoted (m v2): why", "drift.checked (batch d): no"]}
