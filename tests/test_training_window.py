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

from ctpipe import landing
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.steps import validate
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
    assert f"checked before batch {day(7)}'s retrain trained on it" in failed.reason
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
    assert "5 labelled batches, the training window needs 6" in out.message
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
    assert note["config_hash"] == ws.config.config_hash

    # Same rows, other bytes (a rewrite by another tool): checked again.
    path = landing.batch_path(ws.landing, first)
    pd.read_parquet(path).to_parquet(path, index=False, compression="gzip")
    assert not store.validated_as_is(first)
    store.remember_passed(first, store.batch_fingerprint(first))
    assert store.validated_as_is(first)

    # Another config: what passed under the old rules is checked under the new ones.
    (tmp_path / "other").mkdir()
    changed = small_config(tmp_path / "other", window=7)
    other = open_workspace(str(changed), False).config
    assert other.config_hash != ws.config.config_hash
    assert not dataclasses.replace(store, config=other).validated_as_is(first)

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
        in reason and f"checked before batch {day(7)}'s retrain" in reason
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
    with pytest.raises(ValueError, match=f"^{path}: has not passed validation"):
        store.read_labelled(days, validated=True)
    assert len(store.read_labelled(days)) > 0  # unchecked reads (drift, monitoring) go on
