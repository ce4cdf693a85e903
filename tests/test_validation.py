"""Batch validation: the GX suite built from config, failures as people read them, file reading."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import re
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctpipe.config import (
    ConfigError,
    ExtraExpectation,
    RangeRule,
    UseCaseConfig,
    load_config,
    parse_config,
)
from ctpipe.validation import (
    BatchReadError,
    Failure,
    ValidationResult,
    batch_period,
    build_suite,
    check_config_expectations,
    read_batch_file,
    runtime,
    validate_file,
    validate_frame,
    write_data_docs,
)
from ctpipe.validation.learned import NOT_GIVEN


@pytest.fixture(scope="module")
def fraud() -> UseCaseConfig:
    return load_config("fraud")


@pytest.fixture(scope="module")
def demand() -> UseCaseConfig:
    return load_config("demand")


def fraud_frame(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A batch that satisfies configs/fraud.yaml (min_rows 1000), without the target."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "transaction_id": np.arange(n, dtype=np.int64),
        "event_time": pd.Timestamp("2026-03-01")
        + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
        "amount": rng.gamma(2.0, 40.0, n),
        "hour": rng.integers(0, 24, n),
        "txn_count_1h": rng.poisson(1.0, n),
        "txn_count_24h": rng.poisson(6.0, n),
        "amount_vs_avg_30d": rng.lognormal(0.0, 0.4, n),
        "card_age_days": rng.integers(0, 4000, n),
        "distance_from_home_km": rng.exponential(15.0, n),
        "merchant_category": rng.choice(["grocery", "fuel", "travel", "online"], n),
        "channel": rng.choice(["pos", "ecommerce", "atm", "wallet"], n),
        "cross_border": rng.choice(["no", "yes"], n),
        "jurisdiction": rng.choice(["HK", "SG", "GB"], n),
    })


def demand_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A batch that satisfies configs/demand.yaml (min_rows 50), without the target."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "record_id": [f"r{i:05d}" for i in range(n)],
        "date": pd.Timestamp("2026-03-01"),
        "advance_bookings": rng.integers(0, 500, n),
        "rainfall_mm": rng.exponential(5.0, n),
        "border_wait_minutes": rng.uniform(0, 240, n),
        "lane": rng.choice(["HK-SZ", "HK-GZ", "HK-ZH"], n),
        "commodity": rng.choice(["medical", "consumer", "electronics"], n),
        "typhoon_signal": rng.choice(["none", "T1", "T3", "T8"], n),
        "holiday": rng.choice(["none", "hk", "mainland", "both"], n),
    })


def with_validation(config: UseCaseConfig, **changes: object) -> UseCaseConfig:
    return config.model_copy(update={"validation": config.validation.model_copy(update=changes)})


def with_data(config: UseCaseConfig, **changes: object) -> UseCaseConfig:
    return config.model_copy(update={"data": config.data.model_copy(update=changes)})


def only_failure(result: ValidationResult) -> Failure:
    assert not result.passed
    assert len(result.failures) == 1, [f.line() for f in result.failures]
    return result.failures[0]


# --------------------------------------------------------------------------- suite


def expectation_types(suite) -> list[str]:
    return [e.expectation_type for e in suite.expectations]


def test_suite_is_generated_from_the_config(fraud: UseCaseConfig) -> None:
    suite = build_suite(fraud)
    types = expectation_types(suite)
    batch_columns = 2 + len(fraud.features.raw)  # time + id + features, not the target
    assert types.count("expect_table_row_count_to_be_between") == 1
    assert types.count("expect_column_to_exist") == batch_columns
    assert types.count("expect_column_values_to_be_in_type_list") == len(fraud.features.numeric)
    assert types.count("expect_column_values_to_not_be_null") == batch_columns
    # One per numeric feature: its range, or "finite" where it has none.
    assert types.count("expect_column_values_to_be_between") == len(fraud.features.numeric)
    assert types.count("expect_column_values_to_be_in_set") == len(fraud.validation.domains)
    assert types.count("expect_column_values_to_be_unique") == 1
    columns = {e.column for e in suite.expectations if hasattr(e, "column")}
    assert fraud.data.target not in columns
    hour = next(e for e in suite.expectations
                if e.expectation_type == "expect_column_values_to_be_between"
                and e.column == "hour")
    assert (hour.min_value, hour.max_value) == (0, 23)


def test_suite_has_no_uniqueness_rule_without_an_id_column(fraud: UseCaseConfig) -> None:
    types = expectation_types(build_suite(with_data(fraud, id_column=None)))
    assert "expect_column_values_to_be_unique" not in types


def test_null_fraction_override_for_an_unknown_column_is_a_config_error(
        demand: UseCaseConfig) -> None:
    with pytest.raises(ValueError, match="rainfal_mm"):
        build_suite(with_validation(demand, null_fraction={"rainfal_mm": 0.1}))


# --------------------------------------------------------------------------- valid batches


def test_valid_fraud_batch_passes(fraud: UseCaseConfig) -> None:
    result = validate_frame(fraud_frame(), fraud)
    assert result.passed, [f.line() for f in result.failures]
    assert result.failures == []
    assert result.rows == 1200
    assert result.evaluated == len(build_suite(fraud).expectations)
    assert json.loads(json.dumps(result.gx_result))["success"] is True
    assert "passed" in result.message("b.parquet")
    assert result.summary_markdown("b.parquet").startswith("# Validation passed")


def test_valid_demand_batch_passes(demand: UseCaseConfig) -> None:
    result = validate_frame(demand_frame(), demand)
    assert result.passed, [f.line() for f in result.failures]


def test_extra_columns_such_as_the_target_are_allowed(fraud: UseCaseConfig) -> None:
    frame = fraud_frame().assign(is_fraud=0)
    assert validate_frame(frame, fraud).passed


# --------------------------------------------------------------------------- each rule


def test_nulls_over_the_limit_fail(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame.loc[[3, 7, 11], "amount"] = np.nan
    f = only_failure(validate_frame(frame, fraud))
    assert (f.column, f.rule) == ("amount", "not null")
    assert f.expectation == "expect_column_values_to_not_be_null"
    assert f.observed == "0.2% null (max 0.0%, validation.null_fraction; 3 of 1,200 rows)"
    # Counted from 1 under the header, as a reader of the file counts (the frame's 3 is the
    # fourth data row).
    assert f.examples == ["data row 4", "data row 8", "data row 12"]
    # A frame whose index has gaps (rows dropped before validation) counts positions too.
    gapped = only_failure(validate_frame(frame.set_axis(frame.index * 2 + 100), fraud))
    assert gapped.examples == f.examples


def test_per_column_null_override_is_honoured(demand: UseCaseConfig) -> None:
    frame = demand_frame()
    frame.loc[:1, "rainfall_mm"] = np.nan  # 2 of 60 = 3.3 %, rainfall_mm allows 5 %
    assert validate_frame(frame, demand).passed

    frame.loc[:5, "rainfall_mm"] = np.nan  # 6 of 60 = 10 %
    f = only_failure(validate_frame(frame, demand))
    assert (f.column, f.rule) == ("rainfall_mm", "not null")
    assert f.observed.startswith("10.0% null (max 5.0%, validation.null_fraction;")

    frame = demand_frame()
    frame.loc[0, "border_wait_minutes"] = np.nan  # no override: the 0 % default applies
    f = only_failure(validate_frame(frame, demand))
    assert f.column == "border_wait_minutes"
    assert "max 0.0%" in f.observed


def test_values_out_of_range_fail(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame.loc[[5, 6], "hour"] = [24, 99]
    f = only_failure(validate_frame(frame, fraud))
    assert (f.column, f.rule) == ("hour", "in range [0, 23]")
    assert f.expectation == "expect_column_values_to_be_between"
    assert f.observed == "2 values outside [0, 23]"
    assert f.examples == ["24", "99"]


def test_one_sided_range(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, ranges={"amount": RangeRule(min=0)})
    frame = fraud_frame()
    frame.loc[0, "amount"] = -5.0
    f = only_failure(validate_frame(frame, config))
    assert (f.column, f.rule, f.observed) == ("amount", "in range [0, inf)",
                                              "1 value outside [0, inf)")


def test_unknown_category_fails(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame.loc[[1, 2, 9], "channel"] = ["fax", "fax", "telex"]
    f = only_failure(validate_frame(frame, fraud))
    assert (f.column, f.rule) == ("channel", "in set")
    assert f.expectation == "expect_column_values_to_be_in_set"
    assert f.observed == "3 values not in {pos, ecommerce, atm, wallet}"
    assert f.examples == ["'fax'", "'telex'"]


def test_int_coded_categories_are_compared_as_text(fraud: UseCaseConfig) -> None:
    # features.py feeds categoricals to the model as text, so code 1 must match domain "1".
    config = with_validation(fraud, domains={"jurisdiction": ["1", "2"]})
    frame = fraud_frame()
    frame["jurisdiction"] = np.where(np.arange(len(frame)) % 2 == 0, 1, 2)
    assert validate_frame(frame, config).passed
    frame.loc[4, "jurisdiction"] = 3
    f = only_failure(validate_frame(frame, config))
    assert (f.column, f.rule, f.examples) == ("jurisdiction", "in set", ["'3'"])


def test_missing_column_is_reported_once(fraud: UseCaseConfig) -> None:
    frame = fraud_frame().rename(columns={"amount": "Amount"})
    f = only_failure(validate_frame(frame, fraud))
    assert (f.column, f.rule) == ("amount", "column exists")
    assert f.expectation == "expect_column_to_exist"
    assert "missing from the batch" in f.observed and "'Amount'" in f.observed


def test_missing_time_column_fails(fraud: UseCaseConfig) -> None:
    f = only_failure(validate_frame(fraud_frame().drop(columns=["event_time"]), fraud))
    assert (f.column, f.rule) == ("event_time", "column exists")


def test_a_time_column_of_numbers_fails_naming_them(demand: UseCaseConfig) -> None:
    # A cycle quarantines such a batch: the message says what the numbers are and the fix.
    frame = demand_frame().assign(date=np.arange(60) + 1952)
    f = only_failure(validate_frame(frame, demand))
    assert (f.column, f.rule) == ("date", "timestamp dtype")
    assert f.observed == ("dtype int64 (expected datetime64): numbers (1952..2011), not dates "
                          "or times: write them as dates (e.g. 1952-01-01)")


def test_strings_in_a_numeric_column_fail_clearly(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame["amount"] = frame["amount"].round(2).astype("str")
    f = only_failure(validate_frame(frame, fraud))  # the range error it causes is dropped
    assert (f.column, f.rule) == ("amount", "numeric dtype")
    assert f.expectation == "expect_column_values_to_be_in_type_list"
    assert f.observed.startswith("dtype str")


def test_mixed_values_in_a_numeric_column_fail_with_examples(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    mixed = frame["card_age_days"].astype(object)
    mixed[[2, 8]] = ["n/a", "unknown"]
    frame["card_age_days"] = mixed
    f = only_failure(validate_frame(frame, fraud))
    assert (f.column, f.rule) == ("card_age_days", "numeric dtype")
    assert f.observed.startswith("dtype object with 2 non-numeric values")
    assert f.examples == ["'n/a'", "'unknown'"]


def test_too_few_rows_fail(fraud: UseCaseConfig) -> None:
    f = only_failure(validate_frame(fraud_frame(10), fraud))
    assert (f.column, f.rule) == (None, "row count")
    assert f.expectation == "expect_table_row_count_to_be_between"
    assert f.observed == "10 rows (min 1,000)"


def test_too_many_rows_fail(demand: UseCaseConfig) -> None:
    f = only_failure(validate_frame(demand_frame(80), with_validation(demand, max_rows=70)))
    assert (f.rule, f.observed) == ("row count", "80 rows (max 70)")


def test_duplicate_ids_fail(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame.loc[[10, 20], "transaction_id"] = 5
    f = only_failure(validate_frame(frame, fraud))
    assert (f.column, f.rule) == ("transaction_id", "unique")
    assert f.expectation == "expect_column_values_to_be_unique"
    assert f.observed == "3 rows share a duplicated value"
    assert f.examples == ["5"]


# --------------------------------------------------------------------------- reporting


def test_message_lists_every_failure(fraud: UseCaseConfig) -> None:
    frame = fraud_frame().drop(columns=["distance_from_home_km"])
    frame.loc[0, "amount"] = np.nan
    frame.loc[1, "hour"] = 42
    frame.loc[2, "jurisdiction"] = "XX"
    frame.loc[3, "transaction_id"] = 4
    result = validate_frame(frame, fraud)
    assert not result.passed
    got = {(f.column, f.rule) for f in result.failures}
    assert got == {("distance_from_home_km", "column exists"), ("amount", "not null"),
                   ("hour", "in range [0, 23]"), ("jurisdiction", "in set"),
                   ("transaction_id", "unique")}

    message = result.message("landing/2026-03-01.parquet")
    assert message.startswith("landing/2026-03-01.parquet: batch failed validation with 5 ")
    assert "\n" not in message
    for f in result.failures:
        assert f"{f.column}: {f.rule}: {f.observed}" in message
    assert "'XX'" in message and "42" in message

    summary = result.summary_markdown("landing/2026-03-01.parquet")
    assert summary.startswith("# Validation FAILED: `landing/2026-03-01.parquet`")
    table_rows = [line for line in summary.splitlines() if line.startswith("| ")]
    assert len(table_rows) == 1 + len(result.failures)  # header + one per failure


def test_table_level_failure_is_named_table_in_the_message(fraud: UseCaseConfig) -> None:
    result = validate_frame(fraud_frame(10), fraud)
    assert "table: row count: 10 rows (min 1,000)" in result.message("x")
    assert "| (table) | row count |" in result.summary_markdown("x")


# --------------------------------------------------------------------------- runtime


def test_concurrent_validations_do_not_mix_batches(fraud: UseCaseConfig) -> None:
    # GX caches "the" batch per data source: unguarded threads would read each other's frames.
    good, bad = fraud_frame(), fraud_frame()
    bad.loc[0, "hour"] = 77
    outcomes: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def work(name: str, frame: pd.DataFrame) -> None:
        try:
            for _ in range(3):
                outcomes.append((name, validate_frame(frame, fraud).passed))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=args) for args in (("good", good),
                                                                        ("bad", bad))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(outcomes) == [("bad", False)] * 3 + [("good", True)] * 3


def test_built_gx_objects_are_reused_and_bounded(demand: UseCaseConfig) -> None:
    with runtime._LOCK:
        assert runtime._plan(demand) is runtime._plan(demand)
        context = runtime._context()
        count = runtime._MAX_PLANS + 2
        variants = [with_validation(demand, min_rows=n) for n in range(1, count + 1)]
        for config in variants:
            runtime._plan(config)
        names = {ds.name for ds in context.data_sources.all().values()}
    assert len(runtime._PLANS) == runtime._MAX_PLANS
    assert f"ctpipe-demand-{variants[0].config_hash}" not in names  # evicted from GX too
    assert f"ctpipe-demand-{variants[-1].config_hash}" in names
    assert validate_frame(demand_frame(), demand).passed  # an evicted config is rebuilt


def test_the_batch_is_not_kept_alive_after_validation(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    ref = weakref.ref(frame)
    validate_frame(frame, fraud)
    del frame
    gc.collect()
    assert ref() is None


def test_importing_the_package_changes_no_global_setting() -> None:
    # In a fresh interpreter without GX's analytics variable: no module of the package may set
    # it (or anything else) at import, nor touch warnings filters or logging levels.
    code = """
import logging, os, pkgutil, sys, warnings
import pandas, pyarrow  # their own import-time settings are not the package's
env, filters = dict(os.environ), list(warnings.filters)
levels = {n: logging.getLogger(n).level for n in logging.root.manager.loggerDict}
root = logging.getLogger().level
import ctpipe.validation
for module in pkgutil.iter_modules(ctpipe.validation.__path__):
    __import__(f"ctpipe.validation.{module.name}")
assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())
assert warnings.filters == filters
assert logging.getLogger().level == root
assert {n: logging.getLogger(n).level for n in levels} == levels
assert not [n for n in logging.root.manager.loggerDict if n not in levels
            and logging.getLogger(n).level != logging.NOTSET]
assert "great_expectations" not in sys.modules
"""
    env = {k: v for k, v in os.environ.items() if k != "GX_ANALYTICS_ENABLED"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- reading files


def test_parquet_batch_reads_back(tmp_path: Path, fraud: UseCaseConfig) -> None:
    path = tmp_path / "2026-03-01.parquet"
    fraud_frame().to_parquet(path, index=False)
    frame = read_batch_file(path, fraud)
    pd.testing.assert_frame_equal(frame, fraud_frame(), check_dtype=False)
    assert validate_frame(frame, fraud).passed


def test_a_time_column_written_as_the_parquet_index_reads_back_as_a_column(
        tmp_path: Path, fraud: UseCaseConfig) -> None:
    # df.set_index("event_time").to_parquet() keeps the column as pandas' index metadata: read
    # as it comes, every rule called event_time missing, and a concatenated history dropped it.
    path = tmp_path / "2026-03-01.parquet"
    fraud_frame().set_index("event_time").to_parquet(path)
    frame = read_batch_file(path, fraud)
    assert "event_time" in frame.columns and isinstance(frame.index, pd.RangeIndex)
    assert validate_frame(frame, fraud).passed
    # pandas' own position index stays an index, never a column, even when named.
    fraud_frame().iloc[::2].to_parquet(path)
    assert list(read_batch_file(path, fraud).columns) == list(fraud_frame().columns)
    fraud_frame().rename_axis("row").to_parquet(path)
    assert list(read_batch_file(path, fraud).columns) == list(fraud_frame().columns)
    # An id column 0..n-1 written as the index is stored as a range (start, stop, step): it
    # comes back because the config reads it.
    fraud_frame().set_index("transaction_id").to_parquet(path)
    frame = read_batch_file(path, fraud)
    assert "transaction_id" in frame.columns and validate_frame(frame, fraud).passed


def test_csv_with_the_configured_delimiter_reads_back(tmp_path: Path,
                                                       demand: UseCaseConfig) -> None:
    config = with_data(demand, csv_delimiter=";")
    path = tmp_path / "batch.csv"
    demand_frame().to_csv(path, sep=";", index=False)
    frame = read_batch_file(path, config)
    assert list(frame.columns) == list(demand_frame().columns)
    assert len(frame) == 60
    np.testing.assert_allclose(frame["rainfall_mm"], demand_frame()["rainfall_mm"])
    assert pd.api.types.is_string_dtype(frame["lane"])
    assert validate_frame(frame, config).passed


def test_csv_na_values_name_more_missing_markers(tmp_path: Path,
                                                 demand: UseCaseConfig) -> None:
    path = tmp_path / "batch.csv"
    demand_frame().astype({"rainfall_mm": "object"}).assign(
        rainfall_mm=lambda f: f["rainfall_mm"].where(f.index % 10 != 0, "nil")).to_csv(
        path, index=False)
    as_is = read_batch_file(path, demand)
    assert not pd.api.types.is_numeric_dtype(as_is["rainfall_mm"])  # "nil" is text
    frame = read_batch_file(path, with_data(demand, na_values=["nil"]))
    assert pd.api.types.is_float_dtype(frame["rainfall_mm"])
    assert frame["rainfall_mm"].isna().sum() == 6
    np.testing.assert_allclose(frame["rainfall_mm"].dropna(),
                               demand_frame()["rainfall_mm"][demand_frame().index % 10 != 0])


def test_missing_file(tmp_path: Path, fraud: UseCaseConfig) -> None:
    path = tmp_path / "nope.parquet"
    with pytest.raises(BatchReadError, match="nope.parquet: batch file not found"):
        read_batch_file(path, fraud)


def test_empty_file(tmp_path: Path, fraud: UseCaseConfig) -> None:
    path = tmp_path / "empty.parquet"
    path.write_bytes(b"")
    with pytest.raises(BatchReadError, match=r"empty.parquet: file is empty \(0 bytes\)"):
        read_batch_file(path, fraud)


def test_truncated_parquet(tmp_path: Path, fraud: UseCaseConfig) -> None:
    whole = tmp_path / "whole.parquet"
    fraud_frame().to_parquet(whole, index=False)
    path = tmp_path / "cut.parquet"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(BatchReadError, match="cut.parquet: truncated Parquet file"):
        read_batch_file(path, fraud)


def test_not_a_parquet_file(tmp_path: Path, fraud: UseCaseConfig) -> None:
    path = tmp_path / "text.parquet"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(BatchReadError, match="text.parquet: not a Parquet file"):
        read_batch_file(path, fraud)


def test_csv_with_the_wrong_delimiter(tmp_path: Path, demand: UseCaseConfig) -> None:
    path = tmp_path / "batch.csv"
    demand_frame().to_csv(path, sep=";", index=False)  # config expects ","
    with pytest.raises(BatchReadError) as err:
        read_batch_file(path, demand)
    message = str(err.value)
    assert message.startswith(f"{path}: only one column found")
    assert "wrong delimiter" in message and "';'-delimited" in message


def test_csv_that_is_not_utf8(tmp_path: Path, demand: UseCaseConfig) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("record_id,lane\nr1,K\u00f6ln-HK\n".encode("latin-1"))
    with pytest.raises(BatchReadError, match="latin1.csv: not UTF-8 text"):
        read_batch_file(path, demand)


def test_directory_instead_of_a_file(tmp_path: Path, demand: UseCaseConfig) -> None:
    with pytest.raises(BatchReadError, match="is a directory"):
        read_batch_file(tmp_path, demand)


# --------------------------------------------------------------------------- unexpected columns

DAY = dt.date(2026, 3, 1)  # the day fraud_frame() and demand_frame() fall on
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_unexpected_column_is_an_error_by_default(fraud: UseCaseConfig) -> None:
    f = only_failure(validate_frame(fraud_frame().assign(debug_flag=1, note="x"), fraud))
    assert (f.column, f.rule) == (None, "no unexpected columns")
    assert f.expectation == "expect_table_columns_to_match_set"
    assert f.observed.startswith("2 columns not in the config")
    assert f.examples == ["'debug_flag'", "'note'"]


def test_unexpected_column_can_be_a_warning_or_ignored(fraud: UseCaseConfig) -> None:
    frame = fraud_frame().assign(debug_flag=1)
    warned = validate_frame(frame, with_validation(fraud, unexpected_columns="warn"))
    assert warned.passed and warned.failures == []
    assert [(w.rule, w.severity) for w in warned.warnings] == [
        ("no unexpected columns", "warning")]
    ignored = validate_frame(frame, with_validation(fraud, unexpected_columns="ignore"))
    assert ignored.passed and ignored.warnings == []
    assert "expect_table_columns_to_match_set" not in [
        r["expectation_config"]["type"] for r in ignored.gx_result["results"]]


def test_missing_column_is_not_also_an_unexpected_one(fraud: UseCaseConfig) -> None:
    f = only_failure(validate_frame(fraud_frame().drop(columns=["hour"]), fraud))
    assert (f.column, f.rule) == ("hour", "column exists")


# --------------------------------------------------------------------------- unseen categories


def test_unseen_categories_within_the_tolerated_share_pass(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, unseen_category_share=0.01)
    frame = fraud_frame()
    frame.loc[:5, "channel"] = "fax"  # 6 of 1,200 = 0.5 %
    assert validate_frame(frame, config).passed

    frame.loc[:23, "channel"] = "fax"  # 24 of 1,200 = 2 %
    f = only_failure(validate_frame(frame, config))
    assert (f.column, f.rule) == ("channel", "in set")
    assert f.observed == ("24 values not in {pos, ecommerce, atm, wallet} (2.0% of non-null "
                          "values; at most 1.0% may be unseen)")
    assert f.examples == ["'fax'"]


def test_unseen_category_share_per_column(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, unseen_category_share=0.0,
                             unseen_category_share_by_column={"jurisdiction": 0.05})
    frame = fraud_frame()
    frame.loc[:11, "jurisdiction"] = "AU"  # 1 %: tolerated for jurisdiction
    assert validate_frame(frame, config).passed
    frame.loc[0, "channel"] = "fax"  # the global 0 applies to channel
    assert only_failure(validate_frame(frame, config)).column == "channel"


def test_unseen_share_override_must_name_a_domain_column() -> None:
    text = MINIMAL_CONFIG + "validation: {unseen_category_share_by_column: {a: 0.1}}\n"
    with pytest.raises(ConfigError, match="validation: .*without a domain: \\['a'\\]"):
        parse_config(text, Path("toy.yaml"))


# --------------------------------------------------------------------------- period and future


def test_batch_period_per_frequency() -> None:
    wednesday = dt.date(2026, 3, 4)
    assert batch_period(wednesday, "daily") == (dt.datetime(2026, 3, 4), dt.datetime(2026, 3, 5))
    assert batch_period(wednesday, "weekly") == (dt.datetime(2026, 3, 2),
                                                 dt.datetime(2026, 3, 9))
    assert batch_period(wednesday, "monthly") == (dt.datetime(2026, 3, 1),
                                                  dt.datetime(2026, 4, 1))
    assert batch_period(dt.date(2026, 12, 31), "monthly")[1] == dt.datetime(2027, 1, 1)


def test_timestamps_inside_the_daily_period_pass(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame.loc[0, "event_time"] = pd.Timestamp("2026-03-01 00:00:00")  # the start is inside
    result = validate_frame(frame, fraud, batch_date=DAY, now=NOW)
    assert result.passed, [f.line() for f in result.failures]
    assert result.evaluated == len(build_suite(fraud).expectations) + 2
    assert result.skipped == [NOT_GIVEN]  # no training categories passed (test_learned_schema)


def test_timestamps_outside_the_daily_period_fail(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame.loc[[4, 9], "event_time"] = [pd.Timestamp("2026-03-02 00:00:00"),  # the end is out
                                       pd.Timestamp("2026-02-28 23:59:59")]
    f = only_failure(validate_frame(frame, fraud, batch_date=DAY, now=NOW))
    assert (f.column, f.rule) == ("event_time", "in batch period")
    assert f.expectation == "expect_column_values_to_be_between"
    assert f.observed == "2 values outside the daily period [2026-03-01 00:00, 2026-03-02 00:00)"
    assert f.examples == ["2026-03-02 00:00:00", "2026-02-28 23:59:59"]


@pytest.mark.parametrize(("frequency", "inside", "outside"), [
    ("weekly", "2026-03-08 23:00", "2026-03-09 00:00"),   # batch 2026-03-04: week of Mon 2 Mar
    ("monthly", "2026-03-31 23:59", "2026-04-01 00:00"),
])
def test_weekly_and_monthly_periods(fraud: UseCaseConfig, frequency: str, inside: str,
                                    outside: str) -> None:
    config = with_data(fraud, batch_frequency=frequency)
    frame = fraud_frame()
    frame["event_time"] = frame["event_time"] + pd.Timedelta(days=1)  # Monday 2 March
    frame.loc[0, "event_time"] = pd.Timestamp(inside)
    batch_date, now = dt.date(2026, 3, 4), dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert validate_frame(frame, config, batch_date=batch_date, now=now).passed
    frame.loc[1, "event_time"] = pd.Timestamp(outside)
    f = only_failure(validate_frame(frame, config, batch_date=batch_date, now=now))
    assert f.rule == "in batch period" and f.observed.startswith(f"1 value outside the "
                                                                 f"{frequency} period")


def test_timestamps_in_the_future_fail(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()  # 2026-03-01, any time of day
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    late = int((frame["event_time"] > pd.Timestamp("2026-03-01 12:00")).sum())
    f = only_failure(validate_frame(frame, fraud, batch_date=DAY, now=now))
    assert (f.column, f.rule) == ("event_time", "not in the future")
    assert f.observed == f"{late:,} values after now (2026-03-01 12:00 UTC)"
    assert len(f.examples) == 5 and all(e > "2026-03-01 12:00" for e in f.examples)


def test_naive_now_is_utc_and_default_now_is_the_clock(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    naive = dt.datetime(2026, 3, 1, 12, 0)
    assert not validate_frame(frame, fraud, batch_date=DAY, now=naive).passed
    # The clock is long past 2026-03-01: nothing is in the future.
    assert validate_frame(frame, fraud, batch_date=DAY).passed


def _in_zone(config: UseCaseConfig, zone: str) -> UseCaseConfig:
    return config.model_copy(update={"data": config.data.model_copy(update={"timezone": zone})})


def test_tz_aware_timestamps_use_the_configured_zone_day(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    # Local Hong Kong times on 1 March; in UTC some of them fall on 28 February.
    frame["event_time"] = frame["event_time"].dt.tz_localize("Asia/Hong_Kong")
    hong_kong = _in_zone(fraud, "Asia/Hong_Kong")
    assert validate_frame(frame, hong_kong, batch_date=DAY, now=NOW).passed
    # 12:00 UTC is 20:00 in Hong Kong: later local times are in the future.
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    f = only_failure(validate_frame(frame, hong_kong, batch_date=DAY, now=now))
    assert f.rule == "not in the future" and "2026-03-01 20:00 Asia/Hong_Kong" in f.observed
    # With the default zone (UTC) the same rows are converted to UTC: the early Hong Kong
    # hours fall on 28 February, outside the batch's UTC day.
    early = int((frame["event_time"].dt.hour < 8).sum())
    f = only_failure(validate_frame(frame, fraud, batch_date=DAY, now=NOW))
    assert f.rule == "in batch period"
    assert f.observed.startswith(f"{early:,} values outside the daily period")
    assert f.examples and all(e.startswith("2026-02-28 ") for e in f.examples)


def test_utc_offsets_in_text_are_converted_to_the_configured_zone(
        fraud: UseCaseConfig) -> None:
    # A CSV written in London on the day the clocks go forward: +00:00, then +01:00.
    frame = fraud_frame()
    utc = pd.Series(pd.Timestamp("2026-03-29 00:00", tz="UTC") + pd.to_timedelta(
        np.random.default_rng(1).integers(0, 23 * 3600, len(frame)), unit="s"))
    frame["event_time"] = utc.dt.tz_convert("Europe/London").map(
        lambda t: t.isoformat()).astype("str")
    assert {t[-6:] for t in frame["event_time"]} == {"+00:00", "+01:00"}
    day, now = dt.date(2026, 3, 29), dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    result = validate_frame(frame, _in_zone(fraud, "Europe/London"), batch_date=day, now=now)
    assert result.passed, [f.line() for f in result.failures]
    # The same instants are a different local day in Hong Kong: the evening rows are 30 March.
    f = only_failure(validate_frame(frame, _in_zone(fraud, "Asia/Hong_Kong"), batch_date=day,
                                    now=now))
    assert f.rule == "in batch period" and all(e.startswith("2026-03-30 ") for e in f.examples)


def test_text_timestamps_are_parsed(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    assert validate_frame(frame, fraud, batch_date=DAY, now=NOW).passed
    frame.loc[7, "event_time"] = "2026-03-03T08:00:00"
    f = only_failure(validate_frame(frame, fraud, batch_date=DAY, now=NOW))
    assert f.rule == "in batch period" and f.examples == ["2026-03-03 08:00:00"]


def test_unparseable_timestamps_fail_the_dtype_rule_only(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame["event_time"] = frame["event_time"].astype("str")
    frame.loc[[3, 4], "event_time"] = ["yesterday", "31/02/2026"]
    f = only_failure(validate_frame(frame, fraud, batch_date=DAY, now=NOW))
    assert (f.column, f.rule) == ("event_time", "timestamp dtype")
    assert f.observed == "dtype str with 2 values that are not a timestamp (expected datetime64)"
    assert f.examples == ["'yesterday'", "'31/02/2026'"]


def test_mixed_objects_in_the_time_column(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    mixed = frame["event_time"].astype(object)
    mixed[5] = 17
    frame["event_time"] = mixed
    f = only_failure(validate_frame(frame, fraud, batch_date=DAY, now=NOW))
    assert (f.rule, f.examples) == ("timestamp dtype", ["17"])
    assert f.observed.startswith("dtype object with 1 value that is not a timestamp")


def test_timestamps_beyond_nanosecond_range_are_still_checked(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame["event_time"] = frame["event_time"].astype("datetime64[us]")
    frame.loc[0, "event_time"] = pd.Timestamp("2500-01-01")  # no datetime64[ns] can hold it
    result = validate_frame(frame, fraud, batch_date=DAY, now=NOW)
    assert [(f.rule, f.examples) for f in result.failures] == [
        ("in batch period", ["2500-01-01 00:00:00"]),
        ("not in the future", ["2500-01-01 00:00:00"])]


def test_without_a_batch_date_the_period_rules_are_skipped(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame.loc[0, "event_time"] = pd.Timestamp("2030-01-01")
    result = validate_frame(frame, fraud)
    assert result.passed
    assert result.skipped == ["timestamps inside the batch period and not in the future: no "
                              "batch date given", NOT_GIVEN]
    assert "## Not checked" in result.summary_markdown("b")


# --------------------------------------------------------------------------- recent row counts


def test_row_count_versus_recent_batches(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, row_count_tolerance=0.2)
    frame = fraud_frame()  # 1,200 rows
    assert validate_frame(frame, config, recent_rows=[1100, 1000, 1300]).passed  # median 1,100
    f = only_failure(validate_frame(frame, config, recent_rows=[2000, 1900, 2100, 2050]))
    assert (f.column, f.rule) == (None, "row count within 20% of recent batches")
    assert f.expectation == "expect_table_row_count_to_be_between"
    assert f.observed == ("1,200 rows (expected 1,620 to 2,430: median 2,025 of the last 4 "
                          "batches)")
    f = only_failure(validate_frame(frame, config, recent_rows=[500, 520, 480]))
    assert f.observed.startswith("1,200 rows (expected 400 to 600")


def test_row_count_uses_the_configured_window(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, row_count_tolerance=0.2, row_count_window=3)
    # Only the newest 3 counts (oldest first) count: the median is 1,200, not 5,000.
    assert validate_frame(fraud_frame(), config,
                          recent_rows=[5000, 5000, 5000, 5000, 1200, 1150, 1250]).passed


def test_row_count_versus_recent_needs_enough_history(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, row_count_tolerance=0.2)
    result = validate_frame(fraud_frame(), config, recent_rows=[5000, 5000])
    assert result.passed
    assert result.skipped == [
        "row count vs recent batches: 2 recent row counts given, 3 needed",
        "timestamps inside the batch period and not in the future: no batch date given",
        NOT_GIVEN]
    assert validate_frame(fraud_frame(), fraud, recent_rows=[5000] * 7).passed  # rule off


# --------------------------------------------------------------------------- warnings


def test_warned_rules_are_reported_but_do_not_fail(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, warn=["nulls", "hour:range"])
    frame = fraud_frame()
    frame.loc[[3, 7], "amount"] = np.nan
    frame.loc[5, "hour"] = 30
    result = validate_frame(frame, config)
    assert result.passed and result.failures == []
    assert [(w.column, w.rule, w.severity) for w in result.warnings] == [
        ("amount", "not null", "warning"), ("hour", "in range [0, 23]", "warning")]
    by_type = {(r["expectation_config"]["type"], r["expectation_config"]["kwargs"].get("column")):
               r["expectation_config"]["severity"] for r in result.gx_result["results"]}
    assert by_type[("expect_column_values_to_not_be_null", "amount")] == "warning"
    assert by_type[("expect_column_values_to_be_between", "hour")] == "warning"
    assert by_type[("expect_column_values_to_be_between", "amount")] == "critical"

    message = result.message("b.parquet")
    assert message.startswith("b.parquet: batch passed validation (1,200 rows, ")
    assert "Warnings (2): amount: not null: 0.2% null" in message
    assert "hour: in range [0, 23]: 1 value outside [0, 23] (e.g. 30)" in message
    summary = result.summary_markdown("b.parquet")
    assert summary.startswith("# Validation passed with warnings: `b.parquet`")
    assert "## Warnings" in summary and "## Errors" not in summary


def test_a_column_scoped_warning_leaves_other_columns_errors(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, warn=["hour:range"])
    frame = fraud_frame()
    frame.loc[5, "hour"] = 30
    frame.loc[6, "amount"] = -1.0
    result = validate_frame(frame, config)
    assert not result.passed
    assert [f.column for f in result.failures] == ["amount"]
    assert [w.column for w in result.warnings] == ["hour"]
    message = result.message("b")
    assert message.startswith("b: batch failed validation with 1 problem ")
    assert message.endswith("Warnings (1): hour: in range [0, 23]: 1 value outside [0, 23] "
                            "(e.g. 30).")
    summary = result.summary_markdown("b")
    errors, warnings = summary.split("## Warnings")
    assert "## Errors" in errors and "| amount |" in errors and "| hour |" in warnings


def test_ignored_rules_are_not_checked(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, ignore=["unique", "channel:domain"])
    types = expectation_types(build_suite(config))
    assert "expect_column_values_to_be_unique" not in types
    assert types.count("expect_column_values_to_be_in_set") == len(fraud.validation.domains) - 1
    frame = fraud_frame()
    frame.loc[[1, 2], "transaction_id"] = 0
    frame.loc[3, "channel"] = "fax"
    assert validate_frame(frame, config).passed


def test_a_column_entry_wins_over_the_bare_rule(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, ignore=["nulls"], warn=["amount:nulls"])
    frame = fraud_frame()
    frame.loc[1, ["amount", "hour"]] = np.nan
    result = validate_frame(frame, config)
    assert result.passed and [w.column for w in result.warnings] == ["amount"]


def test_an_empty_batch_always_fails(fraud: UseCaseConfig) -> None:
    f = only_failure(validate_frame(fraud_frame().iloc[:0], fraud))
    assert f.line() == "table: row count: 0 rows (min 1,000): the batch is empty"
    for change in ({"ignore": ["row_count"]}, {"warn": ["row_count"]}):
        result = validate_frame(fraud_frame().iloc[:0], with_validation(fraud, **change))
        assert not result.passed
        assert result.failures[0].line() == "table: row count: 0 rows: the batch is empty"


@pytest.mark.parametrize(("entry", "problem"), [
    ("nul", "unknown rule 'nul'"),
    ("amount:row_count", "row_count is a table rule"),
    (":nulls", "empty column name"),
    ("unexpected_columns", "set validation.unexpected_columns instead"),
])
def test_bad_warn_entries_are_config_errors(entry: str, problem: str) -> None:
    text = MINIMAL_CONFIG + f"validation: {{warn: ['{entry}']}}\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("toy.yaml"))
    assert "toy.yaml" in str(err.value) and "validation:" in str(err.value)
    assert problem in str(err.value)


def test_warn_entry_for_a_column_the_rule_does_not_cover(fraud: UseCaseConfig) -> None:
    with pytest.raises(ValueError, match=r"validation\.warn: 'amount:period': rule period does "
                       r"not apply to column 'amount' \(it applies to: event_time\)"):
        build_suite(with_validation(fraud, warn=["amount:period"]))
    with pytest.raises(ValueError, match=r"validation\.ignore: 'colour:nulls'"):
        build_suite(with_validation(fraud, ignore=["colour:nulls"]))


# --------------------------------------------------------------------------- extra expectations

MINIMAL_CONFIG = """
name: toy
data: {time_column: t, target: y, task: regression}
features: {numeric: [a], categorical: [c]}
evaluation: {metric: wape}
gate: {floor: 0.5}
"""


def test_extra_expectations_load_in_either_spelling() -> None:
    text = MINIMAL_CONFIG + """validation:
  extra:
    - {type: expect_column_mean_to_be_between, kwargs: {column: a, max_value: 5}}
    - type: ExpectColumnValueLengthsToBeBetween
      kwargs: {column: c, min_value: 1, max_value: 3}
      severity: warning
      rule: short codes
"""
    config = parse_config(text, Path("toy.yaml"))
    suite = build_suite(config)
    extras = [e for e in suite.expectations if e.meta["ctpipe"]["kind"] == "extra"]
    assert [e.expectation_type for e in extras] == ["expect_column_mean_to_be_between",
                                                    "expect_column_value_lengths_to_be_between"]
    assert [e.meta["ctpipe"]["rule"] for e in extras] == ["expect_column_mean_to_be_between",
                                                          "short codes"]
    assert [str(e.severity.value) for e in extras] == ["critical", "warning"]


@pytest.mark.parametrize(("extra", "problem"), [
    ("{type: expect_column_values_to_be_bogus, kwargs: {column: a}}",
     "unknown Great Expectations expectation type 'expect_column_values_to_be_bogus'"),
    ("{type: ExpectColumnMeanToBeBetwen, kwargs: {column: a}}",
     "did you mean expect_column_mean_to_be_between"),
    ("{type: expect_column_mean_to_be_between, kwargs: {max_value: 3}}", "column"),
    ("{type: expect_column_mean_to_be_between, kwargs: {column: a, maximum: 3}}", "maximum"),
    ("{type: expect_column_mean_to_be_between, kwargs: {column: a, severity: warning}}",
     "set by ctpipe"),
    ("{type: expect_column_mean_to_be_between, kwargs: {column: a}, severity: fatal}",
     "severity"),
    ("{type: UnexpectedRowsExpectation, kwargs: {unexpected_rows_query: 'SELECT 1'}}",
     "runs SQL queries"),
])
def test_bad_extra_expectations_are_config_errors(extra: str, problem: str) -> None:
    # config.py checks the entry's own fields; the type and kwargs are GX's to judge, checked
    # when a workspace opens (test_config covers that path through open_workspace).
    text = MINIMAL_CONFIG + f"validation: {{extra: [{extra}]}}\n"
    with pytest.raises(ConfigError) as err:
        check_config_expectations(parse_config(text, Path("toy.yaml")), Path("toy.yaml"))
    message = str(err.value)
    assert message.startswith("toy.yaml: validation.extra.0"), message
    assert "\n" not in message, message
    assert problem in message, message


def test_extra_expectation_on_a_column_not_in_the_batch(fraud: UseCaseConfig) -> None:
    extra = ExtraExpectation(type="expect_column_mean_to_be_between",
                             kwargs={"column": "is_fraud", "max_value": 0.1})
    with pytest.raises(ValueError, match=r"validation\.extra\.0 "
                       r"\(expect_column_mean_to_be_between\) names columns that are not in the "
                       r"batch: \['is_fraud'\]"):
        build_suite(with_validation(fraud, extra=[extra]))


def test_extra_expectations_fail_or_warn(fraud: UseCaseConfig) -> None:
    mean = ExtraExpectation(type="ExpectColumnMeanToBeBetween",
                            kwargs={"column": "amount", "max_value": 50})
    codes = ExtraExpectation(type="expect_column_values_to_match_regex",
                             kwargs={"column": "jurisdiction", "regex": "^[A-Z]{2}$"},
                             severity="warning", rule="two-letter code")
    config = with_validation(fraud, extra=[mean, codes])
    frame = fraud_frame()  # mean amount about 80
    frame.loc[[2, 3], "jurisdiction"] = "hk"
    result = validate_frame(frame.assign(jurisdiction=frame["jurisdiction"]),
                            with_validation(config, domains={}))
    assert not result.passed
    f = result.failures[0]
    assert (f.column, f.rule, f.expectation) == ("amount", "expect_column_mean_to_be_between",
                                                 "expect_column_mean_to_be_between")
    assert re.fullmatch(r"observed \d+\.\d+ \(expected max_value=50\)", f.observed), f.observed
    assert len(result.failures) == 1
    w = result.warnings[0]
    assert (w.column, w.rule, w.severity) == ("jurisdiction", "two-letter code", "warning")
    assert w.observed == "2 values unexpected (0.2% of 1,200)" and w.examples == ["'hk'"]


# --------------------------------------------------------------------------- other input shapes


def test_numbers_stored_as_text_name_the_non_numbers(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame["txn_count_1h"] = frame["txn_count_1h"].astype("str")
    frame.loc[[4, 6], "txn_count_1h"] = ["n/a", "?"]
    f = only_failure(validate_frame(frame, fraud))
    assert (f.column, f.rule) == ("txn_count_1h", "numeric dtype")
    assert f.observed == ("dtype str (expected an int or float dtype); values that are not "
                          "numbers")
    assert f.examples == ["'n/a'", "'?'"]  # in the report's examples column
    assert f.line().endswith("values that are not numbers (e.g. 'n/a', '?')")


def test_narrow_numeric_dtypes_are_range_checked(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame["hour"] = frame["hour"].astype("int8")
    frame["amount"] = frame["amount"].astype("float32")
    frame["card_age_days"] = frame["card_age_days"].astype("Int64")
    frame.loc[2, "card_age_days"] = pd.NA
    assert runtime._prepare(frame, fraud)[0]["hour"].dtype == "float64"  # GX's fast path
    frame.loc[1, "hour"] = 24
    result = validate_frame(frame, fraud)
    assert {(f.column, f.rule) for f in result.failures} == {
        ("hour", "in range [0, 23]"), ("card_age_days", "not null")}


def test_numbers_in_every_form_training_reads_pass_the_numeric_rules(
        fraud: UseCaseConfig, tmp_path: Path) -> None:
    # Parquet from pandas' nullable types, a database's DECIMAL, a boolean flag: training
    # reads each as numbers (features.py), so validation must not refuse them.
    from decimal import Decimal

    frame = fraud_frame()
    frame["card_age_days"] = frame["card_age_days"].astype("Int64")
    frame["amount"] = pd.array(frame["amount"].round(2), dtype="Float64")
    frame["txn_count_1h"] = [Decimal(int(v)) for v in frame["txn_count_1h"]]
    frame.to_parquet(tmp_path / "b.parquet", index=False)
    read = pd.read_parquet(tmp_path / "b.parquet")
    assert validate_frame(read, fraud).passed
    flagged = read.assign(hour=read["hour"] > 12)
    assert validate_frame(flagged, fraud).passed
    # Out of range is still out of range in any form.
    read.loc[1, "amount"] = -5.0
    assert {(f.column, f.rule) for f in validate_frame(read, fraud).failures} == {
        ("amount", "in range [0, 1000000]")}


def test_categories_of_mixed_types_are_compared_as_text(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, domains={"jurisdiction": ["HK", "1"]})
    frame = fraud_frame()
    frame["jurisdiction"] = pd.Series(["HK", 1] * 600, dtype=object)
    assert validate_frame(frame, config).passed


def test_zero_row_files_fail_as_empty(tmp_path: Path, demand: UseCaseConfig) -> None:
    parquet = tmp_path / "none.parquet"
    demand_frame().iloc[:0].to_parquet(parquet, index=False)
    csv = tmp_path / "header.csv"
    csv.write_text(",".join(demand_frame().columns) + "\n")
    for path in (parquet, csv):
        result = validate_file(path, demand)
        assert not result.passed
        assert result.failures[0].line() == "table: row count: 0 rows (min 50): the batch is empty"


# --------------------------------------------------------------------------- validate_file


def test_validate_file_passes_a_good_file(tmp_path: Path, fraud: UseCaseConfig) -> None:
    path = tmp_path / "2026-03-01.parquet"
    fraud_frame().to_parquet(path, index=False)
    result = validate_file(path, fraud, batch_date=DAY, now=NOW)
    assert result.passed and result.read_error is None


@pytest.mark.parametrize(("content", "problem"), [
    (None, "batch file not found"),
    (b"", "file is empty (0 bytes)"),
    (b"PAR1garbage", "truncated Parquet file"),
    (b"a;b\n1;2\n", "not a Parquet file"),
])
def test_validate_file_turns_read_errors_into_a_failed_result(
        tmp_path: Path, fraud: UseCaseConfig, content: bytes | None, problem: str) -> None:
    path = tmp_path / "2026-03-01.parquet"
    if content is not None:
        path.write_bytes(content)
    result = validate_file(path, fraud)
    assert not result.passed and result.evaluated == 0 and result.gx_result == {}
    assert result.read_error is not None and result.read_error.startswith(problem)
    assert result.message(str(path)) == f"{path}: batch could not be read: {result.read_error}"
    assert [f.rule for f in result.failures] == ["readable file"]
    assert result.summary_markdown(str(path)).startswith(f"# Validation FAILED: `{path}`")


def test_read_errors_keep_the_path_in_their_text(tmp_path: Path, fraud: UseCaseConfig) -> None:
    path = tmp_path / "x.parquet"
    with pytest.raises(BatchReadError) as err:
        read_batch_file(path, fraud)
    assert str(err.value) == f"{path}: batch file not found"
    assert (err.value.path, err.value.problem) == (path, "batch file not found")


def test_csv_with_a_mixed_type_numeric_column(tmp_path: Path, demand: UseCaseConfig) -> None:
    frame = demand_frame().astype({"advance_bookings": object})
    frame.loc[[3, 8], "advance_bookings"] = ["unknown", "12 bookings"]
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    result = validate_file(path, demand, batch_date=DAY, now=NOW)
    f = only_failure(result)
    assert (f.column, f.rule) == ("advance_bookings", "numeric dtype")
    assert f.examples == ["'unknown'", "'12 bookings'"]


# --------------------------------------------------------------------------- Data Docs


def _failed_fraud_result(fraud: UseCaseConfig) -> ValidationResult:
    frame = fraud_frame()
    frame.loc[5, "hour"] = 99
    frame.loc[6, "channel"] = "fax"
    return validate_frame(frame, with_validation(fraud, warn=["channel:domain"]),
                          batch_date=DAY, now=NOW)


def test_data_docs_render_the_stored_result(tmp_path: Path, fraud: UseCaseConfig) -> None:
    result = _failed_fraud_result(fraud)
    page = write_data_docs(result, fraud, tmp_path / "docs", batch_name="2026-03-01")
    assert page.is_file() and page.suffix == ".html"
    assert page.is_relative_to(tmp_path / "docs")
    html = page.read_text(encoding="utf-8")
    assert "hour" in html and "channel" in html and "event_time" in html
    index = tmp_path / "docs" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert index.is_file()
    for text in (html, index.read_text(encoding="utf-8")):
        assert "great-expectations-web-assets" not in text and "dataContextId" not in text

    # From the quarantine's gx_result.json: the same folder, a second page in the same index.
    saved = tmp_path / "gx_result.json"
    saved.write_text(json.dumps(result.gx_result))
    again = write_data_docs(saved, fraud, tmp_path / "docs", batch_name="2026-03-02")
    assert again.is_file() and again != page
    assert "2026-03-02" in index.read_text(encoding="utf-8")


def test_data_docs_need_a_gx_result(tmp_path: Path, fraud: UseCaseConfig) -> None:
    unreadable = validate_file(tmp_path / "missing.parquet", fraud)
    with pytest.raises(ValueError, match="no GX result"):
        write_data_docs(unreadable, fraud, tmp_path / "docs")


@pytest.mark.parametrize("text", [
    '[{"record_id": "r1", "amount": 1.5}]',
    '{"record_id": "r1", "amount": 1.5}\n{"record_id": "r2", "amount": 2.5}\n',  # JSON lines
    '\ufeff\n\n  {\n    "rows": [\n      {"record_id": "r1"}\n    ]\n  }\n',  # BOM, blanks
    "[\n  [1, 2],\n  [3, 4]\n]\n",
])
def test_json_is_named_as_json(tmp_path: Path, fraud: UseCaseConfig, text: str) -> None:
    path = tmp_path / "batch.csv"  # the name does not matter, the content does
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BatchReadError) as err:
        read_batch_file(path, fraud)
    assert str(err.value) == (f"{path}: looks like JSON, not CSV or Parquet: "
                              "export it as CSV or Parquet")


@pytest.mark.parametrize(("start", "kind"), [
    (b"\x89HDF\r\n\x1a\n\x00\x00", "an HDF5 file"),
    (b"PK\x03\x04\x14\x00\x06\x00", "a zip archive (an Excel .xlsx workbook is one)"),
    (b"SQLite format 3\x00\x10\x00", "an SQLite database"),
])
def test_a_binary_table_format_is_named(tmp_path: Path, fraud: UseCaseConfig, start: bytes,
                                        kind: str) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(start + bytes(range(256)))
    with pytest.raises(BatchReadError) as err:
        read_batch_file(path, fraud)
    assert str(err.value) == f"{path}: {kind}, not CSV or Parquet: export it as CSV or Parquet"


def test_a_zipped_csv_is_read_although_it_starts_like_a_zip(tmp_path: Path,
                                                            demand: UseCaseConfig) -> None:
    path = tmp_path / "2026-03-02.csv.zip"
    frame = pd.DataFrame({"date": ["2026-03-02"] * 3, "advance_bookings": [1.0, 2.0, 3.0]})
    frame.to_csv(path, index=False)  # pandas zips by the suffix
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    assert read_batch_file(path, demand)["advance_bookings"].tolist() == [1.0, 2.0, 3.0]


def test_csv_header_in_brackets_is_still_csv(tmp_path: Path, demand: UseCaseConfig) -> None:
    path = tmp_path / "batch.csv"
    path.write_text("[unit],value\nkg,1\n", encoding="utf-8")
    assert list(read_batch_file(path, demand).columns) == ["[unit]", "value"]


def test_an_infinite_number_fails_even_without_a_range(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()
    frame.loc[3, "amount_vs_avg_30d"] = np.inf  # no range in configs/fraud.yaml
    frame.loc[5, "amount"] = -np.inf
    failures = {(f.column, f.rule, f.observed) for f in validate_frame(frame, fraud).failures}
    assert failures == {("amount_vs_avg_30d", "finite", "1 value outside (-inf, inf)"),
                        ("amount", "in range [0, 1000000]", "1 value outside [0, 1000000]")}
    # An open side admits no infinity either.
    config = with_validation(fraud, ranges={"amount": RangeRule(min=0)})
    frame = fraud_frame()
    frame.loc[5, "amount"] = np.inf
    [f] = validate_frame(frame, config).failures
    assert (f.column, f.rule, f.observed) == ("amount", "in range [0, inf)",
                                              "1 value outside [0, inf)")
