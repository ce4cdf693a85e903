"""Batch validation: the GX suite built from config, failures as people read them, file reading."""

from __future__ import annotations

import gc
import json
import threading
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctpipe import validation
from ctpipe.config import RangeRule, UseCaseConfig, load_config
from ctpipe.validation import (
    BatchReadError,
    Failure,
    ValidationResult,
    build_suite,
    read_batch_file,
    validate_frame,
)


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
    assert types.count("expect_column_values_to_be_between") == len(fraud.validation.ranges)
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
    assert f.observed == "0.2% null (max 0.0%; 3 of 1,200 rows)"
    assert f.examples == ["row 3", "row 7", "row 11"]


def test_per_column_null_override_is_honoured(demand: UseCaseConfig) -> None:
    frame = demand_frame()
    frame.loc[:1, "rainfall_mm"] = np.nan  # 2 of 60 = 3.3 %, rainfall_mm allows 5 %
    assert validate_frame(frame, demand).passed

    frame.loc[:5, "rainfall_mm"] = np.nan  # 6 of 60 = 10 %
    f = only_failure(validate_frame(frame, demand))
    assert (f.column, f.rule) == ("rainfall_mm", "not null")
    assert f.observed.startswith("10.0% null (max 5.0%")

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
    with validation._LOCK:
        assert validation._plan(demand) is validation._plan(demand)
        context = validation._context()
        count = validation._MAX_PLANS + 2
        variants = [with_validation(demand, min_rows=n) for n in range(1, count + 1)]
        for config in variants:
            validation._plan(config)
        names = {ds.name for ds in context.data_sources.all().values()}
    assert len(validation._PLANS) == validation._MAX_PLANS
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


# --------------------------------------------------------------------------- reading files


def test_parquet_batch_reads_back(tmp_path: Path, fraud: UseCaseConfig) -> None:
    path = tmp_path / "2026-03-01.parquet"
    fraud_frame().to_parquet(path, index=False)
    frame = read_batch_file(path, fraud)
    pd.testing.assert_frame_equal(frame, fraud_frame(), check_dtype=False)
    assert validate_frame(frame, fraud).passed


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
