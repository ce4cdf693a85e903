"""Whether the champion performs worse on newly labelled data than at its promotion: pure rules.

The labelled batches are pooled until they hold enough rows (``pool_labelled``); the champion's
metric on them is judged against its holdout metric with a bootstrap interval of the
degradation, and against the gate's floor (``judge_performance``), or the check says why it
could not judge (``cannot_judge_performance``). ctpipe.decisions.retraining turns the result
into a reason.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from ctpipe.drift import MetricInterval, performance_drift

CANNOT_JUDGE = "cannot judge: "  # how every PerformanceCheck note that judged nothing starts
NO_NEW_LABELS = "no labelled batch newer than the champion's training data"


@dataclass(frozen=True)
class PerformanceCheck:
    """The champion's metric on pooled newly labelled rows against its holdout metric at
    promotion, with the bootstrap interval of the degradation; or why it could not judge.

    ``degradation`` is relative (positive = worse); ``degradation_low``/``degradation_high``
    its interval at ``confidence``, ``current_low``/``current_high`` the metric's.
    ``below_floor``: the metric's whole interval lies on the wrong side of ``floor`` (the
    gate's), which is drift whatever the degradation. ``batch`` is the newest pooled batch (as
    in records written before pooling); ``judged`` False means ``note`` says why nothing was
    judged.
    """

    batch: str
    metric: str
    baseline: float | None
    current: float | None
    degradation: float | None
    drifted: bool
    tolerance: float | None
    batches: tuple[str, ...] = ()
    rows: int = 0
    degradation_low: float | None = None
    degradation_high: float | None = None
    confidence: float | None = None
    resamples: int = 0
    degenerate: int = 0  # resamples skipped: the metric was undefined on them
    judged: bool = True
    note: str = ""
    floor: float | None = None
    current_low: float | None = None
    current_high: float | None = None
    below_floor: bool = False

    def to_dict(self) -> dict:
        return {**asdict(self), "batches": list(self.batches)}

    @property
    def pooled(self) -> str:
        """'62 labelled rows in 2 batches (2026-03-19..2026-03-20)'."""
        span = ""
        if self.batches:
            span = f" ({self.batches[0]}" + (f"..{self.batches[-1]})" if len(self.batches) > 1
                                              else ")")
        plural = "es" if len(self.batches) != 1 else ""
        return f"{self.rows} labelled rows in {len(self.batches)} batch{plural}{span}"

    def summary(self) -> str:
        if not self.judged:
            return self.note
        text = (f"{self.metric} {self.current:.4f} on {self.pooled} vs {self.baseline:.4f} at "
                f"promotion: {self.degradation:+.1%} worse ({self.confidence:.0%} interval "
                f"{self.degradation_low:+.1%} to {self.degradation_high:+.1%}; drifted when "
                f"the whole interval is above the tolerance {self.tolerance:.0%})")
        if self.below_floor:
            # current_low/high are set whenever below_floor is (judge_performance)
            side = "below" if self.current_high < self.floor else "above"
            text += (f"; beyond the gate floor: its {self.metric} interval "
                     f"{self.current_low:.4f} to {self.current_high:.4f} lies wholly {side} "
                     f"gate.floor {self.floor:.4f}")
        return text


def pool_labelled(fresh: Sequence[tuple[dt.date, int]], *, window: int, min_rows: int,
                  usable: Callable[[dt.date], bool] | None = None) -> list[dt.date]:
    """The labelled batches the performance check pools, oldest first.

    ``fresh``: (batch date, labelled rows) of every labelled batch newer than the champion's
    training data. Newest first, at most ``window`` batches, until ``min_rows`` rows: the
    newest evidence, and no more of it than the check needs (older fresh rows would dilute a
    recent change). ``usable``: asked of each of those batches before it is pooled, newest
    first, and only as far back as the pool reaches; a batch it refuses is skipped but still
    counts towards ``window`` (the reach stays the newest ``window`` batches).
    """
    chosen: list[dt.date] = []
    rows = 0
    for day, n in sorted(fresh, reverse=True)[:window]:
        if usable is not None and not usable(day):
            continue
        chosen.append(day)
        rows += n
        if rows >= min_rows:
            break
    return sorted(chosen)


def cannot_judge_performance(*, batches: Sequence[str], rows: int, min_rows: int,
                             baseline: float | None, tolerance: float | None,
                             seen_until: str = "") -> str | None:
    """Why the performance check cannot judge before computing anything; None: it can."""
    if tolerance is None:
        return f"{CANNOT_JUDGE}drift.performance_tolerance is null (performance check off)"
    if baseline is None or not math.isfinite(baseline):
        return f"{CANNOT_JUDGE}the champion has no holdout metric at promotion"
    if not batches:
        since = f" (seen until {seen_until})" if seen_until else ""
        return f"{CANNOT_JUDGE}{NO_NEW_LABELS}{since}"
    if rows < min_rows:
        plural = "es" if len(batches) != 1 else ""
        return (f"{CANNOT_JUDGE}{rows} labelled rows in {len(batches)} batch{plural}, "
                f"drift.min_performance_rows is {min_rows}")
    return None


def judge_performance(*, batches: Sequence[str], metric: str, baseline: float | None,
                      interval: MetricInterval | None, rows: int, min_rows: int,
                      tolerance: float | None, higher_is_better: bool,
                      seen_until: str = "", left_out: Sequence[str] = (),
                      unread: str | None = None,
                      floor: float | None = None) -> PerformanceCheck:
    """Drifted only when the champion is significantly worse than at promotion (the whole
    bootstrap interval of the relative degradation lies above ``tolerance``) or significantly
    worse than ``floor``, the gate's bound (the metric's whole interval lies beyond it).

    The tolerance absorbs that the baseline is itself a noisy, gate-selected (so optimistic)
    holdout estimate; the interval absorbs the noise of the few pooled rows. The floor catches
    a champion promoted just inside it that then slips below: a small relative change, but no
    challenger that bad would be promoted today, and with no earlier version to roll back to
    live monitoring can only report it. ``left_out``:
    fresh labelled batches not pooled because their files fail the current validation rules
    as they are now; ``unread``: why the pooled rows could not be read (a file replaced
    between its check and the read). The note names both.
    """
    newest = batches[-1] if batches else ""
    unpooled = (f"; not pooled, their files failing the current validation rules: "
                f"{', '.join(left_out)}" if left_out else "")

    def unjudged(note: str, current: float | None = None) -> PerformanceCheck:
        return PerformanceCheck(newest, metric, baseline, current, None, False, tolerance,
                                tuple(batches), rows, judged=False, note=note + unpooled)

    if unread is not None:
        return unjudged(f"{CANNOT_JUDGE}{unread}")
    if left_out and not batches and tolerance is not None:
        return PerformanceCheck(newest, metric, baseline, None, None, False, tolerance, (), 0,
                                judged=False, note=f"{CANNOT_JUDGE}every labelled batch it "
                                "reached fails the current validation rules as it is now: "
                                f"{', '.join(left_out)}")
    why = cannot_judge_performance(batches=batches, rows=rows, min_rows=min_rows,
                                   baseline=baseline, tolerance=tolerance,
                                   seen_until=seen_until)
    if why is not None or interval is None:
        return unjudged(why or f"{CANNOT_JUDGE}no bootstrap interval")
    assert baseline is not None and tolerance is not None  # checked above
    if not math.isfinite(interval.point):
        return unjudged(f"{CANNOT_JUDGE}{metric} is undefined on the {rows} pooled rows "
                        "(one class only?)")
    if interval.used * 2 < interval.resamples or not math.isfinite(interval.low):
        return unjudged(f"{CANNOT_JUDGE}{interval.degenerate} of {interval.resamples} "
                        f"bootstrap resamples left {metric} undefined (one class only?)",
                        interval.point)

    def worse(value: float) -> float:
        return performance_drift(baseline, value, tolerance=tolerance,
                                 higher_is_better=higher_is_better)[1]

    # The degradation falls as the metric rises when higher is better: bounds swap.
    low, high = sorted((worse(interval.low), worse(interval.high)))
    below_floor = floor is not None and (interval.high < floor if higher_is_better
                                         else interval.low > floor)
    note = (f"bootstrap: {interval.resamples} resamples of the pooled rows"
            + (f", {interval.degenerate} skipped ({metric} undefined: one class only)"
               if interval.degenerate else "") + unpooled)
    return PerformanceCheck(newest, metric, baseline, interval.point, worse(interval.point),
                            low > tolerance or below_floor, tolerance, tuple(batches), rows,
                            low, high, interval.confidence, interval.resamples,
                            interval.degenerate, True, note, floor, interval.low,
                            interval.high, below_floor)
