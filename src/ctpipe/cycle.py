"""The daily cycle's steps as plain functions; flows/cycle.py orchestrates them."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ctpipe import landing
from ctpipe.drift import (
    DriftReport,
    FeatureDrift,
    ReferenceProfile,
    build_profile,
    detect_drift,
    performance_drift,
)
from ctpipe.evaluation import Evaluation, evaluate
from ctpipe.gating import GateDecision
from ctpipe.registry import LoadedVersion
from ctpipe.training import (
    NotEnoughData,
    ScoringModel,
    WindowSplit,
    data_fingerprint,
    split_window,
    train_model,
)
from ctpipe.validation import read_batch_file
from ctpipe.workspace import Workspace


@dataclass
class CycleRecord:
    """What one cycle decided; written to the workspace, read by `ctpipe status` and backtests."""

    use_case: str
    batch_date: str
    status: str = "running"        # passed-no-drift | promoted | rejected | waiting | quarantined
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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def write_record(ws: Workspace, record: CycleRecord) -> None:
    path = ws.record_path(record.batch_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(record.to_json(), encoding="utf-8")
    tmp.replace(path)


def load_batch(ws: Workspace, day: dt.date) -> pd.DataFrame:
    return read_batch_file(landing.batch_path(ws.landing, day), ws.config)


def quarantine_batch(ws: Workspace, day: dt.date, gx_result: dict, summary: str) -> str:
    """Move the batch out of the landing zone with its GX result and a readable summary."""
    source = landing.batch_path(ws.landing, day)
    folder = ws.quarantine / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    if source.exists():
        shutil.move(str(source), folder / source.name)
    (folder / "gx_result.json").write_text(json.dumps(gx_result, indent=2, default=str),
                                           encoding="utf-8")
    (folder / "summary.md").write_text(summary, encoding="utf-8")
    return str(folder)


PREDICTION, LABEL = "prediction", "label"


@dataclass(frozen=True)
class DriftAssessment:
    report: DriftReport | None
    performance: dict | None
    retrain_reason: str | None
    # Reported beside the features, not counted in the dataset drift share.
    outputs: list[FeatureDrift] = field(default_factory=list)

    @property
    def drift_detected(self) -> bool:
        perf = bool(self.performance and self.performance["drifted"])
        return bool(self.report and self.report.dataset_drift) or perf


def newest_unseen_labels(ws: Workspace, day: dt.date, champion: LoadedVersion) -> dt.date | None:
    """The newest labelled batch the champion was not trained or held out on."""
    labelled = landing.labelled_dates(ws.landing, ws.config, day)
    seen_until = champion.info.tags.get("holdout_end") or champion.info.tags.get("train_end")
    fresh = [d for d in labelled if not seen_until or d.isoformat() > seen_until]
    return fresh[-1] if fresh else None


def outputs_profile(ws: Workspace, predictions: np.ndarray,
                    labels: pd.Series) -> ReferenceProfile:
    """The reference for prediction drift and label drift: the model on its training rows."""
    binary = ws.config.data.task == "binary"
    frame = pd.DataFrame({PREDICTION: predictions, LABEL: labels.to_numpy()})
    return build_profile(frame, [PREDICTION] if binary else [PREDICTION, LABEL],
                         [LABEL] if binary else [])


def _output_drift(outputs: ReferenceProfile, column: str, values: np.ndarray | pd.Series,
                  ws: Workspace) -> FeatureDrift:
    sub = ReferenceProfile(
        n_rows=outputs.n_rows,
        numeric={k: v for k, v in outputs.numeric.items() if k == column},
        numeric_nan={k: v for k, v in outputs.numeric_nan.items() if k == column},
        categorical={k: v for k, v in outputs.categorical.items() if k == column})
    cfg = ws.config.drift.model_copy(update={"per_feature": {}})
    return detect_drift(sub, pd.DataFrame({column: np.asarray(values)}), cfg).features[0]


def assess_drift(ws: Workspace, day: dt.date, batch: pd.DataFrame,
                 champion: LoadedVersion | None) -> DriftAssessment:
    cfg = ws.config
    if champion is None:
        return DriftAssessment(None, None, "no champion yet (cold start)")
    report = detect_drift(champion.profile, batch, cfg.drift)
    outputs = [_output_drift(champion.outputs, PREDICTION, champion.model.predict(batch), ws)]
    performance = None
    baseline = champion.info.metric()
    labelled_day = newest_unseen_labels(ws, day, champion)
    if labelled_day:
        frame = landing.load_labelled(ws.landing, cfg, [labelled_day])
        outputs.append(_output_drift(champion.outputs, LABEL, frame[cfg.data.target], ws))
        if (cfg.drift.performance_tolerance is not None and baseline is not None
                and len(frame) >= cfg.drift.min_performance_rows):
            current = evaluate(cfg, frame[cfg.data.target].to_numpy(),
                               champion.model.predict(frame), frame).value
            if np.isfinite(current):
                drifted, degradation = performance_drift(
                    baseline, current, higher_is_better=cfg.higher_is_better,
                    tolerance=cfg.drift.performance_tolerance)
                performance = {"batch": labelled_day.isoformat(), "metric": cfg.evaluation.metric,
                               "baseline": baseline, "current": current,
                               "degradation": degradation, "drifted": drifted,
                               "tolerance": cfg.drift.performance_tolerance}
    reason = None
    if report.dataset_drift:
        reason = (f"data drift: {len(report.drifted_features)} of {report.n_tested} tested "
                  f"features "
                  f"drifted ({report.drift_share:.0%} >= {report.threshold_share:.0%}): "
                  f"{', '.join(report.drifted_features)}")
    elif performance and performance["drifted"]:
        reason = (f"performance drift: {performance['metric']} {performance['current']:.4f} on "
                  f"{performance['batch']} vs {baseline:.4f} at promotion "
                  f"({performance['degradation']:+.1%} worse, tolerance "
                  f"{cfg.drift.performance_tolerance:.0%})")
    elif cfg.training.retrain_every:
        trained_until = champion.info.tags.get("train_end", "")
        age = len([d for d in landing.batch_dates(ws.landing)
                   if trained_until < d.isoformat() <= day.isoformat()])
        if age >= cfg.training.retrain_every:
            reason = f"scheduled: {age} batches since the champion's training window"
    return DriftAssessment(report, performance, reason, outputs)


@dataclass
class Candidate:
    model: ScoringModel
    profile: ReferenceProfile
    outputs: ReferenceProfile
    split: WindowSplit
    holdout: pd.DataFrame
    train_rows: int
    fingerprint: str


def check_training_window(ws: Workspace, day: dt.date) -> WindowSplit:
    """The split a retrain would use; raises NotEnoughData while the history is too short."""
    split = split_window(landing.labelled_dates(ws.landing, ws.config, day), ws.config)
    rows = sum(landing.row_count(landing.labels_path(ws.landing, d)) for d in split.train)
    if rows < ws.config.training.min_train_rows:
        raise NotEnoughData(f"{rows} training rows in {len(split.train)} batches, "
                            f"training.min_train_rows is {ws.config.training.min_train_rows}")
    return split


def train_candidate(ws: Workspace, day: dt.date,
                    progress: Callable[[float], None] | None = None) -> Candidate:
    """Train on the labelled window as of ``day``; raises NotEnoughData before a full window."""
    cfg = ws.config
    split = check_training_window(ws, day)
    frame = landing.load_labelled(ws.landing, cfg, [*split.train, *split.holdout])
    in_train = frame[landing.BATCH_KEY].isin([d.isoformat() for d in split.train]).to_numpy()
    train = frame[in_train].reset_index(drop=True)
    holdout = frame[~in_train].reset_index(drop=True)
    model = train_model(cfg, train, progress)
    profile = build_profile(train, cfg.features.numeric, cfg.features.categorical)
    outputs = outputs_profile(ws, model.predict(train), train[cfg.data.target])
    return Candidate(model, profile, outputs, split, holdout, len(train),
                     data_fingerprint(train))


def evaluate_on_holdout(ws: Workspace, model: ScoringModel,
                        holdout: pd.DataFrame) -> tuple[Evaluation, bool]:
    """The model's evaluation on the holdout, and whether every prediction was finite."""
    pred = model.predict(holdout)
    finite = bool(np.isfinite(pred).all())
    return evaluate(ws.config, holdout[ws.config.data.target].to_numpy(),
                    np.nan_to_num(pred), holdout), finite


def lineage_tags(ws: Workspace, day: dt.date, cand: Candidate, challenger: Evaluation,
                 decision: GateDecision, reason: str | None) -> dict[str, str]:
    cfg = ws.config
    return {
        "use_case": cfg.name,
        "batch_date": day.isoformat(),
        "train_start": cand.split.train[0].isoformat(),
        "train_end": cand.split.train[-1].isoformat(),
        "holdout_start": cand.split.holdout[0].isoformat(),
        "holdout_end": cand.split.holdout[-1].isoformat(),
        "train_rows": str(cand.train_rows),
        "data_fingerprint": cand.fingerprint,
        "config_hash": cfg.config_hash,
        "metric_name": challenger.metric,
        "holdout_metric": f"{challenger.value:.6f}",
        "retrain_reason": reason or "",
        "gate_decision": "passed" if decision.passed else "rejected",
        "gate_reasons": " | ".join(decision.reasons)[:5000],
    }
