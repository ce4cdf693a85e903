"""The landing zone: one Parquet file per batch, and its labels in a separate file.

Layout under a use case's landing folder::

    batches/<batch-date>.parquet   the rows to score (no target column)
    labels/<batch-date>.parquet    the target for the same rows, same order (+ the id column)

A batch's labels count as arrived ``label_delay`` batches after it, so a replay sees exactly
what production would have seen on each day.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ctpipe.batch_reader import DATA_SUFFIXES, read_batch_file
from ctpipe.config import UseCaseConfig

BATCH_KEY = "__batch_date__"


def batch_path(landing: Path, day: dt.date) -> Path:
    return landing / "batches" / f"{day.isoformat()}.parquet"


def labels_path(landing: Path, day: dt.date) -> Path:
    return landing / "labels" / f"{day.isoformat()}.parquet"


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_batch(landing: Path, config: UseCaseConfig, day: dt.date, frame: pd.DataFrame) -> None:
    """Split a labelled frame into the batch file and its labels file."""
    target = config.data.target
    if target not in frame.columns:
        raise ValueError(f"batch {day}: target column {target!r} is missing")
    label_cols = [c for c in (config.data.id_column, target) if c]
    write_parquet_atomic(frame.drop(columns=[target]), batch_path(landing, day))
    write_parquet_atomic(frame[label_cols], labels_path(landing, day))


def batch_dates(landing: Path) -> list[dt.date]:
    folder = landing / "batches"
    if not folder.is_dir():
        return []
    return sorted(dt.date.fromisoformat(p.stem) for p in folder.glob("*.parquet"))


def labelled_dates(landing: Path, config: UseCaseConfig, as_of: dt.date) -> list[dt.date]:
    """Batches whose labels have arrived by ``as_of`` (label_delay counted in batches)."""
    dates = [d for d in batch_dates(landing) if d <= as_of]
    cutoff = len(dates) - config.data.label_delay
    return [d for d in dates[: max(cutoff, 0)] if labels_path(landing, d).is_file()]


def row_count(path: Path) -> int:
    """Rows in a Parquet file, from its footer: no data is read."""
    return pq.ParquetFile(path).metadata.num_rows


def load_labelled(landing: Path, config: UseCaseConfig, dates: Iterable[dt.date]) -> pd.DataFrame:
    """Batches joined with their labels (row order is the join key), tagged with their date."""
    frames = []
    for day in dates:
        batch = pd.read_parquet(batch_path(landing, day))
        labels = pd.read_parquet(labels_path(landing, day))
        if len(labels) != len(batch):
            raise ValueError(
                f"{labels_path(landing, day)}: {len(labels)} labels for {len(batch)} batch rows"
            )
        id_col = config.data.id_column
        if id_col and not batch[id_col].reset_index(drop=True).equals(
            labels[id_col].reset_index(drop=True)
        ):
            raise ValueError(f"{labels_path(landing, day)}: ids do not match the batch's rows")
        batch[config.data.target] = labels[config.data.target].to_numpy()
        batch[BATCH_KEY] = day.isoformat()
        frames.append(batch)
    if not frames:
        raise ValueError("no labelled batches to load")
    return pd.concat(frames, ignore_index=True)


_PERIOD = {"daily": "D", "weekly": "W-SUN", "monthly": "M"}


def split_into_batches(frame: pd.DataFrame, config: UseCaseConfig) -> dict[dt.date, pd.DataFrame]:
    """Cut a history into batches by the config's frequency; a batch is named by its first day."""
    time_col = config.data.time_column
    if time_col not in frame.columns:
        raise ValueError(f"time column {time_col!r} not found; columns are {list(frame.columns)}")
    times = pd.to_datetime(frame[time_col], errors="coerce")
    bad = int(times.isna().sum())
    if bad:
        raise ValueError(f"time column {time_col!r}: {bad} values are not dates")
    starts = times.dt.to_period(_PERIOD[config.data.batch_frequency]).dt.start_time.dt.date
    frame = frame.assign(**{time_col: times})
    return {day: part.reset_index(drop=True) for day, part in frame.groupby(starts.to_numpy())}


def read_source(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    """A user's labelled history: one Parquet/CSV file or a folder of them, concatenated.

    Each file is read by batch_reader.read_batch_file, with the same Parquet and CSV rules as a
    batch; a file that cannot be read raises its BatchReadError (a ValueError naming the file).
    In a folder, its .parquet, .pq and .csv files are read, in name order.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: source not found")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in DATA_SUFFIXES)
    else:
        files = [path]  # a file named on its own is read whatever its suffix, as a batch is
    if not files:
        raise ValueError(f"{path}: no .parquet or .csv files found")
    return pd.concat([read_batch_file(p, config) for p in files], ignore_index=True)
