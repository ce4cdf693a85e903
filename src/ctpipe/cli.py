"""The `ctpipe` command line: the cycle, checks and operations.

Scoring and monitoring are in ctpipe.cli_production, replays in ctpipe.cli_replay; importing
this module registers every command on ``app``, the console script's entry point.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from ctpipe import cli_production, cli_replay, settings
from ctpipe.cli_base import (
    _SCENARIO_HELP,
    REFERENCE_CASES,
    _batch_to_run,
    _check_scenario,
    _fail,
    _parse_date,
    _workspace,
    app,
)

__all__ = ["app", "cli_production", "cli_replay"]

_Operator = Annotated[str | None, typer.Option(help="Who (default: this user).")]


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
    from ctpipe.wording import count_of

    ws = _workspace(use_case)
    _check_scenario([ws.name], scenario)
    first = _parse_date("--start", start)
    target = out or ws.landing
    dates = simulate_to_landing(ws, target, days=days, shift_day=None if no_shift else shift_day,
                                rows=rows_per_day, seed=seed, start=first, scenario=scenario)
    typer.echo(f"{count_of(len(dates), 'batch')} {dates[0]} .. {dates[-1]} written to {target}")


@app.command()
def cycle(
    use_case: str,
    date: Annotated[str | None, typer.Option(help="Batch date YYYY-MM-DD (default: newest).")]
    = None,
    force: Annotated[bool, typer.Option(help="Retrain this batch whatever the retraining "
                                        "policy says: without drift, during a cooldown "
                                        "(after a rejection, waiting for post-drift data, "
                                        "between follow-ups), and when it was already "
                                        "retrained under this config. Validation, the "
                                        "training window, the gate and approval still "
                                        "apply.")] = False,
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
    record = result if isinstance(result, dict) else None
    # As stored: with the batch's earlier attempts. Only its own batch's (no --date: the
    # newest record may be another batch's), and an unreadable one is no reason to crash.
    stored_as = result.get("batch_date") if isinstance(result, dict) else date
    if stored_as:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            stored = ws.read_record(stored_as)
            if stored and (record is None or stored.get("attempt_id") == record.get(
                    "attempt_id")):
                record = stored
    if record:
        typer.echo(json.dumps(record, indent=2))
    if not state.is_completed():
        which = " ".join(filter(None, [use_case, date]))  # no --date: no empty field
        _fail(f"cycle {which} failed: {state.message}")


@app.command()
def validate(
    use_case: Annotated[str, typer.Argument(help="Use-case name or path to its YAML config.")],
    file: Annotated[Path, typer.Option(help="The batch file (Parquet or CSV).")],
    date: Annotated[str | None, typer.Option(help="Batch date YYYY-MM-DD: also checks the "
                                             "timestamps' period.")] = None,
    docs: Annotated[Path | None, typer.Option(help="Write GX Data Docs (HTML) here.")] = None,
) -> None:
    """One-off check of a file: exit 0 when it passes (warnings allowed), 1 when it fails,
    2 when it is not there.

    Timestamps are checked against the current time (no date needed); categorical values
    against the categories the workspace's champion saw in training, when there is one.
    """
    import datetime as dt

    from ctpipe.validation import NONE_LEARNED, validate_file, write_data_docs
    from ctpipe.validation.learned import checked_columns

    settings.configure_environment()
    ws = _workspace(use_case)
    cfg = ws.config
    batch_date = _parse_date("--date", date) if date else None
    if not file.exists():  # a mistyped path is the caller's error, not a batch that failed
        _fail(f"{file}: batch file not found (--file)", 2)
    training = None
    if checked_columns(cfg):
        embedded = settings.tracking_uri() == settings.default_tracking_uri()
        if embedded and not (settings.home() / "mlflow.db").exists():
            training = NONE_LEARNED  # no registry yet: nothing to create just to find that out
        else:
            from ctpipe.steps.validate import learned_from_registry

            training = learned_from_registry(ws.registry)
    result = validate_file(file, cfg, batch_date=batch_date, now=dt.datetime.now(dt.UTC),
                           training=training)
    typer.echo(result.summary_markdown(str(file)))
    if docs and result.read_error is None:
        page = write_data_docs(result, cfg, docs, batch_name=file.stem)
        typer.echo(f"\nData Docs: {page}")
    if not result.passed:  # the verdict in one line, naming the file, columns and rules
        _fail(result.message(str(file)))


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
    from ctpipe.decisions.rollback import rollback_hold
    from ctpipe.integrity import ArtifactsUnreadable

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
                   f"{t.holdout_metric} on holdout {t.holdout_start}..{t.holdout_end}"
                   + (f" ({t.holdout_share} of its rows)" if t.holdout_share else ""))
        typer.echo(f"  trained on {t.train_start}..{t.train_end} "
                   f"({t.train_rows} rows, data {(t.data_fingerprint or '')[:12]})")
        typer.echo(f"  promoted {t.promoted_at} by {t.approver}; reason: {t.retrain_reason}")
        if t.rolled_back_by:
            typer.echo(f"  restored {t.rolled_back_at} from v{t.rolled_back_from} by "
                       f"{t.rolled_back_by}'s rollback; reason: {t.rollback_reason}")
        if hold := rollback_hold(t):
            typer.echo(f"  promotions held: {hold}")
        problem = _verifier(ws.model_name)(champion.version)
        if isinstance(problem, ArtifactsUnreadable):
            typer.secho(f"  integrity not checked, it cannot serve until it is: {problem}",
                        fg=typer.colors.YELLOW)
        elif problem:
            typer.secho(f"  INTEGRITY FAILED, it cannot serve: {problem} (fix: ctpipe "
                        f"rollback {shlex.quote(ws.ref)} --reason TEXT)", fg=typer.colors.RED)
    versions = registry.list_versions(ws.model_name)
    typer.echo(f"versions: {len(versions)} "
               f"({sum(v.lineage.gate_passed for v in versions)} passed the gate)")
    last = ws.last_record()
    if last is None:
        typer.echo("last cycle: none")
    else:
        typer.echo(f"last cycle: {last['batch_date']} {last['status']}: {last['message']}")


def _verifier(model_name: str):  # noqa: ANN202
    """version -> the refusal its stored files earn (unraised), None when they match.

    An ``ArtifactsUnreadable`` refusal means they could not be read, so were not checked: also
    when the registry or the store fails otherwise (down, or an error of its own), since a
    report must say so and go on."""
    from ctpipe import registry
    from ctpipe.integrity import ArtifactsUnreadable, IntegrityError

    def verify(version: int) -> IntegrityError | None:
        try:
            registry.verify_version(model_name, version)
        except IntegrityError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - reported as not checked, never a traceback
            return ArtifactsUnreadable(f"{model_name} v{version}: "
                                       f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        return None
    return verify


@app.command()
def doctor(
    use_case: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    repair: Annotated[bool, typer.Option(help="Fix what is safe to fix (finish or abandon an "
                                         "interrupted promotion, finish an interrupted "
                                         "set-aside, free a dead slot, trace an untraced "
                                         "alias move) and audit it.")] = False,
) -> None:
    """Check the use case's invariants; exit 0 when healthy, 1 with one line per problem.
    Notes (accepted audit-chain breaks) are listed either way and never fail it."""
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
        for note in found.notes:
            typer.echo(f"note: {note.line()}")
        if found.healthy:
            typer.echo(f"{ws.name}: healthy")
    if not found.healthy:
        raise typer.Exit(1)


@app.command()
def accept_unlabelled(
    use_case: str,
    date: Annotated[str, typer.Option(help="The batch whose labels were set aside, "
                                      "YYYY-MM-DD.")],
    reason: Annotated[str, typer.Option(help="Why no corrected labels file will come: "
                                        "audited.")],
    operator: _Operator = None,
) -> None:
    """Accept that a batch whose labels were set aside stays unlabelled: `ctpipe doctor` stops
    naming it. A corrected labels file put back later is still used."""
    from ctpipe import audit, landing

    ws = _workspace(use_case)
    day = _parse_date("--date", date)
    if not reason.strip():
        _fail("--reason: say why no corrected labels file will come (it is audited)", 2)
    found = {a.day: a for a in landing.labels_set_aside(ws.landing, ws.quarantine)}
    if day not in found:
        _fail(f"--date {day}: no labels of that batch are set aside and waiting for a "
              f"corrected file (`ctpipe doctor {use_case}` names those that are)", 2)
    who = operator or audit.actor()
    # Audited first: a crash before the note leaves the batch named, and the command can be
    # run again; never a silent acceptance.
    entry = audit.record("labels.accepted_unlabelled", ws.name, reason, who=who, details={
        "batch_date": day.isoformat(), "set_aside": str(found[day].folder),
        "problem": found[day].problem}, path=ws.audit_path)
    landing.accept_unlabelled(found[day], who=who, reason=reason)
    typer.echo(f"batch {day}: stays unlabelled (its labels were set aside: "
               f"{found[day].problem}); doctor no longer names it")
    typer.echo(f"  reason: {reason}")
    typer.echo(f"  by: {who} at {entry['at']}")
    typer.echo(f"  evidence: {found[day].folder}")
    typer.echo(f"  audit: {ws.audit_path}")


@app.command()
def accept_audit_break(
    use_case: str,
    line: Annotated[int, typer.Option(help="The line `ctpipe doctor` names in its "
                                      "audit-chain-broken problem.")],
    reason: Annotated[str, typer.Option(help="Why the chain breaks there (e.g. lines an "
                                        "older ctpipe wrote during an upgrade): audited.")],
    operator: _Operator = None,
) -> None:
    """Accept a break in the audit trail's hash chain whose cause you know: `ctpipe doctor`
    stops naming it. The acceptance is audited; the break shows again if either line changes."""
    from ctpipe import audit

    ws = _workspace(use_case)
    if not reason.strip():
        _fail("--reason: say why the chain breaks there (it is audited)", 2)
    found = {b.line: b for b in audit.open_breaks(ws.audit_path)}
    if line not in found:
        named = ", ".join(str(n) for n in found) or "none"
        _fail(f"--line {line}: the audit trail {ws.audit_path} has no break there to accept "
              f"(lines with one: {named})", 2)
    entry = audit.accept_break(ws.audit_path, found[line], ws.name, reason,
                               who=operator or audit.actor())
    typer.echo(f"accepted: {found[line].text}")
    typer.echo(f"  reason: {reason}")
    typer.echo(f"  by: {entry['who']} at {entry['at']}")


@app.command("set-aside")
def set_aside(
    use_case: str,
    date: Annotated[list[str], typer.Option(help="A batch to move aside, YYYY-MM-DD "
                                            "(repeatable).")],
    reason: Annotated[str, typer.Option(help="Why it must not be trained on or judged: "
                                        "audited, and kept beside the batch.")],
    operator: _Operator = None,
) -> None:
    """Move batches out of the landing zone on your word, with their validation result beside
    them: what a retrain refuses to do by itself when most of its window fails at once."""
    settings.configure_environment()
    from ctpipe import audit
    from ctpipe.flows.trace_sink import prefect_sink
    from ctpipe.steps.ports import Runtime
    from ctpipe.steps.set_aside import BatchBusy, finish_set_asides
    from ctpipe.steps.set_aside import set_aside as set_batch_aside

    ws = _workspace(use_case)
    days = list(dict.fromkeys(_parse_date("--date", d) for d in date))
    if not reason.strip():
        _fail("--reason: say why the batch must be set aside (it is audited)", 2)
    server = os.environ.get("PREFECT_API_URL")
    sink = prefect_sink(ws, artifacts_too=False, events=bool(server))
    rt = Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                 models=ws.registry, publish=sink.publish, traced=sink.traced)

    def show(decisions: list) -> None:
        for d in decisions:
            typer.echo(f"{d.subject}: {d.reason}")
            typer.echo(f"  evidence: {d.details['quarantine']}")

    try:
        # An earlier run of this command killed before its move: completed first.
        completed = finish_set_asides(rt)
        show(completed)
        done = {d.details["batch_date"] for d in completed if d.kind == "batch.set_aside"}
        days = [d for d in days if d.isoformat() not in done]
        landed = set(ws.store.batch_dates())
        if missing := [d for d in days if d not in landed]:
            _fail(f"--date {missing[0]}: no such batch in {ws.landing} (nothing "
                  f"{'else ' if completed else ''}was moved)", 2)
        for day in days:
            show(set_batch_aside(rt, day, reason=reason, who=operator or audit.actor()))
            if ws.store.predictions_exist(day):
                typer.echo(f"  its predictions were handed out already "
                           f"({ws.store.predictions_location(day)}): they stay")
    except (BatchBusy, OSError) as exc:
        _fail(f"set-aside stopped: {' '.join(str(exc).split())} (batches listed above were "
              "moved; `ctpipe doctor` shows one left half done)", 1)
    typer.echo(f"audit: {ws.audit_path}")


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
    operator: _Operator = None,
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
