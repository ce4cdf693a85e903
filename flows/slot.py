"""The retraining slot: at most one retraining per use case at a time, on a Prefect global
concurrency limit, with leases that lapse when their holder dies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import ConcurrencyLeaseHolder, StateType
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from ctpipe.trace import Decision
from ctpipe.workspace import Workspace

SLOT_WAIT_SECONDS = 3 * 3600  # far longer than a training
SLOT_NOTICE_SECONDS = 10  # after this, the waiting run says what it waits for
# A holder renews its lease while it lives; the server's repossessor revokes a lease its dead
# holder stopped renewing, so a killed run's slot frees itself within about this long.
SLOT_LEASE_SECONDS = 60  # the shortest lease Prefect's server accepts


class RetrainingSlotBusy(RuntimeError):
    """The use case's retraining slot stayed taken for SLOT_WAIT_SECONDS."""


def retrain_limit_name(ws: Workspace) -> str:
    return f"ctpipe-retrain-{ws.name}" + ("-backtest" if ws.backtest else "")


def _ensure_limit(name: str) -> None:
    # Created on first use, so a fresh server needs no setup step; strict=True below then
    # guarantees the limit is really enforced rather than silently skipped.
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass


def retraining_slot(ws: Workspace) -> Callable[[], Any]:
    """At most one retraining per use case at a time, across processes and machines."""

    @contextmanager
    def slot() -> Iterator[None]:
        name = retrain_limit_name(ws)
        _ensure_limit(name)
        ctx = FlowRunContext.get()
        holder = ConcurrencyLeaseHolder(type="flow_run", id=ctx.flow_run.id) \
            if ctx and ctx.flow_run else None
        with ExitStack() as stack:
            for wait in (SLOT_NOTICE_SECONDS, SLOT_WAIT_SECONDS):
                try:
                    stack.enter_context(concurrency(
                        name, occupy=1, strict=True, holder=holder, timeout_seconds=wait,
                        lease_duration=SLOT_LEASE_SECONDS))
                    break
                except TimeoutError as exc:
                    if wait == SLOT_WAIT_SECONDS:
                        raise RetrainingSlotBusy(
                            f"global concurrency limit {name}: no free slot for {wait} s; "
                            "another retraining holds it (see docs/RUNBOOK.md)") from exc
                    get_run_logger().warning("waiting for the retraining slot %s: %s", name,
                                             _why_waiting(name, ws.name))
            yield
    return slot


def slot_wait_notice(taken: int, use_case: str, waited: int, lease: int) -> str:
    """Why a retraining waits for its slot, from how many slots the limit counts as taken."""
    if taken:
        return (f"another run of {use_case} is retraining; if that run died, its lease lapses "
                f"within {lease} s and the slot frees itself")
    return (f"the slot is free, but the Prefect server has not granted it within {waited} s (a "
            "busy server: other ctpipe commands on the same Prefect database?); still asking")


def _why_waiting(name: str, use_case: str) -> str:
    # A slow answer is not proof of a holder: a server busy with other commands on the same
    # Prefect database is slow to grant a free slot too.
    try:
        with get_client(sync_client=True) as client:
            taken = client.read_global_concurrency_limit_by_name(name).active_slots
    except Exception as exc:  # noqa: BLE001 - a notice must never fail the retraining
        return (f"not granted within {SLOT_NOTICE_SECONDS} s, and the server did not say who "
                f"holds it ({type(exc).__name__}); still asking")
    return slot_wait_notice(taken, use_case, SLOT_NOTICE_SECONDS, SLOT_LEASE_SECONDS)


def slot_holders_dead(ws: Workspace) -> list[str]:
    """The slot taken while no run of this use case is running: its holder died."""
    name = retrain_limit_name(ws)
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return []
        if not limit.active_slots:
            return []
        running = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[ws.name]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))))
    if running:
        return []
    return [f"global concurrency limit {name}: {limit.active_slots} slot taken while no run "
            f"of {ws.name} is running"]


def free_dead_slot(ws: Workspace, publish: Callable[[Decision], None], actor: str) -> str:
    name = retrain_limit_name(ws)
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(
            active_slots=0))
    publish(Decision(kind="slot.freed", use_case=ws.name, subject=name, actor=actor,
                     reason=f"{name}: slot held by a run that is no longer running; freed by "
                            "ctpipe doctor --repair"))
    return f"freed {name}"
