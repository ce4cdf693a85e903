"""What a retraining waiting for its slot says: a holder only when the limit counts one."""

from __future__ import annotations

from pathlib import Path

from ctpipe.flows.slot import _ensure_limit, _why_waiting, retrain_limit_name
from ctpipe.workspace import open_workspace


def test_the_notice_names_another_run_only_while_the_slot_is_taken(
        prefect_server: None, ctpipe_home: Path) -> None:
    from prefect.concurrency.sync import concurrency

    ws = open_workspace("demand", backtest=True)
    name = retrain_limit_name(ws)
    _ensure_limit(name)
    # Free: a slow grant is the server's, not another run's (seen with two replays in one
    # CTPIPE_HOME sharing one Prefect database).
    assert _why_waiting(name, ws.name).startswith(
        "the slot is free, but the Prefect server has not granted it within 10 s")
    with concurrency(name, occupy=1, strict=True):
        assert _why_waiting(name, ws.name).startswith("another run of demand is retraining")
