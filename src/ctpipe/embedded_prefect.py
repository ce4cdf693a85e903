"""The Prefect server a ctpipe command runs on when no PREFECT_API_URL is given.

Prefect's own temporary server has two faults for unattended use (both seen): it survives a
SIGKILL of the process that started it, and, being "ephemeral", it runs no lease repossessor,
so a retraining slot held by a killed run stays taken for good. This server is ctpipe's own:

* a normal Prefect API server (uvicorn + create_app, as Prefect starts its temporary one) on a
  free loopback port, with its background services, so expired concurrency leases are revoked;
* leases kept on disk under PREFECT_HOME (shared by every embedded server of this home), so
  the next command's server revokes the lease of a run that died with its own server;
* started with PR_SET_PDEATHSIG: the kernel kills it when the ctpipe process dies, SIGKILL
  included, and a normal exit stops it (SIGTERM, then SIGKILL after a grace period).

Call :func:`embedded_server` before Prefect is imported (the CLI does); it sets PREFECT_API_URL
for the rest of the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ctpipe.local_server import answers
from ctpipe.locks import held

READY_TIMEOUT_S = 180.0  # the first start migrates a new database: slow on 2 cores
STOP_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1

# Services an embedded server has no use for: no deployments are served from it.
_IDLE_SERVICES = ("SCHEDULER", "LATE_RUNS", "FOREMAN", "CANCELLATION_CLEANUP")


class EmbeddedServerFailed(RuntimeError):
    """The embedded Prefect server did not start; the message points at its log."""


def _api_configured() -> bool:
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect" in sys.modules:  # a caller (a test harness) may have set it in-process
        from prefect.settings import PREFECT_API_URL

        return bool(PREFECT_API_URL.value())
    return False


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(api_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PREFECT_API_URL"] = api_url
    env["PREFECT_UI_ENABLED"] = "false"
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.setdefault("PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE",
                   "prefect.server.concurrency.lease_storage.filesystem")
    for name in _IDLE_SERVICES:
        env.setdefault(f"PREFECT_SERVER_SERVICES_{name}_ENABLED", "false")
    return env


@contextlib.contextmanager
def embedded_server(root: Path) -> Iterator[str | None]:
    """A Prefect server owned by this process while the block runs; None (and nothing
    started) when PREFECT_API_URL already names a server."""
    if _api_configured():
        yield None
        return
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "embedded-prefect.log"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
           "--lifespan", "on"]
    # One server starts at a time per home: the first start migrates Prefect's database, and
    # concurrent migrations of one SQLite file fail ("table ... already exists").
    with held(root / "locks" / "embedded-prefect-start.lock"), log_path.open("ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()} "
                  f"port {port}\n".encode())
        log.flush()
        # Its own session: the terminal's Ctrl-C reaches only ctpipe, which flushes its logs
        # and events and then stops the server; the kernel stops it if ctpipe is killed.
        proc = subprocess.Popen(cmd, env=_server_env(api_url), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 - no threads yet
        try:
            _wait_ready(proc, f"{api_url}/health", log_path)
        except BaseException:
            _stop(proc)
            raise
    try:
        os.environ["PREFECT_API_URL"] = api_url
        yield api_url
    finally:
        _flush_to_server()
        os.environ.pop("PREFECT_API_URL", None)
        _stop(proc)


def _flush_to_server() -> None:
    """Send the logs and events still queued in this process before the server goes."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler

    with contextlib.suppress(Exception):  # best effort: the run's outcome is already recorded
        APILogHandler().flush()
        EventsWorker.drain_all(timeout=5)


def _wait_ready(proc: subprocess.Popen[bytes], health: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerFailed(f"the embedded Prefect server exited with code "
                                       f"{proc.returncode} while starting; see {log_path}")
        if answers(health):
            return
        time.sleep(0.3)
    raise EmbeddedServerFailed(f"the embedded Prefect server did not answer {health} within "
                               f"{READY_TIMEOUT_S:.0f} s; see {log_path}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
