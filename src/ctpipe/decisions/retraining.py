"""Whether and why to retrain, and what happens to a trained challenger: pure rules.

Plain values in, immutable values out; nothing here reads a file or the registry. The steps
(ctpipe.steps) load what these rules need first, then ask.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from ctpipe.decisions.outcome import CycleStatus
from ctpipe.drift import DriftReport, FeatureDrift, performance_drift
from ctpipe.lineage import Lineage

COLD_START = "no champion yet (cold start)"


@dataclass(frozen=True)
class Verdict:
    """A rule's answer: the status it leads to (None: go on) and why."""

    status: CycleStatus | None
    message: str = ""

    @property
    def go_on(self) -> bool:
        return self.status is None


GO_ON = Verdict(None)


def refuse_processed(previous: CycleStatus | None, *, explicit_date: bool, day: dt.date,
                     where: str, landed: bool = True) -> Verdict:
    """A run must not work on a batch that never landed, and a run without a batch date must
    not redo ``day``.

    A scheduled run passes no date and works on the newest batch: if that one was already
    decided, the day's batch is late and yesterday's must not be redone.
    """
    if not landed:
        return Verdict(CycleStatus.REFUSED, f"{where}: no batch for {day} has landed; nothing "
                       "was written")
    if explicit_date or previous is None or not previous.final:
        return GO_ON
    return Verdict(CycleStatus.NO_NEW_BATCH, f"{where}: no new batch; the newest, {day}, was "
                   f"already processed ({previous}); pass batch_date to redo it")


def after_drift(*, retrain_reason: str | None, retrain_inline: bool) -> Verdict:
    """Keep the champion, ask the retraining deployment by event, or retrain now."""
    if retrain_reason is None:
        return Verdict(CycleStatus.NO_DRIFT, "no drift: champion kept")
    if not retrain_inline:
        return Verdict(CycleStatus.RETRAIN_REQUESTED,
                       f"retraining requested by event: {retrain_reason}")
    return GO_ON


def writes_record(*, trained: bool, status: CycleStatus) -> bool:
    """Whether a retraining run rewrites the batch's record.

    Only a run that trained (or found the window too short) decides the batch; a skipped or
    early-failed run leaves the record as the run that decided it wrote it.
    """
    return trained or status is CycleStatus.WAITING


def refuse_scoring(*, already_scored: bool, explicit_date: bool, where: str, day: dt.date,
                   invalid: str | None, champion_model: str | None) -> Verdict:
    """Scoring writes nothing for a batch already handed out, bad input or no champion.

    ``invalid`` is the validation message of a failed batch; ``champion_model`` names the
    model when it has no champion yet.
    """
    if already_scored and not explicit_date:
        # A scheduled run passes no date: never rewrite predictions already handed out.
        return Verdict(CycleStatus.NO_NEW_BATCH, f"{where}: batch {day} already scored; no "
                       "new batch has landed (pass batch_date to score it again)")
    if invalid is not None:
        return Verdict(CycleStatus.REFUSED, invalid)
    if champion_model is not None:
        return Verdict(CycleStatus.REFUSED, f"{champion_model}: no champion yet; run a cycle "
                       "first")
    return GO_ON


@dataclass(frozen=True)
class PerformanceCheck:
    """The champion's metric on newly labelled rows against its holdout metric at promotion."""

    batch: str
    metric: str
    baseline: float
    current: float
    degradation: float
    drifted: bool
    tolerance: float

    def to_dict(self) -> dict:
        return asdict(self)


def judge_performance(*, batch: str, metric: str, baseline: float | None,
                      current: float | None, rows: int, min_rows: int,
                      tolerance: float | None, higher_is_better: bool) -> PerformanceCheck | None:
    """None when performance cannot be judged (no tolerance, no baseline, too few rows)."""
    if tolerance is None or baseline is None or current is None or rows < min_rows \
            or not math.isfinite(current):
        return None
    drifted, degradation = performance_drift(baseline, current, tolerance=tolerance,
                                             higher_is_better=higher_is_better)
    return PerformanceCheck(batch, metric, baseline, current, degradation, drifted, tolerance)


@dataclass(frozen=True)
class DriftVerdict:
    """The drift check's result and the retraining decision it leads to."""

    report: DriftReport | None
    performance: PerformanceCheck | None
    retrain_reason: str | None
    outputs: tuple[FeatureDrift, ...] = field(default_factory=tuple)  # prediction, label drift

    @property
    def drift_detected(self) -> bool:
        perf = bool(self.performance and self.performance.drifted)
        return bool(self.report and self.report.dataset_drift) or perf


def retrain_reason(*, report: DriftReport | None, performance: PerformanceCheck | None,
                   batches_since_training: int, retrain_every: int | None) -> str | None:
    """Why to retrain, in words; None when the champion should stay as it is.

    ``report`` None means there is no champion to compare with: a cold start.
    """
    if report is None:
        return COLD_START
    if report.dataset_drift:
        return (f"data drift: {len(report.drifted_features)} of {report.n_tested} tested "
                f"features drifted ({report.drift_share:.0%} >= {report.threshold_share:.0%}): "
                f"{', '.join(report.drifted_features)}")
    if performance is not None and performance.drifted:
        return (f"performance drift: {performance.metric} {performance.current:.4f} on "
                f"{performance.batch} vs {performance.baseline:.4f} at promotion "
                f"({performance.degradation:+.1%} worse, tolerance "
                f"{performance.tolerance:.0%})")
    if retrain_every and batches_since_training >= retrain_every:
        return f"scheduled: {batches_since_training} batches since the champion's training window"
    return None


@dataclass(frozen=True)
class PriorVersion:
    version: int
    lineage: Lineage


def before_training(*, day: dt.date, trained: list[PriorVersion], force: bool,
                    window_problem: str | None) -> Verdict:
    """Skip a batch already retrained under this config; wait while the history is short."""
    if trained and not force:
        v = trained[-1]
        return Verdict(CycleStatus.SKIPPED, (
            f"batch {day} already retrained under this config: v{v.version} (gate "
            f"{v.lineage.gate_decision}, approval {v.lineage.approval_decision or 'not needed'})"
            "; run with force=true to train again"))
    if window_problem is not None:
        return Verdict(CycleStatus.WAITING, f"cannot retrain yet: {window_problem}")
    return GO_ON


def after_gate(*, passed: bool, reasons: list[str], version: int,
               needs_approval: bool) -> Verdict:
    """Rejected, waiting for a human, or on to promotion."""
    if not passed:
        return Verdict(CycleStatus.REJECTED,
                       f"challenger v{version} rejected: " + "; ".join(reasons))
    if needs_approval:
        return Verdict(CycleStatus.PENDING_APPROVAL, f"challenger v{version} passed the gate "
                       "and waits for approval")
    return GO_ON


def needs_approval(*, requires_approval: bool, replay: bool) -> bool:
    """Replays never pause for a human: production would, and the record says so."""
    return requires_approval and not replay


def automatic_approver(*, jurisdiction: str | None, requires_approval: bool) -> str:
    """Who approved a promotion nobody was asked about."""
    if requires_approval:
        return "auto: a replay asks nobody (production would pause for approval)"
    return f"auto: jurisdiction {jurisdiction or 'unset'} requires no approval"


class ApprovalAnswer(BaseModel):
    """What an approver gives, in the Prefect UI's resume form or via `ctpipe approve/reject`."""

    decision: Literal["approve", "reject"] = Field(
        description="approve promotes the challenger to champion; reject keeps the champion.")
    approver: str = Field(min_length=1, max_length=200,
                          description="Who decides (name or staff id), recorded on the version.")
    reason: str = Field(min_length=1, max_length=2000,
                        description="Why, recorded on the version and in the audit trail.")


@dataclass(frozen=True)
class ApprovalVerdict:
    verdict: Verdict
    lineage: Lineage  # what the version records about the decision
    approver: str


def judge_approval(answer: ApprovalAnswer | None, *, version: int, timeout_seconds: int,
                   now: dt.datetime) -> ApprovalVerdict:
    """Approved (go on), rejected by the approver, or rejected because nobody answered."""
    at = now.isoformat(timespec="seconds")
    if answer is None:
        tags = Lineage(approval_decision="timeout", approver="nobody (timeout)",
                       approval_reason=f"no decision within {timeout_seconds} s: rejected",
                       approval_at=at)
        status = CycleStatus.TIMED_OUT
    else:
        tags = Lineage(approval_decision="approved" if answer.decision == "approve"
                       else "rejected", approver=answer.approver,
                       approval_reason=answer.reason, approval_at=at)
        status = None if answer.decision == "approve" else CycleStatus.REJECTED
    message = (f"challenger v{version} not promoted: approval {tags.approval_decision} by "
               f"{tags.approver}: {tags.approval_reason}")
    return ApprovalVerdict(Verdict(status, "" if status is None else message), tags,
                           tags.approver or "")


PromotionMove = Literal["move", "already-champion"]


class ChampionChanged(RuntimeError):
    """The champion moved (a rollback, another promotion) after the challenger was gated."""


def promotion_move(*, model_name: str, version: int, expected: int | None,
                   current: int | None, rollback_waiting: bool = False) -> PromotionMove:
    """Compare-and-swap: move only if the champion is still the one the gate compared with.

    Raises ChampionChanged otherwise: moving the alias would silently undo a rollback. Also
    when a rollback is waiting to move the alias (``rollback_waiting``): an operator's
    rollback asked for during a promotion wins over it.
    """
    if current == version:
        return "already-champion"
    if current != expected:
        raise ChampionChanged(
            f"{model_name}: champion is v{current or '-'} now, not v{expected or '-'} that "
            f"v{version} was gated against; not promoted (retrain to compare with "
            f"v{current or '-'})")
    if rollback_waiting:
        raise ChampionChanged(
            f"{model_name}: a rollback of champion v{current or '-'} is in progress; "
            f"v{version} not promoted (the rollback wins; retrain to compare with the "
            "champion it leaves)")
    return "move"
