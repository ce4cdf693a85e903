"""The retraining policy's rules with plain values: pooled performance drift judged with a
bootstrap interval, label/prediction drift as optional triggers, the schedule counted from the
last attempt and the cooldown after a rejected challenger."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from ctpipe.config import DriftConfig, TrainingConfig, UseCaseConfig, repo_configs_dir
from ctpipe.decisions.change import (
    awaiting_new_data,
    change_to_learn,
    follow_up,
    learns_the_same_change,
    still_learning,
)
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.decisions.performance import PerformanceCheck, judge_performance, pool_labelled
from ctpipe.decisions.retraining import (
    COLD_START,
    DriftVerdict,
    PastAttempt,
    RetrainHistory,
    after_drift,
    after_gate,
    cooldown_batches,
    forced_retrain,
    retrain_history,
    retrain_reason,
    seen_in_labels,
)
from ctpipe.drift import DriftReport, FeatureDrift, MetricInterval, bootstrap_metric
from ctpipe.drift.performance import FAST_METRICS
from ctpipe.lineage import Lineage
from ctpipe.metrics import get_metric, roc_auc, wape
from ctpipe.records import CycleRecord
from ctpipe.steps.drift import drift_onset
from tests.fakes import MemoryStore

DAY = dt.date(2026, 3, 20)
BASELINE_AUC = 0.75  # a score with signal 0.95 sd between classes has ROC-AUC ~0.75


def _days(n: int, start: dt.date = dt.date(2026, 3, 1)) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


def _rows(n: int, signal: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(float)
    return y, rng.normal(size=n) + signal * y


def _judge(y: np.ndarray, score: np.ndarray, *, tolerance: float = 0.1, seed: int = 7):
    interval = bootstrap_metric(y, score, roc_auc, resamples=300, confidence=0.95, seed=seed,
                                name="roc_auc")
    return judge_performance(batches=["2026-03-19", "2026-03-20"], metric="roc_auc",
                             baseline=BASELINE_AUC, interval=interval, rows=len(y),
                             min_rows=50, tolerance=tolerance, higher_is_better=True)


# --------------------------------------------------------------------------- bootstrap block


def test_bootstrap_is_seeded_and_counts_degenerate_resamples() -> None:
    y = np.zeros(40)
    y[:2] = 1  # two positives: many resamples hold none, ROC-AUC is undefined there
    score = np.linspace(0, 1, 40)
    a = bootstrap_metric(y, score, roc_auc, resamples=200, confidence=0.95, seed=3,
                         name="roc_auc")
    b = bootstrap_metric(y, score, roc_auc, resamples=200, confidence=0.95, seed=3,
                         name="roc_auc")
    assert a == b
    assert 0 < a.degenerate < 200 and a.used == 200 - a.degenerate
    assert a.low <= a.point <= a.high or a.point == pytest.approx(a.high)


@pytest.mark.parametrize("name", sorted(FAST_METRICS))
def test_fast_metrics_equal_the_registry(name: str) -> None:
    rng = np.random.default_rng(5)
    for n, ties in ((30, True), (200, False), (500, True)):
        y = (rng.random(n) < 0.3).astype(float)
        score = rng.integers(0, 8, n).astype(float) if ties else rng.random(n)
        assert FAST_METRICS[name](y, score) == pytest.approx(get_metric(name).fn(y, score),
                                                             abs=1e-12)
    assert np.isnan(FAST_METRICS[name](np.zeros(5), np.arange(5.0)))


def test_bootstrap_of_a_large_pool_resamples_a_subsample_and_rescales() -> None:
    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 10.0, size=50_000)
    pred = y * rng.normal(1.0, 0.2, size=y.size)
    full = bootstrap_metric(y, pred, wape, resamples=100, confidence=0.95, seed=1,
                            max_rows=50_000)
    sub = bootstrap_metric(y, pred, wape, resamples=100, confidence=0.95, seed=1,
                           max_rows=5_000)
    assert sub.point == full.point
    # The rescaled interval has the width of the full bootstrap's, not the 10x-smaller
    # sample's (sqrt(10) ~ 3.2 times wider).
    assert (sub.high - sub.low) == pytest.approx(full.high - full.low, rel=0.35)


# --------------------------------------------------------------------------- performance drift


def test_concept_shift_on_pooled_rows_is_significant() -> None:
    # The features no longer tell the classes apart: ROC-AUC ~0.5 against 0.75 at promotion.
    check = _judge(*_rows(200, 0.0, seed=11))
    assert check.judged and check.drifted
    assert check.degradation_low > 0.1 and check.rows == 200
    assert "interval" in check.summary() and "2026-03-19..2026-03-20" in check.summary()


def test_a_model_as_good_as_at_promotion_on_noisy_small_pools_is_not_flagged() -> None:
    flagged = [_judge(*_rows(60, 0.95, seed=s), seed=s).drifted for s in range(25)]
    assert not any(flagged)
    # The point estimate alone would have flagged some of them (noisy 60-row pools).
    points = [(BASELINE_AUC - roc_auc(*_rows(60, 0.95, seed=s))) / BASELINE_AUC
              for s in range(25)]
    assert max(points) > 0.1


def test_lower_is_better_metric_swaps_the_bounds() -> None:
    check = judge_performance(batches=["d"], metric="wape", baseline=0.2, rows=99, min_rows=50,
                              interval=MetricInterval(0.3, 0.27, 0.33, 0.95, 400, 0, 99),
                              tolerance=0.1, higher_is_better=False)
    assert check.drifted
    assert check.degradation == pytest.approx(0.5)
    assert (check.degradation_low, check.degradation_high) == pytest.approx((0.35, 0.65))
    wide = judge_performance(batches=["d"], metric="wape", baseline=0.2, rows=99, min_rows=50,
                             interval=MetricInterval(0.3, 0.2, 0.4, 0.95, 400, 0, 99),
                             tolerance=0.1, higher_is_better=False)
    assert not wide.drifted and wide.judged  # 50 % worse, but 0 % is inside the interval


def test_a_champion_wholly_beyond_the_gate_floor_has_drifted_whatever_its_degradation() -> None:
    # Promoted just inside the floor (ROC-AUC 0.62 against 0.6), now 0.56: 10 % worse is not
    # above a 10 % tolerance, but no challenger that bad would be promoted today.
    common = {"batches": ["d"], "metric": "roc_auc", "baseline": 0.62, "rows": 400,
              "min_rows": 50, "tolerance": 0.1, "higher_is_better": True, "floor": 0.6}
    slipped = judge_performance(interval=MetricInterval(0.56, 0.53, 0.59, 0.95, 400, 0, 400),
                                **common)
    assert slipped.drifted and slipped.below_floor
    assert slipped.degradation_low < slipped.tolerance  # the floor alone made it drift
    assert slipped.summary().endswith("; beyond the gate floor: its roc_auc interval 0.5300 "
                                      "to 0.5900 lies wholly below gate.floor 0.6000")
    straddling = judge_performance(
        interval=MetricInterval(0.58, 0.55, 0.61, 0.95, 400, 0, 400), **common)
    assert not straddling.drifted and not straddling.below_floor
    assert "floor" not in straddling.summary()
    # Lower is better: the floor is a maximum, and the interval's lower bound must clear it.
    wape_common = {**common, "metric": "wape", "baseline": 0.38, "higher_is_better": False,
                   "floor": 0.4}
    above = judge_performance(interval=MetricInterval(0.42, 0.41, 0.43, 0.95, 400, 0, 400),
                              **wape_common)
    assert above.drifted and above.below_floor and "lies wholly above gate.floor 0.4000" \
        in above.summary()
    assert not judge_performance(interval=MetricInterval(0.42, 0.39, 0.45, 0.95, 400, 0, 400),
                                 **wape_common).drifted
    assert json.loads(json.dumps(slipped.to_dict()))["below_floor"] is True


def test_cannot_judge_says_why() -> None:
    common = {"metric": "roc_auc", "min_rows": 50, "higher_is_better": True}
    few = judge_performance(batches=["2026-03-20"], baseline=0.7, interval=None, rows=32,
                            tolerance=0.1, **common)
    assert not few.judged and not few.drifted
    assert few.note == ("cannot judge: 32 labelled rows in 1 batch, "
                        "drift.min_performance_rows is 50")
    assert judge_performance(batches=["d"], baseline=0.7, interval=None, rows=99,
                             tolerance=None, **common).note.startswith(
        "cannot judge: drift.performance_tolerance is null")
    assert "no holdout metric" in judge_performance(
        batches=["d"], baseline=None, interval=None, rows=99, tolerance=0.1, **common).note
    assert "no labelled batch newer than the champion's training data (seen until 2026-03-01)" \
        in judge_performance(batches=[], baseline=0.7, interval=None, rows=0, tolerance=0.1,
                             seen_until="2026-03-01", **common).note
    mostly_one_class = MetricInterval(0.6, 0.4, 0.8, 0.95, 400, 260, 99)
    degenerate = judge_performance(batches=["d"], baseline=0.7, interval=mostly_one_class,
                                   rows=99, tolerance=0.1, **common)
    assert not degenerate.judged
    assert degenerate.note == ("cannot judge: 260 of 400 bootstrap resamples left roc_auc "
                               "undefined (one class only?)")


def test_performance_check_json_keeps_the_old_keys() -> None:
    check = _judge(*_rows(120, 0.95, seed=1))
    raw = json.loads(json.dumps(check.to_dict()))
    assert {"batch", "metric", "baseline", "current", "degradation", "drifted",
            "tolerance"} <= set(raw)
    assert raw["batch"] == "2026-03-20" and raw["batches"] == ["2026-03-19", "2026-03-20"]


def test_pool_newest_first_until_enough_rows_within_the_window() -> None:
    d = _days(5)
    fresh = [(d[0], 30), (d[1], 30), (d[2], 30), (d[3], 30), (d[4], 30)]
    assert pool_labelled(fresh, window=14, min_rows=50) == [d[3], d[4]]
    assert pool_labelled(fresh, window=14, min_rows=30) == [d[4]]
    assert pool_labelled(fresh, window=3, min_rows=500) == [d[2], d[3], d[4]]
    assert pool_labelled([], window=3, min_rows=50) == []


def test_a_batch_the_pool_may_not_use_is_skipped_and_the_pool_reaches_further_back() -> None:
    d = _days(5)
    fresh = [(day, 30) for day in d]
    asked: list = []

    def usable(day) -> bool:  # noqa: ANN001
        asked.append(day)
        return day != d[4]

    assert pool_labelled(fresh, window=14, min_rows=50, usable=usable) == [d[2], d[3]]
    assert asked == [d[4], d[3], d[2]]  # newest first, no further back than the pool reaches
    # A skipped batch still counts towards the window: the reach stays the newest 2.
    assert pool_labelled(fresh, window=2, min_rows=500, usable=usable) == [d[3]]


def test_a_pool_the_validation_rules_emptied_says_so() -> None:
    common = dict(metric="roc_auc", baseline=0.8, interval=None, rows=0, min_rows=50,
                  tolerance=0.1, higher_is_better=True)
    emptied = judge_performance(batches=[], left_out=["2026-03-19", "2026-03-20"], **common)
    assert not emptied.judged and emptied.note == (
        "cannot judge: every labelled batch it reached fails the current validation rules as "
        "it is now: 2026-03-19, 2026-03-20")
    replaced = judge_performance(batches=[], unread="b.parquet: changed since it passed "
                                 "validation", **common)
    assert replaced.note == "cannot judge: b.parquet: changed since it passed validation"


# --------------------------------------------------------------------------- triggers


def _report(drifted: bool) -> DriftReport:
    feats = [FeatureDrift("a", "numeric", "ks", 0.5 if drifted else 0.01, 0.05, drifted,
                          0.001 if drifted else 0.9, 10, 10, 0, 0, "")]
    return DriftReport(features=feats, drift_share=1.0 if drifted else 0.0, threshold_share=0.5,
                       dataset_drift=drifted)


LABEL_DRIFT = FeatureDrift("label", "categorical", "chisquare", 41.0, 0.05, True, 3e-10, 900,
                           60, 0, 0, "")
PREDICTION_DRIFT = FeatureDrift("prediction", "numeric", "ks", 0.4, 0.05, True, 2e-4, 900, 60,
                                0, 0, "")
SUMMARIES = {"label": "positive rate 10.2% vs 31.8% in training",
             "prediction": "mean 0.12 vs 0.3 in training"}


def test_label_and_prediction_drift_trigger_only_when_configured() -> None:
    common = {"report": _report(False), "performance": None,
              "outputs": [LABEL_DRIFT, PREDICTION_DRIFT], "summaries": SUMMARIES}
    assert retrain_reason(**common).reason is None  # default triggers: reported only
    label = retrain_reason(triggers=["data", "performance", "label"], **common).reason
    assert label == ("label drift: positive rate 10.2% vs 31.8% in training "
                     "(chisquare p=3e-10)")
    both = retrain_reason(triggers=["label", "prediction"], **common).reason
    assert both.endswith("; prediction drift: mean 0.12 vs 0.3 in training (ks p=0.0002)")
    verdict = DriftVerdict(_report(False), None, None, (LABEL_DRIFT,), triggers=("data",))
    assert not verdict.drift_detected
    assert DriftVerdict(_report(False), None, None, (LABEL_DRIFT,),
                        triggers=("label",)).drift_detected


def test_data_drift_off_does_not_retrain() -> None:
    assert retrain_reason(report=_report(True), performance=None,
                          triggers=["performance"]).reason is None
    assert retrain_reason(report=_report(True), performance=None).reason.startswith(
        "data drift")


# --------------------------------------------------------------------------- schedule, cooldown


def test_schedule_counts_from_the_last_attempt_not_the_training_window() -> None:
    dates = _days(20)  # 2026-03-01 .. 2026-03-20
    rejected = PastAttempt(dt.date(2026, 3, 10), 7, rejected=True)
    for day, due in ((dt.date(2026, 3, 13), False), (dt.date(2026, 3, 14), True)):
        history = retrain_history(day=day, batch_dates=dates, attempts=[rejected],
                                  trained_until="2026-03-01")
        assert history.since_training > 4  # the old rule would retrain every batch
        call = retrain_reason(report=_report(False), performance=None, history=history,
                              retrain_every=4)
        assert (call.reason == "scheduled: 4 batches since the last retrain attempt "
                "(2026-03-10)") if due else call.reason is None
    # No attempt recorded: from the champion's training window, as before.
    history = retrain_history(day=dt.date(2026, 3, 5), batch_dates=dates, attempts=[],
                              trained_until="2026-03-01")
    assert retrain_reason(report=_report(False), performance=None, history=history,
                          retrain_every=4).reason == \
        "scheduled: 4 batches since the champion's training window"


def test_drift_waits_until_the_window_trains_on_batches_from_its_onset() -> None:
    onset = dt.date(2026, 4, 1)
    before = [dt.date(2026, 3, d) for d in range(10, 31)]
    # Trained now, the challenger would never see the new regime: it would be rejected.
    why = awaiting_new_data(onset=onset, train_batches=before, needed=1)
    # One plain sentence (it read "would see 0 of the 1 labelled batch from the drift's onset
    # (...) on that training.min_batches_after_drift asks for").
    assert why == ("waiting for the new data: a challenger trained now would see 0 labelled "
                   "batches since the drift's onset (2026-04-01), and "
                   "training.min_batches_after_drift asks for 1")
    assert awaiting_new_data(onset=onset, train_batches=[*before, onset], needed=3) == (
        "waiting for the new data: a challenger trained now would see 1 labelled batch since "
        "the drift's onset (2026-04-01), and training.min_batches_after_drift asks for 3")
    assert awaiting_new_data(onset=onset, train_batches=[*before, onset], needed=1) is None
    assert awaiting_new_data(onset=onset, train_batches=[*before, onset], needed=2) is not None
    assert awaiting_new_data(onset=onset, train_batches=before, needed=0) is None
    assert awaiting_new_data(onset=onset, train_batches=None, needed=1) is None  # too short
    held = retrain_reason(report=_report(True), performance=None, awaiting=why)
    assert held.reason is None and held.cooling.startswith("drift persists (data drift: ")
    assert held.cooling.endswith(f"but {why}")
    # A due schedule still retrains; a cold start never waits.
    due = retrain_reason(report=_report(True), performance=None, awaiting=why,
                         history=RetrainHistory(since_training=9), retrain_every=5)
    assert due.reason.startswith("scheduled: 9 batches") and due.cooling is None
    assert retrain_reason(report=None, performance=None, awaiting=why).reason == COLD_START


def test_follow_ups_retrain_as_the_new_data_grows_until_enough() -> None:
    onset = dt.date(2026, 4, 1)

    def due(seen: int, available: int, *, until: int = 8, growth: float = 2.0) -> bool:
        return follow_up(onset=onset, seen=seen, available=available, until=until,
                         growth=growth) is not None

    # The newest challenger saw 1 batch of the new regime: again at 2, 4, then 8 (the cap),
    # promoted or rejected alike, so a noisy rejection cannot freeze a half-learned champion.
    assert not due(1, 1) and due(1, 2) and not due(2, 3) and due(2, 4) and due(4, 8)
    assert due(5, 8) and not due(5, 7)  # the cap: twice 5 is more than 8
    assert not due(8, 16)  # an attempt saw enough: no more follow-ups
    assert not due(1, 2, until=0) and not due(0, 2)
    # The default growth, 3: 1, 3, 9, then the whole training part (19 for demand's window).
    assert not due(1, 2, until=19, growth=3) and due(1, 3, until=19, growth=3)
    assert not due(3, 8, until=19, growth=3) and due(3, 9, until=19, growth=3)
    assert not due(9, 18, until=19, growth=3) and due(9, 19, until=19, growth=3)
    assert not due(19, 19, until=19, growth=3)
    assert due(2, 5, growth=2.5) and not due(2, 4, growth=2.5)  # ceil(2.5 * 2) = 5
    assert follow_up(onset=None, seen=1, available=2, until=8, growth=2) is None
    why = follow_up(onset=onset, seen=1, available=3, until=8)
    assert why == ("follow-up after drift: the newest challenger learned the change since "
                   "2026-04-01 from 1 labelled batch; one trained now sees 3 "
                   "(follow-ups until 8)")
    # Retrains like a due schedule: without drift, and through a cooldown.
    assert retrain_reason(report=_report(False), performance=None, follow=why).reason == why
    assert retrain_reason(report=_report(False), performance=None).reason is None
    rejected = PastAttempt(dt.date(2026, 4, 3), 3, True)
    history = RetrainHistory(2, 1, rejected, 1, rejected, 1)
    cooling = retrain_reason(report=_report(True), performance=None, rejection_cooldown=3,
                             max_rejection_cooldown=12, history=history)
    assert cooling.reason is None and cooling.cooling.endswith("1 of 3 batches")
    through = retrain_reason(report=_report(True), performance=None, follow=why,
                             rejection_cooldown=3, max_rejection_cooldown=12, history=history)
    assert through.reason == why and through.cooling is None


def test_follow_ups_end_at_the_training_part_whatever_the_setting() -> None:
    raw = yaml.safe_load((repo_configs_dir() / "demand.yaml").read_text())  # window 21 - 2

    def until(value: object) -> int:
        return UseCaseConfig.model_validate(
            {**raw, "training": {**raw["training"], "follow_up_until": value}}
        ).training.follow_ups_until

    # Beyond the training part no challenger could ever see enough: the follow-ups would
    # stay open, holding drift and tying every retrain to the old change.
    assert [until(None), until(8), until(19), until(40), until(0)] == [19, 8, 19, 19, 0]


def test_between_follow_ups_only_performance_drift_retrains() -> None:
    onset = dt.date(2026, 4, 1)
    learning = still_learning(onset=onset, seen=3, until=19, growth=3)
    assert learning == ("the champion is still learning the change since 2026-04-01 (the "
                        "newest attempt saw 3 of its batches): the next follow-up retrains "
                        "when a challenger sees 9")
    assert still_learning(onset=onset, seen=9, until=19, growth=3).endswith("sees 19")
    # Done, never started, or off: nothing holds.
    assert still_learning(onset=onset, seen=19, until=19, growth=3) is None
    assert still_learning(onset=None, seen=3, until=19, growth=3) is None
    assert still_learning(onset=onset, seen=0, until=19, growth=3) is None
    assert still_learning(onset=onset, seen=3, until=0, growth=3) is None
    # Data drift against a reference that still holds the old regime waits...
    held = retrain_reason(report=_report(True), performance=None, learning=learning)
    assert held.reason is None
    assert held.cooling.startswith("drift persists (data drift: 1 of 1 tested features")
    assert held.cooling.endswith(f"but {learning}")
    # ...a due follow-up or schedule retrains...
    follow = follow_up(onset=onset, seen=3, available=9, until=19)
    assert retrain_reason(report=_report(True), performance=None, learning=learning,
                          follow=follow).reason == follow
    # ...and so does performance drift: the champion falls short of its own holdout level.
    fell = PerformanceCheck(batch="2026-04-08", metric="wape", baseline=0.2, current=0.3,
                            degradation=0.5, drifted=True, tolerance=0.1,
                            batches=("2026-04-08",), rows=400, degradation_low=0.3,
                            degradation_high=0.7, confidence=0.95, resamples=400)
    worse = retrain_reason(report=_report(True), performance=fell, learning=learning)
    assert "performance drift" in worse.reason and worse.cooling is None


def test_a_challenger_refreshes_the_champion_when_it_learns_the_same_change() -> None:
    onset, later = dt.date(2026, 4, 1), dt.date(2026, 4, 9)
    learning = Lineage(change_onset=onset.isoformat())
    assert learns_the_same_change(learning, onset) == "2026-04-01"
    assert learns_the_same_change(learning, later) is None  # a new change
    assert learns_the_same_change(learning, None) is None  # learns no change
    assert learns_the_same_change(Lineage(), onset) is None  # the champion learned none
    assert learns_the_same_change(None, onset) is None  # cold start
    # A version older than the change_onset tag: its emphasis says which change it learned.
    assert learns_the_same_change(Lineage(emphasis_from="2026-04-01"), onset) == "2026-04-01"


def test_a_retrain_learns_the_champions_open_change_else_the_drift_once_trainable() -> None:
    old, new = dt.date(2026, 4, 1), dt.date(2026, 4, 7)

    def learns(drift: dt.date | None, awaiting: str | None = None, seen: int = 2,
               retrains: bool = True) -> dt.date | None:
        return change_to_learn(drift_onset=drift, awaiting=awaiting, learned=old, seen=seen,
                               until=8, retrains=retrains)

    # While the champion's follow-ups are open, a drift seen meanwhile (mostly the same change
    # against a reference still holding the old regime) learns the champion's change: its
    # onset is older and covers a new change too.
    assert learns(new) == old
    assert learns(new, awaiting="waiting for the new data") == old
    assert learns(None) == old  # a follow-up or a due schedule
    # Once an attempt has seen follow_up_until batches of it: the drift's own onset, when the
    # window holds its batches.
    assert learns(new, seen=8) == new
    assert learns(None, seen=8) is None and learns(new, awaiting="waiting", seen=8) is None
    assert learns(new, retrains=False) is None  # no retrain, nothing to learn
    assert change_to_learn(drift_onset=new, awaiting=None, learned=None, seen=0, until=8,
                           retrains=True) == new
    assert change_to_learn(drift_onset=None, awaiting=None, learned=None, seen=0, until=8,
                           retrains=True) is None


def test_the_onset_is_the_oldest_labelled_evidence_of_the_run_of_drift() -> None:
    config = UseCaseConfig.model_validate(yaml.safe_load(
        (repo_configs_dir() / "demand.yaml").read_text()))
    store = MemoryStore(config)
    days = _days(8, dt.date(2026, 4, 1))
    for d in days:
        store.batches[d] = pd.DataFrame({"x": [0.0]})
    rt = SimpleNamespace(store=store)

    def record(d: dt.date, drifted: bool, onset: dt.date | None = None) -> None:
        store.write_record(CycleRecord(use_case="demand", batch_date=d.isoformat(),
                                       drift_detected=drifted,
                                       drift_onset=onset.isoformat() if onset else None))

    record(days[0], False)
    # Day 2 saw performance drift on day 1's labels: the drift began on day 1.
    record(days[1], True, days[0])
    record(days[2], True, days[2])
    assert drift_onset(rt, days[3], "") == days[0]
    # A batch without drift ends the run; records written before onsets were kept count as
    # their own batch; nothing at or before the champion's data counts.
    record(days[3], False)
    record(days[4], True)
    assert drift_onset(rt, days[5], "") == days[4]
    assert drift_onset(rt, days[3], days[1].isoformat()) == days[2]
    assert drift_onset(rt, days[6], "") == days[6]  # day 6 has no record: no run of drift
    # An onset recorded at or before the champion's data (a batch the previous champion
    # judged) is a change this champion was trained on: the batch is its own onset.
    record(days[5], True, days[1])
    assert drift_onset(rt, days[6], days[2].isoformat()) == days[4]
    assert drift_onset(rt, days[6], "") == days[1]


def test_label_evidence_is_only_a_configured_trigger_that_fired() -> None:
    assert seen_in_labels(None, [LABEL_DRIFT], ("data", "label"))
    assert not seen_in_labels(None, [LABEL_DRIFT], ("data", "performance"))
    assert not seen_in_labels(None, [PREDICTION_DRIFT], ("prediction", "label"))


def test_cooldown_doubles_up_to_the_longest() -> None:
    assert [cooldown_batches(k, base=3, longest=12) for k in range(6)] == [0, 3, 6, 12, 12, 12]
    assert cooldown_batches(2, base=0, longest=12) == 0


def _call(day: dt.date, attempts: list[PastAttempt], **kw) -> object:
    history = retrain_history(day=day, batch_dates=_days(40), attempts=attempts,
                              trained_until="2026-03-01")
    return retrain_reason(report=_report(True), performance=None, history=history,
                          rejection_cooldown=3, max_rejection_cooldown=12, **kw)


def test_drift_cools_down_after_rejections_and_resets_after_a_promotion() -> None:
    first = PastAttempt(dt.date(2026, 3, 14), 6, rejected=True)
    second = PastAttempt(dt.date(2026, 3, 20), 7, rejected=True)
    cooling = _call(dt.date(2026, 3, 22), [first, second])
    assert cooling.reason is None
    assert cooling.cooling.startswith("drift persists (data drift: 1 of 1 tested features")
    assert cooling.cooling.endswith("but cooling down after v7 was rejected on 2026-03-20 "
                                    "(2 consecutive rejections): 2 of 6 batches")
    assert _call(dt.date(2026, 3, 26), [first, second]).cooling.endswith("6 of 6 batches")
    assert _call(dt.date(2026, 3, 27), [first, second]).reason.startswith("data drift")
    # One rejection: 3 batches.
    assert _call(dt.date(2026, 3, 23), [second]).cooling.endswith("3 of 3 batches")
    assert _call(dt.date(2026, 3, 24), [second]).reason.startswith("data drift")
    # A promotion resets: the rejection after it is the first again.
    promoted = PastAttempt(dt.date(2026, 3, 17), 8, rejected=False)
    assert _call(dt.date(2026, 3, 22), [first, promoted, second]).cooling.endswith(
        "(1 consecutive rejection): 2 of 3 batches")
    assert _call(dt.date(2026, 3, 18), [first, promoted]).reason.startswith("data drift")
    # A due schedule still retrains while drift cools down.
    scheduled = _call(dt.date(2026, 3, 22), [first, second], retrain_every=2)
    assert scheduled.reason.startswith("scheduled: 2 batches") and scheduled.cooling is None
    # The batch's own earlier attempt (a rerun) does not count.
    assert _call(dt.date(2026, 3, 20), [second]).reason.startswith("data drift")


@pytest.mark.parametrize("silent", [
    # The champion held up against its own refresh: that says nothing against a new drift.
    PastAttempt(dt.date(2026, 3, 20), 9, rejected=True, follow_up=True),
    # The holdout could not measure the metric (one class): nothing was said against it.
    PastAttempt(dt.date(2026, 3, 20), 9, rejected=False, unjudged=True),
], ids=["rejected follow-up", "unjudged"])
def test_an_attempt_that_says_nothing_against_retraining_starts_no_cooldown(
        silent: PastAttempt) -> None:
    assert _call(dt.date(2026, 3, 21), [silent]).reason.startswith("data drift")
    # It neither adds to nor restarts a drift retrain's cooldown before it: 3 batches from
    # v8's rejection, whoever was tried since.
    drift = PastAttempt(dt.date(2026, 3, 18), 8, rejected=True)
    assert _call(dt.date(2026, 3, 21), [drift, silent]).cooling.endswith(
        "cooling down after v8 was rejected on 2026-03-18 (1 consecutive rejection): "
        "3 of 3 batches")
    assert _call(dt.date(2026, 3, 22), [drift, silent]).reason.startswith("data drift")
    # The schedule counts from it, as from any attempt.
    history = retrain_history(day=dt.date(2026, 3, 22), batch_dates=_days(40),
                              attempts=[drift, silent], trained_until="2026-03-01")
    assert history.last_attempt == silent and history.since_attempt == 2
    assert history.rejections == 1 and history.rejected == drift


def test_an_unjudged_challenger_is_not_promoted_and_says_why() -> None:
    said = after_gate(passed=False, reasons=["sanity: ..."], version=9, needs_approval=False,
                      unjudged=True)
    assert said.status is CycleStatus.REJECTED
    assert said.message == "challenger v9 cannot be judged on its holdout, not promoted: " \
        "sanity: ..."
    assert after_gate(passed=False, reasons=["floor: ..."], version=9,
                      needs_approval=False).message == "challenger v9 rejected: floor: ..."


def test_cold_start_is_never_delayed_and_cooling_ends_as_its_own_status() -> None:
    rejected = PastAttempt(dt.date(2026, 3, 19), 7, rejected=True)
    assert retrain_reason(report=None, performance=None,
                          history=RetrainHistory(0, 1, rejected, 1), rejection_cooldown=3,
                          max_rejection_cooldown=12).reason == COLD_START
    verdict = after_drift(retrain_reason=None, retrain_inline=True, cooling="drift persists")
    assert verdict.status is CycleStatus.COOLING_DOWN
    assert verdict.message == "champion kept: drift persists"
    assert after_drift(retrain_reason=None, retrain_inline=True).status is CycleStatus.NO_DRIFT


def test_an_operators_force_retrains_whatever_the_policy_holds_back() -> None:
    """`ctpipe cycle --date D --force` during a cooldown ended cooling-down and trained
    nothing: the cooldown restrains the automatic policy, not an operator."""
    rejected = PastAttempt(dt.date(2026, 3, 19), 7, rejected=True)
    cooling = retrain_reason(report=_report(True), performance=None,
                             history=RetrainHistory(2, 1, rejected, 1, rejected, 1),
                             rejection_cooldown=3, max_rejection_cooldown=12)
    assert cooling.reason is None and cooling.cooling is not None
    forced = forced_retrain(cooling, force=True, performance=None)
    assert forced.cooling is None
    assert forced.reason == ("forced by the operator (--force, or force=true on a run); the "
                             "retraining policy alone would keep the champion: "
                             f"{cooling.cooling}")
    assert after_drift(retrain_reason=forced.reason, retrain_inline=True).go_on
    assert forced_retrain(cooling, force=False, performance=None) == cooling
    # The wait for post-drift data and no drift at all: forced alike, saying why not alone.
    why = awaiting_new_data(onset=DAY, train_batches=[DAY - dt.timedelta(days=1)], needed=1)
    held = retrain_reason(report=_report(True), performance=None, awaiting=why)
    assert forced_retrain(held, force=True, performance=None).reason.endswith(why)
    calm = retrain_reason(report=_report(False), performance=None)
    assert forced_retrain(calm, force=True, performance=None).reason == (
        "forced by the operator (--force, or force=true on a run); the retraining policy alone "
        "would keep the champion: no drift")
    # A retrain the policy asks for keeps its own reason.
    drift = retrain_reason(report=_report(True), performance=None)
    assert forced_retrain(drift, force=True, performance=None) == drift


def test_champion_kept_says_when_performance_was_not_judged() -> None:
    """A replay on tiny batches said "no drift: champion kept" while the drift artifact said
    the performance check could not judge: the message must not claim what nobody checked."""
    batches = [d.isoformat() for d in _days(14)]
    few = judge_performance(batches=batches, metric="roc_auc", baseline=0.7, interval=None,
                            rows=14, min_rows=50, tolerance=0.1, higher_is_better=True)
    kept = after_drift(retrain_reason=None, retrain_inline=True, performance=few,
                       triggers=("data", "performance"))
    assert kept.status is CycleStatus.NO_DRIFT  # the decision is unchanged: only the words
    assert kept.message == ("no data drift; performance not judged (14 labelled rows in 14 "
                            "batches, drift.min_performance_rows is 50): champion kept")
    every = after_drift(retrain_reason=None, retrain_inline=True, performance=few,
                        triggers=("prediction", "performance", "data", "label"))
    assert every.message.startswith("no data, label or prediction drift; performance not "
                                    "judged (14 labelled rows")
    assert after_drift(retrain_reason=None, retrain_inline=True, performance=few,
                       triggers=("performance",)).message.startswith("performance not judged")
    off = judge_performance(batches=batches, metric="roc_auc", baseline=0.7, interval=None,
                            rows=99, min_rows=50, tolerance=None, higher_is_better=True)
    assert after_drift(retrain_reason=None, retrain_inline=True, performance=off).message == (
        "no data drift; performance check off (drift.performance_tolerance is null): "
        "champion kept")
    # Judged, or not a trigger (reported only): "no drift" is the whole truth.
    judged = _judge(*_rows(400, 0.95, seed=3))
    assert judged.judged and not judged.drifted
    assert after_drift(retrain_reason=None, retrain_inline=True,
                       performance=judged).message == "no drift: champion kept"
    assert after_drift(retrain_reason=None, retrain_inline=True, performance=few,
                       triggers=("data",)).message == "no drift: champion kept"
    # Cooling down and retraining read as before.
    assert after_drift(retrain_reason=None, retrain_inline=True, cooling="drift persists",
                       performance=few).message == "champion kept: drift persists"
    assert after_drift(retrain_reason="data drift", retrain_inline=True, performance=few).go_on


def test_label_drift_is_not_claimed_when_no_labelled_batch_was_new() -> None:
    none_new = judge_performance(batches=[], metric="roc_auc", baseline=0.7, interval=None,
                                 rows=0, min_rows=50, tolerance=0.1, higher_is_better=True)
    triggers = ("data", "performance", "label")
    kept = after_drift(retrain_reason=None, retrain_inline=True, performance=none_new,
                       triggers=triggers, labels_judged=False)
    assert kept.message == ("no data drift; performance and label drift not judged (no "
                            "labelled batch newer than the champion's training data): "
                            "champion kept")
    # Labels were there (too few rows for a metric): label drift was measured, and stable.
    assert after_drift(retrain_reason=None, retrain_inline=True, performance=none_new,
                       triggers=triggers).message.startswith(
        "no data or label drift; performance not judged")
    # Label drift not a trigger: nothing more to say about it.
    assert after_drift(retrain_reason=None, retrain_inline=True, performance=none_new,
                       labels_judged=False).message.startswith(
        "no data drift; performance not judged")
    # Performance not a trigger, or its check off: label drift still says it was not judged.
    assert after_drift(retrain_reason=None, retrain_inline=True, performance=none_new,
                       triggers=("data", "label"), labels_judged=False).message == (
        "no data drift; label drift not judged (no labelled batch newer than the champion's "
        "training data): champion kept")
    off = judge_performance(batches=[], metric="roc_auc", baseline=0.7, interval=None, rows=0,
                            min_rows=50, tolerance=None, higher_is_better=True)
    assert after_drift(retrain_reason=None, retrain_inline=True, performance=off,
                       triggers=triggers, labels_judged=False).message == (
        "no data drift; performance check off (drift.performance_tolerance is null); label "
        "drift not judged (no labelled batch newer than the champion's training data): "
        "champion kept")
    forced = forced_retrain(retrain_reason(report=_report(False), performance=none_new,
                                           triggers=triggers),
                            force=True, performance=none_new, triggers=triggers,
                            labels_judged=False)
    assert forced.reason.endswith("keep the champion: no data drift; performance and label "
                                  "drift not judged (no labelled batch newer than the "
                                  "champion's training data)")


def test_config_rules_for_the_policy_settings() -> None:
    assert DriftConfig().triggers == ["data", "performance"]
    assert DriftConfig().performance_tolerance == 0.1
    with pytest.raises(ValidationError, match="triggers"):
        DriftConfig(triggers=["labels"])
    with pytest.raises(ValidationError, match=r"max_rejection_cooldown \(2\) must be >= "
                       r"rejection_cooldown \(3\)"):
        TrainingConfig(max_rejection_cooldown=2)


def test_drift_emphasis_weighs_the_batches_from_the_onset() -> None:
    from ctpipe.config import load_config
    from ctpipe.training import sample_weights

    cfg = load_config("demand")  # recency_half_life 5, drift_emphasis 4 (the default)
    keys = pd.Series(["2026-03-30", "2026-03-31", "2026-04-01", "2026-04-02"])
    recency = sample_weights(keys, cfg)
    assert recency is not None and recency[-1] == 1.0 and recency[0] < recency[1] < 1.0
    weighted = sample_weights(keys, cfg, "2026-04-01")
    assert np.allclose(weighted, recency * np.array([1, 1, 4, 4]))
    assert np.array_equal(sample_weights(keys, cfg, "2026-05-01"), recency)  # none emphasised
    flat = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"recency_half_life": None, "drift_emphasis": 1.0})})
    assert sample_weights(keys, flat, "2026-04-01") is None
