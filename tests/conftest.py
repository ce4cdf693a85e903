"""Test environment: every store in a temporary folder, telemetry off, one Prefect server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports Prefect or MLflow: state goes to a throwaway folder, nothing phones out.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="ctpipe-tests-"))
os.environ["CTPIPE_HOME"] = str(_SESSION_HOME / "home")
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_HOME / 'home' / 'mlflow.db'}"
for key, value in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false",
                   "PREFECT_LOGGING_LEVEL": "INFO",
                   "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                   # Retry delays of 0.2, 0.4, 0.8 s instead of 2, 4, 8: same policy, less wait.
                   "CTPIPE_RETRY_BASE_SECONDS": "0.2",
                   # A paused run checks for its approval every second, not every ten.
                   "CTPIPE_APPROVAL_POLL_SECONDS": "1"}.items():
    os.environ[key] = value
os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def prefect_server():
    """One real Prefect server (subprocess) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def ctpipe_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CTPIPE_HOME with its own MLflow store for one test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CTPIPE_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    return home


@pytest.fixture
def webhook():
    """A local HTTP receiver for webhook notifications (tests/webhook.py)."""
    from tests.webhook import running_receiver

    with running_receiver() as receiver:
        yield receiver


def _postgres_admin():
    """An autocommit connection to the local server's ``postgres`` database, or a skip reason."""
    import psycopg

    try:
        return psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres",
                               autocommit=True, connect_timeout=3), None
    except psycopg.OperationalError as error:
        return None, f"no PostgreSQL server at 127.0.0.1:5432 ({str(error).strip()})"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty ctpipe database URL: a SQLite file, or a new PostgreSQL database created
    for this test and dropped after it. Skips (with the reason) only when no server answers."""
    from ctpipe.db import dispose_databases

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ctpipe.db'}"
        dispose_databases()
        return
    import uuid

    admin, reason = _postgres_admin()
    if admin is None:
        print(reason)
        pytest.skip(reason)
    name = f"ctpipe_t_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            dispose_databases()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
