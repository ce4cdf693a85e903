"""The schema learned from the champion's training data (like TFDV's inferred schema).

The champion's reference profile (ctpipe.drift.ReferenceProfile, built from its training rows)
counts every category of every categorical feature. A batch value outside those categories is a
category the model never saw in training: its trees send it down the "unknown" branch, so the
operator must know, whether or not the config lists a domain for the column. Rule
``seen_in_training`` checks it with GX's ``expect_column_values_to_be_in_set`` (so it shows in
the GX result, the quarantine evidence and Data Docs like every other rule); its severity is
``validation.unseen_in_training`` (default warn) unless ``warn``/``ignore`` name the rule, and
``validation.unseen_in_training_share`` of a column's non-null values may be unseen before it
reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ctpipe.categories import category_key
from ctpipe.config import UseCaseConfig
from ctpipe.validation.spec import SEEN, Spec, apply_severity, load_gx, rule_severity

if TYPE_CHECKING:
    from ctpipe.drift import ReferenceProfile

NOT_GIVEN = "categories not compared with the champion's training data (none given)"
NO_CHAMPION = "no champion: categories not compared with training"


@dataclass(frozen=True)
class LearnedSchema:
    """Categories per categorical column, as the champion's training profile counted them.

    ``source`` names where they come from ("champion v3"); None means there is no champion
    (a cold start) or it could not be read, and the rule is skipped with ``absent`` as the note.
    """

    source: str | None
    categories: Mapping[str, frozenset[str]] = field(default_factory=dict)
    absent: str = NO_CHAMPION

    @classmethod
    def from_profile(cls, profile: ReferenceProfile, source: str) -> LearnedSchema:
        """The categories of each categorical column of ``profile`` (missing values left out)."""
        # Imported here: ctpipe.drift loads scipy (over a second), and every CLI command
        # imports this package; a caller holding a profile has loaded it already.
        from ctpipe.drift.columns import NULL_KEY

        return cls(source, {column: frozenset(k for k in counts if k != NULL_KEY)
                            for column, counts in profile.categorical.items()})


NONE_LEARNED = LearnedSchema(None)  # no champion yet: nothing learned


def checked_columns(config: UseCaseConfig) -> list[str]:
    """Categorical features rule seen_in_training applies to (not ignored by the config)."""
    return [c for c in config.features.categorical if rule_severity(config, SEEN, c)]


def as_category_text(values: pd.Series) -> pd.Series:
    """A non-text categorical column as the profile's category names, nulls kept null.

    Converted once per distinct value, so a 2M-row column of a few codes costs one map.
    """
    present = values.notna()
    names = {v: category_key(v) for v in pd.unique(values[present])}
    return values.map(names, na_action="ignore").astype(object).where(present)


def learned_specs(config: UseCaseConfig, learned: LearnedSchema | None) -> tuple[list[Spec],
                                                                                list[str]]:
    """The seen_in_training rules for ``learned``, and notes on the columns not checked."""
    columns = checked_columns(config)
    if not columns:
        return [], []
    if learned is None:
        return [], [NOT_GIVEN]
    if learned.source is None:
        return [], [learned.absent]
    E = load_gx().expectations
    share = config.validation.unseen_in_training_share
    specs, skipped = [], []
    for column in columns:
        seen = learned.categories.get(column)
        if seen is None:  # a feature added since the champion was trained
            skipped.append(f"{column}: not in the training profile of the {learned.source}; "
                           "categories not compared with training")
            continue
        kwargs: dict[str, Any] = {"column": column, "value_set": sorted(seen)}
        if share > 0:
            kwargs["mostly"] = 1.0 - share
        specs.append(Spec(SEEN, "seen in training", E.ExpectColumnValuesToBeInSet, kwargs,
                          info={"source": learned.source}))
    return apply_severity(config, specs), skipped


def describe_unseen(values: pd.Series, seen: Iterable[str], kwargs: Mapping[str, Any],
                    source: str | None, shown: int) -> str:
    """"'ZZ' 4.1%, 'QQ' 0.3% of non-null values: never seen in the champion's training data".

    Counted with pandas on the (text) column: GX's BASIC result keeps only 20 example values.
    """
    present = values.dropna()
    unseen = present[~present.isin(list(seen))]
    counts = unseen.value_counts()
    total = len(present)

    def pct(n: int) -> str:
        return _pct(n / total if total else 0.0)

    parts = [f"{v!r} {pct(int(n))}" for v, n in counts.head(shown).items()]
    if len(counts) > shown:
        rest = int(counts.iloc[shown:].sum())
        parts.append(f"{len(counts) - shown} more categories {pct(rest)}")
    text = ", ".join(parts) + " of non-null values"
    if len(counts) > 1:
        text += f" ({pct(len(unseen))} in all)"
    text += f": never seen in the champion's training data ({source})"
    if "mostly" in kwargs:
        text += f"; at most {_pct(1.0 - float(kwargs['mostly']))} may be unseen"
    return text


def _pct(share: float) -> str:
    return "<0.1%" if 0 < share < 0.001 else f"{share:.1%}"
