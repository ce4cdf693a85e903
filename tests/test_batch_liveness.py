"""A record left "running" is abandoned only when no live run holds its batch (no server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ctpipe.decisions.outcome import CycleStatus
from ctpipe.records import CycleRecord
from ctpipe.workspace import open_workspace

DAY = dt.date(2026, 3, 9)


def test_a_running_record_is_abandoned_once_its_run_lets_go(ctpipe_home: Path) -> None:
    store = open_workspace("demand").store
    running = CycleRecord(use_case="demand", batch_date=DAY.isoformat())
    with store.working_on(DAY):
        store.write_record(running)
        assert store.abandoned() == []  # its run is alive
        with store.working_on(DAY):  # a second run of the batch beside it
            pass
        assert store.abandoned() == []
    assert [r.attempt_id for r in store.abandoned()] == [running.attempt_id]
    running.status = CycleStatus.PROMOTED
    store.write_record(running)
    assert store.abandoned() == []  # decided: nothing left open
