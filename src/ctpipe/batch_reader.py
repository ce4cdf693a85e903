"""Reading batch and source files: Parquet or CSV, one set of rules for the whole project.

- A file starting with the Parquet magic bytes is Parquet (whatever its name); its footer must
  be there too, or the file is reported truncated. A ``.parquet``/``.pq`` file without them is
  not Parquet. Anything else is read as CSV.
- CSV: UTF-8 (a byte-order mark is fine), delimiter ``data.csv_delimiter``; categorical
  features stay text, as they are in Parquet ("01" must not become the integer 1). A file that
  splits into one column was most likely written with another delimiter: the error says which.
- Every failure is a BatchReadError whose message names the file and the problem.

Used for batches (validation, the cycle, ``ctpipe validate``/``drift``) and for a labelled
history (``landing.read_source``). No Great Expectations here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ctpipe.config import UseCaseConfig


class BatchReadError(ValueError):
    """A batch (or source) file that cannot be read; the message names the file and problem."""

    def __init__(self, message: str, *, path: Path | None = None,
                 problem: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.problem = problem or message  # the message without the path in front


def _read_error(path: Path, problem: str) -> BatchReadError:
    return BatchReadError(f"{path}: {problem}", path=path, problem=problem)


_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
# The files a folder of them is read from (landing.read_source); a file named on its own is read
# whatever its name.
DATA_SUFFIXES = (*_PARQUET_SUFFIXES, ".csv")
_DELIMITERS = (",", ";", "\t", "|")


def read_batch_file(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    """Read a Parquet or CSV file; every failure is a BatchReadError naming file and problem."""
    path = Path(path)
    try:
        if not path.exists():
            raise _read_error(path, "batch file not found")
        if path.is_dir():
            raise _read_error(path, "is a directory, expected a Parquet or CSV file")
        size = path.stat().st_size
        if size == 0:
            raise _read_error(path, "file is empty (0 bytes)")
        with path.open("rb") as handle:
            head = handle.read(4)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as exc:
        raise _read_error(path, f"cannot open: {exc.strerror or exc}") from exc

    if head == _PARQUET_MAGIC:
        if tail != _PARQUET_MAGIC or size < 12:
            raise _read_error(
                path, f"truncated Parquet file ({size:,} bytes): it starts like Parquet but "
                "the footer is missing; the writer probably did not finish")
        return _read_parquet(path)
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        raise _read_error(
            path, f"not a Parquet file (it starts with {head!r}, not {_PARQUET_MAGIC!r})")
    return _read_csv(path, config)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, NotImplementedError, pa.ArrowException) as exc:
        # Arrow's messages can span lines; the quarantine message is one line.
        raise _read_error(path, f"unreadable Parquet file: {' '.join(str(exc).split())}") \
            from exc


def _read_csv(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    delimiter = config.data.csv_delimiter
    # Categoricals stay text, as they are in Parquet: "01" must not become the integer 1.
    text_columns = {c: "str" for c in config.features.categorical}
    try:
        frame = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", dtype=text_columns)
    except UnicodeDecodeError as exc:
        raise _read_error(
            path, f"not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "export the file as UTF-8") from exc
    except pd.errors.EmptyDataError as exc:
        raise _read_error(path, "CSV file has no header line and no data") from exc
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise _read_error(
            path, f"malformed CSV (delimiter {delimiter!r}): {exc}".strip()) from exc
    if frame.shape[1] == 1 and len(_batch_columns(config)) > 1:
        raise _read_error(path, _one_column_problem(frame.columns[0], delimiter))
    return frame


def _batch_columns(config: UseCaseConfig) -> list[str]:
    """Columns a batch must carry: time, id (if any), features (ctpipe.validation's list)."""
    data = config.data
    return [data.time_column, *([data.id_column] if data.id_column else []),
            *config.features.raw]


def _one_column_problem(header: object, delimiter: str) -> str:
    text = str(header)
    counts = {d: text.count(d) for d in _DELIMITERS if d != delimiter}
    likely = max(counts, key=lambda d: counts[d])
    hint = (f"; the header looks {likely!r}-delimited" if counts[likely] else "")
    return (f"only one column found ({text[:80]!r}) with delimiter {delimiter!r} "
            f"(config data.csv_delimiter): wrong delimiter?{hint}")
