"""The reference profile: what the drift check keeps from the training data, and its file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctpipe.drift.columns import category_counts, require_columns, runs, sorted_finite

_PROFILE_FORMAT = "ctpipe.drift.ReferenceProfile"  # stored in every file: never change it
_PROFILE_VERSION = 1


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """What the drift check needs from the training data, without the data itself.

    ``numeric`` holds each column's sorted float64 values with missing values removed (sorted once
    here, so each daily check only sorts the current batch); ``categorical`` holds counts per
    category, missing values under :data:`NULL_KEY`.
    """

    n_rows: int
    numeric: dict[str, np.ndarray]
    numeric_nan: dict[str, int]
    categorical: dict[str, dict[str, int]]

    def __post_init__(self) -> None:
        if set(self.numeric) != set(self.numeric_nan):
            raise ValueError("numeric and numeric_nan must name the same columns")
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ValueError(f"columns profiled as both numeric and categorical: {both}")
        # Reference-only quantities, computed on first use and kept (not a dataclass field).
        object.__setattr__(self, "_std", {})

    def reference_std(self, name: str) -> float:
        """``np.std`` of a numeric reference column (0.0 when constant), computed once."""
        cache: dict[str, float] = self._std  # type: ignore[attr-defined]
        if name not in cache:
            ref = self.numeric[name]
            cache[name] = 0.0 if ref.size == 0 or ref[0] == ref[-1] else float(np.std(ref))
        return cache[name]

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def save(self, path: Path) -> None:
        """Write one ``.npz`` file (no pickle): arrays per numeric column plus a JSON header.

        Columns with many ties (codes, flags, rounded amounts) are stored as distinct values and
        run lengths, which is exact and often orders of magnitude smaller.
        """
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        numeric_meta = []
        for i, (name, values) in enumerate(self.numeric.items()):
            distinct, counts = runs(values)
            entry: dict[str, Any] = {"name": name, "nan": int(self.numeric_nan[name]),
                                     "size": int(values.size)}
            if 2 * distinct.size < values.size:
                entry["encoding"] = "runs"
                arrays[f"num{i}_values"] = distinct
                arrays[f"num{i}_counts"] = counts
            else:
                entry["encoding"] = "raw"
                arrays[f"num{i}_values"] = np.ascontiguousarray(values, dtype=np.float64)
            numeric_meta.append(entry)
        meta = {"format": _PROFILE_FORMAT, "version": _PROFILE_VERSION, "n_rows": self.n_rows,
                "numeric": numeric_meta,
                "categorical": [{"name": k, "counts": v} for k, v in self.categorical.items()]}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        # Write then rename, so a crash never leaves a half-written profile behind.
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:  # a handle, so numpy does not append ".npz" to the name
            np.savez(handle, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        with np.load(Path(path), allow_pickle=False) as archive:
            try:
                meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
            except KeyError as exc:
                raise ValueError(f"{path}: not a ctpipe reference profile") from exc
            if meta.get("format") != _PROFILE_FORMAT or meta.get("version") != _PROFILE_VERSION:
                raise ValueError(f"{path}: unsupported profile format {meta.get('format')!r} "
                                 f"version {meta.get('version')!r}")
            numeric: dict[str, np.ndarray] = {}
            numeric_nan: dict[str, int] = {}
            for i, entry in enumerate(meta["numeric"]):
                values = archive[f"num{i}_values"]
                if entry["encoding"] == "runs":
                    values = np.repeat(values, archive[f"num{i}_counts"])
                values = np.asarray(values, dtype=np.float64)
                # A corrupted or hand-made file would silently give wrong statistics.
                if values.size != entry["size"] or (
                    values.size and not (np.isfinite(values[0]) and np.isfinite(values[-1])
                                         and bool(np.all(values[1:] >= values[:-1])))):
                    raise ValueError(f"{path}: numeric column {entry['name']!r} is not a sorted "
                                     "array of finite values of the recorded size")
                values.setflags(write=False)
                numeric[entry["name"]] = values
                numeric_nan[entry["name"]] = int(entry["nan"])
        categorical = {e["name"]: {str(k): int(v) for k, v in e["counts"].items()}
                       for e in meta["categorical"]}
        return cls(n_rows=int(meta["n_rows"]), numeric=numeric, numeric_nan=numeric_nan,
                   categorical=categorical)


def build_profile(frame: pd.DataFrame, numeric: list[str],
                  categorical: list[str]) -> ReferenceProfile:
    """Profile the reference (training) data: sorted numeric values, category counts."""
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise ValueError(f"columns listed as both numeric and categorical: {both}")
    require_columns(frame, [*numeric, *categorical], "reference frame")
    numeric_values: dict[str, np.ndarray] = {}
    numeric_nan: dict[str, int] = {}
    for name in numeric:
        values, missing = sorted_finite(frame[name], name)
        values.setflags(write=False)
        numeric_values[name] = values
        numeric_nan[name] = missing
    counts = {name: category_counts(frame[name]) for name in categorical}
    return ReferenceProfile(n_rows=len(frame), numeric=numeric_values, numeric_nan=numeric_nan,
                            categorical=counts)
