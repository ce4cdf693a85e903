"""Labels files set aside while a run read the labelled history, put in the audit trail.

A labels file that breaks a rule is moved to the quarantine by the read that finds it
(landing.labelled_dates), deep inside a drift check, a training window or monitoring's join.
The runs that read labels audit, at their start and end, every such set-aside the trail does
not hold yet, then mark its folder: a run killed in between audits it on the next run, once
(the decision's id is the folder's and its writing time).
"""

from __future__ import annotations

import hashlib

from ctpipe.steps.ports import Runtime
from ctpipe.trace import Decision


def audit_labels_set_aside(rt: Runtime) -> list[Decision]:
    """Audit each labels set-aside not yet in the trail; the decisions published."""
    published = []
    for aside in rt.store.unaudited_labels_set_aside():
        # The folder and when it was written: a folder name a retention job freed and a later
        # set-aside took again is another decision.
        key = f"{aside.folder}|{aside.written_at}"
        decision = Decision(
            kind="labels.set_aside", use_case=rt.use_case, subject=f"batch {aside.day}",
            reason=f"labels of batch {aside.day} were set aside: {aside.problem} (the file is "
                   f"in {aside.folder})",
            details={"batch_date": aside.day.isoformat(), "folder": str(aside.folder),
                     "set_aside_at": aside.written_at},
            id=hashlib.sha256(key.encode()).hexdigest()[:32])
        with rt.store.auditing(aside) as due:
            if not due:  # another run audited it meanwhile
                continue
            if not rt.traced(decision.id):
                rt.publish(decision)
                published.append(decision)
            rt.store.mark_audited(aside)
    return published
