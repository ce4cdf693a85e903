"""Drift against the spread of the champion's own training batches (``drift.training_spread``).

A test's verdict compares one batch with a profile pooled from many: the p-value tests
(Kolmogorov-Smirnov, chi-square) assume independent rows, the distance tests (Wasserstein,
Jensen-Shannon) a fixed threshold. The hours of one week or the days of one month share their
conditions, and on real data either kind finds drift in nearly every batch. This asks a second
question of a feature its test found drifted, whichever test it was: is the batch further from
the profile than the batches the champion was trained on were? Each is measured by one effect
size against the same profile (numeric: the KS distance between the two distributions;
categorical: the total variation distance between category shares). The feature stays drifted
only when the batch's effect exceeds every training batch's.

The training batches are part of the profile, so their own distances run a little small (each
is one of n batches in it), which leans towards drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ctpipe.drift.columns import aligned_counts, category_counts, sorted_finite
from ctpipe.drift.profile import ReferenceProfile
from ctpipe.drift.results import FeatureDrift
from ctpipe.drift.stats import ks_statistic
from ctpipe.drift.stattests import join_notes

MIN_TRAINING_BATCHES = 3  # fewer give no spread to speak of: the test alone decides


def numeric_effect(reference: np.ndarray, values: pd.Series, name: str) -> float | None:
    """The KS distance between the profile's values and the batch's (None: nothing to compare)."""
    current, _ = sorted_finite(values, name)
    if reference.size == 0 or current.size == 0:
        return None
    return ks_statistic(reference, current)


def categorical_effect(reference: Mapping[str, int], values: pd.Series) -> float | None:
    """Half the summed absolute difference of category shares, nulls left out (None: empty)."""
    _, ref, cur = aligned_counts(reference, category_counts(values))
    if ref.sum() == 0 or cur.sum() == 0:
        return None
    return float(np.abs(ref / ref.sum() - cur / cur.sum()).sum() / 2)


def _effect(profile: ReferenceProfile, feature: FeatureDrift, values: pd.Series) -> float | None:
    if feature.kind == "numeric":
        return numeric_effect(profile.numeric[feature.feature], values, feature.feature)
    return categorical_effect(profile.categorical[feature.feature], values)


def within_training_spread(results: list[FeatureDrift], profile: ReferenceProfile,
                           current: pd.DataFrame,
                           training: Sequence[pd.DataFrame]) -> list[FeatureDrift]:
    """``results`` with each drifted row-level feature cleared when the batch is no further
    from the profile than one of the champion's training batches; its note says so. Windowed
    features (judged over batches already), untested ones and those that count for nothing
    (weight 0, excluded) are left as they are: no training batch is read for them."""
    out = []
    for result in results:
        if not result.drifted or result.window or not result.tested or not result.weight:
            out.append(result)
            continue
        name = result.feature
        spread = [e for batch in training if name in batch.columns
                  and (e := _effect(profile, result, batch[name])) is not None]
        effect = _effect(profile, result, current[name])
        if len(spread) < MIN_TRAINING_BATCHES or effect is None or effect > max(spread):
            out.append(result)
            continue
        what = "KS distance" if result.kind == "numeric" else "category shift"
        out.append(replace(result, drifted=False, note=join_notes(
            result.note, f"within the champion's training batches: {what} {effect:.3g}, "
                         f"theirs up to {max(spread):.3g} ({len(spread)} batches)")))
    return out
