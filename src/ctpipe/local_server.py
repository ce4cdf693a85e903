"""`ctpipe server`: a local Prefect server and the MLflow UI, their state in CTPIPE_HOME.

Both run as child processes, each in its own session, so that Ctrl-C in the terminal reaches only
us and we decide how they stop: SIGTERM to both process groups, SIGKILL after a grace period.
Their output goes to ``CTPIPE_HOME/logs`` so that the terminal shows only our lines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ctpipe import settings

Echo = Callable[[str], None]

# The first Prefect start migrates a new database: slow on 2 cores.
READY_TIMEOUT_S = 180.0
STOP_GRACE_S = 20.0
POLL_S = 0.5
LOG_TAIL_LINES = 30
# Store URIs the MLflow server can open itself; anything else (an http:// tracking server) is
# not ours to serve, so the UI shows the embedded store instead.
_DB_SCHEMES = ("sqlite:", "postgresql", "mysql", "mssql")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

# A local health check must never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    health_url: str


def run_server(root: Path, *, host: str, prefect_port: int, mlflow_port: int,
               echo: Echo) -> int:
    """Start both servers, print where they are, block until Ctrl-C/SIGTERM or a child dies.

    Returns 0 after Ctrl-C, 1 when a server failed to start or died, 2 when a port is taken.
    """
    problem = _port_problem(host, prefect_port, mlflow_port)
    if problem:
        echo(problem)
        return 2
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    with _signals_as_keyboard_interrupt():
        try:
            children.append(_start_prefect(root, host, prefect_port, logs))
            children.append(_start_mlflow(root, host, mlflow_port, logs))
            echo(f"starting Prefect and MLflow (logs in {logs}) ...")
            failed = _wait_ready(children, READY_TIMEOUT_S, echo)
            if failed is None:
                _print_urls(echo, root, host, prefect_port, mlflow_port)
                failed = _wait_for_death(children)
                echo(f"{failed.name} exited unexpectedly with code {failed.proc.returncode}")
            _print_log_tail(echo, failed)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            _stop(children)
            if children:
                echo("stopped")


# -- checks before starting anything -------------------------------------------------------

def _port_problem(host: str, prefect_port: int, mlflow_port: int) -> str | None:
    if prefect_port == mlflow_port:
        return f"--prefect-port and --mlflow-port are both {prefect_port}: pick two ports"
    for name, port in (("Prefect", prefect_port), ("MLflow", mlflow_port)):
        if _port_in_use(host, port):
            return (f"port {port} on {host} is already in use (wanted for {name}); stop what "
                    f"runs there or pick another with --{name.lower()}-port")
    return None


def _port_in_use(host: str, port: int) -> bool:
    # Bind exactly like the servers will (SO_REUSEADDR, as uvicorn does), so a port left in
    # TIME_WAIT by a previous run does not count as taken but a listener does.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


# -- starting -------------------------------------------------------------------------------

def _url_host(host: str) -> str:
    # A wildcard bind is reachable on loopback; browsers cannot open http://0.0.0.0.
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def prefect_api_url(host: str, port: int) -> str:
    return f"http://{_url_host(host)}:{port}/api"


def _python_tool(module: str) -> list[str]:
    # The interpreter running ctpipe has both installed; no reliance on PATH.
    return [sys.executable, "-m", module]


def _spawn(name: str, cmd: list[str], env: dict[str, str], log: Path,
           health_url: str) -> Child:
    with log.open("ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        # start_new_session: the child gets its own process group, out of reach of the
        # terminal's SIGINT, so one Ctrl-C is handled once, here, for both servers.
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, proc, log, health_url)


def _start_prefect(root: Path, host: str, port: int, logs: Path) -> Child:
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str(root / "prefect"))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    # Marketing banners in the UI are the only thing that would point outside this machine.
    env.setdefault("PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT", "false")
    # An exported PREFECT_API_URL (e.g. a remote server) would become the URL the UI calls;
    # this server's own API is the only right answer here.
    api_url = prefect_api_url(host, port)
    env["PREFECT_API_URL"] = api_url
    env["PREFECT_UI_API_URL"] = api_url
    env.pop("PREFECT_SERVER_UI_API_URL", None)
    # Leases of concurrency slots survive a server restart on disk; in memory (the default) a
    # restart during a retraining would leave ctpipe-retrain-<use case> full for good.
    env.setdefault("PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE",
                   "prefect.server.concurrency.lease_storage.filesystem")
    cmd = [*_python_tool("prefect"), "server", "start", "--host", host, "--port", str(port),
           "--analytics-off"]
    return _spawn("Prefect server", cmd, env, logs / "prefect-server.log", f"{api_url}/health")


def mlflow_backend_store_uri(root: Path) -> str:
    uri = settings.tracking_uri()
    return uri if uri.startswith(_DB_SCHEMES) else settings.default_tracking_uri(root)


def _start_mlflow(root: Path, host: str, port: int, logs: Path) -> Child:
    env = dict(os.environ)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    # Job execution (GenAI scorers) spawns extra consumer processes we never use.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # Through the environment, not argv: a database URI may carry a password, and argv shows
    # in `ps` and in the log line below.
    env["MLFLOW_BACKEND_STORE_URI"] = mlflow_backend_store_uri(root)
    cmd = [*_python_tool("mlflow"), "server",
           "--default-artifact-root", settings.artifact_root().as_uri(),
           "--host", host, "--port", str(port),
           # One worker is plenty for a local UI and starts twice as fast on 2 cores.
           "--workers", "1"]
    if host not in _LOOPBACK_HOSTS:
        # MLflow's host-header check allows loopback and private ranges only by default.
        cmd += ["--allowed-hosts", f"localhost,localhost:*,127.0.0.1,127.0.0.1:*,{host},"
                                   f"{host}:*"]
    base = f"http://{_url_host(host)}:{port}"
    return _spawn("MLflow server", cmd, env, logs / "mlflow-server.log", f"{base}/health")


# -- waiting --------------------------------------------------------------------------------

def answers(url: str) -> bool:
    try:
        with _OPENER.open(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _wait_ready(children: list[Child], timeout: float, echo: Echo) -> Child | None:
    """None once every child answers its health check, else the child that died or hung."""
    started = time.monotonic()
    pending = list(children)
    while pending:
        for child in list(pending):
            if child.proc.poll() is not None:
                echo(f"{child.name} exited with code {child.proc.returncode} while starting")
                return child
            if answers(child.health_url):
                pending.remove(child)
        if pending and time.monotonic() - started > timeout:
            echo(f"{pending[0].name} did not answer {pending[0].health_url} within "
                 f"{timeout:.0f} s")
            return pending[0]
        if pending:
            time.sleep(POLL_S)
    echo(f"ready in {time.monotonic() - started:.1f} s")
    return None


def _wait_for_death(children: list[Child]) -> Child:
    while True:
        for child in children:
            if child.proc.poll() is not None:
                return child
        time.sleep(POLL_S)


# -- reporting ------------------------------------------------------------------------------

def _print_urls(echo: Echo, root: Path, host: str, prefect_port: int, mlflow_port: int) -> None:
    base = _url_host(host)
    api = prefect_api_url(host, prefect_port)
    mlflow_ui = f"http://{base}:{mlflow_port}"
    store = mlflow_backend_store_uri(root)
    echo("")
    echo(f"Prefect UI:   http://{base}:{prefect_port}")
    echo(f"Prefect API:  {api}")
    echo(f"MLflow UI:    {mlflow_ui}   (store {settings.redact_uri(store)})")
    echo("")
    echo("To run cycles against these servers, in another shell:")
    echo(f"  export PREFECT_API_URL={api}")
    echo(f"  export CTPIPE_MLFLOW_UI_URL={mlflow_ui}")
    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    if tracking and not tracking.startswith(_DB_SCHEMES):
        echo(f"  note: MLFLOW_TRACKING_URI={settings.redact_uri(tracking)} is not a database; "
             "the MLflow UI here shows the embedded store, not that server")
    else:
        echo("  (MLflow needs nothing more: cycles write to the same store the UI reads)")
    echo("")
    echo("Ctrl-C stops both.")


def _print_log_tail(echo: Echo, child: Child) -> None:
    try:
        lines = child.log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    echo(f"--- last lines of {child.log} ---")
    for line in lines[-LOG_TAIL_LINES:]:
        echo(line)


# -- stopping -------------------------------------------------------------------------------

@contextlib.contextmanager
def _signals_as_keyboard_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM (e.g. from a supervisor) both stop the servers like Ctrl-C does.

    SIGINT is set explicitly: a shell script's background job starts with SIGINT ignored, and
    then `kill -INT` would do nothing.
    """
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, interrupt) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal_group(child: Child, sig: signal.Signals) -> None:
    # The whole group: the Prefect and MLflow CLIs both run their web server in a grandchild.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.proc.pid, sig)


def _stop(children: list[Child]) -> None:
    """SIGTERM to every group, SIGKILL after the grace period; impatient Ctrl-Cs are ignored
    meanwhile so that no server is left orphaned."""
    if not children:
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for child in children:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for child in children:
            # Also reaps grandchildren that outlived their parent in the group.
            _signal_group(child, signal.SIGKILL)
            child.proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
