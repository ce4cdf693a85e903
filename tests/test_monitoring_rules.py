"""The automatic-rollback rule and the live figures: pure, no database, no Prefect, no MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctpipe.config import load_config
from ctpipe.decisions.monitoring import LabelledBatch, judge_live
from ctpipe.live import JoinError, join_labels, measure

K = 3
RULE = {"metric": "pr_auc", "floor": 0.20, "higher_is_better": True, "margin": 0.05,
        "after": K}


def bad(i: int, champion: int = 2) -> LabelledBatch:
    # The champion at 0.30 while the previous champion scores 0.40 in shadow: 25 % worse.
    return LabelledBatch(f"2026-04-{i:02d}", champion, 0.30, 1, 0.40)


def good(i: int) -> LabelledBatch:
    return LabelledBatch(f"2026-04-{i:02d}", 2, 0.41, 1, 0.40)


@pytest.mark.parametrize("n", range(K))
def test_never_rolls_back_before_k_bad_batches(n: int) -> None:
    verdict = judge_live([good(1)] + [bad(2 + i) for i in range(n)], 2, **RULE)
    assert not verdict.rollback and verdict.target is None
    assert f"{n} of {K} consecutive labelled batches bad" in verdict.reason
    # A bad batch not yet confirmed is logged as watched, not as healthy (the decision log
    # said "healthy" beside "1 of 3 consecutive labelled batches bad").
    assert verdict.unconfirmed == tuple(f"2026-04-{2 + i:02d}" for i in range(n))
    assert verdict.decision_kind(rolled_back=False) == ("watching" if n else "healthy")


def test_the_decision_kind_of_a_confirmed_streak() -> None:
    verdict = judge_live([good(1)] + [bad(2 + i) for i in range(K)], 2, **RULE)
    assert verdict.decision_kind(rolled_back=True) == "rollback"
    refused = judge_live([good(1)] + [bad(2 + i) for i in range(K)], 2, **RULE,
                         target_refusal="v1 never passed the gate")
    assert refused.decision_kind(rolled_back=False) == "degraded"


def test_rolls_back_after_exactly_k_bad_batches_to_the_shadow() -> None:
    verdict = judge_live([good(1)] + [bad(2 + i) for i in range(K)], 2, **RULE)
    assert verdict.rollback and verdict.target == 1
    assert verdict.bad_batches == ("2026-04-02", "2026-04-03", "2026-04-04")
    assert verdict.reason.startswith(
        "automatic: v2 pr_auc 0.3000 on average over 3 consecutive bad labelled batches "
        "2026-04-02..2026-04-04 (the last, 2026-04-04: worse than v1 in shadow by 33.3%)")
    assert "previous champion v1 scored 0.4000 in shadow" in verdict.reason


def test_a_good_batch_restarts_the_count() -> None:
    history = [bad(1), bad(2), good(3), bad(4), bad(5)]
    assert not judge_live(history, 2, **RULE).rollback
    assert judge_live([*history, bad(6)], 2, **RULE).rollback


def test_an_unmeasurable_batch_is_no_evidence_either_way() -> None:
    # No positive label that day: pr_auc is undefined; the count neither grows nor restarts.
    blank = LabelledBatch("2026-04-03", 2, None, 1, 0.4)
    verdict = judge_live([good(1), bad(2), blank, bad(4)], 2, **RULE)
    assert not verdict.rollback and "2 of 3" in verdict.reason
    verdict = judge_live([good(1), bad(2), blank, bad(4), bad(5)], 2, **RULE)
    assert verdict.rollback and verdict.bad_batches == ("2026-04-02", "2026-04-04",
                                                        "2026-04-05")


def test_an_earlier_tenure_of_the_same_version_does_not_count() -> None:
    # v2 was bad twice, v3 took over, monitoring rolled back to v2, which is bad once more:
    # one bad batch in its current tenure, not three.
    history = [bad(1), bad(2), bad(3, champion=3), bad(4, champion=3), bad(5)]
    verdict = judge_live(history, 2, **RULE)
    assert not verdict.rollback and "1 of 3" in verdict.reason
    # The day after a rollback to v2, the late labels of v3's batches arrive: still nothing.
    assert "no labelled batch" in judge_live(history[:4], 2, **RULE).reason


def test_only_the_current_champions_batches_count() -> None:
    # v3 is champion now: v2's bad batches say nothing about it.
    history = [bad(1), bad(2), bad(3), bad(4, champion=3)]
    verdict = judge_live(history, 3, **RULE)
    assert not verdict.rollback and "1 of 3" in verdict.reason


def test_never_to_a_version_that_may_not_serve() -> None:
    history = [bad(1 + i) for i in range(K)]
    refusal = "version 1 of m never passed the gate (gate_decision=rejected)"
    verdict = judge_live(history, 2, target_refusal=refusal, **RULE)
    assert not verdict.rollback and verdict.target is None
    assert verdict.reason.startswith("degraded, not rolled back") and refusal in verdict.reason
    assert verdict.bad_batches  # the degradation is still reported


def test_below_the_floor_rolls_back_only_to_a_version_that_did_better() -> None:
    floor_breach = [LabelledBatch(f"2026-04-0{i}", 2, 0.10, 1, 0.09) for i in range(1, 4)]
    verdict = judge_live(floor_breach, 2, **RULE)
    assert not verdict.rollback and "did no better" in verdict.reason
    better = [LabelledBatch(f"2026-04-0{i}", 2, 0.10, 1, 0.102) for i in range(1, 4)]
    # 2 % better is inside the margin, but the floor alone makes these batches bad.
    verdict = judge_live(better, 2, **RULE)
    assert verdict.rollback and "below the gate floor" in verdict.reason


def test_no_shadow_no_rollback() -> None:
    history = [LabelledBatch(f"2026-04-0{i}", 2, 0.10, None, None) for i in range(1, 4)]
    verdict = judge_live(history, 2, **RULE)
    assert not verdict.rollback and "no previous champion scored" in verdict.reason


def test_lower_is_better_metrics() -> None:
    rule = {**RULE, "metric": "wape", "floor": 0.5, "higher_is_better": False}
    worse = [LabelledBatch(f"2026-04-0{i}", 2, 0.30, 1, 0.20) for i in range(1, 4)]
    assert judge_live(worse, 2, **rule).rollback
    within = [LabelledBatch(f"2026-04-0{i}", 2, 0.30, 1, 0.29) for i in range(1, 4)]
    assert not judge_live(within, 2, **rule).rollback
    # Past the floor, which is a maximum here: the reason says above, not below.
    breach = [LabelledBatch(f"2026-04-0{i}", 2, 0.60, 1, 0.40) for i in range(1, 4)]
    verdict = judge_live(breach, 2, **rule)
    assert verdict.rollback and "(the last, 2026-04-03: 0.6000, above the gate floor 0.5000)" \
        in verdict.reason, verdict


def test_a_mean_inside_the_floor_is_not_read_as_above_it() -> None:
    # Glucose, MAE floor 40: two batches 20 % worse than the shadow, then one past the floor.
    # The mean (38.0) is inside the floor; the reason says it is a mean and whose the floor
    # breach is.
    rule = {**RULE, "metric": "mae", "floor": 40.0, "higher_is_better": False}
    history = [LabelledBatch("2026-04-01", 2, 36.0, 1, 30.0),
               LabelledBatch("2026-04-02", 2, 36.0, 1, 30.0),
               LabelledBatch("2026-04-03", 2, 42.0, 1, 30.0)]
    verdict = judge_live(history, 2, **rule)
    assert verdict.rollback
    assert verdict.reason == (
        "automatic: v2 mae 38.0000 on average over 3 consecutive bad labelled batches "
        "2026-04-01..2026-04-03 (the last, 2026-04-03: 42.0000, above the gate floor 40.0000); "
        "previous champion v1 scored 30.0000 in shadow")


# --------------------------------------------------------------------------- live figures


def test_labels_join_by_id_in_any_order_and_late_rows_drop_out() -> None:
    config = load_config("fraud")
    rng = np.random.default_rng(0)
    n = 400
    ids = np.arange(1000, 1000 + n)
    labelled = pd.DataFrame({"transaction_id": ids, "is_fraud": (rng.random(n) < 0.3),
                             "channel": rng.choice(["pos", "wallet"], n),
                             "jurisdiction": "HK"})
    scores = labelled["is_fraud"].to_numpy() * 0.3 + rng.random(n) * 0.7
    logged = pd.DataFrame({"row_index": np.arange(n), "row_id": ids.astype(str),
                           "score": scores}).sample(frac=1.0, random_state=1)
    # Only 300 labels have arrived: the others are not in the labelled frame.
    joined = join_labels(logged, labelled.iloc[:300], config)
    assert len(joined) == 300
    np.testing.assert_array_equal(joined["score"].to_numpy(), scores[:300])
    figures = measure(config, joined, logged["score"].to_numpy())
    assert figures.rows_scored == n and figures.overall.rows == 300
    y = labelled["is_fraud"].to_numpy()[:300]
    from sklearn.metrics import average_precision_score

    assert figures.overall.value == pytest.approx(average_precision_score(y, scores[:300]))
    # min_slice_rows is 200: each channel has about 150 labelled rows, so only HK is measured.
    assert set(figures.slices) == {"jurisdiction=HK"}
    assert figures.overall.precision == 1.0  # above 0.7 only positives score


def test_without_ids_rows_join_by_position_or_not_at_all() -> None:
    demand = load_config("demand")
    config = demand.model_copy(update={"data": demand.data.model_copy(
        update={"id_column": None})})
    labelled = pd.DataFrame({config.data.target: [1.0, 2.0, 3.0]})
    logged = pd.DataFrame({"row_index": [2, 0, 1], "row_id": None, "score": [3.5, 1.5, 2.5]})
    joined = join_labels(logged, labelled, config)
    assert joined["score"].tolist() == [1.5, 2.5, 3.5]
    with pytest.raises(JoinError, match="cannot be matched by position"):
        join_labels(logged.iloc[:2], labelled, config)
