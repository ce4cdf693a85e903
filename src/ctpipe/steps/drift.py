"""Drift against the champion: load what the check needs, compute, then let the rule decide."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import overload

import numpy as np
import pandas as pd

from ctpipe import reports
from ctpipe.decisions.retraining import (
    DriftVerdict,
    judge_performance,
    retrain_reason,
)
from ctpipe.drift import FeatureDrift, ReferenceProfile, build_profile, detect_drift
from ctpipe.evaluation import evaluate
from ctpipe.lineage import LoadedVersion
from ctpipe.steps.ports import Runtime, TrackingRun
from ctpipe.trace import Artifact, Decision

PREDICTION, LABEL = "prediction", "label"
# Resource label on drift and retrain-request events: "by-event" asks the retraining
# deployment to act; "inline" says the emitting cycle retrains itself (no duplicate work).
RETRAIN_LABEL = "ctpipe.retrain"


def outputs_profile(task: str, predictions: np.ndarray, labels: pd.Series) -> ReferenceProfile:
    """The reference for prediction drift and label drift: the model on its training rows."""
    binary = task == "binary"
    frame = pd.DataFrame({PREDICTION: predictions, LABEL: labels.to_numpy()})
    return build_profile(frame, [PREDICTION] if binary else [PREDICTION, LABEL],
                         [LABEL] if binary else [])


def _output_drift(rt: Runtime, outputs: ReferenceProfile, column: str,
                  values: np.ndarray | pd.Series) -> FeatureDrift:
    sub = ReferenceProfile(
        n_rows=outputs.n_rows,
        numeric={k: v for k, v in outputs.numeric.items() if k == column},
        numeric_nan={k: v for k, v in outputs.numeric_nan.items() if k == column},
        categorical={k: v for k, v in outputs.categorical.items() if k == column})
    # The feature settings name feature columns, not the outputs' columns.
    cfg = rt.config.drift.model_copy(update={"per_feature": {}, "exclude": [], "weights": {}})
    return detect_drift(sub, pd.DataFrame({column: np.asarray(values)}), cfg).features[0]


class _EarlierBatches(Sequence[pd.DataFrame]):
    """Stored batches, oldest first, each read through the store on first use and kept."""

    def __init__(self, rt: Runtime, dates: list[dt.date]) -> None:
        self._rt, self._dates = rt, dates
        self._read: dict[int, pd.DataFrame] = {}

    def __len__(self) -> int:
        return len(self._dates)

    @overload
    def __getitem__(self, index: int) -> pd.DataFrame: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[pd.DataFrame]: ...

    def __getitem__(self, index: int | slice) -> pd.DataFrame | Sequence[pd.DataFrame]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]  # IndexError and negative indices as a list
        if i not in self._read:
            self._read[i] = self._rt.store.read_batch(self._dates[i])
        return self._read[i]


def earlier_batches(rt: Runtime, day: dt.date) -> Sequence[pd.DataFrame] | None:
    """The stored batches before ``day`` that the drift share may need, read lazily.

    A feature constant within the batch needs the last ``constant_window - 1``; the seasonal
    reference the batch (or window) ``seasonal_period`` batches back. None when neither is on.
    """
    drift = rt.config.drift
    needed = (drift.constant_window or 1) - 1 + (drift.seasonal_period or 0)
    if needed <= 0:
        return None
    dates = [d for d in rt.store.batch_dates() if d < day][-needed:]
    return _EarlierBatches(rt, dates)


def assess_drift(rt: Runtime, day: dt.date, batch: pd.DataFrame,
                 champion: LoadedVersion | None) -> DriftVerdict:
    """Load first (the newest unseen labels, the batches since training), then decide."""
    cfg = rt.config
    if champion is None:
        return DriftVerdict(None, None, retrain_reason(
            report=None, performance=None, batches_since_training=0,
            retrain_every=cfg.training.retrain_every))
    lineage = champion.info.lineage
    seen_until = lineage.seen_until
    fresh = [d for d in rt.store.labelled_dates(day) if not seen_until
             or d.isoformat() > seen_until]
    labelled = rt.store.read_labelled([fresh[-1]]) if fresh else None
    trained_until = lineage.train_end or ""
    since_training = len([d for d in rt.store.batch_dates()
                          if trained_until < d.isoformat() <= day.isoformat()])

    report = detect_drift(champion.profile, batch, cfg.drift, earlier_batches(rt, day))
    outputs = [_output_drift(rt, champion.outputs, PREDICTION, champion.model.predict(batch))]
    performance = None
    if labelled is not None:
        target = labelled[cfg.data.target]
        outputs.append(_output_drift(rt, champion.outputs, LABEL, target))
        current = None
        if len(labelled) >= cfg.drift.min_performance_rows:
            current = evaluate(cfg, target.to_numpy(), champion.model.predict(labelled),
                               labelled).value
        performance = judge_performance(
            batch=fresh[-1].isoformat(), metric=cfg.evaluation.metric, baseline=lineage.metric,
            current=current, rows=len(labelled), min_rows=cfg.drift.min_performance_rows,
            tolerance=cfg.drift.performance_tolerance, higher_is_better=cfg.higher_is_better)
    reason = retrain_reason(report=report, performance=performance,
                            batches_since_training=since_training,
                            retrain_every=cfg.training.retrain_every)
    return DriftVerdict(report, performance, reason, tuple(outputs))


def drift_decision(rt: Runtime, day: dt.date, verdict: DriftVerdict, run: TrackingRun, *,
                   retrain_inline: bool) -> Decision:
    report = verdict.report
    lines = ["# Drift", "", report.summary_markdown() if report else "No champion: no reference."]
    for o in verdict.outputs:
        state = "drifted" if o.drifted else "stable"
        lines += ["", f"{o.feature.capitalize()} distribution vs the champion's training rows: "
                  f"{state} ({o.test} {o.statistic:.4f}, threshold {o.threshold:.4g})."]
    p = verdict.performance
    if p:
        lines += ["", f"Performance on {p.batch}: {p.metric} {p.current:.4f} vs "
                  f"{p.baseline:.4f} at promotion ({p.degradation:+.1%}; drift: {p.drifted})"]
    lines += ["", f"Decision: {verdict.retrain_reason or 'no retraining needed'}",
              "", f"MLflow run (drift plot, metrics): [{run.run_id}]({run.link})"]
    table = None
    if report is not None:
        table = tuple(report.to_records() + [
            {**o.to_record(), "kind": f"{o.kind} ({o.feature}, not in share)"}
            for o in verdict.outputs])
    drifted = report.drifted_features if report else []
    performance = p.to_dict() if p else None
    return Decision(
        kind="drift.checked", use_case=rt.use_case, subject=f"batch {day}",
        reason=verdict.retrain_reason or "no drift",
        details={"batch_date": day.isoformat(), "drifted_features": drifted,
                 "performance": performance},
        artifact=Artifact(
            "drift", "Drift verdict", "\n".join(lines), table=table, table_key="drift-table",
            table_description=f"Drift per feature (share {report.drift_share:.0%})"
            if report else None),
        event="ctpipe.drift.detected" if verdict.drift_detected else None,
        event_labels={RETRAIN_LABEL: "inline" if retrain_inline else "by-event"},
        event_payload={
            "batch_date": day.isoformat(), "reason": verdict.retrain_reason,
            "drifted_features": drifted, "drift_share": report.drift_share if report else 0.0,
            "performance": performance,
            "outputs_drifted": [o.feature for o in verdict.outputs if o.drifted]})


def attach_drift_plot(run: TrackingRun, champion: LoadedVersion, batch: pd.DataFrame,
                      verdict: DriftVerdict) -> None:
    if verdict.report is None or not verdict.report.drifted_features:
        return
    with tempfile.TemporaryDirectory(prefix="ctpipe-drift-") as tmp:
        path = reports.plot_drift(champion.profile, batch, verdict.report,
                                  Path(tmp) / "drift.png")
        run.attach(path, "drift")
