"""Which failures are worth retrying, and the Prefect task retry policy built on that.

Transient means "the MLflow or Prefect API (or the SQLite store) was unreachable for a moment":
refused or reset connections, timeouts, HTTP 429 and 5xx, a locked SQLite database. Anything
else (bad data, a refused gate, a bug) fails at once, because repeating it changes nothing.
"""

from __future__ import annotations

import inspect
import os
import re
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import httpx
import requests

from ctpipe.notify import origin

if TYPE_CHECKING:  # only for annotations: see _is_mlflow_exception for why not at runtime
    from prefect import Task
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import State

RETRIES_ENV = "CTPIPE_TASK_RETRIES"
BASE_ENV = "CTPIPE_RETRY_BASE_SECONDS"
JITTER_FACTOR = 0.2

# MlflowException.error_code names that mean "try again later".
_MLFLOW_UNAVAILABLE = frozenset({"TEMPORARILY_UNAVAILABLE", "DEADLINE_EXCEEDED",
                                 "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"})
# MLflow's REST client wraps connection failures in a plain MlflowException (error_code
# INTERNAL_ERROR) whose message is all that is left when the original is not chained.
_UNAVAILABLE_TEXT = re.compile(
    r"max retries exceeded|connection refused|failed to establish a new connection"
    r"|connection aborted|connection reset|remote end closed|timeout exception|timed out"
    r"|temporarily unavailable|database is locked|error code (429|5\d\d)\b"
    r"|too many (429|5\d\d) error responses",
    re.IGNORECASE)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc``, or an exception it was raised from or while handling, is transient.

    KeyboardInterrupt, SystemExit and cancellation are never retried, whatever they interrupted.
    """
    if not isinstance(exc, Exception):
        return False
    return any(_transient_itself(e) for e in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if current.__cause__ is not None:
            todo.append(current.__cause__)
        if current.__context__ is not None and not current.__suppress_context__:
            todo.append(current.__context__)
    return seen


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, httpx.UnsupportedProtocol):  # a TransportError, but a wrong URL
        return False
    if isinstance(exc, (ConnectionError, TimeoutError, httpx.TransportError,
                        requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True
    if isinstance(exc, (httpx.HTTPStatusError, requests.exceptions.HTTPError)):
        # Covers prefect.exceptions.PrefectHTTPStatusError, an httpx.HTTPStatusError subclass.
        response = exc.response
        return response is not None and _transient_status(response.status_code)
    if isinstance(exc, sqlite3.OperationalError) or _is_sqlalchemy_operational(exc):
        return "database is locked" in str(exc)
    if _is_mlflow_exception(exc):
        code = getattr(exc, "error_code", "")
        return code in _MLFLOW_UNAVAILABLE or bool(_UNAVAILABLE_TEXT.search(str(exc)))
    return False


def _transient_status(status: int) -> bool:
    return status == 429 or 500 <= status < 600


# Looked up in sys.modules instead of imported: importing MLflow costs seconds, and importing
# Prefect here would fix its settings before settings.configure_environment() runs. An exception
# of a library that was never imported cannot exist, so a missing module means "no".
def _is_mlflow_exception(exc: BaseException) -> bool:
    module = sys.modules.get("mlflow.exceptions")
    return module is not None and isinstance(exc, module.MlflowException)


def _is_sqlalchemy_operational(exc: BaseException) -> bool:
    module = sys.modules.get("sqlalchemy.exc")
    return module is not None and isinstance(exc, module.OperationalError)


def failure_of(state: State) -> BaseException | None:
    """The exception a failed Prefect state carries, if any."""
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return data  # the task engine builds Failed(data=exc) for a raised exception
    try:
        result = state.result(raise_on_failure=False)
    except Exception:  # an unreadable persisted result: not something a retry fixes
        return None
    if inspect.iscoroutine(result):
        result.close()  # called from async code: a coroutine we cannot await here
        return None
    return result if isinstance(result, BaseException) else None


def retry_condition(task: Task[..., Any], task_run: TaskRun, state: State) -> bool:
    """Prefect ``retry_condition_fn``: retry only transient failures."""
    exc = failure_of(state)
    return exc is not None and is_transient(exc)


def retry_delays(retries: int, base: float) -> list[float]:
    return [base * 2 ** i for i in range(retries)]


def task_retry_options() -> dict:
    """Keyword arguments for ``@task(**task_retry_options())``.

    Read from the environment when called, and ``@task`` calls it when the flows module is
    imported: set ``CTPIPE_TASK_RETRIES`` (default 3) and ``CTPIPE_RETRY_BASE_SECONDS``
    (default 2, giving 2, 4, 8 s) before that import; later changes do not reach the tasks.
    """
    retries = int(_number(RETRIES_ENV, 3))
    base = _number(BASE_ENV, 2.0)
    return {"retries": retries, "retry_delay_seconds": retry_delays(retries, base),
            "retry_jitter_factor": JITTER_FACTOR, "retry_condition_fn": retry_condition}


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number") from None
    if value < 0 or value != value:
        raise ValueError(f"{name}={raw!r}: expected a number >= 0")
    return value


def clear_failure(exc: BaseException, what: str, attempts: int) -> str:
    """One line for a flow's failure message, naming the service and the root cause.

    ``what`` names the service, e.g. ``mlflow_label(settings.tracking_uri())``.
    """
    chain = _chain(exc)
    transient = [e for e in chain if _transient_itself(e)]
    cause = transient[-1] if transient and is_transient(exc) else exc
    text = " ".join(str(cause).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    detail = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if cause is not exc:
        return f"{what} unreachable after {tries}: {detail}"
    return f"{what} failed after {tries}: {detail}"


def mlflow_label(tracking_uri: str) -> str:
    """``MLflow at scheme://host:port`` (no credentials or path), or the local store's URI."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"MLflow at {origin(tracking_uri)}"
    return f"MLflow store {tracking_uri}"


def prefect_label(api_url: str | None) -> str:
    return f"Prefect API at {origin(api_url)}" if api_url else "Prefect's local server"
