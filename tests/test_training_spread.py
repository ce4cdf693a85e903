"""drift.training_spread: drift counts only beyond the champion's own training batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from ctpipe.config import DriftConfig
from ctpipe.drift import build_profile, detect_drift
from ctpipe.drift.training_spread import categorical_effect, numeric_effect

ROWS = 150  # six batches stay under small_reference_rows: the KS and chi-square tests


def _week(rng: np.random.Generator, level: float, rain_share: float) -> pd.DataFrame:
    # Rows of one batch share its conditions: the week's level, its weather.
    return pd.DataFrame({
        "pm25": level + rng.normal(0, 0.3, ROWS),
        "sky": rng.choice(["rain", "dry"], ROWS, p=[rain_share, 1 - rain_share]),
    })


@pytest.fixture
def weeks() -> list[pd.DataFrame]:
    rng = np.random.default_rng(5)
    return [_week(rng, level, share) for level, share in
            [(0.0, 0.1), (1.0, 0.4), (-0.8, 0.2), (0.6, 0.05), (-0.3, 0.5), (0.9, 0.3)]]


def _report(weeks: list[pd.DataFrame], current: pd.DataFrame, *, on: bool):
    profile = build_profile(pd.concat(weeks, ignore_index=True), ["pm25"], ["sky"])
    return detect_drift(profile, current, DriftConfig(training_spread=on), training=weeks)


def test_a_week_like_the_training_weeks_is_not_drift(weeks: list[pd.DataFrame]) -> None:
    current = _week(np.random.default_rng(9), 0.8, 0.45)
    # The row-level tests alone: every week differs from the pooled profile.
    plain = _report(weeks, current, on=False)
    assert set(plain.drifted_features) == {"pm25", "sky"} and plain.dataset_drift
    spread = _report(weeks, current, on=True)
    assert spread.drifted_features == [] and not spread.dataset_drift
    pm25 = next(f for f in spread.features if f.feature == "pm25")
    assert "within the champion's training batches: KS distance" in pm25.note
    assert "(6 batches)" in pm25.note
    sky = next(f for f in spread.features if f.feature == "sky")
    assert "category shift" in sky.note


def test_a_week_beyond_every_training_week_stays_drift(weeks: list[pd.DataFrame]) -> None:
    current = _week(np.random.default_rng(9), 3.0, 0.95)  # a level and a sky never seen
    report = _report(weeks, current, on=True)
    assert set(report.drifted_features) == {"pm25", "sky"} and report.dataset_drift


def test_too_few_training_batches_leave_the_test_to_decide(weeks: list[pd.DataFrame]) -> None:
    current = _week(np.random.default_rng(9), 0.8, 0.45)
    profile = build_profile(pd.concat(weeks, ignore_index=True), ["pm25"], ["sky"])
    report = detect_drift(profile, current, DriftConfig(training_spread=True),
                          training=weeks[:2])
    assert set(report.drifted_features) == {"pm25", "sky"}


class _CountedReads(Sequence):
    """The training batches, counting each read (the cycle reads them from disk lazily)."""

    def __init__(self, frames: list[pd.DataFrame]) -> None:
        self.frames, self.reads = frames, 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i):  # noqa: ANN001, ANN204
        frame = self.frames[i]  # past the end: IndexError, no read
        self.reads += 1
        return frame


def test_a_feature_that_counts_for_nothing_reads_no_training_batch(
        weeks: list[pd.DataFrame]) -> None:
    current = _week(np.random.default_rng(9), 0.8, 0.45)
    profile = build_profile(pd.concat(weeks, ignore_index=True), ["pm25"], ["sky"])
    training = _CountedReads(weeks)
    report = detect_drift(profile, current, DriftConfig(
        training_spread=True, exclude=["sky"], weights={"pm25": 0}), training=training)
    assert training.reads == 0 and not report.dataset_drift
    # Shown as the row-level test found them, counted for nothing.
    assert {f.feature for f in report.features if f.drifted} == {"pm25", "sky"}
    assert report.drifted_features == []
    counted = detect_drift(profile, current, DriftConfig(training_spread=True,
                                                         exclude=["sky"]), training=training)
    assert training.reads == len(weeks) and counted.drifted_features == []
    assert {f.feature for f in counted.features if f.drifted} == {"sky"}  # pm25 cleared


def test_effect_sizes() -> None:
    reference = np.sort(np.arange(100, dtype=float))
    assert numeric_effect(reference, pd.Series(np.arange(100, dtype=float)), "x") == 0.0
    assert numeric_effect(reference, pd.Series(np.arange(100, 200, dtype=float)), "x") == 1.0
    assert numeric_effect(reference, pd.Series([np.nan]), "x") is None
    assert categorical_effect({"a": 50, "b": 50}, pd.Series(["a"] * 3 + ["b"])) == \
        pytest.approx(0.25)
    assert categorical_effect({"a": 1}, pd.Series(["c", "c"])) == 1.0


class _Store:
    """The two store calls training_batches makes, over batches held in memory."""

    def __init__(self, batches: dict[dt.date, pd.DataFrame], labelled: list[dt.date]) -> None:
        self.batches, self.labelled = batches, labelled
        self.read: list[dt.date] = []

    def labelled_dates(self, as_of: dt.date) -> list[dt.date]:
        return [d for d in self.labelled if d <= as_of]

    def read_batch(self, day: dt.date) -> pd.DataFrame:
        self.read.append(day)
        return self.batches[day]


def test_the_training_batches_are_the_labelled_ones_of_the_champion_s_window(
        weeks: list[pd.DataFrame]) -> None:
    from types import SimpleNamespace

    from ctpipe.lineage import Lineage
    from ctpipe.steps.drift import training_batches

    days = [dt.date(2015, 1, 5) + dt.timedelta(weeks=i) for i in range(len(weeks))]
    # The fifth week's labels never arrived: the champion was not trained on it.
    store = _Store(dict(zip(days, weeks, strict=True)), days[:4] + days[5:])
    rt = SimpleNamespace(store=store)
    lineage = Lineage(train_start=days[1].isoformat(), train_end=days[5].isoformat())
    found = training_batches(rt, lineage, days[-1] + dt.timedelta(weeks=1))
    assert found.dates == (days[1], days[2], days[3], days[5])
    assert store.read == []  # read only when a drifted feature needs them
    assert found[0] is weeks[1] and store.read == [days[1]]
    assert training_batches(rt, Lineage(), days[-1]).dates == ()
