"""`ctpipe backtest` and `ctpipe demo`: replays of a history through the daily loop."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ctpipe import settings
from ctpipe.cli_base import (
    _SCENARIO_HELP,
    REFERENCE_CASES,
    _check_scenario,
    _database,
    _fail,
    _parse_date,
    _workspace,
    app,
)
from ctpipe.wording import count_of
from ctpipe.workspace import Workspace

_CRON_HELP = ("Cron baseline: retrain every N batches behind the same gate (repeatable; "
              "default 1 4 12; 0 skips the baselines).")
_NO_BASELINES_HELP = "Replay no cron baseline (the static model is always scored)."
_CRON_STARTS_HELP = ("Also replay each cron schedule started on every later batch of its "
                     "period (a fit per batch from the cold start, shared; without N = 1 that "
                     "is more fits than the schedules alone).")


@contextlib.contextmanager
def _replays_held(workspaces: list[Workspace], command: str) -> Iterator[None]:
    """Each use case's replay lock, from before its folder is reset until its outputs are
    written: a second replay of it in this home stops at once and resets nothing."""
    from ctpipe.locks import ReplayRunning, replay_lock

    with contextlib.ExitStack() as stack:
        try:
            for ws in workspaces:
                stack.enter_context(replay_lock(
                    ws.model_name, f"ctpipe {command} since {dt.datetime.now():%Y-%m-%d %H:%M}"))
        except ReplayRunning as exc:
            _fail(str(exc), 1)
        yield


def _schedules(cron: list[int] | None, no_baselines: bool) -> list[int]:
    from ctpipe.decisions.baselines import cron_schedules

    try:
        return list(cron_schedules(cron, skip=no_baselines))
    except ValueError as exc:
        _fail(str(exc), 2)


def _run_backtests(runs: list[tuple[Workspace, int | None, list[str]]], cron: list[int],
                   scenario: str | None = None, simulated: bool = False,
                   cron_starts: bool = True) -> dict:
    """``runs``: workspace, shift batch and known change dates (ISO) per use case;
    ``scenario``: the simulated scenario's name, None for a control stream or real data;
    ``simulated``: the demo's streams, not a user's data."""
    from ctpipe.embedded_prefect import embedded_server

    results = {}
    with embedded_server(settings.home()):
        from ctpipe.flows.backtest import backtest_flow

        for ws, shift_day, events in runs:
            typer.echo(f"replaying {ws.name} ...", err=True)
            results[ws.name] = {**backtest_flow(use_case=ws.ref, shift_day=shift_day,
                                                cron=cron, events=events,
                                                cron_starts=cron_starts),
                                "scenario": scenario, "simulated": simulated}
    return {"use_cases": results}


def _print_summary(report: dict) -> None:
    from ctpipe.backtest import summarize

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    typer.echo("")
    width = max([10, *map(len, report["use_cases"])])  # a user's data set may have a long name
    header = (f"{'use case':<{width}} {'metric':<8} {'batches':>7} {'quar.':>5} {'drift':>5} "
              f"{'retrain':>7} {'promo':>5} {'champion':>9} {'static':>9} {'cron':>9}")
    typer.echo(header)
    typer.echo("-" * len(header))
    for name, result in report["use_cases"].items():
        s = summarize(result)
        typer.echo(f"{name:<{width}} {result['metric_name']:<8} {s['batches']:>7} "
                   f"{s['quarantined']:>5} {s['drift_days']:>5} {s['retrains']:>7} "
                   f"{s['promotions']:>5} {fmt(s['champion_mean']):>9} "
                   f"{fmt(s['static_mean']):>9} {fmt(_best_cron_mean(s, result)):>9}")
    typer.echo("")
    for name, result in report["use_cases"].items():
        _print_baselines(name, result, summarize(result))
    for name, result in report["use_cases"].items():
        s = summarize(result)
        if result.get("shift_day") is None:
            # A user's data has no simulated shift to speak of: only the demo's streams do.
            kind = (f"scenario {result['scenario']} (no simulated shift)" if result.get("scenario")
                    else "known change events above" if result.get("events")
                    else "no-shift control (no simulated shift)" if result.get("simulated")
                    else "no known change date given (--events)")
            typer.echo(f"{name}: {kind}; "
                       f"{count_of(s['retrains'], 'retrain')} (cold start included), "
                       f"{count_of(s['promotions'], 'promotion')}")
            continue
        better = "higher" if result["higher_is_better"] else "lower"
        lag = s.get("first_drift_after_shift")
        campaign = result.get("scenario") == "bad-promotion"
        what = "a short fraud campaign (bad-promotion) from" if campaign else "shift at"
        typer.echo(f"{name}: {what} batch {result['shift_day']}; drift detected "
                   f"{'never' if lag is None else count_of(lag, 'batch') + ' after it'}")
        if campaign:
            for i, d in enumerate(result["days"]):
                if i >= result["shift_day"] and d["retrained"] and d["gate_passed"]:
                    typer.echo(f"  v{d['champion_version']} promoted on {d['date']} (batch {i})")
            continue
        if "promotion_after_shift" in s:
            c, st = s["champion_mean_10_after"], s["static_mean_10_after"]
            wins = c is not None and st is not None and (c > st if result["higher_is_better"]
                                                          else c < st)
            typer.echo(f"  promotion {count_of(s['promotion_after_shift'], 'batch')} after the "
                       "shift; "
                       f"10 batches after it: champion {fmt(c)} vs static {fmt(st)} "
                       f"({better} is better) -> {'ctpipe wins' if wins else 'static wins'}")
        else:
            typer.echo("  no promotion after the shift")
    for name, result in report["use_cases"].items():
        for d in result["days"]:
            if d.get("rolled_back"):
                typer.echo(f"{name}: automatic rollback on {d['date']} -> champion "
                           f"v{d['rolled_back_to']}: {d['rollback_reason']}")
        s = summarize(result)
        typer.echo(f"{name}: {s['rows_scored']} rows scored and logged; live "
                   f"{result['metric_name']} {fmt(s['live_mean'])} on average")
        if warned := [d for d in result["days"] if d.get("validation_warnings")]:
            # Warnings let a batch through, so nothing else in the replay's output shows them.
            first = warned[0]
            typer.echo(f"{name}: validation warned on {count_of(len(warned), 'batch')}, first "
                       f"{first['date']}: {first['validation_warnings'][0]}")
        if result.get("report"):
            typer.echo(f"  monitoring report: {result['report']}")


def _best_cron_mean(s: dict, result: dict) -> float | None:
    best = (result.get("cron") or {}).get("best")
    return None if best is None else s["policies"][f"cron-{best}"]["mean"]


def _print_baselines(name: str, result: dict, s: dict) -> None:
    """ctpipe against the static model and the best cron, then each known change event."""
    from ctpipe.backtest import nothing_served

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    if s["headline"]:
        typer.echo(f"{name}: {s['headline']}")
        cron = {k: v for k, v in s["policies"].items() if k.startswith("cron-")}
        if cron:
            typer.echo("  " + "; ".join(
                f"{k} {fmt(v['mean'])} ({count_of(v['retrains'], 'retrain')}, "
                f"{count_of(v['promotions'], 'promotion')})" for k, v in cron.items()))
        if s.get("starts_line"):
            typer.echo(f"  {s['starts_line']}")
    elif not any(d["champion_version"] for d in result["days"]):
        typer.echo(f"{name}: {nothing_served(result)}")
    else:
        typer.echo(f"{name}: no batch the champion served has a {result['metric_name']}: its "
                   "labels had not arrived, or too few rows (or one class only) per batch")
    unit = {"weekly": "weekly batch", "monthly": "monthly batch"}.get(
        result.get("batch_frequency", "daily"), "batch")

    def after(v: int | None, never: str) -> str:
        return never if v is None else f"after {count_of(v, unit)}"

    for e in s["events"]:
        line = (f"  event {e['date']} (batch {e['batch']}): drift or retrain "
                f"{after(e['detection'], 'not detected')}, promotion "
                f"{after(e['promotion'], 'none')}")
        if "matches_cron" in e:
            line += (f", metric within the gate's tolerance of the best cron "
                     f"{after(e['matches_cron'], 'not recovered')}")
        typer.echo(line)


def _write_outputs(report: dict, json_path: Path, png_path: Path | None) -> None:
    from ctpipe.timeline_plot import plot_timeline

    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    typer.echo(f"\nJSON: {json_path}")
    if png_path:
        plot_timeline(report["use_cases"], png_path)
        typer.echo(f"timeline: {png_path}")


def _events(values: list[str], dates: list[dt.date]) -> list[str]:
    """Known change dates as ISO strings; a bad or out-of-range date fails in one line."""
    from ctpipe.backtest import check_events

    parsed = [_parse_date("--events", value) for value in values]
    problem = check_events(dates, parsed)
    if problem:
        _fail(problem, 2)
    return [d.isoformat() for d in sorted(set(parsed))]


@app.command()
def backtest(
    config: Annotated[str, typer.Argument(help="Use-case name or path to its YAML config.")],
    source: Annotated[Path | None, typer.Option(help="A labelled Parquet/CSV file or a folder "
                                                "of them (default: data.source).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result here.")]
    = None,
    png: Annotated[Path | None, typer.Option(help="Write the timeline plot here.")] = None,
    cron: Annotated[list[int] | None, typer.Option(help=_CRON_HELP)] = None,
    no_baselines: Annotated[bool, typer.Option("--no-baselines", help=_NO_BASELINES_HELP)]
    = False,
    cron_starts: Annotated[bool, typer.Option(help=_CRON_STARTS_HELP)] = True,
    events: Annotated[list[str] | None, typer.Option(
        "--events", help="A known change date (YYYY-MM-DD, repeatable): the summary reports "
        "detection delay and time to recovery for it.")] = None,
    start: Annotated[str | None, typer.Option(
        "--start", help="Replay only batches dated from this day (YYYY-MM-DD; a batch's "
        "date is its period's first day).")] = None,
    end: Annotated[str | None, typer.Option(
        "--end", help="Replay only batches dated up to this day (YYYY-MM-DD).")] = None,
) -> None:
    """Replay a labelled history batch by batch through the real cycle flow, beside the static
    model and cron baselines."""
    settings.configure_environment()
    from ctpipe import backtest as bt
    from ctpipe.config import resolve_config_path
    from ctpipe.labelled_history import configured_source, normal_source
    from ctpipe.source_checks import source_warnings

    ws = _workspace(config, backtest=True)
    if source is None and ws.config.data.source is None:
        _fail("no --source given and the config has no data.source", 2)
    path = normal_source(source) if source is not None else configured_source(
        ws.config.data.source, resolve_config_path(ws.ref))
    first = None if start is None else _parse_date("--start", start)
    last = None if end is None else _parse_date("--end", end)
    if first and last and first > last:
        _fail(f"--start {first} is after --end {last}: no batch lies between", 2)
    try:
        # Read and cut before reset: a bad source must not cost the previous replay.
        batches = bt.cut_source(ws, path, start=first, end=last)
    except (OSError, ValueError) as exc:
        _fail(f"cannot use {path} as the backtest source: {bt.source_problem(path, exc)}", 2)
    schedules = _schedules(cron, no_baselines)
    changes = _events(events or [], sorted(batches))
    for warning in source_warnings(batches, ws.config):
        typer.echo(f"warning: {path}: {warning}", err=True)
    _database()  # an unreachable database: one line, before the previous replay is reset
    with _replays_held([ws], "backtest"):
        bt.reset(ws)
        dates = bt.write_batches(ws, batches)
        typer.echo(f"{count_of(len(dates), 'batch')} from {path}", err=True)
        report = _run_backtests([(ws, None, changes)], schedules, cron_starts=cron_starts)
        _print_summary(report)
        if json_path or png:
            _write_outputs(report, json_path or Path("out/backtest.json"), png)


@app.command()
def demo(
    use_cases: Annotated[list[str] | None, typer.Argument(
        help="Default: demand fraud (those the scenario simulates).")] = None,
    days: Annotated[int, typer.Option(min=10)] = 60,
    shift_day: Annotated[int, typer.Option(min=1)] = 30,
    no_shift: Annotated[bool, typer.Option("--no-shift", help="Control streams.")] = False,
    scenario: Annotated[str, typer.Option(help=_SCENARIO_HELP)] = "shift",
    rows_per_day: Annotated[int | None, typer.Option(min=1)] = None,
    seed: int = 7,
    json_path: Annotated[Path, typer.Option("--json")] = Path("out/demo.json"),
    png: Annotated[Path, typer.Option()] = Path("out/demo-timeline.png"),
    cron: Annotated[list[int] | None, typer.Option(help=_CRON_HELP)] = None,
    no_baselines: Annotated[bool, typer.Option("--no-baselines", help=_NO_BASELINES_HELP)]
    = False,
    cron_starts: Annotated[bool, typer.Option(help=_CRON_STARTS_HELP)] = True,
) -> None:
    """Simulate the reference cases and backtest them; print, and write JSON and a PNG."""
    root = settings.configure_environment()
    from ctpipe import backtest as bt
    from ctpipe.simulate import CHANGELESS_SCENARIOS, SCENARIO_USE_CASES

    _check_scenario(use_cases or [], scenario)
    names = use_cases or [n for n in REFERENCE_CASES if n in SCENARIO_USE_CASES[scenario]]
    shift = None if no_shift else shift_day
    if shift is not None and shift >= days:
        _fail(f"--shift-day {shift} must be smaller than --days {days}", 2)
    schedules = _schedules(cron, no_baselines)
    typer.echo(f"ctpipe demo: {', '.join(names)}; {days} daily batches, "
               f"{'no shift' if shift is None else f'scenario {scenario} at batch {shift}'}; "
               f"state in {root}", err=True)
    workspaces = [_workspace(name, backtest=True) for name in names]
    _database()  # an unreachable database: one line, before any replay is reset
    for ws in workspaces:
        if ws.name not in REFERENCE_CASES:
            _fail(f"demo: {ws.name!r} has no simulator; use one of {REFERENCE_CASES}", 2)
    with _replays_held(workspaces, "demo"):
        for ws in workspaces:
            bt.reset(ws)
            bt.simulate_to_landing(ws, ws.landing, days=days, shift_day=shift,
                                   rows=rows_per_day, seed=seed, scenario=scenario)
        # The scenario's shift is the demo's known change event; "none" and "seasonal" have
        # none.
        event = None if shift is None or scenario in CHANGELESS_SCENARIOS else shift
        changes = [] if event is None else [
            (bt.DEFAULT_START + dt.timedelta(days=event)).isoformat()]
        report = _run_backtests(
            [(ws, event, changes) for ws in workspaces], schedules,
            scenario=None if shift is None and scenario == "shift" else scenario,
            simulated=True, cron_starts=cron_starts)
        _print_summary(report)
        _write_outputs(report, json_path, png)


