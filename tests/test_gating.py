import pytest

from ctpipe.config import GateConfig
from ctpipe.decisions.gate import decide, relative_gain
from ctpipe.evaluation import Evaluation

GATE = GateConfig(floor=0.40, min_improvement=0.02, slice_tolerance=0.15)


def wape(value: float, **slices: float) -> Evaluation:
    return Evaluation("wape", value, 1000, {k.replace("_", "="): v for k, v in slices.items()})


def test_cold_start_gates_on_floor_alone() -> None:
    assert decide(GATE, wape(0.30), None).passed
    rejected = decide(GATE, wape(0.45), None)
    assert not rejected.passed
    assert rejected.reasons == ["floor: wape 0.4500 must be <= 0.4000"]


def test_must_beat_champion_by_margin() -> None:
    assert decide(GATE, wape(0.20), wape(0.25)).passed
    worse = decide(GATE, wape(0.26), wape(0.25))
    assert not worse.passed
    assert any(r.startswith("beats_champion:") and "-4.0%" in r for r in worse.reasons)
    # 1 % better is not enough with a 2 % margin
    assert not decide(GATE, wape(0.2475), wape(0.25)).passed


def test_slice_regression_rejects_even_when_overall_better() -> None:
    decision = decide(GATE, wape(0.20, lane_A=0.30, lane_B=0.10),
                      wape(0.25, lane_A=0.20, lane_B=0.30))
    assert not decision.passed
    assert decision.reasons == [
        "no_slice_regression: worse by more than 15%: lane=A 0.3000 vs 0.2000 (-50.0%)"]


def test_higher_is_better_metric() -> None:
    gate = GateConfig(floor=0.2, min_improvement=0.02, slice_tolerance=0.15)
    better = Evaluation("pr_auc", 0.6, 500)
    assert decide(gate, better, Evaluation("pr_auc", 0.5, 500)).passed
    assert not decide(gate, Evaluation("pr_auc", 0.15, 500), None).passed


def test_insane_predictions_are_rejected() -> None:
    decision = decide(GATE, wape(0.1), None, predictions_finite=False)
    assert not decision.passed
    assert [c.name for c in decision.checks if not c.passed] == ["sanity", "floor"]


@pytest.mark.parametrize(("chal", "champ", "higher", "expected"), [
    (0.6, 0.5, True, 0.2), (0.4, 0.5, False, 0.2), (0.5, 0.4, False, -0.25)])
def test_relative_gain(chal: float, champ: float, higher: bool, expected: float) -> None:
    assert relative_gain(chal, champ, higher) == pytest.approx(expected)
