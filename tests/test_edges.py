"""Edges that used to crash, lose evidence or train on bad data.

Time zones (one rule from validation to scoring), labels checked like batches (set aside,
never trained on), each quarantine attempt keeping its own evidence, and the CLI refusing a
bad date, a missing batch or a bad backtest source before anything is written or deleted.
The core runs here with in-memory ports or a landing zone in a temporary folder; no Prefect
server is started.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from ctpipe import backtest, labelled_history, landing
from ctpipe.cli import app
from ctpipe.config import UseCaseConfig, repo_configs_dir
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.simulate import generate_day
from ctpipe.steps.cycle import run_cycle
from ctpipe.steps.ports import Runtime
from ctpipe.store import Store
from ctpipe.workspace import Workspace
from tests.fakes import CHAMPION, MemoryRegistry, MemoryStore

START = dt.date(2026, 3, 2)
TARGET = "volume_tonnes"


def day(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def _raw(use_case: str = "demand", **data: object) -> dict:
    """The reference config with a short window and few trees; ``data`` keys overridden."""
    raw = yaml.safe_load((repo_configs_dir() / f"{use_case}.yaml").read_text())
    raw["training"].update({"window": 6, "holdout": 2, "min_train_rows": 200,
                            "params": {"n_estimators": 40, "learning_rate": 0.1,
                                       "num_leaves": 15, "min_child_samples": 20}})
    raw["data"].update(data)
    return raw


def _config(**data: object) -> UseCaseConfig:
    return UseCaseConfig.model_validate(_raw(**data))


def _config_file(tmp_path: Path, name: str = "demand.yaml", **data: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(_raw(**data)), encoding="utf-8")
    return path


def _runtime(config: UseCaseConfig, store: Store) -> tuple[Runtime, MemoryRegistry]:
    models = MemoryRegistry(config.registered_model)
    return Runtime(config=config, model_name=config.registered_model, store=store,
                   models=models, publish=lambda decision: None), models


def _one_line(output: str) -> str:
    text = output.strip()
    assert "\n" not in text and "Traceback" not in text, output
    return text


# --- time zones ----------------------------------------------------------------------------


def test_tz_aware_batches_validate_train_and_score_through_the_core() -> None:
    cfg = _config(timezone="Asia/Hong_Kong")
    store = MemoryStore(cfg)
    for i in range(8):
        frame = generate_day("demand", i, day(i), rows=None, shift_day=None, seed=7)
        if i >= 3:  # the writer switched to zone-aware timestamps mid-history
            frame["date"] = frame["date"].dt.tz_localize("Asia/Hong_Kong")
        store.add(day(i), frame)
    rt, models = _runtime(cfg, store)

    outcome = run_cycle(rt, day(7), explicit_date=True)
    assert outcome.status is CycleStatus.PROMOTED, outcome.message
    assert not store.quarantined
    lineage = models.champion().lineage
    assert (lineage.train_start, lineage.train_end) == (day(1).isoformat(), day(4).isoformat())
    assert int(lineage.train_rows) == sum(len(store.batches[day(i)]) for i in range(1, 5))

    model = models.loaded[models.aliases[CHAMPION]].model
    assert model.spec.timezone == "Asia/Hong_Kong"
    aware = store.batches[day(7)]
    # The same instants written naive in Hong Kong time, or aware in UTC (16:00 the day
    # before): the calendar features, so the predictions, are the same.
    naive_local = aware.assign(date=aware["date"].dt.tz_localize(None))
    in_utc = aware.assign(date=aware["date"].dt.tz_convert("UTC"))
    np.testing.assert_array_equal(model.predict(aware), model.predict(naive_local))
    np.testing.assert_array_equal(model.predict(aware), model.predict(in_utc))
    features = model.spec.transform(in_utc)
    assert (features["day_of_week"] == day(7).weekday()).all()


def test_ctpipe_validate_reads_a_tz_aware_file_in_the_configured_zone(tmp_path: Path) -> None:
    frame = generate_day("demand", 0, day(0), rows=None, shift_day=None, seed=7)
    frame = frame.drop(columns=[TARGET])
    frame["date"] = frame["date"].dt.tz_localize("Asia/Hong_Kong")  # 16:00 UTC the day before
    path = tmp_path / "batch.parquet"
    frame.to_parquet(path, index=False)
    hong_kong = _config_file(tmp_path, "hk.yaml", timezone="Asia/Hong_Kong")
    utc = _config_file(tmp_path, "utc.yaml")

    ok = CliRunner().invoke(app, ["validate", str(hong_kong), "--file", str(path),
                                  "--date", day(0).isoformat()])
    assert ok.exit_code == 0, ok.output
    wrong_day = CliRunner().invoke(app, ["validate", str(utc), "--file", str(path),
                                         "--date", day(0).isoformat()])
    assert wrong_day.exit_code == 1, wrong_day.output
    assert "in batch period" in wrong_day.output


def test_a_source_is_cut_into_days_of_the_configured_zone() -> None:
    stamps = pd.Series(pd.to_datetime(["2026-03-02 15:30", "2026-03-02 16:30"]).tz_localize(
        "UTC"))
    frame = pd.DataFrame({"date": stamps, "x": [1, 2]})
    batches = labelled_history.split_into_batches(frame, _config(timezone="Asia/Hong_Kong"))
    # 16:30 UTC is 00:30 on 3 March in Hong Kong.
    assert list(batches) == [dt.date(2026, 3, 2), dt.date(2026, 3, 3)]
    assert batches[dt.date(2026, 3, 3)]["date"].tolist() == [pd.Timestamp("2026-03-03 00:30")]


def test_times_with_and_without_an_offset_in_one_column_are_each_read_by_their_rule() -> None:
    # Two writers concatenated: naive New York wall clock, and UTC with a Z.
    values = pd.Series(["2026-03-02 00:14:20", "2026-03-02T07:43:14Z", "2026-03-02 23:50:00",
                        "2026-03-03T04:30:00+00:00"])
    frame = pd.DataFrame({"date": values, "x": range(4)})
    batches = labelled_history.split_into_batches(frame, _config(timezone="America/New_York"))
    assert list(batches) == [dt.date(2026, 3, 2)]
    assert batches[dt.date(2026, 3, 2)]["date"].tolist() == [pd.Timestamp(t) for t in (
        "2026-03-02 00:14:20", "2026-03-02 02:43:14", "2026-03-02 23:50:00",
        "2026-03-02 23:30:00")]
    # PostgreSQL writes -05; a day-first date has no time of day before its "-2026".
    pg = pd.Series(["2026-03-02 00:14:20", "2026-03-02 12:00:00-05"])
    assert labelled_history.split_into_batches(pd.DataFrame({"date": pg, "x": [1, 2]}), _config(
        timezone="America/New_York"))[dt.date(2026, 3, 2)]["date"].tolist() == [
        pd.Timestamp("2026-03-02 00:14:20"), pd.Timestamp("2026-03-02 12:00:00")]
    from ctpipe.batch_reader import naive_and_aware, parse_local_times

    assert naive_and_aware(pd.Series(["15-01-2026", "16-01-2026"]), "UTC") is None
    # Coercing never raises: what cannot be read is NaT, for the caller to name.
    odd = pd.Series(["2026-03-02 00:14:20", "2026-03-02T07:43:14Z", "next tuesday"])
    assert parse_local_times(odd, "UTC", errors="coerce").isna().tolist() == [False, False,
                                                                              True]
    # Validation reads them the same way: every row inside the day.
    from ctpipe.validation import validate_frame

    config = _config(timezone="America/New_York")
    batch = generate_day("demand", 0, day(0), rows=None, shift_day=None, seed=7).drop(
        columns=[TARGET])
    stamps = [f"{day(0)} 00:{m % 60:02d}:00" if m % 2 else f"{day(0)}T12:{m % 60:02d}:00Z"
              for m in range(len(batch))]
    result = validate_frame(batch.assign(date=stamps), config, batch_date=day(0))
    assert result.passed, result.message("b.csv")


# --- labels ------------------------------------------------------------------------------


@pytest.fixture
def zone(ctpipe_home: Path) -> Workspace:
    """A landing zone of 8 simulated demand batches (labels beside them)."""
    ws = Workspace(_config())
    for i in range(8):
        landing.write_batch(ws.landing, ws.config, day(i),
                            generate_day("demand", i, day(i), rows=None, shift_day=None, seed=7))
    return ws


def _break_labels(ws: Workspace, i: int, change: object) -> Path:
    path = landing.labels_path(ws.landing, day(i))
    labels = pd.read_parquet(path)
    labels = change(labels)
    labels.to_parquet(path, index=False)
    return path


def _rows(ws: Workspace, days: list[int]) -> int:
    return sum(landing.row_count(landing.batch_path(ws.landing, day(i))) for i in days)


def _null_targets(labels: pd.DataFrame) -> pd.DataFrame:
    labels.loc[:9, TARGET] = np.nan
    return labels


def test_labels_with_null_targets_are_set_aside_never_trained_on(zone: Workspace) -> None:
    ws = zone
    bad = _break_labels(ws, 2, _null_targets)
    rt, models = _runtime(ws.config, ws.store)

    outcome = run_cycle(rt, day(7), explicit_date=True)
    assert outcome.status is CycleStatus.PROMOTED, outcome.message
    # Labelled as of day 7 (label delay 1): days 0..6 without day 2; the newest 2 held out.
    lineage = models.champion().lineage
    assert (lineage.train_start, lineage.train_end) == (day(0).isoformat(), day(4).isoformat())
    assert int(lineage.train_rows) == _rows(ws, [0, 1, 3, 4])

    folder = ws.quarantine / day(2).isoformat() / "labels-attempt-1"
    assert not bad.exists() and (folder / bad.name).is_file()
    assert pd.read_parquet(folder / bad.name)[TARGET].isna().sum() == 10  # the evidence, whole
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert str(bad) in summary and f"10 of {_rows(ws, [2]):,} targets {TARGET!r} are null" \
        in summary
    assert landing.batch_path(ws.landing, day(2)).is_file()  # the batch itself stays


def test_drop_null_targets_drops_the_rows_and_keeps_the_batch(ctpipe_home: Path) -> None:
    ws = Workspace(_config(drop_null_targets=True))
    for i in range(8):
        landing.write_batch(ws.landing, ws.config, day(i),
                            generate_day("demand", i, day(i), rows=None, shift_day=None, seed=7))
    _break_labels(ws, 2, _null_targets)
    rt, models = _runtime(ws.config, ws.store)

    outcome = run_cycle(rt, day(7), explicit_date=True)
    assert outcome.status is CycleStatus.PROMOTED, outcome.message
    lineage = models.champion().lineage
    assert (lineage.train_start, lineage.train_end) == (day(1).isoformat(), day(4).isoformat())
    assert int(lineage.train_rows) == _rows(ws, [1, 2, 3, 4]) - 10
    assert not ws.quarantine.exists()
    frame = landing.load_labelled(ws.landing, ws.config, [day(2)])
    assert len(frame) == _rows(ws, [2]) - 10 and frame[TARGET].notna().all()


def test_too_few_rows_left_after_dropping_null_targets_waits(ctpipe_home: Path) -> None:
    # The window's label files hold training.min_train_rows rows; 10 have no target and are
    # dropped at training: the retrain waits, as for a short window, instead of crashing.
    raw = _raw(drop_null_targets=True)
    ws = Workspace(UseCaseConfig.model_validate(raw))
    for i in range(8):
        landing.write_batch(ws.landing, ws.config, day(i),
                            generate_day("demand", i, day(i), rows=None, shift_day=None, seed=7))
    _break_labels(ws, 2, _null_targets)
    raw["training"]["min_train_rows"] = _rows(ws, [1, 2, 3, 4])
    ws = Workspace(UseCaseConfig.model_validate(raw))
    rt, models = _runtime(ws.config, ws.store)

    outcome = run_cycle(rt, day(7), explicit_date=True)
    assert outcome.status is CycleStatus.WAITING, outcome.message
    rows = _rows(ws, [1, 2, 3, 4])
    assert outcome.message == (f"cannot retrain yet: {rows - 10} training rows, "
                               f"training.min_train_rows is {rows}")
    assert models.versions() == [] and not ws.quarantine.exists()


def _fraud_labels(n: int = 6) -> tuple[pd.Series, pd.DataFrame]:
    ids = pd.Series(np.arange(n, dtype=np.int64), name="transaction_id")
    return ids, pd.DataFrame({"transaction_id": ids, "is_fraud": [0, 1, 0, 0, 1, 0][:n]})


@pytest.mark.parametrize(("change", "rule"), [
    (lambda f: f.assign(is_fraud=[0, 1, 2, 0, 1, 0]),
     "binary target 'is_fraud' has values outside {0, 1}: 2"),
    (lambda f: f.assign(is_fraud=["no", "yes", "no", "no", "yes", "no"]),
     "target 'is_fraud' has dtype"),
    (lambda f: f.assign(is_fraud=[0, 1, None, 0, 1, None]),
     "2 of 6 targets 'is_fraud' are null (data.drop_null_targets: true drops such rows "
     "instead)"),
    (lambda f: f.iloc[:5], "5 labels for 6 batch rows"),
    (lambda f: f.assign(transaction_id=[0, 1, 2, 3, 5, 4]),
     "ids do not match the batch's rows (first difference at data row 5: 5 vs the batch's 4); "
     "the same ids in another order: write the labels in the batch's row order"),

    (lambda f: f.drop(columns="is_fraud"), "column 'is_fraud' is missing"),
])
def test_labels_rules_name_the_file_and_the_rule(change: object, rule: str) -> None:
    cfg = UseCaseConfig.model_validate(_raw("fraud"))
    ids, labels = _fraud_labels()
    check = landing.check_labels(ids, len(ids), change(labels), cfg, "labels/x.parquet")
    assert check.problem is not None and check.problem.startswith("labels/x.parquet: ")
    assert rule in check.problem
    assert landing.check_labels(ids, len(ids), labels, cfg, "l").problem is None


def test_ids_read_from_csv_stay_exact_text_and_match_numeric_labels(tmp_path: Path) -> None:
    # 18-digit ids with one empty: read as numbers they would become float64 and round
    # neighbours into duplicates; leading zeros would be lost in the scores handed back.
    cfg = UseCaseConfig.model_validate(_raw("fraud"))
    big = [str(1234567890123456000 + i) for i in range(5)] + [""]
    zeros = [f"{i:08d}" for i in range(6)]
    for ids in (big, zeros):
        path = tmp_path / "b.csv"
        pd.DataFrame({"transaction_id": ids, "amount": range(6)}).to_csv(path, index=False)
        read = landing.read_batch_file(path, cfg)["transaction_id"]
        assert read.dropna().tolist() == [i for i in ids if i]
    # A Parquet labels file with the same ids as numbers matches a CSV batch's text ids.
    text_ids = pd.Series([str(i) for i in range(6)], name="transaction_id")
    _, labels = _fraud_labels()
    assert landing.check_labels(text_ids, 6, labels, cfg, "l").problem is None


def test_other_ids_are_not_called_another_order() -> None:
    cfg = UseCaseConfig.model_validate(_raw("fraud"))
    ids, labels = _fraud_labels()
    check = landing.check_labels(ids, 6, labels.assign(transaction_id=[0, 1, 2, 3, 4, 9]), cfg,
                                 "l")
    assert check.problem == ("l: ids do not match the batch's rows (first difference at data "
                             "row 6: 9 vs the batch's 5)")


def test_infinite_regression_targets_break_a_rule() -> None:
    ids = pd.Series(["a", "b"], name="record_id")
    labels = pd.DataFrame({"record_id": ids, TARGET: [1.0, np.inf]})
    check = landing.check_labels(ids, 2, labels, _config(), "l.parquet")
    assert check.problem == f"l.parquet: 1 targets {TARGET!r} are infinite"


def test_without_a_quarantine_bad_labels_are_left_out_and_left_alone(zone: Workspace) -> None:
    bad = _break_labels(zone, 1, lambda f: f.iloc[:-1])
    dates = landing.labelled_dates(zone.landing, zone.config, day(4))
    assert dates == [day(0), day(2), day(3)]
    assert bad.is_file() and not zone.quarantine.exists()
    with pytest.raises(ValueError, match=r"labels for .* batch rows"):
        landing.load_labelled(zone.landing, zone.config, [day(1)])


def test_backtest_scoring_skips_a_day_with_bad_labels(ctpipe_home: Path) -> None:
    ws = Workspace(_config(), backtest=True)
    landing.write_batch(ws.landing, ws.config, day(0),
                        generate_day("demand", 0, day(0), rows=None, shift_day=None, seed=7))
    _break_labels(ws, 0, lambda f: f.iloc[:-3])
    assert backtest.score_day(ws, day(0), None, None) == backtest.DayScore(None, None)


# --- quarantine attempts ------------------------------------------------------------------


def test_each_quarantine_attempt_keeps_its_own_evidence(zone: Workspace) -> None:
    store = zone.store
    batch = landing.batch_path(zone.landing, day(5))
    first_bytes = batch.read_bytes()
    first = Path(store.quarantine(day(5), {"gx_result.json": json.dumps({"try": 1}),
                                           "summary.md": "# first\n"}))
    assert first == zone.quarantine / day(5).isoformat() / "attempt-1"
    assert not batch.exists() and (first / batch.name).read_bytes() == first_bytes

    # A corrected file is put back, fails again: a second attempt, the first untouched.
    batch.write_bytes(first_bytes)
    second = Path(store.quarantine(day(5), {"gx_result.json": "{}", "summary.md": "# second\n"}))
    assert second == zone.quarantine / day(5).isoformat() / "attempt-2"
    assert json.loads((first / "gx_result.json").read_text()) == {"try": 1}
    assert (first / "summary.md").read_text() == "# first\n"
    assert (second / "summary.md").read_text() == "# second\n"
    assert (second / batch.name).is_file() and not batch.exists()

    # A run that finds the batch gone (another moved it) still records its attempt.
    third = Path(store.quarantine(day(5), {"summary.md": "# third\n"}))
    assert third.name == "attempt-3" and [p.name for p in third.iterdir()] == ["summary.md"]


def test_memory_store_keeps_every_attempt() -> None:
    store = MemoryStore(_config())
    store.add(day(0), generate_day("demand", 0, day(0), rows=50, shift_day=None, seed=7))
    assert store.quarantine(day(0), {"summary.md": "one"}).endswith("/attempt-1")
    assert store.quarantine(day(0), {"summary.md": "two"}).endswith("/attempt-2")
    held = store.quarantined[day(0)]
    assert (held["attempt-1/summary.md"], held["attempt-2/summary.md"]) == ("one", "two")
    assert held["summary.md"] == "two"


# --- CLI: dates, --force, backtest source ----------------------------------------------


@pytest.fixture
def config_path(ctpipe_home: Path, tmp_path: Path) -> Path:
    path = _config_file(tmp_path)
    ws = Workspace(_config())
    for i in range(3):
        landing.write_batch(ws.landing, ws.config, day(i),
                            generate_day("demand", i, day(i), rows=60, shift_day=None, seed=7))
    return path


def _written(home: Path) -> list[str]:
    """Everything a cycle would leave in CTPIPE_HOME besides the landing zone."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and "landing" not in p.parts)


@pytest.mark.parametrize(("date", "problem"), [
    ("2026-03-99", "--date '2026-03-99': not a valid date YYYY-MM-DD"),
    ("yesterday", "--date 'yesterday': not a valid date YYYY-MM-DD"),
    ("2026-04-01", "--date 2026-04-01: no batch for that date in "),
])
def test_cycle_refuses_a_bad_or_missing_date_and_writes_nothing(
        config_path: Path, ctpipe_home: Path, date: str, problem: str) -> None:
    before = _written(ctpipe_home)
    result = CliRunner().invoke(app, ["cycle", str(config_path), "--date", date])
    assert result.exit_code == 2, result.output
    assert problem in _one_line(result.output)
    assert _written(ctpipe_home) == before
    assert not (ctpipe_home / "quarantine").exists() and not (ctpipe_home / "cycles").exists()


def test_cycle_on_a_quarantined_date_says_where_the_batch_went(config_path: Path,
                                                               ctpipe_home: Path) -> None:
    ws = Workspace(_config())
    ws.store.quarantine(day(1), {"summary.md": "# failed\n"})
    result = CliRunner().invoke(app, ["cycle", str(config_path), "--date", day(1).isoformat()])
    assert result.exit_code == 2
    assert f"it was quarantined to {ws.quarantine / day(1).isoformat()}" in \
        _one_line(result.output)
    assert [p.name for p in (ws.quarantine / day(1).isoformat()).iterdir()] == ["attempt-1"]


def test_cycle_on_a_date_landed_as_csv_names_the_file_and_the_rule(config_path: Path,
                                                                   ctpipe_home: Path) -> None:
    ws = Workspace(_config())
    when = day(3).isoformat()
    csv = ws.landing / "batches" / f"{when}.csv"
    generate_day("demand", 3, day(3), rows=60, shift_day=None, seed=7).to_csv(csv, index=False)
    before = _written(ctpipe_home)
    result = CliRunner().invoke(app, ["cycle", str(config_path), "--date", when])
    assert result.exit_code == 2
    assert _one_line(result.output) == (
        f"--date {when}: no batch for that date in {ws.landing / 'batches'}: found {when}.csv, "
        "but landed batches are Parquet files named YYYY-MM-DD.parquet (convert it, e.g. "
        "with pandas' to_parquet)")
    assert _written(ctpipe_home) == before


def test_cycle_with_only_csv_batches_names_them(ctpipe_home: Path, tmp_path: Path) -> None:
    path = _config_file(tmp_path)
    ws = Workspace(_config())
    (ws.landing / "batches").mkdir(parents=True)
    (ws.landing / "batches" / "2026-03-02.csv").write_text("a\n1\n")
    result = CliRunner().invoke(app, ["cycle", str(path)])
    assert result.exit_code == 2
    assert _one_line(result.output) == (
        f"no batches in {ws.landing / 'batches'}: found 2026-03-02.csv, but landed batches are "
        "Parquet files named YYYY-MM-DD.parquet (convert it, e.g. with pandas' to_parquet)")


def test_cycle_with_an_empty_landing_zone_is_refused(ctpipe_home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["cycle", str(_config_file(tmp_path))])
    assert result.exit_code == 2
    assert "no batches in" in _one_line(result.output)


class _Completed:
    message = "ok"

    def is_completed(self) -> bool:
        return True

    def result(self, raise_on_failure: bool = True) -> dict:
        return {"status": "no-drift"}  # the run's own record, as a real state carries it


class _Failed:
    message = "MLflow unreachable"

    def is_completed(self) -> bool:
        return False

    def result(self, raise_on_failure: bool = True) -> None:
        return None


@pytest.mark.parametrize("flag", [[], ["--date", day(2).isoformat()]])
def test_a_failed_cycle_names_it_in_one_plain_line(
        config_path: Path, monkeypatch: pytest.MonkeyPatch, flag: list[str]) -> None:
    import ctpipe.flows.cycle

    with contextlib.suppress(ImportError):
        import ctpipe.embedded_prefect

        monkeypatch.setattr(ctpipe.embedded_prefect, "embedded_server",
                            lambda root: contextlib.nullcontext())
    monkeypatch.setattr(ctpipe.flows.cycle, "cycle_flow", lambda **kwargs: _Failed())
    result = CliRunner().invoke(app, ["cycle", str(config_path), *flag])
    assert result.exit_code == 1
    which = " ".join([str(config_path), *flag[1:]])
    assert _one_line(result.output) == f"cycle {which} failed: MLflow unreachable"


def test_an_unreadable_batch_is_named_once(config_path: Path) -> None:
    ws = Workspace(_config())
    path = landing.batch_path(ws.landing, day(2))
    path.write_bytes(path.read_bytes()[:100])  # the writer did not finish
    rt, _ = _runtime(ws.config, ws.store)
    outcome = run_cycle(rt, day(2), explicit_date=True)
    problem = ("truncated Parquet file (100 bytes): it starts like Parquet but the footer is "
               "missing; the writer probably did not finish")
    assert outcome.status is CycleStatus.QUARANTINED
    assert outcome.message == f"{path}: batch could not be read: {problem}"
    assert ws.store.read_record(day(2)).validation_failures == [problem]


@pytest.mark.parametrize("flag", [[], ["--force"]])
def test_cycle_force_reaches_the_flow(config_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      flag: list[str]) -> None:
    import ctpipe.flows.cycle

    calls: list[dict] = []
    with contextlib.suppress(ImportError):  # the CLI may start its own Prefect server
        import ctpipe.embedded_prefect

        monkeypatch.setattr(ctpipe.embedded_prefect, "embedded_server",
                            lambda root: contextlib.nullcontext())
    monkeypatch.setattr(ctpipe.flows.cycle, "cycle_flow",
                        lambda **kwargs: calls.append(kwargs) or _Completed())
    result = CliRunner().invoke(app, ["cycle", str(config_path), "--date",
                                      day(2).isoformat(), *flag])
    assert result.exit_code == 0, result.output
    assert '"status": "no-drift"' in result.output  # the run's own record is printed
    assert calls == [{"use_case": str(config_path), "batch_date": day(2).isoformat(),
                      "force": bool(flag), "return_state": True}]


def test_validate_refuses_a_bad_date(config_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(config_path), "--file",
                                      str(tmp_path / "x.parquet"), "--date", "2026-03-99"])
    assert result.exit_code == 2
    assert "--date '2026-03-99': not a valid date YYYY-MM-DD" in _one_line(result.output)


@pytest.mark.parametrize(("source", "problem"), [
    (lambda d: d / "missing.csv", "source not found"),
    (lambda d: _csv(d, drop=TARGET), f"target column {TARGET!r} is missing"),
    (lambda d: _csv(d, rows=0), "no rows to cut into batches"),
    (lambda d: _csv(d, drop="date"), "time column 'date' not found"),
    (lambda d: _csv(d, drop="lane"), "features.categorical: column 'lane' is missing (columns: "),
    (lambda d: _csv(d, text="rainfall_mm"), "features.numeric: column 'rainfall_mm' is not "
     "numeric (dtype "),
])
def test_a_bad_backtest_source_leaves_the_previous_replay_whole(
        ctpipe_home: Path, tmp_path: Path, source: object, problem: str) -> None:
    from ctpipe import registry

    config = _config_file(tmp_path)
    previous = Workspace(_config(), backtest=True)
    landing.write_batch(previous.landing, previous.config, day(0),
                        generate_day("demand", 0, day(0), rows=60, shift_day=None, seed=7))
    registry.client().create_registered_model(previous.model_name)
    files = sorted(previous.root.rglob("*"))

    path = source(tmp_path)
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(path)])
    assert result.exit_code == 2, result.output
    assert problem in _one_line(result.output) and str(path) in result.output
    assert sorted(previous.root.rglob("*")) == files
    assert registry.client().get_registered_model(previous.model_name).name == \
        previous.model_name


def _csv(folder: Path, *, drop: str | None = None, rows: int = 60,
         text: str | None = None) -> Path:
    frame = generate_day("demand", 0, day(0), rows=60, shift_day=None, seed=7).iloc[:rows]
    if drop:
        frame = frame.drop(columns=[drop])
    if text:  # words where the config expects numbers
        frame[text] = "heavy"
    path = folder / "history.csv"
    frame.to_csv(path, index=False)
    return path


def test_simulate_refuses_a_bad_start_date(ctpipe_home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", str(_config_file(tmp_path)), "--start",
                                      "2026-02-30", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "--start '2026-02-30': not a valid date YYYY-MM-DD" in _one_line(result.output)
    assert not (tmp_path / "out").exists()


def test_a_source_whose_first_line_is_not_its_header_says_so(ctpipe_home: Path,
                                                             tmp_path: Path) -> None:
    # pvlib's TMY3 files start with the station's line; pandas takes it as the header.
    source = tmp_path / "tmy.csv"
    rows = "\n".join(f"2020-01-{d:02d},{d},{d * 2}" for d in range(1, 29))
    source.write_text("723170,\"GREENSBORO\",NC,-5.0,36.100\ndate,ghi,dni\n" + rows + "\n")
    result = CliRunner().invoke(app, ["backtest", str(_tmy_config(tmp_path)), "--source",
                                      str(source)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].endswith(
        "target column 'ghi' is missing (columns: 723170, GREENSBORO, NC, -5.0, 36.100; the "
        "first line reads like data, not a header: is the header on line 1?)")


def _tmy_config(folder: Path) -> Path:
    config = folder / "tmy.yaml"
    config.write_text("name: tmy\ndata: {time_column: date, target: ghi, task: regression}\n"
                      "features: {numeric: [dni]}\nevaluation: {metric: mae}\n"
                      "gate: {floor: 100}\n")
    return config


def test_a_header_that_repeats_a_name_is_refused(tmp_path: Path) -> None:
    cfg = UseCaseConfig.model_validate(_raw("fraud"))
    path = tmp_path / "b.csv"
    path.write_text("transaction_id,amount,amount,hour\n1,2.5,250,3\n2,1.0,100,4\n")
    with pytest.raises(landing.BatchReadError) as err:
        landing.read_batch_file(path, cfg)
    assert str(err.value) == (f"{path}: column 'amount' appears 2 times in the header: rename "
                              "or drop the copies")
    # A name that only looks like a copy is a name.
    path.write_text("transaction_id,amount,amount.1\n1,2.5,250\n")
    assert list(landing.read_batch_file(path, cfg).columns) == [
        "transaction_id", "amount", "amount.1"]


def test_a_true_false_target_with_an_empty_label_reads_as_numbers(tmp_path: Path) -> None:
    cfg = UseCaseConfig.model_validate(_raw("fraud"))
    path = tmp_path / "labels.csv"
    path.write_text("transaction_id,is_fraud\n0,True\n1,False\n2,\n3,True\n")
    target = landing.read_batch_file(path, cfg)["is_fraud"]
    assert target.dtype == "float64" and target.fillna(-1).tolist() == [1.0, 0.0, -1.0, 1.0]


def test_a_category_named_like_a_missing_marker_is_a_category(tmp_path: Path) -> None:
    # Namibia's code is "NA"; only an empty field is a missing category (or data.na_values).
    raw = _raw("fraud")
    path = tmp_path / "b.csv"
    path.write_text("transaction_id,jurisdiction,amount\n0,NA,NA\n1,ZA,2.5\n2,,3.0\n3,null,1\n")
    read = landing.read_batch_file(path, UseCaseConfig.model_validate(raw))
    assert read["jurisdiction"].fillna("<missing>").tolist() == ["NA", "ZA", "<missing>", "null"]
    assert read["amount"].isna().tolist() == [True, False, False, False]  # numbers: as before
    raw["data"]["na_values"] = ["null"]
    listed = landing.read_batch_file(path, UseCaseConfig.model_validate(raw))
    assert listed["jurisdiction"].isna().tolist() == [False, False, True, True]


def test_lines_of_delimiters_only_are_skipped_like_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("transaction_id,amount,hour\n1,2.5,3\n,,\n2,1.0,4\n,,\n,,\n")
    read = landing.read_batch_file(path, UseCaseConfig.model_validate(_raw("fraud")))
    assert read["transaction_id"].tolist() == ["1", "2"] and read.index.tolist() == [0, 1]
    # With a category pandas would have read as missing, row for row.
    path.write_text("transaction_id,jurisdiction,hour\n1,NA,3\n,,\n2,HK,4\n")
    read = landing.read_batch_file(path, UseCaseConfig.model_validate(_raw("fraud")))
    assert read["jurisdiction"].tolist() == ["NA", "HK"]
