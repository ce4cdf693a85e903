"""Use-case configuration: safe YAML (ctpipe.config_yaml) into pydantic models.

The loader refuses a key repeated in one mapping; NaN and infinity are refused anywhere in the
file; unknown keys are errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ctpipe.config_decisions import (  # re-exported: the sections after training live there
    EvaluationConfig,
    GateConfig,
    MonitoringConfig,
    PromotionConfig,
)
from ctpipe.config_validation import (  # re-exported: the validation section lives there
    COLUMN_RULES,
    TABLE_RULES,
    VALIDATION_RULES,
    ExtraExpectation,
    RangeRule,
    ValidationConfig,
)
from ctpipe.config_validation import StrictModel as _Strict
from ctpipe.config_yaml import DuplicateKey, UniqueKeyLoader, non_finite, yaml_problem

__all__ = ["COLUMN_RULES", "TABLE_RULES", "VALIDATION_RULES", "ConfigError", "DataConfig",
           "DriftConfig", "EvaluationConfig", "ExtraExpectation", "FeaturesConfig",
           "GateConfig", "MonitoringConfig", "PromotionConfig", "RangeRule", "TrainingConfig",
           "UseCaseConfig", "ValidationConfig", "load_config", "parse_config",
           "repo_configs_dir", "resolve_config_path"]

CALENDAR_PARTS = ("hour", "day_of_week", "day_of_month", "day_of_year", "month", "week_of_year")


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key path."""


class TargetFrom(_Strict):
    """A 0/1 target read off one numeric column: 1 where the value is above ``above``.

    The column is then dropped from the history, so it can never be a feature (it would leak
    the target). For public data sets that record a quantity, not the event (rain = rainfall
    above 0).
    """

    column: str = Field(description="Numeric source column the target is derived from.")
    above: float = Field(0.0, description="Threshold; default 0: any positive value is a 1.")


class DataConfig(_Strict):
    source: str | None = Field(
        None, description="A Parquet/CSV file or a folder of them with the target included "
        "(used by `ctpipe backtest` when --source is not given; a relative path is read from "
        "the config's folder), or a file an installed package ships: "
        "package:<package>/<path inside it>."
    )
    target_from: TargetFrom | None = Field(
        None, description="Binary task only: derive the 0/1 target from a numeric column of "
        "the source (1 where it is above a threshold); None: the source has the target.")
    landing: str | None = Field(
        None, description="Landing zone folder; default CTPIPE_HOME/landing/<name>."
    )
    time_column: str
    id_column: str | None = None
    target: str
    task: Literal["regression", "binary"]
    batch_frequency: Literal["daily", "weekly", "monthly"] = "daily"
    week_start: Literal["monday", "sunday"] = Field(
        "monday", description="Weekly batches only: the day a batch's week starts on (a "
        "weekly batch is named by that day).")
    label_delay: int = Field(1, ge=0, description="Batches until a batch's labels arrive.")
    csv_delimiter: str = ","
    csv_decimal: Literal[".", ","] = Field(
        ".", description="The decimal mark of numbers in CSV files: ',' for files written as "
        "1,5 (a spreadsheet in many European locales; csv_delimiter is then usually ';').")
    na_values: list[str] = Field(
        default_factory=list, description="More strings a CSV file writes for a missing "
        "value (pandas' own, such as an empty field, NA, NaN, null and n/a, always count, "
        "except in a categorical column, where only an empty field and these do): "
        "e.g. [nil, '-'].")
    timezone: str = Field(
        "UTC", description="IANA time zone the batch periods are counted in: a tz-aware time "
        "column is converted to it, naive timestamps are read as already in it.")
    drop_null_targets: bool = Field(
        False, description="Labels with a null target: drop those rows (counted in the log) "
        "instead of setting the labels file aside.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. UTC, Asia/Hong_Kong, "
                             "Europe/London)") from None
        return value

    @model_validator(mode="after")
    def _csv_marks_differ(self) -> DataConfig:
        if self.csv_decimal == "," == self.csv_delimiter:
            raise ValueError(f"csv_decimal {self.csv_decimal!r} is also csv_delimiter: a CSV "
                             "file with decimal commas separates its fields with ';'")
        return self

    @model_validator(mode="after")
    def _target_from_binary(self) -> DataConfig:
        if self.target_from is not None:
            if self.task != "binary":
                raise ValueError("target_from derives a 0/1 target: task must be binary")
            if self.target_from.column in (self.target, self.time_column, self.id_column):
                raise ValueError(f"target_from.column {self.target_from.column!r} must be "
                                 "another column than the target, time and id columns")
        if self.week_start != "monday" and self.batch_frequency != "weekly":
            raise ValueError(f"week_start {self.week_start!r} applies to weekly batches only "
                             f"(batch_frequency is {self.batch_frequency})")
        return self


class FeaturesConfig(_Strict):
    numeric: list[str] = []
    categorical: list[str] = []
    calendar: list[Literal[CALENDAR_PARTS]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Parts derived from the time column (not drift-tested)."
    )

    @model_validator(mode="after")
    def _distinct(self) -> FeaturesConfig:
        seen = self.numeric + self.categorical
        dupes = sorted({c for c in seen if seen.count(c) > 1})
        if dupes:
            raise ValueError(f"columns listed twice across numeric/categorical: {dupes}")
        if not seen:
            raise ValueError("at least one numeric or categorical feature is required")
        clash = [part for part in self.calendar if part in seen]
        if clash:
            # The derived part is a column of that name: it would replace the source's own.
            raise ValueError(f"calendar part {clash[0]!r} is also listed as a feature column: "
                             "the part derived from the time column would replace it; rename "
                             "the column or drop the calendar part")
        return self

    @property
    def raw(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class DriftConfig(_Strict):
    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted features that "
                               "makes dataset drift.")
    small_reference_rows: int = Field(1000, ge=1)
    p_value: float = Field(0.05, gt=0, lt=1)
    distance_threshold: float = Field(0.1, gt=0)
    numeric_test: str = Field("auto", description="auto, or a drift test for numeric columns "
                              "registered in ctpipe.drift.stattests (ks, wasserstein, psi, ...).")
    categorical_test: str = Field("auto", description="auto, or a drift test for categorical "
                                  "columns (chisquare, jensenshannon, psi, ...).")
    psi_threshold: float = Field(0.2, gt=0)
    per_feature: dict[str, str] = Field(default_factory=dict, description="Drift test per "
                                        "column, overriding numeric_test/categorical_test.")
    # What the drift share counts (docs/retraining-policy.md, "What the drift share counts").
    exclude: list[str] = Field(default_factory=list, description="Features reported in the "
                               "drift table but not counted in the drift share; default []: "
                               "every profiled feature counts.")
    weights: dict[str, float] = Field(default_factory=dict, description="Weight (>= 0) of a "
                                      "feature in the drift share, the weighted share of "
                                      "drifted among tested features; a feature not listed "
                                      "weighs 1 (default {}: the plain share).")
    constant_window: int | None = Field(14, ge=2, description="A feature with one distinct "
                                        "value in the batch (holiday flag, the day's weather) "
                                        "is judged over the last N batches, one value per "
                                        "batch, not per batch; default 14; null judges it on "
                                        "the batch alone.")
    seasonal_period: int | None = Field(None, ge=1, description="Batches per seasonal cycle "
                                        "(7: weekly pattern in daily batches, 52: weekly "
                                        "batches, 12: monthly); a feature then counts as "
                                        "drifted only when it also drifted against the batch "
                                        "one cycle earlier. Default null: off.")
    training_spread: bool = Field(False, description="A feature its test (whichever) finds "
                                  "drifted counts only when the batch is further from the "
                                  "champion's profile (KS distance, or the shift in category "
                                  "shares) than every labelled batch the champion was trained "
                                  "on: for rows that share their batch's conditions (the hours "
                                  "of a week), where the test alone finds drift in almost every "
                                  "batch. The drift step of a cycle only (`ctpipe drift` has no "
                                  "training batches). Default false.")
    # Performance drift and triggers (docs/retraining-policy.md, "Performance drift").
    performance_tolerance: float | None = Field(
        0.1, ge=0, description="Relative degradation of the champion's metric on newly labelled "
        "rows versus its holdout metric at promotion that counts as drift, when the whole "
        "bootstrap interval is above it (default 0.1: significantly more than 10 % worse); "
        "null disables the check.")
    min_performance_rows: int = Field(
        50, ge=1, description="Labelled rows the performance check pools (newest labelled "
        "batches first, up to performance_window batches) before it judges; fewer: it says it "
        "cannot judge. Default 50.")
    performance_window: int = Field(
        14, ge=1, description="At most this many labelled batches newer than the champion's "
        "training data are pooled for the performance check (default 14).")
    performance_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Two-sided confidence of the bootstrap interval of the "
        "champion's metric on the pooled rows (default 0.95).")
    performance_resamples: int = Field(
        400, ge=50, le=5000, description="Bootstrap resamples of the pooled rows (default 400; "
        "seeded with training.seed, so a verdict is reproducible).")
    triggers: list[Literal["data", "performance", "label", "prediction"]] = Field(
        default_factory=lambda: ["data", "performance"], min_length=1,
        description="Which drift may start a retrain: data (the drift share), performance, "
        "label (the pooled fresh labels against the champion's training labels), prediction "
        "(the batch's predictions against the champion's on its training rows). Default "
        "[data, performance]: label and prediction drift are reported only.")

    @model_validator(mode="after")
    def _share_settings(self) -> DriftConfig:
        """Weights are finite and >= 0; a feature is excluded or weighted, not both.

        Names are checked against the profile in detect_drift (like per_feature).
        """
        bad = sorted(k for k, w in self.weights.items() if not (math.isfinite(w) and w >= 0))
        if bad:
            raise ValueError(f"weights: must be finite and >= 0, not for {bad}")
        both = sorted(set(self.exclude) & set(self.weights))
        if both:
            raise ValueError(f"weights: {both} also listed in exclude (exclude means weight 0)")
        return self

    @model_validator(mode="after")
    def _known_tests(self) -> DriftConfig:
        """Test names against the registry (ctpipe.drift.stattests), for the kind they serve.

        per_feature is checked against the column's kind when the profile is known
        (detect_drift). "auto" needs no lookup: the default config imports no drift code.
        """
        named: list[tuple[str, str, str | None]] = [
            (f"per_feature.{column}", test, None) for column, test in self.per_feature.items()]
        if self.numeric_test != "auto":
            named.append(("numeric_test", self.numeric_test, "numeric"))
        if self.categorical_test != "auto":
            named.append(("categorical_test", self.categorical_test, "categorical"))
        if named:
            from ctpipe.drift.stattests import get_stattest

            for key, test, kind in named:
                try:
                    get_stattest(test, kind)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        return self


class TrainingConfig(_Strict):
    window: int = Field(21, ge=2, description="Labeled batches used for training + holdout.")
    holdout: int = Field(3, ge=1, description="Most recent labeled batches held out.")
    min_train_rows: int = Field(200, ge=10)
    recency_half_life: float | None = Field(
        None, gt=0, description="Half-life in batches of the sample weights; null = uniform."
    )
    retrain_every: int | None = Field(
        None, ge=1, description="Scheduled retrain every N batches, counted from the last "
        "retrain attempt (promoted or not; before any, from the champion's training window); "
        "default null: no schedule.")
    rejection_cooldown: int = Field(
        3, ge=0, description="After a rejected challenger, drift-triggered retraining waits "
        "this many batches while drift persists, doubling after each consecutive rejection "
        "(default 3; 0: no cooldown). A promotion resets it; cold start never waits.")
    max_rejection_cooldown: int = Field(
        12, ge=0, description="Longest cooldown in batches after consecutive rejections "
        "(default 12).")
    min_batches_after_drift: int = Field(
        1, ge=0, description="Drift retrains only once the training part of the window holds "
        "this many labelled batches from the drift's onset on (the first batch of the current "
        "run of drift, or the oldest pooled batch that showed performance or label drift): a "
        "challenger that never saw the new data is rejected, and the rejection would start a "
        "cooldown (default 1; 0: retrain at once).")
    row_holdout_after_drift: float | None = Field(
        0.5, gt=0, lt=1, description="While holding out the newest `holdout` batches would "
        "leave the training part with fewer than min_batches_after_drift (at least 1) batches "
        "from the drift's onset, and the drift outlasts one batch, and this share of those "
        "batches holds drift.min_performance_rows labelled rows, a challenger learning that "
        "change holds out this share of the rows of each labelled batch from the onset "
        "instead (its latest rows by the time column; a seeded random share when they share "
        "one time) and trains on the rest: it learns the new regime and is judged on it as "
        "soon as one batch is labelled, `holdout` batches sooner (default 0.5; null: wait for "
        "whole batches).")
    drift_emphasis: float = Field(
        4.0, ge=1, description="A drift-triggered challenger weighs the rows of batches from "
        "the drift's onset on this many times more (on top of recency_half_life), so it "
        "learns the new regime from its first batches (default 4; 1: no emphasis).")
    follow_up_until: int | None = Field(
        None, ge=0, description="A champion promoted after drift learned the change from few "
        "batches: retrain it each time the labelled batches from the drift's onset grow "
        "follow_up_growth times (1, 3, 9, ...), counted from the newest attempt, promoted or "
        "rejected, until an attempt has seen this many; behind the same gate, with the same "
        "emphasis (default null: the whole training part of the window, window - holdout, so "
        "the last follow-up no longer trains on the old regime; a larger number counts as "
        "that; 0: no follow-ups). Between follow-ups, drift other than performance drift "
        "waits for the next one.")
    follow_up_growth: float = Field(
        3.0, ge=1.5, description="How many times the batches from the drift's onset must grow "
        "between follow-ups (default 3: at 3, 9, 27, ... batches; at most "
        "ceil(log_growth(window - holdout)) follow-ups per change).")
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    seed: int = 7

    @model_validator(mode="after")
    def _cooldown_order(self) -> TrainingConfig:
        if self.max_rejection_cooldown < self.rejection_cooldown:
            raise ValueError(f"max_rejection_cooldown ({self.max_rejection_cooldown}) must be "
                             f">= rejection_cooldown ({self.rejection_cooldown})")
        return self

    @model_validator(mode="after")
    def _holdout_fits(self) -> TrainingConfig:
        if self.holdout >= self.window:
            raise ValueError(
                f"holdout ({self.holdout}) must be smaller than window ({self.window})"
            )
        return self

    @property
    def follow_ups_until(self) -> int:
        """Batches from a drift's onset after which its follow-ups end (0: none); never more
        than the training part holds, or the follow-ups would stay open for good."""
        part = self.window - self.holdout
        return part if self.follow_up_until is None else min(self.follow_up_until, part)


# MLflow's registry search filters quote the model name (name = '<name>'): a quote or other
# punctuation would break the filter or change its meaning. A replay registers
# "<name>-backtest", so 9 characters are kept free below MLflow-friendly 128.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,118}$")
_MODEL_NAME_RULE = ("1 to 119 letters, digits, '.', '_' or '-', starting with a letter or "
                    "digit (MLflow registry filters quote it)")
_BACKTEST_SUFFIX = "-backtest"


class UseCaseConfig(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    model_name: str | None = None
    data: DataConfig
    features: FeaturesConfig
    validation: ValidationConfig = ValidationConfig()
    drift: DriftConfig = DriftConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig
    gate: GateConfig
    promotion: PromotionConfig = PromotionConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    @field_validator("model_name")
    @classmethod
    def _safe_model_name(cls, value: str | None) -> str | None:
        if value is not None and not _MODEL_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a usable registered model name: "
                             f"{_MODEL_NAME_RULE}")
        return value

    @model_validator(mode="after")
    def _derived_model_name_safe(self) -> UseCaseConfig:
        # name's own pattern keeps the characters safe; only its length can break the rule.
        if self.model_name is None and not _MODEL_NAME.fullmatch(self.registered_model):
            raise ValueError(f"name: the registered model name {self.registered_model!r} "
                             f"(ctpipe-<name>) breaks the rule: {_MODEL_NAME_RULE}; shorten "
                             "name or set model_name")
        return self

    @model_validator(mode="after")
    def _columns_consistent(self) -> UseCaseConfig:
        special = {self.data.time_column, self.data.target}
        if self.data.id_column:
            special.add(self.data.id_column)
        clash = sorted(special & set(self.features.raw))
        if clash:
            raise ValueError(f"features must not include the time/id/target columns: {clash}")
        derived_from = self.data.target_from and self.data.target_from.column
        if derived_from in self.features.raw:
            # It is dropped once the target is derived: a feature of it would leak the label.
            raise ValueError(f"features must not include data.target_from.column "
                             f"{derived_from!r}: the target is derived from it, so it is "
                             "dropped from the source")
        for section, cols in (
            ("evaluation.slices", self.evaluation.slices),
            ("validation.domains", list(self.validation.domains)),
            ("validation.ranges", list(self.validation.ranges)),
            ("drift.per_feature", list(self.drift.per_feature)),
        ):
            unknown = sorted(set(cols) - set(self.features.raw))
            if unknown:
                # The features listed too: a typo may be on either side (precipitaton).
                raise ValueError(f"{section} names columns that are not features: {unknown} "
                                 f"(features: {self.features.raw})")
        # Domain columns are read as text and ranges compare numbers: crossed, every batch fails.
        for section, cols, kind, other in (
                ("validation.domains", self.validation.domains, "numeric",
                 "bounds for numbers go under validation.ranges"),
                ("validation.ranges", self.validation.ranges, "categorical",
                 "allowed values of a category go under validation.domains")):
            crossed = [c for c in cols if c in getattr(self.features, kind)]
            if crossed:
                raise ValueError(f"{section} names the {kind} feature {crossed[0]!r}: {other}")
        unknown = sorted(set(self.validation.null_fraction) - set(self.batch_columns))
        if unknown:
            raise ValueError(f"validation.null_fraction names columns not in the batch: {unknown} "
                             f"(batch columns: {sorted(self.batch_columns)})")
        return self

    @property
    def batch_columns(self) -> list[str]:
        """Columns a batch must carry: time, id (if any), features. Not the target."""
        data = self.data
        return [data.time_column, *([data.id_column] if data.id_column else []),
                *self.features.raw]

    @property
    def read_columns(self) -> list[str]:
        """Every column ctpipe reads from a batch or its history: the batch's and the target."""
        return [*self.batch_columns, self.data.target]

    @property
    def registered_model(self) -> str:
        return self.model_name or f"ctpipe-{self.name}"

    @property
    def higher_is_better(self) -> bool:
        from ctpipe.metrics import higher_is_better

        return higher_is_better(self.evaluation.metric)

    @model_validator(mode="after")
    def _metric_fits_task(self) -> UseCaseConfig:
        from ctpipe.metrics import get_metric

        try:
            get_metric(self.evaluation.metric, self.data.task)
        except ValueError as exc:
            raise ValueError(f"evaluation.metric does not fit data.task: {exc}") from None
        return self

    @model_validator(mode="after")
    def _floor_reachable(self) -> UseCaseConfig:
        from ctpipe.metrics import get_metric

        metric = get_metric(self.evaluation.metric)
        low, high = metric.bounds
        floor = self.gate.floor
        if (floor > high) if metric.higher_is_better else (floor < low):
            raise ValueError(
                f"gate.floor {floor:g} is out of reach: {metric.name} lies between {low:g} and "
                f"{high:g}, so no challenger could ever pass the gate "
                f"({'at least' if metric.higher_is_better else 'at most'} the floor)")
        return self

    @property
    def config_hash(self) -> str:
        dump = self.model_dump(mode="json")
        # Monitoring decides what happens after serving; it never changes a trained model.
        del dump["monitoring"]
        for section, defaults in _HASH_NEUTRAL_DEFAULTS.items():
            for key, default in defaults.items():
                if dump[section].get(key) == default:
                    del dump[section][key]
        canonical = json.dumps(dump, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def validation_hash(self) -> str:
        """What a batch's validation depends on: how it is read (data), its columns (features)
        and the rules (validation). A batch that passed is checked again when this changes,
        not when a training or gate setting does."""
        dump = self.model_dump(mode="json", include={"data", "features", "validation"})
        for key in ("week_start", "csv_decimal"):  # added later: at their default the hash stays
            if dump["data"].get(key) == _HASH_NEUTRAL_DEFAULTS["data"][key]:
                del dump["data"][key]
        # What ctpipe's own rules check changed (the finite rule; numbers in every form), so a
        # batch that passed before is checked again under them.
        dump["rules"] = _VALIDATION_RULES_VERSION
        return hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()[:16]


# Raised when a release changes what the generated rules let pass (UseCaseConfig.validation_hash).
_VALIDATION_RULES_VERSION = 2

# Keys added after versions were registered: left out of config_hash while at their default,
# so an unchanged config keeps its hash (a retrain looks up the batch's versions by
# config_hash, and the registry's lineage names it). Add every new key with a default here.
_HASH_NEUTRAL_DEFAULTS: dict[str, dict[str, object]] = {
    "data": {"timezone": "UTC", "drop_null_targets": False, "na_values": [],
             "week_start": "monday", "csv_decimal": "."},
    "drift": {"training_spread": False},
}


def config_problems(source: Path | str, problems: Sequence[tuple[str, str]]) -> str:
    """One line per (key path, rule): ``<file>: <key>: <rule>``; an empty key path is a rule
    over several keys, named in the rule itself."""
    return "\n".join(f"{source}: {loc}: {rule}" if loc else f"{source}: {rule}"
                     for loc, rule in problems)


# The use case's name becomes folder, registry and flow names: say the rule, not the regex.
_NAME_RULE = ("{!r} is not a use-case name: lower-case letters, digits, '_' and '-', starting "
              "with a letter (e.g. taylor-demand)")


def _format_errors(path: Path, err: ValidationError) -> str:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        # pydantic prefixes the ValueErrors our validators raise; the rule reads better bare.
        if e["type"] == "extra_forbidden":
            rule = "unknown key"
        elif loc == "name" and e["type"] == "string_pattern_mismatch":
            rule = _NAME_RULE.format(e.get("input"))
        else:
            rule = e["msg"].removeprefix("Value error, ")
        problems.append((loc, rule))
    return config_problems(path, problems)


def parse_config(text: str, source: Path) -> UseCaseConfig:
    """Parse YAML text into a validated config; errors name ``source`` and the key path."""
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKey as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {yaml_problem(exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    bad = list(non_finite(raw))
    if bad:
        raise ConfigError(f"{source}: {', '.join(bad)}: not a finite number (NaN and infinity "
                          "are refused)")
    try:
        return UseCaseConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc


def repo_configs_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "configs"


def resolve_config_path(name_or_path: str) -> Path:
    """A path to a YAML file, or a use-case name looked up in ./configs then the repo's configs."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: config file not found")
        return candidate
    for folder in (Path.cwd() / "configs", repo_configs_dir()):
        path = folder / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    places = list(dict.fromkeys([str(Path.cwd()), str(repo_configs_dir().parent)]))
    # A config beside the user (./taylor.yaml) is not a use-case name's place: name the file.
    nearby = next((p for p in (Path(f"{name_or_path}.yaml"), Path(f"{name_or_path}.yml"))
                   if p.is_file()), None)
    shown = nearby if nearby is None or nearby.is_absolute() else f"./{nearby}"
    hint = (f"; {nearby} is here: pass its path (ctpipe ... {shown})" if nearby
            else "; a config elsewhere: pass its path")
    raise ConfigError(
        f"no config for use case {name_or_path!r}: looked for configs/{name_or_path}.yaml "
        f"in {' and '.join(places)}{hint}"
    )


def load_config(name_or_path: str | Path) -> UseCaseConfig:
    path = resolve_config_path(str(name_or_path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save "
                          "the config as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror or exc}") from exc
    return parse_config(text, path)
