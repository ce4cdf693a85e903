"""`ctpipe score` and `ctpipe monitor`: production's daily scoring and live monitoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ctpipe import settings
from ctpipe.cli_base import _batch_to_run, _database, _fail, _parse_date, _workspace, app


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
        subject = str(input_path)
    else:
        day = _batch_to_run(ws, date)
        subject = day.isoformat()  # the newest batch when no --date: named all the same
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
        _fail(f"score {use_case} {subject}: {state.message}")
    typer.echo(f"{state.message}; written to {result['path']}")
    if result.get("estimated_metric") is not None:
        typer.echo(f"  estimated {ws.config.evaluation.metric} (label-free): "
                   f"{result['estimated_metric']:.4f}")


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_monitor_table(rows: list[dict], metric: str) -> None:
    from ctpipe.monitoring_view import decision_text

    typer.echo(f"{'batch':<12} {'model':>5} {'scored':>8} {'labelled':>8} {metric:>10} "
               f"{'estimate':>9} {'shadow':>14}  decision")
    for r in rows:
        shadow = "-" if r["shadow_version"] is None else \
            f"v{r['shadow_version']} {_fmt(r['shadow_metric'])}"
        typer.echo(f"{r['batch']:<12} {'v' + str(r['version']):>5} {r['rows_scored']:>8} "
                   f"{r['rows_labelled'] if r['rows_labelled'] is not None else '-':>8} "
                   f"{_fmt(r['live_metric']):>10} {_fmt(r['estimated_metric']):>9} "
                   f"{shadow:>14}  {decision_text(r)}")


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
    from ctpipe.landing import labels_set_aside

    as_of = str(result.get("as_of") or date or "9999-12-31")  # no champion: --date, or all
    held_back = [held for held in labels_set_aside(ws.landing, ws.quarantine)
                 if held.day.isoformat() <= as_of]
    for held in held_back:  # else only doctor would say
        typer.echo(f"labels of {held.day} set aside, not measured: {held.problem} (the file "
                   f"is in {held.folder}; put a corrected one back)")
    from ctpipe.monitoring_report import report_paths

    if (page := report_paths(ws)[0]).exists():  # written by the flow (a failure only warns)
        typer.echo(f"report: {page}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({
            "use_case": ws.name, "model": ws.model_name, **result,
            "metric": ws.config.evaluation.metric, "batches": rows,
            "labels_set_aside": [{"batch": h.day.isoformat(), "problem": h.problem,
                                  "folder": str(h.folder)} for h in held_back]},
            indent=2), encoding="utf-8")
        typer.echo(f"figures written to {json_path}")


