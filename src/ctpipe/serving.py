"""The pyfunc wrapper MLflow serves: raw batch rows in, predictions (fraud probability) out."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import pandas as pd

from ctpipe.estimate import Calibration
from ctpipe.features import FeatureSpec
from ctpipe.training import ScoringModel

# Logged as "model from code": MLflow stores this file's path, not a pickled object.
ENTRY_POINT = Path(__file__).with_name("pyfunc_entry.py")


def load_scoring_model(booster_path: Path, features_path: Path,
                       calibration_path: Path | None = None) -> ScoringModel:
    """The model from its files; no calibration when ``calibration_path`` is None or absent
    (regression, or a version registered before calibrations were stored)."""
    calibration = None
    if calibration_path is not None and calibration_path.is_file():
        calibration = Calibration.from_json(calibration_path.read_text(encoding="utf-8"))
    return ScoringModel(
        spec=FeatureSpec.from_json(features_path.read_text(encoding="utf-8")),
        booster=lgb.Booster(model_file=str(booster_path)),
        calibration=calibration,
    )


class ScoringPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        # The calibration loads with the model, but predict returns raw scores regardless.
        calibration = context.artifacts.get("calibration")
        self._model = load_scoring_model(Path(context.artifacts["booster"]),
                                         Path(context.artifacts["features"]),
                                         Path(calibration) if calibration else None)

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ANN001
        return self._model.predict(model_input)
