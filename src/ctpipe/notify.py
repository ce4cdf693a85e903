"""Webhook notifications (failures, promotions, rollbacks): best effort, never raises.

The URL comes from ``CTPIPE_WEBHOOK_URL`` (unset or empty: notifications are off). The JSON body
carries a ``text`` field, so Slack and Teams incoming webhooks show it as is. Webhook URLs often
hold secrets (Slack tokens in the path, ``?token=``): logs name only ``scheme://host:port``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import urllib.parse

import httpx

URL_ENV = "CTPIPE_WEBHOOK_URL"
TIMEOUT_ENV = "CTPIPE_WEBHOOK_TIMEOUT_SECONDS"
BACKOFF_ENV = "CTPIPE_WEBHOOK_BACKOFF_SECONDS"
ATTEMPTS = 3

_log = logging.getLogger(__name__)
_SENT_TO: set[str] = set()  # full webhook URLs, so httpx's request log can be redacted


def webhook_url() -> str | None:
    return os.environ.get(URL_ENV, "").strip() or None


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: what logs may show of it (no user, path or query)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def payload(event: str, use_case: str, summary: str, details: dict | None = None,
            sent_at: dt.datetime | None = None) -> dict:
    moment = sent_at or dt.datetime.now(dt.UTC)
    return {"event": event, "use_case": use_case, "summary": summary,
            "text": f"{use_case}: {summary}", "details": details or {},
            "sent_at": moment.isoformat(timespec="seconds")}


def notify(event: str, use_case: str, summary: str, details: dict | None = None, *,
           url: str | None = None) -> bool:
    """POST the event to the webhook; True once it answered 2xx.

    Connection errors, timeouts, 429 and 5xx are retried (``ATTEMPTS`` in all, backoff 1x, 2x
    ``CTPIPE_WEBHOOK_BACKOFF_SECONDS``); any other answer is final. A notification must never
    break the cycle or the rollback that sends it, so every failure ends in a warning.
    """
    target = url or webhook_url()
    if not target:
        return False
    where = origin(target)
    try:
        body = json.dumps(payload(event, use_case, summary, details), default=str)
    except (TypeError, ValueError) as exc:  # circular details or non-string keys
        _log.warning("webhook %s: %s not sent, details are not JSON: %s", where, event, exc)
        return False
    _install_redaction()
    timeout = _env_seconds(TIMEOUT_ENV, 5.0)
    backoff = _env_seconds(BACKOFF_ENV, 1.0)
    attempt, problem = 0, ""
    try:
        _SENT_TO.update({target, str(httpx.URL(target))})  # httpx logs the normalised form
        with httpx.Client(timeout=timeout) as client:
            while attempt < ATTEMPTS:
                attempt += 1
                problem, transient = _post(client, target, body)
                if not problem:
                    return True
                if not transient or attempt == ATTEMPTS:
                    break
                time.sleep(backoff * 2 ** (attempt - 1))
    except Exception as exc:  # a malformed URL, a TLS setup error: still only a warning
        problem = _scrub(f"{type(exc).__name__}: {exc}", target)
    _log.warning("webhook %s: %s for %s not delivered after %d attempt(s): %s",
                 where, event, use_case, max(attempt, 1), problem)
    return False


def _post(client: httpx.Client, target: str, body: str) -> tuple[str, bool]:
    """One attempt: (problem or "", whether it is worth retrying)."""
    try:
        response = client.post(target, content=body,
                               headers={"Content-Type": "application/json"})
    except httpx.TransportError as exc:  # connect, read and write errors and timeouts
        # A URL httpx cannot send to (ftp://, no scheme) stays wrong however often it is tried.
        permanent = isinstance(exc, httpx.UnsupportedProtocol)
        return _scrub(f"{type(exc).__name__}: {exc}", target), not permanent
    status = response.status_code
    if 200 <= status < 300:
        return "", False
    return f"HTTP {status}", status == 429 or status >= 500


def _scrub(message: str, target: str) -> str:
    # httpx puts the URL into some messages; keep its secret parts out of the log.
    parts = urllib.parse.urlsplit(target)
    message = message.replace(target, origin(target))
    for secret in (parts.query, parts.path if len(parts.path) > 1 else ""):
        message = message.replace(secret, "…") if secret else message
    return message


def _env_seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, "") or default))
    except ValueError:
        _log.warning("%s=%r is not a number; using %s", name, os.environ.get(name), default)
        return default


class _RedactWebhooks(logging.Filter):
    """httpx logs every request's full URL at INFO; show webhooks by their origin only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and _SENT_TO:
            record.args = tuple(origin(str(a)) + "/…" if str(a) in _SENT_TO else a
                                for a in record.args)
        return True


_FILTER = _RedactWebhooks()


def _install_redaction() -> None:
    logger = logging.getLogger("httpx")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
