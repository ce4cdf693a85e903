"""A retrain validates the batches it trains on that no validation passed as they are now.

A cycle validates only its own batch. Batches landed in bulk (a backlog, a history copied in
before the first cycle) or replaced after they passed reach a training window unchecked unless
the retrain checks them: those that fail are quarantined as a cycle would have, and the window
reaches back for the batches before them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ctpipe import landing
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.steps import validate
from ctpipe.steps.set_aside import set_aside
from ctpipe.workspace import open_workspace
from tests.helpers import simulated_workspace, small_config
from tests.test_core_outcomes import Ports, _config, day


def _break(frame: pd.DataFrame) -> None:
    frame.loc[:4, "border_wait_minutes"] = -30.0  # the demand suite's range rule


def test_a_bad_batch_of_a_backlog_is_quarantined_before_the_cold_start_trains_on_it() -> None:
    p = Ports(_config(), days=9)
    _break(p.store.batches[day(3)])  # landed with the backlog; no cycle ever ran on it

    out = p.cycle(7)

    assert out.status is CycleStatus.PROMOTED, out.message
    assert [d.kind for d in out.decisions] == [
        "validation.passed", "drift.checked", "validation.failed", "gate.decided",
        "model.promoted"]
    failed = out.decisions[2]
    assert failed.subject == f"batch {day(3)}" and failed.event == "ctpipe.validation.failed"
    assert "border_wait_minutes" in failed.reason
    assert f"checked before batch {day(7)}'s retrain would train on it" in failed.reason
    assert day(3) not in p.store.batches and "summary.md" in p.store.quarantined[day(3)]
    assert p.store.records[day(7).isoformat()].training_set_aside == [failed.reason]
    # The window reached back past the quarantined batch: six labelled batches, day 3 not one.
    lineage = p.models.champion().lineage
    assert (lineage.train_start, lineage.train_end) == (day(0).isoformat(), day(4).isoformat())
    assert (lineage.holdout_start, lineage.holdout_end) == (day(5).isoformat(),
                                                            day(6).isoformat())


def test_what_passed_is_not_checked_again_until_its_file_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    p = Ports(_config(), days=10)
    p.cycle(7)
    validated: list[dt.date] = []
    real = validate.validate_batch

    def counting(rt, batch_day, batch, training=None):  # noqa: ANN001, ANN202
        validated.append(batch_day)
        return real(rt, batch_day, batch, training)

    monkeypatch.setattr(validate, "validate_batch", counting)

    # Day 8's window is days 1-6 (labels one batch late) plus day 7: 0-6 passed in day 7's
    # retrain, day 7 in its own cycle. Nothing is read again.
    again = p.retrain(8, force=True)
    assert again.status is CycleStatus.PROMOTED, again.message
    assert validated == [] and "validation.failed" not in [d.kind for d in again.decisions]

    # A batch that passed is replaced by one that breaks a rule: the next retrain sees it,
    # beside day 8, which no cycle validated (only a retrain ran on it).
    _break(p.store.batches[day(5)])
    out = p.retrain(9, force=True)
    assert validated == [day(5), day(8)]
    assert [d.subject for d in out.decisions if d.kind == "validation.failed"] == [
        f"batch {day(5)}"]
    assert day(5) not in p.store.batches
    assert out.status is not CycleStatus.FAILED, out.message


def test_a_window_left_too_short_by_quarantine_waits_for_data() -> None:
    p = Ports(_config(), days=7)  # by day 6, days 0-5 are labelled: the six a window needs
    _break(p.store.batches[day(2)])
    out = p.cycle(6)
    assert out.status is CycleStatus.WAITING, out.message
    assert out.message.endswith("5 labelled batches, the training window needs 6 (1 batch of "
                                "it failed validation just now: see training_set_aside)")
    assert day(2) in p.store.quarantined
    assert p.models.versions() == []


def test_the_landing_zone_remembers_a_pass_for_these_bytes_and_this_config(
        tmp_path: Path, ctpipe_home: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), 3)
    store = ws.store
    first = landing.batch_dates(ws.landing)[0]
    assert not store.validated_as_is(first)
    store.remember_passed(first, store.batch_fingerprint(first))
    assert store.validated_as_is(first)
    note = json.loads((ws.records_dir / "validated" / f"{first}.json").read_text())
    assert note["validation_hash"] == ws.config.validation_hash

    # Same rows, other bytes (a rewrite by another tool): checked again.
    path = landing.batch_path(ws.landing, first)
    pd.read_parquet(path).to_parquet(path, index=False, compression="gzip")
    assert not store.validated_as_is(first)
    store.remember_passed(first, store.batch_fingerprint(first))
    assert store.validated_as_is(first)

    # A training setting changed: the pass holds. A validation rule changed: checked again.
    (tmp_path / "other").mkdir()
    trained_otherwise = open_workspace(str(small_config(tmp_path / "other", window=7)),
                                       False).config
    assert trained_otherwise.config_hash != ws.config.config_hash
    assert dataclasses.replace(store, config=trained_otherwise).validated_as_is(first)
    raw = yaml.safe_load(Path(ws.ref).read_text())
    raw["validation"]["ranges"]["border_wait_minutes"] = {"min": 0, "max": 100}
    (tmp_path / "other" / "demand.yaml").write_text(yaml.safe_dump(raw))
    stricter = open_workspace(str(tmp_path / "other" / "demand.yaml"), False).config
    assert not dataclasses.replace(store, config=stricter).validated_as_is(first)

    # A note that cannot be read is no pass.
    (ws.records_dir / "validated" / f"{first}.json").write_text("{", encoding="utf-8")
    assert not store.validated_as_is(first)


@pytest.mark.usefixtures("prefect_server")
def test_the_cycle_flow_quarantines_a_bad_backlog_batch_on_disk(ctpipe_home: Path,
                                                                 tmp_path: Path) -> None:
    from ctpipe import registry
    from ctpipe.flows.cycle import cycle_flow

    ws = simulated_workspace(small_config(tmp_path), days=9)
    bad = landing.batch_dates(ws.landing)[3]
    path = landing.batch_path(ws.landing, bad)
    frame = pd.read_parquet(path)
    _break(frame)
    frame.to_parquet(path, index=False)

    result = cycle_flow(use_case=ws.ref, batch_date=day(7).isoformat())

    assert result["status"] == "promoted", result["message"]
    [reason] = result["training_set_aside"]
    assert reason.startswith(f"{path}: batch failed validation") and "border_wait_minutes" \
        in reason and f"checked before batch {day(7)}'s retrain would" in reason
    folder = ws.quarantine / bad.isoformat() / "attempt-1"
    assert not path.exists() and (folder / path.name).is_file()
    assert "border_wait_minutes" in (folder / "summary.md").read_text(encoding="utf-8")
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    assert champion.tags["train_start"] == day(0).isoformat()
    # Every batch it trained on passed, and is remembered as it is now.
    trained = [d for d in landing.batch_dates(ws.landing) if d < day(7)]
    assert all(ws.store.validated_as_is(d) for d in trained), trained


def test_a_file_replaced_between_the_check_and_the_training_is_not_trained_on() -> None:
    p = Ports(_config(), days=9)

    def step(name, fn, *args, remote=False, **kwargs):  # noqa: ANN001, ANN202
        if name == "train-challenger":  # after the window's check, before the read
            _break(p.store.batches[day(4)])
        return fn(*args, **kwargs)

    p.rt = dataclasses.replace(p.rt, step=step)
    with pytest.raises(ValueError, match="changed since it passed validation"):
        p.cycle(7)
    assert p.store.records[day(7).isoformat()].status is CycleStatus.FAILED
    assert p.models.versions() == []

    # The next run finds the file changed, checks it again and sets it aside.
    p.rt = dataclasses.replace(p.rt, step=lambda name, fn, *a, remote=False, **k: fn(*a, **k))
    out = p.cycle(7)
    assert [d.subject for d in out.decisions if d.kind == "validation.failed"] == [
        f"batch {day(4)}"]
    assert out.status is CycleStatus.PROMOTED, out.message


def test_the_landing_zone_trains_only_on_the_bytes_that_passed(tmp_path: Path,
                                                               ctpipe_home: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), 3)
    store = ws.store
    days = landing.batch_dates(ws.landing)
    for d in days:
        store.remember_passed(d, store.batch_fingerprint(d))
    assert len(store.read_labelled(days, validated=True)) == len(store.read_labelled(days))

    path = landing.batch_path(ws.landing, days[1])
    pd.read_parquet(path).to_parquet(path, index=False, compression="gzip")
    with pytest.raises(ValueError, match=rf"^{path}: changed since it passed validation "
                       r"\(sha256 [0-9a-f]{12} then, [0-9a-f]{12} now\)"):
        store.read_labelled(days, validated=True)
    (ws.records_dir / "validated" / f"{days[1]}.json").unlink()
    with pytest.raises(ValueError, match=f"^{path}: has not passed the current validation rules"):
        store.read_labelled(days, validated=True)
    assert len(store.read_labelled(days)) > 0  # unchecked reads (drift, monitoring) go on


def test_a_window_where_most_batches_fail_moves_nothing_and_trains_nothing() -> None:
    p = Ports(_config(), days=9)
    for i in (1, 2, 3, 4):  # four of the six: a rule the whole history breaks, say
        _break(p.store.batches[day(i)])
    out = p.cycle(7)
    assert out.status is CycleStatus.FAILED
    assert out.message.startswith(f"training window as of batch {day(7)}: 4 of 6 batches "
                                  "checked fail validation, more than half of 6 (training.window "
                                  "6), so none is moved aside and nothing is trained")
    assert [d.kind for d in out.decisions][-1] == "retrain.refused"
    assert f"first: memory://batches/{day(1)}: batch failed validation" in out.message
    assert "validation.failed" not in [d.kind for d in out.decisions]
    assert p.store.quarantined == {} and len(p.store.batches) == 9
    assert p.models.versions() == []
    # The retraining deployment's run writes what it found too.
    again = p.retrain(7)
    assert again.status is CycleStatus.FAILED
    assert p.store.records[day(7).isoformat()].message == again.message

    # An operator who has looked at them moves them aside (`ctpipe set-aside`): the retrain
    # is no longer refused; it waits for enough good batches.
    for i in (1, 2, 3, 4):
        [moved] = set_aside(p.rt, day(i), reason="sensor swap", who="ops")
        assert moved.kind == "batch.set_aside" and moved.details["passed_validation"] is False
        assert "border_wait_minutes" in moved.reason and moved.actor == "ops"
        assert moved in p.published and day(i) not in p.store.batches
        assert p.store.quarantined[day(i)]["summary.md"].startswith(
            "# Set aside by ops\n\nsensor swap\n\nWhen set aside, it fails the current "
            "validation rules: ")
    waits = p.retrain(7, force=True)
    assert waits.status is CycleStatus.WAITING
    assert waits.message.startswith("cannot retrain yet: 3 labelled batches")


def _disk_full_on_the_second_move(p: Ports):  # noqa: ANN202
    """The store's quarantine, failing on its second call; returns the working one."""
    moved, calls = p.store.quarantine, []

    def disk_full_on_the_second(batch_day, evidence, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls.append(batch_day)
        if len(calls) == 2:
            raise OSError("disk full")
        return moved(batch_day, evidence, **kwargs)

    p.store.quarantine = disk_full_on_the_second
    return moved


def test_batches_moved_before_a_crash_are_traced_as_they_move() -> None:
    p = Ports(_config(), days=10)
    _break(p.store.batches[day(2)])
    _break(p.store.batches[day(3)])
    moved = _disk_full_on_the_second_move(p)
    with pytest.raises(OSError, match="disk full"):
        p.cycle(8)
    assert [d.subject for d in p.published if d.kind == "validation.failed"] == [
        f"batch {day(2)}"]
    record = p.store.records[day(8).isoformat()]
    assert record.status is CycleStatus.FAILED and len(record.training_set_aside) == 1

    p.store.quarantine = moved  # the disk has room again: the next run finishes the job
    out = p.cycle(8)
    assert [d.subject for d in out.decisions if d.kind == "validation.failed"] == [
        f"batch {day(3)}"]
    assert out.status is CycleStatus.PROMOTED, out.message


def test_a_retraining_run_that_crashes_after_moving_a_batch_records_the_failure() -> None:
    p = Ports(_config(), days=10)
    requested = p.cycle(8, retrain_inline=False)
    assert requested.status is CycleStatus.RETRAIN_REQUESTED, requested.message
    _break(p.store.batches[day(2)])
    _break(p.store.batches[day(3)])
    _disk_full_on_the_second_move(p)
    with pytest.raises(OSError, match="disk full"):
        p.retrain(8)
    record = p.store.records[day(8).isoformat()]
    # Not the request it started from: a scheduled cycle must see the batch is open.
    assert record.status is CycleStatus.FAILED and not record.status.final
    assert record.message == "retraining failed: OSError: disk full"
    assert len(record.training_set_aside) == 1


def test_a_batch_that_is_a_folder_is_quarantined_not_a_crash(tmp_path: Path,
                                                            ctpipe_home: Path) -> None:
    from ctpipe.steps.ports import Runtime

    ws = simulated_workspace(small_config(tmp_path), days=9)
    bad = landing.batch_dates(ws.landing)[2]
    path = landing.batch_path(ws.landing, bad)
    path.unlink()
    path.mkdir()  # a Spark-style folder named like a batch
    (path / "part-0.parquet").write_bytes(b"PAR1")
    published = []
    rt = Runtime(config=ws.config, model_name=ws.model_name, store=ws.store, models=None,
                 publish=published.append)
    moved = []
    assert validate.check_training_window(rt, landing.batch_dates(ws.landing)[-1],
                                          moved.append) is None
    [decision] = moved
    assert decision.subject == f"batch {bad}" and "is a directory" in decision.reason
    assert not path.exists()
    assert (ws.quarantine / bad.isoformat() / "attempt-1" / path.name).is_dir()


def test_truncated_and_empty_files_in_a_backlog_are_quarantined_not_fatal(
        tmp_path: Path, ctpipe_home: Path) -> None:
    """A truncated file among the recent batches once crashed every cycle: each batch's
    validation read the row counts of the seven before it, unguarded."""
    from ctpipe.steps.cycle import run_cycle
    from ctpipe.steps.ports import Runtime
    from tests.fakes import MemoryRegistry

    ws = simulated_workspace(small_config(tmp_path), days=10)
    dates = landing.batch_dates(ws.landing)
    truncated, empty = landing.batch_path(ws.landing, dates[3]), \
        landing.batch_path(ws.landing, dates[5])
    truncated.write_bytes(truncated.read_bytes()[:3000])
    empty.write_bytes(b"")
    published = []
    rt = Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                 models=MemoryRegistry(ws.model_name), publish=published.append)

    out = run_cycle(rt, dates[-1], explicit_date=True)

    assert out.status is CycleStatus.PROMOTED, out.message
    set_aside = out.result["training_set_aside"]
    assert [line.split(": ")[0] for line in set_aside] == [str(truncated), str(empty)]
    assert all(": batch could not be read: " in line for line in set_aside)
    assert not truncated.exists() and not empty.exists()
    assert [d.subject for d in published if d.kind == "validation.failed"] == [
        f"batch {dates[3]}", f"batch {dates[5]}"]


def test_batches_written_with_their_time_column_as_the_parquet_index_train(
        tmp_path: Path, ctpipe_home: Path) -> None:
    """``df.set_index(time).to_parquet()`` keeps the time column in pandas' index metadata:
    validation read it as a column, then training read the window without it."""
    from ctpipe.steps.cycle import run_cycle
    from ctpipe.steps.ports import Runtime
    from tests.fakes import MemoryRegistry

    ws = simulated_workspace(small_config(tmp_path), days=10)
    # Half with the time column as the index, half with the id column (which the labels
    # check reads alone, and which a column read does not see there).
    time_column, id_column = ws.config.data.time_column, ws.config.data.id_column
    for i, d in enumerate(landing.batch_dates(ws.landing)):
        path = landing.batch_path(ws.landing, d)
        pd.read_parquet(path).set_index(time_column if i % 2 else id_column).to_parquet(path)
    rt = Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                 models=MemoryRegistry(ws.model_name), publish=lambda _: None)

    dates = landing.batch_dates(ws.landing)
    out = run_cycle(rt, dates[-1], explicit_date=True)

    assert out.status is CycleStatus.PROMOTED, out.message
    assert not out.result.get("training_set_aside")
    # Every batch whose labels have arrived counts as labelled: none lost to its ids' index.
    assert len(ws.store.labelled_dates(dates[-1])) == len(dates) - ws.config.data.label_delay


def test_performance_drift_pools_only_batches_that_pass_as_they_are_now() -> None:
    # The check pools the newest labelled batches after the champion's data. Day 9 passed
    # its own cycle, then its file was replaced by one that breaks a rule: its labels must
    # not judge the champion; day 8 stands in, and the record names day 9.
    p = Ports(_config(), days=12)
    assert p.cycle(7).status is CycleStatus.PROMOTED
    for i in (8, 9):
        p.cycle(i)
    _break(p.store.batches[day(9)])

    p.cycle(10)

    performance = p.store.records[day(10).isoformat()].performance_drift
    assert performance["batches"] == [day(8).isoformat()] and performance["judged"]
    assert performance["note"].endswith(
        f"; not pooled, their files failing the current validation rules: {day(9)}")
    assert day(9) in p.store.batches  # left for the next retrain's window check


@pytest.mark.parametrize("floor", [0.40, 0.05])
def test_a_champion_beyond_the_gate_floor_is_retrained_though_its_degradation_is_small(
        floor: float) -> None:
    # Live monitoring can only report a champion beyond the floor when no earlier version
    # may serve; the cycle's performance check retrains it. A tolerance nothing reaches
    # leaves the floor as the only way the check can fire. (The floor is tightened after the
    # promotion: the simulated champion never slips that far by itself.)
    p = Ports(_config(drift={"performance_tolerance": 5.0, "triggers": ["performance"]}),
              days=11)
    assert p.cycle(7).status is CycleStatus.PROMOTED
    p.cycle(8)
    p.rt = dataclasses.replace(p.rt, config=p.rt.config.model_copy(
        update={"gate": p.rt.config.gate.model_copy(update={"floor": floor})}))

    waiting, out = p.cycle(9), p.cycle(10)

    performance = p.store.records[day(9).isoformat()].performance_drift
    assert performance["judged"] and performance["floor"] == floor
    if floor == 0.40:  # the demand config's own floor: the champion's WAPE is well inside it
        assert not performance["drifted"] and not performance["below_floor"]
        assert (waiting.status, out.status) == (CycleStatus.NO_DRIFT, CycleStatus.NO_DRIFT)
        return
    assert performance["drifted"] and performance["below_floor"]
    assert performance["current_low"] > floor
    # A change waits for a labelled batch of it before a challenger trains (as any drift).
    assert waiting.status is CycleStatus.COOLING_DOWN and "waiting for the new data" \
        in waiting.message
    record = p.store.records[day(10).isoformat()]
    assert record.retrained and "beyond the gate floor" in record.retrain_reason
    # No challenger reaches a floor the champion is that far from: rejected, alias unmoved.
    assert out.status is CycleStatus.REJECTED, out.message
    assert p.models.champion().version == 1


def test_a_batch_replaced_after_it_passed_is_audited_once_when_it_passes_again() -> None:
    p = Ports(_config(), days=10)
    p.rt = dataclasses.replace(p.rt, traced=lambda i: any(d.id == i for d in p.published))
    assert p.cycle(7).status is CycleStatus.PROMOTED
    before, first_bytes = p.store.passed[day(4)][0], p.store.batches[day(4)].copy()
    p.store.batches[day(4)]["advance_bookings"] *= 1.01  # a supplier's resend: still valid
    now, second_bytes = p.store.batch_fingerprint(day(4)), p.store.batches[day(4)].copy()
    remember = p.store.remember_passed

    def killed_after_the_audit(d: dt.date, fingerprint: str, **kwargs: object) -> None:
        if d == day(4):
            kwargs["on_replaced"](*[before, "pass 0"])  # audited, then the run dies
            raise KeyboardInterrupt
        remember(d, fingerprint, **kwargs)

    p.store.remember_passed = killed_after_the_audit
    with pytest.raises(KeyboardInterrupt):
        p.cycle(8, force=True)  # the retrain checks its window again: day 4 changed
    p.store.remember_passed = remember
    p.cycle(8, force=True)  # the next run: the note still says the old bytes

    [replaced] = [d for d in p.published if d.kind == "batch.replaced"]  # once, not twice
    assert replaced.subject == f"batch {day(4)}"
    assert replaced.details == {"batch_date": day(4).isoformat(), "previous_sha256": before,
                                "sha256": now, "previous_passed_at": "pass 0"}
    assert replaced.reason.startswith(f"batch {day(4)} was replaced after it passed "
                                      f"validation (pass 0): sha256 {before[:12]} -> "
                                      f"{now[:12]}")
    assert p.store.passed[day(4)][0] == now and p.store.replaced[day(4)] == [before]

    # Back to the first bytes, then to the second again: each replacement is audited.
    for frame in (first_bytes, second_bytes):
        p.store.batches[day(4)] = frame.copy()
        p.cycle(9, force=True)
    assert [(d.details["previous_sha256"], d.details["sha256"]) for d in p.published
            if d.kind == "batch.replaced"] == [(before, now), (now, before), (before, now)]


def test_the_validated_note_keeps_the_passes_of_a_replaced_file(tmp_path: Path,
                                                                 ctpipe_home: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), 2)
    store, first = ws.store, landing.batch_dates(ws.landing)[0]
    note_path = ws.records_dir / "validated" / f"{first}.json"
    seen: list[tuple[str, str]] = []
    store.remember_passed(first, "a" * 64, on_replaced=lambda sha, at: seen.append((sha, at)))
    store.remember_passed(first, "a" * 64, on_replaced=lambda sha, at: seen.append((sha, at)))
    assert seen == [] and "earlier" not in json.loads(note_path.read_text(encoding="utf-8"))
    first_at = json.loads(note_path.read_text(encoding="utf-8"))["at"]
    store.remember_passed(first, "b" * 64, on_replaced=lambda sha, at: seen.append((sha, at)))
    store.remember_passed(first, "c" * 64)
    note = json.loads(note_path.read_text(encoding="utf-8"))
    assert seen == [("a" * 64, first_at)]
    assert note["batch_sha256"] == "c" * 64
    assert [e["batch_sha256"] for e in note["earlier"]] == ["a" * 64, "b" * 64]

    note_path.write_text("{not json", encoding="utf-8")  # kept aside, not written over
    store.remember_passed(first, "d" * 64)
    assert json.loads(note_path.read_text(encoding="utf-8"))["batch_sha256"] == "d" * 64
    [kept] = note_path.parent.glob(f"{first}.json.unreadable-*")
    assert kept.read_text(encoding="utf-8") == "{not json"
