"""Batch scoring with the champion: every prediction carries the model version that made it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ctpipe import landing
from ctpipe.registry import LoadedVersion
from ctpipe.workspace import Workspace


@dataclass(frozen=True)
class ScoredBatch:
    path: Path
    rows: int
    model: str
    version: int
    mean_prediction: float


def predictions_path(ws: Workspace, day: dt.date) -> Path:
    return ws.root / "predictions" / ws.name / f"{day.isoformat()}.parquet"


def score_batch(ws: Workspace, day: dt.date, batch: pd.DataFrame,
                champion: LoadedVersion) -> ScoredBatch:
    """Score a validated batch and write it atomically with the lineage of each prediction.

    The id column, the model name, version and artifact sha256 go beside each prediction so
    an auditor can trace any production score back to the exact registered model.
    """
    cfg = ws.config
    predictions = champion.model.predict(batch)
    if not np.isfinite(predictions).all():
        bad = int((~np.isfinite(predictions)).sum())
        raise ValueError(f"{ws.model_name} v{champion.info.version}: {bad} non-finite "
                         f"predictions on batch {day}; nothing written")
    out = pd.DataFrame({
        cfg.data.time_column: batch[cfg.data.time_column].to_numpy(),
        "prediction": predictions,
    })
    if cfg.data.id_column:
        out.insert(0, cfg.data.id_column, batch[cfg.data.id_column].to_numpy())
    out["model_name"] = ws.model_name
    out["model_version"] = champion.info.version
    out["artifact_sha256"] = champion.info.tags.get("artifact_sha256", "")
    out["scored_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path = predictions_path(ws, day)
    landing.write_parquet_atomic(out, path)
    return ScoredBatch(path, len(out), ws.model_name, champion.info.version,
                       float(predictions.mean()) if len(predictions) else float("nan"))
