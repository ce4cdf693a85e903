"""Train a challenger on the labelled window and evaluate it beside the champion."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.decisions.gate import GateDecision
from ctpipe.decisions.gate import decide as decide_gate
from ctpipe.drift import ReferenceProfile, build_profile
from ctpipe.estimate import Calibration, fit_calibration
from ctpipe.evaluation import Evaluation, SliceComparison, compare_slices, evaluate
from ctpipe.faults import pause_point
from ctpipe.lineage import Lineage, gate_tags
from ctpipe.steps.drift import outputs_profile
from ctpipe.steps.ports import Runtime
from ctpipe.training import (
    NotEnoughData,
    ScoringModel,
    WindowSplit,
    data_fingerprint,
    split_for_change,
    split_window,
    train_model,
)


@dataclass
class Candidate:
    model: ScoringModel
    profile: ReferenceProfile
    outputs: ReferenceProfile
    split: WindowSplit
    holdout: pd.DataFrame
    train_rows: int
    fingerprint: str
    emphasis_from: str | None = None  # a drift's onset, when a batch of the window is from it
    change_onset: str | None = None  # the same onset, whether or not it was weighed up


def window_problem(rt: Runtime, day: dt.date) -> str | None:
    """Why a retrain as of ``day`` cannot happen yet (None: the history suffices)."""
    try:
        split = split_window(rt.store.labelled_dates(day), rt.config)
    except NotEnoughData as exc:
        return str(exc)
    rows = rt.store.label_rows(split.train)
    if rows < rt.config.training.min_train_rows:
        return (f"{rows} training rows in {len(split.train)} batches, "
                f"training.min_train_rows is {rt.config.training.min_train_rows}")
    return None


def train_candidate(rt: Runtime, day: dt.date,
                    progress: Callable[[float], None] | None = None,
                    emphasis_from: dt.date | None = None, share_rows: bool = False, *,
                    verified: bool = False) -> Candidate:
    """Train on the labelled window as of ``day``; the newest ``holdout`` batches held out, or
    with ``share_rows`` (the drift persists), part of the rows of the change's first batches
    (training.split_for_change); batches from ``emphasis_from`` (a drift's onset) on weigh
    ``training.drift_emphasis``. ``verified``: only the bytes that passed validation are read
    (after steps.validate.check_training_window; a replay's baselines train on batches their
    replay already cycled)."""
    cfg = rt.config
    split = split_for_change(rt.store.labelled_dates(day), cfg,
                             emphasis_from if share_rows else None,
                             label_rows=rt.store.label_rows)
    frame = rt.store.read_labelled(split.batches, validated=verified)
    held = split.held_out(frame, cfg.data.time_column, cfg.training.seed)
    train = frame[~held].reset_index(drop=True)
    holdout = frame[held].reset_index(drop=True)
    pause_point("train.fit")  # tests kill a run here: inside the retraining slot
    model = train_model(cfg, train, progress,
                        emphasis_from.isoformat() if emphasis_from else None)
    profile = build_profile(train, cfg.features.numeric, cfg.features.categorical)
    outputs = outputs_profile(cfg.data.task, model.predict(train), train[cfg.data.target])
    learned = emphasis_from is not None and any(d >= emphasis_from for d in split.train)
    onset = emphasis_from.isoformat() if learned and emphasis_from else None
    return Candidate(model, profile, outputs, split, holdout, len(train),
                     data_fingerprint(train),
                     onset if cfg.training.drift_emphasis != 1.0 else None, onset)


@dataclass(frozen=True)
class GatedChallenger:
    """A challenger judged against the champion on the same holdout rows."""

    decision: GateDecision
    challenger: Evaluation
    champion: Evaluation | None
    finite: bool
    calibration: Calibration | None  # binary only; registered with the version


def gate_challenger(config: UseCaseConfig, challenger_model: ScoringModel,
                    champion_model: ScoringModel | None,
                    holdout: pd.DataFrame, *,
                    follows_up: str | None = None) -> GatedChallenger:
    """Evaluate both models on the holdout and apply the gate: the one judgement every policy
    (the cycle, the cron baselines of a replay) uses. Slices are compared pairwise on the same
    holdout rows (a seeded bootstrap where a slice could veto). ``follows_up``: see
    decisions.gate.decide."""
    scored = _scored_holdout(config, challenger_model, holdout)
    incumbent: Evaluation | None = None
    slices: tuple[SliceComparison, ...] = ()
    if champion_model is not None:
        champ = _scored_holdout(config, champion_model, holdout, calibrate=False)
        incumbent = champ.evaluation
        slices = compare_slices(config, holdout[config.data.target].to_numpy(), scored.pred,
                                champ.pred, holdout)
    decision = decide_gate(config.gate, scored.evaluation, incumbent,
                           predictions_finite=scored.finite,
                           splits=challenger_model.splits, slices=slices,
                           follows_up=follows_up)
    return GatedChallenger(decision, scored.evaluation, incumbent, scored.finite,
                           scored.calibration)


@dataclass(frozen=True)
class _Scored:
    evaluation: Evaluation
    pred: np.ndarray  # non-finite scores replaced (they fail the gate's sanity check anyway)
    finite: bool
    calibration: Calibration | None


def _scored_holdout(config: UseCaseConfig, model: ScoringModel, holdout: pd.DataFrame, *,
                    calibrate: bool = True) -> _Scored:
    """Evaluation, scores, finiteness and, for a binary model, the calibration of these scores."""
    pred = model.predict(holdout)
    finite = bool(np.isfinite(pred).all())
    y = holdout[config.data.target].to_numpy()
    # Same scores and labels the gate judges; non-finite scores fail the gate anyway.
    calibration = fit_calibration(pred, y) \
        if calibrate and config.data.task == "binary" and finite and len(y) else None
    pred = np.nan_to_num(pred)
    return _Scored(evaluate(config, y, pred, holdout), pred, finite, calibration)


def lineage(rt: Runtime, day: dt.date, cand: Candidate, challenger: Evaluation,
            decision: GateDecision, reason: str | None, gated_against: int | None) -> Lineage:
    return Lineage(
        use_case=rt.config.name, batch_date=day.isoformat(),
        train_start=cand.split.train[0].isoformat(), train_end=cand.split.train[-1].isoformat(),
        holdout_start=cand.split.holdout[0].isoformat(),
        holdout_end=cand.split.holdout[-1].isoformat(),
        holdout_share=f"{cand.split.share:g}" if cand.split.shared else None,
        train_rows=str(cand.train_rows), emphasis_from=cand.emphasis_from,
        change_onset=cand.change_onset,
        data_fingerprint=cand.fingerprint,
        config_hash=rt.config.config_hash, metric_name=challenger.metric,
        holdout_metric=f"{challenger.value:.6f}", retrain_reason=reason or "",
        gated_against=str(gated_against or ""),
    ).merged(gate_tags(decision.verdict, decision.reasons))
