"""The static model and cron schedules, replayed on the same batches as ctpipe's policy.

A cron schedule retrains every N batches (ctpipe.decisions.baselines.cron_retrain_due) with the
cycle's own trainer and window (ctpipe.steps.train.train_candidate) and keeps the challenger
only if the cycle's own gate passes it (ctpipe.steps.train.gate_challenger). The model trained
as of a day is the same for every schedule (same window, same seed), so each day is fitted at
most once and shared; the days are replayed in order, every schedule side by side, so a day's
holdout and labelled batch are read once and dropped.
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


@dataclass
class CronReplay:
    """Per schedule N: the champion's metric per batch, and the batches it retrained on."""

    schedules: tuple[int, ...]
    metrics: dict[int, list[float | None]] = field(default_factory=dict)
    retrain_days: dict[int, list[int]] = field(default_factory=dict)
    promotion_days: dict[int, list[int]] = field(default_factory=dict)
    cold_start: int | None = None
    fits: int = 0
    seconds: float = 0.0

    def mean(self, every: int) -> float | None:
        return mean(self.metrics[every])

    def best(self, higher_is_better: bool) -> int | None:
        """The schedule with the best mean metric (the smaller N on a tie)."""
        scored = [(m, n) for n in self.schedules if (m := self.mean(n)) is not None]
        if not scored:
            return None
        sign = -1.0 if higher_is_better else 1.0
        return min(scored, key=lambda mn: (sign * mn[0], mn[1]))[1]


def replay_cron(config: UseCaseConfig, store: Store, dates: list[dt.date],
                validated: list[bool], schedules: tuple[int, ...],
                labelled_batch: Callable[[dt.date], pd.DataFrame | None]) -> CronReplay:
    """Replay every schedule over ``dates``; ``validated[i]``: batch i passed validation.

    A quarantined batch stops the cycle before anything is trained, so a schedule neither
    retrains nor scores on it. ``labelled_batch(day)`` is the batch with its own labels (None:
    nothing to score), the rows every policy is scored on.
    """
    started = time.perf_counter()
    ports = _Ports(config, store)
    out = CronReplay(schedules, {n: [] for n in schedules}, {n: [] for n in schedules},
                     {n: [] for n in schedules})
    champions: dict[int, dt.date | None] = dict.fromkeys(schedules)
    models: dict[dt.date, ScoringModel] = {}  # fits some schedule still serves
    for i, day in enumerate(dates):
        if validated[i] and out.cold_start is None and window_problem(ports, day) is None:
            out.cold_start = i
        due = [n for n in schedules if validated[i] and cron_retrain_due(
            i, cold_start=out.cold_start, every=n, has_champion=champions[n] is not None)]
        candidate = _fit(ports, day) if due else None
        if candidate is not None:
            out.fits += 1
            models[day] = candidate.model
            passed: dict[dt.date | None, bool] = {}  # one gate per distinct champion
            for n in due:
                incumbent = champions[n]
                if incumbent not in passed:
                    passed[incumbent] = gate_challenger(
                        config, candidate.model,
                        None if incumbent is None else models[incumbent],
                        candidate.holdout).decision.passed
                out.retrain_days[n].append(i)
                if passed[incumbent]:
                    champions[n] = day
                    out.promotion_days[n].append(i)
        frame = labelled_batch(day) if validated[i] else None
        scores: dict[dt.date, float | None] = {}
        for n in schedules:
            served = champions[n]
            if frame is None or served is None:
                out.metrics[n].append(None)
                continue
            if served not in scores:
                scores[served] = model_metric(config, frame, models[served])
            out.metrics[n].append(scores[served])
        models = {d: m for d, m in models.items() if d in champions.values()}
    out.seconds = time.perf_counter() - started
    return out


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
