"""Retraining: a time-ordered split of the labelled window and a LightGBM fit on raw rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.estimate import Calibration
from ctpipe.features import FeatureSpec, fit_feature_spec
from ctpipe.landing import BATCH_KEY


class NotEnoughData(ValueError):
    """The labelled history cannot support a training run yet."""


@dataclass(frozen=True)
class WindowSplit:
    """Which labelled batches train and which are held out. A batch in ``shared`` is in both:
    ``share`` of its rows are held out (``held_out``), the rest train."""

    train: list[dt.date]
    holdout: list[dt.date]
    shared: tuple[dt.date, ...] = ()
    share: float = 0.0

    @property
    def batches(self) -> list[dt.date]:
        """Every batch of the window, oldest first."""
        return sorted({*self.train, *self.holdout})

    def held_out(self, frame: pd.DataFrame, time_column: str, seed: int) -> np.ndarray:
        """Which rows of ``frame`` (these batches' rows, with their ``BATCH_KEY``) are held
        out: every row of a held-out batch, and ``share`` of each shared batch's rows. Those
        are its latest rows by ``time_column`` when its times differ: rows close in time
        (a sensor's readings minutes apart) are near copies of each other, and a random half
        would judge the challenger on what it trained on. When they are all equal (a daily
        batch stamped with its date), a seeded random share. The same on every read."""
        keys = frame[BATCH_KEY].astype("str").to_numpy()
        held = np.isin(keys, [d.isoformat() for d in self.holdout if d not in self.shared])
        for day in self.shared:
            rows = np.flatnonzero(keys == day.isoformat())
            count = round(self.share * len(rows))
            times = frame[time_column].iloc[rows]
            if times.nunique() > 1:
                latest = np.argsort(times.to_numpy(), kind="stable")[len(rows) - count:]
            else:
                latest = np.random.default_rng([seed, day.toordinal()]).permutation(
                    len(rows))[:count]
            held[rows[latest]] = True
        return held


def split_window(labelled: list[dt.date], config: UseCaseConfig) -> WindowSplit:
    """The newest ``window`` labelled batches, the most recent ``holdout`` of them held out."""
    window, holdout = config.training.window, config.training.holdout
    if len(labelled) < window:
        raise NotEnoughData(
            f"{len(labelled)} labelled batch{'' if len(labelled) == 1 else 'es'}, the "
            f"training window needs {window}"
        )
    recent = sorted(labelled)[-window:]
    return WindowSplit(train=recent[:-holdout], holdout=recent[-holdout:])


def split_for_change(labelled: list[dt.date], config: UseCaseConfig, onset: dt.date | None,
                     *, label_rows: Callable[[list[dt.date]], int]) -> WindowSplit:
    """``split_window`` for a challenger learning the change since ``onset`` (None: no change).

    Whole held-out batches would keep the change's first ``holdout`` labelled batches out of
    training: the challenger would learn the new regime that much later. While the training
    part would hold fewer than ``training.min_batches_after_drift`` (at least 1) of them, every
    labelled batch from ``onset`` is shared instead (``training.row_holdout_after_drift`` of
    its rows held out, the rest trained on) and the older batches all train: the holdout is
    the new regime, where the challenger must serve. Only when that holdout has the labelled
    rows (``label_rows`` counts them) that ``drift.min_performance_rows`` asks to judge a
    metric: a few held-out rows of a small batch would let noise pick the champion.
    """
    split = split_window(labelled, config)
    share = config.training.row_holdout_after_drift
    needed = max(config.training.min_batches_after_drift, 1)
    if onset is None or share is None or sum(d >= onset for d in split.train) >= needed:
        return split
    new = [d for d in split.batches if d >= onset]
    if not new or share * label_rows(new) < config.drift.min_performance_rows:
        return split
    return WindowSplit(train=split.batches, holdout=new, shared=tuple(new), share=share)


@dataclass
class ScoringModel:
    """What gets registered: feature derivation + the booster, scoring raw batch rows.

    ``calibration`` (binary only) maps the booster's scores to calibrated probabilities for the
    label-free estimate (ctpipe.estimate); fitted on the holdout at the gate, so a freshly
    trained model has none until then, and neither do regression models or versions
    registered before calibrations were stored. Scoring never uses it: scores stay raw.
    """

    spec: FeatureSpec
    booster: lgb.Booster
    calibration: Calibration | None = None

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        # Booster.predict gives the positive-class probability for binary objectives.
        return np.asarray(self.booster.predict(self.spec.model_input(raw)), dtype="float64")

    @property
    def splits(self) -> int:
        """Splits over all trees: 0 means one value for every row, whatever the features (too
        few rows for LightGBM's min_child_samples, or nothing to learn from)."""
        return int(self.booster.feature_importance("split").sum())


def recency_weights(batch_keys: pd.Series, half_life: float | None) -> np.ndarray | None:
    if half_life is None:
        return None
    order = {key: i for i, key in enumerate(sorted(batch_keys.unique()))}
    age = (len(order) - 1) - batch_keys.map(order).to_numpy(dtype="float64")
    return np.power(0.5, age / half_life)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the training rows' content (order-sensitive), independent of file layout."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _progress_callback(report: Callable[[float], None], steps: int = 10):
    """A LightGBM callback calling ``report(percent)`` about ``steps`` times over the fit."""
    def callback(env) -> None:  # noqa: ANN001  (lightgbm.callback.CallbackEnv)
        total = max(env.end_iteration - env.begin_iteration, 1)
        done = env.iteration - env.begin_iteration + 1
        if done == total or done % max(total // steps, 1) == 0:
            report(100.0 * done / total)
    return callback


def sample_weights(batch_keys: pd.Series, config: UseCaseConfig,
                   emphasis_from: str | None = None) -> np.ndarray | None:
    """Recency weights, times ``training.drift_emphasis`` for batches from ``emphasis_from``
    (a drift's onset, ISO date) on; None when every row weighs the same."""
    weights = recency_weights(batch_keys, config.training.recency_half_life)
    factor = config.training.drift_emphasis
    if emphasis_from is None or factor == 1.0:
        return weights
    emphasised = (batch_keys.astype("str") >= emphasis_from).to_numpy()
    if not emphasised.any():
        return weights
    base = np.ones(len(batch_keys)) if weights is None else weights
    return np.where(emphasised, base * factor, base)


# LightGBM's names for the fewest rows a leaf may hold, and its default.
_LEAF_ROWS_NAMES = ("min_child_samples", "min_data_in_leaf", "min_data_per_leaf", "min_data",
                    "min_samples_leaf")
_LEAF_ROWS_DEFAULT = 20


def leaf_rows(params: Mapping[str, object]) -> tuple[str, int]:
    """The fewest training rows a leaf may hold under ``training.params``, with the name it is
    set by (LightGBM's default when none is set): a first split needs twice as many."""
    for name in _LEAF_ROWS_NAMES:
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return name, int(value)
    return "min_child_samples", _LEAF_ROWS_DEFAULT


def train_model(config: UseCaseConfig, train_frame: pd.DataFrame,
                progress: Callable[[float], None] | None = None,
                emphasis_from: str | None = None) -> ScoringModel:
    """Fit on the window; ``progress(percent)`` is called every tenth of the boosting rounds;
    rows of batches from ``emphasis_from`` on weigh more (``sample_weights``)."""
    target = config.data.target
    if len(train_frame) < config.training.min_train_rows:
        raise NotEnoughData(
            f"{len(train_frame)} training rows, training.min_train_rows is "
            f"{config.training.min_train_rows}"
        )
    spec = fit_feature_spec(config, train_frame)
    features = spec.model_input(train_frame)
    y = train_frame[target].to_numpy(dtype="float64")
    # Threads only pay off on large windows; on small ones OpenMP spin-waits cost more.
    threads = 1 if len(train_frame) < 100_000 else min(2, os.cpu_count() or 1)
    params = {"n_estimators": 200, "learning_rate": 0.05, "verbose": -1,
              "random_state": config.training.seed, "n_jobs": threads, **config.training.params}
    estimator = lgb.LGBMClassifier(**params) if config.data.task == "binary" \
        else lgb.LGBMRegressor(**params)
    estimator.fit(features, y, sample_weight=sample_weights(
        train_frame[BATCH_KEY], config, emphasis_from),
        callbacks=[_progress_callback(progress)] if progress else None)
    return ScoringModel(spec=spec, booster=estimator.booster_)
