"""What the drift share counts: exclude, weights, batch-constant windows, the seasonal reference."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats

from ctpipe.config import DriftConfig, load_config
from ctpipe.drift import build_profile, detect_drift
from ctpipe.simulate import generate_day
from ctpipe.steps.drift import earlier_batches
from ctpipe.steps.ports import Runtime

REPO = Path(__file__).resolve().parents[1]


def _frames(n: int = 400, seed: int = 1, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"x{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(4)})


def _profile_and_batch() -> tuple:
    ref = _frames(seed=1)
    cur = _frames(seed=2)
    cur["x0"] += 3.0  # only x0 drifts
    return build_profile(ref, list(ref.columns), []), cur


# --------------------------------------------------------------------------- exclude, weights


def test_excluded_feature_is_reported_but_not_counted() -> None:
    profile, cur = _profile_and_batch()
    plain = detect_drift(profile, cur, DriftConfig())
    assert plain.drift_share == 0.25 and plain.drifted_features == ["x0"]
    report = detect_drift(profile, cur, DriftConfig(exclude=["x0"]))
    x0 = report.features[0]
    assert x0.drifted and x0.excluded and x0.weight == 0 and not x0.in_share
    assert report.drift_share == 0.0 and report.drifted_features == [] and report.n_tested == 3
    record = report.to_records()[0]
    assert record["in_share"] is False and record["excluded"] is True and record["drifted"]
    json.dumps(report.to_records(), allow_nan=False)
    text = report.summary_markdown()
    assert "0 of 3 tested features drifted" in text
    assert "Not counted in the share:" in text and "- x0: excluded (drift.exclude); drifted" \
        in text


def test_weights_make_a_weighted_share() -> None:
    profile, cur = _profile_and_batch()
    # x0 (drifted) weighs 3 against 1 + 1 + 1: share 0.5, dataset drift at threshold 0.5.
    report = detect_drift(profile, cur, DriftConfig(weights={"x0": 3.0}))
    assert report.drift_share == pytest.approx(0.5) and report.dataset_drift
    assert report.weighted and "weighted share 50%" in report.summary_markdown()
    assert "| x0 | ks |" in report.summary_markdown()
    down = detect_drift(profile, cur, DriftConfig(weights={"x0": 0.5, "x1": 2.0}))
    assert down.drift_share == pytest.approx(0.5 / 4.5)
    zero = detect_drift(profile, cur, DriftConfig(weights={"x0": 0.0}))
    assert zero.drift_share == 0.0 and not zero.features[0].in_share
    assert "x0: weight 0 (drift.weights)" in zero.summary_markdown()
    records = {r["feature"]: r for r in down.to_records()}
    assert records["x1"]["weight"] == 2.0 and records["x2"]["weight"] == 1.0


def test_every_feature_weight_zero_means_no_drift() -> None:
    profile, cur = _profile_and_batch()
    report = detect_drift(profile, cur, DriftConfig(exclude=["x0", "x1", "x2", "x3"]))
    assert report.n_tested == 0 and not report.dataset_drift and report.drift_share == 0.0


def test_unknown_names_and_bad_weights_are_config_errors() -> None:
    profile, cur = _profile_and_batch()
    with pytest.raises(ValueError, match=r"drift\.exclude .*\['nope'\]"):
        detect_drift(profile, cur, DriftConfig(exclude=["nope"]))
    with pytest.raises(ValueError, match=r"drift\.weights .*\['nah'\]"):
        detect_drift(profile, cur, DriftConfig(weights={"nah": 2}))
    with pytest.raises(ValidationError, match="weights: must be finite and >= 0"):
        DriftConfig(weights={"x0": -1})
    with pytest.raises(ValidationError, match="also listed in exclude"):
        DriftConfig(exclude=["x0"], weights={"x0": 2})
    with pytest.raises(ValidationError, match="constant_window"):
        DriftConfig(constant_window=1)


def test_defaults() -> None:
    cfg = DriftConfig()
    assert cfg.exclude == [] and cfg.weights == {}
    assert cfg.constant_window == 14 and cfg.seasonal_period is None
    for name in ("exclude", "weights", "constant_window", "seasonal_period"):
        assert "default" in (DriftConfig.model_fields[name].description or "").lower()


# --------------------------------------------------------------------------- batch-constant


def _flag_batch(value: str, n: int = 200, seed: int = 0) -> pd.DataFrame:
    # x: the same normal quantiles in every batch (shuffled), so only the flag can drift.
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"holiday": pd.Series([value] * n, dtype="str"),
                         "x": rng.permutation(stats.norm.ppf((np.arange(n) + 0.5) / n))})


def _flag_profile(days: int = 21) -> object:
    return build_profile(pd.concat([_flag_batch("none", seed=i) for i in range(days)]),
                         ["x"], ["holiday"])


def test_a_single_holiday_does_not_flip_the_share() -> None:
    profile = _flag_profile()
    history = [_flag_batch("none", seed=100 + i) for i in range(20)]
    holiday = _flag_batch("hk", seed=999)
    alone = detect_drift(profile, holiday, DriftConfig())  # no history: judged per batch
    assert alone.features[1].drifted and alone.drift_share == 0.5
    report = detect_drift(profile, holiday, DriftConfig(), history)
    flag = report.features[1]
    assert flag.window == 14 and not flag.drifted and flag.test == "chisquare"
    assert flag.n_current == 14 and flag.n_reference == 21  # batches, not rows
    assert "constant within the batch: judged over the last 14 batches" in flag.note
    assert report.drift_share == 0.0
    assert "judged over a window of batches" in report.summary_markdown()
    record = report.to_records()[1]
    assert record["window"] == 14 and record["reference"] == "training profile, last 14 batches"
    # The per-batch judgement is still there when asked for.
    per_batch = detect_drift(profile, holiday, DriftConfig(constant_window=None), history)
    assert per_batch.features[1].drifted and per_batch.features[1].window == 0


def test_a_lasting_change_of_a_batch_constant_feature_is_drift() -> None:
    profile = _flag_profile()
    history = [_flag_batch("none", seed=i) for i in range(8)]
    history += [_flag_batch("T8", seed=50 + i) for i in range(5)]
    report = detect_drift(profile, _flag_batch("T8", seed=77), DriftConfig(), history)
    flag = report.features[1]
    assert flag.drifted and flag.p_value is not None and flag.p_value < 0.05
    assert "'T8': 0.0% -> 42.9% of batches" in flag.note


def test_batch_constant_numeric_feature_uses_one_value_per_batch() -> None:
    rng = np.random.default_rng(4)
    daily = rng.normal(20.0, 3.0, 40)  # e.g. the day's temperature, one value per batch

    def day(value: float) -> pd.DataFrame:
        return pd.DataFrame({"temp": np.full(100, value)})

    profile = build_profile(pd.concat([day(v) for v in daily[:21]]), ["temp"], [])
    history = [day(v) for v in daily[21:34]]
    calm = detect_drift(profile, day(float(daily[34])), DriftConfig(), history)
    assert calm.features[0].window == 14 and not calm.features[0].drifted
    hot = detect_drift(profile, day(35.0), DriftConfig(), [day(v + 12.0) for v in daily[21:34]])
    assert hot.features[0].drifted and "median of batch values" in hot.features[0].note


def test_too_few_batches_leave_the_feature_untested() -> None:
    profile = _flag_profile()
    report = detect_drift(profile, _flag_batch("hk"), DriftConfig(), [_flag_batch("none")] * 3)
    flag = report.features[1]
    assert not flag.tested and not flag.in_share and report.n_tested == 1
    assert "only 4 of the last 14 batches have values (at least 7 needed)" in flag.note


def test_history_is_read_only_as_far_as_needed() -> None:
    class Counting(Sequence[pd.DataFrame]):
        def __init__(self, frames: list[pd.DataFrame]) -> None:
            self.frames, self.read = frames, []

        def __len__(self) -> int:
            return len(self.frames)

        def __getitem__(self, i):  # type: ignore[no-untyped-def]
            self.read.append(i)
            return self.frames[i]

    frames = [_flag_batch("none", seed=i) for i in range(30)]
    profile = _flag_profile()
    varied = _flag_batch("none")
    varied["holiday"] = pd.Series(["none", "hk"] * 100, dtype="str")
    history = Counting(frames)
    detect_drift(profile, varied, DriftConfig(), history)  # nothing constant: nothing read
    assert history.read == []
    detect_drift(profile, _flag_batch("none"), DriftConfig(), history)
    assert sorted(history.read) == list(range(17, 30))  # the 13 batches before this one


def test_demand_holiday_in_the_reference_simulation() -> None:
    """Golden-week eve: the plain check flags holiday and typhoon_signal, the window does not."""
    cfg = load_config(REPO / "configs" / "demand.yaml")
    start = dt.date(2026, 9, 1)
    days = [generate_day("demand", i, start + dt.timedelta(days=i)) for i in range(31)]
    profile = build_profile(pd.concat(days[:21]), cfg.features.numeric,
                            cfg.features.categorical)
    today = days[30]  # 1 October: a holiday on both sides of the border
    assert today["holiday"].iloc[0] == "both"
    plain = detect_drift(profile, today, cfg.drift)
    assert {"holiday", "typhoon_signal"} <= set(plain.drifted_features)
    windowed = detect_drift(profile, today, cfg.drift, days[:30])
    assert not {"holiday", "typhoon_signal"} & set(windowed.drifted_features)
    assert windowed.drift_share < plain.drift_share


# --------------------------------------------------------------------------- seasonal


def _weekly(day: int, n: int = 300, extra: float = 0.0) -> pd.DataFrame:
    """Weekends (days 5, 6 of each 7) carry more load: a recurring weekly pattern."""
    rng = np.random.default_rng(1000 + day)
    weekend = day % 7 >= 5
    return pd.DataFrame({"load": rng.normal((2.0 if weekend else 0.0) + extra, 1.0, n),
                         "other": rng.normal(0.0, 1.0, n)})


def test_the_recurring_season_is_not_drift() -> None:
    profile = build_profile(pd.concat([_weekly(d) for d in range(21) if d % 7 < 5]),
                            ["load", "other"], [])  # trained on weekdays only
    history = [_weekly(d) for d in range(40)]
    saturday = _weekly(40)  # day 40: 40 % 7 == 5
    plain = detect_drift(profile, saturday, DriftConfig(), history)
    assert plain.features[0].drifted and plain.features[0].seasonal == ""
    cfg = DriftConfig(seasonal_period=7)
    report = detect_drift(profile, saturday, cfg, history)
    load = report.features[0]
    assert not load.drifted and load.seasonal == "explained" and load.in_share
    assert "not against the batch one cycle earlier (7 batches back)" in load.note
    assert load.reference == "training profile and the batch one cycle earlier (7 batches back)"
    assert report.drift_share == 0.0 and report.to_records()[0]["seasonal"] == "explained"
    assert "the season (drift.seasonal_period)" in report.summary_markdown()
    # A new change is drift against both references: it counts.
    shifted = detect_drift(profile, _weekly(40, extra=3.0), cfg, history)
    assert shifted.features[0].drifted and shifted.features[0].seasonal == "confirmed"
    assert shifted.drifted_features == ["load"] and "also drifted against" in \
        shifted.features[0].note


def test_a_cycle_earlier_the_model_never_saw_explains_nothing() -> None:
    """A lasting shift must keep counting after a cycle without a retrain: the batch one cycle
    back already carries it, but the champion never saw that batch."""
    profile = build_profile(pd.concat([_weekly(d) for d in range(21) if d % 7 < 5]),
                            ["load", "other"], [])
    history = [_weekly(d) for d in range(40)]
    report = detect_drift(profile, _weekly(40), DriftConfig(seasonal_period=7), history,
                          season_known=False)
    load = report.features[0]
    assert load.drifted and load.seasonal == "unavailable" and report.drifted_features == ["load"]
    assert "is newer than the reference's data: judged against training alone" in load.note


def test_without_a_batch_one_cycle_earlier_training_decides_and_says_so() -> None:
    profile = build_profile(pd.concat([_weekly(d) for d in range(5)]), ["load", "other"], [])
    report = detect_drift(profile, _weekly(5), DriftConfig(seasonal_period=7),
                          [_weekly(d) for d in range(3)])
    load = report.features[0]
    assert load.drifted and load.seasonal == "unavailable" and report.drifted_features == ["load"]
    assert "no batch one cycle earlier (7 batches back): judged against training alone" \
        in load.note


def test_seasonal_check_of_a_batch_constant_feature_compares_windows() -> None:
    profile = _flag_profile()
    # A recurring stretch of typhoon days: the same mix one cycle (20 batches) earlier.
    cycle = ["none"] * 10 + ["T8"] * 10
    history = [_flag_batch(cycle[i % 20], seed=i) for i in range(39)]
    today = _flag_batch(cycle[39 % 20], seed=39)
    plain = detect_drift(profile, today, DriftConfig(), history)
    assert plain.features[1].drifted
    report = detect_drift(profile, today, DriftConfig(seasonal_period=20), history)
    flag = report.features[1]
    assert not flag.drifted and flag.seasonal == "explained" and flag.window == 14
    assert "the 14 batches ending one cycle earlier" in flag.note


# --------------------------------------------------------------------------- the cycle's loader


class _Store:
    def __init__(self, days: list[dt.date], unreadable: tuple[dt.date, ...] = ()) -> None:
        self.days, self.reads, self.unreadable = days, [], unreadable

    def batch_dates(self) -> list[dt.date]:
        return list(self.days)

    def row_counts(self, days: list[dt.date]) -> list[int]:  # a footer that cannot be read
        return [24 for d in days if d not in self.unreadable]  # is left out, as on disk

    def read_batch(self, day: dt.date) -> pd.DataFrame:
        self.reads.append(day)
        return _flag_batch("none")


def _runtime(store: _Store, **drift: object) -> Runtime:
    cfg = load_config(REPO / "configs" / "demand.yaml")
    cfg = cfg.model_copy(update={"drift": cfg.drift.model_copy(update=drift)})
    return Runtime(config=cfg, model_name="m", store=store,  # type: ignore[arg-type]
                   models=None, publish=lambda d: None)  # type: ignore[arg-type]


def test_earlier_batches_reads_lazily_through_the_store() -> None:
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    store = _Store(days)
    today = days[30]
    # The window alone (the reference config also sets a seasonal period, checked below).
    batches = earlier_batches(_runtime(store, seasonal_period=None), today)
    assert batches is not None and len(batches) == 13 and store.reads == []
    batches[-1]
    batches[-1]
    assert store.reads == [days[29]]  # read once, kept
    seasonal = earlier_batches(_runtime(store, seasonal_period=7), today)
    assert seasonal is not None and len(seasonal) == 20
    assert earlier_batches(_runtime(store, constant_window=None, seasonal_period=None),
                           today) is None
    # A truncated file among them is no history: the one before it takes its place.
    broken = _Store(days, unreadable=(days[27],))
    skipping = earlier_batches(_runtime(broken, seasonal_period=None), today)
    assert skipping.dates == (*days[16:27], days[28], days[29])


def test_demand_config_sees_the_reference_shift_on_its_first_day_and_no_false_alarm() -> None:
    cfg = load_config(REPO / "configs" / "demand.yaml")
    start, shift = dt.date(2026, 3, 2), 40  # the demo's start; a later shift day than its 30
    days = [generate_day("demand", i, start + dt.timedelta(days=i), shift_day=shift)
            for i in range(shift + 1)]
    profile = build_profile(pd.concat(days[:21]), cfg.features.numeric,
                            cfg.features.categorical)
    alarms = [i for i in range(21, shift + 1)
              if detect_drift(profile, days[i], cfg.drift, days[:i]).dataset_drift]
    assert alarms == [shift]
    # Without the weights, the windowed day-level features dilute the share below 0.5.
    unweighted = cfg.drift.model_copy(update={"weights": {}})
    assert not detect_drift(profile, days[shift], unweighted, days[:shift]).dataset_drift


def test_the_batch_one_cycle_back_explains_the_season_only_if_it_was_not_drift() -> None:
    """Newer than the champion's data, the batch a cycle back still explains a recurring
    pattern when its own cycle saw no drift; a lasting shift (that batch was drift) keeps
    counting."""
    from types import SimpleNamespace

    from ctpipe.records import CycleRecord
    from ctpipe.steps.drift import _EarlierBatches, _season_known

    days = [dt.date(2026, 4, 1) + dt.timedelta(days=i) for i in range(14)]
    records = {d: CycleRecord("demand", d.isoformat(), validation_passed=True,
                              drift_detected=d >= dt.date(2026, 4, 8)) for d in days}
    rt = SimpleNamespace(store=SimpleNamespace(read_record=records.get))
    seen_until = "2026-03-31"  # the champion's data ends before every one of these batches

    def known(upto: int) -> bool:
        return _season_known(rt, _EarlierBatches(rt, days[:upto]), 7, seen_until)

    assert known(8)  # one cycle back: 04-02, judged free of drift: the season explains
    assert not known(14)  # one cycle back: 04-08, itself drift: nothing explained away
    records.pop(days[1])
    assert not known(8)  # no record of that batch: it cannot vouch for the season
    assert _season_known(rt, _EarlierBatches(rt, days[:8]), 7, "2026-04-30")  # trained on it
    assert _season_known(rt, _EarlierBatches(rt, days[:3]), 7, seen_until)  # no batch back
