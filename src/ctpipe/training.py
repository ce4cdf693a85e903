"""Retraining: a time-ordered split of the labelled window and a LightGBM fit on raw rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
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
    train: list[dt.date]
    holdout: list[dt.date]


def split_window(labelled: list[dt.date], config: UseCaseConfig) -> WindowSplit:
    """The newest ``window`` labelled batches, the most recent ``holdout`` of them held out."""
    window, holdout = config.training.window, config.training.holdout
    if len(labelled) < window:
        raise NotEnoughData(
            f"{len(labelled)} labelled batches, the training window needs {window}"
        )
    recent = sorted(labelled)[-window:]
    return WindowSplit(train=recent[:-holdout], holdout=recent[-holdout:])


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
        return np.asarray(self.booster.predict(self.spec.transform(raw)), dtype="float64")


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
    features = spec.transform(train_frame)
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
