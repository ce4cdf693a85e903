"""How a cycle, a retraining, a scoring or a rollback ended: one status, one line, its decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ctpipe.trace import Decision


class CycleStatus(StrEnum):
    """The status a cycle record carries; the values are what the JSON records hold."""

    RUNNING = "running"                      # the run has not decided yet (or died deciding)
    QUARANTINED = "quarantined"              # the batch failed validation
    NO_DRIFT = "no-drift"                    # nothing asked for a retrain: champion kept
    COOLING_DOWN = "cooling-down"            # drift persists, but a rejection's cooldown runs
    RETRAIN_REQUESTED = "retrain-requested"  # the retraining deployment was asked by event
    SKIPPED = "skipped"                      # this batch was already retrained under this config
    WAITING = "waiting"                      # too little labelled history to train yet
    REJECTED = "rejected"                    # the gate or the approver said no
    PENDING_APPROVAL = "pending-approval"    # a human has to decide before promotion
    TIMED_OUT = "timed-out"                  # nobody decided within the approval timeout
    CHAMPION_CHANGED = "champion-changed"    # the champion moved after the gate: not promoted
    PROMOTED = "promoted"                    # the challenger serves now
    SCORED = "scored"                        # the champion scored a batch
    ROLLED_BACK = "rolled-back"              # champion moved back to an earlier version
    MONITORED = "monitored"                  # live performance measured; champion kept
    NO_NEW_BATCH = "no-new-batch"            # a scheduled run found its batch already done
    REFUSED = "refused"                      # scoring refused its input (invalid, no champion)
    FAILED = "failed"                        # an error stopped the run; the record says which

    @property
    def final(self) -> bool:
        """A record with this status decided its batch (a scheduled run must not redo it).

        A pending approval is not final: if the run dies while it waits, the batch is open.
        """
        return self not in (CycleStatus.RUNNING, CycleStatus.PENDING_APPROVAL,
                            CycleStatus.FAILED)


# The name each outcome gives its Prefect flow run's final state, and whether that state is
# Failed (the run did not do its job) rather than Completed (it decided, whatever it decided).
STATE_NAMES: dict[CycleStatus, tuple[str, bool]] = {
    CycleStatus.RUNNING: ("Crashed", True),
    CycleStatus.QUARANTINED: ("Quarantined", True),
    CycleStatus.NO_DRIFT: ("NoDrift", False),
    CycleStatus.COOLING_DOWN: ("CoolingDown", False),
    CycleStatus.RETRAIN_REQUESTED: ("RetrainRequested", False),
    CycleStatus.SKIPPED: ("Skipped", False),
    CycleStatus.WAITING: ("Waiting", False),
    CycleStatus.REJECTED: ("Rejected", False),
    CycleStatus.PENDING_APPROVAL: ("PendingApproval", False),
    CycleStatus.TIMED_OUT: ("TimedOut", True),
    CycleStatus.CHAMPION_CHANGED: ("ChampionChanged", False),
    CycleStatus.PROMOTED: ("Promoted", False),
    CycleStatus.SCORED: ("Scored", False),
    CycleStatus.ROLLED_BACK: ("RolledBack", False),
    CycleStatus.MONITORED: ("Monitored", False),
    CycleStatus.NO_NEW_BATCH: ("NoNewBatch", True),
    CycleStatus.REFUSED: ("Refused", True),
    CycleStatus.FAILED: ("Failed", True),
}


@dataclass(frozen=True)
class Outcome:
    """What a run decided: its status, a one-line message, and every decision it made."""

    status: CycleStatus
    message: str
    decisions: tuple[Decision, ...] = ()
    result: dict = field(default_factory=dict, compare=False)  # the run's return value

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.status][0]

    @property
    def failed(self) -> bool:
        return STATE_NAMES[self.status][1]
