"""Malformed batches through the real cycle flow: each one is quarantined with a clear reason.

For both reference cases, one workspace per module promotes a champion once; then every
malformed batch replaces the next batch in the landing zone (each case has its own date) and
runs through ``cycle_flow`` on the real Prefect test server. Each case checks that the flow
ends Failed, the cycle record says "quarantined" with a message naming the column and the
rule or observed value, the file moved to ``quarantine/<date>/`` beside ``gx_result.json`` and
``summary.md``, and the registry (versions, aliases, tags) is exactly what it was.

The period, future and row-count-vs-recent cases need the flow to pass ``batch_date`` and
``recent_rows`` (the row counts of up to 7 previous batches in the landing zone) to
``validate_frame``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ctpipe import landing, registry
from ctpipe.flows.cycle import cycle_flow
from ctpipe.workspace import Workspace
from tests.helpers import START, day, simulated_workspace, small_config

pytestmark = pytest.mark.usefixtures("prefect_server")

# The day whose cycle promotes the champion: the 6-batch training window needs 6 labelled
# batches, and labels arrive 1 (demand) or 3 (fraud) batches late. Malformed batches follow it.
PROMOTE = {"demand": 7, "fraud": 9}


@dataclass(frozen=True)
class Case:
    name: str
    # (clean batch, its path, its date) -> writes the malformed file; may return another date
    # to run instead (a batch dated in the future).
    write: Callable[[pd.DataFrame, Path, dt.date], dt.date | None]
    expect: tuple[str, ...]  # fragments the cycle record's message must contain

    def __str__(self) -> str:
        return self.name


def parquet(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[..., None]:
    def write(batch: pd.DataFrame, path: Path, _: dt.date) -> None:
        change(batch.copy()).to_parquet(path, index=False)
    return write


def raw(data: Callable[[bytes], bytes]) -> Callable[..., None]:
    def write(_: pd.DataFrame, path: Path, __: dt.date) -> None:
        path.write_bytes(data(path.read_bytes()))
    return write


def setting(frame: pd.DataFrame, rows: list[int], column: str, values: object) -> pd.DataFrame:
    if not isinstance(values, list):
        values = [values] * len(rows)
    if frame[column].dtype != object and any(isinstance(v, str) for v in values):
        frame[column] = frame[column].astype(object)
    frame.loc[rows, column] = values
    return frame


def as_text(frame: pd.DataFrame, column: str, rows: list[int], values: list[str]) -> pd.DataFrame:
    frame[column] = frame[column].astype("str")
    frame.loc[rows, column] = values
    return frame


def more_rows(frame: pd.DataFrame, n: int, id_column: str) -> pd.DataFrame:
    out = frame.sample(n, replace=True, random_state=0).reset_index(drop=True)
    out[id_column] = out[id_column].iloc[0] + np.arange(n, dtype="int64")
    return out


def dated_tomorrow(time_column: str) -> Callable[..., dt.date]:
    """The batch moved to tomorrow (a file dated in the future): its times are in the future."""
    def write(batch: pd.DataFrame, path: Path, batch_day: dt.date) -> dt.date:
        tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        shifted = batch.copy()
        shifted[time_column] = shifted[time_column] + pd.Timedelta(days=(tomorrow - batch_day).days)
        path.unlink()
        shifted.to_parquet(path.with_name(f"{tomorrow.isoformat()}.parquet"), index=False)
        return tomorrow
    return write


def footer_corrupted(data: bytes) -> bytes:
    return data[:-200] + b"\x00" * 192 + data[-8:]


def pages_corrupted(data: bytes) -> bytes:
    return data[:4] + b"\xff" * 2000 + data[2004:]


def csv_text(data: bytes) -> bytes:
    return b"event_time;amount\n2026-03-10;12.5\n"


FRAUD_CASES = [
    Case("missing column", parquet(lambda f: f.drop(columns=["amount"])),
         ("amount: column exists: missing from the batch",)),
    Case("renamed column", parquet(lambda f: f.rename(columns={"channel": "Channel"})),
         ("channel: column exists: missing from the batch (similar: 'Channel')",)),
    Case("numbers stored as text", parquet(lambda f: f.astype({"amount": "str"})),
         ("amount: numeric dtype: dtype str",)),
    Case("mixed numbers and text", parquet(
        lambda f: as_text(f, "card_age_days", [3, 9], ["n/a", "unknown"])),
         ("card_age_days: numeric dtype", "not numbers (e.g. 'n/a', 'unknown')")),
    Case("nulls in a feature", parquet(lambda f: setting(f, [1, 2, 3, 4, 5], "amount", np.nan)),
         ("amount: not null: 0.2% null (max 0.0%, validation.null_fraction; 5 of 2,000 "
          "rows)",)),
    Case("null ids", parquet(lambda f: setting(f.astype({"transaction_id": "float64"}), [7],
                                               "transaction_id", np.nan)),
         ("transaction_id: not null",)),
    Case("hour out of range", parquet(lambda f: setting(f, [10, 11], "hour", 24)),
         ("hour: in range [0, 23]: 2 values outside [0, 23] (e.g. 24)",)),
    Case("negative amount", parquet(lambda f: setting(f, [12], "amount", -12.5)),
         ("amount: in range [0, 1000000]", "-12.5")),
    Case("unknown channel", parquet(lambda f: setting(f, [0, 5, 9], "channel", "fax")),
         ("channel: in set: 3 values not in {pos, ecommerce, atm, wallet} (e.g. 'fax')",)),
    Case("duplicate ids", parquet(
        lambda f: setting(f, [20, 21], "transaction_id", int(f["transaction_id"].iloc[0]))),
         ("transaction_id: unique: 3 rows share a duplicated value",)),
    Case("too few rows", parquet(lambda f: f.head(500)),
         ("table: row count: 500 rows (min 1,000)",)),
    Case("unexpected column", parquet(lambda f: f.assign(debug_flag=1)),
         ("table: no unexpected columns: 1 column not in the config", "'debug_flag'")),
    Case("timestamps outside the period", parquet(
        lambda f: setting(f, [30, 31], "event_time", f["event_time"].iloc[0]
                          + pd.Timedelta(days=1))),
         ("event_time: in batch period: 2 values outside the daily period",)),
    Case("timestamps in the future", dated_tomorrow("event_time"),
         ("event_time: not in the future", "after now")),
    Case("row count spike", parquet(lambda f: more_rows(f, 5000, "transaction_id")),
         ("table: row count within 30% of recent batches: 5,000 rows (expected 1,400 to "
          "2,600: median 2,000",)),
    Case("extra expectation", parquet(lambda f: f.assign(amount=f["amount"] * 10)),
         ("amount: mean amount at most 1,000: observed",)),
    Case("timestamps as unparseable text", parquet(
        lambda f: as_text(f, "event_time", [2, 3], ["yesterday", "31/02/2026"])),
         ("event_time: timestamp dtype", "'yesterday', '31/02/2026'")),
    Case("zero rows", parquet(lambda f: f.iloc[:0]),
         ("table: row count: 0 rows (min 1,000): the batch is empty",)),
    Case("truncated parquet", raw(lambda b: b[: len(b) // 2]),
         ("truncated Parquet file", "footer is missing")),
    Case("empty file", raw(lambda b: b""), ("file is empty (0 bytes)",)),
    Case("CSV text in a .parquet file", raw(csv_text), ("not a Parquet file",)),
    Case("corrupted parquet footer", raw(footer_corrupted), ("unreadable Parquet file",)),
]

DEMAND_CASES = [
    Case("missing column", parquet(lambda f: f.drop(columns=["typhoon_signal"])),
         ("typhoon_signal: column exists: missing from the batch",)),
    Case("nulls over the column's override", parquet(
        lambda f: setting(f, list(range(24)), "rainfall_mm", np.nan)),
         ("rainfall_mm: not null: ", "null (max 5.0%, validation.null_fraction; ")),
    Case("negative waiting time", parquet(lambda f: setting(f, [0, 1], "border_wait_minutes",
                                                            -30.0)),
         ("border_wait_minutes: in range [0, 1440]: 2 values outside [0, 1440] (e.g. -30.0)",)),
    Case("unseen categories over the tolerated share", parquet(
        lambda f: setting(f, list(range(12)), "holiday", "xmas")),
         ("holiday: in set: 12 values not in {none, hk, mainland, both} (5.0% of non-null "
          "values; at most 2.0% may be unseen) (e.g. 'xmas')",)),
    Case("duplicate ids", parquet(
        lambda f: setting(f, [5], "record_id", int(f["record_id"].iloc[0]))),
         ("record_id: unique: 2 rows share a duplicated value",)),
    Case("too few rows", parquet(lambda f: f.head(30)),
         ("table: row count: 30 rows (min 50)",)),
    Case("row count drop", parquet(lambda f: f.head(100)),
         ("table: row count within 30% of recent batches: 100 rows (expected 168 to 312",)),
    Case("whole batch dated the next day", parquet(
        lambda f: f.assign(date=f["date"] + pd.Timedelta(days=1))),
         ("date: in batch period: 240 values outside the daily period",)),
    Case("unexpected column", parquet(lambda f: f.assign(notes="checked")),
         ("table: no unexpected columns", "'notes'")),
    Case("nulls in a categorical", parquet(lambda f: setting(f, [3], "commodity", None)),
         ("commodity: not null: 0.4% null (max 0.0%, validation.null_fraction; 1 of 240 "
          "rows) (e.g. data row 4)",)),
    Case("bookings as text", parquet(
        lambda f: as_text(f, "advance_bookings", [8], ["TBC"])),
         ("advance_bookings: numeric dtype: dtype str", "'TBC'")),
    Case("lane codes in lower case", parquet(
        lambda f: f.assign(lane=f["lane"].str.lower())),
         ("lane: lane code: 240 values unexpected (100.0% of 240)", "'hk-")),
    Case("corrupted parquet pages", raw(pages_corrupted), ("unreadable Parquet file",)),
]

# Rules the reference configs leave off, switched on so the cases above can break them.
EXTRA_RULES = {
    "fraud": {"row_count_tolerance": 0.3, "warn": ["jurisdiction:domain"], "extra": [
        {"type": "expect_column_mean_to_be_between", "rule": "mean amount at most 1,000",
         "kwargs": {"column": "amount", "max_value": 1000}}]},
    "demand": {"row_count_tolerance": 0.3, "unseen_category_share": 0.02, "extra": [
        {"type": "ExpectColumnValuesToMatchRegex", "rule": "lane code",
         "kwargs": {"column": "lane", "regex": "^HK-[A-Z]{2}$"}}]},
}
ROWS = {"fraud": 2000, "demand": None}  # None: the generator's 240 rows a day


@dataclass
class Setup:
    ws: Workspace
    first: int  # day index of the first malformed batch

    def snapshot(self) -> list[tuple[int, tuple[str, ...], dict[str, str]]]:
        return [(v.version, tuple(sorted(v.aliases)), dict(v.tags))
                for v in registry.list_versions(self.ws.model_name)]


def _workspace(tmp: Path, use_case: str, cases: int) -> Setup:
    path = small_config(tmp, use_case)
    raw_config = yaml.safe_load(path.read_text())
    raw_config["validation"].update(EXTRA_RULES[use_case])
    path.write_text(yaml.safe_dump(raw_config), encoding="utf-8")
    ws = simulated_workspace(path, days=PROMOTE[use_case] + 1 + cases, rows=ROWS[use_case])
    result = cycle_flow(use_case=ws.ref, batch_date=day(PROMOTE[use_case]))
    assert result["status"] == "promoted", result
    return Setup(ws, PROMOTE[use_case] + 1)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Like conftest's ctpipe_home, for the whole module: one champion serves every case."""
    root = tmp_path_factory.mktemp("quarantine")
    home = root / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTPIPE_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        yield root


@pytest.fixture(scope="module")
def fraud(home: Path) -> Setup:
    return _workspace(home, "fraud", len(FRAUD_CASES) + 1)


@pytest.fixture(scope="module")
def demand(home: Path) -> Setup:
    return _workspace(home, "demand", len(DEMAND_CASES))


def run_case(setup: Setup, case: Case, index: int) -> None:
    ws = setup.ws
    batch_day = dt.date.fromisoformat(day(setup.first + index))
    path = landing.batch_path(ws.landing, batch_day)
    before = setup.snapshot()
    moved_to = case.write(pd.read_parquet(path), path, batch_day)
    if moved_to is not None:
        batch_day, path = moved_to, landing.batch_path(ws.landing, moved_to)
    when = batch_day.isoformat()

    state = cycle_flow(use_case=ws.ref, batch_date=when, return_state=True)
    record = ws.read_record(when)
    assert record is not None, f"{case}: no cycle record for {when}"
    message = record["message"]
    assert state.is_failed(), f"{case}: flow ended {state.type}: {message}"
    assert record["status"] == "quarantined", f"{case}: status {record['status']}: {message}"
    for fragment in case.expect:
        assert fragment in message, f"{case}: {fragment!r} not in the message: {message}"
    assert "\n" not in message, f"{case}: the message spans lines: {message!r}"

    # The first attempt at this batch: its own folder, the only one.
    folder = ws.quarantine / when / "attempt-1"
    assert [p.name for p in (ws.quarantine / when).iterdir()] == ["attempt-1"], case
    assert not path.exists(), f"{case}: {path} is still in the landing zone"
    assert (folder / path.name).is_file(), f"{case}: {path.name} not moved to {folder}"
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("# Validation FAILED"), f"{case}: summary.md: {summary[:200]}"
    assert case.expect[0].split(":")[0] in summary, f"{case}: summary.md: {summary}"
    gx_result = json.loads((folder / "gx_result.json").read_text(encoding="utf-8"))
    # Unreadable: no GX result. The batch is named once, in front: the failure is the problem.
    if message.startswith(f"{path}: batch could not be read: "):
        assert message.count(str(path)) == 1, f"{case}: {message}"
        assert record["validation_failures"] == [message.split(": batch could not be read: ")[1]]
        assert gx_result == {}, f"{case}: {gx_result}"
    else:
        assert gx_result["success"] is False and gx_result["results"], f"{case}: {gx_result}"
    assert setup.snapshot() == before, f"{case}: the registry changed"


@pytest.mark.parametrize("case", FRAUD_CASES, ids=str)
def test_malformed_fraud_batch_is_quarantined(fraud: Setup, case: Case) -> None:
    run_case(fraud, case, FRAUD_CASES.index(case))


@pytest.mark.parametrize("case", DEMAND_CASES, ids=str)
def test_malformed_demand_batch_is_quarantined(demand: Setup, case: Case) -> None:
    run_case(demand, case, DEMAND_CASES.index(case))


def test_cases_are_distinct_and_numerous() -> None:
    names = [("fraud", c.name) for c in FRAUD_CASES] + [("demand", c.name) for c in DEMAND_CASES]
    assert len(set(names)) == len(names) >= 25


def test_a_batch_with_only_warnings_is_not_quarantined(fraud: Setup) -> None:
    # jurisdiction:domain is a warning in this workspace: an unseen jurisdiction goes through.
    ws = fraud.ws
    batch_day = START + dt.timedelta(days=fraud.first + len(FRAUD_CASES))
    path = landing.batch_path(ws.landing, batch_day)
    batch = pd.read_parquet(path)
    batch.loc[[0, 1], "jurisdiction"] = "AU"
    batch.to_parquet(path, index=False)
    state = cycle_flow(use_case=ws.ref, batch_date=batch_day.isoformat(), return_state=True)
    record = ws.read_record(batch_day.isoformat())
    assert state.is_completed(), record
    assert record["status"] != "quarantined" and record["validation_passed"] is True
    assert path.is_file()
