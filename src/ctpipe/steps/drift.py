"""Drift against the champion: load what the check needs, compute, then let the rule decide."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import overload

import numpy as np
import pandas as pd

from ctpipe import reports
from ctpipe.decisions.change import (
    FOLLOW_UP,
    awaiting_new_data,
    change_to_learn,
    follow_up,
    learned_change,
    still_learning,
)
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.decisions.performance import (
    PerformanceCheck,
    cannot_judge_performance,
    judge_performance,
    pool_labelled,
)
from ctpipe.decisions.retraining import (
    DriftVerdict,
    PastAttempt,
    forced_retrain,
    label_drift_measured,
    retrain_history,
    retrain_reason,
    seen_in_labels,
)
from ctpipe.drift import (
    FeatureDrift,
    ReferenceProfile,
    bootstrap_metric,
    build_profile,
    detect_drift,
)
from ctpipe.evaluation import metric_fn
from ctpipe.lineage import Lineage, LoadedVersion
from ctpipe.steps.ports import Runtime, TrackingRun
from ctpipe.steps.validate import passes_as_it_is
from ctpipe.trace import Artifact, Decision
from ctpipe.training import NotEnoughData, split_for_change

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
        self.dates = tuple(dates)
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


def earlier_batches(rt: Runtime, day: dt.date) -> _EarlierBatches | None:
    """The stored batches before ``day`` that the drift share may need, read lazily.

    A feature constant within the batch needs the last ``constant_window - 1``; the seasonal
    reference the batch (or window) ``seasonal_period`` batches back. None when neither is on.
    A file whose footer cannot be read (truncated, empty) is not history: its own validation
    sets it aside, and it must not fail every later cycle's drift check meanwhile.
    """
    drift = rt.config.drift
    needed = (drift.constant_window or 1) - 1 + (drift.seasonal_period or 0)
    if needed <= 0:
        return None
    earlier = [d for d in rt.store.batch_dates() if d < day]
    readable: list[dt.date] = []
    for d in reversed(earlier):
        if len(readable) == needed:
            break
        if rt.store.row_counts([d]):
            readable.append(d)
    return _EarlierBatches(rt, readable[::-1])


def training_batches(rt: Runtime, lineage: Lineage, day: dt.date) -> _EarlierBatches:
    """The stored batches the champion was trained on, read lazily: the labelled ones (a
    batch without labels was never trained on) of its lineage's train_start..train_end."""
    start, end = lineage.train_start, lineage.train_end
    if not start or not end:
        return _EarlierBatches(rt, [])
    return _EarlierBatches(rt, [d for d in rt.store.labelled_dates(day)
                                if start <= d.isoformat() <= end])


def assess_drift(rt: Runtime, day: dt.date, batch: pd.DataFrame,
                 champion: LoadedVersion | None, *, force: bool = False) -> DriftVerdict:
    """Load first (the pooled fresh labels, the recent cycle records), then decide.

    ``force`` (an operator's --force) retrains whatever the policy says (forced_retrain).
    """
    cfg = rt.config
    if champion is None:  # cold start: never delayed
        return DriftVerdict(None, None, retrain_reason(report=None, performance=None).reason,
                            triggers=tuple(cfg.drift.triggers))
    lineage = champion.info.lineage
    seen_until = lineage.seen_until
    fresh = [d for d in rt.store.labelled_dates(day) if not seen_until
             or d.isoformat() > seen_until]
    pooled, labelled, left_out, unread = _pooled_labels(rt, fresh)
    history = retrain_history(day=day, batch_dates=rt.store.batch_dates(),
                              attempts=recent_attempts(rt, day, seen_until),
                              trained_until=lineage.train_end or "")

    earlier = earlier_batches(rt, day)
    report = detect_drift(champion.profile, batch, cfg.drift, earlier,
                          season_known=_season_known(rt, earlier, cfg.drift.seasonal_period,
                                                     seen_until),
                          training=training_batches(rt, lineage, day)
                          if cfg.drift.training_spread else None)
    predictions = champion.model.predict(batch)
    outputs = [_output_drift(rt, champion.outputs, PREDICTION, predictions)]
    summaries = {PREDICTION: _moved(champion.outputs, PREDICTION, predictions, binary=False)}
    target = labelled[cfg.data.target] if labelled is not None else None
    if target is not None and len(target):
        outputs.append(_output_drift(rt, champion.outputs, LABEL, target))
        summaries[LABEL] = _moved(champion.outputs, LABEL, target.to_numpy(),
                                  binary=cfg.data.task == "binary")
    performance = check_performance(rt, champion, pooled, labelled, seen_until,
                                    left_out=left_out, unread=unread)
    onset = drift_onset(rt, day, seen_until)
    if pooled and seen_in_labels(performance, outputs, cfg.drift.triggers):
        onset = min(onset, min(pooled))  # the labelled evidence is that old
    learned_from = learned_change(lineage)
    learned = dt.date.fromisoformat(learned_from) if learned_from else None
    seen = _seen_since(rt, history.last_attempt, learned)
    # The retrain step shares rows on the same evidence (steps.retrain, train_candidate).
    persists = drift_persists(rt, day, report.drifted_features)
    follow = follow_up(
        onset=learned, seen=seen,
        available=sum(d >= learned for d in _train_batches(
            rt, day, learned if persists else None) or ()) if learned else 0,
        until=cfg.training.follow_ups_until, growth=cfg.training.follow_up_growth)
    awaiting = awaiting_new_data(
        onset=onset, train_batches=_train_batches(rt, day, onset if persists else None),
        needed=cfg.training.min_batches_after_drift)
    call = retrain_reason(
        report=report, performance=performance, outputs=outputs,
        triggers=cfg.drift.triggers, summaries=summaries, history=history,
        retrain_every=cfg.training.retrain_every,
        rejection_cooldown=cfg.training.rejection_cooldown,
        max_rejection_cooldown=cfg.training.max_rejection_cooldown,
        awaiting=awaiting, follow=follow,
        learning=still_learning(onset=learned, seen=seen, until=cfg.training.follow_ups_until,
                                growth=cfg.training.follow_up_growth))
    call = forced_retrain(call, force=force, performance=performance,
                          triggers=cfg.drift.triggers,
                          labels_judged=label_drift_measured(outputs))
    verdict = DriftVerdict(report, performance, call.reason, tuple(outputs), call.cooling,
                           tuple(cfg.drift.triggers))
    drifted = onset if verdict.drift_detected else None
    return replace(verdict, onset=drifted, change_onset=change_to_learn(
        drift_onset=drifted, awaiting=awaiting, learned=learned, seen=seen,
        until=cfg.training.follow_ups_until, retrains=call.reason is not None))


def _pooled_labels(rt: Runtime, fresh: list[dt.date]) -> tuple[
        list[dt.date], pd.DataFrame | None, list[dt.date], str | None]:
    """The labelled batches the performance and label checks pool, their rows, the fresh
    batches left out, and why the rows could not be read (None: they were).

    Only batches whose file passes validation as it is now (validate.passes_as_it_is, which
    checks one no cycle ran on, or one replaced since it passed): a file that fails must not
    move a retrain. It stays where it is, and is asked about again next cycle. A file replaced
    between that check and the read leaves nothing pooled this run; the next run checks it
    again.
    """
    cfg = rt.config
    left_out: list[dt.date] = []

    def usable(day: dt.date) -> bool:
        if passes_as_it_is(rt, day):
            return True
        left_out.append(day)
        return False

    pooled = pool_labelled([(d, rt.store.label_rows([d])) for d in fresh],
                           window=cfg.drift.performance_window,
                           min_rows=cfg.drift.min_performance_rows, usable=usable)
    left_out.sort()
    if not pooled:
        return pooled, None, left_out, None
    try:
        return pooled, rt.store.read_labelled(pooled, validated=True), left_out, None
    except ValueError as exc:  # replaced since its check: the message names the file
        return [], None, left_out, " ".join(str(exc).split())


def _season_known(rt: Runtime, earlier: _EarlierBatches | None, period: int | None,
                  seen_until: str) -> bool:
    """Whether the batch one cycle back may explain a change as the season: data the champion
    was fitted on, or a later batch its own cycle judged free of drift. A batch that was
    itself drift (a lasting shift a cycle old) explains nothing."""
    if earlier is None or not period or len(earlier.dates) < period:
        return True
    back = earlier.dates[-period]
    if back.isoformat() <= seen_until:
        return True
    record = rt.store.read_record(back)
    return record is not None and record.validation_passed and not record.drift_detected


def drift_onset(rt: Runtime, day: dt.date, seen_until: str) -> dt.date:
    """Where the drift that ``day`` continues began: the earliest onset recorded by the
    consecutive batches before ``day`` whose cycle saw drift (after the champion's data;
    labelled evidence can be older than its batch), else ``day`` itself. An onset recorded
    at or before the champion's data (a batch judged by the champion before it) is a change
    the champion was trained on: that batch counts as its own onset."""
    onset = day
    for d in reversed([d for d in rt.store.batch_dates() if seen_until < d.isoformat()
                       and d < day]):
        record = rt.store.read_record(d)
        if record is None or not record.drift_detected:
            break
        recorded = record.drift_onset if record.drift_onset and \
            record.drift_onset > seen_until else None
        onset = min(onset, d, dt.date.fromisoformat(recorded) if recorded else d)
    return onset


def drift_persists(rt: Runtime, day: dt.date, drifted_inputs: Sequence[str]) -> bool:
    """Whether the change outlasts one batch: the cycle of the batch before ``day`` saw drift
    too, or ``day``'s own inputs show drifted features (``drifted_inputs``, below the share
    threshold or not). Only then may a challenger share the change's first labelled batches
    by row (training.split_for_change): one odd batch (a storm day) would otherwise be
    learned from half its rows, judged on the other half, which shares its conditions, pass
    the gate and serve the ordinary days after it."""
    if drifted_inputs:
        return True
    before = [d for d in rt.store.batch_dates() if d < day]
    record = rt.store.read_record(before[-1]) if before else None
    return record is not None and record.drift_detected


def _seen_since(rt: Runtime, last: PastAttempt | None, onset: dt.date | None) -> int:
    """Labelled batches from ``onset`` on that the newest retrain attempt trained on."""
    if last is None or onset is None:
        return 0
    return sum(d >= onset for d in _train_batches(rt, last.batch_date, onset) or ())


def _train_batches(rt: Runtime, day: dt.date, onset: dt.date | None) -> list[dt.date] | None:
    """The batches a retrain as of ``day`` learning the change since ``onset`` would train on,
    wholly or in part (None: the window is too short)."""
    try:
        return split_for_change(rt.store.labelled_dates(day), rt.config, onset,
                                label_rows=rt.store.label_rows).train
    except NotEnoughData:
        return None


def recent_attempts(rt: Runtime, day: dt.date, since: str) -> list[PastAttempt]:
    """Retrain attempts recorded from ``since`` (the champion's data) on and before ``day``,
    newest first, back to the first one that was neither rejected nor unjudged (what the
    cooldown needs)."""
    attempts: list[PastAttempt] = []
    for d in reversed([d for d in rt.store.batch_dates() if since <= d.isoformat()
                       and d < day]):
        record = rt.store.read_record(d)
        if record is None or not record.retrained:
            continue
        unjudged = record.status is CycleStatus.REJECTED and record.gate_unjudged
        rejected = record.status in (CycleStatus.REJECTED, CycleStatus.TIMED_OUT) \
            and not unjudged
        attempts.append(PastAttempt(d, record.candidate_version, rejected,
                                    (record.retrain_reason or "").startswith(FOLLOW_UP),
                                    unjudged))
        if not rejected and not unjudged:
            break
    return attempts


def check_performance(rt: Runtime, champion: LoadedVersion, pooled: list[dt.date],
                      labelled: pd.DataFrame | None, seen_until: str, *,
                      left_out: Sequence[dt.date] = (),
                      unread: str | None = None) -> PerformanceCheck:
    """The champion's metric on the pooled rows with a seeded bootstrap interval, judged."""
    cfg = rt.config
    batches = [d.isoformat() for d in pooled]
    rows = 0 if labelled is None else len(labelled)
    common = dict(batches=batches, left_out=[d.isoformat() for d in left_out], unread=unread,
                  metric=cfg.evaluation.metric,
                  baseline=champion.info.lineage.metric, rows=rows,
                  min_rows=cfg.drift.min_performance_rows,
                  tolerance=cfg.drift.performance_tolerance,
                  higher_is_better=cfg.higher_is_better, seen_until=seen_until,
                  floor=cfg.gate.floor)
    interval = None
    if cannot_judge_performance(batches=batches, rows=rows,
                                min_rows=cfg.drift.min_performance_rows,
                                baseline=champion.info.lineage.metric,
                                tolerance=cfg.drift.performance_tolerance) is None:
        assert labelled is not None
        interval = bootstrap_metric(
            labelled[cfg.data.target].to_numpy(), champion.model.predict(labelled),
            metric_fn(cfg), resamples=cfg.drift.performance_resamples,
            confidence=cfg.drift.performance_confidence, seed=cfg.training.seed,
            name=cfg.evaluation.metric)
    return judge_performance(interval=interval, **common)


def _moved(outputs: ReferenceProfile, column: str, values: np.ndarray | pd.Series, *,
           binary: bool) -> str:
    """What moved, in words: a binary label's positive rate, else the mean."""
    current = np.asarray(values, dtype="float64")
    current = current[np.isfinite(current)]
    if binary and column in outputs.categorical:
        counts = outputs.categorical[column]
        total = sum(counts.values())
        positives = sum(n for k, n in counts.items() if _is_one(k))
        if not total or not current.size:
            return ""
        return (f"positive rate {current.mean():.1%} vs {positives / total:.1%} in training")
    reference = outputs.numeric.get(column)
    if reference is None or not reference.size or not current.size:
        return ""
    return f"mean {current.mean():.4g} vs {float(np.mean(reference)):.4g} in training"


def _is_one(key: str) -> bool:
    try:
        return float(key) == 1.0
    except ValueError:
        return key.lower() == "true"


def drift_decision(rt: Runtime, day: dt.date, verdict: DriftVerdict, run: TrackingRun, *,
                   retrain_inline: bool, force: bool = False) -> Decision:
    """``force``: the cycle was forced; the retraining its event starts is forced too."""
    report = verdict.report
    lines = ["# Drift", "", report.summary_markdown() if report else "No champion: no reference."]
    for o in verdict.outputs:
        state = "drifted" if o.drifted else "stable"
        lines += ["", f"{o.feature.capitalize()} distribution vs the champion's training rows: "
                  f"{state} ({o.test} {o.statistic:.4f}, threshold {o.threshold:.4g})."]
    p = verdict.performance
    if p:
        state = ("drifted" if p.drifted else "no drift") if p.judged else "not judged"
        lines += ["", f"Performance ({state}): {p.summary()}"
                  + (f"; {p.note}" if p.judged and p.note else "")]
    triggers = ", ".join(verdict.triggers)
    decision = verdict.retrain_reason or verdict.cooling or "no retraining needed"
    lines += ["", f"Retraining triggers (drift.triggers): {triggers}.",
              "", f"Decision: {decision}",
              "", f"MLflow run (drift plot, metrics): [{run.run_id}]({run.link})"]
    table = None
    if report is not None:
        table = tuple(report.to_records() + [
            {**o.to_record(), "in_share": False, "kind": f"{o.kind} ({o.feature}, not in share)"}
            for o in verdict.outputs])
    drifted = report.drifted_features if report else []
    performance = p.to_dict() if p else None
    return Decision(
        kind="drift.checked", use_case=rt.use_case, subject=f"batch {day}",
        reason=verdict.retrain_reason or verdict.cooling or "no drift",
        details={"batch_date": day.isoformat(), "drifted_features": drifted,
                 "performance": performance, "cooling": verdict.cooling},
        artifact=Artifact(
            "drift", "Drift verdict", "\n".join(lines), table=table, table_key="drift-table",
            table_description=f"Drift per feature (share {report.drift_share:.0%})"
            if report else None),
        event="ctpipe.drift.detected" if verdict.drift_detected else None,
        # Cooling down: the event informs, but must not start the retraining deployment.
        event_labels={RETRAIN_LABEL: "cooling-down" if verdict.cooling
                      else "inline" if retrain_inline else "by-event"},
        event_payload={
            "batch_date": day.isoformat(), "reason": verdict.retrain_reason,
            "drifted_features": drifted, "drift_share": report.drift_share if report else 0.0,
            "performance": performance, "cooling": verdict.cooling,
            "outputs_drifted": [o.feature for o in verdict.outputs if o.drifted],
            "force": force})


def attach_drift_plot(run: TrackingRun, champion: LoadedVersion, batch: pd.DataFrame,
                      verdict: DriftVerdict) -> None:
    if verdict.report is None or not verdict.report.drifted_features:
        return
    with tempfile.TemporaryDirectory(prefix="ctpipe-drift-") as tmp:
        path = reports.plot_drift(champion.profile, batch, verdict.report,
                                  Path(tmp) / "drift.png")
        run.attach(path, "drift")
