"""The cycle record: what the runs decided about one batch, read by `ctpipe status` and replays."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, field, fields

from ctpipe.decisions.outcome import CycleStatus


@dataclass
class CycleRecord:
    use_case: str
    batch_date: str
    status: CycleStatus = CycleStatus.RUNNING
    validation_passed: bool = False
    validation_failures: list[str] = field(default_factory=list)
    # A batch that passed may still carry warnings (a category the champion never saw).
    validation_warnings: list[str] = field(default_factory=list)
    drift_detected: bool = False
    drift_share: float = 0.0
    drifted_features: list[str] = field(default_factory=list)
    output_drift: list[dict] = field(default_factory=list)  # prediction and label drift
    performance_drift: dict | None = None
    # Where the drift this batch saw began: labelled evidence (performance or label drift) is
    # as old as the oldest pooled batch, older than the batch itself.
    drift_onset: str | None = None
    # The onset of the change a retrain of this batch learns (and weighs up): the drift's, or,
    # while the champion's follow-ups are open, the one it is learning (follow_up_until).
    change_onset: str | None = None
    retrain_reason: str | None = None
    # An operator's --force (force=true on a run): retrain whatever the policy says.
    forced: bool = False
    # Batches of the training window that failed validation before this run trained (none of
    # them had passed as they are): why each was quarantined.
    training_set_aside: list[str] = field(default_factory=list)
    retrained: bool = False
    gate_passed: bool | None = None
    gate_reasons: list[str] = field(default_factory=list)
    # The holdout could not measure the metric (decisions.gate.GateDecision.unjudged): the
    # challenger was not promoted, but the cooldown does not count it as a rejection.
    gate_unjudged: bool = False
    challenger_metric: float | None = None
    champion_holdout_metric: float | None = None
    candidate_version: int | None = None
    champion_version: int | None = None
    message: str = ""
    mlflow_run_id: str | None = None
    # One record per batch keeps every run that worked on it: the latest at the top level,
    # the earlier ones, oldest first, in ``attempts`` (a rerun never erases the first outcome).
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(
        timespec="seconds"))
    attempts: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "status": str(self.status)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, raw: dict) -> CycleRecord:
        known = {f.name for f in fields(cls)}
        raw = {"attempt_id": "", "started_at": "", **raw}  # records written before attempts
        record = cls(**{k: v for k, v in raw.items() if k in known})
        record.status = CycleStatus(record.status)
        return record

    def copy(self) -> CycleRecord:
        return CycleRecord.from_dict(self.to_dict())

    def next_attempt(self) -> CycleRecord:
        """A new run's record for this batch, starting from what this one knew."""
        nxt = self.copy()
        nxt.attempt_id = uuid.uuid4().hex
        nxt.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return nxt


def with_history(existing: CycleRecord | None, record: CycleRecord) -> CycleRecord:
    """``record`` as it is stored over ``existing``: another attempt's outcome moves into
    ``attempts``; the same attempt writing again replaces itself."""
    merged = record.copy()
    if existing is None:
        merged.attempts = []
        return merged
    # A run writes its record more than once (running, then its outcome): its own earlier
    # entry is replaced, never kept beside the new one.
    merged.attempts = [a for a in existing.attempts if a.get("attempt_id") != record.attempt_id]
    if existing.attempt_id != record.attempt_id:
        merged.attempts.append(_entry(existing))
    if record.status is CycleStatus.SKIPPED:
        return _decider_on_top(merged)
    return merged


def _entry(record: CycleRecord) -> dict:
    return {k: v for k, v in record.to_dict().items() if k != "attempts"}


def _decider_on_top(skipped: CycleRecord) -> CycleRecord:
    """A run that found the batch already retrained leaves the run that retrained it on top
    (what `ctpipe status` shows as the last cycle, and what the policy reads back): the newest
    attempt that trained and got past "running", when there is one. A run that only asked for
    a retrain decided nothing. The skipped run is kept in ``attempts``."""
    for i in range(len(skipped.attempts) - 1, -1, -1):
        entry = skipped.attempts[i]
        if entry.get("retrained") and entry.get("status") != CycleStatus.RUNNING:
            top = CycleRecord.from_dict({**skipped.attempts[i], "attempts": []})
            top.attempts = skipped.attempts[:i] + skipped.attempts[i + 1:] + [_entry(skipped)]
            return top
    return skipped


@dataclass(frozen=True)
class PromotionIntent:
    """Written before the champion alias moves (a promotion or a rollback), cleared once the
    move is traced."""

    model_name: str
    version: int  # the version that is to serve
    expected: int | None  # the champion it replaces (for a promotion: the one gated against)
    batch_date: str  # a promotion's batch ("" for a rollback)
    reason: str
    approver: str  # who decided: the approver, or the operator of a rollback
    action: str = "promote"  # or "rollback"
    forced: bool = False  # a rollback that overrode a refusal
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(
        timespec="seconds"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> PromotionIntent:
        return cls(**json.loads(text))
