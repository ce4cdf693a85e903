"""The `ctpipe` command line's shared parts: the app, and how a command fails or finds its input.

Commands live by job: ctpipe.cli (the cycle, checks and operations), ctpipe.cli_production
(scoring and monitoring), ctpipe.cli_replay (backtests and the demo).
"""

from __future__ import annotations

import datetime as dt
import signal
from typing import NoReturn

import typer

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
    from ctpipe.landing import misnamed_batches, unlanded_files

    dates = ws.store.batch_dates()
    if date is None:
        if not dates:
            other = misnamed_batches(ws.landing, ws.config) or unlanded_files(ws.landing)
            _fail(f"no batches in {ws.landing / 'batches'}: "
                  + (other if other else "nothing to run"), 2)
        return dates[-1]
    day = _parse_date("--date", date)
    if day not in dates:
        where = ws.quarantine / day.isoformat()
        other = misnamed_batches(ws.landing, ws.config, day) or unlanded_files(ws.landing, day)
        hint = f": {other}" if other else ""
        if where.is_dir():
            hint += (f"; it was quarantined to {where}: put a corrected file back to run it "
                     "again")
        _fail(f"--date {day}: no batch for that date in {ws.landing / 'batches'}{hint}", 2)
    return day


_SCENARIO_HELP = ("From --shift-day on. shift: a lasting abrupt change; none: nothing changes "
                  "(control); gradual: the shift phased in over 10 batches; seasonal: a weekly "
                  "cycle, period 7 batches, from batch 0 (set drift.seasonal_period: 7); "
                  "covariate: the input mix moves, same input->target relation; concept: the "
                  "relation changes, inputs do not; bad-promotion: a short fraud campaign a "
                  "retrain over-learns (fraud only). All others: demand and fraud.")


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


def _database():  # noqa: ANN202 - ctpipe.db.Database, imported late (SQLAlchemy)
    """ctpipe's database, migrated; an unreachable one ends the command with one line."""
    from ctpipe.db import DatabaseUnavailable, open_database

    try:
        return open_database()
    except DatabaseUnavailable as exc:
        _fail(str(exc))


