"""Rule seen_in_training (categories the champion saw in training) and the future rule without
a batch date: the validation library and the cycle's validation step, with no MLflow."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctpipe.config import ConfigError, UseCaseConfig, load_config, parse_config
from ctpipe.drift import build_profile
from ctpipe.lineage import LoadedVersion, ModelVersionInfo
from ctpipe.steps import validate as validate_step
from ctpipe.steps.ports import Runtime
from ctpipe.validation import NONE_LEARNED, LearnedSchema, validate_frame, write_data_docs
from ctpipe.validation.learned import NO_CHAMPION, NOT_GIVEN
from tests.fakes import CHAMPION, MemoryRegistry, MemoryStore
from tests.test_validation import MINIMAL_CONFIG, fraud_frame, only_failure, with_validation

NOW = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def fraud() -> UseCaseConfig:
    return load_config("fraud")


@pytest.fixture(scope="module")
def learned(fraud: UseCaseConfig) -> LearnedSchema:
    """What a champion trained on fraud_frame's categories learned."""
    profile = build_profile(fraud_frame(3000, seed=1), fraud.features.numeric,
                            fraud.features.categorical)
    return LearnedSchema.from_profile(profile, "champion v3")


def new_merchants(frame: pd.DataFrame) -> pd.DataFrame:
    """4.2 % 'casino' and 0.3 % 'crypto' (of 1,200 rows): no domain lists merchant_category."""
    frame = frame.copy()
    frame.loc[:49, "merchant_category"] = "casino"
    frame.loc[50:53, "merchant_category"] = "crypto"
    return frame


def test_unseen_categories_are_a_warning_with_their_share(fraud: UseCaseConfig,
                                                          learned: LearnedSchema) -> None:
    assert "merchant_category" not in fraud.validation.domains  # no domain: learned only
    result = validate_frame(new_merchants(fraud_frame()), fraud, training=learned)
    assert result.passed  # default warn: a new merchant category is reported, not quarantined
    assert [w.line() for w in result.warnings] == [
        "merchant_category: seen in training: 'casino' 4.2%, 'crypto' 0.3% of non-null values "
        "(4.5% in all): never seen in the champion's training data (champion v3)"]
    assert "merchant_category | seen in training" in result.summary_markdown("b.parquet")
    # A real GX expectation: in the GX result (the quarantine evidence, Data Docs) like any rule.
    seen = [r for r in result.gx_result["results"]
            if r["expectation_config"]["meta"]["ctpipe"]["kind"] == "seen_in_training"]
    assert {r["expectation_config"]["kwargs"]["column"] for r in seen} == set(
        fraud.features.categorical)
    assert all(r["expectation_config"]["type"] == "expect_column_values_to_be_in_set"
               for r in seen)


def test_a_clean_batch_has_no_unseen_categories(fraud: UseCaseConfig,
                                                learned: LearnedSchema) -> None:
    frame = fraud_frame()
    frame.loc[:9, "merchant_category"] = None  # nulls are the nulls rule's, never "unseen"
    result = validate_frame(frame, with_validation(fraud, null_fraction={
        "merchant_category": 0.05}), training=learned)
    assert result.passed and not result.warnings
    assert not any("categor" in s for s in result.skipped)


def test_severity_error_quarantines_in_one_line(fraud: UseCaseConfig,
                                                learned: LearnedSchema) -> None:
    config = with_validation(fraud, unseen_in_training="error")
    f = only_failure(validate_frame(new_merchants(fraud_frame()), config, training=learned))
    assert f.column == "merchant_category" and f.rule == "seen in training"
    message = validate_frame(new_merchants(fraud_frame()), config,
                             training=learned).message("b.parquet")
    assert message.startswith("b.parquet: batch failed validation with 1 problem")
    assert "merchant_category: seen in training: 'casino' 4.2%" in message
    assert "\n" not in message


def test_per_column_entries_override_the_default_severity(fraud: UseCaseConfig,
                                                          learned: LearnedSchema) -> None:
    frame = new_merchants(fraud_frame())
    ignored = with_validation(fraud, ignore=["merchant_category:seen_in_training"])
    result = validate_frame(frame, ignored, training=learned)
    assert result.passed and not result.warnings
    checked = {r["expectation_config"]["kwargs"]["column"] for r in result.gx_result["results"]
               if r["expectation_config"]["meta"]["ctpipe"]["kind"] == "seen_in_training"}
    assert checked == set(fraud.features.categorical) - {"merchant_category"}
    warned = with_validation(fraud, unseen_in_training="error",
                             warn=["merchant_category:seen_in_training"])
    result = validate_frame(frame, warned, training=learned)
    assert result.passed and len(result.warnings) == 1
    off = with_validation(fraud, unseen_in_training="ignore")
    result = validate_frame(frame, off, training=None)
    assert result.passed and not result.warnings and NOT_GIVEN not in result.skipped


def test_share_threshold(fraud: UseCaseConfig, learned: LearnedSchema) -> None:
    frame = new_merchants(fraud_frame())  # 4.5 % unseen
    config = with_validation(fraud, unseen_in_training="error", unseen_in_training_share=0.05)
    assert validate_frame(frame, config, training=learned).passed
    config = with_validation(fraud, unseen_in_training="error", unseen_in_training_share=0.02)
    f = only_failure(validate_frame(frame, config, training=learned))
    assert f.observed.endswith("(champion v3); at most 2.0% may be unseen")


def test_integer_codes_match_the_profile_categories(fraud: UseCaseConfig) -> None:
    # A code column the profile counted as ints arrives as floats (a missing value): 7.0 is 7.
    train = fraud_frame(3000, seed=1).assign(channel=np.tile([1, 2, 7], 1000))
    learned = LearnedSchema.from_profile(build_profile(
        train, fraud.features.numeric, fraud.features.categorical), "champion v1")
    config = with_validation(fraud, domains={}, null_fraction={"channel": 0.01},
                             unseen_category_share_by_column={})
    batch = fraud_frame().assign(channel=np.tile([1.0, 2.0, 7.0], 400))
    batch.loc[0, "channel"] = np.nan
    assert not validate_frame(batch, config, training=learned).warnings
    batch.loc[[1, 2], "channel"] = 9.0
    [w] = validate_frame(batch, config, training=learned).warnings
    assert w.line().startswith("channel: seen in training: '9' 0.2% of non-null values")


def test_cold_start_and_no_schema_say_why(fraud: UseCaseConfig, learned: LearnedSchema) -> None:
    frame = new_merchants(fraud_frame())
    result = validate_frame(frame, fraud, training=NONE_LEARNED)
    assert result.passed and not result.warnings
    assert NO_CHAMPION == "no champion: categories not compared with training"
    assert NO_CHAMPION in result.skipped
    assert f"- {NO_CHAMPION}" in result.summary_markdown("b.parquet")
    assert NOT_GIVEN in validate_frame(frame, fraud).skipped
    # A feature the champion's profile lacks (added to the config since): noted, not failed.
    partial = LearnedSchema("champion v2", {k: v for k, v in learned.categories.items()
                                            if k != "channel"})
    result = validate_frame(frame, fraud, training=partial)
    assert ("channel: not in the training profile of the champion v2; categories not "
            "compared with training") in result.skipped


def test_seen_in_training_entries_are_checked(fraud: UseCaseConfig) -> None:
    with pytest.raises(ValueError, match=r"validation\.warn: 'amount:seen_in_training': rule "
                       r"seen_in_training does not apply to column 'amount'"):
        validate_frame(fraud_frame(), with_validation(fraud, warn=["amount:seen_in_training"]))
    text = MINIMAL_CONFIG + "validation: {unseen_in_training: sometimes}\n"
    with pytest.raises(ConfigError, match=r"^toy\.yaml: validation\.unseen_in_training: "):
        parse_config(text, Path("toy.yaml"))


def test_future_without_a_batch_date_checks_against_now(fraud: UseCaseConfig) -> None:
    frame = fraud_frame()  # 2026-03-01
    frame.loc[[3, 4], "event_time"] = pd.Timestamp("2099-01-01 08:00")
    f = only_failure(validate_frame(frame, fraud, now=NOW))
    assert f.line() == ("event_time: not in the future: 2 values after now "
                        "(2026-03-02 00:00 UTC) (e.g. 2099-01-01 08:00:00)")
    result = validate_frame(frame.drop(index=[3, 4]), fraud, now=NOW)
    assert result.passed
    assert result.skipped == ["timestamps inside the batch period: no batch date given",
                              NOT_GIVEN]
    assert validate_frame(frame, fraud).passed  # neither date nor now: as before, not checked


# --------------------------------------------------------------------------- the cycle's step


def runtime(config: UseCaseConfig, champion_profile_frame: pd.DataFrame | None,
            batch: pd.DataFrame) -> tuple[Runtime, MemoryRegistry]:
    store = MemoryStore(config)
    store.add(dt.date(2026, 3, 1), batch.assign(**{config.data.target: 0}))
    models = MemoryRegistry(config.registered_model)
    if champion_profile_frame is not None:
        profile = build_profile(champion_profile_frame, config.features.numeric,
                                config.features.categorical)
        info = ModelVersionInfo(config.registered_model, 4, {}, [], "run-4")
        models.loaded[4] = LoadedVersion(info, None, profile, profile)  # type: ignore[arg-type]
        models.aliases[CHAMPION] = 4
    return Runtime(config=config, model_name=config.registered_model, store=store,
                   models=models, publish=lambda decision: None), models


def test_cycle_step_compares_with_the_champion(fraud: UseCaseConfig, tmp_path: Path) -> None:
    config = with_validation(fraud, unseen_in_training="error")
    rt, _ = runtime(config, fraud_frame(3000, seed=1), new_merchants(fraud_frame()))
    checked = validate_step.load_and_validate(rt, dt.date(2026, 3, 1))
    assert not checked.passed and checked.champion is not None
    assert checked.failures() == [
        "merchant_category: seen in training: 'casino' 4.2%, 'crypto' 0.3% of non-null values "
        "(4.5% in all): never seen in the champion's training data (champion v4)"]
    decision = validate_step.quarantine(rt, dt.date(2026, 3, 1), checked)
    assert decision.kind == "validation.failed" and "merchant_category" in decision.reason
    page = write_data_docs(checked.result, config, tmp_path, batch_name="2026-03-01")
    assert "merchant_category" in page.read_text() and "casino" in page.read_text()


def test_cycle_step_on_a_cold_start(fraud: UseCaseConfig) -> None:
    rt, _ = runtime(fraud, None, new_merchants(fraud_frame()))
    checked = validate_step.load_and_validate(rt, dt.date(2026, 3, 1))
    assert checked.passed and checked.champion is None
    assert NO_CHAMPION in checked.result.skipped
    decision = validate_step.passed_decision(rt, dt.date(2026, 3, 1), checked.result)
    assert NO_CHAMPION in decision.artifact.markdown


def test_cycle_step_loads_no_champion_when_the_rule_is_off(fraud: UseCaseConfig) -> None:
    config = with_validation(fraud, unseen_in_training="ignore")
    rt, models = runtime(config, fraud_frame(3000, seed=1), new_merchants(fraud_frame()))
    models.load_champion = None  # type: ignore[method-assign]  # would raise if called
    checked = validate_step.load_and_validate(rt, dt.date(2026, 3, 1))
    assert checked.passed and checked.champion is None and not checked.result.warnings
