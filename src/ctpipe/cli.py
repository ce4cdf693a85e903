"""The `ctpipe` command line."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from ctpipe import settings
from ctpipe.workspace import Workspace, open_workspace

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Continuous training for tabular models: validate, detect drift, "
                       "retrain, gate, promote.")

REFERENCE_CASES = ["demand", "fraud"]


def _stop_cleanly(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.callback()
def _every_command() -> None:
    # A command started in the background inherits SIGINT ignored, and SIGTERM would end it
    # on the spot: both must stop it cleanly instead (the flow run marked Crashed, the
    # embedded Prefect server stopped), within seconds.
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _stop_cleanly)
    except ValueError:  # not the main thread (a test invoking the CLI): leave signals alone
        pass


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _workspace(use_case: str, backtest: bool = False) -> Workspace:
    from ctpipe.config import ConfigError

    try:
        return open_workspace(use_case, backtest)
    except ConfigError as exc:
        _fail(str(exc), 2)


def _parse_date(option: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        _fail(f"{option} {value!r}: not a valid date YYYY-MM-DD ({exc})", 2)


def _batch_to_run(ws: Workspace, date: str | None) -> dt.date:
    """The batch a cycle would run on, refused here when it does not exist.

    Checked before the flow starts: a cycle on a missing batch would quarantine "nothing",
    write a record that `ctpipe status` shows as the last cycle, an audit line and an MLflow
    run.
    """
    dates = ws.store.batch_dates()
    if date is None:
        if not dates:
            _fail(f"no batches in {ws.landing / 'batches'}: nothing to run", 2)
        return dates[-1]
    day = _parse_date("--date", date)
    if day not in dates:
        where = ws.quarantine / day.isoformat()
        hint = (f"; it was quarantined to {where}: put a corrected file back to run it again"
                if where.is_dir() else "")
        _fail(f"--date {day}: no batch for that date in {ws.landing / 'batches'}{hint}", 2)
    return day


_SCENARIO_HELP = ("shift: a lasting change (both use cases); bad-promotion: a short fraud "
                  "campaign a retrain over-learns (fraud only). Starts at --shift-day.")


def _check_scenario(use_cases: list[str], scenario: str) -> None:
    """Refuse, before anything is reset or written, a scenario a use case cannot simulate."""
    from ctpipe.simulate import SCENARIOS, check_scenario

    if scenario not in SCENARIOS:
        _fail(f"--scenario {scenario!r}: unknown; allowed: {', '.join(SCENARIOS)}", 2)
    for name in use_cases:
        try:
            check_scenario(name, scenario)
        except ValueError as exc:
            _fail(f"--scenario: {exc}", 2)


@app.command()
def simulate(
    use_case: str,
    days: Annotated[int, typer.Option(min=1, help="Number of daily batches.")] = 60,
    shift_day: Annotated[int | None, typer.Option(help="Batch index where the scenario "
                                                  "starts.")] = 30,
    no_shift: Annotated[bool, typer.Option("--no-shift", help="Control stream.")] = False,
    scenario: Annotated[str, typer.Option(help=_SCENARIO_HELP)] = "shift",
    rows_per_day: Annotated[int | None, typer.Option(min=1)] = None,
    seed: int = 7,
    start: Annotated[str, typer.Option(help="First batch date.")] = "2026-03-02",
    out: Annotated[Path | None, typer.Option(help="Landing folder (default: the use "
                                             "case's landing zone).")] = None,
) -> None:
    """Write synthetic daily batches and their (later-arriving) labels to a landing zone."""
    settings.configure_environment()
    from ctpipe.backtest import simulate_to_landing

    ws = _workspace(use_case)
    _check_scenario([ws.name], scenario)
    first = _parse_date("--start", start)
    target = out or ws.landing
    dates = simulate_to_landing(ws, target, days=days, shift_day=None if no_shift else shift_day,
                                rows=rows_per_day, seed=seed, start=first, scenario=scenario)
    typer.echo(f"{len(dates)} batches {dates[0]} .. {dates[-1]} written to {target}")


@app.command()
def cycle(
    use_case: str,
    date: Annotated[str | None, typer.Option(help="Batch date YYYY-MM-DD (default: newest).")]
    = None,
    force: Annotated[bool, typer.Option(help="Train again a batch already retrained under "
                                        "this config.")] = False,
) -> None:
    """Run the daily cycle on one batch of the landing zone."""
    root = settings.configure_environment()
    from ctpipe.embedded_prefect import embedded_server

    ws = _workspace(use_case)
    day = _batch_to_run(ws, date)
    date = day.isoformat() if date else None  # None: the flow picks the newest, as scheduled
    with embedded_server(root):
        from ctpipe.flows.cycle import cycle_flow

        state = cycle_flow(use_case=use_case, batch_date=date, force=force,
                           return_state=True)
        # This run's own record (another run of the batch may have written since).
        result = state.result(raise_on_failure=False)
    record = result if isinstance(result, dict) else \
        (ws.read_record(date) if date else ws.last_record())
    if record:
        typer.echo(json.dumps(record, indent=2))
    if not state.is_completed():
        _fail(f"cycle {use_case} {date or ''} failed: {state.message}")


def _database():  # noqa: ANN202 - ctpipe.db.Database, imported late (SQLAlchemy)
    """ctpipe's database, migrated; an unreachable one ends the command with one line."""
    from ctpipe.db import DatabaseUnavailable, open_database

    try:
        return open_database()
    except DatabaseUnavailable as exc:
        _fail(str(exc))


@app.command()
def score(
    use_case: str,
    date: Annotated[str | None, typer.Option(help="Batch date YYYY-MM-DD (default: newest).")]
    = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Score this Parquet or CSV "
                                                    "file instead of a landed batch.")] = None,
    output_path: Annotated[Path | None, typer.Option("--output", help="Where --input's scores "
                                                     "go (.parquet or .csv).")] = None,
) -> None:
    """Score a batch (or a file) with the champion; every prediction is logged."""
    root = settings.configure_environment()
    from ctpipe.embedded_prefect import embedded_server

    ws = _workspace(use_case)
    if (input_path is None) != (output_path is None):
        _fail("--input and --output go together", 2)
    if input_path is not None and date is not None:
        _fail("--date scores a landed batch, --input a file: pass one of them", 2)
    if output_path is not None and output_path.suffix.lower() not in (".parquet", ".csv"):
        _fail(f"--output {output_path}: must end in .parquet or .csv", 2)
    if input_path is not None:
        from ctpipe.batch_reader import BatchReadError, read_batch_file

        try:
            read_batch_file(input_path, ws.config)
        except BatchReadError as exc:
            _fail(str(exc), 2)
    else:
        day = _batch_to_run(ws, date)
        date = day.isoformat() if date else None
    _database()
    with embedded_server(root):
        from ctpipe.flows.score import score_flow

        state = score_flow(use_case=use_case, batch_date=date,
                           input_path=None if input_path is None else str(input_path),
                           output_path=None if output_path is None else str(output_path),
                           return_state=True)
        result = state.result(raise_on_failure=False)
    if not state.is_completed():
        _fail(f"score {use_case} {date or input_path or ''}: {state.message}")
    typer.echo(f"{state.message}; written to {result['path']}")
    if result.get("estimated_metric") is not None:
        typer.echo(f"  estimated {ws.config.evaluation.metric} (label-free): "
                   f"{result['estimated_metric']:.4f}")


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_monitor_table(rows: list[dict], metric: str) -> None:
    typer.echo(f"{'batch':<12} {'model':>5} {'scored':>8} {'labelled':>8} {metric:>10} "
               f"{'estimate':>9} {'shadow':>14}  decision")
    for r in rows:
        shadow = "-" if r["shadow_version"] is None else \
            f"v{r['shadow_version']} {_fmt(r['shadow_metric'])}"
        typer.echo(f"{r['batch']:<12} {'v' + str(r['version']):>5} {r['rows_scored']:>8} "
                   f"{r['rows_labelled'] if r['rows_labelled'] is not None else '-':>8} "
                   f"{_fmt(r['live_metric']):>10} {_fmt(r['estimated_metric']):>9} "
                   f"{shadow:>14}  {r['decision'] or ''}")


@app.command()
def monitor(
    use_case: str,
    date: Annotated[str | None, typer.Option(help="As of this date YYYY-MM-DD (default: the "
                                             "newest batch).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the figures "
                                                   "here.")] = None,
) -> None:
    """Join arrived labels to logged predictions, show live performance, roll back if needed."""
    root = settings.configure_environment()
    from ctpipe.embedded_prefect import embedded_server
    from ctpipe.monitoring_view import batch_rows

    ws = _workspace(use_case)
    if date is not None:
        _parse_date("--date", date)
    db = _database()
    with embedded_server(root):
        from ctpipe.flows.monitor import monitor_flow

        state = monitor_flow(use_case=use_case, batch_date=date, return_state=True)
        result = state.result(raise_on_failure=False)
    if not state.is_completed():
        _fail(f"monitor {use_case}: {state.message}")
    rows = batch_rows(db, ws.model_name, ws.config.monitoring.recent_batches)
    print_monitor_table(rows, ws.config.evaluation.metric)
    typer.echo(state.message)
    from ctpipe.monitoring_report import report_paths

    if (page := report_paths(ws)[0]).exists():  # written by the flow (a failure only warns)
        typer.echo(f"report: {page}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({
            "use_case": ws.name, "model": ws.model_name, **result,
            "metric": ws.config.evaluation.metric, "batches": rows}, indent=2), encoding="utf-8")
        typer.echo(f"figures written to {json_path}")


def _run_backtests(runs: list[tuple[Workspace, int | None]],
                   scenario: str | None = None) -> dict:
    """``scenario``: the simulated scenario's name, None for a control stream or real data."""
    from ctpipe.embedded_prefect import embedded_server

    results = {}
    with embedded_server(settings.home()):
        from ctpipe.flows.backtest import backtest_flow

        for ws, shift_day in runs:
            typer.echo(f"replaying {ws.name} ...", err=True)
            results[ws.name] = {**backtest_flow(use_case=ws.ref, shift_day=shift_day),
                                "scenario": scenario}
    return {"use_cases": results}


def _print_summary(report: dict) -> None:
    from ctpipe.backtest import summarize

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    typer.echo("")
    header = (f"{'use case':<10} {'metric':<8} {'batches':>7} {'quar.':>5} {'drift':>5} "
              f"{'retrain':>7} {'promo':>5} {'champion':>9} {'static':>9}")
    typer.echo(header)
    typer.echo("-" * len(header))
    for name, result in report["use_cases"].items():
        s = summarize(result)
        typer.echo(f"{name:<10} {result['metric_name']:<8} {s['batches']:>7} "
                   f"{s['quarantined']:>5} {s['drift_days']:>5} {s['retrains']:>7} "
                   f"{s['promotions']:>5} {fmt(s['champion_mean']):>9} "
                   f"{fmt(s['static_mean']):>9}")
    typer.echo("")
    for name, result in report["use_cases"].items():
        s = summarize(result)
        if result.get("shift_day") is None:
            typer.echo(f"{name}: no-shift control; {s['retrains']} retrains "
                       f"(cold start included), {s['promotions']} promotions")
            continue
        better = "higher" if result["higher_is_better"] else "lower"
        lag = s.get("first_drift_after_shift")
        campaign = result.get("scenario") == "bad-promotion"
        what = "a short fraud campaign (bad-promotion) from" if campaign else "shift at"
        typer.echo(f"{name}: {what} batch {result['shift_day']}; drift detected "
                   f"{'never' if lag is None else f'{lag} batches after it'}")
        if campaign:
            for i, d in enumerate(result["days"]):
                if i >= result["shift_day"] and d["retrained"] and d["gate_passed"]:
                    typer.echo(f"  v{d['champion_version']} promoted on {d['date']} (batch {i})")
            continue
        if "promotion_after_shift" in s:
            c, st = s["champion_mean_10_after"], s["static_mean_10_after"]
            wins = c is not None and st is not None and (c > st if result["higher_is_better"]
                                                          else c < st)
            typer.echo(f"  promotion {s['promotion_after_shift']} batches after the shift; "
                       f"10 batches after it: champion {fmt(c)} vs static {fmt(st)} "
                       f"({better} is better) -> {'ctpipe wins' if wins else 'static wins'}")
        else:
            typer.echo("  no promotion after the shift")
    for name, result in report["use_cases"].items():
        for d in result["days"]:
            if d.get("rolled_back"):
                typer.echo(f"{name}: automatic rollback on {d['date']} -> champion "
                           f"v{d['champion_version']}: {d['rollback_reason']}")
        s = summarize(result)
        typer.echo(f"{name}: {s['rows_scored']} rows scored and logged; live "
                   f"{result['metric_name']} {fmt(s['live_mean'])} on average")
        if result.get("report"):
            typer.echo(f"  monitoring report: {result['report']}")


def _write_outputs(report: dict, json_path: Path, png_path: Path | None) -> None:
    from ctpipe.reports import plot_timeline

    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    typer.echo(f"\nJSON: {json_path}")
    if png_path:
        plot_timeline(report["use_cases"], png_path)
        typer.echo(f"timeline: {png_path}")


@app.command()
def backtest(
    config: Annotated[str, typer.Argument(help="Use-case name or path to its YAML config.")],
    source: Annotated[Path | None, typer.Option(help="A labelled Parquet/CSV file or a folder "
                                                "of them (default: data.source).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result here.")]
    = None,
    png: Annotated[Path | None, typer.Option(help="Write the timeline plot here.")] = None,
) -> None:
    """Replay a labelled history batch by batch through the real cycle flow."""
    settings.configure_environment()
    from ctpipe import backtest as bt

    ws = _workspace(config, backtest=True)
    path = source or (Path(ws.config.data.source) if ws.config.data.source else None)
    if path is None:
        _fail("no --source given and the config has no data.source", 2)
    try:
        # Read and cut before reset: a bad source must not cost the previous replay.
        batches = bt.cut_source(ws, path)
    except (OSError, ValueError) as exc:
        _fail(f"cannot use {path} as the backtest source: {' '.join(str(exc).split())}", 2)
    _database()  # an unreachable database: one line, before the previous replay is reset
    bt.reset(ws)
    dates = bt.write_batches(ws, batches)
    typer.echo(f"{len(dates)} batches from {path}", err=True)
    report = _run_backtests([(ws, None)])
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
) -> None:
    """Simulate the reference cases and backtest them; print, and write JSON and a PNG."""
    root = settings.configure_environment()
    from ctpipe import backtest as bt
    from ctpipe.simulate import SCENARIO_USE_CASES

    _check_scenario(use_cases or [], scenario)
    names = use_cases or [n for n in REFERENCE_CASES if n in SCENARIO_USE_CASES[scenario]]
    shift = None if no_shift else shift_day
    if shift is not None and shift >= days:
        _fail(f"--shift-day {shift} must be smaller than --days {days}", 2)
    typer.echo(f"ctpipe demo: {', '.join(names)}; {days} daily batches, "
               f"{'no shift' if shift is None else f'scenario {scenario} at batch {shift}'}; "
               f"state in {root}", err=True)
    workspaces = [_workspace(name, backtest=True) for name in names]
    _database()  # an unreachable database: one line, before any replay is reset
    for ws in workspaces:
        if ws.name not in REFERENCE_CASES:
            _fail(f"demo: {ws.name!r} has no simulator; use one of {REFERENCE_CASES}", 2)
        bt.reset(ws)
        bt.simulate_to_landing(ws, ws.landing, days=days, shift_day=shift, rows=rows_per_day,
                               seed=seed, scenario=scenario)
    report = _run_backtests([(ws, shift) for ws in workspaces],
                            scenario=None if shift is None else scenario)
    _print_summary(report)
    _write_outputs(report, json_path, png)


@app.command()
def validate(
    use_case: Annotated[str, typer.Argument(help="Use-case name or path to its YAML config.")],
    file: Annotated[Path, typer.Option(help="The batch file (Parquet or CSV).")],
    date: Annotated[str | None, typer.Option(help="Batch date YYYY-MM-DD: also checks the "
                                             "timestamps' period.")] = None,
    docs: Annotated[Path | None, typer.Option(help="Write GX Data Docs (HTML) here.")] = None,
) -> None:
    """One-off check of a file: exit 0 when it passes (warnings allowed), 1 when it fails."""
    from ctpipe.validation import validate_file, write_data_docs

    cfg = _workspace(use_case).config
    batch_date = _parse_date("--date", date) if date else None
    result = validate_file(file, cfg, batch_date=batch_date)
    typer.echo(result.summary_markdown(str(file)))
    if docs and result.read_error is None:
        page = write_data_docs(result, cfg, docs, batch_name=file.stem)
        typer.echo(f"\nData Docs: {page}")
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def drift(
    use_case: Annotated[str, typer.Argument(help="Use-case name or path to its YAML config.")],
    reference: Annotated[Path, typer.Option(help="Reference rows (Parquet or CSV).")],
    current: Annotated[Path, typer.Option(help="Current rows (Parquet or CSV).")],
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report here.")]
    = None,
    png: Annotated[Path | None, typer.Option(help="Plot the most drifted features here.")]
    = None,
) -> None:
    """Standalone drift check of two files; exit 0 without dataset drift, 1 with it."""
    from ctpipe.batch_reader import BatchReadError, read_batch_file
    from ctpipe.drift import build_profile, detect_drift
    from ctpipe.reports import plot_drift

    cfg = _workspace(use_case).config
    try:
        ref_rows, cur_rows = (read_batch_file(p, cfg) for p in (reference, current))
        profile = build_profile(ref_rows, cfg.features.numeric, cfg.features.categorical)
        report = detect_drift(profile, cur_rows, cfg.drift)
    except (BatchReadError, ValueError) as exc:
        _fail(str(exc), 2)
    typer.echo(f"{'feature':<24} {'test':<14} {'statistic':>10} {'threshold':>10}  drifted")
    for f in report.features:
        stat = f"p={f.p_value:.3g}" if f.p_value is not None else f"{f.statistic:.4f}"
        typer.echo(f"{f.feature:<24} {f.test:<14} {stat:>10} {f.threshold:>10.4g}  "
                   f"{'YES' if f.drifted else 'no'}{'  ' + f.note if f.note else ''}")
    verdict = "DATASET DRIFT" if report.dataset_drift else "no dataset drift"
    typer.echo(f"\n{verdict}: {len(report.drifted_features)} of {report.n_tested} tested "
               f"features drifted (share {report.drift_share:.0%}, threshold "
               f"{report.threshold_share:.0%})")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({
            "use_case": cfg.name, "reference": str(reference), "current": str(current),
            "reference_rows": len(ref_rows), "current_rows": len(cur_rows),
            "dataset_drift": report.dataset_drift, "drift_share": report.drift_share,
            "threshold_share": report.threshold_share, "features": report.to_records(),
        }, indent=2), encoding="utf-8")
    if png:
        plot_drift(profile, cur_rows, report, png)
    if report.dataset_drift:
        raise typer.Exit(1)


@app.command()
def status(
    use_case: str,
    backtest: Annotated[bool, typer.Option(help="Show the replay's registry instead.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the README's JSON document: "
                                          "champion, versions (with integrity), last cycle, "
                                          "pending promotions.")] = False,
) -> None:
    """The champion version, its metrics and lineage, and the last cycle's outcome."""
    settings.configure_environment()
    from ctpipe import registry

    ws = _workspace(use_case, backtest)
    if as_json:
        from ctpipe.status_report import status_report

        typer.echo(json.dumps(status_report(ws, _verifier(ws.model_name)), indent=2))
        return
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    typer.echo(f"use case: {ws.name}   model: {ws.model_name}")
    if champion is None:
        typer.echo("champion: none")
    else:
        t = champion.lineage
        typer.echo(f"champion: version {champion.version}  {t.metric_name}="
                   f"{t.holdout_metric} on holdout {t.holdout_start}..{t.holdout_end}")
        typer.echo(f"  trained on {t.train_start}..{t.train_end} "
                   f"({t.train_rows} rows, data {(t.data_fingerprint or '')[:12]})")
        typer.echo(f"  promoted {t.promoted_at} by {t.approver}; reason: {t.retrain_reason}")
    versions = registry.list_versions(ws.model_name)
    typer.echo(f"versions: {len(versions)} "
               f"({sum(v.lineage.gate_passed for v in versions)} passed the gate)")
    last = ws.last_record()
    if last is None:
        typer.echo("last cycle: none")
    else:
        typer.echo(f"last cycle: {last['batch_date']} {last['status']}: {last['message']}")


def _verifier(model_name: str):  # noqa: ANN202
    """version -> why its stored files fail verification, None when they match."""
    from ctpipe import registry
    from ctpipe.integrity import IntegrityError

    def verify(version: int) -> str | None:
        try:
            registry.verify_version(model_name, version)
        except IntegrityError as exc:
            return str(exc)
        return None
    return verify


@app.command()
def doctor(
    use_case: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    repair: Annotated[bool, typer.Option(help="Fix what is safe to fix (finish or abandon an "
                                         "interrupted promotion, free a dead slot, trace an "
                                         "untraced alias move) and audit it.")] = False,
) -> None:
    """Check the use case's invariants; exit 0 when healthy, 1 with one line per problem."""
    settings.configure_environment()
    from ctpipe.doctor import diagnose

    ws = _workspace(use_case)
    found = diagnose(ws, _verifier(ws.model_name), repair=repair)
    if as_json:
        typer.echo(json.dumps(found.to_dict(), indent=2))
    else:
        for line in found.repaired:
            typer.echo(f"repaired: {line}")
        for problem in found.problems:
            typer.echo(problem.line())
        if found.healthy:
            typer.echo(f"{ws.name}: healthy")
    if not found.healthy:
        raise typer.Exit(1)


@app.command()
def serve(
    use_cases: Annotated[list[str] | None, typer.Argument(help="Default: demand fraud.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Flow runs at once (default: no "
                                              "limit).")] = None,
) -> None:
    """Serve every deployment (schedules and triggers) from this machine, without a work pool.

    Talks to the Prefect server in PREFECT_API_URL (see `ctpipe server`).
    """
    settings.configure_environment()
    from prefect import serve as prefect_serve

    from ctpipe.flows.deployments import build_deployments

    if not os.environ.get("PREFECT_API_URL"):
        # Served against a throwaway server, schedules and triggers would be seen by nobody.
        _fail("PREFECT_API_URL is not set: start `ctpipe server` (or use your Prefect server) "
              "and export PREFECT_API_URL=http://127.0.0.1:4200/api", 2)
    names = use_cases or REFERENCE_CASES
    for name in names:
        _workspace(name)  # a bad config fails here, not at 06:00
    prefect_serve(*build_deployments(names), limit=limit)


def _resume(flow_run_id: str, decision: str, approver: str, reason: str) -> None:
    settings.configure_environment()
    import uuid

    from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
    from prefect.flow_runs import NotPausedError, resume_flow_run
    from pydantic import ValidationError

    from ctpipe.decisions.retraining import ApprovalAnswer

    try:
        run_id = uuid.UUID(flow_run_id)
    except ValueError:
        _fail(f"{flow_run_id!r}: not a flow run id (a UUID, shown in the approval artifact)", 2)
    try:
        answer = ApprovalAnswer(decision=decision, approver=approver, reason=reason)
    except ValidationError as exc:
        fields = ", ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid decision: {fields}", 2)
    try:
        resume_flow_run(run_id, run_input=answer.model_dump())
    except ObjectNotFound:
        _fail(f"flow run {run_id} not found on {_prefect_api()}")
    except NotPausedError:
        _fail(f"flow run {run_id} is not waiting for approval")
    except FlowPauseTimeout:
        _fail(f"flow run {run_id}: the approval timed out; the promotion was rejected")
    typer.echo(f"flow run {run_id} resumed: {decision} by {approver} ({reason})")


def _prefect_api() -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or "the ephemeral Prefect API"


@app.command()
def approve(
    flow_run_id: str,
    approver: Annotated[str, typer.Option(help="Who approves (recorded on the version).")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the version and audited).")],
) -> None:
    """Approve the promotion a paused flow run waits for."""
    _resume(flow_run_id, "approve", approver, reason)


@app.command()
def reject(
    flow_run_id: str,
    approver: Annotated[str, typer.Option(help="Who rejects (recorded on the version).")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the version and audited).")],
) -> None:
    """Reject the promotion a paused flow run waits for; the champion stays."""
    _resume(flow_run_id, "reject", approver, reason)


@app.command()
def rollback(
    use_case: str,
    reason: Annotated[str, typer.Option(help="Why: recorded on the version and audited.")],
    to: Annotated[int | None, typer.Option("--to", min=1, help="Version to serve (default: "
                                           "the previously promoted one).")] = None,
    force: Annotated[bool, typer.Option(help="Serve a version that never passed the "
                                        "gate.")] = False,
    operator: Annotated[str | None, typer.Option(help="Who (default: this user).")] = None,
) -> None:
    """Move `champion` back to the previous (or a named) version in one step."""
    settings.configure_environment()
    from ctpipe import audit, retry
    from ctpipe.flows.trace_sink import prefect_sink
    from ctpipe.rollback import RollbackRefused, run_rollback

    ws = _workspace(use_case)
    # Without a Prefect server the event would go to a throwaway one: say so instead.
    server = os.environ.get("PREFECT_API_URL")
    sink = prefect_sink(ws, artifacts_too=False, events=bool(server))
    try:
        summary = run_rollback(ws.model_name, reason, operator=operator or audit.actor(),
                               to_version=to, force=force, publish=sink.publish,
                               journal=ws.store).result
    except RollbackRefused as exc:
        _fail(f"rollback refused: {exc}", 2)
    except Exception as exc:
        if not retry.is_transient(exc):
            raise
        _fail("rollback not done: " + retry.clear_failure(
            exc, retry.mlflow_label(settings.tracking_uri()), 1))
    forced = "  (forced: never passed the gate)" if summary.get("forced") else ""
    typer.echo(f"{ws.model_name}: champion v{summary['from_version']} -> "
               f"v{summary['to_version']}{forced}")
    typer.echo(f"  reason: {reason}")
    typer.echo(f"  by: {summary['operator']} at {summary['at']}")
    typer.echo("  event ctpipe.model.rolled_back " + (f"sent to {server}" if server else
               "not sent: no PREFECT_API_URL (the audit log has the rollback)"))
    typer.echo(f"  audit: {ws.audit_path}")


@app.command()
def server(
    prefect_port: Annotated[int, typer.Option(min=1, max=65535)] = 4200,
    mlflow_port: Annotated[int, typer.Option(min=1, max=65535)] = 5000,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
) -> None:
    """Start a local Prefect server and the MLflow UI (state in CTPIPE_HOME); Ctrl-C stops both."""
    root = settings.configure_environment()
    from ctpipe.local_server import run_server

    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"warning: binding to {host}: other machines can reach both servers, and "
                    "neither asks for a login", fg=typer.colors.YELLOW, err=True)

    raise typer.Exit(run_server(root, host=host, prefect_port=prefect_port,
                                mlflow_port=mlflow_port, echo=typer.echo))


def main() -> None:  # pragma: no cover
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
