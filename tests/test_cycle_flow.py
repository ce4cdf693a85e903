"""The cycle flow on a real Prefect server and a real MLflow registry (SQLite, temporary)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from ctpipe import audit, landing, registry
from ctpipe.flows.cycle import cycle_flow
from tests.helpers import day, simulated_workspace, small_config

pytestmark = pytest.mark.usefixtures("prefect_server")


def _artifact(key: str) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1,
            sort="CREATED_DESC")
    assert found, f"no artifact {key}"
    return str(found[0].data)


def _registry_snapshot(model_name: str) -> list[tuple[int, tuple[str, ...], str]]:
    return [(v.version, tuple(sorted(v.aliases)), v.tags.get("gate_decision", ""))
            for v in registry.list_versions(model_name)]


def test_cold_start_promotes_with_lineage(ctpipe_home: Path, tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    state = cycle_flow(use_case=ws.ref, batch_date=day(3), return_state=True)
    assert state.is_completed()
    assert ws.read_record(day(3))["status"] == "waiting"  # 3 labelled batches, window is 6
    assert registry.list_versions(ws.model_name) == []

    result = cycle_flow(use_case=ws.ref, batch_date=day(7))
    assert result["status"] == "promoted"
    assert result["retrain_reason"] == "no champion yet (cold start)"
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    assert champion is not None and champion.version == 1
    assert set(champion.aliases) == {"champion", "challenger"}
    tags = champion.tags
    # labels arrive one batch late: day 7 sees days 0..6 labelled, the newest 6 are the window
    assert (tags["train_start"], tags["train_end"]) == (day(1), day(4))
    assert (tags["holdout_start"], tags["holdout_end"]) == (day(5), day(6))
    assert tags["gate_decision"] == "passed"
    assert tags["config_hash"] == ws.config.config_hash
    assert len(tags["data_fingerprint"]) == 64
    assert float(tags["holdout_metric"]) == pytest.approx(result["challenger_metric"], rel=1e-5)

    # The registered artifact is the whole inference path: raw rows in, predictions out.
    batch = pd.read_parquet(landing.batch_path(ws.landing, landing.batch_dates(ws.landing)[8]))
    served = mlflow.pyfunc.load_model(f"models:/{ws.model_name}@champion").predict(batch)
    loaded = registry.load_version(ws.model_name, 1)
    np.testing.assert_allclose(np.asarray(served), loaded.model.predict(batch))
    # The sha256 covers every stored file of the model (code, MLmodel, environment too),
    # recomputed here by the documented rule: "<path>\0<file sha256>\n", sorted by path,
    # without the registered_model_meta that MLflow's models:/ load above wrote there (up to
    # MLflow 3.17).
    stored = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=registry.client().get_model_version_download_uri(ws.model_name, "1")))
    files = {p.relative_to(stored).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in stored.rglob("*") if p.is_file() and p.name != "registered_model_meta"}
    assert {"MLmodel", "pyfunc_entry.py", "requirements.txt", "python_env.yaml",
            "artifacts/booster.txt", "artifacts/features.json", "artifacts/profile.npz",
            "artifacts/outputs.npz"} <= set(files)
    whole = hashlib.sha256("".join(f"{rel}\0{files[rel]}\n" for rel in sorted(files)).encode())
    assert tags["artifact_hash_scope"] == "model-dir-v1"
    assert whole.hexdigest() == tags["artifact_sha256"]

    assert "PASSED" in _artifact("demand-gate")
    # The next day compares predictions and the newly arrived labels with the training rows.
    nxt = cycle_flow(use_case=ws.ref, batch_date=day(8))
    assert [o["feature"] for o in nxt["output_drift"]] == ["prediction", "label"]
    # 4 training batches x 240 rows <= 1000: the small-sample policy applies (KS)
    assert all(o["tested"] and o["test"] == "ks" for o in nxt["output_drift"])
    assert "Prediction distribution vs the champion's training rows" in _artifact("demand-drift")
    actions = [e["action"] for e in audit.read("demand", path=ws.audit_path)]
    assert actions[-5:] == ["drift.checked", "gate.decided", "model.promoted",
                            "validation.passed", "drift.checked"]


def test_worse_challenger_is_rejected_and_alias_stays(ctpipe_home: Path, tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path, retrain_every=1), days=10)
    assert cycle_flow(use_case=ws.ref, batch_date=day(7))["status"] == "promoted"
    # A broken label feed: the training part of the next window gets shuffled targets.
    rng = np.random.default_rng(0)
    for i in range(2, 6):
        path = landing.labels_path(ws.landing, landing.batch_dates(ws.landing)[i])
        labels = pd.read_parquet(path)
        labels["volume_tonnes"] = rng.permutation(labels["volume_tonnes"].to_numpy())
        labels.to_parquet(path)

    result = cycle_flow(use_case=ws.ref, batch_date=day(8))
    assert result["retrain_reason"].startswith("scheduled")
    assert result["status"] == "rejected"
    assert result["gate_passed"] is False
    assert registry.get_alias(ws.model_name, registry.CHAMPION).version == 1
    rejected = registry.get_version(ws.model_name, 2)
    assert rejected.tags["gate_decision"] == "rejected"
    assert "beats_champion" in rejected.tags["gate_reasons"]
    assert rejected.aliases == ["challenger"]
    gate_md = _artifact("demand-gate")
    assert "REJECTED" in gate_md and "beats_champion | **no**" in gate_md


def test_bad_batch_is_quarantined_and_registry_untouched(ctpipe_home: Path,
                                                          tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=10)
    assert cycle_flow(use_case=ws.ref, batch_date=day(7))["status"] == "promoted"
    before = _registry_snapshot(ws.model_name)
    target = landing.batch_dates(ws.landing)[8]
    path = landing.batch_path(ws.landing, target)
    batch = pd.read_parquet(path)
    batch.loc[:4, "border_wait_minutes"] = -30.0
    batch.to_parquet(path)

    state = cycle_flow(use_case=ws.ref, batch_date=day(8), return_state=True)
    assert state.is_failed()
    record = ws.read_record(day(8))
    assert record["status"] == "quarantined"
    assert any(f.startswith("border_wait_minutes") for f in record["validation_failures"])
    assert "border_wait_minutes" in record["message"]
    folder = ws.quarantine / day(8) / "attempt-1"
    assert not path.exists() and (folder / path.name).is_file()
    assert "border_wait_minutes" in (folder / "summary.md").read_text()
    assert json.loads((folder / "gx_result.json").read_text())
    assert _registry_snapshot(ws.model_name) == before
    assert "border_wait_minutes" in _artifact("demand-validation")


def test_unreadable_batch_is_quarantined(ctpipe_home: Path, tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=3)
    path = landing.batch_path(ws.landing, landing.batch_dates(ws.landing)[2])
    path.write_bytes(path.read_bytes()[:100])  # truncated upload
    state = cycle_flow(use_case=ws.ref, batch_date=day(2), return_state=True)
    assert state.is_failed()
    record = ws.read_record(day(2))
    assert record["status"] == "quarantined"
    assert str(path.name) in record["message"]
    assert (ws.quarantine / day(2) / "attempt-1" / path.name).is_file()


def _server_state(state) -> tuple[str, str, str]:  # noqa: ANN001
    """(type, name, message) of the flow run's final state as the Prefect server has it."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    return run.state.type.value, run.state.name, run.state.message or ""


def _run_logs(state) -> list[str]:  # noqa: ANN001
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[state.state_details.flow_run_id])))
    return [log.message for log in logs]


def test_each_outcome_names_the_final_state(ctpipe_home: Path, tmp_path: Path) -> None:
    from ctpipe.flows.retrain import retrain_flow

    ws = simulated_workspace(small_config(tmp_path), days=10)
    runs = {
        "waiting": cycle_flow(use_case=ws.ref, batch_date=day(3), return_state=True),
        "promoted": cycle_flow(use_case=ws.ref, batch_date=day(7), return_state=True),
        "no-drift": cycle_flow(use_case=ws.ref, batch_date=day(8), return_state=True),
        "retrained": retrain_flow(use_case=ws.ref, batch_date=day(9), reason="t",
                                  return_state=True),
        "skipped": retrain_flow(use_case=ws.ref, batch_date=day(9), reason="t",
                                return_state=True),
    }
    assert _server_state(runs["waiting"])[:2] == ("COMPLETED", "Waiting")
    assert _server_state(runs["promoted"]) == (
        "COMPLETED", "Promoted", "v1 promoted to champion (no champion yet (cold start))")
    assert _server_state(runs["no-drift"]) == ("COMPLETED", "NoDrift", "no drift: champion kept")
    kind, name, message = _server_state(runs["retrained"])
    assert (kind, name) in {("COMPLETED", "Promoted"), ("COMPLETED", "Rejected")}
    assert message.startswith(("v2 promoted", "challenger v2 rejected"))
    assert _server_state(runs["skipped"])[:2] == ("COMPLETED", "Skipped")
    assert runs["skipped"].result()["retrain"] == "skipped"
    # One INFO line per decision and one for the outcome, in the run's Logs tab.
    logs = _run_logs(runs["promoted"])
    for line in ("validation.passed (batch", "drift.checked (batch", "gate.decided (",
                 "model.promoted (", "Promoted: v1 promoted"):
        assert any(line in m for m in logs), (line, logs)

    other = simulated_workspace(small_config(tmp_path, "fraud"), days=9)
    requested = cycle_flow(use_case=other.ref, batch_date=day(7), retrain_inline=False,
                           return_state=True)
    assert _server_state(requested)[:2] == ("COMPLETED", "RetrainRequested")
    path = landing.batch_path(other.landing, landing.batch_dates(other.landing)[8])
    path.write_bytes(path.read_bytes()[:100])
    quarantined = cycle_flow(use_case=other.ref, batch_date=day(8), return_state=True)
    kind, name, message = _server_state(quarantined)
    assert (kind, name) == ("FAILED", "Quarantined") and path.name in message
