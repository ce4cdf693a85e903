"""When live monitoring rolls the champion back by itself: pure, over measured batches.

A rollback is confirmed degradation, never a single bad day: the champion's live metric must be
bad on ``after`` (K) consecutive labelled batches it scored, where bad means below the gate's
floor, or worse than the previous champion's shadow score on the same rows by more than
``margin`` (relative, like the gate's ``min_improvement``). Even then the previous champion is
served again only if it did better on those batches and may serve at all (never rejected nor
unapproved, integrity verified: the caller passes why not, if not).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ctpipe.decisions.gate import relative_gain


@dataclass(frozen=True)
class LabelledBatch:
    """One batch the champion scored, measured once its labels arrived."""

    batch: str
    champion_version: int
    champion_metric: float | None  # None: not measurable (e.g. no positive label)
    shadow_version: int | None = None  # the previous champion, scoring in shadow
    shadow_metric: float | None = None


@dataclass(frozen=True)
class LiveVerdict:
    """Roll back (``target`` set) or not, and why, in one line."""

    rollback: bool
    reason: str
    target: int | None = None
    bad_batches: tuple[str, ...] = ()  # the confirmed streak (monitoring.rollback_after long)
    unconfirmed: tuple[str, ...] = ()  # a shorter streak of bad batches, still being watched

    def decision_kind(self, rolled_back: bool) -> str:
        """What the monitoring decision log records for this verdict."""
        if rolled_back:
            return "rollback"
        return "degraded" if self.bad_batches else "watching" if self.unconfirmed \
            else "healthy"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def why_bad(batch: LabelledBatch, *, floor: float, higher_is_better: bool,
            margin: float) -> str | None:
    """Why this batch counts against the champion, or None when it does not."""
    value = batch.champion_metric
    if not _finite(value):
        return None
    below = value < floor if higher_is_better else value > floor
    if below:  # the floor is a maximum for a lower-is-better metric
        return f"{value:.4f}, {'below' if higher_is_better else 'above'} the gate floor {floor:.4f}"
    if _finite(batch.shadow_metric):
        gain = relative_gain(batch.shadow_metric, value, higher_is_better)
        if gain > margin:
            return f"worse than v{batch.shadow_version} in shadow by {gain:.1%}"
    return None


def judge_live(history: Sequence[LabelledBatch], champion_version: int, *, metric: str,
               floor: float, higher_is_better: bool, margin: float, after: int,
               target_refusal: str | None = None) -> LiveVerdict:
    """The verdict on the champion's newest measured batches (``history`` in batch order).

    ``target_refusal`` says why the previous champion may not serve (never passed the gate,
    never approved, failed its integrity check); None when it may.
    """
    # Only the champion's current tenure counts: the batches it scored since it last took
    # over. Batches it scored in an earlier tenure (before a promotion it was rolled back to)
    # say nothing about now. A batch whose metric is undefined is no evidence either way.
    tenure: list[LabelledBatch] = []
    for batch in reversed(history):
        if batch.champion_version != champion_version:
            break
        tenure.append(batch)
    measured = [b for b in reversed(tenure) if _finite(b.champion_metric)]
    streak: list[tuple[LabelledBatch, str]] = []
    for batch in reversed(measured):
        why = why_bad(batch, floor=floor, higher_is_better=higher_is_better, margin=margin)
        if why is None:
            break
        streak.append((batch, why))
    streak.reverse()
    if len(streak) < after:
        if not measured:
            return LiveVerdict(False, f"v{champion_version}: no labelled batch measured yet")
        last = measured[-1]
        return LiveVerdict(False, f"v{champion_version}: {len(streak)} of {after} consecutive "
                           f"labelled batches bad (latest {last.batch}: "
                           f"{_fmt(last.champion_metric)} {metric})",
                           unconfirmed=tuple(b.batch for b, _ in streak))
    window = streak[-after:]
    batches = tuple(b.batch for b, _ in window)
    span = f"{batches[0]}..{batches[-1]}" if len(batches) > 1 else batches[0]
    targets = {b.shadow_version for b, _ in window}
    champ_mean = _mean([b.champion_metric for b, _ in window])
    # The mean may sit on the good side of the floor while every batch was bad for its own
    # reason: the parenthesis names the last batch's, so the two are not read as one claim.
    headline = (f"v{champion_version} {metric} {champ_mean:.4f} on average over {after} "
                f"consecutive bad labelled batches {span} (the last, {batches[-1]}: "
                f"{window[-1][1]})")
    if len(targets) != 1 or None in targets or not all(_finite(b.shadow_metric)
                                                       for b, _ in window):
        return LiveVerdict(False, f"degraded, not rolled back: {headline}; no previous "
                           "champion scored every one of them in shadow", None, batches)
    target = targets.pop()
    shadow_mean = _mean([b.shadow_metric for b, _ in window])
    if relative_gain(shadow_mean, champ_mean, higher_is_better) <= 0:
        return LiveVerdict(False, f"degraded, not rolled back: {headline}; previous champion "
                           f"v{target} did no better ({shadow_mean:.4f})", None, batches)
    if target_refusal is not None:
        return LiveVerdict(False, f"degraded, not rolled back: {headline}; {target_refusal}",
                           None, batches)
    return LiveVerdict(True, f"automatic: {headline}; previous champion v{target} scored "
                       f"{shadow_mean:.4f} in shadow", target, batches)


def _mean(values: Sequence[float | None]) -> float:
    kept = [v for v in values if _finite(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _fmt(value: float | None) -> str:
    return f"{value:.4f}" if _finite(value) else "n/a"
