"""Webhook notifications against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket

import pytest

from ctpipe import notify
from tests.webhook import SECRET_PATH, SECRET_QUERY, Receiver


@pytest.fixture
def receiver(webhook: Receiver) -> Receiver:
    return webhook


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(notify.BACKOFF_ENV, "0.01")
    monkeypatch.delenv(notify.URL_ENV, raising=False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_payload_reaches_the_webhook_from_the_environment(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(notify.URL_ENV, receiver.url)
    caplog.set_level(logging.INFO, logger="httpx")
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ok = notify.notify("ctpipe.model.promoted", "fraud", "v3 promoted to champion",
                       {"version": 3, "batch_date": dt.date(2026, 3, 20)})
    assert ok is True
    [request] = receiver.requests
    assert request["path"] == f"{SECRET_PATH}?{SECRET_QUERY}"
    assert request["content_type"] == "application/json"
    body = json.loads(request["body"])
    assert body["event"] == "ctpipe.model.promoted" and body["use_case"] == "fraud"
    assert body["summary"] == "v3 promoted to champion"
    assert body["text"] == "fraud: v3 promoted to champion"
    assert body["details"] == {"version": 3, "batch_date": "2026-03-20"}
    sent_at = dt.datetime.fromisoformat(body["sent_at"])
    assert sent_at.utcoffset() == dt.timedelta(0) and sent_at >= before
    # httpx logs each request's URL at INFO: the line is there, the secret is not.
    assert "HTTP Request" in caplog.text and "127.0.0.1" in caplog.text
    assert "SECRET" not in caplog.text and "hunter2" not in caplog.text


def test_server_error_is_retried_until_delivered(receiver: Receiver) -> None:
    receiver.script = [(500, 0.0)]
    assert notify.notify("ctpipe.validation.failed", "demand", "batch quarantined",
                         url=receiver.url) is True
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]


def test_timeouts_and_rate_limits_are_retried_three_times_at_most(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(notify.TIMEOUT_ENV, "0.2")
    receiver.script = [(200, 1.0), (429, 0.0)]  # a reply too slow to wait for, then 429
    assert notify.notify("e", "demand", "s", url=receiver.url) is True
    assert len(receiver.requests) == 3

    receiver.requests.clear()
    receiver.script = [(503, 0.0)] * 4
    assert notify.notify("e", "demand", "s", url=receiver.url) is False
    assert len(receiver.requests) == 3
    assert "after 3 attempt(s): HTTP 503" in caplog.text


def test_client_error_is_not_retried(receiver: Receiver,
                                     caplog: pytest.LogCaptureFixture) -> None:
    receiver.script = [(400, 0.0)]
    assert notify.notify("e", "demand", "s", url=receiver.url) is False
    assert len(receiver.requests) == 1
    assert "after 1 attempt(s): HTTP 400" in caplog.text


def test_unreachable_webhook_warns_without_leaking_the_secret(
        caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    url = f"http://127.0.0.1:{port}{SECRET_PATH}?{SECRET_QUERY}"
    with caplog.at_level(logging.WARNING, logger="ctpipe.notify"):
        assert notify.notify("ctpipe.model.rolled_back", "fraud", "v2 serves again",
                             url=url) is False
    [warning] = [r for r in caplog.records if r.name == "ctpipe.notify"]
    assert warning.levelno == logging.WARNING
    text = warning.getMessage()
    assert f"127.0.0.1:{port}" in text and "after 3 attempt(s)" in text and "Connect" in text
    assert "SECRET" not in caplog.text and "hunter2" not in caplog.text


def test_no_url_means_no_request_and_no_noise(receiver: Receiver,
                                              monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(notify.URL_ENV, "  ")
    assert notify.webhook_url() is None
    assert notify.notify("e", "demand", "s") is False
    assert receiver.requests == [] and caplog.records == []


def test_malformed_url_is_a_warning_not_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    assert notify.notify("e", "demand", "s", url="ftp://example.invalid/hook") is False
    assert "not delivered after 1 attempt(s): UnsupportedProtocol" in caplog.text
    assert notify.notify("e", "demand", "s", url="http://127.0.0.1:99999/x") is False
    assert notify.notify("e", "demand", "s", details={("a", 1): "tuple key"},
                         url="http://127.0.0.1:1/x") is False
    assert "details are not JSON" in caplog.text


def test_origin_keeps_only_scheme_host_and_port() -> None:
    assert notify.origin("https://user:pw@hooks.slack.com/services/T/B/X?token=1") == \
        "https://hooks.slack.com:443"
    assert notify.origin("http://[::1]:8080/hook") == "http://[::1]:8080"
