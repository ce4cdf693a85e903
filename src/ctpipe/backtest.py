"""Replay preparation and scoring for backtests: what production would have seen, day by day."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ctpipe import labelled_history, landing, registry
from ctpipe.batch_reader import as_numbers, columns_found
from ctpipe.config import UseCaseConfig
from ctpipe.evaluation import evaluate
from ctpipe.simulate import check_scenario, generate_day
from ctpipe.source_checks import (
    Batches,
    nulls_problem,
    target_problem,
    training_rows_problem,
    unexpected_columns_problem,
)
from ctpipe.training import ScoringModel
from ctpipe.wording import count_of
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


def cut_source(ws: Workspace, source: Path, *, start: dt.date | None = None,
               end: dt.date | None = None) -> Batches:
    """A user's labelled history read and cut into batches, in memory: nothing is written.

    Only batches dated ``start`` to ``end`` are kept (both included, None: unbounded); the
    checks below judge those.

    Raises OSError or ValueError naming the problem: the source is missing or unreadable, has
    no target column, a time column of numbers, no row to cut into a batch, lacks a feature
    column (or has words in a numeric one), has columns the config does not use while
    validation.unexpected_columns is error, a target the task cannot use, too few batches for
    training.window, or too few labelled rows in any window for training.min_train_rows.
    Each message starts with the source's name (source_problem drops it for a caller that
    names the source itself). `ctpipe backtest` calls this before ``reset`` deletes the
    previous replay, so a bad source leaves that replay whole.
    """
    config = ws.config
    frame = labelled_history.read_source(source, config)
    if config.data.target not in frame.columns:
        raise ValueError(f"{source}: target column {config.data.target!r} is missing "
                         f"({columns_found(frame)})")
    try:
        batches = labelled_history.split_into_batches(frame, config)
    except ValueError as exc:  # no time column, numbers or words in it: name the file
        raise ValueError(f"{source}: {exc}") from None
    if not batches:
        raise ValueError(f"{source}: no rows to cut into batches")
    named = "the source"  # every message below names the file in front already
    if start is not None or end is not None:
        batches = _between(batches, start, end, str(source))
        frame = pd.concat(list(batches.values()), ignore_index=True)
        named += f", from {start or 'its first batch'} to {end or 'its last batch'},"
    # Each of these would quarantine every batch (or set aside every labels file): the
    # replay would run for minutes and serve nothing.
    problem = (feature_problem(frame, config) or target_problem(frame, config)
               or unexpected_columns_problem(frame, config))
    if problem is not None:
        raise ValueError(f"{source}: {problem}")
    problem = nulls_problem(batches, config) or window_problem(len(batches), config, named)
    if problem is not None:
        raise ValueError(f"{source}: {problem}")
    problem = training_rows_problem(batches, config)
    if problem is not None:
        raise ValueError(f"{source}: {problem}")
    return batches


def source_problem(source: str | Path, exc: BaseException) -> str:
    """``exc``'s message in one line without ``source``'s name in front.

    cut_source's errors name the source first, so that they stand alone; a caller that names
    the source itself would otherwise repeat it. A file of a folder source is named relative
    to the folder.
    """
    text = " ".join(str(exc).split())
    name = str(source)
    if text.startswith(f"{name}: "):
        return text[len(name) + 2:]
    if text.startswith(f"{name}{os.sep}"):
        return text[len(name) + 1:]
    return text


def _between(batches: Batches, start: dt.date | None, end: dt.date | None,
             source: str) -> Batches:
    """The batches dated ``start`` to ``end``; none: a ValueError naming the source's dates."""
    kept = {day: part for day, part in batches.items()
            if (start is None or day >= start) and (end is None or day <= end)}
    if not kept:
        dates = sorted(batches)
        asked = f"from {start or 'its first'} to {end or 'its last'}"
        raise ValueError(f"{source}: no batch dated {asked}; its batches run from {dates[0]} "
                         f"to {dates[-1]}")
    return kept


def window_problem(batches: int, config: UseCaseConfig, source: str) -> str | None:
    """Why no challenger can ever train on ``batches`` batches (None: one can).

    Training needs training.window labelled batches; on the last batch's cycle the newest
    data.label_delay batches are not labelled yet (landing.labelled_dates), so the replay
    never holds more than ``batches - label_delay``.
    """
    window, delay = config.training.window, config.data.label_delay
    labelled = batches - delay
    if window <= labelled:
        return None
    made = count_of(batches, f"{config.data.batch_frequency} batch")
    text = f"training.window {window} needs {window} labelled batches; {source} makes {made}"
    if window <= batches:  # enough batches, but the newest are never labelled in time
        text += (f", {max(labelled, 0)} of them labelled by the last one "
                 f"(data.label_delay {delay})")
    return text




def feature_problem(frame: pd.DataFrame, config: UseCaseConfig) -> str | None:
    """The first feature column the source lacks, or a numeric feature that is not numbers:
    every batch would be quarantined for it, so a replay refuses it up front."""
    features = config.features
    for kind, columns in (("numeric", features.numeric), ("categorical", features.categorical)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            return f"features.{kind}: column {missing[0]!r} is missing ({columns_found(frame)})"
    for column in features.numeric:
        values = frame[column]
        if as_numbers(values) is not None:
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        words = values[numbers.isna() & values.notna()]
        if 0 < len(words) and len(words) * 2 < values.notna().sum():  # a few markers
            shown = ", ".join(repr(str(v)) for v in words.unique()[:3])
            return (f"features.numeric: column {column!r} holds {count_of(len(words), 'value')} "
                    f"that {'is' if len(words) == 1 else 'are'} not a number ({shown}); if they "
                    "mark missing values, list them under data.na_values")
        if len(words) == 0 and values.notna().any():
            return (f"features.numeric: column {column!r} holds numbers written as text (dtype "
                    f"{values.dtype}): write them as numbers")
        present = values.dropna().astype(str)
        if len(present) and present.str.fullmatch(r"\s*-?\d+,\d+\s*").mean() > 0.5:
            return (f"features.numeric: column {column!r} holds numbers with a decimal comma "
                    f"(e.g. {present.iloc[0]!r}): for a CSV file, set data.csv_decimal: ','; "
                    "else write them with a decimal point")
        return (f"features.numeric: column {column!r} is not numeric (dtype {values.dtype}); a "
                "category belongs under features.categorical")
    return None


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


def labelled_batch(ws: Workspace, day: dt.date) -> pd.DataFrame | None:
    """The batch with its own labels, to score a model on (known to the replay, not the cycle).

    None for a quarantined batch, and for labels that break a rule: the cycle sets such
    labels aside once they arrive, the replay must not crash on them first.
    """
    if not landing.batch_path(ws.landing, day).is_file():
        return None  # quarantined: nothing was scored
    if landing.labels_problem(ws.landing, ws.config, day) is not None:
        return None
    return landing.load_labelled(ws.landing, ws.config, [day])


def model_metric(config: UseCaseConfig, frame: pd.DataFrame, model: ScoringModel) -> float | None:
    """The replay's metric of ``model`` on a labelled batch (None when not finite)."""
    y = frame[config.data.target].to_numpy()
    value = evaluate(config, y, model.predict(frame), frame).value
    return float(value) if np.isfinite(value) else None


def score_day(ws: Workspace, day: dt.date, champion_version: int | None,
              static_version: int | None) -> DayScore:
    """Both models' metric on this batch's own labels (None where there is nothing to score)."""
    frame = labelled_batch(ws, day)
    if frame is None:
        return DayScore(None, None)

    def metric(version: int | None) -> float | None:
        if version is None:
            return None
        return model_metric(ws.config, frame, registry.load_version(ws.model_name, version).model)

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
        "policies": policies(result),
        "headline": headline(result),
        "cron_starts": cron_starts(result),
        "starts_line": starts_line(result),
        "events": [event_report(result, dt.date.fromisoformat(e))
                   for e in result.get("events") or []],
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


def policies(result: dict) -> dict[str, dict]:
    """Mean metric, retrains and promotions per policy: ctpipe, static and each cron-N.

    The static model is the first champion: one retrain and one promotion once there is one.
    """
    days = result["days"]
    trained = int(any(d["champion_version"] for d in days))
    out = {
        "ctpipe": {"mean": mean([d["champion_metric"] for d in days]),
                   "retrains": sum(bool(d["retrained"]) for d in days),
                   "promotions": sum(bool(d["retrained"] and d["gate_passed"]) for d in days)},
        "static": {"mean": mean([d["static_metric"] for d in days]),
                   "retrains": trained, "promotions": trained},
    }
    cron = result.get("cron") or {}
    for n in cron.get("schedules", []):
        out[f"cron-{n}"] = {"mean": mean([d["cron_metrics"][str(n)] for d in days]),
                            "retrains": cron["retrains"][str(n)],
                            "promotions": cron["promotions"][str(n)]}
    return out


def _change(value: float, base: float, higher_is_better: bool) -> str:
    """How much better or worse ``value`` is than ``base``, in the metric's direction.

    Whole percents, but one decimal under 1 %: "0% worse" would read as "the same".
    """
    if base == 0:
        return "n/a"
    gain = (value - base) / abs(base) * (1 if higher_is_better else -1)
    if gain == 0:
        return "the same"
    size = f"{abs(gain):.1%}" if abs(gain) < 0.01 else f"{abs(gain):.0%}"
    return f"{size} {'better' if gain > 0 else 'worse'}"


def nothing_served(result: dict) -> str:
    """Why no champion ever served in a replay, from its days' cycle records, in one line.

    Every batch quarantined (the first batch's reason); no challenger ever trained (what the
    last batch's cycle said, e.g. too few labelled batches for training.window); or challengers
    trained and the gate rejected each (the last rejection).
    """
    days = result["days"]
    total = count_of(len(days), "batch")
    quarantined = [d for d in days if not d["validation_passed"]]

    def said(day: dict) -> str:
        # Replays recorded before days carried the cycle's message: point at the records.
        return day.get("message") or "the cycle records say why"

    if not days:
        return "no batch replayed: nothing served, nothing compared"
    if len(quarantined) == len(days):
        return f"{len(quarantined)} of {total} quarantined: {said(quarantined[0])}"
    trained = [d for d in days if d["retrained"]]
    if trained:
        return ("no challenger ever passed the gate: nothing served, nothing compared; last: "
                f"{said(trained[-1])}")
    last = [d for d in days if d["validation_passed"]][-1]
    text = (f"no challenger was ever trained: nothing served, nothing compared; on the last "
            f"valid batch ({last['date']}): {said(last)}")
    if quarantined:
        text += (f"; {len(quarantined)} of {total} quarantined, the first: "
                 f"{said(quarantined[0])}")
    return text


def headline(result: dict) -> str | None:
    """ctpipe against the static model and the best cron schedule, in one line.

    E.g. "ctpipe WAPE 0.0970 over 59 batches vs static 0.1930 (50% better) and cron every 4
    batches 0.0930 (4% worse); 12 retrains vs 47": a baseline scored on other batches says
    over how many. None when ctpipe never scored a batch.
    """
    table = policies(result)
    higher = bool(result.get("higher_is_better", True))
    mine = table["ctpipe"]["mean"]
    if mine is None:
        return None
    days = result["days"]
    scored = _scored(days, lambda d: d["champion_metric"])
    text = f"ctpipe {result['metric_name'].upper()} {mine:.4f} over {count_of(scored, 'batch')}"
    static = table["static"]["mean"]
    if static is not None:
        text += (f" vs static {static:.4f}{_other_count(days, scored, 'static_metric')} "
                 f"({_change(mine, static, higher)})")
    best = (result.get("cron") or {}).get("best")
    retrains = count_of(table["ctpipe"]["retrains"], "retrain")
    if best is not None and table[f"cron-{best}"]["mean"] is not None:
        cron = table[f"cron-{best}"]
        every = "every batch" if best == 1 else f"every {best} batches"
        versus = _change(mine, cron["mean"], higher)
        count = _other_count(days, scored, "cron_metrics", str(best))
        text += (f" and cron {every} {cron['mean']:.4f}{count} ({versus}); {retrains} vs "
                 f"{cron['retrains']}")
    else:
        text += f"; {retrains}"
    return text


def cron_starts(result: dict) -> dict[str, dict]:
    """Per cron schedule replayed from each batch of its period (``cron.phases``): how many
    starts it had (``runs``) and how many scored a batch (``starts``); over those, the median,
    lowest and highest mean, and the fewest and most retrains. {} for a replay without
    phases."""
    out: dict[str, dict] = {}
    for n, runs in ((result.get("cron") or {}).get("phases") or {}).items():
        scored = [r for r in runs if r["mean"] is not None]
        if not scored:
            continue
        means = [r["mean"] for r in scored]
        retrains = [r["retrains"] for r in scored]
        out[f"cron-{n}"] = {"runs": len(runs), "starts": len(scored),
                            "median": float(np.median(means)), "min": min(means),
                            "max": max(means), "retrains_min": min(retrains),
                            "retrains_max": max(retrains), "means": means}
    return out


def starts_line(result: dict) -> str | None:
    """ctpipe against every cron schedule started on each batch of its period, in one line.

    E.g. "each cron schedule started on every batch of its period: cron-1 0.7800 (35
    retrains); cron-4 median 0.7733 over 4 starts (0.7483 to 0.7941, 9-10 retrains); ...;
    ctpipe 0.7771 is at least as good as 9 of 17 starts, and as the median start of 2 of 3
    schedules". None for a replay without phases, or when ctpipe scored nothing.
    """
    starts = cron_starts(result)
    mine = policies(result)["ctpipe"]["mean"]
    if not starts or mine is None:
        return None
    higher = bool(result.get("higher_is_better", True))

    def as_good(value: float) -> bool:
        return mine >= value if higher else mine <= value

    def retrains(s: dict) -> str:
        low, high = s["retrains_min"], s["retrains_max"]
        return count_of(high, "retrain") if low == high else f"{low}-{high} retrains"

    parts = []
    for name, s in starts.items():
        if s["runs"] == 1:
            parts.append(f"{name} {s['median']:.4f} ({retrains(s)})")
            continue
        over = (f"{s['starts']} starts" if s["starts"] == s["runs"]
                else f"the {s['starts']} of {s['runs']} starts that scored")
        parts.append(f"{name} median {s['median']:.4f} over {over} "
                     f"({s['min']:.4f} to {s['max']:.4f}, {retrains(s)})")
    runs = [m for s in starts.values() for m in s["means"]]
    medians = [s["median"] for s in starts.values()]
    return (f"each cron schedule started on every batch of its period: {'; '.join(parts)}; "
            f"ctpipe {mine:.4f} is at least as good as {sum(map(as_good, runs))} of "
            f"{len(runs)} starts, and as the median start of {sum(map(as_good, medians))} of "
            f"{count_of(len(medians), 'schedule')}")


def _scored(days: list[dict], metric: Callable[[dict], object]) -> int:
    return sum(metric(d) is not None for d in days)


def _other_count(days: list[dict], scored: int, key: str, schedule: str | None = None) -> str:
    """" over N batches" when a baseline's mean is taken over other batches than ctpipe's."""
    n = _scored(days, lambda d: d[key] if schedule is None else d[key][schedule])
    return "" if n == scored else f" over {count_of(n, 'batch')}"


def check_events(dates: list[dt.date], events: list[dt.date]) -> str | None:
    """Why these change dates cannot be reported on this replay (None: they can)."""
    if not dates:
        return "no batches to replay"
    for event in events:
        if not dates[0] <= event <= dates[-1]:
            return (f"--events {event}: outside the replay's batches "
                    f"({dates[0]} to {dates[-1]})")
    return None


def _first(days: list[dict], start: int, hit) -> int | None:  # noqa: ANN001 (a predicate)
    return next((i - start for i in range(start, len(days)) if hit(days[i])), None)


def _served_before(days: list[dict]) -> list[bool]:
    """Whether a champion served when each batch arrived: the cold start's retrain and
    promotion are no reaction to an event, those that replace a champion are."""
    return [i > 0 and days[i - 1]["champion_version"] is not None for i in range(len(days))]


def within(value: float, best: float, tolerance: float, higher_is_better: bool) -> bool:
    """Whether ``value`` is no worse than ``best`` by more than the relative ``tolerance``."""
    if higher_is_better:
        return value >= best - tolerance * abs(best)
    return value <= best + tolerance * abs(best)


def event_report(result: dict, event: dt.date) -> dict:
    """Detection delay and time to recovery, in batches from the event's first batch.

    - ``detection``: to the first batch at or after it where ctpipe flagged drift or retrained;
    - ``promotion``: to the first promotion at or after it (the cold start's retrain and
      promotion count for neither: no champion served, nothing reacted to the event);
    - ``matches_cron`` (when cron baselines ran): to the first batch where the champion's
      metric is back within the gate's tolerance (gate.min_improvement, relative) of the best
      cron schedule's, after first falling outside it; 0 when it never fell outside.
    None: never happened within the replay.
    """
    days = [{**d, "served": s} for d, s in zip(result["days"], _served_before(result["days"]),
                                                strict=True)]
    start = next(i for i, d in enumerate(days) if dt.date.fromisoformat(d["date"]) >= event)
    out = {"date": event.isoformat(), "batch": start,
           "detection": _first(days, start, lambda d: d["drift_detected"]
                               or (d["retrained"] and d["served"])),
           "promotion": _first(days, start, lambda d: d["served"] and d["retrained"]
                               and d["gate_passed"])}
    if (result.get("cron") or {}).get("best") is not None:
        tol, hib = result.get("gate_tolerance", 0.0), result["higher_is_better"]

        def state(d: dict) -> bool | None:
            c, b = d["champion_metric"], d["cron_metric"]
            return None if c is None or b is None else within(c, b, tol, hib)

        behind = _first(days, start, lambda d: state(d) is False)
        out["matches_cron"] = 0 if behind is None else _first(
            days, start + behind, lambda d: state(d) is True)
        if out["matches_cron"] is not None and behind is not None:
            out["matches_cron"] += behind
    return out
