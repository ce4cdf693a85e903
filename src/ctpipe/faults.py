"""Test-only pause points: hold a process at a named point so a test can race it.

A race between two processes (a promotion and a rollback, say) cannot be tested by timing
alone. Code that matters calls ``pause_point("promote.before-move")``; a test starts that code
in a subprocess with ``CTPIPE_TEST_PAUSE_AT=promote.before-move`` and
``CTPIPE_TEST_PAUSE_FILE=/some/path``. On reaching the point the process creates the file (the
test's signal that it is there) and waits until the test removes it. Unset, a pause point costs
one environment lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AT_ENV = "CTPIPE_TEST_PAUSE_AT"
PAUSE_FILE_ENV = "CTPIPE_TEST_PAUSE_FILE"
PAUSE_TIMEOUT_ENV = "CTPIPE_TEST_PAUSE_TIMEOUT_SECONDS"
_DEFAULT_TIMEOUT = 60.0
_POLL_SECONDS = 0.02


def pause_point(name: str) -> None:
    """Wait here while the pause file exists, when the environment names this point.

    Bounded: a test that never releases the pause fails the paused process with a TimeoutError
    instead of hanging the suite.
    """
    if os.environ.get(PAUSE_AT_ENV) != name:
        return
    file = os.environ.get(PAUSE_FILE_ENV)
    if not file:
        raise RuntimeError(f"{PAUSE_AT_ENV}={name} needs {PAUSE_FILE_ENV}=<path> too")
    path = Path(file)
    timeout = float(os.environ.get(PAUSE_TIMEOUT_ENV) or _DEFAULT_TIMEOUT)
    path.touch()
    deadline = time.monotonic() + timeout
    while path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"pause point {name}: {path} still there after {timeout:g} s")
        time.sleep(_POLL_SECONDS)
