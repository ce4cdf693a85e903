"""Batch scoring with the champion: every prediction carries the model version that made it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.lineage import LoadedVersion


def score_frame(config: UseCaseConfig, model_name: str, day: dt.date | None,
                batch: pd.DataFrame, champion: LoadedVersion) -> pd.DataFrame:
    """Predictions for a validated batch, each with the lineage of the model that made it.

    The id column, the model name, version and artifact sha256 go beside each prediction so
    an auditor can trace any production score back to the exact registered model.
    """
    predictions = champion.model.predict(batch)
    if not np.isfinite(predictions).all():
        bad = int((~np.isfinite(predictions)).sum())
        where = f"batch {day}" if day else "the input"
        raise ValueError(f"{model_name} v{champion.info.version}: {bad} non-finite "
                         f"predictions on {where}; nothing written")
    out = pd.DataFrame({
        config.data.time_column: batch[config.data.time_column].to_numpy(),
        "score": predictions,
    })
    if config.data.id_column:
        out.insert(0, config.data.id_column, batch[config.data.id_column].to_numpy())
    out["model_name"] = model_name
    out["model_version"] = champion.info.version
    out["artifact_sha256"] = champion.info.lineage.artifact_sha256 or ""
    out["scored_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return out
