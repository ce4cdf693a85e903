"""Whether and why to retrain, and what happens to a trained challenger: pure rules.

Plain values in, immutable values out; nothing here reads a file or the registry. The steps
(ctpipe.steps) load what these rules need first, then ask.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from ctpipe.decisions.outcome import CycleStatus
from ctpipe.decisions.performance import CANNOT_JUDGE, NO_NEW_LABELS, PerformanceCheck
from ctpipe.drift import DriftReport, FeatureDrift
from ctpipe.lineage import Lineage
from ctpipe.wording import either_of

COLD_START = "no champion yet (cold start)"
TRIGGERS = ("data", "performance", "label", "prediction")
DEFAULT_TRIGGERS = ("data", "performance")


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
                   f"already processed ({previous}); pass --date {day} (batch_date as a flow "
                   "parameter) to redo it")


def after_drift(*, retrain_reason: str | None, retrain_inline: bool,
                cooling: str | None = None, performance: PerformanceCheck | None = None,
                triggers: Collection[str] = DEFAULT_TRIGGERS,
                labels_judged: bool = True) -> Verdict:
    """Keep the champion (no drift, or drift cooling down after a rejection), ask the
    retraining deployment by event, or retrain now.

    ``performance``, ``triggers`` and ``labels_judged`` only shape the message when the
    champion is kept.
    """
    if retrain_reason is None:
        if cooling is not None:
            return Verdict(CycleStatus.COOLING_DOWN, f"champion kept: {cooling}")
        return Verdict(CycleStatus.NO_DRIFT, no_drift_message(performance, triggers,
                                                              labels_judged=labels_judged))
    if not retrain_inline:
        return Verdict(CycleStatus.RETRAIN_REQUESTED,
                       f"retraining requested by event: {retrain_reason}")
    return GO_ON


def writes_record(*, trained: bool, status: CycleStatus, window_findings: bool = False) -> bool:
    """Whether a retraining run rewrites the batch's record.

    Only a run that trained (or found the window too short, or quarantined or refused batches
    of its window: ``window_findings``) decides the batch; a skipped or early-failed run leaves
    the record as the run that decided it wrote it.
    """
    return trained or status is CycleStatus.WAITING or window_findings


def window_check_refusal(*, day: dt.date, window: int, checked: int,
                         failing: Sequence[str]) -> str | None:
    """Why a retrain as of ``day`` stops before moving any batch aside (None: it goes on).

    ``failing``: the validation message of each batch that failed, of the ``checked`` batches
    of the training window (reaching back past those that failed). More than half of the
    window (or of the history, while it is shorter) failing at once is not a few bad batches:
    a rule tightened in the config since they passed, or a backlog in the wrong shape. Moving
    them all aside would empty the landing zone for a mistake; the operator decides instead.
    A single bad batch is always set aside.
    """
    span = min(window, checked)
    if len(failing) < 2 or 2 * len(failing) <= span:
        return None
    return (f"training window as of batch {day}: {len(failing)} of {checked} batches checked "
            f"fail validation, more than half of {span} (training.window {window}), so none "
            "is moved aside and nothing is trained (a rule changed since they passed? a "
            "backlog in another shape? fix the rule, or move aside those you judge wrong with "
            f"ctpipe set-aside); first: {failing[0]}")


@dataclass(frozen=True)
class Unservable:
    """Why the champion's stored files may not serve: they failed their integrity check, or
    (``unread``) they could not be read to check them."""

    why: str
    unread: bool = False


def refuse_scoring(*, already_scored: bool, explicit_date: bool, where: str,
                   day: dt.date | None, invalid: str | None, champion_model: str | None,
                   unservable: Unservable | None = None) -> Verdict:
    """Scoring writes nothing for a batch already handed out, a champion whose files cannot
    be verified, bad input or no champion.

    ``invalid`` is the validation message of a failed batch; ``champion_model`` names the
    model when it has no champion yet; ``unservable`` says why the champion's files may not
    serve. ``day`` None: a file, not a landed batch (never "already scored").
    """
    if already_scored and not explicit_date:
        # A scheduled run passes no date: never rewrite predictions already handed out.
        return Verdict(CycleStatus.NO_NEW_BATCH, f"{where}: batch {day} already scored; no "
                       f"new batch has landed (pass --date {day}, or batch_date as a flow "
                       "parameter, to score it again)")
    if unservable is not None:  # before the input: no batch is fit for a model that is not
        failed = "could not be verified" if unservable.unread else "failed its integrity check"
        return Verdict(CycleStatus.REFUSED, f"the champion {failed}, nothing was scored: "
                       f"{unservable.why}")
    if invalid is not None:
        return Verdict(CycleStatus.REFUSED, invalid)
    if champion_model is not None:
        return Verdict(CycleStatus.REFUSED, f"{champion_model}: no champion yet; run a cycle "
                       "first")
    return GO_ON




def no_drift_message(performance: PerformanceCheck | None,
                     triggers: Collection[str] = DEFAULT_TRIGGERS, *,
                     labels_judged: bool = True) -> str:
    """Why the champion is kept when no trigger fired.

    "no drift" alone would claim performance held up when a configured performance check
    could not judge (too few labelled rows, say): then name the triggers that did judge and
    say why performance was not judged, in the drift artifact's words. ``labels_judged``
    False: no labelled batch was new, so label drift (a trigger when configured) was not
    judged either.
    """
    performance_unjudged = "performance" in triggers and performance is not None \
        and not performance.judged
    label_unjudged = "label" in triggers and not labels_judged
    if not performance_unjudged and not label_unjudged:
        return "no drift: champion kept"
    others = [t for t in TRIGGERS if t in triggers
              and not (t == "performance" and performance_unjudged)
              and not (t == "label" and label_unjudged)]
    said = [f"no {either_of(others)} drift"] if others else []
    why = performance.note.removeprefix(CANNOT_JUDGE) if performance_unjudged else ""
    if performance_unjudged and performance.tolerance is None:
        said.append("performance check off (drift.performance_tolerance is null)")
    elif performance_unjudged and label_unjudged and why.startswith(NO_NEW_LABELS):
        said.append(f"performance and label drift not judged ({why})")
        label_unjudged = False
    elif performance_unjudged:
        said.append(f"performance not judged ({why})")
    if label_unjudged:
        said.append(f"label drift not judged ({NO_NEW_LABELS})")
    return "; ".join(said) + ": champion kept"


def label_drift_measured(outputs: Sequence[FeatureDrift]) -> bool:
    """Whether label drift was measured (some labelled batch was new to the champion)."""
    return any(o.feature == "label" for o in outputs)




@dataclass(frozen=True)
class DriftVerdict:
    """The drift check's result and the retraining decision it leads to."""

    report: DriftReport | None
    performance: PerformanceCheck | None
    retrain_reason: str | None
    outputs: tuple[FeatureDrift, ...] = field(default_factory=tuple)  # prediction, label drift
    cooling: str | None = None  # drift that would retrain, held back after a rejection
    triggers: tuple[str, ...] = DEFAULT_TRIGGERS
    onset: dt.date | None = None  # where the drift began (None: no drift)
    change_onset: dt.date | None = None  # the change a retrain now learns (see follow_up)

    @property
    def labels_judged(self) -> bool:
        return label_drift_measured(self.outputs)

    @property
    def drift_detected(self) -> bool:
        """Drift that may start a retrain (reported-only output drift does not count)."""
        return bool(drift_reasons(report=self.report, performance=self.performance,
                                  outputs=self.outputs, triggers=self.triggers))


def _output_reason(o: FeatureDrift, summary: str) -> str:
    test = (f"{o.test} p={o.p_value:.2g}" if o.p_value is not None and math.isfinite(o.p_value)
            else f"{o.test} {o.statistic:.4g} >= {o.threshold:.4g}")
    return f"{o.feature} drift: {summary + ' ' if summary else ''}({test})"


def performance_fired(performance: PerformanceCheck | None, triggers: Collection[str]) -> bool:
    """Whether performance drift is a configured trigger and fired."""
    return "performance" in triggers and performance is not None and performance.drifted


def drift_reasons(*, report: DriftReport | None, performance: PerformanceCheck | None,
                  outputs: Sequence[FeatureDrift] = (),
                  triggers: Collection[str] = DEFAULT_TRIGGERS,
                  summaries: Mapping[str, str] | None = None) -> list[str]:
    """The configured triggers that fired, in words, in the order of TRIGGERS.

    ``summaries`` says what moved per output ("label": "positive rate 10.2 % vs 31.8 % in
    training"), computed by the step from the rows.
    """
    reasons: list[str] = []
    if "data" in triggers and report is not None and report.dataset_drift:
        reasons.append(
            f"data drift: {len(report.drifted_features)} of {report.n_tested} tested features "
            f"drifted ({report.drift_share:.0%} >= {report.threshold_share:.0%}): "
            f"{', '.join(report.drifted_features)}")
    if performance_fired(performance, triggers):
        reasons.append(f"performance drift: {performance.summary()}")
    by_name = {o.feature: o for o in outputs}
    for trigger in ("label", "prediction"):
        o = by_name.get(trigger)
        if trigger in triggers and o is not None and o.drifted:
            reasons.append(_output_reason(o, (summaries or {}).get(trigger, "")))
    return reasons


@dataclass(frozen=True)
class PastAttempt:
    """A retrain attempt a cycle record shows (retrained=True) before the batch judged.

    ``rejected``: the gate or the approver said no (or nobody approved in time); a promotion,
    a crash or a champion moved by a rollback are not rejections. ``follow_up``: its reason
    was a follow-up (decisions.change.follow_up), a refresh of a champion that had just
    learned a change; its rejection says the champion holds up, not that drift retrains in
    vain, so it starts no cooldown. ``unjudged``: the gate could not measure the metric on
    the holdout (one class only, say): neither a rejection nor a promotion, so the cooldown
    neither counts it nor restarts after it.
    """

    batch_date: dt.date
    version: int | None
    rejected: bool
    follow_up: bool = False
    unjudged: bool = False


@dataclass(frozen=True)
class RetrainHistory:
    """What the records say, counted in batches after an event up to the judged batch."""

    since_training: int = 0  # after the champion's training window
    since_attempt: int | None = None  # after the newest retrain attempt; None: none recorded
    last_attempt: PastAttempt | None = None
    rejections: int = 0  # consecutive rejected attempts (follow-ups and unjudged ones aside),
    #                      newest back to one that was not
    rejected: PastAttempt | None = None  # the newest of those (what the cooldown counts from)
    since_rejected: int | None = None  # batches after it


def retrain_history(*, day: dt.date, batch_dates: Sequence[dt.date],
                    attempts: Sequence[PastAttempt], trained_until: str) -> RetrainHistory:
    """Count batches since training and since the newest attempt before ``day``.

    ``attempts`` in any order; those on or after ``day`` are ignored (a rerun of the batch).
    """
    before = sorted((a for a in attempts if a.batch_date < day), key=lambda a: a.batch_date)
    upto = [d for d in batch_dates if d <= day]
    since_training = len([d for d in upto if trained_until < d.isoformat()])
    if not before:
        return RetrainHistory(since_training)

    def after(attempt: PastAttempt) -> int:
        return sum(d > attempt.batch_date for d in upto)

    last = before[-1]
    counted = []
    for a in reversed(before):
        if a.unjudged:
            continue
        if not a.rejected:
            break
        if not a.follow_up:
            counted.append(a)
    rejected = counted[0] if counted else None
    return RetrainHistory(since_training, after(last), last, len(counted), rejected,
                          None if rejected is None else after(rejected))


def cooldown_batches(rejections: int, *, base: int, longest: int) -> int:
    """Batches drift-triggered retraining waits after ``rejections`` consecutive rejections:
    ``base``, doubling with each further rejection, at most ``longest``; 0 after none."""
    if rejections <= 0 or base <= 0:
        return 0
    return min(base * 2 ** min(rejections - 1, 30), longest)


def seen_in_labels(performance: PerformanceCheck | None, outputs: Sequence[FeatureDrift],
                   triggers: Collection[str]) -> bool:
    """Whether a configured trigger fired on labelled rows (performance or label drift): then
    the drift began no later than the oldest pooled batch."""
    if performance_fired(performance, triggers):
        return True
    return "label" in triggers and any(o.feature == "label" and o.drifted for o in outputs)


@dataclass(frozen=True)
class RetrainCall:
    """Why to retrain (None keeps the champion), and drift held back by a cooldown."""

    reason: str | None
    cooling: str | None = None


def retrain_reason(*, report: DriftReport | None, performance: PerformanceCheck | None,
                   outputs: Sequence[FeatureDrift] = (),
                   triggers: Collection[str] = DEFAULT_TRIGGERS,
                   summaries: Mapping[str, str] | None = None,
                   history: RetrainHistory | None = None, retrain_every: int | None = None,
                   rejection_cooldown: int = 0, max_rejection_cooldown: int = 0,
                   awaiting: str | None = None, follow: str | None = None,
                   learning: str | None = None) -> RetrainCall:
    """Why to retrain, in words, or why not although drift persists.

    ``report`` None means there is no champion to compare with: a cold start, never delayed.
    The schedule counts from the newest retrain attempt (else the champion's training window);
    drift after a rejected challenger waits ``cooldown_batches`` batches while the schedule,
    if due, still retrains. ``awaiting`` (awaiting_new_data) holds back drift until the window
    holds labelled batches from its onset on. ``follow`` (follow_up) retrains like a due
    schedule. ``learning`` (still_learning) holds back drift other than performance drift
    between a champion's follow-ups.
    """
    if report is None:
        return RetrainCall(COLD_START)
    history = history or RetrainHistory()
    reasons = drift_reasons(report=report, performance=performance, outputs=outputs,
                            triggers=triggers, summaries=summaries)
    last = history.last_attempt
    since = history.since_attempt if last is not None else history.since_training
    scheduled = None
    if retrain_every and since is not None and since >= retrain_every:
        scheduled = (f"scheduled: {since} batches since the last retrain attempt "
                     f"({last.batch_date})" if last is not None else
                     f"scheduled: {since} batches since the champion's training window")
    scheduled = scheduled or follow
    if not reasons:
        return RetrainCall(scheduled)
    if awaiting is not None:
        held = f"drift persists ({'; '.join(reasons)}) but {awaiting}"
        return RetrainCall(scheduled, None if scheduled else held)
    if learning is not None and not performance_fired(performance, triggers):
        held = f"drift persists ({'; '.join(reasons)}) but {learning}"
        return RetrainCall(scheduled, None if scheduled else held)
    wait = cooldown_batches(history.rejections, base=rejection_cooldown,
                            longest=max_rejection_cooldown)
    rejected, waited = history.rejected, history.since_rejected
    if rejected is None or waited is None or waited > wait:
        return RetrainCall("; ".join(reasons))
    who = f"v{rejected.version}" if rejected.version is not None else "the challenger"
    plural = "s" if history.rejections != 1 else ""
    cooling = (f"drift persists ({'; '.join(reasons)}) but cooling down after {who} was "
               f"rejected on {rejected.batch_date} ({history.rejections} consecutive rejection"
               f"{plural}): {waited} of {wait} batches")
    return RetrainCall(scheduled, None if scheduled else cooling)


# How a forced retrain's reason starts (the CLI's flag, or the parameter of a deployment run).
FORCED = "forced by the operator (--force, or force=true on a run)"


def forced_retrain(call: RetrainCall, *, force: bool, performance: PerformanceCheck | None,
                   triggers: Collection[str] = DEFAULT_TRIGGERS,
                   labels_judged: bool = True) -> RetrainCall:
    """An operator's ``force`` retrains the batch whatever the automatic policy decided.

    Cooldowns, the wait for post-drift data and the pause between follow-ups keep the
    automatic policy from retraining in vain; they do not second-guess an operator who asks
    for a retrain, nor does the absence of drift. The reason keeps what the policy alone would
    have done, for the record. Validation, the training window, the gate and approval still
    apply.
    """
    if not force or call.reason is not None:
        return call
    kept = call.cooling or no_drift_message(
        performance, triggers, labels_judged=labels_judged).removesuffix(": champion kept")
    return RetrainCall(f"{FORCED}; the retraining policy alone would keep the champion: {kept}")


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
            "; run again with --force (force=true as a flow parameter) to train again"))
    if window_problem is not None:
        return Verdict(CycleStatus.WAITING, f"cannot retrain yet: {window_problem}")
    return GO_ON


def after_gate(*, passed: bool, reasons: list[str], version: int,
               needs_approval: bool, hold: str | None = None, unjudged: bool = False) -> Verdict:
    """Rejected, waiting for a human (``hold``: why, beyond the jurisdiction), or on to
    promotion. ``unjudged``: the holdout could not measure the metric (the status is still
    REJECTED: it is not promoted; the record's ``gate_unjudged`` keeps the cooldown out)."""
    if not passed:
        said = "cannot be judged on its holdout, not promoted" if unjudged else "rejected"
        return Verdict(CycleStatus.REJECTED,
                       f"challenger v{version} {said}: " + "; ".join(reasons))
    if needs_approval:
        why = f": {hold}" if hold else ""
        return Verdict(CycleStatus.PENDING_APPROVAL, f"challenger v{version} passed the gate "
                       f"and waits for approval{why}")
    return GO_ON


def needs_approval(*, requires_approval: bool, replay: bool, hold: str | None = None) -> bool:
    """A jurisdiction that requires it, or an operator's rollback (``hold``, see
    decisions.rollback.rollback_hold). Replays never pause for a human: production would, and
    the record says so."""
    return (requires_approval or hold is not None) and not replay


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
