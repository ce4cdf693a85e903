"""The promotion gate: a pure decision over two evaluations, with a reason for every check.

Slices are judged with significance: a slice vetoes only when the challenger is worse on it by
more than ``gate.slice_tolerance`` AND the worsening is significant (the one-sided upper bound of
the paired bootstrap interval of the slice's relative gain, at ``gate.slice_confidence``, is
below 0). Slices that are too small to judge are listed, never a veto. A challenger better
overall by at least ``gate.slice_override_gain`` overrides a slice's veto (named in the check):
after a shift the champion is the worse model for most rows, and keeping it for one slice's sake
keeps it for everyone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from ctpipe.config import GateConfig
from ctpipe.evaluation import Evaluation, SliceComparison, relative_gain
from ctpipe.metrics import get_metric
from ctpipe.wording import first_few

__all__ = ["Check", "GateDecision", "SliceJudgement", "decide", "relative_gain"]

VETO = "vetoes"
WITHIN_TOLERANCE = "within tolerance"
NOT_SIGNIFICANT = "not significant"
TOO_SMALL = "too small to judge"
OVERRIDDEN = "overridden by the overall gain"
_LISTED = 8  # slices named per verdict in a check's detail; the artifact lists them all


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class SliceJudgement:
    comparison: SliceComparison
    verdict: str  # VETO, WITHIN_TOLERANCE, NOT_SIGNIFICANT, TOO_SMALL or OVERRIDDEN

    def to_dict(self) -> dict:
        return {**asdict(self.comparison), "verdict": self.verdict}


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    checks: list[Check]
    slices: tuple[SliceJudgement, ...] = ()
    # The holdout cannot measure the metric (ROC-AUC on one class, WAPE on no demand): not
    # promoted, but no verdict on the challenger either, so no rejection for the cooldown.
    unjudged: bool = False

    @property
    def verdict(self) -> str:
        """One word for titles and tags: passed, rejected, or unjudged (not promoted either)."""
        return "passed" if self.passed else "unjudged" if self.unjudged else "rejected"

    @property
    def reasons(self) -> list[str]:
        """Why it failed (the failed checks), or every check when it passed."""
        failed = [c for c in self.checks if not c.passed]
        return [f"{c.name}: {c.detail}" for c in (failed or self.checks)]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks],
                "slices": [s.to_dict() for s in self.slices], "unjudged": self.unjudged}


def judge_slice(gate: GateConfig, s: SliceComparison) -> str:
    """One slice's verdict: the gate's slice rule, in one place."""
    if s.unjudged is not None or not math.isfinite(s.gain):
        return TOO_SMALL
    if s.gain >= -gate.slice_tolerance:
        return WITHIN_TOLERANCE
    if s.upper is None:  # worse than the tolerance but no interval: nothing to judge it by
        return TOO_SMALL
    return VETO if s.upper < 0 else NOT_SIGNIFICANT


def decide(gate: GateConfig, challenger: Evaluation, champion: Evaluation | None,
           *, predictions_finite: bool = True, splits: int | None = None,
           slices: Sequence[SliceComparison] = (),
           follows_up: str | None = None) -> GateDecision:
    """Every check, and whether all passed. ``follows_up`` (the onset of the change the
    champion is still learning and the challenger learns from more batches) lowers the margin
    over the champion to ``gate.follow_up_improvement``. ``splits`` (the challenger's, None when
    unknown): a model without any split is refused, whatever its metric."""
    higher = get_metric(challenger.metric).higher_is_better
    name = challenger.metric
    checks: list[Check] = []

    # Finite scores on some rows from a model that split: the metric alone can still fail.
    scored = predictions_finite and challenger.rows > 0 and splits != 0
    sane = scored and math.isfinite(challenger.value)
    unjudged = scored and not math.isfinite(challenger.value)
    constant = "" if splits != 0 else ("; the model made no split, so it predicts one value "
                                        "for every row: too few training rows for LightGBM's "
                                        "min_child_samples, or nothing to learn")
    undefined = "" if not unjudged else (
        f"; {name} is undefined on this holdout (one class only, or nothing to weigh): "
        "nothing to judge the challenger by")
    checks.append(Check("sanity", sane, f"{challenger.rows} holdout rows, {name}="
                        f"{challenger.value:.4f}, predictions finite: {predictions_finite}"
                        f"{constant}{undefined}"))

    meets = sane and (challenger.value >= gate.floor if higher else challenger.value <= gate.floor)
    bound = ">=" if higher else "<="
    checks.append(Check("floor", meets, f"{name} {challenger.value:.4f} must be {bound} "
                        f"{gate.floor:.4f}"))

    judged: tuple[SliceJudgement, ...] = ()
    if champion is None or not math.isfinite(champion.value):
        checks.append(Check("beats_champion", True, "no champion to beat (cold start)"))
    else:
        gain = relative_gain(challenger.value, champion.value, higher)
        margin = gate.min_improvement if follows_up is None else gate.follow_up_improvement
        why = "" if follows_up is None else \
            f" (gate.follow_up_improvement: both learn the change since {follows_up})"
        checks.append(Check(
            "beats_champion", gain >= margin,
            f"{name} {challenger.value:.4f} vs champion {champion.value:.4f}: relative gain "
            f"{gain:+.1%}, needs >= {margin:.1%}{why}",
        ))
        override = gate.slice_override_gain is not None and gain >= gate.slice_override_gain
        judged = tuple(SliceJudgement(s, OVERRIDDEN if override and verdict == VETO
                                      else verdict)
                       for s in slices for verdict in (judge_slice(gate, s),))
        checks.append(_slice_check(gate, judged, gain))
    return GateDecision(all(c.passed for c in checks), checks, judged, unjudged)


def _slice_check(gate: GateConfig, judged: Sequence[SliceJudgement], gain: float) -> Check:
    by = {v: [j.comparison for j in judged if j.verdict == v]
          for v in (VETO, NOT_SIGNIFICANT, TOO_SMALL, OVERRIDDEN)}
    rule = f"by more than {gate.slice_tolerance:.0%} at {gate.slice_confidence:.0%} confidence"
    parts = [f"significantly worse {rule}: " + _listed(by[VETO], _worse) if by[VETO]
             else f"no slice significantly worse {rule}"]
    if by[OVERRIDDEN]:
        parts = [f"significantly worse {rule} but overridden, the challenger being {gain:+.1%} "
                 f"better overall (gate.slice_override_gain {gate.slice_override_gain:.0%}): "
                 + _listed(by[OVERRIDDEN], _worse)]
    if by[NOT_SIGNIFICANT]:
        parts.append("worse but not significant: " + _listed(by[NOT_SIGNIFICANT], _worse))
    if by[TOO_SMALL]:
        parts.append("too small to judge: " + _listed(
            by[TOO_SMALL], lambda s: f"{s.key} ({s.unjudged or 'no interval'})"))
    return Check("no_slice_regression", not by[VETO], "; ".join(parts))


def _worse(s: SliceComparison) -> str:
    return (f"{s.key} {s.challenger:.4f} vs {s.champion:.4f} ({s.gain:+.1%}, upper bound "
            f"{s.upper:+.1%}, {s.rows} rows)")


def _listed(slices: Sequence[SliceComparison], fmt: Callable[[SliceComparison], str]) -> str:
    return first_few([fmt(s) for s in slices], _LISTED)
