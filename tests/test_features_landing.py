import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctpipe import labelled_history, landing
from ctpipe.config import UseCaseConfig, load_config
from ctpipe.features import FeatureSpec, fit_feature_spec
from ctpipe.store import LandingZoneStore


def _demand_rows(n: int, day: dt.date) -> pd.DataFrame:
    rng = np.random.default_rng(day.toordinal())
    return pd.DataFrame({
        "date": pd.Timestamp(day), "record_id": [f"{day}-{i}" for i in range(n)],
        "advance_bookings": rng.uniform(0, 100, n), "rainfall_mm": rng.uniform(0, 5, n),
        "border_wait_minutes": rng.uniform(10, 60, n),
        "lane": rng.choice(["HK-SZ", "HK-GZ"], n), "commodity": rng.choice(["food", "apparel"], n),
        "typhoon_signal": "none", "holiday": "none", "volume_tonnes": rng.uniform(1, 50, n),
    })


def test_feature_spec_round_trip_and_unseen_category() -> None:
    cfg = load_config("demand")
    train = _demand_rows(50, dt.date(2026, 3, 2))
    spec = fit_feature_spec(cfg, train)
    assert spec.categorical["lane"] == ["HK-GZ", "HK-SZ"]
    again = FeatureSpec.from_json(spec.to_json())
    assert again == spec
    batch = _demand_rows(5, dt.date(2026, 3, 3)).assign(lane="HK-ZH")
    out = again.transform(batch)
    assert list(out.columns) == spec.columns
    assert out["lane"].isna().all()  # unseen level becomes missing, not an error
    assert (out["day_of_week"] == 1).all()  # 2026-03-03 is a Tuesday


def test_hour_of_day_for_hourly_rows() -> None:
    cfg = load_config("demand")
    cfg = cfg.model_copy(update={"features": cfg.features.model_copy(
        update={"calendar": ["hour", "day_of_week"]})})
    rows = _demand_rows(3, dt.date(2026, 3, 3))
    rows["date"] = pd.to_datetime(["2026-03-03 00:30", "2026-03-03 13:00", "2026-03-03 23:59"])
    out = fit_feature_spec(cfg, rows).transform(rows)
    assert out["hour"].tolist() == [0.0, 13.0, 23.0] and (out["day_of_week"] == 1).all()


def test_transform_names_missing_feature() -> None:
    cfg = load_config("demand")
    spec = fit_feature_spec(cfg, _demand_rows(20, dt.date(2026, 3, 2)))
    with pytest.raises(ValueError, match="rainfall_mm"):
        spec.transform(_demand_rows(3, dt.date(2026, 3, 2)).drop(columns="rainfall_mm"))


def test_landing_zone_label_delay(tmp_path: Path) -> None:
    cfg = load_config("demand")  # label_delay 1
    days = [dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(4)]
    for d in days:
        landing.write_batch(tmp_path, cfg, d, _demand_rows(10, d))
    assert landing.batch_dates(tmp_path) == days
    assert "volume_tonnes" not in pd.read_parquet(landing.batch_path(tmp_path, days[0])).columns
    assert landing.labelled_dates(tmp_path, cfg, days[2]) == days[:2]
    frame = landing.load_labelled(tmp_path, cfg, days[:2])
    assert len(frame) == 20
    assert frame[landing.BATCH_KEY].tolist() == [days[0].isoformat()] * 10 + \
        [days[1].isoformat()] * 10
    original = _demand_rows(10, days[0])["volume_tonnes"].to_numpy()
    np.testing.assert_array_equal(frame["volume_tonnes"].to_numpy()[:10], original)


def test_a_quarantined_batch_still_counts_towards_the_label_delay(tmp_path: Path) -> None:
    cfg = load_config("demand")  # label_delay 1
    days = [dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(4)]
    for d in days:
        landing.write_batch(tmp_path, cfg, d, _demand_rows(10, d))
    store = LandingZoneStore(cfg, tmp_path, tmp_path / "records", tmp_path / "quarantine",
                             tmp_path / "predictions", tmp_path / "intents")
    store.quarantine(days[3], {"summary.md": "broke a rule"})
    assert days[3] not in landing.batch_dates(tmp_path)
    # The newest batch came and was set aside: the one before it has waited its one batch.
    assert store.labels_arrived(days[3]) == days[:3]
    assert store.labelled_dates(days[3]) == days[:3]
    assert landing.quarantined_dates(tmp_path / "quarantine") == [days[3]]
    # Without the quarantine folder only landed batches count, as before.
    assert landing.arrived_dates(tmp_path, cfg, days[3]) == days[:2]


def test_only_quarantined_batches_named_by_their_period_count_towards_the_delay(
        tmp_path: Path) -> None:
    daily = load_config("demand")
    weekly = daily.model_copy(update={"data": daily.data.model_copy(
        update={"batch_frequency": "weekly"})})
    mondays = [dt.date(2026, 3, 2) + dt.timedelta(weeks=i) for i in range(3)]
    for d in mondays:
        landing.write_batch(tmp_path, weekly, d, _demand_rows(10, d))
    stray = tmp_path / "quarantine" / "2026-03-18" / "attempt-1"  # a Wednesday: no batch
    stray.mkdir(parents=True)
    (stray / "2026-03-18.parquet").write_bytes(b"PAR1")
    # label_delay 1: the Wednesday does not make the newest Monday's labels arrive.
    assert landing.arrived_dates(tmp_path, weekly, mondays[2],
                                 quarantine=tmp_path / "quarantine") == mondays[:2]


def test_labels_must_match_batch_ids(tmp_path: Path) -> None:
    cfg = load_config("demand")
    day = dt.date(2026, 3, 2)
    landing.write_batch(tmp_path, cfg, day, _demand_rows(10, day))
    labels = pd.read_parquet(landing.labels_path(tmp_path, day))
    labels["record_id"] = labels["record_id"][::-1].to_numpy()
    labels.to_parquet(landing.labels_path(tmp_path, day))
    with pytest.raises(ValueError, match="ids do not match"):
        landing.load_labelled(tmp_path, cfg, [day])


LANDED = "landed batches are Parquet files named YYYY-MM-DD.parquet"


@pytest.mark.parametrize("name", ["2016-03-29.csv", "2016-03-29.csv.gz", "2016-03-29.json"])
def test_a_batch_in_another_format_is_named_with_the_rule_it_breaks(tmp_path: Path,
                                                                   name: str) -> None:
    day = dt.date(2016, 3, 29)
    (tmp_path / "batches").mkdir()
    (tmp_path / "batches" / name).write_text("a,b\n1,2\n")
    (tmp_path / "batches" / "2016-03-30.parquet").write_bytes(b"")  # another day's: not named
    assert landing.batch_dates(tmp_path) == [dt.date(2016, 3, 30)]
    assert landing.unlanded_files(tmp_path, day) == (
        f"found {name}, but {LANDED} (convert it, e.g. with pandas' to_parquet)")
    assert landing.unlanded_files(tmp_path) == (
        f"found {name}, but {LANDED} (convert it, e.g. with pandas' to_parquet)")


def test_a_parquet_batch_under_another_name_is_to_be_renamed(tmp_path: Path) -> None:
    day = dt.date(2016, 3, 29)
    folder = tmp_path / "batches"
    folder.mkdir()
    pd.DataFrame({"a": [1]}).to_parquet(folder / "2016-03-29.pq")
    (folder / ".2016-03-29.parquet.77.tmp").write_bytes(b"PAR1")  # a writer's: not named
    assert landing.unlanded_files(tmp_path, day) == (
        f"found 2016-03-29.pq, but {LANDED} (rename it to 2016-03-29.parquet)")
    pd.DataFrame({"a": [1]}).to_parquet(folder / "batch-2016-03-29.parquet")
    assert landing.unlanded_files(tmp_path) == (
        f"found 2016-03-29.pq, batch-2016-03-29.parquet, but {LANDED} (rename them after "
        "their batch date)")
    assert landing.unlanded_files(tmp_path, dt.date(2016, 3, 28)) is None
    assert landing.unlanded_files(tmp_path / "nowhere", day) is None
    # Not batches either, and no longer a ValueError ("Invalid isoformat string") for every
    # command that lists the batches.
    pd.DataFrame({"a": [1]}).to_parquet(folder / "notes.parquet")
    pd.DataFrame({"a": [1]}).to_parquet(folder / "2016-02-30.parquet")
    pd.DataFrame({"a": [1]}).to_parquet(folder / "2016-03-30.parquet")
    assert landing.batch_dates(tmp_path) == [dt.date(2016, 3, 30)]
    # ... and named, like every other file no cycle sees.
    assert "2016-02-30.parquet" in landing.unlanded_files(tmp_path)


def test_a_parquet_file_with_its_date_and_another_extension_is_to_be_renamed(
        tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "labels" / "2016-03-29.pq")
    assert landing.unlanded_files(tmp_path, kind="labels").endswith(
        "(rename it to 2016-03-29.parquet)")


def test_a_folder_in_batches_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "batches"
    (folder / "old").mkdir(parents=True)
    pd.DataFrame({"a": [1]}).to_parquet(folder / "old" / "2016-03-29.parquet")
    pd.DataFrame({"a": [1]}).to_parquet(folder / "2016-03-30.parquet")
    assert landing.unlanded_files(tmp_path) == (
        f"found old/, but {LANDED} (a batch is one file: move it out, or put its files in "
        "batches/)")


def _weekly(**data: str) -> tuple[UseCaseConfig, dict]:
    """The demand config cut weekly, and 15 days from Sunday 2026-03-01 cut by it."""
    base = load_config("demand")
    cfg = base.model_copy(update={"data": base.data.model_copy(
        update={"batch_frequency": "weekly", **data})})
    frame = pd.DataFrame({"date": pd.date_range("2026-03-01", periods=15, freq="D"), "x": 1})
    return cfg, labelled_history.split_into_batches(frame, cfg)


def test_split_into_weekly_batches() -> None:
    _, batches = _weekly()
    # 2026-03-01 is a Sunday: weeks start on Monday
    assert list(batches) == [dt.date(2026, 2, 23), dt.date(2026, 3, 2), dt.date(2026, 3, 9)]
    assert [len(b) for b in batches.values()] == [1, 7, 7]


@pytest.mark.parametrize(("values", "shown", "example"), [
    ([1952, 1957, 2007], "1952..2007", "1952-01-01"),  # plotly gapminder's year
    ([19580329.0, 19580405.0], "19580329..19580405", "1958-03-29"),  # statsmodels co2
])
def test_split_refuses_a_time_column_of_numbers(values: list, shown: str, example: str) -> None:
    # pd.to_datetime would read them as nanoseconds since 1970: one batch, dated 1970-01-01.
    cfg = load_config("demand")
    frame = pd.DataFrame({"date": values, "x": range(len(values))})
    with pytest.raises(ValueError) as err:
        labelled_history.split_into_batches(frame, cfg)
    assert str(err.value) == (f"data.time_column: column 'date' holds numbers ({shown}), not "
                              f"dates or times: write them as dates (e.g. {example})")


def test_calendar_features_refuse_a_time_column_of_numbers() -> None:
    # Training and scoring parse the time column the same way (batch_reader.parse_local_times).
    cfg = load_config("demand")
    rows = _demand_rows(10, dt.date(2026, 3, 2))
    spec = fit_feature_spec(cfg, rows)
    with pytest.raises(ValueError, match="column 'date' holds numbers"):
        spec.transform(rows.assign(date=20260302))


def test_split_rejects_unparseable_times() -> None:
    cfg = load_config("demand")
    frame = pd.DataFrame({"date": ["2026-03-01", "not a date", None], "x": [1, 2, 3]})
    with pytest.raises(ValueError) as err:
        labelled_history.split_into_batches(frame, cfg)
    # ISO dates already: no advice on the format
    assert str(err.value) == ("time column 'date': 1 empty value and 1 value that is not a "
                              "date (e.g. 'not a date')")


def test_day_first_dates_are_named_with_the_format_they_were_read_in() -> None:
    # pandas guesses month first from 01/02/2020 and then cannot read 13/02/2020.
    frame = pd.DataFrame({"date": [f"{d:02d}/02/2020" for d in range(1, 16)], "x": range(15)})
    with pytest.raises(ValueError) as err:
        labelled_history.split_into_batches(frame, load_config("demand"))
    assert str(err.value) == (
        "time column 'date': 3 values that are not a date (e.g. '13/02/2020', '14/02/2020', "
        "'15/02/2020'); every value is read in the format of the first, '01/02/2020': write "
        "dates as YYYY-MM-DD")


def test_a_batch_unreadable_for_its_labels_is_logged_once_per_content(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = load_config("demand")
    day = dt.date(2016, 3, 29)
    (tmp_path / "batches").mkdir()
    landing.batch_path(tmp_path, day).write_bytes(b"PAR1 cut short")
    (tmp_path / "labels").mkdir()
    pd.DataFrame({cfg.data.id_column: ["a"], cfg.data.target: [1.0]}).to_parquet(
        landing.labels_path(tmp_path, day))
    as_of = day + dt.timedelta(days=cfg.data.label_delay)
    for later in range(1, cfg.data.label_delay + 1):  # batches after it: its labels are due
        landing.batch_path(tmp_path, day + dt.timedelta(days=later)).write_bytes(b"")
    with caplog.at_level("WARNING", logger="ctpipe.landing"):
        for _ in range(3):
            assert landing.labelled_dates(tmp_path, cfg, as_of) == []
    said = [r.getMessage() for r in caplog.records if "left out of the labelled" in r.getMessage()]
    assert len(said) == 1 and "batch unreadable for its labels" in said[0]


def test_monthly_dates_that_read_both_ways_are_refused() -> None:
    # A monthly series dated on the 1st, day first: month first, 01/03/2020 is 3 January, and
    # the year would become 1-12 January without an error.
    frame = pd.DataFrame({"date": [f"01/{m:02d}/2020" for m in range(1, 13)], "x": range(12)})
    with pytest.raises(ValueError) as err:
        labelled_history.split_into_batches(frame, load_config("demand"))
    assert str(err.value) == (
        "time column 'date': dates such as '01/02/2020' read as 2 January (month first) or as "
        "1 February (day first), and no value has a day above 12 to tell which: write dates "
        "as YYYY-MM-DD")


@pytest.mark.parametrize(("dates", "example"), [
    ([f"20-{m:02d}-03" for m in range(1, 13)], "20-01-03"),  # year first: read as 2003
    ([f"{d:02d}.03.26" for d in range(1, 29)], "01.03.26"),  # day first, a day above 12
    (["n/a", *[f"01/{m:02d}/20" for m in range(1, 13)]], "01/01/20"),  # a stray value
])
def test_two_digit_years_are_refused(dates: list[str], example: str) -> None:
    frame = pd.DataFrame({"date": dates, "x": range(len(dates))})
    with pytest.raises(ValueError) as err:
        labelled_history.split_into_batches(frame, load_config("demand"))
    assert str(err.value) == (f"time column 'date': dates such as {example!r} have a two-digit "
                              "year, and nothing says which field it is: write dates as "
                              "YYYY-MM-DD")


@pytest.mark.parametrize(("dates", "first", "last"), [
    # A day above 12 settles it: month first.
    ([f"{m:02d}/13/2020" for m in range(1, 13)], "2020-01-13", "2020-12-13"),
    ([f"2020/{m:02d}/01" for m in range(1, 13)], "2020-01-01", "2020-12-01"),  # year first
    # ISO with a time: "10-03-03" inside must not match.
    ([f"2010-{m:02d}-03 09:51:00" for m in range(1, 13)], "2010-01-03", "2010-12-03"),
    ([f"{m:02d}/{m:02d}/2020" for m in range(1, 13)], "2020-01-01", "2020-12-12"),  # both ways
    ([f"Jan {d} 2020" for d in range(1, 13)], "2020-01-01", "2020-01-12"),
])
def test_dates_that_read_one_way_are_split(dates: list[str], first: str, last: str) -> None:
    frame = pd.DataFrame({"date": dates, "x": range(12)})
    batches = list(labelled_history.split_into_batches(frame, load_config("demand")))
    assert len(batches) == 12
    assert (batches[0].isoformat(), batches[-1].isoformat()) == (first, last)


def test_weekly_batches_may_start_on_sunday() -> None:
    cfg, batches = _weekly(week_start="sunday")
    # 2026-03-01 is a Sunday: three weeks from Sunday, the last one day long.
    assert list(batches) == [dt.date(2026, 3, 1), dt.date(2026, 3, 8), dt.date(2026, 3, 15)]
    assert [len(b) for b in batches.values()] == [7, 7, 1]
    assert labelled_history.periods_between(dt.date(2026, 3, 1), dt.date(2026, 3, 15),
                                            cfg) == list(batches)
    from ctpipe.validation.rules import batch_period

    assert batch_period(dt.date(2026, 3, 4), "weekly", "sunday") == (
        dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 8))
    assert batch_period(dt.date(2026, 3, 1), "weekly") == (
        dt.datetime(2026, 2, 23), dt.datetime(2026, 3, 2))
