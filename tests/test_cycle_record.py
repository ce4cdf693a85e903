"""How one batch's record keeps every run's outcome (records.with_history): pure."""

from __future__ import annotations

from ctpipe.decisions.outcome import CycleStatus
from ctpipe.records import CycleRecord, with_history


def _run(status: CycleStatus, message: str = "") -> CycleRecord:
    return CycleRecord(use_case="sst", batch_date="2016-03-24", status=status, message=message)


def _stored(*writes: CycleRecord) -> CycleRecord:
    stored = None
    for record in writes:
        stored = with_history(stored, record)
    return stored


def test_the_latest_run_is_on_top_and_earlier_ones_are_kept() -> None:
    first, second = _run(CycleStatus.REJECTED, "v4 rejected"), _run(CycleStatus.PROMOTED)
    stored = _stored(first, second)
    assert stored.status is CycleStatus.PROMOTED
    assert [a["message"] for a in stored.attempts] == ["v4 rejected"]


def test_a_run_that_skipped_leaves_the_deciding_run_on_top() -> None:
    # Two cycles of one batch at once: both write "running", A promotes, B finds the batch
    # retrained and skips. Before: B's "skipped" was the last cycle `ctpipe status` showed.
    a, b = _run(CycleStatus.RUNNING), _run(CycleStatus.RUNNING)
    a_done = CycleRecord.from_dict({**a.to_dict(), "status": "promoted", "retrained": True,
                                    "message": "v5 promoted"})
    b_done = CycleRecord.from_dict({**b.to_dict(), "status": "skipped", "message": "already"})
    for order in ([a, b, a_done, b_done], [a, a_done, b, b_done], [a, b, a_done, b_done, b_done]):
        stored = _stored(*order)
        assert (stored.status, stored.attempt_id) == (CycleStatus.PROMOTED, a.attempt_id)
        assert [(x["attempt_id"], x["status"]) for x in stored.attempts] == [
            (b.attempt_id, "skipped")]


def test_a_skip_with_no_run_that_trained_stays_on_top() -> None:
    # A run that died, only asked the retraining deployment, or failed before training
    # decided nothing about the batch's retraining.
    for earlier in (_run(CycleStatus.RUNNING), _run(CycleStatus.RETRAIN_REQUESTED),
                    _run(CycleStatus.FAILED, "registry down")):
        stored = _stored(earlier, _run(CycleStatus.SKIPPED, "already"))
        assert stored.status is CycleStatus.SKIPPED and len(stored.attempts) == 1
