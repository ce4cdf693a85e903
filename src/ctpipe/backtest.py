"""Replay preparation and scoring for backtests: what production would have seen, day by day."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ctpipe import landing, registry
from ctpipe.evaluation import evaluate
from ctpipe.simulate import check_scenario, generate_day
from ctpipe.workspace import Workspace

DEFAULT_START = dt.date(2026, 3, 2)


def reset(ws: Workspace) -> None:
    """A replay starts clean: its own landing zone, records and registered model."""
    if not ws.backtest:
        raise ValueError("only a backtest workspace may be reset")
    shutil.rmtree(ws.root, ignore_errors=True)
    registry.delete_registered_model(ws.model_name)
    from ctpipe.db import forget_model, open_database  # SQLAlchemy only when resetting

    forget_model(open_database(), ws.model_name)


def simulate_to_landing(ws: Workspace, out: Path, *, days: int, shift_day: int | None,
                        rows: int | None = None, seed: int = 7,
                        start: dt.date = DEFAULT_START,
                        simulator: str | None = None,
                        scenario: str = "shift") -> list[dt.date]:
    """Synthetic batches from the reference simulator named like the use case (or ``simulator``).

    ``scenario`` (ctpipe.simulate.SCENARIOS) starts at ``shift_day``; a scenario the simulator
    does not have is refused (ValueError) before anything is written.
    """
    check_scenario(simulator or ws.name, scenario)
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    for i, day in enumerate(dates):
        frame = generate_day(simulator or ws.name, i, day, rows=rows, shift_day=shift_day,
                             seed=seed, scenario=scenario)
        landing.write_batch(out, ws.config, day, frame)
    return dates


def cut_source(ws: Workspace, source: Path) -> dict[dt.date, pd.DataFrame]:
    """A user's labelled history read and cut into batches, in memory: nothing is written.

    Raises OSError or ValueError naming the problem: the source is missing or unreadable, has
    no target column, or holds no row to cut into a batch. `ctpipe backtest` calls this before
    ``reset`` deletes the previous replay, so a bad source leaves that replay whole.
    """
    frame = landing.read_source(source, ws.config)
    if ws.config.data.target not in frame.columns:
        raise ValueError(f"{source}: target column {ws.config.data.target!r} is missing")
    batches = landing.split_into_batches(frame, ws.config)
    if not batches:
        raise ValueError(f"{source}: no rows to cut into batches")
    return batches


def write_batches(ws: Workspace, batches: dict[dt.date, pd.DataFrame]) -> list[dt.date]:
    """The cut history into the replay's landing zone (batch and labels files)."""
    for day, part in batches.items():
        landing.write_batch(ws.landing, ws.config, day, part)
    return sorted(batches)


def load_source_to_landing(ws: Workspace, source: Path) -> list[dt.date]:
    """Cut a user's labelled history into batches in the replay's landing zone."""
    return write_batches(ws, cut_source(ws, source))


@dataclass(frozen=True)
class DayScore:
    champion_metric: float | None
    static_metric: float | None


def score_day(ws: Workspace, day: dt.date, champion_version: int | None,
              static_version: int | None) -> DayScore:
    """Both models' metric on this batch's own labels (known to the replay, not to the cycle).

    No metric (None) for a quarantined batch, nor for labels that break a rule: the cycle
    sets such labels aside once they arrive, the replay must not crash on them first.
    """
    if not landing.batch_path(ws.landing, day).is_file():
        return DayScore(None, None)  # quarantined: nothing was scored
    if landing.labels_problem(ws.landing, ws.config, day) is not None:
        return DayScore(None, None)
    frame = landing.load_labelled(ws.landing, ws.config, [day])
    y = frame[ws.config.data.target].to_numpy()

    def metric(version: int | None) -> float | None:
        if version is None:
            return None
        model = registry.load_version(ws.model_name, version).model
        value = evaluate(ws.config, y, model.predict(frame), frame).value
        return float(value) if np.isfinite(value) else None

    return DayScore(metric(champion_version), metric(static_version))


def mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize(result: dict) -> dict:
    """Headline figures of one use case's replay (what the demo prints)."""
    days = result["days"]
    shift = result.get("shift_day")
    promotions = [i for i, d in enumerate(days) if d["retrained"] and d["gate_passed"]]
    drift_days = [i for i, d in enumerate(days) if d["drift_detected"]]
    out = {
        "batches": len(days),
        "quarantined": sum(not d["validation_passed"] for d in days),
        "drift_days": len(drift_days),
        "retrains": sum(d["retrained"] for d in days),
        "promotions": len(promotions),
        "champion_mean": mean([d["champion_metric"] for d in days]),
        "static_mean": mean([d["static_metric"] for d in days]),
        "rows_scored": sum(d.get("rows_scored", 0) for d in days),
        "live_mean": mean([d.get("live_metric") for d in days]),
        "rollbacks": [d["date"] for d in days if d.get("rolled_back")],
    }
    if shift is not None:
        after = [i for i in drift_days if i >= shift]
        out["first_drift_after_shift"] = (after[0] - shift) if after else None
        promoted_after = [i for i in promotions if i >= shift]
        if promoted_after:
            p = promoted_after[0]
            window = days[p + 1: p + 11]
            out["promotion_after_shift"] = p - shift
            out["champion_mean_10_after"] = mean([d["champion_metric"] for d in window])
            out["static_mean_10_after"] = mean([d["static_metric"] for d in window])
    return out
