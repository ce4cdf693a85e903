"""deployments/prefect.yaml goes through a real `prefect deploy` and matches what `ctpipe serve`
serves (flows/deployments.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from ctpipe.flows.deployments import TIMEZONE, build_deployments

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).parent / "prefect")


def _prefect(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
           "PREFECT_HOME": str(tmp_path / "prefect-cli")}
    return subprocess.run([PREFECT, "--no-prompt", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=300)


def _served_shape(dep) -> dict:  # noqa: ANN001 - a RunnerDeployment
    trigger = dep.triggers[0] if dep.triggers else None
    return {
        "parameters": dep.parameters,
        "tags": sorted(dep.tags),
        "schedules": [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules or []],
        "concurrency": dep.concurrency_limit,
        "trigger": None if trigger is None else (sorted(trigger.expect),
                                                 dict(trigger.match), trigger.parameters),
    }


def _deployed_shape(dep, automations: list) -> dict:  # noqa: ANN001 - a DeploymentResponse
    triggers = [a for a in automations
                if any(getattr(act, "deployment_id", None) == dep.id for act in a.actions)]
    trigger = None
    if triggers:
        t, action = triggers[0].trigger, triggers[0].actions[0]
        trigger = (sorted(t.expect), dict(t.match), action.parameters)
    return {
        "parameters": dep.parameters,
        "tags": sorted(dep.tags),
        "schedules": [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules],
        "concurrency": dep.global_concurrency_limit.limit if dep.global_concurrency_limit
        else None,
        "trigger": trigger,
    }


def test_prefect_deploy_accepts_the_yaml_and_it_matches_serve(prefect_server: None,
                                                              tmp_path: Path) -> None:
    pool = _prefect(["work-pool", "create", "ctpipe-process", "--type", "process",
                     "--overwrite"], tmp_path)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deployed = _prefect(["deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
                        tmp_path)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    served = {d.name: _served_shape(d) for d in build_deployments(["demand", "fraud"])}
    with get_client(sync_client=True) as client:
        found = {d.name: d for d in client.read_deployments()
                 if d.work_pool_name == "ctpipe-process"}
        automations = client.read_automations()
        shapes = {name: _deployed_shape(d, automations) for name, d in found.items()}
        entrypoints = {name: d.entrypoint for name, d in found.items()}

    assert set(shapes) == set(served) == {"cycle-demand", "cycle-fraud", "score-demand",
                                          "score-fraud", "monitor-demand", "monitor-fraud",
                                          "retrain-on-drift", "rollback"}
    for name in served:
        assert shapes[name] == served[name], name
    assert shapes["cycle-fraud"]["schedules"] == [("0 6 * * *", TIMEZONE)]
    assert shapes["cycle-demand"]["parameters"]["retrain_inline"] is False
    assert shapes["retrain-on-drift"]["trigger"][0] == ["ctpipe.drift.detected",
                                                        "ctpipe.retrain.requested"]
    assert all((REPO / e.split(":")[0]).is_file() for e in entrypoints.values()), entrypoints


@pytest.mark.parametrize("use_cases", [["demand"], ["demand", "fraud"]])
def test_serve_builds_one_cycle_scoring_and_monitoring_per_use_case(use_cases: list[str]) -> None:
    names = [d.name for d in build_deployments(use_cases)]
    assert names == [n for u in use_cases
                     for n in (f"cycle-{u}", f"score-{u}", f"monitor-{u}")] + [
        "retrain-on-drift", "rollback"]


def test_serve_refuses_without_a_prefect_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ctpipe.cli import app

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2 and "PREFECT_API_URL is not set" in result.output
