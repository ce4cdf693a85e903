"""Features constant within a batch (a holiday flag, the day's weather): judged over a window.

Such a column carries one observation per batch, not one per row: a holiday batch is 100 %
"holiday", so a per-row test against a multi-batch reference flags every holiday, and a
distance test (Jensen-Shannon, Wasserstein) cannot tell one holiday in a fortnight from a new
regime. Here the last N batches are pooled with ONE value per batch (its category shares, or
its median for a numeric column) and compared with the reference by a two-sample test whose
sample sizes are batches:

* categorical: the chi-square test of homogeneity (``scipy.stats.chi2_contingency``, Yates'
  correction for one degree of freedom) on the table [reference counts scaled to its size in
  batches, window counts]; a category unseen in the reference is evidence, not an infinity;
* numeric: the Kolmogorov-Smirnov statistic of the reference values against the per-batch
  values, its p-value from scipy's asymptotic two-sample distribution for those sizes.

The reference's size in batches is estimated as its non-missing values over the window's mean
non-missing values per batch (the profile keeps rows, not batches). Drifted when
``p < drift.p_value``. Fewer than half the window's batches: not tested (a verdict on one or
two batches is noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ctpipe.config import DriftConfig
from ctpipe.drift.columns import NULL_KEY, category_counts, sorted_finite
from ctpipe.drift.profile import ReferenceProfile
from ctpipe.drift.results import FeatureDrift
from ctpipe.drift.stats import ks_2samp_sorted
from ctpipe.drift.stattests import join_notes


def min_window_batches(window: int) -> int:
    """Batches a window judgement needs: half the window, rounded up."""
    return -(-window // 2)


def is_batch_constant_numeric(values: np.ndarray) -> bool:
    """Sorted finite values: at least two, all equal."""
    return values.size >= 2 and bool(values[0] == values[-1])


def is_batch_constant_categorical(counts: Mapping[str, int]) -> bool:
    """One category (missing values aside) holding at least two rows."""
    present = [v for k, v in counts.items() if k != NULL_KEY]
    return len(present) == 1 and present[0] >= 2


def pooled_categories(columns: list[pd.Series]) -> tuple[dict[str, float], int, int]:
    """Each batch's category shares summed (one unit per batch), batches with values, values."""
    pooled: dict[str, float] = {}
    batches = values = 0
    for column in columns:
        counts = {k: v for k, v in category_counts(column).items() if k != NULL_KEY}
        total = sum(counts.values())
        if total == 0:
            continue
        batches += 1
        values += total
        for key, count in counts.items():
            pooled[key] = pooled.get(key, 0.0) + count / total
    return pooled, batches, values


def batch_medians(columns: list[pd.Series], name: str) -> tuple[np.ndarray, int]:
    """One value per batch (its median; the value itself when constant), sorted; and values."""
    medians = []
    values = 0
    for column in columns:
        finite, _ = sorted_finite(column, name)
        if finite.size:
            medians.append(_median(finite))
            values += finite.size
    return np.sort(np.asarray(medians, dtype=np.float64)), values


def homogeneity(first: Mapping[str, float], second: Mapping[str, float]) -> tuple[float, float]:
    """Chi-square test of homogeneity of two (possibly fractional) count vectors."""
    keys = sorted(set(first) | set(second))
    table = np.array([[first.get(k, 0.0) for k in keys], [second.get(k, 0.0) for k in keys]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] <= 1 or (table.sum(axis=1) <= 0).any():
        return 0.0, 1.0  # one category on both sides: nothing to compare
    result = stats.chi2_contingency(table, correction=True)
    return float(result.statistic), float(result.pvalue)


def ks_for_batches(ref: np.ndarray, n_ref: float, batch_values: np.ndarray) -> tuple[float, float]:
    """KS of reference values vs per-batch values, the p-value for ``n_ref`` reference batches.

    Same asymptotic distribution scipy's ``ks_2samp`` uses, with the effective sizes.
    """
    statistic, _ = ks_2samp_sorted(ref, batch_values)
    n = float(batch_values.size)
    en = n_ref * n / (n_ref + n)
    p = float(np.clip(stats.kstwo.sf(statistic, max(1, round(en))), 0.0, 1.0))
    return statistic, p


def largest_batch_shift(reference: Mapping[str, float], window: Mapping[str, float]) -> str:
    """The category whose share of batches moved most, as ``'T8': 4.8% -> 35.7% of batches``."""
    ref_total, win_total = sum(reference.values()), sum(window.values())
    keys = sorted(set(reference) | set(window))
    # Largest move; on a tie (two categories trade places) name the one that rose.
    moves = [(round(abs(window.get(k, 0.0) / win_total - reference.get(k, 0.0) / ref_total), 12),
              window.get(k, 0.0) / win_total > reference.get(k, 0.0) / ref_total, k)
             for k in keys]
    *_, key = max(moves)
    return (f"largest shift {key!r}: {reference.get(key, 0.0) / ref_total:.1%} -> "
            f"{window.get(key, 0.0) / win_total:.1%} of batches")


def effective_batches(n_reference_values: int, window_values: int, window_batches: int) -> float:
    """The reference's size in batches: its values over the window's values per batch."""
    per_batch = window_values / window_batches if window_batches else 0.0
    return max(1.0, n_reference_values / per_batch) if per_batch > 0 else 1.0


def compare_windows(kind: str, name: str, earlier: list[pd.Series],
                    current: list[pd.Series]) -> tuple[float, float] | None:
    """Two windows of batches, one value per batch each: (statistic, p), or None if one is empty.

    The seasonal check of a batch-constant feature: the current window against the window
    one cycle earlier.
    """
    if kind == "numeric":
        a, _ = batch_medians(earlier, name)
        b, _ = batch_medians(current, name)
        if a.size == 0 or b.size == 0:
            return None
        result = stats.ks_2samp(a, b, method="auto")
        return float(result.statistic), float(result.pvalue)
    first, n_first, _ = pooled_categories(earlier)
    second, n_second, _ = pooled_categories(current)
    if n_first == 0 or n_second == 0:
        return None
    return homogeneity(first, second)


def window_note(batches: int, window: int, n_ref_batches: float) -> str:
    return (f"constant within the batch: judged over the last {window} batches "
            f"({batches} available, one value per batch; reference ~{n_ref_batches:.0f} batches)")


def too_few_note(batches: int, window: int) -> str:
    return (f"not tested: constant within the batch, and only {batches} of the last {window} "
            f"batches have values (at least {min_window_batches(window)} needed)")


def window_drift(name: str, kind: str, reference: ReferenceProfile, columns: list[pd.Series],
                 config: DriftConfig, nan_current: int) -> FeatureDrift:
    """A batch-constant feature over the window ``columns`` (oldest first, current last)."""
    window = int(config.constant_window or 1)
    if kind == "numeric":
        values, n_values = batch_medians(columns, name)
        batches, test = int(values.size), "ks"
        ref = reference.numeric[name]
        n_ref_values, nan_ref = int(ref.size), reference.numeric_nan[name]
    else:
        pooled, batches, n_values = pooled_categories(columns)
        test = "chisquare"
        ref_counts = {k: v for k, v in reference.categorical[name].items() if k != NULL_KEY}
        n_ref_values = sum(ref_counts.values())
        nan_ref = reference.categorical[name].get(NULL_KEY, 0)
    n_ref_batches = effective_batches(n_ref_values, n_values, batches)
    base: dict[str, Any] = dict(
        feature=name, kind=kind, test=test, threshold=config.p_value,
        n_reference=round(n_ref_batches), n_current=batches, nan_reference=int(nan_ref),
        nan_current=int(nan_current), window=window,
        reference=f"training profile, last {window} batches")
    if n_ref_values == 0 or batches < min_window_batches(window):
        note = ("not tested: empty reference column (all missing)" if n_ref_values == 0
                else too_few_note(batches, window))
        return FeatureDrift(statistic=math.nan, drifted=False, p_value=None, note=note, **base)
    if kind == "numeric":
        statistic, p = ks_for_batches(ref, n_ref_batches, values)
        explain = (f"median of batch values {_median(ref):.4g} -> {_median(values):.4g}")
    else:
        scaled = {k: v * n_ref_batches / n_ref_values for k, v in ref_counts.items()}
        statistic, p = homogeneity(scaled, pooled)
        explain = largest_batch_shift(scaled, pooled)
    drifted = p < config.p_value
    note = join_notes(window_note(batches, window, n_ref_batches), explain if drifted else "")
    return FeatureDrift(statistic=statistic, drifted=drifted, p_value=p, note=note, **base)


def _median(values: np.ndarray) -> float:
    mid = values.size // 2  # sorted
    return float(values[mid]) if values.size % 2 else float((values[mid - 1] + values[mid]) / 2)
