"""The drift check and its report: a reference profile against a new batch, feature by feature."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ctpipe.config import DriftConfig
from ctpipe.drift.columns import (
    NULL_KEY,
    aligned_counts,
    category_counts,
    require_columns,
    sorted_finite,
)
from ctpipe.drift.profile import ReferenceProfile, build_profile
from ctpipe.drift.results import (
    SEASONAL_CONFIRMED,
    SEASONAL_EXPLAINED,
    SEASONAL_UNAVAILABLE,
    DriftReport,
    FeatureDrift,
)
from ctpipe.drift.stattests import Outcome, StatTest, choose_test, join_notes
from ctpipe.drift.training_spread import within_training_spread
from ctpipe.drift.window import (
    compare_windows,
    is_batch_constant_categorical,
    is_batch_constant_numeric,
    min_window_batches,
    window_drift,
)

__all__ = ["DriftReport", "FeatureDrift", "detect_drift", "performance_drift"]


def detect_drift(reference: ReferenceProfile, current: pd.DataFrame, config: DriftConfig,
                 history: Sequence[pd.DataFrame] | None = None, *,
                 season_known: bool = True,
                 training: Sequence[pd.DataFrame] | None = None) -> DriftReport:
    """Compare every profiled feature of ``current`` with the reference profile.

    ``history``: the batches before ``current``, oldest first. It is only indexed from the end,
    one batch at a time, so a lazy sequence reads just the batches needed. With it, a feature
    constant within the batch is judged over ``drift.constant_window`` batches
    (:mod:`~ctpipe.drift.window`) and ``drift.seasonal_period`` applies. Without it (None),
    every feature is judged on this batch alone. ``season_known`` False: the batch one cycle
    earlier is newer than the reference (the model never saw it), so it cannot explain a
    change away: a lasting shift would otherwise stop counting once a cycle has passed.
    ``training``: the champion's training batches; with ``drift.training_spread`` a drifted
    row-level feature counts only beyond their spread (:mod:`~ctpipe.drift.training_spread`).
    """
    features = reference.features
    for field, names in (("per_feature", config.per_feature), ("exclude", config.exclude),
                         ("weights", config.weights)):
        unknown = sorted(set(names) - set(features))
        if unknown:
            raise ValueError(f"drift.{field} names columns missing from the reference profile: "
                             f"{unknown}")
    require_columns(current, features, "current batch")

    # Choose every test before computing anything, so a bad config fails fast.
    plan: list[tuple[str, str, StatTest]] = []
    for name, values in reference.numeric.items():
        plan.append((name, "numeric", choose_test(name, "numeric", values.size, config)))
    for name, counts in reference.categorical.items():
        n_ref = sum(v for k, v in counts.items() if k != NULL_KEY)
        plan.append((name, "categorical", choose_test(name, "categorical", n_ref, config)))

    # One sort buffer for every numeric column: each column's sorted values are only needed
    # until its statistic is computed, and reusing the memory avoids re-faulting fresh pages.
    buffer = np.empty(len(current) if reference.numeric else 0, dtype=np.float64)
    results: list[FeatureDrift] = []
    constant: list[int] = []  # features with one distinct value in this batch
    for name, kind, test in plan:
        if kind == "numeric":
            result, flat = _numeric_drift(name, test, reference.numeric[name],
                                          reference.numeric_nan[name], current[name], config,
                                          reference.reference_std, buffer)
        else:
            result, flat = _categorical_drift(name, test, reference.categorical[name],
                                              current[name], config)
        if flat:
            constant.append(len(results))
        results.append(result)

    windows: dict[str, list[pd.Series]] = {}
    if history is not None and config.constant_window and constant:
        for i in constant:
            r = results[i]
            windows[r.feature] = _columns(history, len(history) - config.constant_window + 1,
                                          len(history), r.feature) + [current[r.feature]]
            results[i] = window_drift(r.feature, r.kind, reference, windows[r.feature], config,
                                      r.nan_current)
    if config.exclude or config.weights:
        excluded = set(config.exclude)
        results = [replace(r, weight=0.0, excluded=True) if r.feature in excluded
                   else replace(r, weight=float(config.weights[r.feature]))
                   if r.feature in config.weights else r for r in results]
    if training is not None and config.training_spread:
        results = within_training_spread(results, reference, current, training)
    if history is not None and config.seasonal_period:
        results = _seasonal_check(reference, current, config, history, results, windows,
                                  season_known)

    total = sum(r.weight for r in results if r.in_share)
    share = sum(r.weight for r in results if r.in_share and r.drifted) / total if total else 0.0
    return DriftReport(features=results, drift_share=share, threshold_share=config.drift_share,
                       dataset_drift=total > 0 and share >= config.drift_share)


def _columns(history: Sequence[pd.DataFrame], start: int, stop: int,
             name: str) -> list[pd.Series]:
    """Column ``name`` of ``history[start:stop]`` (clipped at 0), read by index one by one."""
    out = []
    for i in range(max(0, start), stop):
        batch = history[i]
        require_columns(batch, [name], f"earlier batch {i - len(history)}")
        out.append(batch[name])
    return out


def _seasonal_check(reference: ReferenceProfile, current: pd.DataFrame, config: DriftConfig,
                    history: Sequence[pd.DataFrame], results: list[FeatureDrift],
                    windows: dict[str, list[pd.Series]],
                    season_known: bool = True) -> list[FeatureDrift]:
    """Drifted against training and against the same period one cycle earlier, or not counted.

    The earlier period is the batch ``seasonal_period`` batches back (a windowed feature: the
    window ending there). Only counted, drifted features are checked: the rest cannot change.
    """
    period = int(config.seasonal_period or 0)
    back = len(history) - period  # index of the batch one cycle earlier
    where = f"one cycle earlier ({period} batch{'' if period == 1 else 'es'} back)"
    out = list(results)
    todo = [i for i, r in enumerate(results) if r.drifted and r.in_share]
    if back < 0 or not season_known:
        why = f"no batch {where}" if back < 0 else \
            f"the batch {where} is newer than the reference's data"
        for i in todo:
            out[i] = replace(out[i], seasonal=SEASONAL_UNAVAILABLE, note=join_notes(
                out[i].note, f"{why}: judged against training alone"))
        return out
    again: dict[str, FeatureDrift] = {}
    plain = [results[i].feature for i in todo if not results[i].window]
    if plain:
        earlier = history[back]
        require_columns(earlier, plain, f"batch {where}")
        sub = build_profile(earlier, [n for n in plain if n in reference.numeric],
                            [n for n in plain if n in reference.categorical])
        sub_config = config.model_copy(update={
            "exclude": [], "weights": {}, "seasonal_period": None,
            "per_feature": {k: v for k, v in config.per_feature.items() if k in plain}})
        again = {f.feature: f for f in detect_drift(sub, current[plain], sub_config).features}
    for i in todo:
        r = results[i]
        if r.window:
            window = int(config.constant_window or 1)
            earlier_cols = _columns(history, back - window + 1, back + 1, r.feature)
            found = compare_windows(r.kind, r.feature, earlier_cols, windows[r.feature])
            if found is None or len(earlier_cols) < min_window_batches(window):
                statistic, p, drifted, test = math.nan, None, True, r.test
            else:
                statistic, p = found
                drifted, test = p < config.p_value, r.test
            against = f"the {window} batches ending {where}"
        else:
            f = again[r.feature]
            statistic, p, drifted, test = f.statistic, f.p_value, f.drifted, f.test
            if not f.tested:
                statistic, drifted = math.nan, True
            against = f"the batch {where}"
        shown = f"{test} " + (f"p={p:.3g}" if p is not None else f"{statistic:.4g}")
        if math.isnan(statistic):
            out[i] = replace(r, seasonal=SEASONAL_UNAVAILABLE, note=join_notes(
                r.note, f"not testable against {against}: judged against training alone"))
        elif drifted:
            out[i] = replace(r, seasonal=SEASONAL_CONFIRMED,
                             reference=f"{r.reference} and {against}",
                             note=join_notes(r.note, f"also drifted against {against} ({shown})"))
        else:
            out[i] = replace(r, seasonal=SEASONAL_EXPLAINED, drifted=False,
                             reference=f"{r.reference} and {against}",
                             note=join_notes(r.note, f"not counted: drifted against training, "
                                             f"not against {against} ({shown}): the season"))
    return out


def performance_drift(baseline: float, current: float, *, higher_is_better: bool,
                      tolerance: float) -> tuple[bool, float]:
    """Relative degradation of ``current`` versus ``baseline`` (positive = worse).

    Relative to ``|baseline|`` so the sign keeps its meaning for negative metrics; a zero
    baseline gives an infinite degradation for any worsening. Drifted when > ``tolerance``.
    """
    if not (math.isfinite(baseline) and math.isfinite(current)):
        raise ValueError(f"performance_drift needs finite metrics, got baseline={baseline!r}, "
                         f"current={current!r}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    worse = (baseline - current) if higher_is_better else (current - baseline)
    if baseline == 0:
        degradation = 0.0 if worse == 0 else math.copysign(math.inf, worse)
    else:
        degradation = worse / abs(baseline)
    return degradation > tolerance, float(degradation)


def _numeric_drift(name: str, test: StatTest, ref: np.ndarray, nan_ref: int, series: pd.Series,
                   config: DriftConfig, reference_std: Callable[[str], float],
                   buffer: np.ndarray) -> tuple[FeatureDrift, bool]:
    cur, nan_cur = sorted_finite(series, name, buffer)
    base = dict(feature=name, kind="numeric", test=test.name, threshold=test.threshold_for(config),
                n_reference=int(ref.size), n_current=int(cur.size), nan_reference=int(nan_ref),
                nan_current=int(nan_cur))
    empty = _empty_note(ref.size, cur.size)
    if empty:
        return FeatureDrift(statistic=math.nan, drifted=False, p_value=None, note=empty,
                            **base), False
    assert test.numeric is not None  # choose_test checked the kind
    outcome = test.numeric(ref, cur, lambda: reference_std(name))
    # Checked before the buffer holding `cur` is reused for the next column.
    return (_feature_drift(test, outcome, base, "", lambda: _median_note(ref, cur)),
            is_batch_constant_numeric(cur))


def _categorical_drift(name: str, test: StatTest, ref_counts: Mapping[str, int],
                       series: pd.Series, config: DriftConfig) -> tuple[FeatureDrift, bool]:
    cur_counts = category_counts(series)
    nan_ref = ref_counts.get(NULL_KEY, 0)
    nan_cur = cur_counts.get(NULL_KEY, 0)
    keys, f_ref, f_cur = aligned_counts(ref_counts, cur_counts)
    n_ref, n_cur = int(f_ref.sum()), int(f_cur.sum())
    base = dict(feature=name, kind="categorical", test=test.name,
                threshold=test.threshold_for(config), n_reference=n_ref, n_current=n_cur,
                nan_reference=int(nan_ref), nan_current=int(nan_cur))
    empty = _empty_note(n_ref, n_cur)
    if empty:
        return FeatureDrift(statistic=math.nan, drifted=False, p_value=None, note=empty,
                            **base), False
    assert test.categorical is not None  # choose_test checked the kind
    outcome = test.categorical(f_ref, f_cur)
    unseen = [k for k, r, c in zip(keys, f_ref, f_cur, strict=True) if r == 0 and c > 0]
    unseen_note = ""
    if unseen:
        shown = ", ".join(repr(k) for k in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
        noun = "category" if len(unseen) == 1 else "categories"
        unseen_note = f"{len(unseen)} {noun} not in reference: {shown}"

    def largest_shift() -> str:
        share_ref, share_cur = f_ref / n_ref, f_cur / n_cur
        k = int(np.argmax(np.abs(share_cur - share_ref)))
        return f"largest shift {keys[k]!r}: {share_ref[k]:.1%} -> {share_cur[k]:.1%}"

    return (_feature_drift(test, outcome, base, unseen_note, largest_shift),
            is_batch_constant_categorical(cur_counts))


def _feature_drift(test: StatTest, outcome: Outcome, base: dict[str, Any], remark: str,
                   explain: Callable[[], str]) -> FeatureDrift:
    """Apply the test's decision rule (unless it decided itself) and explain a drifted column."""
    note = join_notes(outcome.note, remark)
    if outcome.threshold is not None:
        base["threshold"] = outcome.threshold
    if outcome.drifted is not None:
        drifted = bool(outcome.drifted)
    else:
        drifted = test.is_drifted(outcome.statistic, outcome.p_value, base["threshold"])
        if drifted:
            note = join_notes(note, explain())
    return FeatureDrift(statistic=float(outcome.statistic), drifted=drifted,
                        p_value=outcome.p_value, note=note, **base)


def _empty_note(n_ref: int, n_cur: int) -> str:
    if n_ref == 0 and n_cur == 0:
        return "not tested: no values on either side (all missing)"
    if n_ref == 0:
        return "not tested: empty reference column (all missing)"
    if n_cur == 0:
        return "not tested: empty current column (all missing)"
    return ""


def _median_note(ref: np.ndarray, cur: np.ndarray) -> str:
    return f"median {_median(ref):.4g} -> {_median(cur):.4g}"


def _median(values: np.ndarray) -> float:
    mid = values.size // 2  # sorted already: O(1)
    return float(values[mid]) if values.size % 2 else float((values[mid - 1] + values[mid]) / 2)

