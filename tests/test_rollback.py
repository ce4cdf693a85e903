"""Rollback planning and applying against a real (temporary SQLite) MLflow registry.

Versions share a small stand-in model directory with its recorded sha256: a rollback reads
tags, verifies the target's files and moves an alias, and never parses a model. Tampered real
models are tests/test_integrity.py's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ctpipe import audit, integrity, registry, settings
from ctpipe.decisions.health import AliasMove, check
from ctpipe.lineage import Lineage
from ctpipe.rollback import (
    TAG_VALUE_LIMIT,
    RollbackRefused,
    apply_rollback,
    plan_rollback,
    version_span,
)
from ctpipe.trace import TraceSink

MODEL = "ctpipe-demand"
PASSED = {"gate_decision": "passed", "use_case": "demand", "metric_name": "wape"}
REJECTED = {"gate_decision": "rejected", "gate_reasons": "wape 0.31 above floor 0.30",
            "use_case": "demand"}


def _version(tags: dict[str, str], source: Path) -> int:
    c = registry.client()
    if not c.search_registered_models(f"name = '{MODEL}'"):
        c.create_registered_model(MODEL)
    # The sha256 as registration records it: promote and rollback verify the files against it.
    tags = {**tags, **integrity.record(source).to_tags()}
    return int(c.create_model_version(MODEL, source=str(source), tags=tags).version)


def _model_dir(home: Path) -> Path:
    source = home / "model"
    (source / "artifacts").mkdir(parents=True)
    (source / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    (source / "artifacts" / "booster.txt").write_text("tree\n", encoding="utf-8")
    return source


def _promote(version: int, previous: int | None) -> None:
    registry.promote(MODEL, version, previous, Lineage(previous_champion=str(previous or ""),
                                                       promoted_at="2026-03-20T06:00:00+00:00"))


@pytest.fixture
def history(ctpipe_home: Path) -> Path:
    """v1, v2 promoted in turn; v3 rejected by the gate; v4 champion (replacing v2)."""
    source = _model_dir(ctpipe_home)
    for metric in ("0.25", "0.22"):
        _version({**PASSED, "holdout_metric": metric}, source)
    _version({**REJECTED, "holdout_metric": "0.31"}, source)
    _version({**PASSED, "holdout_metric": "0.20"}, source)
    _promote(1, None)
    _promote(2, 1)
    _promote(4, 2)
    return ctpipe_home / "audit.jsonl"


def _sink(audit_path: Path):  # noqa: ANN202
    return TraceSink(audit_path).publish


def _champion() -> int:
    return registry.get_alias(MODEL, registry.CHAMPION).version


def _tags(version: int) -> dict[str, str]:
    return registry.get_version(MODEL, version).tags


def test_default_target_is_the_previous_champion(history: Path) -> None:
    plan = plan_rollback(MODEL)
    assert (plan.current.version, plan.target.version, plan.forced) == (4, 2, False)
    assert plan.notes == ("holdout wape: v4 0.2000 -> v2 0.2200 (each on its own holdout window)",)

    done = apply_rollback(plan, "  complaints about v4's forecasts  ", operator="ana@ops",
                          publish=_sink(history))

    assert _champion() == 2
    assert {k: done[k] for k in ("model", "use_case", "from_version", "to_version", "forced",
                                 "reason", "operator")} == {
        "model": MODEL, "use_case": "demand", "from_version": 4, "to_version": 2,
        "forced": False, "reason": "complaints about v4's forecasts", "operator": "ana@ops"}
    target, demoted = _tags(2), _tags(4)
    assert target["rolled_back_from"] == "4" and target["rolled_back_by"] == "ana@ops"
    assert target["rollback_reason"] == "complaints about v4's forecasts"
    assert target["rollback_forced"] == "false" and target["rolled_back_at"] == done["at"]
    assert target["previous_champion"] == "1"  # untouched: the next rollback walks further
    assert demoted["demoted_by_rollback_to"] == "2" and demoted["demoted_at"] == done["at"]
    [entry] = audit.read("demand", path=history)
    assert entry["action"] == "model.rolled_back" and entry["who"] == "ana@ops"
    assert entry["why"] == "complaints about v4's forecasts"
    assert entry["details"]["model"] == MODEL
    assert (entry["details"]["from"], entry["details"]["to"], entry["details"]["forced"]) == \
        (4, 2, False)


def test_second_rollback_walks_further_back(history: Path) -> None:
    apply_rollback(plan_rollback(MODEL), "v4 bad", operator="ana", publish=_sink(history))
    apply_rollback(plan_rollback(MODEL), "v2 bad too", operator="ana", publish=_sink(history))
    assert _champion() == 1
    with pytest.raises(RollbackRefused, match=f"^{MODEL}: champion v1 records no previous "
                       r"champion; name the version to serve with --to \(versions: 1..4\)$"):
        plan_rollback(MODEL)
    assert [(e["details"]["from"], e["details"]["to"]) for e in audit.read(path=history)] == \
        [(4, 2), (2, 1)]


def test_named_older_version(history: Path) -> None:
    plan = plan_rollback(MODEL, to_version=1)
    assert plan.target.version == 1
    assert "skips v2, the previous champion recorded on v4" in plan.notes
    apply_rollback(plan, "back to the first model", operator="ana", publish=_sink(history))
    assert _champion() == 1


def test_gate_rejected_version_needs_force(history: Path) -> None:
    with pytest.raises(RollbackRefused) as refused:
        plan_rollback(MODEL, to_version=3)
    assert str(refused.value) == (
        f"version 3 of {MODEL} never passed the gate (gate_decision=rejected: wape 0.31 above "
        "floor 0.30); use --force to serve it anyway")
    assert _champion() == 4

    plan = plan_rollback(MODEL, to_version=3, force=True)
    assert plan.forced and plan.notes[0].startswith("forced: version 3 of")
    done = apply_rollback(plan, "v3 handles the new route", operator="ana", publish=_sink(history))
    assert done["forced"] is True and _champion() == 3
    assert _tags(3)["rollback_forced"] == "true"
    assert audit.read(path=history)[0]["details"]["forced"] is True


def test_force_is_only_recorded_when_it_overrode_a_refusal(history: Path) -> None:
    plan = plan_rollback(MODEL, force=True)
    assert plan.target.version == 2 and plan.forced is False


def test_version_without_approval_is_refused(history: Path) -> None:
    source = history.parent / "model"
    for decision in ("rejected", "timeout"):
        version = _version({**PASSED, "approval_decision": decision}, source)
        with pytest.raises(RollbackRefused, match=rf"^version {version} of {MODEL} was never "
                           rf"approved \(approval_decision={decision}\); use --force"):
            plan_rollback(MODEL, to_version=version)
    approved = _version({**PASSED, "approval_decision": "approved"}, source)
    assert plan_rollback(MODEL, to_version=approved).target.version == approved
    assert plan_rollback(MODEL, to_version=5, force=True).forced


def test_missing_or_current_target_is_refused(history: Path) -> None:
    with pytest.raises(RollbackRefused,
                       match=f"^version 9 of {MODEL} does not exist; versions: 1..4$"):
        plan_rollback(MODEL, to_version=9)
    with pytest.raises(RollbackRefused, match=f"^version 4 of {MODEL} is already champion$"):
        plan_rollback(MODEL, to_version=4)
    registry.client().delete_model_version(MODEL, "2")
    with pytest.raises(RollbackRefused, match=rf"^{MODEL}: the previous champion v2 \(recorded "
                       r"on champion v4\) no longer exists; name another with --to "
                       r"\(versions: 1, 3..4\)$"):
        plan_rollback(MODEL)


def test_no_champion(ctpipe_home: Path) -> None:
    with pytest.raises(RollbackRefused, match="^nope: no champion to roll back from$"):
        plan_rollback("nope")
    _version(PASSED, _model_dir(ctpipe_home))
    with pytest.raises(RollbackRefused, match=f"^{MODEL}: no champion to roll back from$"):
        plan_rollback(MODEL, to_version=1)


def test_reason_is_required_and_a_stale_plan_is_refused(history: Path) -> None:
    plan = plan_rollback(MODEL)
    with pytest.raises(RollbackRefused, match="needs a reason"):
        apply_rollback(plan, "  ", operator="ana", publish=_sink(history))
    _promote(1, 4)  # someone promoted meanwhile
    with pytest.raises(RollbackRefused, match=f"^{MODEL}: champion is v1, not v4 as planned"):
        apply_rollback(plan, "too late", operator="ana", publish=_sink(history))
    assert _champion() == 1 and audit.read(path=history) == []


def test_long_reason_is_kept_whole_in_the_audit_only(history: Path) -> None:
    reason = "x" * (TAG_VALUE_LIMIT * 30)  # beyond MLflow's 100,000-character tag limit
    apply_rollback(plan_rollback(MODEL), reason, operator="ana", publish=_sink(history))
    assert _tags(2)["rollback_reason"] == "x" * TAG_VALUE_LIMIT
    assert audit.read(path=history)[0]["why"] == reason


def test_failed_tagging_leaves_the_former_champion_serving(history: Path) -> None:
    # An earlier rollback left tags on v2; a failed rollback must put them back as they were.
    registry.tag_version(MODEL, 2, Lineage(rolled_back_from="3", rollback_reason="earlier"))
    # A real storage failure on the second half of the tagging (the demoted version's tags),
    # after the target's tags and the alias have been written.
    db = Path(settings.tracking_uri().removeprefix("sqlite:///"))
    with sqlite3.connect(db) as con:
        con.execute("CREATE TRIGGER refuse_demotion BEFORE INSERT ON model_version_tags "
                    "WHEN NEW.key = 'demoted_at' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(Exception, match="disk full"):
        apply_rollback(plan_rollback(MODEL), "v4 bad", operator="ana", publish=_sink(history))
    assert _champion() == 4
    target = _tags(2)
    assert target["rolled_back_from"] == "3" and target["rollback_reason"] == "earlier"
    assert not {"rolled_back_at", "rolled_back_by", "rollback_forced"} & set(target)
    assert "demoted_by_rollback_to" not in _tags(4)
    assert audit.read(path=history) == []


def test_version_span() -> None:
    assert version_span([4, 1, 2, 3]) == "1..4"
    assert version_span([1, 2, 5, 7, 8]) == "1..2, 5, 7..8"
    assert version_span([]) == "none"


def test_status_shows_the_rollback_and_the_promotion_hold_it_leaves(history: Path) -> None:
    import json

    from typer.testing import CliRunner

    from ctpipe.cli import app

    apply_rollback(plan_rollback(MODEL), "INC-7: v4 overshoots", operator="ana@ops",
                   publish=_sink(history))
    text = CliRunner().invoke(app, ["status", "demand"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert any(line.startswith("  restored ") and line.endswith(
        " from v4 by ana@ops's rollback; reason: INC-7: v4 overshoots") for line in lines)
    held = [line for line in lines if line.startswith("  promotions held: ")]
    assert len(held) == 1 and held[0].endswith(
        "promotions wait for approval until an approved challenger replaces it")
    report = json.loads(CliRunner().invoke(app, ["status", "demand", "--json"]).output)
    champion = report["champion"]
    assert champion["version"] == 2
    assert champion["restored_by_rollback"]["by"] == "ana@ops"
    assert champion["restored_by_rollback"]["from_version"] == "4"
    assert champion["promotion_hold"] == held[0].removeprefix("  promotions held: ")


def test_the_monitors_rollback_from_a_held_champion_keeps_the_hold(history: Path) -> None:
    from ctpipe.decisions.rollback import AUTOMATIC_ROLLBACK_OPERATOR, rollback_hold

    apply_rollback(plan_rollback(MODEL), "INC-7: v4 overshoots", operator="ana@ops",
                   publish=_sink(history))
    held = rollback_hold(registry.get_version(MODEL, 2).lineage)
    assert held is not None and "ana@ops's rollback" in held
    # The monitor then finds v2 bad too and goes back to v1: only an approval ends the hold.
    apply_rollback(plan_rollback(MODEL), "automatic: v2 bad on 3 batches",
                   operator=AUTOMATIC_ROLLBACK_OPERATOR, publish=_sink(history))
    assert _champion() == 1
    assert rollback_hold(registry.get_version(MODEL, 1).lineage) == held


def test_doctor_names_a_rollback_missing_from_the_audit_trail(history: Path) -> None:
    from ctpipe.doctor import examine
    from ctpipe.workspace import open_workspace

    ws = open_workspace("demand")
    trail = ws.audit_path
    for version in (1, 2, 4):
        audit.record("model.promoted", "demand", "gate passed", who="auto", path=trail,
                     details={"model": MODEL, "version": version})
    apply_rollback(plan_rollback(MODEL), "v4 is bad", operator="ana", publish=_sink(trail))
    assert examine(ws, lambda version: None).alias_moves_traced == {2: True}

    # The rollback's line deleted: v2's own earlier promotion does not account for the move.
    lines = trail.read_text(encoding="utf-8").splitlines(keepends=True)
    trail.write_text("".join(x for x in lines if "model.rolled_back" not in x), encoding="utf-8")
    found = examine(ws, lambda version: None)
    assert found.alias_moves_traced == {2: False}
    assert found.audit_chain_breaks == []  # the last line cut off: only the alias check sees it

    # A line deleted from the middle (v2's promotion) breaks the hash chain at the next line.
    trail.write_text("".join([lines[0], *lines[2:]]), encoding="utf-8")
    assert examine(ws, lambda version: None).audit_chain_breaks == [
        f"{trail}: line 2's prev_sha256 does not match line 1: a line was changed, deleted or "
        "inserted there"]


def test_only_the_model_s_own_moves_count() -> None:
    from ctpipe.doctor import _alias_move

    promoted = {"action": "model.promoted", "at": "t",
                "details": {"model": MODEL, "version": 3, "previous": 2}}
    assert _alias_move(promoted, MODEL) == AliasMove(3, 2, True, "t")
    assert _alias_move(promoted, "ctpipe-demand-old") is None  # the use case's earlier model
    rolled = {"action": "model.rolled_back", "details": {"model": MODEL, "from": 4, "to": 2}}
    assert _alias_move(rolled, MODEL) == AliasMove(2, 4, True, "")
    observed = {"action": "champion.observed", "details": {"model": MODEL, "version": 2}}
    assert _alias_move(observed, MODEL) == AliasMove(2, None, False, "")
    assert _alias_move({"action": "gate.decided", "details": {"model": MODEL}}, MODEL) is None


def test_doctor_reads_a_promotion_and_a_rollback_that_met_in_their_order(
        history: Path) -> None:
    from ctpipe.doctor import examine
    from ctpipe.workspace import open_workspace

    ws = open_workspace("demand")
    trail = ws.audit_path
    for version, previous in ((1, None), (2, 1)):
        audit.record("model.promoted", "demand", "gate passed", who="auto", path=trail,
                     details={"model": MODEL, "version": version, "previous": previous})
    # The fixture's promotion of v4 moved the alias; the rollback to v2 moves it back and
    # writes its line before the promotion's late one.
    apply_rollback(plan_rollback(MODEL), "v4 is bad", operator="ana", publish=_sink(trail))
    audit.record("model.promoted", "demand", "gate passed", who="auto", path=trail,
                 details={"model": MODEL, "version": 4, "previous": 2})
    assert _champion() == 2
    found = examine(ws, lambda version: None)
    assert found.alias_moves_traced == {2: True}
    assert "untraced-alias-move" not in [p.code for p in check(found)]
