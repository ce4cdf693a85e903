"""Feature derivation shared by training and scoring, so the two cannot diverge.

A ``FeatureSpec`` is fitted once on the training window (it learns the category levels), stored
as JSON next to the LightGBM booster in the registered model, and applied to raw batch rows at
scoring time. Categories unseen in training become missing, which LightGBM handles. Calendar
parts are read from the time column in the config's ``data.timezone`` (batch_reader.local_times,
the rule validation applies too).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ctpipe.batch_reader import parse_local_times
from ctpipe.config import UseCaseConfig

_CALENDAR = {
    "hour": lambda t: t.dt.hour,  # hourly rows batched daily: the time of day
    "day_of_week": lambda t: t.dt.dayofweek,
    "day_of_month": lambda t: t.dt.day,
    "day_of_year": lambda t: t.dt.dayofyear,
    "month": lambda t: t.dt.month,
    "week_of_year": lambda t: t.dt.isocalendar().week.astype("int64"),
}


@dataclass(frozen=True)
class FeatureSpec:
    time_column: str
    numeric: list[str]
    categorical: dict[str, list[str]]
    calendar: list[str] = field(default_factory=list)
    # Specs stored before the key existed read as UTC, the zone naive times were taken in.
    timezone: str = "UTC"

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.calendar]

    def transform(self, raw: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in (*self.numeric, *self.categorical) if c not in raw.columns]
        if missing:
            raise ValueError(f"feature columns missing from the batch: {missing}")
        out = {c: pd.to_numeric(raw[c], errors="raise").astype("float64") for c in self.numeric}
        for col, levels in self.categorical.items():
            # Each distinct value is turned to text once, not each of 2M rows: the same
            # categories as astype("str") row by row, several times faster.
            codes, uniques = pd.factorize(raw[col], use_na_sentinel=True)
            level_of = pd.Index(levels).get_indexer(pd.Index(uniques).astype("str"))
            mapped = np.where(codes >= 0, level_of[np.maximum(codes, 0)], -1) \
                if len(uniques) else np.full(len(codes), -1)
            out[col] = pd.Categorical.from_codes(mapped, categories=levels)
        if self.calendar:
            times = parse_local_times(raw[self.time_column], self.timezone)
            for part in self.calendar:
                out[part] = _CALENDAR[part](times).astype("float64")
        return pd.DataFrame(out, index=raw.index)

    def model_input(self, raw: pd.DataFrame) -> pd.DataFrame:
        """``transform`` with the column names LightGBM takes (``lightgbm_names``)."""
        features = self.transform(raw)
        return features.set_axis(lightgbm_names(list(features.columns)), axis="columns")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls(**json.loads(text))


# LightGBM aborts on these in a feature name ("Do not support special JSON characters"), and
# real columns have them: river's water-flow data names its column "Water flow [l/s]".
_NOT_FOR_LIGHTGBM = re.compile(r'[",:\[\]{}]')


def lightgbm_names(columns: list[str]) -> list[str]:
    """The names the booster knows the features by: each character LightGBM refuses becomes
    ``_``, and a name that then repeats another gets ``_2``, ``_3``... The features are
    matched by position when scoring, so only the booster's own file sees these names."""
    out: list[str] = []
    for name in columns:
        safe = base = _NOT_FOR_LIGHTGBM.sub("_", str(name))
        n = 1
        while safe in out:
            n += 1
            safe = f"{base}_{n}"
        out.append(safe)
    return out


def fit_feature_spec(config: UseCaseConfig, frame: pd.DataFrame) -> FeatureSpec:
    categories = {}
    for col in config.features.categorical:
        values = frame[col].dropna().astype("str")
        categories[col] = sorted(np.unique(values.to_numpy()).tolist())
    return FeatureSpec(
        time_column=config.data.time_column,
        numeric=list(config.features.numeric),
        categorical=categories,
        calendar=list(config.features.calendar),
        timezone=config.data.timezone,
    )
