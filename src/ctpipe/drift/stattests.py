"""The drift-test registry: every test a config can name, one ``register_stattest`` entry each.

An entry says which column kinds the test applies to (by giving a function per kind), how it
decides (``p_value``: drifted when p < threshold; ``statistic``: when statistic >= threshold) and
its threshold: a number, or the name of the ``DriftConfig`` setting that holds it (``p_value``,
``distance_threshold``, ``psi_threshold``: settings shared by several tests).

* A numeric function gets the reference and current values (sorted, finite, non-empty float64)
  and a callable giving the reference standard deviation (cached in the profile).
* A categorical function gets the reference and current counts per category (aligned int64
  arrays, missing values left out, a positive total on each side). ``on_distinct_values`` and
  ``on_reference_deciles`` turn one into a numeric function too.

Both return an :class:`Outcome`. Adding a test: write its function and register it, here or in
any module imported before the config is loaded; config validation and ``detect_drift`` look
names up here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ctpipe.config import DriftConfig
from ctpipe.drift.columns import counts_at, runs
from ctpipe.drift.stats import (
    chisquare_counts,
    decile_counts,
    jensenshannon_counts,
    ks_2samp_sorted,
    psi_counts,
    wasserstein_sorted,
)
from ctpipe.registries import Registry

KINDS = ("numeric", "categorical")


@dataclass(frozen=True)
class Outcome:
    """What a test found on one column.

    ``threshold`` and ``drifted`` are for a test that decides itself in some case (Wasserstein
    on a constant reference): they replace the entry's threshold and decision rule, and the
    report then adds no explanation of its own to ``note``.
    """

    statistic: float
    p_value: float | None = None
    note: str = ""
    threshold: float | None = None
    drifted: bool | None = None


NumericFn = Callable[[np.ndarray, np.ndarray, Callable[[], float]], Outcome]
CountsFn = Callable[[np.ndarray, np.ndarray], Outcome]


@dataclass(frozen=True)
class StatTest:
    name: str
    decision: Literal["p_value", "statistic"]
    threshold: float | str  # a number, or the DriftConfig setting that holds it
    numeric: NumericFn | None = None  # None: not for numeric columns
    categorical: CountsFn | None = None  # None: not for categorical columns

    def __post_init__(self) -> None:
        if not self.name or self.name == "auto":
            raise ValueError(f"drift test name {self.name!r} is not allowed")
        if self.decision not in ("p_value", "statistic"):
            raise ValueError(f"drift test {self.name!r}: decision must be 'p_value' or "
                             f"'statistic', got {self.decision!r}")
        if isinstance(self.threshold, str):
            if self.threshold not in DriftConfig.model_fields:
                raise ValueError(f"drift test {self.name!r}: threshold {self.threshold!r} is "
                                 "not a DriftConfig setting")
        elif not math.isfinite(self.threshold):
            raise ValueError(f"drift test {self.name!r}: threshold must be finite")
        if self.numeric is None and self.categorical is None:
            raise ValueError(f"drift test {self.name!r} needs a numeric or a categorical function")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The column kinds the test applies to."""
        return tuple(k for k in KINDS if getattr(self, k) is not None)

    def threshold_for(self, config: DriftConfig) -> float:
        if isinstance(self.threshold, str):
            return getattr(config, self.threshold)
        return self.threshold

    def is_drifted(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        if self.decision == "p_value":
            return p_value is not None and p_value < threshold
        return bool(statistic >= threshold)


STATTESTS: Registry[StatTest] = Registry(
    "drift test", lambda t: t.kinds,
    lambda name, t, kind: (f"drift test {name!r} does not apply to {kind} columns; tests for "
                           f"{kind} columns: {', '.join(STATTESTS.names(kind))}"))
"""Registered tests by name, in registration order; add with :func:`register_stattest`."""

AUTO_TESTS = {"numeric": ("ks", "wasserstein"), "categorical": ("chisquare", "jensenshannon")}
"""The ``auto`` policy per kind: (at most ``small_reference_rows`` reference values, above)."""


def register_stattest(test: StatTest, *, replace: bool = False) -> StatTest:
    return STATTESTS.register(test.name, test, replace=replace)


def stattest_names(kind: str | None = None) -> list[str]:
    return STATTESTS.names(kind)


def get_stattest(name: str, kind: str | None = None) -> StatTest:
    """The registered test ``name``; with ``kind``, refuse a test that does not apply to it."""
    return STATTESTS.lookup(name, kind)


def choose_test(column: str, kind: str, n_reference: int, config: DriftConfig) -> StatTest:
    """The test for one column: ``per_feature``, else the kind's setting, ``auto`` resolved."""
    if column in config.per_feature:
        name = config.per_feature[column]
    else:
        name = config.numeric_test if kind == "numeric" else config.categorical_test
        if name == "auto":
            small, large = AUTO_TESTS[kind]
            name = small if n_reference <= config.small_reference_rows else large
    test = get_stattest(name)
    if kind not in test.kinds:
        raise ValueError(f"drift test {name!r} does not apply to {kind} feature {column!r} "
                         f"(allowed: {', '.join(stattest_names(kind))})")
    return test


def join_notes(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# --------------------------------------------------------------------------- adapters


def on_distinct_values(fn: CountsFn) -> NumericFn:
    """A numeric column as counts per distinct value (codes, flags, rounded amounts)."""
    def numeric(ref: np.ndarray, cur: np.ndarray, reference_std: Callable[[], float]) -> Outcome:
        keys_ref, counts_ref = runs(ref)
        keys_cur, counts_cur = runs(cur)
        keys = np.union1d(keys_ref, keys_cur)
        return fn(counts_at(keys, keys_ref, counts_ref), counts_at(keys, keys_cur, counts_cur))
    return numeric


def on_reference_deciles(fn: CountsFn) -> NumericFn:
    """A numeric column as counts in bins cut at the reference deciles."""
    def numeric(ref: np.ndarray, cur: np.ndarray, reference_std: Callable[[], float]) -> Outcome:
        return fn(*decile_counts(ref, cur))
    return numeric


# --------------------------------------------------------------------------- built-in tests


def _ks(ref: np.ndarray, cur: np.ndarray, reference_std: Callable[[], float]) -> Outcome:
    statistic, p_value = ks_2samp_sorted(ref, cur)
    return Outcome(statistic, p_value)


def _wasserstein(ref: np.ndarray, cur: np.ndarray,
                 reference_std: Callable[[], float]) -> Outcome:
    """Normalised by the reference std; a constant reference has no scale (module docs)."""
    raw = wasserstein_sorted(ref, cur)
    scale = reference_std()  # once per profile, not per check
    if scale != 0.0:
        return Outcome(raw / scale)
    # Constant reference (or a variance that underflows): raw distance, drifted iff > 0.
    what = (f"constant reference column ({ref[0]:.6g})" if ref[0] == ref[-1]
            else "reference std underflows to 0")
    note = f"{what}: raw distance, drifted iff > 0"
    if raw > 0 and ref[0] == ref[-1]:
        same = np.searchsorted(cur, ref[0], "right") - np.searchsorted(cur, ref[0])
        note = join_notes(note, f"{1 - same / cur.size:.2%} of current values differ")
    return Outcome(raw, note=note, threshold=0.0, drifted=raw > 0.0)


def _chisquare(f_ref: np.ndarray, f_cur: np.ndarray) -> Outcome:
    statistic, p_value, note = chisquare_counts(f_ref, f_cur)
    return Outcome(statistic, p_value, note)


def _jensenshannon(f_ref: np.ndarray, f_cur: np.ndarray) -> Outcome:
    return Outcome(jensenshannon_counts(f_ref, f_cur))


def _psi(f_ref: np.ndarray, f_cur: np.ndarray) -> Outcome:
    return Outcome(psi_counts(f_ref, f_cur))


register_stattest(StatTest("ks", decision="p_value", threshold="p_value", numeric=_ks))
register_stattest(StatTest("wasserstein", decision="statistic", threshold="distance_threshold",
                           numeric=_wasserstein))
register_stattest(StatTest("chisquare", decision="p_value", threshold="p_value",
                           numeric=on_distinct_values(_chisquare), categorical=_chisquare))
register_stattest(StatTest("jensenshannon", decision="statistic", threshold="distance_threshold",
                           numeric=on_reference_deciles(_jensenshannon),
                           categorical=_jensenshannon))
register_stattest(StatTest("psi", decision="statistic", threshold="psi_threshold",
                           numeric=on_reference_deciles(_psi), categorical=_psi))
