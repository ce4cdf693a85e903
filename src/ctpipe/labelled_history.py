"""A user's labelled history (the source of `ctpipe backtest`): where it is (a path, or a file
a package ships), how it is read (one file or a folder of them, with data.target_from), and
how it is cut into batches by the config's frequency.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ctpipe.batch_reader import (
    ambiguous_dates_problem,
    columns_found,
    is_data_file,
    not_dates_problem,
    parse_local_times,
    read_batch_file,
    skipped_json,
)
from ctpipe.config import UseCaseConfig
from ctpipe.wording import first_few

_PERIOD = {"daily": "D", "monthly": "M"}
_WEEK_ENDS = {"monday": "W-SUN", "sunday": "W-SAT"}  # a pandas week is named by its last day


def _period_code(config: UseCaseConfig) -> str:
    data = config.data
    return _WEEK_ENDS[data.week_start] if data.batch_frequency == "weekly" \
        else _PERIOD[data.batch_frequency]


def periods_between(first: dt.date, last: dt.date, config: UseCaseConfig) -> list[dt.date]:
    """Every batch date from ``first`` to ``last`` at the config's frequency, rows or not."""
    periods = pd.period_range(first, last, freq=_period_code(config))
    return [p.start_time.date() for p in periods]


def split_into_batches(frame: pd.DataFrame, config: UseCaseConfig) -> dict[dt.date, pd.DataFrame]:
    """Cut a history into batches by the config's frequency; a batch is named by its first day."""
    time_col = config.data.time_column
    times, problem, _ = _read_times(frame, config)
    if problem is not None:
        raise ValueError(problem)
    starts = times.dt.to_period(_period_code(config)).dt.start_time.dt.date
    frame = frame.assign(**{time_col: times})
    return {day: part.reset_index(drop=True) for day, part in frame.groupby(starts.to_numpy())}


def _read_times(frame: pd.DataFrame, config: UseCaseConfig
                ) -> tuple[pd.Series, str | None, pd.Series | None]:
    """The time column as local times, or why it cannot be read and, when known, which rows."""
    time_col = config.data.time_column
    if time_col not in frame.columns:
        return pd.Series(dtype="datetime64[ns]"), \
            f"time column {time_col!r} not found ({columns_found(frame)})", None
    problem = ambiguous_dates_problem(time_col, frame[time_col])
    if problem is not None:
        return pd.Series(dtype="datetime64[ns]"), problem, None
    # Batches are that zone's days, as validation's period rule counts them.
    times = parse_local_times(frame[time_col], config.data.timezone, errors="coerce")
    bad = times.isna()
    if bad.any():
        return times, not_dates_problem(time_col, frame[time_col], bad), bad
    return times, None, None


def _files_with_unread_times(files: list[Path], frames: list[pd.DataFrame],
                             joined: pd.DataFrame, config: UseCaseConfig) -> str | None:
    """A folder's time column read as one (pandas takes the format of the first value for
    all): why it cannot be, prefixed with the files to fix (None: it can). Without them, "330
    values that are not a date" leaves the user to find the one export written day first."""
    _, problem, bad = _read_times(joined, config)
    if problem is None:
        return None
    # A file unreadable on its own is at fault; else the files written unlike the most.
    odd = [i for i, f in enumerate(frames) if _read_times(f, config)[1] is not None] \
        or _written_unlike_most(frames, config.data.time_column)
    if not odd and bad is not None:
        origin = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
        odd = sorted(set(origin[bad.to_numpy()].tolist()))
    named = first_few([files[i].name for i in odd], 5)
    return f"{named}: {problem}" if named else problem


def _written_unlike_most(frames: list[pd.DataFrame], column: str) -> list[int]:
    """The frames whose first time value is written another way than most files' (digits
    aside: 2019-01-31 and 31/01/2019 differ, 2019-01-31 and 2020-02-01 do not)."""
    shapes = []
    for frame in frames:
        values = frame[column].dropna() if column in frame.columns else pd.Series()
        first = values.iloc[0] if len(values) else None
        shapes.append(re.sub(r"\d", "9", first.strip()) if isinstance(first, str) else "")
    usual = Counter(shapes).most_common(1)[0][0]
    return [i for i, shape in enumerate(shapes) if shape != usual]


PACKAGE_SOURCE = "package:"


def normal_source(source: str | Path) -> str | Path:
    """A source path absolute and resolved (no ``..``, no ``~``): messages then name a folder
    a user can find, not ``configs/../data``; a package file stays as it is named."""
    if str(source).startswith(PACKAGE_SOURCE):
        return str(source)
    return Path(source).expanduser().resolve()


def configured_source(source: str, config_path: Path) -> str | Path:
    """data.source as the config means it: a relative path is read from the config's folder,
    so a config and its data can move together; a package file stays as it is named."""
    if source.startswith(PACKAGE_SOURCE):
        return source
    path = Path(source).expanduser()
    return normal_source(path if path.is_absolute() else config_path.parent / path)


def resolve_source(source: str | Path) -> Path:
    """A source as a path on disk; ``package:<package>/<path>`` names a file a package ships.

    The package is found with importlib.resources (an installed package, nothing fetched), so
    a config can name a public data set portably. Raises FileNotFoundError naming what is
    missing, ValueError for a malformed name.
    """
    text = str(source)
    if not text.startswith(PACKAGE_SOURCE):
        return Path(source)
    package, _, inside = text[len(PACKAGE_SOURCE):].partition("/")
    if not package or not inside:
        raise ValueError(f"{text}: expected package:<package>/<path inside it>, e.g. "
                         "package:vega_datasets/_data/seattle-weather.csv")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise FileNotFoundError(f"{text}: package {package!r} is not installed (it ships the "
                                f"data: pip install the distribution that provides the "
                                f"{package!r} module, or check the name)") from None
    resource = root.joinpath(*inside.split("/"))
    if not isinstance(resource, Path):  # a zipped package: no file to read in place
        raise ValueError(f"{text}: package {package!r} is not installed as files on disk")
    if not resource.exists():
        raise FileNotFoundError(f"{text}: {inside!r} not found in package {package!r} "
                                f"(looked in {root})")
    return resource


def derive_target(frame: pd.DataFrame, config: UseCaseConfig, source: str) -> pd.DataFrame:
    """Apply data.target_from: 1 where the column is above the threshold, the column dropped.

    A null in the column stays a null target (data.drop_null_targets decides its fate).
    """
    rule = config.data.target_from
    if rule is None:
        return frame
    if rule.column not in frame.columns:
        raise ValueError(f"{source}: data.target_from.column {rule.column!r} not found "
                         f"({columns_found(frame)})")
    if config.data.target in frame.columns:
        # Deriving it would silently replace a column of the source with the 0/1 target.
        raise ValueError(f"{source}: data.target {config.data.target!r} is already a column of "
                         f"the source, and data.target_from would overwrite it: name the derived "
                         f"target something else")
    values = frame[rule.column]
    if not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"{source}: data.target_from.column {rule.column!r} has dtype "
                         f"{values.dtype}, expected numeric")
    target = (values > rule.above).astype("float64").where(values.notna())
    return frame.drop(columns=[rule.column]).assign(**{config.data.target: target})


def read_source(path: str | Path, config: UseCaseConfig) -> pd.DataFrame:
    """A user's labelled history: one Parquet/CSV file or a folder of them, concatenated.

    Each file is read by batch_reader.read_batch_file, with the same Parquet and CSV rules as a
    batch; a file that cannot be read raises its BatchReadError (a ValueError naming the file).
    In a folder, its .parquet, .pq and .csv files (.csv.gz and other compressed CSV too) are
    read, in name order; a folder without one names the JSON files it skipped. ``path`` may
    name a file an installed package ships (``package:<package>/<path>``, resolve_source), and
    data.target_from derives the target (derive_target).
    """
    named = path  # a package file is named as the config names it, not by where it lies
    path = resolve_source(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: source not found")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if is_data_file(p))
    else:
        files = [path]  # a file named on its own is read whatever its suffix, as a batch is
    if not files:
        skipped = skipped_json(path.iterdir())
        raise ValueError(f"{path}: no .parquet, .pq or .csv (.csv.gz, ...) files found"
                         + (f"; {skipped}" if skipped else ""))
    frames = [read_batch_file(p, config) for p in files]
    problem = files_disagree(files, frames)
    if problem is not None:
        raise ValueError(problem)
    frame = pd.concat(frames, ignore_index=True)
    problem = _files_with_unread_times(files, frames, frame, config) if len(files) > 1 \
        else None
    if problem is not None:
        raise ValueError(problem)
    return derive_target(frame, config, str(named))


def files_disagree(files: list[Path], frames: list[pd.DataFrame]) -> str | None:
    """Why a folder's files cannot make one history, naming the file; None when they can.

    A column renamed in one file (an export of another year) would otherwise surface as an
    unexpected column of every batch, and a file that repeats rows of another (an overlapping
    export, "2018 (1).csv") as batches of doubled rows that train, gate and score twice.
    """
    if len(frames) < 2:
        return None
    first, columns = files[0], list(frames[0].columns)
    for path, frame in zip(files[1:], frames[1:], strict=True):
        if set(frame.columns) != set(columns):
            missing = [c for c in columns if c not in frame.columns]
            extra = [c for c in frame.columns if c not in columns]
            said = "; ".join(part for part in (
                f"missing {', '.join(repr(c) for c in missing)}" if missing else "",
                f"extra {', '.join(repr(c) for c in extra)}" if extra else "") if part)
            return (f"{path}: its columns differ from {first.name}'s ({said}): every file of "
                    "a folder source must have the same columns")
    # One hash per row; a hash that two files hold is a repeated row (rows repeated inside one
    # file are left alone). Hash tables keep it linear: 20M rows in a dict took 33 s and 1.7 GB.
    hashes = [pd.util.hash_pandas_object(f[columns], index=False).to_numpy() for f in frames]
    held = pd.DataFrame({"hash": np.concatenate(hashes),
                         "file": np.repeat(np.arange(len(frames)), [len(h) for h in hashes])})
    held = held[held["hash"].duplicated(keep=False)].drop_duplicates()
    shared = held[held["hash"].duplicated(keep=False)]  # held by two files or more
    if shared.empty:
        return None
    first = shared.groupby("hash")["file"].transform("min")
    later = int(shared.loc[shared["file"] != first, "file"].min())  # in reading order
    earlier = int(first[shared["file"] == later].min())
    rows = int(pd.Series(hashes[later]).isin(hashes[earlier]).sum())
    return (f"{files[later]}: {rows:,} of its rows are also in {files[earlier].name}, value for "
            "value: the files of a folder source must not overlap (remove the copy, or cut the "
            "overlapping period from one of them)")
