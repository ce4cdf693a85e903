"""The trace sink the flows hand every decision to: audit record, Prefect artifact, event and
webhook, exactly once (ctpipe.trace.TraceSink), plus one INFO line in the run's Logs tab."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.events import emit_event

from ctpipe import notify
from ctpipe.trace import Decision, TraceSink
from ctpipe.workspace import Workspace


def artifact_key(ws: Workspace, what: str) -> str:
    return f"{ws.name}-{'backtest-' if ws.backtest else ''}{what}".lower().replace("_", "-")


def emit(ws: Workspace, event: str, payload: dict, labels: dict[str, str] | None = None) -> None:
    """A ctpipe event about the use case; the payload names it so triggers can template it."""
    ref = ws.ref or ws.name
    if ref.endswith((".yaml", ".yml")):  # a triggered run may start in another folder
        ref = str(Path(ref).resolve())
    emit_event(event=event, resource={"prefect.resource.id": ws.event_resource,
                                      "ctpipe.use-case": ws.name, **(labels or {})},
               payload={"use_case": ref, **payload})


def prefect_sink(ws: Workspace, *, artifacts_too: bool = True,
                 events: bool = True) -> TraceSink:
    """Audit record, Prefect artifact, event and webhook for each decision, once.

    Outside a flow run (the CLI's rollback, which must work with Prefect down) there is no run
    to hold an artifact, and with no Prefect server configured no event is sent.
    """

    def artifacts(d: Decision) -> None:
        a = d.artifact
        if a.table is not None:
            create_table_artifact([dict(row) for row in a.table],
                                  key=artifact_key(ws, a.table_key or f"{a.key}-table"),
                                  description=a.table_description or a.description)
        if a.link is not None:
            create_link_artifact(a.link[0], link_text=a.link[1],
                                 key=artifact_key(ws, a.link_key or f"{a.key}-link"),
                                 description=a.description)
        create_markdown_artifact(a.markdown, key=artifact_key(ws, a.key),
                                 description=a.description)

    def event(d: Decision) -> None:
        emit(ws, d.event, dict(d.event_payload), dict(d.event_labels))

    def notifier(d: Decision) -> None:
        notify.notify(d.event or f"ctpipe.{d.kind}", ws.name, d.notify, dict(d.notify_details))

    return TraceSink(ws.audit_path, artifacts=artifacts if artifacts_too else None,
                     events=event if events else None,
                     notifier=notifier, log=lambda line: run_logger().info(line))


def run_logger() -> Any:
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a run (the CLI's rollback): the console
        return logging.getLogger("ctpipe")


