"""Transient-failure classification and the Prefect task retry policy, on real exceptions."""

from __future__ import annotations

import socket
import sqlite3

import httpx
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)
from mlflow.tracking import MlflowClient
from prefect import flow, task
from prefect.exceptions import PrefectHTTPStatusError

from ctpipe.retry import clear_failure, is_transient, mlflow_label, task_retry_options
from ctpipe.training import NotEnoughData


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prefect_status(status: int) -> PrefectHTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:4200/api/task_runs/")
    response = httpx.Response(status, request=request, json={"detail": "x"})
    return PrefectHTTPStatusError.from_httpx_error(
        httpx.HTTPStatusError("failed", request=request, response=response))


def _raised(outer: type[BaseException], inner: BaseException, *, suppress: bool = False,
            explicit: bool = False) -> BaseException:
    """``outer`` raised while handling ``inner`` (implicitly, ``from inner`` or ``from None``)."""
    try:
        try:
            raise inner
        except BaseException as caught:
            if suppress:
                raise outer("wrapped") from None
            if explicit:
                raise outer("wrapped") from caught
            raise outer("wrapped")  # noqa: B904 - implicit chaining is what is tested
    except BaseException as exc:
        return exc


CASES = [
    (ConnectionRefusedError(111, "Connection refused"), True),
    (ConnectionResetError(104, "Connection reset by peer"), True),
    (TimeoutError("timed out"), True),
    (httpx.ConnectError("All connection attempts failed"), True),
    (httpx.ReadTimeout("read timed out"), True),
    (httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."), False),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    (requests.exceptions.ConnectionError("refused"), True),
    (requests.exceptions.ReadTimeout("slow"), True),
    (_prefect_status(503), True),
    (_prefect_status(429), True),
    (_prefect_status(404), False),
    (_prefect_status(422), False),
    (MlflowException("registry is restarting", error_code=TEMPORARILY_UNAVAILABLE), True),
    (MlflowException("API request to endpoint /api/2.0/mlflow/registered-models/get failed "
                     "with error code 502 != 200. Response body: 'Bad Gateway'"), True),
    (MlflowException("Registered model 'x' not found", error_code=RESOURCE_DOES_NOT_EXIST),
     False),
    (MlflowException("Invalid value 'abc' for parameter 'timeout'"), False),
    (sqlite3.OperationalError("database is locked"), True),
    (sqlite3.OperationalError("no such table: model_versions"), False),
    (ValueError("holdout metric is NaN"), False),
    (KeyError("champion"), False),
    (NotEnoughData("4 labelled batches, the training window needs 5"), False),
    (KeyboardInterrupt(), False),
    (_raised(RuntimeError, ConnectionRefusedError(111, "refused"), explicit=True), True),
    (_raised(MlflowException, ConnectionRefusedError(111, "refused")), True),
    (_raised(ValueError, ConnectionRefusedError(111, "refused"), suppress=True), False),
    (_raised(KeyboardInterrupt, ConnectionRefusedError(111, "refused")), False),
]


@pytest.mark.parametrize(("exc", "expected"), CASES,
                         ids=[f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(CASES)])
def test_classification(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_mlflow_server_down_is_transient_and_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(MlflowException) as info:
        MlflowClient(tracking_uri=uri).search_experiments()
    assert is_transient(info.value)
    # The message alone is enough when MLflow drops the chain (it raises without ``from``).
    assert is_transient(MlflowException(str(info.value)))
    line = clear_failure(info.value, mlflow_label(uri), attempts=4)
    assert line.startswith(f"MLflow at {uri} unreachable after 4 attempts: ")
    assert "ConnectionRefusedError" in line and "\n" not in line


def test_clear_failure_of_a_permanent_error() -> None:
    line = clear_failure(ValueError("holdout metric is NaN"), "MLflow store sqlite:///x", 1)
    assert line == "MLflow store sqlite:///x failed after 1 attempt: ValueError: " \
        "holdout metric is NaN"


def test_options_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTPIPE_TASK_RETRIES", raising=False)
    monkeypatch.delenv("CTPIPE_RETRY_BASE_SECONDS", raising=False)
    options = task_retry_options()
    assert options["retries"] == 3 and options["retry_delay_seconds"] == [2.0, 4.0, 8.0]
    assert options["retry_jitter_factor"] == 0.2
    monkeypatch.setenv("CTPIPE_TASK_RETRIES", "1")
    monkeypatch.setenv("CTPIPE_RETRY_BASE_SECONDS", "0.5")
    assert task_retry_options()["retry_delay_seconds"] == [0.5]
    monkeypatch.setenv("CTPIPE_TASK_RETRIES", "many")
    with pytest.raises(ValueError, match="CTPIPE_TASK_RETRIES='many': expected a number"):
        task_retry_options()


def _flaky_flow(failures: list[BaseException], calls: list[int]):  # noqa: ANN202
    @task(name="flaky", persist_result=False, **task_retry_options())
    def flaky() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    @flow(name="retry-test", persist_result=False)
    def run() -> str:
        return flaky()

    return run


@pytest.fixture
def tiny_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTPIPE_TASK_RETRIES", "3")
    monkeypatch.setenv("CTPIPE_RETRY_BASE_SECONDS", "0.01")


@pytest.mark.usefixtures("prefect_server", "tiny_delays")
def test_task_retries_transient_failures_until_it_succeeds() -> None:
    calls: list[int] = []
    failures: list[BaseException] = [ConnectionError("MLflow went away"),
                                     httpx.ConnectError("Prefect API restarting")]
    assert _flaky_flow(failures, calls)() == "ok"
    assert len(calls) == 3


@pytest.mark.usefixtures("prefect_server", "tiny_delays")
def test_task_fails_at_once_on_a_permanent_error() -> None:
    calls: list[int] = []
    with pytest.raises(ValueError, match="bad config"):
        _flaky_flow([ValueError("bad config")], calls)()
    assert len(calls) == 1


@pytest.mark.usefixtures("prefect_server", "tiny_delays")
def test_task_gives_up_after_the_configured_retries() -> None:
    calls: list[int] = []
    failures: list[BaseException] = [ConnectionError(f"down {i}") for i in range(10)]
    with pytest.raises(ConnectionError, match="down 3"):
        _flaky_flow(failures, calls)()
    assert len(calls) == 4
