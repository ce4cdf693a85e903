"""The core's steps as named Prefect tasks: retries for the ones that talk to MLflow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from ctpipe import retry

# DataFrames flow between tasks: hashing them for cache keys would cost more than the work.
TASK = {"cache_policy": NO_CACHE, "persist_result": False}
# Steps that talk to MLflow: a store that is unreachable for a moment is retried with backoff.
REMOTE_TASK = {**TASK, **retry.task_retry_options()}

def _step_function(name: str) -> Callable[..., Any]:
    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    # Prefect keys a task by its function's qualified name: one key (and one run counter)
    # per step, not one shared by every step.
    call.__name__ = call.__qualname__ = name.replace("-", "_")
    return call


_TASKS: dict[tuple[str, bool], Any] = {}


def run_step(name: str, fn: Callable[..., Any], *args: Any, remote: bool = False,
             **kwargs: Any) -> Any:
    """Run one step of the core as a named Prefect task (retried when it talks to MLflow)."""
    if (name, remote) not in _TASKS:
        _TASKS[name, remote] = task(name=name, **(REMOTE_TASK if remote else TASK))(
            _step_function(name))
    return _TASKS[name, remote](fn, *args, **kwargs)
