"""Every decision leaves one trace: a ``Decision`` value, and the one sink that publishes it.

The core returns ``Decision`` values and never writes a trace itself. A ``TraceSink`` turns
each one into its audit record, its Prefect artifact, its event and (where asked) its
notification, exactly once: publishing the same decision twice is a no-op. Where each of the
four goes is plugged in by the shell (flows/ plugs in Prefect artifacts and events; the CLI,
with Prefect down, only the audit trail and the webhook).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctpipe import audit


@dataclass(frozen=True)
class Artifact:
    """What a decision shows in the Prefect UI: markdown, plus an optional table or link."""

    key: str  # e.g. "drift"; the sink prefixes it with the use case
    description: str
    markdown: str
    table: tuple[Mapping[str, Any], ...] | None = None
    table_key: str | None = None
    table_description: str | None = None
    link: tuple[str, str] | None = None  # (url, text)
    link_key: str | None = None


@dataclass(frozen=True)
class Decision:
    """One verdict: who decided what about which subject, and why."""

    kind: str  # audit action, e.g. "gate.decided", "model.promoted"
    use_case: str
    subject: str  # "batch 2026-03-20", "ctpipe-demand v7"
    reason: str
    actor: str | None = None  # None: the process's user (audit.actor())
    details: Mapping[str, Any] = field(default_factory=dict)
    artifact: Artifact | None = None
    event: str | None = None  # e.g. "ctpipe.model.promoted"
    event_payload: Mapping[str, Any] = field(default_factory=dict)
    event_labels: Mapping[str, str] = field(default_factory=dict)
    notify: str | None = None  # one-line text for the webhook; None: no notification
    notify_details: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


ArtifactWriter = Callable[[Decision], None]
EventEmitter = Callable[[Decision], None]
Notifier = Callable[[Decision], None]


class TraceSink:
    """Writes each decision's audit record, artifact, event and notification exactly once."""

    def __init__(self, audit_path: Path, *, artifacts: ArtifactWriter | None = None,
                 events: EventEmitter | None = None, notifier: Notifier | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.audit_path = audit_path
        self._artifacts, self._events, self._notifier = artifacts, events, notifier
        self._log = log
        self._published: set[str] = set()
        self.published: list[Decision] = []

    def traced(self, decision_id: str) -> bool:
        """Whether the audit trail already holds this decision (written by any process)."""
        if decision_id in self._published:
            return True
        if not self.audit_path.is_file():
            return False
        needle = f'"decision_id": "{decision_id}"'
        with self.audit_path.open(encoding="utf-8") as fh:
            return any(needle in line for line in fh)

    def publish(self, decision: Decision) -> None:
        if decision.id in self._published:
            return
        self._published.add(decision.id)
        # The audit record first: it is the evidence, and it must exist even if the UI or the
        # event bus is down (audit.record fsyncs).
        audit.record(decision.kind, decision.use_case, decision.reason, who=decision.actor,
                     path=self.audit_path,
                     details={"subject": decision.subject, "decision_id": decision.id,
                              **decision.details})
        if decision.artifact is not None and self._artifacts is not None:
            self._artifacts(decision)
        if decision.event is not None and self._events is not None:
            self._events(decision)
        if decision.notify is not None and self._notifier is not None:
            self._notifier(decision)
        if self._log is not None:
            self._log(f"{decision.kind} ({decision.subject}): {decision.reason[:500]}")
        self.published.append(decision)
