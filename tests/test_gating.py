import pytest
from pydantic import ValidationError

from ctpipe.config import GateConfig
from ctpipe.decisions.gate import (
    NOT_SIGNIFICANT,
    OVERRIDDEN,
    TOO_SMALL,
    VETO,
    WITHIN_TOLERANCE,
    decide,
    relative_gain,
)
from ctpipe.evaluation import Evaluation, SliceComparison

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


def test_a_follow_up_needs_only_to_match_the_champion_it_refreshes() -> None:
    """Both learn the same change; the challenger from more of its batches (a follow-up after
    drift): a tie on the holdout promotes it, a worse one is still rejected."""
    tie = decide(GATE, wape(0.2475), wape(0.25), follows_up="2026-04-01")
    assert tie.passed
    assert [c.detail for c in tie.checks if c.name == "beats_champion"] == [
        "wape 0.2475 vs champion 0.2500: relative gain +1.0%, needs >= 0.0% "
        "(gate.follow_up_improvement: both learn the change since 2026-04-01)"]
    assert not decide(GATE, wape(0.2525), wape(0.25), follows_up="2026-04-01").passed
    strict = GATE.model_copy(update={"follow_up_improvement": 0.02})
    assert not decide(strict, wape(0.2475), wape(0.25), follows_up="2026-04-01").passed


def test_significant_slice_regression_rejects_even_when_overall_better() -> None:
    lane_a = SliceComparison("lane=A", 400, 0.30, 0.20, -0.50, lower=-0.62, upper=-0.38)
    lane_b = SliceComparison("lane=B", 400, 0.10, 0.30, 0.667)
    decision = decide(GATE, wape(0.20), wape(0.25), slices=[lane_a, lane_b])
    assert not decision.passed
    assert decision.reasons == [
        "no_slice_regression: significantly worse by more than 15% at 95% confidence: "
        "lane=A 0.3000 vs 0.2000 (-50.0%, upper bound -38.0%, 400 rows)"]
    assert [s.verdict for s in decision.slices] == [VETO, WITHIN_TOLERANCE]


def test_a_much_better_challenger_overrides_a_slice_veto_and_says_so() -> None:
    """After a shift the champion is the worse model for most rows: a slice it still serves
    better must not keep it in place for everyone (gate.slice_override_gain, 25 %)."""
    lane_a = SliceComparison("lane=A", 400, 0.30, 0.20, -0.50, lower=-0.62, upper=-0.38)
    decision = decide(GATE, wape(0.20), wape(0.40), slices=[lane_a])  # 50 % better overall
    assert decision.passed and [s.verdict for s in decision.slices] == [OVERRIDDEN]
    detail = next(c.detail for c in decision.checks if c.name == "no_slice_regression")
    assert detail == (
        "significantly worse by more than 15% at 95% confidence but overridden, the challenger "
        "being +50.0% better overall (gate.slice_override_gain 25%): lane=A 0.3000 vs 0.2000 "
        "(-50.0%, upper bound -38.0%, 400 rows)")
    strict = GATE.model_copy(update={"slice_override_gain": None})
    assert not decide(strict, wape(0.20), wape(0.40), slices=[lane_a]).passed
    assert not decide(GATE, wape(0.20), wape(0.26), slices=[lane_a]).passed  # 23 % better


def test_noisy_or_tiny_slice_cannot_veto_a_clearly_better_model() -> None:
    # Worse by more than the tolerance on the point estimate, but the interval reaches 0.
    noisy = SliceComparison("lane=C", 13, 0.32, 0.26, -0.23, lower=-0.90, upper=0.41)
    tiny = SliceComparison("lane=D", 5, 0.60, 0.20, -2.0,
                           unjudged="5 rows < evaluation.min_slice_rows 10")
    decision = decide(GATE, wape(0.18), wape(0.25), slices=[noisy, tiny])
    assert decision.passed
    assert [s.verdict for s in decision.slices] == [NOT_SIGNIFICANT, TOO_SMALL]
    detail = next(c.detail for c in decision.checks if c.name == "no_slice_regression")
    assert detail == (
        "no slice significantly worse by more than 15% at 95% confidence; "
        "worse but not significant: lane=C 0.3200 vs 0.2600 (-23.0%, upper bound +41.0%, "
        "13 rows); too small to judge: lane=D (5 rows < evaluation.min_slice_rows 10)")
    slices = decision.to_dict()["slices"]
    assert [(s["key"], s["verdict"]) for s in slices] == [
        ("lane=C", NOT_SIGNIFICANT), ("lane=D", TOO_SMALL)]


def test_significant_but_within_tolerance_does_not_veto() -> None:
    # Clearly worse (upper bound < 0) yet by less than the tolerance: the tolerance still holds.
    slight = SliceComparison("lane=A", 5000, 0.21, 0.20, -0.05, lower=-0.07, upper=-0.03)
    assert decide(GATE, wape(0.20), wape(0.25), slices=[slight]).passed


def test_worse_slice_without_interval_is_too_small_not_a_veto() -> None:
    unjudged = SliceComparison("lane=A", 400, 0.30, 0.20, -0.50)  # no bounds
    decision = decide(GATE, wape(0.20), wape(0.25), slices=[unjudged])
    assert decision.passed and decision.slices[0].verdict == TOO_SMALL


def test_cold_start_judges_no_slices() -> None:
    s = SliceComparison("lane=A", 400, 0.30, 0.20, -0.50, lower=-0.6, upper=-0.4)
    decision = decide(GATE, wape(0.30), None, slices=[s])
    assert decision.passed and decision.slices == ()
    assert [c.name for c in decision.checks] == ["sanity", "floor", "beats_champion"]


def test_higher_is_better_metric() -> None:
    gate = GateConfig(floor=0.2, min_improvement=0.02, slice_tolerance=0.15)
    better = Evaluation("pr_auc", 0.6, 500)
    assert decide(gate, better, Evaluation("pr_auc", 0.5, 500)).passed
    assert not decide(gate, Evaluation("pr_auc", 0.15, 500), None).passed


def test_insane_predictions_are_rejected() -> None:
    decision = decide(GATE, wape(0.1), None, predictions_finite=False)
    assert not decision.passed
    assert [c.name for c in decision.checks if not c.passed] == ["sanity", "floor"]


def test_a_holdout_that_cannot_measure_the_metric_leaves_the_challenger_unjudged() -> None:
    """ROC-AUC on a holdout month without rain is undefined for every model: the gate cannot
    promote the challenger, but has no verdict on it either (no cooldown follows)."""
    gate = GateConfig(floor=0.6, min_improvement=0.02)
    one_class = decide(gate, Evaluation("roc_auc", float("nan"), 31),
                       Evaluation("roc_auc", float("nan"), 31), splits=9)
    assert not one_class.passed and one_class.unjudged and one_class.to_dict()["unjudged"]
    sanity = next(c for c in one_class.checks if c.name == "sanity")
    assert not sanity.passed
    assert sanity.detail.endswith("roc_auc is undefined on this holdout (one class only, or "
                                  "nothing to weigh): nothing to judge the challenger by")
    # A verdict on the challenger itself stays a rejection.
    assert not decide(gate, Evaluation("roc_auc", 0.5, 31), Evaluation("roc_auc", 0.7, 31)
                      ).unjudged
    assert not decide(GATE, wape(float("nan")), None, predictions_finite=False).unjudged
    assert not decide(GATE, wape(float("nan")), None, splits=0).unjudged
    assert not decide(gate, Evaluation("roc_auc", float("nan"), 0), None).unjudged


def test_a_model_without_a_split_is_rejected_whatever_its_metric() -> None:
    # A constant prediction can meet a floor and even beat a poor champion: it still learned
    # nothing from the features.
    constant = decide(GATE, wape(0.1), wape(0.5), splits=0)
    assert not constant.passed
    sanity = next(c for c in constant.checks if c.name == "sanity")
    assert not sanity.passed and "made no split" in sanity.detail
    assert decide(GATE, wape(0.1), wape(0.5), splits=12).passed


@pytest.mark.parametrize(("chal", "champ", "higher", "expected"), [
    (0.6, 0.5, True, 0.2), (0.4, 0.5, False, 0.2), (0.5, 0.4, False, -0.25)])
def test_relative_gain(chal: float, champ: float, higher: bool, expected: float) -> None:
    assert relative_gain(chal, champ, higher) == pytest.approx(expected)


@pytest.mark.parametrize(("field", "value"), [("slice_confidence", 1.0),
                                              ("slice_confidence", 0.5),
                                              ("slice_resamples", 10)])
def test_slice_significance_settings_are_checked(field: str, value: float) -> None:
    assert GATE.slice_confidence == 0.95 and GATE.slice_resamples == 300  # the defaults
    with pytest.raises(ValidationError, match=field):
        GateConfig(floor=0.4, **{field: value})
