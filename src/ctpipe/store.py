"""What ctpipe reads and writes besides the registry, behind one interface.

``Store`` is what the steps ask for batches, labels, quarantine, cycle records and
predictions. ``LandingZoneStore`` is today's implementation on disk (the landing zone and the
folders beside it); a database-backed store implements the same methods. Tests of the core use
an in-memory one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from ctpipe import landing
from ctpipe.batch_reader import read_batch_file
from ctpipe.config import UseCaseConfig
from ctpipe.records import CycleRecord


class Store(Protocol):
    def batch_dates(self) -> list[dt.date]: ...
    def batch_source(self, day: dt.date) -> str: ...
    def read_batch(self, day: dt.date) -> pd.DataFrame: ...
    def row_counts(self, days: list[dt.date]) -> list[int]: ...
    def labelled_dates(self, as_of: dt.date) -> list[dt.date]: ...
    def read_labelled(self, dates: list[dt.date]) -> pd.DataFrame: ...
    def label_rows(self, dates: list[dt.date]) -> int: ...
    def quarantine(self, day: dt.date, evidence: dict[str, str]) -> str: ...
    def read_record(self, day: dt.date) -> CycleRecord | None: ...
    def write_record(self, record: CycleRecord) -> None: ...
    def last_record(self) -> CycleRecord | None: ...
    def predictions_exist(self, day: dt.date) -> bool: ...
    def predictions_location(self, day: dt.date) -> str: ...
    def write_predictions(self, day: dt.date, frame: pd.DataFrame) -> str: ...


@dataclass(frozen=True)
class LandingZoneStore:
    """Batches and labels as Parquet files in a landing zone; records as JSON beside them."""

    config: UseCaseConfig
    landing: Path
    records: Path
    quarantine_root: Path
    predictions: Path

    def batch_dates(self) -> list[dt.date]:
        return landing.batch_dates(self.landing)

    def batch_source(self, day: dt.date) -> str:
        return str(landing.batch_path(self.landing, day))

    def read_batch(self, day: dt.date) -> pd.DataFrame:
        return read_batch_file(landing.batch_path(self.landing, day), self.config)

    def row_counts(self, days: list[dt.date]) -> list[int]:
        return [landing.row_count(landing.batch_path(self.landing, d)) for d in days]

    def labelled_dates(self, as_of: dt.date) -> list[dt.date]:
        return landing.labelled_dates(self.landing, self.config, as_of,
                                      quarantine=self.quarantine_root)

    def read_labelled(self, dates: list[dt.date]) -> pd.DataFrame:
        return landing.load_labelled(self.landing, self.config, dates)

    def label_rows(self, dates: list[dt.date]) -> int:
        return sum(landing.row_count(landing.labels_path(self.landing, d)) for d in dates)

    def quarantine(self, day: dt.date, evidence: dict[str, str]) -> str:
        """Move the batch out of the landing zone into a new ``<date>/attempt-N/`` folder.

        Each attempt gets its own folder, so re-running a batch never overwrites an earlier
        attempt's evidence. The evidence is written (whole, through a rename) before the batch
        moves: a quarantined batch always has its reasons beside it.
        """
        source = landing.batch_path(self.landing, day)
        folder = landing.new_attempt_folder(self.quarantine_root / day.isoformat())
        for name, text in evidence.items():
            landing.write_text_atomic(folder / name, text)
        # Gone already (another run moved it first): this attempt keeps its evidence only.
        with contextlib.suppress(FileNotFoundError):
            shutil.move(str(source), folder / source.name)
        return str(folder)

    def _record_path(self, day: str) -> Path:
        return self.records / f"{day}.json"

    def read_record(self, day: dt.date) -> CycleRecord | None:
        path = self._record_path(day.isoformat())
        if not path.is_file():
            return None
        return CycleRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def write_record(self, record: CycleRecord) -> None:
        path = self._record_path(record.batch_date)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(record.to_json(), encoding="utf-8")
        tmp.replace(path)

    def last_record(self) -> CycleRecord | None:
        files = sorted(self.records.glob("*.json")) if self.records.is_dir() else []
        if not files:
            return None
        return CycleRecord.from_dict(json.loads(files[-1].read_text(encoding="utf-8")))

    def predictions_path(self, day: dt.date) -> Path:
        return self.predictions / f"{day.isoformat()}.parquet"

    def predictions_exist(self, day: dt.date) -> bool:
        return self.predictions_path(day).exists()

    def predictions_location(self, day: dt.date) -> str:
        return str(self.predictions_path(day))

    def write_predictions(self, day: dt.date, frame: pd.DataFrame) -> str:
        path = self.predictions_path(day)
        landing.write_parquet_atomic(frame, path)
        return str(path)
