"""Embedded mode (no PREFECT_API_URL): the Prefect server a command starts dies with it, Ctrl-C
ends a cycle in seconds, and a retraining slot held by a killed run frees itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctpipe import registry
from tests.helpers import day, simulated_workspace, small_config

pytestmark = pytest.mark.slow

CTPIPE = str(Path(sys.executable).parent / "ctpipe")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_API", "CTPIPE_TEST_"))}
    return {**env, "CTPIPE_HOME": str(home), "PREFECT_HOME": str(home / "prefect"), **extra}


def _processes_of(home: Path) -> list[int]:
    """Live processes whose environment names this CTPIPE_HOME (a server left behind shows)."""
    wanted = f"CTPIPE_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _paused(home: Path, tmp_path: Path, ref: str, point: str) -> tuple[subprocess.Popen, Path]:
    pause = tmp_path / f"pause-{point}"
    # Started with SIGINT ignored, as a background job is: ctpipe must restore it itself.
    proc = subprocess.Popen(preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
                            args=[CTPIPE, "cycle", ref, "--date", day(7)], cwd=tmp_path,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env=_env(home, CTPIPE_TEST_PAUSE_AT=point,
                                     CTPIPE_TEST_PAUSE_FILE=str(pause),
                                     CTPIPE_TEST_PAUSE_TIMEOUT_SECONDS="600"))
    deadline = time.monotonic() + 300
    while not pause.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "pause never reached"
        time.sleep(0.2)
    return proc, pause


def _gone(home: Path, within: float) -> bool:
    deadline = time.monotonic() + within
    while _processes_of(home):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_ctrl_c_ends_a_cycle_in_seconds_and_leaves_no_server(ctpipe_home: Path,
                                                             tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    proc, _ = _paused(ctpipe_home, tmp_path, ws.ref, "train.fit")
    assert len(_processes_of(ctpipe_home)) >= 2  # ctpipe and its embedded server
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    took = time.monotonic() - started
    assert took < 20, f"Ctrl-C took {took:.1f} s"
    assert _gone(ctpipe_home, within=5), _processes_of(ctpipe_home)


def test_a_killed_run_leaves_no_server_and_its_slot_frees_itself(ctpipe_home: Path,
                                                                  tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    proc, _ = _paused(ctpipe_home, tmp_path, ws.ref, "train.fit")  # inside the slot
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _gone(ctpipe_home, within=5), _processes_of(ctpipe_home)

    started = time.monotonic()
    rerun = subprocess.run([CTPIPE, "cycle", ws.ref, "--date", day(7)], cwd=tmp_path,
                           env=_env(ctpipe_home), capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert '"status": "promoted"' in rerun.stdout
    # The dead run's lease lapses (60 s) and the server's repossessor frees the slot.
    assert time.monotonic() - started < 300
    assert "waiting for the retraining slot" in rerun.stderr
    assert registry.get_alias(ws.model_name, registry.CHAMPION) is not None
    assert _gone(ctpipe_home, within=5), _processes_of(ctpipe_home)
