"""The cycle record: what the runs decided about one batch, read by `ctpipe status` and replays."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from ctpipe.decisions.outcome import CycleStatus


@dataclass
class CycleRecord:
    use_case: str
    batch_date: str
    status: CycleStatus = CycleStatus.RUNNING
    validation_passed: bool = False
    validation_failures: list[str] = field(default_factory=list)
    drift_detected: bool = False
    drift_share: float = 0.0
    drifted_features: list[str] = field(default_factory=list)
    output_drift: list[dict] = field(default_factory=list)  # prediction and label drift
    performance_drift: dict | None = None
    retrain_reason: str | None = None
    retrained: bool = False
    gate_passed: bool | None = None
    gate_reasons: list[str] = field(default_factory=list)
    challenger_metric: float | None = None
    champion_holdout_metric: float | None = None
    candidate_version: int | None = None
    champion_version: int | None = None
    message: str = ""
    mlflow_run_id: str | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "status": str(self.status)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, raw: dict) -> CycleRecord:
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in raw.items() if k in known})
        record.status = CycleStatus(record.status)
        return record

    def copy(self) -> CycleRecord:
        return CycleRecord.from_dict(self.to_dict())
