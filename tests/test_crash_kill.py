"""Real processes killed at each boundary of a retraining; the next plain run repairs the state.

`ctpipe cycle` runs as a subprocess that pauses at a named point (ctpipe.faults), is killed
with SIGKILL there, and is run again on the same batch with no extra flags. The runs use
ctpipe's embedded Prefect server (no PREFECT_API_URL), as an unattended machine does: a killed
run holds the retraining slot, and only a server that revokes lapsed leases frees it (the
test harness's ephemeral server does not), about a minute after the kill. Afterwards:
exactly one champion serving a gate-passed, integrity-verified version of that batch, no
duplicate version, one audit record of the champion's promotion, no interrupted promotion
left, and `ctpipe doctor` exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctpipe import audit, registry
from tests.helpers import day, simulated_workspace, small_config

pytestmark = pytest.mark.slow

CTPIPE = str(Path(sys.executable).parent / "ctpipe")
BOUNDARIES = [
    "train.fit",                 # during training, inside the retraining slot
    "register.after-log",        # the model is logged, no version yet
    "register.before-alias",     # the version exists, the challenger alias not yet
    "promote.before-move",       # the intent is recorded, the champion not moved
    "promote.after-move",        # the champion moved, its tags not written
    "promote.before-trace",      # moved and tagged, no audit record yet
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_API", "CTPIPE_TEST_"))}
    home = Path(env["CTPIPE_HOME"])
    return {**env, "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "2", **extra}


def _run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CTPIPE, *args], cwd=cwd, env=_env(**extra), capture_output=True,
                          text=True, timeout=600)


def kill_at(point: str, args: list[str], cwd: Path, **extra: str) -> None:
    """Run ``ctpipe args`` until it reaches ``point``, then SIGKILL its whole process group."""
    pause = cwd / f"pause-{point}"
    log = (cwd / f"killed-{point}.log").open("w")
    proc = subprocess.Popen([CTPIPE, *args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env=_env(CTPIPE_TEST_PAUSE_AT=point, CTPIPE_TEST_PAUSE_FILE=str(pause),
                                     CTPIPE_TEST_PAUSE_TIMEOUT_SECONDS="600", **extra))
    deadline = time.monotonic() + 300
    while not pause.exists():
        assert proc.poll() is None, (cwd / f"killed-{point}.log").read_text()
        assert time.monotonic() < deadline, f"{point} never reached"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    log.close()
    pause.unlink()


@pytest.mark.parametrize("point", BOUNDARIES)
def test_killed_at_a_boundary_the_next_plain_run_repairs_it(point: str, ctpipe_home: Path,
                                                            tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    kill_at(point, ["cycle", ws.ref, "--date", day(7)], tmp_path)

    rerun = _run(["cycle", ws.ref, "--date", day(7)], tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    # The rerun first reconciles what the killed run left (a promotion it finished or
    # completed), then runs its own cycle: with a champion now, that may find no drift.
    assert json.loads(rerun.stdout)["status"] in ("promoted", "no-drift"), rerun.stdout
    record = ws.read_record(day(7))  # as stored: every attempt at the batch
    outcomes = [record["status"], *(a["status"] for a in record["attempts"])]
    assert "promoted" in outcomes, outcomes
    # What the rerun printed is the record as stored: the killed attempt is in it.
    assert record["attempts"] and json.loads(rerun.stdout)["attempts"] == record["attempts"]

    versions = registry.versions_for_batch(ws.model_name, day(7), ws.config.config_hash)
    assert len(versions) == 1, [v.version for v in versions]  # no duplicate for the batch
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    assert champion is not None and champion.version == versions[0].version
    assert champion.lineage.gate_passed and champion.lineage.promoted_at
    registry.verify_version(ws.model_name, champion.version)
    promoted = [e for e in audit.read(ws.name, ws.audit_path)
                if e["action"] == "model.promoted" and e["details"]["version"] == champion.version]
    assert len(promoted) == 1
    assert not list((ws.root / "intents" / ws.name).glob("*.json"))
    doctor = _run(["doctor", ws.ref], tmp_path)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_doctor_names_the_batch_a_killed_run_left_open(ctpipe_home: Path,
                                                       tmp_path: Path) -> None:
    # Before: the record said "running" with no message and doctor said healthy.
    ws = simulated_workspace(small_config(tmp_path), days=9)
    kill_at("train.fit", ["cycle", ws.ref, "--date", day(7)], tmp_path)
    assert ws.read_record(day(7))["status"] == "running"
    doctor = _run(["doctor", ws.ref], tmp_path)
    assert doctor.returncode == 1, doctor.stdout
    assert f"batch-left-open: batch {day(7)}: its run died before deciding" in doctor.stdout
    assert f"(fix: ctpipe cycle {ws.ref} --date {day(7)})" in doctor.stdout
    assert _run(["cycle", ws.ref, "--date", day(7)], tmp_path).returncode == 0
    assert _run(["doctor", ws.ref], tmp_path).returncode == 0


def test_a_tampered_champion_is_refused_for_scoring_and_cycling(ctpipe_home: Path,
                                                                 tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=10)
    assert _run(["cycle", ws.ref, "--date", day(7)], tmp_path).returncode == 0
    champion = registry.get_alias(ws.model_name, registry.CHAMPION)
    booster = next(Path(ctpipe_home).rglob("booster.txt"))
    text = booster.read_bytes()
    booster.write_bytes(text.replace(b"0", b"1", 1))  # same length, one digit changed
    cycled = _run(["cycle", ws.ref, "--date", day(8)], tmp_path)
    assert cycled.returncode != 0
    assert f"{ws.model_name} v{champion.version}" in cycled.stdout + cycled.stderr
    doctor = _run(["doctor", ws.ref], tmp_path)
    assert doctor.returncode == 1 and "champion-tampered" in doctor.stdout
    status = json.loads(_run(["status", ws.ref, "--json"], tmp_path).stdout)
    assert status["schema_version"] == 1 and status["champion"]["version"] == champion.version
    assert status["champion"]["integrity"].startswith("failed: ")
    assert status["champion"]["artifact_sha256"] == champion.lineage.artifact_sha256
    assert [v["version"] for v in status["versions"]] == [champion.version]
    assert status["last_cycle"]["batch_date"] == day(8) and status["pending_promotions"] == []


def test_a_rollback_killed_after_its_move_is_finished_by_the_next_run(
        ctpipe_home: Path, tmp_path: Path) -> None:
    # Retrain every batch and accept any challenger as good as the champion: a second
    # promotion comes within a few batches, and the rollback has somewhere to go back to.
    path = small_config(tmp_path, retrain_every=1)
    raw = path.read_text().replace("min_improvement: 0.02", "min_improvement: 0.0")
    path.write_text(raw.replace("slice_tolerance: 0.15", "slice_tolerance: 10.0"))
    ws = simulated_workspace(path, days=12)
    statuses = [json.loads(_run(["cycle", ws.ref, "--date", day(i)], tmp_path).stdout)["status"]
                for i in range(7, 12)]
    assert statuses.count("promoted") >= 2, statuses
    before = registry.get_alias(ws.model_name, registry.CHAMPION)
    kill_at("rollback.after-move", ["rollback", ws.ref, "--reason", "INC-9",
                                    "--operator", "oncall"], tmp_path)
    after = registry.get_alias(ws.model_name, registry.CHAMPION)
    assert after.version == before.lineage.previous  # the move happened, then the kill
    doctor = _run(["doctor", ws.ref], tmp_path)
    assert doctor.returncode == 1 and "interrupted-promotion" in doctor.stdout, doctor.stdout
    repaired = _run(["doctor", ws.ref, "--repair"], tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    tags = registry.get_version(ws.model_name, after.version).lineage
    assert (tags.rolled_back_from, tags.rolled_back_by, tags.rollback_reason) == \
        (str(before.version), "oncall", "INC-9")
    rolled = [e for e in audit.read(ws.name, ws.audit_path) if e["action"] == "model.rolled_back"]
    assert len(rolled) == 1 and rolled[0]["who"] == "oncall"


def test_three_cycles_at_once_train_once_and_keep_every_outcome(ctpipe_home: Path,
                                                                tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    args = [CTPIPE, "cycle", ws.ref, "--date", day(7)]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-2000:] for o in outs]
    statuses = sorted(json.loads(o[0])["status"] for o in outs)
    # One trains and promotes; the others wait for the slot and skip the batch, or start
    # after the promotion and find no drift against the new champion.
    assert statuses.count("promoted") == 1, statuses
    assert set(statuses) <= {"promoted", "skipped", "no-drift"}, statuses
    assert len(registry.versions_for_batch(ws.model_name, day(7), ws.config.config_hash)) == 1
    record = ws.read_record(day(7))
    assert len(record["attempts"]) == 2  # the three runs' outcomes are all kept
    assert sorted([record["status"], *(a["status"] for a in record["attempts"])]) == statuses
