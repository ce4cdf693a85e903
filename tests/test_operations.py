"""Operating ctpipe on a real Prefect server: served drift-triggered retraining, the concurrency
limit, human approval through the pause form, rollback, and webhook notifications."""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from ctpipe import audit, landing, notify, registry
from ctpipe.cli import app
from ctpipe.flows.cycle import cycle_flow
from ctpipe.flows.retrain import retrain_flow
from ctpipe.flows.score import score_flow
from ctpipe.lineage import ModelVersionInfo
from ctpipe.workspace import Workspace
from tests.helpers import day, simulated_workspace, small_config
from tests.webhook import Receiver

pytestmark = pytest.mark.usefixtures("prefect_server")

TERMINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


def _config(tmp_path: Path, name: str, file: str | None = None, **promotion: object) -> Path:
    """The small demand config under another name; min_improvement 0 lets an identical
    retrain pass the gate, so an approval is asked every time."""
    raw = yaml.safe_load(small_config(tmp_path).read_text())
    raw.update(name=name, model_name=f"ctpipe-{name}")
    raw["gate"]["min_improvement"] = 0.0
    raw["promotion"] = {"jurisdiction": "HK", "approval_jurisdictions": [], **promotion}
    path = tmp_path / "configs" / f"{file or name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _wait(what: str, probe: Callable[[], object], timeout: float = 240) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _runs(name: str | None = None, deployment: str | None = None,
          states: set[StateType] | None = None) -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[name]) if name else None,
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=sorted(states)))
                if states else None),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment]))
            if deployment else None)


def _events(name: str, since: dt.datetime) -> list[dict]:
    EventsWorker.drain_all(timeout=10)
    body = {"filter": {"event": {"name": [name]},
                       "occurred": {"since": since.isoformat()}}, "limit": 50}
    response = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body, timeout=30)
    response.raise_for_status()
    return response.json()["events"]


def _emit_drift(ws: Workspace, batch_date: str | None, reason: str | None,
                retrain: str = "by-event", resource: str | None = None,
                force: bool | None = None) -> None:
    payload = {"use_case": ws.ref, "batch_date": batch_date, "reason": reason, "force": force}
    emit_event(event="ctpipe.drift.detected",
               resource={"prefect.resource.id": resource or ws.event_resource,
                         "ctpipe.use-case": ws.name, "ctpipe.retrain": retrain},
               payload={k: v for k, v in payload.items() if v is not None})


@pytest.fixture
def served(ctpipe_home: Path, tmp_path: Path) -> Iterator[Workspace]:
    """`ctpipe serve` for a use case named `served`, against the test's Prefect server."""
    ws = simulated_workspace(_config(tmp_path, "served"), days=12, simulator="demand")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
           "PREFECT_HOME": str(tmp_path / "prefect-serve"),
           "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = (tmp_path / "serve.log").open("w")
    ctpipe = str(Path(sys.executable).parent / "ctpipe")
    proc = subprocess.Popen([ctpipe, "serve", ws.ref], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        with get_client(sync_client=True) as client:
            deps = client.read_deployments(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=["retrain-on-drift", "cycle-served"])))
        return len(deps) == 2 and all(d.work_pool_name is None for d in deps)

    try:
        _wait("ctpipe serve to register its deployments", ready, timeout=120)
        yield ws
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


@pytest.mark.slow
def test_drift_events_run_the_served_retraining_one_at_a_time(served: Workspace) -> None:
    ws = served
    _emit_drift(ws, day(9), "test: drift on the first batches")
    first = _wait("the drift-triggered retraining run", lambda: [
        r for r in _runs(deployment="retrain-on-drift") if r.state_type in TERMINAL])[0]
    assert first.state_type == StateType.COMPLETED, first.state.message
    assert first.name == f"served-{day(9)}"
    assert first.parameters["batch_date"] == day(9) and first.parameters["use_case"] == ws.ref
    assert "served" in first.tags
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    assert champion is not None and champion.tags["batch_date"] == day(9)
    assert champion.tags["retrain_reason"] == "test: drift on the first batches"

    # Events that must not retrain production: a replay's, and a cycle retraining inline.
    _emit_drift(ws, day(11), "replay", resource="ctpipe.backtest.served")
    _emit_drift(ws, day(11), "inline", retrain="inline")
    # Five drift events at once for the newest batch (one names no batch and no reason):
    # one retraining, four skipped behind it.
    for i in range(4):
        _emit_drift(ws, day(11), f"test: burst {i}")
    _emit_drift(ws, None, None)
    burst = _wait("five retraining runs to finish", lambda: (
        lambda rs: len(rs) == 5 and all(r.state_type in TERMINAL for r in rs) and rs)(
        _runs(name=f"served-{day(11)}", deployment="retrain-on-drift")))
    assert all(r.state_type == StateType.COMPLETED for r in burst), \
        [r.state.message for r in burst]
    assert len(_runs(deployment="retrain-on-drift")) == 6  # the replay and inline never ran
    for_batch = registry.versions_for_batch(ws.model_name, day(11), ws.config.config_hash)
    assert len(for_batch) == 1
    mlflow_runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name(ws.experiment).experiment_id],
        f"tags.batch_date = '{day(11)}' and tags.kind = 'retrain'")
    assert sorted(r.data.tags.get("retrain", "trained") for r in mlflow_runs) == \
        ["skipped"] * 4 + ["trained"]
    promotions = [e for e in audit.read(ws.name, ws.audit_path)
                  if e["action"] == "model.promoted" and e["details"]["batch_date"] == day(11)]
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    if for_batch[0].tags["gate_decision"] == "passed":
        assert len(promotions) == 1 and champion.version == for_batch[0].version
    else:
        assert promotions == [] and champion.tags["batch_date"] == day(9)
    assert ws.read_record(day(11))["candidate_version"] == for_batch[0].version
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("ctpipe-retrain-served")
    assert limit.limit == 1 and limit.active_slots == 0

    # A forced cycle's event (payload force: true) retrains the batch although it was
    # retrained under this config: the parameter reaches the run as a bool.
    _emit_drift(ws, day(11), "test: forced", force=True)
    forced = _wait("the forced retraining run", lambda: (
        lambda rs: len(rs) == 6 and all(r.state_type in TERMINAL for r in rs) and rs)(
        _runs(name=f"served-{day(11)}", deployment="retrain-on-drift")))
    newest = max(forced, key=lambda r: r.created)
    assert newest.parameters["force"] is True, newest.parameters
    assert newest.state_type == StateType.COMPLETED, newest.state.message
    assert len(registry.versions_for_batch(ws.model_name, day(11), ws.config.config_hash)) == 2
    assert all(r.parameters["force"] is False for r in forced if r.id != newest.id)


def _in_thread(fn: Callable, **kwargs: object) -> tuple[threading.Thread, dict]:
    # A new thread starts with an empty context: carry the test server's settings over.
    context, box = contextvars.copy_context(), {}
    thread = threading.Thread(
        target=lambda: box.update(state=context.run(fn, return_state=True, **kwargs)))
    thread.start()
    return thread, box


def _decide_paused(name: str, command: str, approver: str, reason: str) -> str:
    paused = _wait(f"{name} to pause for approval",
                   lambda: _runs(name=name, states={StateType.PAUSED}), timeout=120)[0]
    result = CliRunner().invoke(app, [command, str(paused.id), "--approver", approver,
                                      "--reason", reason])
    assert result.exit_code == 0, result.output
    return str(paused.id)


def _finish(thread: threading.Thread, box: dict):  # noqa: ANN202
    thread.join(timeout=180)
    assert not thread.is_alive()
    return box["state"]


def test_approval_pause_approve_reject_timeout_and_rollback(
        ctpipe_home: Path, tmp_path: Path, webhook: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(notify.URL_ENV, webhook.url)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    path = _config(tmp_path, "approval", approval_jurisdictions=["HK"],
                   approval_timeout_seconds=600)
    ws = simulated_workspace(path, days=9, simulator="demand")
    name = f"approval-{day(8)}"

    # Approve: the promotion follows, with the approver on the version and in the audit.
    thread, box = _in_thread(retrain_flow, use_case=ws.ref, batch_date=day(8), reason="t1")
    run_id = _decide_paused(name, "approve", "Ada Lovelace", "holdout checked")
    assert _finish(thread, box).is_completed()
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    assert champion.version == 1
    assert champion.tags["approval_decision"] == "approved"
    assert champion.tags["approver"] == "Ada Lovelace"
    assert champion.tags["approval_reason"] == "holdout checked"
    decided = [e for e in audit.read(ws.name, ws.audit_path) if e["action"] == "approval.decided"]
    assert decided[-1]["who"] == "Ada Lovelace" and decided[-1]["details"]["version"] == 1
    with get_client(sync_client=True) as client:
        tags = client.read_flow_run(UUID(run_id)).tags
    assert "approval" in tags

    # A second approved promotion, so there is something to roll back to.
    thread, box = _in_thread(retrain_flow, use_case=ws.ref, batch_date=day(8), force=True)
    _decide_paused(name, "approve", "Ada Lovelace", "again")
    assert _finish(thread, box).is_completed()
    assert registry.get_alias(ws.model_name, registry.CHAMPION).version == 2

    # While v3 waits for approval: it cannot be rolled to, and a rollback v2 -> v1 happens.
    # The approval that follows must not undo the rollback.
    thread, box = _in_thread(retrain_flow, use_case=ws.ref, batch_date=day(8), force=True)
    _wait("v3 to wait for approval", lambda: _runs(name=name, states={StateType.PAUSED}))
    assert registry.get_version(ws.model_name, 3).tags["approval_decision"] == "pending"
    refused = CliRunner().invoke(app, ["rollback", ws.ref, "--to", "3", "--reason", "try"])
    assert refused.exit_code == 2 and "--force" in refused.output
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    result = CliRunner().invoke(app, ["rollback", ws.ref, "--reason", "incident 42",
                                      "--operator", "oncall"])
    assert result.exit_code == 0, result.output
    assert "champion v2 -> v1" in result.output and "event ctpipe.model.rolled_back sent" \
        in result.output
    _decide_paused(name, "approve", "Ada Lovelace", "approved before the incident")
    assert _finish(thread, box).is_completed()
    assert registry.get_alias(ws.model_name, registry.CHAMPION).version == 1
    assert "champion is v1 now, not v2" in ws.read_record(day(8))["message"]
    rolled = _wait("the rolled_back event", lambda: _events("ctpipe.model.rolled_back", since))
    assert rolled[0]["payload"]["to_version"] == 1
    assert rolled[0]["resource"]["prefect.resource.id"] == "ctpipe.use-case.approval"

    # Reject: the champion stays, the version records who said no.
    thread, box = _in_thread(retrain_flow, use_case=ws.ref, batch_date=day(8), force=True)
    _decide_paused(name, "reject", "Grace Hopper", "not during quarter close")
    assert _finish(thread, box).is_completed()
    assert registry.get_alias(ws.model_name, registry.CHAMPION).version == 1
    rejected = registry.get_version(ws.model_name, 4)
    assert rejected.tags["approval_decision"] == "rejected"
    assert rejected.tags["approver"] == "Grace Hopper"
    assert ws.read_record(day(8))["status"] == "rejected"

    # Nobody answers: the timeout rejects, the run fails, the webhook hears of it.
    short = _config(tmp_path, "approval", "approval-short", approval_jurisdictions=["HK"],
                    approval_timeout_seconds=2)
    state = retrain_flow(use_case=str(short), batch_date=day(8), force=True,
                         return_state=True)
    # Prefect fails a pause that outlived its timeout; the record says why.
    assert state.is_failed()
    assert "approval timeout" in ws.read_record(day(8))["message"]
    assert registry.get_alias(ws.model_name, registry.CHAMPION).version == 1
    assert registry.get_version(ws.model_name, 5).tags["approval_decision"] == "timeout"

    kinds = [r["event"] for r in webhook.payloads()]
    assert kinds.count("ctpipe.approval.requested") == 5
    assert kinds.count("ctpipe.model.promoted") == 2
    assert "ctpipe.model.rolled_back" in kinds
    failed = [r for r in webhook.payloads() if r["event"] == "ctpipe.flow.failed"]
    assert failed and name in failed[0]["summary"]


def test_an_operators_rollback_holds_promotions_until_one_is_approved(
        ctpipe_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The jurisdiction (HK) requires no approval here: only the rollback asks for one.
    ws = simulated_workspace(_config(tmp_path, "held"), days=9, simulator="demand")

    def champion() -> ModelVersionInfo:
        return registry.get_alias(ws.model_name, registry.CHAMPION)

    for version in (1, 2):
        state = retrain_flow(use_case=ws.ref, batch_date=day(8), reason="t", force=version > 1,
                             return_state=True)
        assert state.is_completed() and champion().version == version
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    result = CliRunner().invoke(app, ["rollback", ws.ref, "--reason", "INC-7: v2 overshoots",
                                      "--operator", "oncall"])
    assert result.exit_code == 0 and "champion v2 -> v1" in result.output, result.output

    # v3 passes the gate but does not undo the rollback unattended: it waits for a human.
    thread, box = _in_thread(retrain_flow, use_case=ws.ref, batch_date=day(8), force=True)
    _wait("v3 to wait for approval", lambda: _runs(name=f"held-{day(8)}",
                                                   states={StateType.PAUSED}))
    assert champion().version == 1
    assert registry.get_version(ws.model_name, 3).tags["approval_decision"] == "pending"
    waiting = ws.read_record(day(8))
    assert waiting["status"] == "pending-approval"
    assert waiting["message"].startswith("challenger v3 passed the gate and waits for approval: "
                                         "the champion was restored from v2 by oncall's "
                                         "rollback at ")
    assert "INC-7: v2 overshoots" in waiting["message"]
    _decide_paused(f"held-{day(8)}", "approve", "Ada Lovelace", "v3 checked after INC-7")
    assert _finish(thread, box).is_completed()
    assert champion().version == 3 and champion().tags["approver"] == "Ada Lovelace"

    # An approved champion ends the hold: the next promotion needs nobody.
    state = retrain_flow(use_case=ws.ref, batch_date=day(8), force=True, return_state=True)
    assert state.is_completed() and champion().version == 4
    assert champion().tags["approver"].startswith("auto: jurisdiction HK requires no approval")


def test_approve_refuses_bad_input_with_a_clear_message() -> None:
    not_uuid = CliRunner().invoke(app, ["approve", "nope", "--approver", "A", "--reason", "r"])
    assert not_uuid.exit_code == 2 and "not a flow run id" in not_uuid.output
    empty = CliRunner().invoke(app, ["reject", "00000000-0000-0000-0000-000000000000",
                                     "--approver", "", "--reason", "r"])
    assert empty.exit_code == 2 and "--approver" in empty.output
    missing = CliRunner().invoke(app, ["approve", "00000000-0000-0000-0000-000000000000",
                                       "--approver", "A", "--reason", "r"])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_mlflow_outage_is_retried_then_fails_clearly(
        ctpipe_home: Path, tmp_path: Path, webhook: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=4)
    with socket.socket() as sock:  # a port nothing listens on: MLflow is down
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv(notify.URL_ENV, webhook.url)

    state = cycle_flow(use_case=ws.ref, batch_date=day(3), return_state=True)
    assert state.is_failed()
    expected = f"MLflow at http://127.0.0.1:{port} unreachable after 4 attempts"
    record = ws.read_record(day(3))
    assert record["status"] == "failed" and record["message"].startswith(
        f"ServiceUnavailable: {expected}")
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    opened = [t for t in tasks if t.name.startswith("open-mlflow-run")]
    assert len(opened) == 1 and opened[0].run_count == 4
    failed = [p for p in webhook.payloads() if p["event"] == "ctpipe.flow.failed"]
    assert len(failed) == 1 and expected in failed[0]["summary"]
    assert landing.batch_path(ws.landing, dt.date.fromisoformat(day(3))).exists()


def test_scoring_traces_every_prediction_and_scheduled_runs_never_redo_a_batch(
        ctpipe_home: Path, tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    assert cycle_flow(use_case=ws.ref, batch_date=day(7))["status"] == "promoted"
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)

    scored = score_flow(use_case=ws.ref, batch_date=day(8))
    frame = pd.read_parquet(scored["path"])
    batch = pd.read_parquet(landing.batch_path(ws.landing, dt.date.fromisoformat(day(8))))
    assert len(frame) == len(batch) and frame["score"].notna().all()
    assert set(frame["model_version"]) == {champion.version}
    assert set(frame["artifact_sha256"]) == {champion.tags["artifact_sha256"]}
    assert list(frame[ws.config.data.id_column]) == list(batch[ws.config.data.id_column])

    # No date (a scheduled run) and the newest batch already scored: refuse, file untouched.
    before = Path(scored["path"]).stat().st_mtime_ns
    again = score_flow(use_case=ws.ref, return_state=True)
    assert again.is_failed() and "already scored" in again.message
    assert Path(scored["path"]).stat().st_mtime_ns == before

    assert cycle_flow(use_case=ws.ref)["batch_date"] == day(8)
    late = cycle_flow(use_case=ws.ref, return_state=True)
    assert late.is_failed() and f"no new batch; the newest, {day(8)}" in late.message
