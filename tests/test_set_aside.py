"""`ctpipe set-aside`: an operator moves batches out of the landing zone, with the evidence,
and a run killed half way is completed by the next one."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ctpipe import landing
from ctpipe.cli import app
from ctpipe.store import SET_ASIDE_INTENT
from ctpipe.workspace import Workspace
from tests.helpers import day, simulated_workspace, small_config


def _set_aside(ws: Workspace, *dates: str, operator: str = "ops"):  # noqa: ANN202
    args = ["set-aside", ws.ref, *[x for d in dates for x in ("--date", d)],
            "--reason", "sensor swap", "--operator", operator]
    return CliRunner().invoke(app, args)


def _audited(ws: Workspace, action: str = "batch.set_aside") -> list[dict]:
    if not ws.audit_path.exists():
        return []
    entries = [json.loads(line) for line in ws.audit_path.read_text().splitlines()]
    return [e for e in entries if e["action"] == action]


def _landed(ws: Workspace) -> list[str]:
    return [d.isoformat() for d in ws.store.batch_dates()]


def _killed_set_aside(ws: Workspace, target: dt.date, decision_id: str) -> None:
    """What `ctpipe set-aside` leaves when it is killed after writing its intent."""
    intent = {"operator": "ops", "reason": "resent", "verdict": "it passes the current "
              "validation rules", "decision_id": decision_id,
              "batch_sha256": ws.store.batch_fingerprint(target), "at": "2026-12-06T10:00:00"}
    ws.store.open_attempt(target, {SET_ASIDE_INTENT: json.dumps(intent)})


@pytest.fixture
def ws(ctpipe_home: Path, tmp_path: Path) -> Workspace:
    return simulated_workspace(small_config(tmp_path), days=9)


def test_an_operator_sets_batches_aside_with_the_reason_and_the_validation_result(
        ws: Workspace) -> None:
    broken = dt.date.fromisoformat(day(3))
    path = landing.batch_path(ws.landing, broken)
    frame = pd.read_parquet(path)
    frame.loc[:4, "border_wait_minutes"] = -30.0  # the demand suite's range rule
    frame.to_parquet(path)
    runner = CliRunner()

    # A date that did not land, or no reason: refused, nothing moved or audited.
    unknown = _set_aside(ws, day(3), day(40))
    assert unknown.exit_code == 2
    assert f"--date {day(40)}: no such batch in {ws.landing} (nothing was moved)" \
        in unknown.output
    blank = runner.invoke(app, ["set-aside", ws.ref, "--date", day(3), "--reason", " "])
    assert blank.exit_code == 2 and "--reason" in blank.output
    assert len(_landed(ws)) == 9 and not ws.audit_path.exists()

    result = _set_aside(ws, day(3), day(5), day(3))  # a date given twice moves once
    assert result.exit_code == 0, result.output
    assert _landed(ws) == [day(i) for i in range(9) if i not in (3, 5)]
    entries = _audited(ws)
    assert [(e["who"], e["details"]["batch_date"], e["details"]["passed_validation"])
            for e in entries] == [("ops", day(3), False), ("ops", day(5), True)]
    assert entries[0]["why"].startswith("set aside by ops: sensor swap (it fails the current "
                                        "validation rules: ")
    for i, verdict in ((3, "it fails the current validation rules"),
                       (5, "it passes the current validation rules")):
        folder = ws.quarantine / day(i) / "attempt-1"
        summary = (folder / "summary.md").read_text()
        assert summary.startswith(f"# Set aside by ops\n\nsensor swap\n\nWhen set aside, {verdict}")
        assert (folder / f"{day(i)}.parquet").is_file() and (folder / "gx_result.json").is_file()
        intent = json.loads((folder / SET_ASIDE_INTENT).read_text())
        assert (intent["operator"], intent["reason"]) == ("ops", "sensor swap")
        assert f"batch {day(i)}: set aside by ops: sensor swap ({verdict}" in result.output
        assert f"  evidence: {folder}" in result.output
    assert "border_wait_minutes" in (ws.quarantine / day(3) / "attempt-1" / "summary.md"
                                     ).read_text()


def test_a_batch_a_run_works_on_is_not_set_aside(ws: Workspace) -> None:
    with ws.store.working_on(dt.date.fromisoformat(day(4))):
        busy = _set_aside(ws, day(4))
    assert busy.exit_code == 1
    assert busy.output.startswith(f"set-aside stopped: a run is working on batch {day(4)} now")
    assert day(4) in _landed(ws) and _audited(ws) == []
    assert not (ws.quarantine / day(4)).exists()


def test_a_set_aside_killed_before_the_move_is_finished_by_doctor_repair(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = shutil.move

    def killed(*args: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr("ctpipe.store.shutil.move", killed)
    stopped = _set_aside(ws, day(6))
    assert stopped.exit_code == 1
    assert "set-aside stopped: No space left on device" in stopped.output
    # The intent and the audit are written; the batch has not moved.
    assert day(6) in _landed(ws) and len(_audited(ws)) == 1
    doctor = CliRunner().invoke(app, ["doctor", ws.ref])
    [line] = [x for x in doctor.output.splitlines() if x.startswith("set-aside-unfinished: ")]
    assert line == (f"set-aside-unfinished: batch {day(6)}: set aside by ops (evidence in "
                    f"{ws.quarantine / day(6) / 'attempt-1'}) but still in the landing zone: "
                    f"the run was killed before the move (fix: ctpipe doctor {ws.ref} --repair)")

    monkeypatch.setattr("ctpipe.store.shutil.move", moved)
    repaired = CliRunner().invoke(app, ["doctor", ws.ref, "--repair"])
    assert "repaired: batch.set_aside: set aside by ops: sensor swap" in repaired.output
    assert "set-aside-unfinished" not in repaired.output
    assert day(6) not in _landed(ws)
    assert (ws.quarantine / day(6) / "attempt-1" / f"{day(6)}.parquet").is_file()
    assert len(_audited(ws)) == 1  # audited once, not again by the repair


def test_a_set_aside_killed_before_its_audit_is_audited_by_the_next_command(
        ws: Workspace) -> None:
    # Killed right after the intent was written: no audit, the batch still landed.
    target = dt.date.fromisoformat(day(2))
    intent = {"operator": "ops", "reason": "resent by the supplier", "verdict":
              "it passes the current validation rules", "decision_id": "d" * 32,
              "batch_sha256": ws.store.batch_fingerprint(target), "at": "2026-12-06T10:00:00"}
    ws.store.open_attempt(target, {SET_ASIDE_INTENT: json.dumps(intent)})
    # And another, whose batch was replaced before the move: it must not move.
    other = dt.date.fromisoformat(day(7))
    ws.store.open_attempt(other, {SET_ASIDE_INTENT: json.dumps(
        {**intent, "decision_id": "e" * 32, "batch_sha256": "0" * 64})})

    result = _set_aside(ws, day(2), day(8), operator="lead")
    assert result.exit_code == 0, result.output
    assert day(2) not in _landed(ws) and day(8) not in _landed(ws) and day(7) in _landed(ws)
    entries = _audited(ws)  # day 7's set-aside never audited: its batch never moved
    assert [(e["who"], e["details"]["batch_date"]) for e in entries] == [
        ("ops", day(2)), ("lead", day(8))]
    assert entries[0]["details"]["decision_id"] == "d" * 32
    [void] = _audited(ws, "batch.set_aside_void")
    assert void["why"].startswith("not set aside after all: the batch was replaced before it "
                                  "moved (sha256 ")
    assert (ws.quarantine / day(7) / "attempt-1" / "not_moved.md").is_file()
    # Done with: nothing left for doctor, nothing done twice by the next command.
    assert "set-aside-unfinished" not in CliRunner().invoke(app, ["doctor", ws.ref]).output
    again = _set_aside(ws, day(1))
    assert again.exit_code == 0 and len(_audited(ws)) == 3


def test_a_batch_put_back_after_its_set_aside_stays(ws: Workspace) -> None:
    assert _set_aside(ws, day(4)).exit_code == 0
    folder = ws.quarantine / day(4) / "attempt-1"
    shutil.copy(folder / f"{day(4)}.parquet", ws.landing / "batches")  # undone by hand
    (folder / f"{day(4)}.parquet").unlink()
    assert ws.store.pending_set_asides() == []
    assert "set-aside-unfinished" not in CliRunner().invoke(app, ["doctor", ws.ref]).output
    assert day(4) in _landed(ws)


def test_the_batch_s_own_cycle_completes_its_set_aside_before_it_reads_it(
        ws: Workspace) -> None:
    # Killed after the audit, before the move; the next run is that batch's own cycle.
    from ctpipe.steps.cycle import run_cycle
    from ctpipe.steps.ports import Runtime
    from tests.fakes import MemoryRegistry

    target = dt.date.fromisoformat(day(8))
    _killed_set_aside(ws, target, "f" * 32)
    published: list = []
    rt = Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                 models=MemoryRegistry(ws.model_name), publish=published.append)
    out = run_cycle(rt, target, explicit_date=True)
    assert day(8) not in _landed(ws)
    assert [d.kind for d in published][:1] == ["batch.set_aside"]
    assert "validation.passed" not in [d.kind for d in out.decisions]


def _repair_in_its_own_process(config_path: str, barrier, results) -> None:  # noqa: ANN001
    """A second `doctor --repair` (or cycle) completing set-asides at the same moment."""
    import time

    from ctpipe import audit
    from ctpipe.steps.ports import Runtime
    from ctpipe.steps.set_aside import finish_set_asides
    from ctpipe.trace import TraceSink
    from ctpipe.workspace import open_workspace
    from tests.fakes import MemoryRegistry

    real_record = audit.record

    def slow_record(*args: object, **kwargs: object) -> object:
        time.sleep(0.5)  # the other process checks the trail while this one writes to it
        return real_record(*args, **kwargs)

    audit.record = slow_record
    ws = open_workspace(config_path)
    sink = TraceSink(ws.audit_path)
    rt = Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                 models=MemoryRegistry(ws.model_name), publish=sink.publish, traced=sink.traced)
    barrier.wait(timeout=120)
    results.put([d.kind for d in finish_set_asides(rt)])


def test_two_processes_completing_the_same_set_aside_move_and_audit_it_once(
        ws: Workspace) -> None:
    import multiprocessing

    _killed_set_aside(ws, dt.date.fromisoformat(day(5)), "a" * 32)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    runs = [context.Process(target=_repair_in_its_own_process,
                            args=(ws.ref, barrier, results)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=180)
    assert [run.exitcode for run in runs] == [0, 0]
    done = results.get(timeout=5) + results.get(timeout=5)
    assert "batch.set_aside" in done and "batch.set_aside_void" not in done
    folder = ws.quarantine / day(5) / "attempt-1"
    assert (folder / f"{day(5)}.parquet").is_file() and day(5) not in _landed(ws)
    assert [e["details"]["decision_id"] for e in _audited(ws)] == ["a" * 32]
    assert _audited(ws, "batch.set_aside_void") == [] and ws.store.pending_set_asides() == []
