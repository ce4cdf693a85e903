"""Column helpers of the drift engine: numeric columns as sorted finite float64 values,
categorical columns as counts per category, runs of equal values in sorted arrays."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ctpipe.categories import category_key

NULL_KEY = "<null>"
"""Key under which a categorical column's missing values are counted in a profile."""


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing feature column(s): {missing}")


def sorted_finite(series: pd.Series, name: str,
                  buffer: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Sorted finite float64 values of a numeric column and the count of missing/inf values.

    One sort does it all: numpy sorts NaN last, so the finite values are one contiguous slice
    found by two binary searches (no mask, no extra copy). With a ``buffer`` (at least as long
    as the column) the values are sorted there and the result is a view of it.
    """
    values = _as_float(series, name)
    if buffer is None or buffer.size < values.size:
        ordered = np.sort(values)
    else:
        ordered = buffer[:values.size]
        np.copyto(ordered, values)
        ordered.sort()
    lo = int(np.searchsorted(ordered, -np.inf, side="right"))
    hi = int(np.searchsorted(ordered, np.inf, side="left"))
    return ordered[lo:hi], int(values.size - (hi - lo))


def _as_float(series: pd.Series, name: str) -> np.ndarray:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        return series.to_numpy(dtype=np.float64, copy=False)  # no copy for float64 columns
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable / arrow-backed
    if pd.api.types.is_object_dtype(dtype):
        try:
            return pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"numeric feature {name!r} holds non-numeric values") from exc
    raise ValueError(f"numeric feature {name!r} has non-numeric dtype {dtype}")


def category_counts(series: pd.Series) -> dict[str, int]:
    """Counts per category as strings, missing values under NULL_KEY, zero counts dropped."""
    if isinstance(series.dtype, pd.StringDtype):
        fast = _arrow_string_counts(series)
        if fast is not None:
            return fast
        # Keys are already strings: skip the per-category conversion (high-cardinality columns).
        counts = series.value_counts(dropna=True, sort=False)
        found = {str(k): int(v) for k, v in zip(counts.index.tolist(), counts.tolist(),
                                                  strict=True) if v > 0}
        missing = int(series.isna().sum())
        if missing:
            found[NULL_KEY] = found.get(NULL_KEY, 0) + missing
        return found
    out: dict[str, int] = {}
    for value, count in series.value_counts(dropna=False, sort=False).items():
        if count > 0:  # a categorical dtype lists unused categories with count 0
            key = _category_key(value)
            out[key] = out.get(key, 0) + int(count)
    return out


def aligned_counts(reference: Mapping[str, int], current: Mapping[str, int]
                   ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The categories of either side (nulls left out), sorted, and each side's counts of
    them in that order (0 where a side lacks one)."""
    keys = sorted((set(reference) | set(current)) - {NULL_KEY})
    return (keys, np.array([reference.get(k, 0) for k in keys], dtype=np.int64),
            np.array([current.get(k, 0) for k in keys], dtype=np.int64))


def _arrow_string_counts(series: pd.Series) -> dict[str, int] | None:
    """Counts of a pyarrow-backed string column straight from Arrow, or None if not one.

    One hash pass over the Arrow array counts the missing values too (no separate isna pass),
    and only the distinct values are converted to Python.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        chunked = series.array.__arrow_array__()
    except (ImportError, AttributeError, TypeError):
        return None
    if not (pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)):
        return None
    counted = pc.value_counts(chunked)
    out: dict[str, int] = {}
    for value, count in zip(counted.field("values").to_pylist(),
                            counted.field("counts").to_pylist(), strict=True):
        key = NULL_KEY if value is None else value
        if count:
            out[key] = out.get(key, 0) + int(count)
    return out


def _category_key(value: object) -> str:
    missing = pd.isna(value)
    if isinstance(missing, bool | np.bool_) and missing:
        return NULL_KEY
    return category_key(value)


def run_bounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of each run of equal values in a sorted array."""
    breaks = np.flatnonzero(values[1:] != values[:-1])
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [values.size - 1]))
    return starts, ends


def runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and how often each occurs."""
    if values.size == 0:
        return values.astype(np.float64), np.zeros(0, dtype=np.int64)
    starts, ends = run_bounds(values)
    return values[ends], (ends - starts + 1).astype(np.int64)


def counts_at(keys: np.ndarray, distinct: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.zeros(keys.size, dtype=np.int64)
    out[np.searchsorted(keys, distinct)] = counts
    return out
