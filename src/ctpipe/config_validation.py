"""The validation section of a use-case config: rule names and the batch checks.

Kept apart from ctpipe.config (which parses the YAML and re-exports these) so each module has
one job; the rules themselves are built in ctpipe.validation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """Every config section: unknown keys are errors, values frozen, no NaN."""

    # allow_inf_nan=False: a config built in code (not from a file) is held to the same rule
    # as parse_config's check of the YAML: NaN compares false with everything, so a NaN gate
    # floor would reject every challenger without saying why.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RangeRule(StrictModel):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RangeRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: no value could pass")
        return self


# Rule names a config can mark as warnings (``validation.warn``) or switch off
# (``validation.ignore``), alone ("nulls": every column) or for one column ("amount:nulls").
# ctpipe.validation maps each generated expectation to one of these names.
TABLE_RULES = ("row_count", "row_count_recent")
COLUMN_RULES = ("column_exists", "dtype", "nulls", "range", "domain", "unique", "period",
                "future", "seen_in_training")
VALIDATION_RULES = (*TABLE_RULES, *COLUMN_RULES)
# Expectation arguments ctpipe sets itself on every generated expectation.
_RESERVED_EXPECTATION_KWARGS = ("meta", "severity", "id", "result_format", "catch_exceptions")


class ExtraExpectation(StrictModel):
    """Any Great Expectations expectation, written in the config beside the generated rules."""

    type: str = Field(description="GX expectation type, snake_case "
                      "(expect_column_mean_to_be_between) or CamelCase "
                      "(ExpectColumnMeanToBeBetween); checked against GX's registry on load.")
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="The expectation's arguments, e.g. {column: amount, "
        "max_value: 500}; `mostly` works as in GX. Checked by GX's own model on load.")
    severity: Literal["error", "warning"] = Field(
        "error", description="error: a failure quarantines the batch; warning: it is reported "
        "and the cycle goes on.")
    rule: str | None = Field(None, description="Short name shown in messages; default the "
                             "expectation type.")

    @model_validator(mode="after")
    def _known_to_gx(self) -> ExtraExpectation:
        reserved = sorted(set(self.kwargs) & set(_RESERVED_EXPECTATION_KWARGS))
        if reserved:
            raise ValueError(f"kwargs {reserved} are set by ctpipe; use `severity` for warnings")
        # The type and kwargs are checked against GX by ctpipe.validation, when a workspace
        # opens (validation.check_config_expectations): this module does not import GX.
        return self


class ValidationConfig(StrictModel):
    """The batch checks; ctpipe.validation turns them into one GX expectation suite.

    Every rule fails the batch (error: quarantine) unless `warn` lists it (reported, the cycle
    goes on) or `ignore` switches it off. Always generated: columns exist (column_exists),
    numeric features have a numeric dtype and the time column a timestamp dtype (dtype), nulls
    (nulls), the id column is unique (unique). The period rule runs when the caller passes the
    batch date, the future rule when it passes the date or the current time (the cycle and
    `ctpipe validate` always do); row_count_recent when it passes the recent batches' row
    counts; seen_in_training when it passes the champion's training profile.
    """

    max_null_fraction: float = Field(0.0, ge=0, le=1, description="Maximum share of nulls in "
                                     "any batch column (rule `nulls`).")
    null_fraction: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, description="Per-column maximum null fraction overrides."
    )
    ranges: dict[str, RangeRule] = Field(default_factory=dict, description="Numeric bounds per "
                                         "feature, inclusive (rule `range`).")
    domains: dict[str, list[str]] = Field(default_factory=dict, description="Allowed values per "
                                          "categorical feature, compared as text (rule `domain`).")
    unseen_category_share: float = Field(
        0.0, ge=0, lt=1, description="Share of a domain column's non-null values that may fall "
        "outside its domain (new categories) before the domain rule fails; 0 = none.")
    unseen_category_share_by_column: dict[str, Annotated[float, Field(ge=0, lt=1)]] = Field(
        default_factory=dict, description="Per-column overrides of unseen_category_share; keys "
        "must be columns listed under domains.")
    unseen_in_training: Literal["error", "warn", "ignore"] = Field(
        "warn", description="Rule `seen_in_training`: a categorical feature's value the "
        "champion never saw in training (its reference profile), checked with or without a "
        "domain. warn (default): reported, the cycle goes on (a new shipper or merchant is "
        "normal, but the operator must see it); error: quarantine; ignore: not checked. "
        "`warn`/`ignore` entries for the rule override this per column.")
    unseen_in_training_share: float = Field(
        0.0, ge=0, lt=1, description="Share of a categorical column's non-null values that may "
        "be categories never seen in training before rule `seen_in_training` reports; 0 = any.")
    min_rows: int = Field(1, ge=1, description="Rule `row_count`; an empty batch always fails.")
    max_rows: int | None = Field(None, ge=1, description="Rule `row_count`; null: no maximum.")
    row_count_tolerance: float | None = Field(
        None, gt=0, description="Allowed relative deviation of the row count from the median of "
        "the recent batches' row counts (0.5: within 50 %); null disables the check.")
    row_count_window: int = Field(7, ge=1, description="Recent batches whose median row count "
                                  "row_count_tolerance compares with.")
    row_count_min_history: int = Field(3, ge=1, description="Fewer recent batches than this: the "
                                       "row_count_recent rule is skipped.")
    unexpected_columns: Literal["error", "warn", "ignore"] = Field(
        "error", description="Columns other than the time, id, target and feature columns: "
        "fail the batch (error), report them (warn) or accept them (ignore).")
    warn: list[str] = Field(
        default_factory=list, description="Rules whose failures are warnings (reported, the "
        "cycle goes on) instead of errors (quarantine): a rule name for every column, or "
        "`column:rule` for one. Rules: row_count, row_count_recent, column_exists, dtype, "
        "nulls, range, domain, unique, period (timestamps inside the batch's period), future "
        "(no timestamp after now), seen_in_training (categories the champion saw in "
        "training). An entry for a column wins over the bare rule name.")
    ignore: list[str] = Field(default_factory=list, description="Rules not checked at all; same "
                              "names as `warn`.")
    extra: list[ExtraExpectation] = Field(
        default_factory=list, description="More GX expectations, each with its own severity.")

    @model_validator(mode="after")
    def _consistent(self) -> ValidationConfig:
        if self.max_rows is not None and self.max_rows < self.min_rows:
            raise ValueError(f"max_rows ({self.max_rows}) is below min_rows ({self.min_rows})")
        if self.row_count_min_history > self.row_count_window:
            raise ValueError(f"row_count_min_history ({self.row_count_min_history}) exceeds "
                             f"row_count_window ({self.row_count_window})")
        unknown = sorted(set(self.unseen_category_share_by_column) - set(self.domains))
        if unknown:
            raise ValueError("unseen_category_share_by_column names columns without a domain: "
                             f"{unknown}")
        for key in ("warn", "ignore"):
            for entry in getattr(self, key):
                self._check_rule_entry(key, entry)
        both = sorted(set(self.warn) & set(self.ignore))
        if both:
            raise ValueError(f"rules listed under both warn and ignore: {both}")
        return self

    @staticmethod
    def _check_rule_entry(key: str, entry: str) -> None:
        """``rule`` or ``column:rule``; the column is checked against the batch in validation.py."""
        column, _, rule = entry.rpartition(":")
        if rule == "unexpected_columns":
            raise ValueError(f"{key}: {entry!r}: set validation.unexpected_columns instead")
        if rule not in VALIDATION_RULES:
            raise ValueError(f"{key}: unknown rule {rule!r} in {entry!r}; rules: "
                             f"{', '.join(VALIDATION_RULES)}")
        if column and rule in TABLE_RULES:
            raise ValueError(f"{key}: {entry!r}: {rule} is a table rule, it takes no column")
        if ":" in entry and not column:
            raise ValueError(f"{key}: {entry!r}: empty column name")
