"""Per-model file locks: a promotion and a rollback never interleave their check and move.

Both read the champion, decide, then move the alias. Without a lock a rollback landing between
a promotion's check and its move is silently overwritten. Two locks per model, both
``fcntl.flock`` on files under ``CTPIPE_HOME/locks``:

- ``<model>.lock`` (exclusive): held by a promotion and by a rollback for the whole
  read-check-move-tag sequence, so the two are serialised.
- ``<model>.rollback`` (intent): a rollback holds it shared from before it waits for the first
  lock until it is done; a promotion takes it exclusively, without waiting, right before it
  moves the alias. Failing to get it means a rollback is waiting, and the promotion stands
  down (``ChampionChanged``): a rollback asked for during a promotion always wins, even when the
  promotion already holds the first lock. A rollback arriving after that point waits for the
  move and then finds its plan stale (refused, nothing overwritten).

Scope: these locks cover every process that shares one ``CTPIPE_HOME`` on one machine (the
kernel drops a crashed holder's lock, so nothing stays stuck). They do not cover machines that
share only the MLflow server; multi-machine deployments need the database lock of the next
issue.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from ctpipe import settings

TIMEOUT_ENV = "CTPIPE_LOCK_TIMEOUT_SECONDS"
# Generous: a holder only does a few registry calls, but each may retry a slow server.
_DEFAULT_TIMEOUT = 300.0
_POLL_SECONDS = 0.02
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class LockTimeout(TimeoutError):
    """Another promotion or rollback of the model held the lock for too long."""


@contextlib.contextmanager
def held(path: Path, *, shared: bool = False) -> Iterator[None]:
    """An exclusive (or ``shared``) lock on ``path`` (created with its folder), waiting as long
    as it takes: for short critical sections of ctpipe's own (a record's read-merge-write, a
    store's first creation) and a run's hold on its batch, which the kernel releases if the
    holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def lock_path(model_name: str, suffix: str = "lock") -> Path:
    # Registered model names may hold characters a file name cannot; those get a digest so two
    # names never share a lock file.
    stem = model_name if _SAFE.match(model_name) else (
        re.sub(r"[^A-Za-z0-9._-]", "_", model_name)[:60] + "-"
        + hashlib.sha256(model_name.encode()).hexdigest()[:12])
    folder = settings.home() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{stem}.{suffix}"


def _timeout() -> float:
    return float(os.environ.get(TIMEOUT_ENV) or _DEFAULT_TIMEOUT)


def _wait_for(fd: int, mode: int, path: Path, model_name: str) -> None:
    """flock with a bounded wait (flock itself would wait forever on a hung holder)."""
    limit = _timeout()
    deadline = time.monotonic() + limit
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                holder = _holder(path)
                raise LockTimeout(
                    f"{model_name}: another promotion or rollback held {path} for more than "
                    f"{limit:g} s{holder}; try again once it is done") from None
            time.sleep(_POLL_SECONDS)


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" (holder: {text})" if text else ""


class ReplayRunning(RuntimeError):
    """Another replay of the same use case runs in this CTPIPE_HOME."""


@contextlib.contextmanager
def replay_lock(model_name: str, holder: str) -> Iterator[None]:
    """Exclusive, never waiting: one replay per use case and home at a time. Two would reset
    and rewrite the same replay folder and registered model under each other."""
    path = lock_path(model_name, "replay")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReplayRunning(
                f"{model_name}: another replay of it is running in {settings.home()}"
                f"{_holder(path)}: let it finish, or set CTPIPE_HOME to another folder for "
                "this one (with MLFLOW_TRACKING_URI set, point it at another registry too)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {holder}".encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def champion_lock(model_name: str, holder: str) -> Iterator[None]:
    """Exclusive: the read-check-move-tag sequence of one promotion or rollback."""
    path = lock_path(model_name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _wait_for(fd, fcntl.LOCK_EX, path, model_name)
        # Who holds it, for the timeout message of whoever waits next.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {holder}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def rollback_announced(model_name: str) -> Iterator[None]:
    """Shared: tells a promotion about to move the alias that a rollback is waiting."""
    path = lock_path(model_name, "rollback")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _wait_for(fd, fcntl.LOCK_SH, path, model_name)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def rollbacks_held_off(model_name: str) -> Iterator[bool]:
    """Yields True when a rollback is waiting; else holds rollbacks off until the block ends.

    Never waits: the caller holds ``champion_lock``, which the waiting rollback wants next.
    """
    path = lock_path(model_name, "rollback")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waiting = False
        except BlockingIOError:
            waiting = True
        yield waiting
    finally:
        os.close(fd)
