"""`ctpipe server`: real Prefect and MLflow servers on loopback, state in CTPIPE_HOME, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

CTPIPE = Path(sys.executable).with_name("ctpipe")
READY_TIMEOUT_S = 180
# Local requests must not go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["CTPIPE_HOME"] = str(home)
    # conftest points these at the session's stores; the server must derive its own from home.
    for key in ("PREFECT_HOME", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    # An operator's exported PREFECT_API_URL (here: nothing listens there) must not leak into the
    # server, where it would become the API the UI calls.
    env["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    return env


def _status(url: str) -> int:
    with _OPENER.open(url, timeout=5) as response:
        return response.status


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _listeners(port: int) -> list[str]:
    """Local addresses (hex, as the kernel lists them) of the sockets listening on port."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


class _Output:
    """Collects the server's stdout on a thread, so that waiting for a line can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if not self._thread.is_alive():
                return any(text in line for line in self.lines)
            time.sleep(0.2)
        return False

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_server_starts_both_on_loopback_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pp, mp = _free_port(), _free_port()
    proc = subprocess.Popen([str(CTPIPE), "server", "--prefect-port", str(pp),
                             "--mlflow-port", str(mp)], env=_env(home), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = _Output(proc)
    try:
        assert out.wait_for("Ctrl-C stops both", READY_TIMEOUT_S), out.text
        assert f"Prefect UI:   http://127.0.0.1:{pp}" in out.text
        assert f"MLflow UI:    http://127.0.0.1:{mp}" in out.text
        assert f"export PREFECT_API_URL=http://127.0.0.1:{pp}/api" in out.text
        assert f"export CTPIPE_MLFLOW_UI_URL=http://127.0.0.1:{mp}" in out.text

        assert _status(f"http://127.0.0.1:{pp}/api/health") == 200
        assert _status(f"http://127.0.0.1:{mp}/health") == 200
        assert _status(f"http://127.0.0.1:{mp}/") == 200  # the UI page, not just the API
        with _OPENER.open(f"http://127.0.0.1:{pp}/ui-settings", timeout=5) as response:
            assert json.load(response)["api_url"] == f"http://127.0.0.1:{pp}/api"
        for port in (pp, mp):
            # Bound to 127.0.0.1 exactly: another loopback address of this machine is refused,
            # and the kernel lists one IPv4 listener on 127.0.0.1 only.
            assert _refused("127.0.0.2", port)
            assert _listeners(port) == ["0100007F"]

        assert (home / "prefect" / "prefect.db").is_file()
        assert (home / "mlflow.db").is_file()
        assert (home / "logs" / "prefect-server.log").is_file()
        assert (home / "logs" / "mlflow-server.log").is_file()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, out.text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.wait_for("stopped", 5), out.text
    for port in (pp, mp):
        assert _refused("127.0.0.1", port)


@pytest.mark.parametrize("busy", ["prefect", "mlflow"])
def test_server_refuses_a_port_in_use(tmp_path: Path, busy: str) -> None:
    home = tmp_path / "home"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"prefect": _free_port(), "mlflow": _free_port(), busy: port}
        result = subprocess.run([str(CTPIPE), "server", "--prefect-port", str(ports["prefect"]),
                                 "--mlflow-port", str(ports["mlflow"])], env=_env(home),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port}" in result.stdout
    assert not (home / "logs").exists()  # refused before starting anything
