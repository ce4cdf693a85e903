"""Cron baselines and the replay summary: the engine on a small history, the arithmetic by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ctpipe import landing
from ctpipe.backtest import (
    check_events,
    cron_starts,
    event_report,
    headline,
    policies,
    starts_line,
    summarize,
)
from ctpipe.baselines import CronReplay, attach, replay_cron
from ctpipe.config import load_config
from ctpipe.decisions.baselines import cron_retrain_due, cron_schedules
from ctpipe.simulate import generate_day
from ctpipe.store import LandingZoneStore
from tests.helpers import START, small_config

DAYS = 16


def _history(tmp_path: Path, *, null_targets: bool = False, **gate: object):
    """DAYS batches of 120 rows; ``null_targets``: each has one row without a target, which
    data.drop_null_targets drops at training, and training.min_train_rows counts every
    labelled row of 4 training batches, so no fit has enough rows."""
    path = small_config(tmp_path, **({"min_train_rows": 480} if null_targets else {}))
    if gate or null_targets:
        import yaml

        raw = yaml.safe_load(path.read_text())
        raw["gate"].update(gate)
        raw["data"]["drop_null_targets"] = null_targets
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config(path)
    zone = tmp_path / "landing"
    dates = [START + dt.timedelta(days=i) for i in range(DAYS)]
    for i, day in enumerate(dates):
        frame = generate_day("demand", i, day, rows=120)
        if null_targets:
            frame.loc[0, config.data.target] = None
        landing.write_batch(zone, config, day, frame)
    store = LandingZoneStore(config, zone, tmp_path / "records", tmp_path / "quarantine",
                             tmp_path / "predictions", tmp_path / "intents")
    return config, store, dates, lambda day: landing.load_labelled(zone, config, [day])


# --- the schedule rule -------------------------------------------------------------------

def test_cron_is_due_from_the_cold_start_every_n_batches() -> None:
    due = [i for i in range(20) if cron_retrain_due(i, cold_start=5, every=4, has_champion=True)]
    assert due == [5, 9, 13, 17]
    assert not cron_retrain_due(3, cold_start=None, every=1, has_champion=False)
    assert not cron_retrain_due(4, cold_start=5, every=1, has_champion=False)
    # no champion yet (every challenger rejected): retrain on each batch, as the cycle does
    assert cron_retrain_due(6, cold_start=5, every=12, has_champion=False)
    with pytest.raises(ValueError, match="N >= 1"):
        cron_retrain_due(6, cold_start=5, every=0, has_champion=True)


def test_a_cron_started_later_retrains_on_its_own_batches_after_the_cold_start() -> None:
    def due(phase: int) -> list[int]:
        return [i for i in range(20) if cron_retrain_due(
            i, cold_start=5, every=4, has_champion=i > 5, phase=phase)]

    assert due(0) == [5, 9, 13, 17]
    assert due(1) == [5, 6, 10, 14, 18]  # the cold start first, then its own batches
    assert due(3) == [5, 8, 12, 16]
    with pytest.raises(ValueError, match="0 to 3 batches after the cold start, not 4"):
        cron_retrain_due(6, cold_start=5, every=4, has_champion=True, phase=4)


def test_cron_schedules_defaults_skip_and_errors() -> None:
    assert cron_schedules(None) == (1, 4, 12)
    assert cron_schedules([12, 4, 4]) == (4, 12)
    assert cron_schedules([0]) == () and cron_schedules([4], skip=True) == ()
    with pytest.raises(ValueError, match="cannot be mixed"):
        cron_schedules([0, 4])
    with pytest.raises(ValueError, match="N >= 1"):
        cron_schedules([-2])


# --- the engine ---------------------------------------------------------------------------

def test_cron_replay_retrains_on_schedule_behind_the_gate_with_shared_fits(
        tmp_path: Path) -> None:
    config, store, dates, batch = _history(tmp_path)
    out = replay_cron(config, store, dates, [True] * DAYS, (1, 4, 12), batch)
    # window 6 and label delay 1: batches 0..5 are labelled on batch 6, the cold start
    assert out.cold_start == 6
    assert out.retrain_days[1] == list(range(6, DAYS))
    assert out.retrain_days[4] == [6, 10, 14]
    assert out.retrain_days[12] == [6]
    # one fit per retrain day, shared by every schedule
    assert out.fits == DAYS - 6
    for n in (1, 4, 12):
        assert out.promotion_days[n][0] == 6  # the cold start passes the gate's floor
        assert set(out.promotion_days[n]) <= set(out.retrain_days[n])
        assert out.metrics[n][:6] == [None] * 6
        assert all(m is not None and 0 < m < 1 for m in out.metrics[n][6:])
    # until a schedule promotes again it serves the cold-start model: same scores as N=12
    assert out.metrics[4][6:10] == out.metrics[12][6:10]
    # every start of each period, on the same fits; phase 0 is the schedule above
    assert [r.phase for r in out.phases[4]] == [0, 1, 2, 3]
    # cron-12's starts 10 and 11 would begin past the replay's last batch (15): left out
    assert [r.phase for r in out.phases[12]] == list(range(10))
    assert out.phases[4][0].mean == out.mean(4)
    assert out.phases[4][0].retrains == 3 and out.phases[4][1].retrains == 4  # 6, 7, 11, 15
    assert out.phases[12][9].retrains == 2  # 6 and 15
    assert len({r.mean for r in out.phases[4]}) > 1  # the start moves the mean
    assert [r.phase for r in out.phases[1]] == [0]
    bare = replay_cron(config, store, dates, [True] * DAYS, (4,), batch, phases=False)
    assert bare.phases == {} and bare.metrics[4] == out.metrics[4]


def test_cron_replay_keeps_no_challenger_the_gate_rejects(tmp_path: Path) -> None:
    # WAPE must be at most 0: no challenger can pass, so no schedule ever has a champion, and
    # each retrains on every batch from the cold start on, as the cycle would.
    config, store, dates, batch = _history(tmp_path, floor=0.0)
    validated = [True] * DAYS
    validated[8] = False  # a quarantined batch: nothing trained or scored on it
    out = replay_cron(config, store, dates, validated, (4,), batch)
    assert out.retrain_days[4] == [i for i in range(6, DAYS) if i != 8]
    assert out.promotion_days[4] == []
    assert out.metrics[4] == [None] * DAYS
    # nothing ever served: every start scored nothing, and the summary compares nothing
    assert all(r.mean is None for r in out.phases[4])
    result = {"metric_name": "wape", "higher_is_better": False, "gate_tolerance": 0.02,
              "shift_day": None, "days": [_day(i, 0.1, 0.1) for i in range(DAYS)]}
    attach(result, out)
    assert cron_starts(result) == {} and starts_line(result) is None


def test_a_start_whose_retrain_falls_on_a_quarantined_batch_waits_for_its_next(
        tmp_path: Path) -> None:
    config, store, dates, batch = _history(tmp_path)
    validated = [True] * DAYS
    validated[8] = False
    out = replay_cron(config, store, dates, validated, (4,), batch)
    assert [r.retrains for r in out.phases[4]] == [3, 4, 2, 3]  # phase 2: 6 and 12, not 8
    assert out.metrics[4][8] is None


def test_cron_replay_waits_when_training_drops_rows_below_the_minimum(tmp_path: Path) -> None:
    # The window's label count (480) meets training.min_train_rows, the rows left after
    # dropping null targets (476) do not: no schedule retrains, and the replay goes on.
    config, store, dates, batch = _history(tmp_path, null_targets=True)
    out = replay_cron(config, store, dates, [True] * DAYS, (1, 4), batch)
    assert out.cold_start == 6 and out.fits == 0
    assert out.retrain_days == {1: [], 4: []} and out.metrics[1] == [None] * DAYS


# --- the summary arithmetic ---------------------------------------------------------------

def _day(i: int, champion: float | None, static: float | None, *, drift: bool = False,
         retrained: bool = False, passed: bool | None = None) -> dict:
    return {"date": (START + dt.timedelta(days=i)).isoformat(), "validation_passed": True,
            "drift_detected": drift, "retrained": retrained, "gate_passed": passed,
            "champion_version": None if champion is None else 1, "champion_metric": champion,
            "static_metric": static, "rows_scored": 0, "live_metric": None}


def _result() -> dict:
    days = [_day(0, None, None), _day(1, 0.10, 0.10, retrained=True, passed=True),
            _day(2, 0.10, 0.10), _day(3, 0.30, 0.30),  # the change: batch 3
            _day(4, 0.30, 0.30, drift=True, retrained=True, passed=False),
            _day(5, 0.10, 0.30, drift=True, retrained=True, passed=True),
            _day(6, 0.10, 0.30)]
    replay = CronReplay((1, 4), metrics={1: [None, .1, .1, .2, .1, .1, .1],
                                         4: [None, .1, .1, .3, .3, .2, .1]},
                        retrain_days={1: [1, 2, 3, 4, 5, 6], 4: [1, 5]},
                        promotion_days={1: [1, 3], 4: [1, 5]}, cold_start=1, fits=6)
    result = {"metric_name": "wape", "higher_is_better": False, "gate_tolerance": 0.02,
              "shift_day": None, "days": days}
    attach(result, replay)
    return result


def test_policies_and_headline() -> None:
    result = _result()
    assert result["cron"]["best"] == 1
    assert [d["cron_metric"] for d in result["days"]] == [None, .1, .1, .2, .1, .1, .1]
    assert result["days"][3]["cron_metrics"] == {"1": .2, "4": .3}
    table = policies(result)
    assert table["ctpipe"] == {"mean": pytest.approx(1.0 / 6), "retrains": 3, "promotions": 2}
    assert table["static"] == {"mean": pytest.approx(1.4 / 6), "retrains": 1, "promotions": 1}
    assert table["cron-1"] == {"mean": pytest.approx(0.7 / 6), "retrains": 6, "promotions": 2}
    assert table["cron-4"]["retrains"] == 2
    # WAPE: lower is better, so a lower mean reads "better", a higher one "worse".
    assert headline(result) == ("ctpipe WAPE 0.1667 over 6 batches vs static 0.2333 (29% "
                                "better) and cron every batch 0.1167 (43% worse); 3 retrains "
                                "vs 6")
    # A baseline scored on other batches than ctpipe says over how many its mean was taken.
    result["days"][3]["static_metric"] = None
    result["days"][2]["cron_metrics"]["1"] = None
    assert headline(result) == ("ctpipe WAPE 0.1667 over 6 batches vs static 0.2200 over 5 "
                                "batches (24% better) and cron every batch 0.1200 over 5 "
                                "batches (39% worse); 3 retrains vs 6")


def test_ctpipe_against_each_schedule_started_on_every_batch_of_its_period() -> None:
    result = _result()
    assert starts_line(result) is None  # a replay without phases
    result["cron"]["phases"] = {
        "1": [{"phase": 0, "mean": 0.7 / 6, "retrains": 6, "promotions": 2}],
        "4": [{"phase": p, "mean": m, "retrains": r, "promotions": 1}
              for p, m, r in [(0, 0.20, 2), (1, 0.15, 3), (2, 0.16, 3), (3, None, 2)]]}
    starts = cron_starts(result)
    assert (starts["cron-4"]["runs"], starts["cron-4"]["starts"]) == (4, 3)
    assert starts["cron-4"]["median"] == pytest.approx(0.16)
    assert (starts["cron-4"]["min"], starts["cron-4"]["max"]) == (0.15, 0.20)
    # ctpipe's 0.1667 (WAPE, lower is better) is at least as good as 0.20 only
    assert starts_line(result) == (
        "each cron schedule started on every batch of its period: cron-1 0.1167 (6 retrains); "
        "cron-4 median 0.1600 over the 3 of 4 starts that scored (0.1500 to 0.2000, 2-3 "
        "retrains); ctpipe 0.1667 "
        "is at least as good as 1 of 4 starts, and as the median start of 0 of 2 schedules")
    result["higher_is_better"] = True  # now 0.1667 beats all but 0.20
    assert starts_line(result).endswith("as good as 3 of 4 starts, and as the median start of "
                                        "2 of 2 schedules")
    assert summarize(result)["starts_line"] == starts_line(result)


def test_a_replay_with_nothing_to_compare_says_why(capsys: pytest.CaptureFixture) -> None:
    from ctpipe.cli_replay import _print_baselines

    # A champion served, but the metric was undefined on every batch (one-row batches).
    days = [_day(0, None, None), {**_day(1, None, None, retrained=True, passed=True),
                                  "champion_version": 1}]
    result = {"metric_name": "roc_auc", "higher_is_better": True, "gate_tolerance": 0.02,
              "shift_day": None, "days": days}
    _print_baselines("jobs", result, summarize(result))
    assert capsys.readouterr().out == (
        "jobs: no batch the champion served has a roc_auc: its labels had not arrived, or too "
        "few rows (or one class only) per batch\n")


def test_best_cron_respects_higher_is_better() -> None:
    replay = CronReplay((1, 4), metrics={1: [0.6, 0.6], 4: [0.7, 0.7]})
    assert replay.best(higher_is_better=True) == 4
    assert replay.best(higher_is_better=False) == 1
    assert CronReplay((1, 4), metrics={1: [0.5], 4: [0.5]}).best(False) == 1  # tie: smaller N


def test_event_delay_and_recovery() -> None:
    result = _result()
    event = event_report(result, START + dt.timedelta(days=3))
    # flagged on batch 4, promoted on batch 5; behind the best cron on 3 and 4 (0.30 vs
    # 0.20 and 0.10), within 2 % of it again on 5
    assert event == {"date": (START + dt.timedelta(days=3)).isoformat(), "batch": 3,
                     "detection": 1, "promotion": 2, "matches_cron": 2}
    # the cold start (batch 1) retrains and promotes, but reacts to nothing
    early = event_report(result, START)
    assert (early["detection"], early["promotion"]) == (4, 5)
    late = event_report(result, START + dt.timedelta(days=6))
    assert late["detection"] is None and late["promotion"] is None
    assert late["matches_cron"] == 0  # never fell behind after it
    result["events"] = [(START + dt.timedelta(days=3)).isoformat()]
    assert summarize(result)["events"][0]["promotion"] == 2


def test_events_outside_the_replay_are_refused() -> None:
    dates = [START + dt.timedelta(days=i) for i in range(5)]
    assert check_events(dates, [dates[0], dates[-1]]) is None
    problem = check_events(dates, [START - dt.timedelta(days=1)])
    assert problem == "--events 2026-03-01: outside the replay's batches (2026-03-02 to 2026-03-06)"


# --- the timeline plot --------------------------------------------------------------------

def test_timeline_has_dates_the_frequency_and_markers(tmp_path: Path) -> None:
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from ctpipe.timeline_plot import plot_timeline, timeline_figure

    result = {**_result(), "batch_frequency": "weekly",
              "events": [(START + dt.timedelta(days=3)).isoformat()]}
    result["days"][6]["rolled_back"] = True
    fig = timeline_figure({"demand": result})
    ax = fig.axes[0]
    assert ax.get_title() == "demand: wape per weekly batch (lower is better)"
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    first, last = ax.get_xlim()
    assert mdates.num2date(first).date() <= START <= mdates.num2date(last).date()
    labels = set(ax.get_legend_handles_labels()[1])
    assert {"static model", "cron every batch", "ctpipe champion", "drift detected",
            "challenger rejected", "promotion", "rollback", "known change"} <= labels
    plt.close(fig)
    assert plot_timeline({"demand": result}, tmp_path / "t.png").stat().st_size > 10_000
