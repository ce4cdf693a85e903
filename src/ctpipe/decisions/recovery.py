"""What a run does with a promotion a crash interrupted: pure rules over the registry's state.

A promotion records its intent (records.PromotionIntent) before it moves the alias and clears
it once the move, the tags and the trace are done. An intent whose run died is reconciled by
the next run of the use case:

* the alias already points at the version: the move happened, so the run **finishes** it
  (writes the version's promotion tags and the audit record that were missing);
* the alias still points at the champion the gate compared with, and the version is complete,
  gate-passed and approved where required: the run **completes** it (the gate and the approver
  decided; a crash is not a verdict on the model);
* anything else (the champion moved meanwhile, a rollback among them, or the version no longer
  qualifies): the run **abandons** it, tags the version with why, and audits that.

The same rule covers a crash between registration and the intent: a version of this batch
that passed the gate, needs no (further) approval and was never promoted or abandoned is
promoted by the next run, if the champion is still the one it was gated against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ctpipe.lineage import Lineage

RecoveryAction = Literal["finish", "complete", "abandon"]


@dataclass(frozen=True)
class Recovery:
    action: RecoveryAction
    message: str


def unfit_to_serve(lineage: Lineage) -> str | None:
    """Why a version must not become champion (None: it may)."""
    if not lineage.gate_passed:
        return f"it did not pass the gate ({lineage.gate_decision or 'no gate decision'})"
    if lineage.approval_missing:
        return f"it was not approved (approval_decision={lineage.approval_decision})"
    if lineage.promotion_abandoned:
        return f"its promotion was abandoned before: {lineage.promotion_abandoned}"
    return None


def recover_promotion(*, version: int, expected: int | None, current: int | None,
                      problem: str | None) -> Recovery:
    """Finish, complete or abandon the interrupted promotion of ``version``.

    ``expected`` is the champion the promotion was gated against; ``current`` the champion
    now; ``problem`` why the version may not serve (None when it may).
    """
    if current == version:
        return Recovery("finish", f"v{version} was already champion: its promotion is "
                        "finished (tags and audit record)")
    if current != expected:
        return Recovery("abandon", f"champion is v{current or '-'} now, not v{expected or '-'} "
                        f"that v{version} was gated against: promotion abandoned")
    if problem is not None:
        return Recovery("abandon", f"v{version} may not serve: {problem}: promotion abandoned")
    return Recovery("complete", f"v{version} promoted after an interrupted run (the gate "
                    "decided; the crash did not)")


def resumable(lineage: Lineage, *, is_champion: bool, current: int | None) -> bool:
    """A version of this batch that a crash left between its gate and its promotion."""
    return (not is_champion and lineage.promoted_at is None and lineage.gated_against is not None
            and unfit_to_serve(lineage) is None and lineage.gated_against_version == current)
