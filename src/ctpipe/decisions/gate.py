"""The promotion gate: a pure decision over two evaluations, with a reason for every check."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ctpipe.config import GateConfig
from ctpipe.evaluation import Evaluation
from ctpipe.metrics import get_metric


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    checks: list[Check]

    @property
    def reasons(self) -> list[str]:
        """Why it failed (the failed checks), or every check when it passed."""
        failed = [c for c in self.checks if not c.passed]
        return [f"{c.name}: {c.detail}" for c in (failed or self.checks)]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def relative_gain(challenger: float, champion: float, higher_is_better: bool) -> float:
    """Positive when the challenger is better, as a share of the champion's value."""
    diff = challenger - champion if higher_is_better else champion - challenger
    return diff / abs(champion) if champion else (math.inf if diff > 0 else 0.0)


def decide(gate: GateConfig, challenger: Evaluation, champion: Evaluation | None,
           *, predictions_finite: bool = True) -> GateDecision:
    higher = get_metric(challenger.metric).higher_is_better
    name = challenger.metric
    checks: list[Check] = []

    sane = predictions_finite and challenger.rows > 0 and math.isfinite(challenger.value)
    checks.append(Check("sanity", sane, f"{challenger.rows} holdout rows, {name}="
                        f"{challenger.value:.4f}, predictions finite: {predictions_finite}"))

    meets = sane and (challenger.value >= gate.floor if higher else challenger.value <= gate.floor)
    bound = ">=" if higher else "<="
    checks.append(Check("floor", meets, f"{name} {challenger.value:.4f} must be {bound} "
                        f"{gate.floor:.4f}"))

    if champion is None or not math.isfinite(champion.value):
        checks.append(Check("beats_champion", True, "no champion to beat (cold start)"))
    else:
        gain = relative_gain(challenger.value, champion.value, higher)
        checks.append(Check(
            "beats_champion", gain >= gate.min_improvement,
            f"{name} {challenger.value:.4f} vs champion {champion.value:.4f}: relative gain "
            f"{gain:+.1%}, needs >= {gate.min_improvement:.1%}",
        ))
        worse = []
        for key, champ_value in sorted(champion.slices.items()):
            chall_value = challenger.slices.get(key)
            if chall_value is None:
                continue
            slice_gain = relative_gain(chall_value, champ_value, higher)
            if slice_gain < -gate.slice_tolerance:
                worse.append(f"{key} {chall_value:.4f} vs {champ_value:.4f} ({slice_gain:+.1%})")
        detail = (f"worse by more than {gate.slice_tolerance:.0%}: " + "; ".join(worse)) if worse \
            else f"no slice worse by more than {gate.slice_tolerance:.0%}"
        checks.append(Check("no_slice_regression", not worse, detail))
    return GateDecision(all(c.passed for c in checks), checks)
