"""Where ctpipe keeps its state, and the environment every entry point sets before Prefect loads.

Embedded by default: with no environment set, MLflow (SQLite + local artifacts), Prefect's home,
the landing zone, quarantine and audit log all live under one folder, ``CTPIPE_HOME``
(default ``./.ctpipe``). ``MLFLOW_TRACKING_URI`` and ``PREFECT_API_URL`` point the same code at
real servers.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Telemetry off everywhere: nothing may reach outside this machine.
_QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "true",
    # Each step's INFO line reaches the run's Logs tab in the UI; the terminal shows warnings.
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    # The first start migrates a new database; the 20 s default is too short on 2 cores.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow's HTTP client retries a dead server for about 4 minutes by default (7 retries,
    # backoff 2); our tasks retry with their own backoff instead, so a failure surfaces in
    # about half a minute with a clear message.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # Leases of concurrency slots on disk (under PREFECT_HOME), not in one server's memory:
    # a server restarted (or the next command's embedded server) still sees a dead holder's
    # lease, lets it lapse and frees the retraining slot.
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE":
        "prefect.server.concurrency.lease_storage.filesystem",
}


def home() -> Path:
    return Path(os.environ.get("CTPIPE_HOME", ".ctpipe")).expanduser().resolve()


def configure_environment() -> Path:
    """Set defaults for telemetry, Prefect's home and MLflow's store; call before importing Prefect.

    The one place ctpipe changes process-wide settings; no module does so when imported. The
    entry points call it once: the CLI (every command), the test suite's conftest, and a
    deployment's environment (deployments/prefect.yaml sets the same variables).
    Values already in the environment win, so an operator can point at real servers.
    """
    root = home()
    root.mkdir(parents=True, exist_ok=True)
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
    # GX logs every ephemeral context it creates at INFO: noise in every cycle's log.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # MLflow warns about pandas 3 and its own deprecations on every model logged.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    return root


def default_tracking_uri(root: Path | None = None) -> str:
    # Absolute sqlite URI: MLflow 3's own default would drop mlflow.db into the working directory.
    return f"sqlite:///{(root or home()) / 'mlflow.db'}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def artifact_root() -> Path:
    return home() / "mlartifacts"


def landing_dir(use_case: str, configured: str | None = None) -> Path:
    return Path(configured).expanduser().resolve() if configured else home() / "landing" / use_case


def quarantine_dir(use_case: str) -> Path:
    return home() / "quarantine" / use_case


def audit_log_path() -> Path:
    return home() / "audit" / "audit.jsonl"


def mlflow_ui_url() -> str:
    """Where operators open MLflow (``ctpipe server`` serves it here); used in artifact links."""
    return os.environ.get("CTPIPE_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


DATABASE_URL_ENV = "CTPIPE_DATABASE_URL"


def database_url() -> str:
    """ctpipe's own database (prediction log, live metrics, monitoring decisions).

    ``CTPIPE_DATABASE_URL`` (e.g. ``postgresql+psycopg://ctpipe:…@127.0.0.1:5432/ctpipe``), else
    a SQLite file under ``CTPIPE_HOME`` so a laptop needs no server.
    """
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{home() / 'ctpipe.db'}"


def redact_uri(uri: str) -> str:
    """The URI without its password (``postgresql://user:***@host/db``), for logs and screens."""
    parts = urlsplit(uri)
    if not parts.password and "password=" not in parts.query.lower():
        return uri  # urlunsplit would turn sqlite://// into sqlite://
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
    if parts.query:
        # libpq also takes the password as a query parameter (?password=...).
        query = "&".join(f"{key}=***" if key.lower() == "password" else f"{key}={value}"
                         for key, _, value in (p.partition("=") for p in parts.query.split("&")))
        parts = parts._replace(query=query)
    return urlunsplit(parts)
