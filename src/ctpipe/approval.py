"""Human approval of a promotion: the decision an approver gives and what it leaves on a version."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class ApprovalAnswer(BaseModel):
    """What an approver gives, in the Prefect UI's resume form or via `ctpipe approve/reject`."""

    decision: Literal["approve", "reject"] = Field(
        description="approve promotes the challenger to champion; reject keeps the champion.")
    approver: str = Field(min_length=1, max_length=200,
                          description="Who decides (name or staff id), recorded on the version.")
    reason: str = Field(min_length=1, max_length=2000,
                        description="Why, recorded on the version and in the audit trail.")


def decision_tags(answer: ApprovalAnswer | None, timeout_seconds: int,
                  now: dt.datetime | None = None) -> dict[str, str]:
    """Tags for the version: the approver's decision, or a rejection by timeout."""
    at = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    if answer is None:
        return {"approval_decision": "timeout", "approver": "nobody (timeout)",
                "approval_reason": f"no decision within {timeout_seconds} s: rejected",
                "approval_at": at}
    return {"approval_decision": "approved" if answer.decision == "approve" else "rejected",
            "approver": answer.approver, "approval_reason": answer.reason, "approval_at": at}
