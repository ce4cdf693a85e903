"""What a registered model version records about itself: the one owner of every tag name.

A version's tags are a ``Lineage``: its field names ARE the registry tag names, so writing
(``Lineage(...).to_tags()``) and reading (``Lineage.from_tags(tags).gate_decision``) go through
one type and no module spells a tag name as a bare string. Unknown tags (written by an operator
in the MLflow UI) are kept aside in ``other`` and never dropped on a round trip.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctpipe.drift import ReferenceProfile
    from ctpipe.training import ScoringModel

TAG_VALUE_LIMIT = 5000  # MLflow's tag value limit; the full text goes to the audit trail

@dataclass(frozen=True)
class Lineage:
    """Every tag ctpipe writes on a model version; ``None`` means "not set"."""

    # Training: what data, which config, which code.
    use_case: str | None = None
    batch_date: str | None = None
    train_start: str | None = None
    train_end: str | None = None
    holdout_start: str | None = None
    holdout_end: str | None = None
    # Set: the holdout is this share of the rows of holdout_start..holdout_end (the latest by
    # time, or seeded by training.seed), whose other rows trained (row_holdout_after_drift).
    holdout_share: str | None = None
    train_rows: str | None = None
    # Batches from here on weighed training.drift_emphasis times more (a drift's onset).
    emphasis_from: str | None = None
    # The drift's onset when the training part held batches from it (after drift and for
    # follow-ups, whatever training.drift_emphasis): the change this version learned.
    change_onset: str | None = None
    data_fingerprint: str | None = None
    config_hash: str | None = None
    code_version: str | None = None
    artifact_sha256: str | None = None
    # What artifact_sha256 covers ("model-dir-v1"; unset: the four data files), and the
    # per-file digests that name the file a mismatch is in (ctpipe.integrity).
    artifact_hash_scope: str | None = None
    artifact_files: str | None = None
    # Evaluation and the gate.
    metric_name: str | None = None
    holdout_metric: str | None = None
    retrain_reason: str | None = None
    gate_decision: str | None = None
    gate_reasons: str | None = None
    gated_against: str | None = None  # the champion the gate compared with ("" on a cold start)
    # Human approval (only where the jurisdiction requires it).
    approval_decision: str | None = None
    approver: str | None = None
    approval_reason: str | None = None
    approval_at: str | None = None
    # Promotion and rollback.
    previous_champion: str | None = None
    promoted_at: str | None = None
    promotion_abandoned: str | None = None  # why an interrupted promotion was not completed
    rolled_back_from: str | None = None
    rollback_reason: str | None = None
    rolled_back_at: str | None = None
    rolled_back_by: str | None = None
    rollback_forced: str | None = None
    # An operator's rollback hold that an automatic rollback carried over to this version.
    held_since_rollback: str | None = None
    demoted_at: str | None = None
    demoted_by_rollback_to: str | None = None
    other: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name != "other")

    @classmethod
    def from_tags(cls, tags: dict[str, str] | None) -> Lineage:
        tags = dict(tags or {})
        known = set(cls.names())
        return cls(**{k: v for k, v in tags.items() if k in known},
                   other={k: v for k, v in tags.items() if k not in known})

    def to_tags(self) -> dict[str, str]:
        """The set fields as registry tags (values cut to the registry's limit)."""
        return {name: str(value)[:TAG_VALUE_LIMIT] for name in self.names()
                if (value := getattr(self, name)) is not None}

    def merged(self, update: Lineage) -> Lineage:
        """These tags with ``update``'s set fields written over them."""
        return replace(self, **{k: v for k, v in dataclasses.asdict(update).items()
                                if k != "other" and v is not None})

    # Readings that several modules need, so none of them parses a tag itself.

    @property
    def metric(self) -> float | None:
        return float(self.holdout_metric) if self.holdout_metric not in (None, "") else None

    @property
    def gate_passed(self) -> bool:
        return self.gate_decision == "passed"

    @property
    def approval_missing(self) -> bool:
        """An approval was asked for and not (yet) given: pending, rejected or timed out."""
        return self.approval_decision is not None and self.approval_decision != "approved"

    @property
    def seen_until(self) -> str:
        """The last batch the version saw in training or holdout ('' when unknown)."""
        return self.holdout_end or self.train_end or ""

    @property
    def gated_against_version(self) -> int | None:
        text = (self.gated_against or "").strip()
        return int(text) if text.isdigit() else None

    @property
    def previous(self) -> int | None:
        text = (self.previous_champion or "").strip()
        return int(text) if text.isdigit() else None


def gate_tags(verdict: str, reasons: list[str]) -> Lineage:
    """``verdict``: GateDecision.verdict (passed, rejected, or unjudged)."""
    return Lineage(gate_decision=verdict, gate_reasons=" | ".join(reasons))


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered version as the registry reports it (no model files)."""

    name: str
    version: int
    tags: dict[str, str]
    aliases: list[str]
    run_id: str | None

    @property
    def lineage(self) -> Lineage:
        return Lineage.from_tags(self.tags)


@dataclass(frozen=True)
class LoadedVersion:
    """A version with its model files loaded: what scoring and the drift check use."""

    info: ModelVersionInfo
    model: ScoringModel
    profile: ReferenceProfile
    outputs: ReferenceProfile  # the model's predictions and the labels on its training rows
