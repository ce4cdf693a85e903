"""The static model and cron schedules, replayed on the same batches as ctpipe's policy.

A cron schedule retrains every N batches (ctpipe.decisions.baselines.cron_retrain_due) with the
cycle's own trainer and window (ctpipe.steps.train.train_candidate) and keeps the challenger
only if the cycle's own gate passes it (ctpipe.steps.train.gate_challenger). The model trained
as of a day is the same for every schedule (same window, same seed), so each day is fitted at
most once and shared; the days are replayed in order, every schedule side by side, so a day's
holdout and labelled batch are read once and dropped. Each schedule also runs started on each
later batch of its period (its phases), on the same fits: a cron job's start is arbitrary, and
the phase alone can move a schedule's mean by several percent.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ctpipe.backtest import mean, model_metric
from ctpipe.config import UseCaseConfig
from ctpipe.decisions.baselines import cron_retrain_due
from ctpipe.steps.train import Candidate, gate_challenger, train_candidate, window_problem
from ctpipe.store import Store
from ctpipe.training import NotEnoughData, ScoringModel


@dataclass(frozen=True)
class _Ports:
    """What train_candidate and window_problem read from a runtime: the config and the store."""

    config: UseCaseConfig
    store: Store


@dataclass(frozen=True)
class PhaseRun:
    """One schedule started ``phase`` batches after the cold start: its figures."""

    phase: int
    mean: float | None
    retrains: int
    promotions: int


@dataclass
class CronReplay:
    """Per schedule N: the champion's metric per batch, and the batches it retrained on (the
    schedule started on the cold start); ``phases[N]``: the same schedule started on each
    batch of its period, phase 0 first (empty when the replay ran no phases)."""

    schedules: tuple[int, ...]
    metrics: dict[int, list[float | None]] = field(default_factory=dict)
    retrain_days: dict[int, list[int]] = field(default_factory=dict)
    promotion_days: dict[int, list[int]] = field(default_factory=dict)
    cold_start: int | None = None
    fits: int = 0
    seconds: float = 0.0
    phases: dict[int, list[PhaseRun]] = field(default_factory=dict)

    def mean(self, every: int) -> float | None:
        return mean(self.metrics[every])

    def best(self, higher_is_better: bool) -> int | None:
        """The schedule with the best mean metric (the smaller N on a tie)."""
        scored = [(m, n) for n in self.schedules if (m := self.mean(n)) is not None]
        if not scored:
            return None
        sign = -1.0 if higher_is_better else 1.0
        return min(scored, key=lambda mn: (sign * mn[0], mn[1]))[1]


@dataclass
class _Run:
    """One schedule at one phase, as the replay goes."""

    every: int
    phase: int
    champion: dt.date | None = None
    metrics: list[float | None] = field(default_factory=list)
    retrain_days: list[int] = field(default_factory=list)
    promotion_days: list[int] = field(default_factory=list)


def replay_cron(config: UseCaseConfig, store: Store, dates: list[dt.date],
                validated: list[bool], schedules: tuple[int, ...],
                labelled_batch: Callable[[dt.date], pd.DataFrame | None], *,
                phases: bool = True) -> CronReplay:
    """Replay every schedule over ``dates``; ``validated[i]``: batch i passed validation.

    A quarantined batch stops the cycle before anything is trained, so a schedule neither
    retrains nor scores on it. ``labelled_batch(day)`` is the batch with its own labels (None:
    nothing to score), the rows every policy is scored on. ``phases``: also each schedule
    started 1..N-1 batches after the cold start (decisions.baselines); they share the fits.
    """
    started = time.perf_counter()
    ports = _Ports(config, store)
    runs = [_Run(n, p) for n in schedules for p in (range(n) if phases else (0,))]
    cold_start: int | None = None
    fits = 0
    models: dict[dt.date, ScoringModel] = {}  # fits some run still serves
    for i, day in enumerate(dates):
        if validated[i] and cold_start is None and window_problem(ports, day) is None:
            cold_start = i
        due = [run for run in runs if validated[i] and cron_retrain_due(
            i, cold_start=cold_start, every=run.every, has_champion=run.champion is not None,
            phase=run.phase)]
        candidate = _fit(ports, day) if due else None
        if candidate is not None:
            fits += 1
            models[day] = candidate.model
            passed: dict[dt.date | None, bool] = {}  # one gate per distinct champion
            for run in due:
                incumbent = run.champion
                if incumbent not in passed:
                    passed[incumbent] = gate_challenger(
                        config, candidate.model,
                        None if incumbent is None else models[incumbent],
                        candidate.holdout).decision.passed
                run.retrain_days.append(i)
                if passed[incumbent]:
                    run.champion = day
                    run.promotion_days.append(i)
        frame = labelled_batch(day) if validated[i] else None
        scores: dict[dt.date, float | None] = {}
        for run in runs:
            served = run.champion
            if frame is None or served is None:
                run.metrics.append(None)
                continue
            if served not in scores:
                scores[served] = model_metric(config, frame, models[served])
            run.metrics.append(scores[served])
        models = {d: m for d, m in models.items() if d in {run.champion for run in runs}}
    first = {run.every: run for run in runs if run.phase == 0}
    # A start past the replay's end never retrains after the cold start: the same run as
    # the cold-start model alone, counted once (as phase 0 when even that is past it).
    begun = [run for run in runs if run.phase == 0 or (
        cold_start is not None and cold_start + run.phase < len(dates))]
    return CronReplay(
        schedules,
        metrics={n: first[n].metrics for n in schedules},
        retrain_days={n: first[n].retrain_days for n in schedules},
        promotion_days={n: first[n].promotion_days for n in schedules},
        cold_start=cold_start, fits=fits, seconds=time.perf_counter() - started,
        phases={n: [PhaseRun(run.phase, mean(run.metrics), len(run.retrain_days),
                             len(run.promotion_days)) for run in begun if run.every == n]
                for n in schedules} if phases else {})


def _fit(ports: _Ports, day: dt.date) -> Candidate | None:
    """The challenger trained as of ``day``; None when training drops rows the window's label
    count included (null targets) below training.min_train_rows: the cycle waits then too."""
    try:
        return train_candidate(ports, day)
    except NotEnoughData:
        return None


def attach(result: dict, replay: CronReplay) -> None:
    """Put the schedules' figures into a replay's result: per day ``cron_metrics`` {N: value}
    and ``cron_metric`` (the best N's), and ``cron`` with each schedule's counts."""
    best = replay.best(result["higher_is_better"])
    for i, day in enumerate(result["days"]):
        day["cron_metrics"] = {str(n): replay.metrics[n][i] for n in replay.schedules}
        day["cron_metric"] = None if best is None else replay.metrics[best][i]
    result["cron"] = {
        "schedules": list(replay.schedules),
        "best": best,
        "cold_start": replay.cold_start,
        "retrains": {str(n): len(replay.retrain_days[n]) for n in replay.schedules},
        "promotions": {str(n): len(replay.promotion_days[n]) for n in replay.schedules},
        "fits": replay.fits,
        "seconds": round(replay.seconds, 2),
    }
    if replay.phases:
        result["cron"]["phases"] = {
            str(n): [{"phase": r.phase, "mean": r.mean, "retrains": r.retrains,
                      "promotions": r.promotions} for r in runs]
            for n, runs in replay.phases.items()}
