"""One run's working state: its cycle record, its tracking run, and the decisions it made."""

from __future__ import annotations

from dataclasses import dataclass, field

from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.records import CycleRecord
from ctpipe.steps.ports import Runtime, TrackingRun
from ctpipe.trace import Decision


@dataclass
class Attempt:
    rt: Runtime
    record: CycleRecord
    run: TrackingRun = field(default_factory=lambda: TrackingRun(run_id=""))
    decisions: list[Decision] = field(default_factory=list)
    saved: str | None = None  # the record as this attempt last stored it (save)
    # Batches of the training window quarantined, or too many failing: the run decided that.
    window_findings: bool = False

    def decide(self, decision: Decision) -> None:
        """Keep the decision for the outcome and hand it to the sink, once."""
        self.decisions.append(decision)
        self.rt.publish(decision)

    def conclude(self, status: CycleStatus, message: str) -> None:
        self.record.status = status
        self.record.message = message

    def save(self) -> None:
        """Store the record now (its outcome, before events start other runs on the batch)."""
        self.rt.store.write_record(self.record)
        self.saved = self.record.to_json()

    def saved_as_is(self) -> bool:
        """Whether the record is stored exactly as it is now (nothing left to write)."""
        return self.saved is not None and self.saved == self.record.to_json()

    def outcome(self) -> Outcome:
        return Outcome(self.record.status, self.record.message, tuple(self.decisions),
                       result=self.record.to_dict())
