"""When a cron baseline retrains: the honest alternative to drift-triggered retraining.

A cron schedule retrains every ``every`` batches behind the same gate as ctpipe's cycle. Its
retrain days count from the cold start (the first batch whose labelled window suffices, as in
the cycle); until a challenger has passed the gate once, it retrains on every batch, as the
cycle does when it has no champion.

A cron job's first day is arbitrary, and on real data which batches a schedule happens to
retrain on moves its mean as much as its period does (Seattle rain: cron-12 from 0.7357 to
0.7954 ROC-AUC over its 12 starts). So a replay also runs each schedule started ``phase``
batches later, for every phase 0..N-1 (the cold start always comes first).
"""

from __future__ import annotations

DEFAULT_CRON_SCHEDULES: tuple[int, ...] = (1, 4, 12)


def cron_retrain_due(batch: int, *, cold_start: int | None, every: int,
                     has_champion: bool, phase: int = 0) -> bool:
    """Whether the schedule retrains on batch number ``batch`` (0 = the replay's first):
    from the cold start on, on batches ``cold_start + phase + k * every``."""
    if every < 1:
        raise ValueError(f"a cron schedule retrains every N >= 1 batches, not {every}")
    if not 0 <= phase < every:
        raise ValueError(f"a cron schedule every {every} batches starts 0 to {every - 1} "
                         f"batches after the cold start, not {phase}")
    if cold_start is None or batch < cold_start:
        return False
    if not has_champion:
        return True
    return (batch - cold_start) % every == phase


def cron_schedules(values: list[int] | None, *, skip: bool = False) -> tuple[int, ...]:
    """The schedules a replay runs: the defaults when none given; none with 0 or ``skip``.

    Raises ValueError on a negative N, or on 0 mixed with real schedules (ambiguous).
    """
    if skip:
        return ()
    if not values:
        return DEFAULT_CRON_SCHEDULES
    if any(v < 0 for v in values):
        raise ValueError(f"--cron takes N >= 1 batches (0 skips the baselines), got {values}")
    if 0 in values:
        if len(set(values)) > 1:
            raise ValueError("--cron 0 skips the baselines; it cannot be mixed with schedules")
        return ()
    return tuple(sorted(set(values)))
