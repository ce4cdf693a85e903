"""Labels files set aside while a run read the labelled history, put in the audit trail.

A labels file that breaks a rule is moved to the quarantine by the read that finds it
(landing.labelled_dates), deep inside a drift check, a training window or monitoring's join.
The runs that read labels audit, at their start and end, every such set-aside the trail does
not hold yet, then mark its folder: a run killed in between audits it on the next run, once
(the decision's id is the folder's).
"""

from __future__ import annotations

import hashlib

from ctpipe.steps.ports import Runtime
from ctpipe.trace import Decision


def audit_labels_set_aside(rt: Runtime) -> list[Decision]:
    """Audit each labels set-aside not yet in the trail; the decisions published."""
    published = []
    for held in rt.store.unaudited_labels_set_aside():
        decision = Decision(
            kind="labels.set_aside", use_case=rt.use_case, subject=f"batch {held.day}",
            reason=f"labels of batch {held.day} set aside: {held.problem}; the batch stays "
                   "unlabelled until a corrected file is put back",
            details={"batch_date": held.day.isoformat(), "folder": str(held.folder)},
            id=hashlib.sha256(str(held.folder).encode()).hexdigest()[:32])
        if not rt.traced(decision.id):
            rt.publish(decision)
            published.append(decision)
        rt.store.mark_audited(held)
    return published
