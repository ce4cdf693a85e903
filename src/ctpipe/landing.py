"""The landing zone: one Parquet file per batch, and its labels in a separate file.

Layout under a use case's landing folder::

    batches/<batch-date>.parquet   the rows to score (no target column)
    labels/<batch-date>.parquet    the target for the same rows, same order (+ the id column)

A batch's labels count as arrived ``label_delay`` batches after it, so a replay sees exactly
what production would have seen on each day.

Labels are checked like batches before anything trains on them (``labels_problem``): the
target is there, numeric, finite, not null (or its null rows dropped with
``data.drop_null_targets``), in {0, 1} for a binary task, and the rows match the batch's (same
count, same ids in the same order). A labels file that breaks a rule is set aside under
``<quarantine>/<date>/labels-attempt-N/`` with a summary naming the file and the rule; that
batch is then simply not labelled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import shutil
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ctpipe.batch_reader import (
    BatchReadError,
    local_times,
    named_index_as_columns,
    read_batch_file,
    starts_like_parquet,
)
from ctpipe.config import UseCaseConfig
from ctpipe.wording import first_few

BATCH_KEY = "__batch_date__"
log = logging.getLogger(__name__)


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


_BATCH_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}\.parquet$")


def batch_dates(landing: Path, config: UseCaseConfig | None = None) -> list[dt.date]:
    """The dates of the landed batches: ``<YYYY-MM-DD>.parquet`` files. Any other file (a
    ``notes.parquet``, a CSV) is not a batch; unlanded_files names it for the operator. With
    ``config``, only files named by their period's first day (a weekly batch by its week's
    first day, a monthly one by the 1st): another day of the period would land the same
    period twice, and misnamed_batches names such files."""
    folder = landing / "batches"
    if not folder.is_dir():
        return []
    dates = sorted(d for path in folder.glob("*.parquet") if (d := _landed_date(path.name)))
    if config is None or config.data.batch_frequency == "daily":
        return dates
    return [d for d in dates if period_start(d, config) == d]


def period_start(day: dt.date, config: UseCaseConfig) -> dt.date:
    """The first day of the batch period ``day`` falls in (data.batch_frequency, week_start)."""
    from ctpipe.validation.rules import batch_period

    return batch_period(day, config.data.batch_frequency, config.data.week_start)[0].date()


def misnamed_batches(landing: Path, config: UseCaseConfig,
                     day: dt.date | None = None) -> str | None:
    """Batch files named by a day that is not their period's first (``day``: only that one),
    and what to do (None: none). No cycle sees them (batch_dates)."""
    if config.data.batch_frequency == "daily":
        return None
    named = [day] if day is not None else batch_dates(landing)
    wrong = [d for d in named if batch_path(landing, d).is_file()
             and period_start(d, config) != d]
    if not wrong:
        return None
    unit = "week" if config.data.batch_frequency == "weekly" else "month"
    first = (f"{config.data.week_start.capitalize()}, data.week_start"
             if unit == "week" else "the 1st")
    names = first_few([batch_path(landing, d).name for d in wrong], _SHOWN)
    example = wrong[0]
    fix = (f"rename it to {batch_path(landing, period_start(example, config)).name}, or "
           "remove it if that file holds the same rows" if len(wrong) == 1 else
           f"rename each to its {unit}'s first day, keeping one file per {unit}")
    return (f"found {names}, but a {config.data.batch_frequency} batch is named by the first "
            f"day of its {unit} ({first}): {example} is in the {unit} of "
            f"{period_start(example, config)} ({fix})")


def _landed_date(name: str) -> dt.date | None:
    """The batch date a file name lands as (None: it does not land)."""
    if not _BATCH_NAME.match(name):
        return None
    try:
        return dt.date.fromisoformat(name.removesuffix(".parquet"))
    except ValueError:  # 2026-02-30 looks like a date and is not
        return None


LANDED = {"batches": "landed batches are Parquet files named YYYY-MM-DD.parquet",
          "labels": "labels are Parquet files named like their batch, YYYY-MM-DD.parquet"}
_SHOWN = 5  # file names a message lists; more are counted


def unlanded_files(landing: Path, day: dt.date | None = None, *,
                   kind: str = "batches") -> str | None:
    """Files in ``batches/`` (or ``labels/``) a cycle does not see as a batch (or its labels),
    and what to do (None: none).

    Only ``<date>.parquet`` counts as landed: "no batch for that date" alone hides that the
    operator's file is there, in another format or under another name, and labels in another
    format leave their batch unlabelled without a word. With ``day``, the files whose name
    holds that date (``2016-03-29.csv``, ``2016-03-29.json``); without, every file not named
    like a batch (``2026-03-32.parquet`` too: not a date) and every folder, which no cycle
    reads. Hidden files (a writer's temporary files) are left out.
    """
    folder = landing / kind
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if not p.name.startswith(".")
                   and (day.isoformat() in p.name if day is not None
                        else p.is_dir() or _landed_date(p.name) is None))
    if day is not None:
        found = [p for p in found if p.name != batch_path(landing, day).name]
    if not found:
        return None
    names = first_few([p.name + ("/" if p.is_dir() else "") for p in found], _SHOWN)
    files = [p for p in found if not p.is_dir()]
    it, its = ("it", "its") if len(found) == 1 else ("them", "their")
    if not files:
        advice = f"a batch is one file: move {it} out, or put {its} files in {kind}/"
    elif not all(starts_like_parquet(p) for p in files):
        advice = f"convert {it}, e.g. with pandas' to_parquet"
    elif day is not None:
        advice = f"rename {it} to {batch_path(landing, day).name}"
    elif len(found) == 1 and (dated := _landed_date(f"{found[0].name[:10]}.parquet")):
        advice = f"rename it to {batch_path(landing, dated).name}"
    else:
        advice = f"rename {it} after {its} batch date"
    return f"found {names}, but {LANDED[kind]} ({advice})"


def labelled_dates(landing: Path, config: UseCaseConfig, as_of: dt.date, *,
                   quarantine: Path | None = None) -> list[dt.date]:
    """Batches whose labels have arrived by ``as_of`` (label_delay counted in batches).

    Only labels that pass ``labels_problem`` count. A labels file that breaks a rule is set
    aside under ``quarantine`` (``<date>/labels-attempt-N/``) when given, so it is judged
    once; without a quarantine folder it is only left out.
    """
    usable = []
    for day in arrived_dates(landing, config, as_of, quarantine=quarantine):
        check, judged_now = _judged(landing, config, day)
        if check.problem is None:
            usable.append(day)
        elif check.labels_at_fault and quarantine is not None:
            set_aside_labels(landing, day, quarantine, check.problem)
        elif judged_now:  # said once per content of the files, not on every call
            log.warning("batch %s left out of the labelled history: %s", day, check.problem)
    return usable


def arrived_dates(landing: Path, config: UseCaseConfig, as_of: dt.date, *,
                  quarantine: Path | None = None) -> list[dt.date]:
    """Batches whose labels file has arrived by ``as_of`` (label_delay counted in batches),
    whether or not the labels, or the batch, can be used.

    A batch moved to ``quarantine`` still came, so it still counts towards the delay: else
    the batch before a quarantined one would wait a batch longer for its labels, and the
    last batch of a replay that ends on a quarantine would never be labelled. (A quarantine
    folder deleted by a retention job no longer counts: keep them while labels are due.)"""
    landed = set(batch_dates(landing, config))
    # Named as batch_dates names them: a period's first day (a weekly zone's old daily files
    # in the quarantine are no batches of it).
    came = {d for d in quarantined_dates(quarantine) if period_start(d, config) == d}
    counted = sorted(d for d in landed | came if d <= as_of)
    cutoff = max(len(counted) - config.data.label_delay, 0)
    return [d for d in counted[:cutoff] if d in landed and labels_path(landing, d).is_file()]


def quarantined_dates(quarantine: Path | None) -> list[dt.date]:
    """Batches moved out of the landing zone into a quarantine ``<date>/attempt-N/`` folder
    (not those whose labels alone were set aside: their batch stays)."""
    if quarantine is None or not quarantine.is_dir():
        return []
    return sorted({day for path in quarantine.glob("*/attempt-*/*.parquet")
                   if (day := _landed_date(path.name)) and path.parent.parent.name == str(day)})


def _batch_ids(source: Path, id_col: str) -> pd.Series:
    """The batch's id column, read alone; from the whole file when the writer kept it as the
    index (named_index_as_columns), which a column read does not see."""
    try:
        return pd.read_parquet(source, columns=[id_col])[id_col]
    except (ValueError, KeyError, pa.ArrowException):
        frame = named_index_as_columns(pd.read_parquet(source), {id_col})
        if id_col not in frame.columns:
            raise
        return frame[id_col]


def row_count(path: Path) -> int:
    """Rows in a Parquet file, from its footer: no data is read."""
    return pq.ParquetFile(path).metadata.num_rows


@dataclass(frozen=True)
class LabelCheck:
    """A labels file against its batch: the rule it breaks (None: usable), rows kept."""

    problem: str | None = None
    keep: np.ndarray | None = None  # rows to keep when data.drop_null_targets dropped some
    note: str | None = None  # what was dropped, for the log
    labels_at_fault: bool = True  # False: the batch could not be read, not the labels


def null_targets_problem(nulls: int, rows: int, target: str, drop: bool) -> str | None:
    """Null targets that set a labels file aside: any, unless data.drop_null_targets (``drop``)
    drops their rows; then only a file whose every target is null."""
    if not nulls:
        return None
    if not drop:
        return (f"{nulls:,} of {rows:,} targets {target!r} are null (data.drop_null_targets: "
                "true drops such rows instead)")
    return f"every target {target!r} is null ({nulls:,} rows)" if nulls == rows else None


def check_labels(batch_ids: pd.Series | None, batch_rows: int, labels: pd.DataFrame,
                 config: UseCaseConfig, source: str) -> LabelCheck:
    """Labels against the batch they belong to; every problem names ``source`` and the rule.

    ``batch_ids`` is the batch's id column (None without one). Rules, in order: the target
    (and id) column exists; as many rows as the batch; the same ids in the same order; the
    target is numeric (bool counts), not null (data.drop_null_targets drops such rows
    instead), finite, and 0 or 1 for a binary task.
    """
    data = config.data
    target, id_col = data.target, data.id_column

    def broken(rule: str) -> LabelCheck:
        return LabelCheck(problem=f"{source}: {rule}")

    for column in (target, id_col):
        if column and column not in labels.columns:
            return broken(f"column {column!r} is missing (columns: {list(labels.columns)})")
    if len(labels) != batch_rows:
        return broken(f"{len(labels)} labels for {batch_rows} batch rows (row counts must be "
                      "equal)")
    if id_col and batch_ids is not None:
        ids = labels[id_col].reset_index(drop=True)
        expected = batch_ids.reset_index(drop=True)
        # Equal as text is equal: a CSV's ids are read as text, a Parquet file's may be numbers
        # (compared as text only then: 2M ids as text cost a second a labels file).
        same = ids.equals(expected)
        text = wanted = np.array([])
        if not same:
            text, wanted = ids.astype("str").to_numpy(), expected.astype("str").to_numpy()
        differ = np.flatnonzero(text != wanted)
        if len(differ):
            at = differ[0]
            order = ("; the same ids in another order: write the labels in the batch's row "
                     "order" if sorted(text) == sorted(wanted) else "")
            # "data row" counted from 1, as a reader counts the rows under the header
            return broken("ids do not match the batch's rows (first difference at data row "
                          f"{at + 1}: {_plain(ids.iloc[at])!r} vs the batch's "
                          f"{_plain(expected.iloc[at])!r}){order}")
    values = labels[target]
    if not pd.api.types.is_numeric_dtype(values):
        shown = values.dropna().astype("str").unique()[:3].tolist()
        return broken(f"target {target!r} has dtype {values.dtype}, expected numeric "
                      f"(e.g. {shown})")
    null = values.isna().to_numpy()
    count = int(null.sum())
    problem = null_targets_problem(count, len(values), target, data.drop_null_targets)
    if problem:
        return broken(problem)
    keep, note = None, None
    if count:
        keep = ~null
        note = f"{source}: {count:,} of {len(values):,} rows with a null target dropped " \
               "(data.drop_null_targets)"
    present = values[~null].astype("float64").to_numpy()
    infinite = int(np.isinf(present).sum())
    if infinite:
        return broken(f"{infinite:,} targets {target!r} are infinite")
    if data.task == "binary":
        outside = np.unique(present[(present != 0.0) & (present != 1.0)])
        if len(outside):
            shown = ", ".join(f"{v:g}" for v in outside[:5])
            return broken(f"binary target {target!r} has values outside {{0, 1}}: {shown}")
    return LabelCheck(keep=keep, note=note)


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, so a message shows 5, not np.int64(5)."""
    return value.item() if isinstance(value, np.generic) else value


def labels_problem(landing: Path, config: UseCaseConfig, day: dt.date) -> str | None:
    """Why the batch's labels cannot be used (None: they can), as ``labelled_dates`` judges."""
    if not labels_path(landing, day).is_file():
        return f"{labels_path(landing, day)}: no labels file"
    return _cached_check(landing, config, day).problem


def _read_labels(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    return read_batch_file(path, config)  # a labels file follows the batch files' rules


def _check_day(landing: Path, config: UseCaseConfig, day: dt.date) -> LabelCheck:
    path = labels_path(landing, day)
    try:
        labels = _read_labels(path, config)
    except BatchReadError as exc:
        return LabelCheck(problem=f"{path}: {exc.problem}")
    source = batch_path(landing, day)
    id_col = config.data.id_column
    try:
        # Only the ids (or the footer's row count) of the batch: a batch can be large.
        ids = _batch_ids(source, id_col) if id_col else None
        rows = len(ids) if ids is not None else row_count(source)
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        # Not the labels' fault: the batch is judged by its own cycle's validation.
        return LabelCheck(problem=f"{source}: batch unreadable for its labels: "
                          f"{' '.join(str(exc).split())}", labels_at_fault=False)
    return check_labels(ids, rows, labels, config, str(path))


# labelled_dates runs several times per cycle over the whole history: each labels file is
# checked once per content (path, size and mtime of both files) and rules.
_CHECKS: OrderedDict[tuple, LabelCheck] = OrderedDict()
_MAX_CHECKS = 8192


def _cached_check(landing: Path, config: UseCaseConfig, day: dt.date) -> LabelCheck:
    return _judged(landing, config, day)[0]


def _judged(landing: Path, config: UseCaseConfig, day: dt.date) -> tuple[LabelCheck, bool]:
    """The check, and whether it was made now (False: the files are as when it was made)."""
    def stat(path: Path) -> tuple[int, int]:
        try:
            st = path.stat()
        except OSError:
            return (-1, -1)
        return (st.st_size, st.st_mtime_ns)

    data = config.data
    key = (str(labels_path(landing, day)), stat(labels_path(landing, day)),
           stat(batch_path(landing, day)), data.target, data.id_column, data.task,
           data.drop_null_targets)
    check = _CHECKS.get(key)
    if check is not None:
        return check, False
    # The verdict only: a row mask of a large batch is not worth keeping in memory.
    check = _CHECKS[key] = replace(_check_day(landing, config, day), keep=None)
    while len(_CHECKS) > _MAX_CHECKS:
        _CHECKS.popitem(last=False)
    return check, True


def new_attempt_folder(parent: Path, prefix: str = "attempt") -> Path:
    """A new, empty ``<prefix>-N`` folder under ``parent`` (N one past the highest there).

    mkdir without exist_ok claims the number: two processes quarantining the same batch get
    two folders, and no attempt overwrites another's evidence.
    """
    parent.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)$")
    taken = [int(m.group(1)) for p in parent.iterdir() if (m := pattern.match(p.name))]
    n = max(taken, default=0) + 1
    while True:
        folder = parent / f"{prefix}-{n}"
        try:
            folder.mkdir()
        except FileExistsError:
            n += 1
            continue
        return folder


def write_text_atomic(path: Path, text: str) -> None:
    """Through a temporary file and a rename: evidence is whole or absent, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class SetAsideLabels:
    """A batch whose labels file was set aside and not yet replaced by a corrected one."""

    day: dt.date
    folder: Path  # the newest labels-attempt-N holding the rejected file and its summary
    problem: str
    written_at: str = ""  # when the summary was written (ISO, UTC); "" if it is gone


ACCEPTED_UNLABELLED = "accepted.json"  # in a labels-attempt folder: see accept_unlabelled
LABELS_AUDITED = "audited"  # in a labels-attempt folder: its set-aside is in the audit trail


def labels_set_aside(landing: Path, quarantine: Path) -> list[SetAsideLabels]:
    """Batches still in the landing zone, unlabelled because their labels were set aside
    (set_aside_labels): they train on nothing until a corrected file lands. Those whose
    newest set-aside file an operator accepted as lost (accept_unlabelled) are left out."""
    found = []
    for day in batch_dates(landing):
        if labels_path(landing, day).is_file():
            continue  # corrected (or never set aside)
        parent = quarantine / day.isoformat()
        attempts = sorted(parent.glob("labels-attempt-*"),
                          key=lambda f: int(f.name.rsplit("-", 1)[1])) \
            if parent.is_dir() else []
        if attempts and not (attempts[-1] / ACCEPTED_UNLABELLED).is_file():
            found.append(SetAsideLabels(day, attempts[-1], _set_aside_problem(attempts[-1])))
    return found


def unaudited_labels_set_aside(quarantine: Path) -> list[SetAsideLabels]:
    """Labels files set aside (set_aside_labels) whose folder does not say the audit trail
    holds them yet, oldest date first; also those a corrected file has replaced since. Only
    folders the labels file has moved into: one a set-aside is still writing, or lost to
    another run, is no set-aside (yet)."""
    found = []
    for folder in sorted(quarantine.glob("*/labels-attempt-*")) if quarantine.is_dir() else []:
        day = _landed_date(f"{folder.parent.name}.parquet")
        if day is not None and not (folder / LABELS_AUDITED).exists() \
                and (folder / labels_path(Path(), day).name).is_file():
            found.append(SetAsideLabels(day, folder, _set_aside_problem(folder),
                                        _written_at(folder / "summary.md")))
    return found


def _written_at(path: Path) -> str:
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return ""
    return dt.datetime.fromtimestamp(stamp / 1e9, dt.UTC).isoformat(timespec="microseconds")


def accept_unlabelled(set_aside: SetAsideLabels, *, who: str, reason: str) -> Path:
    """Note in the set-aside folder that the batch stays unlabelled on purpose (no corrected
    file will come): doctor stops naming it. Only this set-aside file is accepted: labels set
    aside later get a folder of their own, named again. A corrected file put back is used as
    ever."""
    note = set_aside.folder / ACCEPTED_UNLABELLED
    write_text_atomic(note, json.dumps({
        "batch_date": set_aside.day.isoformat(), "who": who, "reason": reason,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}, indent=2))
    return note


def _set_aside_problem(folder: Path) -> str:
    # The summary's third line is the rule the file broke (set_aside_labels writes it).
    try:
        lines = (folder / "summary.md").read_text(encoding="utf-8").splitlines()
    except OSError:
        return "no summary"
    return lines[2] if len(lines) > 2 else "no summary"


def set_aside_labels(landing: Path, day: dt.date, quarantine: Path, problem: str) -> Path | None:
    """Move the labels file to ``<quarantine>/<date>/labels-attempt-N/`` with a summary.

    Returns the folder, or None when another process moved the file first.
    """
    source = labels_path(landing, day)
    folder = new_attempt_folder(quarantine / day.isoformat(), "labels-attempt")
    write_text_atomic(folder / "summary.md",
                      f"# Labels set aside: {source}\n\n{problem}\n\nThe batch of {day} "
                      "stays in the landing zone, unlabelled: training and drift go on "
                      "without it. Put a corrected labels file back to use it.\n")
    try:
        shutil.move(str(source), folder / source.name)
    except FileNotFoundError:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    log.warning("labels of batch %s set aside to %s: %s", day, folder, problem)
    return folder


def load_labelled(landing: Path, config: UseCaseConfig, dates: Iterable[dt.date], *,
                  passed: Mapping[dt.date, str | None] | None = None) -> pd.DataFrame:
    """Batches joined with their labels (row order is the join key), tagged with their date.

    Each batch's labels are checked (``check_labels``) first: a broken file raises a
    ValueError naming it and the rule, so nothing trains on part of a window. The time column
    comes out as naive local time in data.timezone (batch_reader.local_times), one dtype for
    every batch. ``passed``: per date, the sha256 of the batch file that passed validation;
    the bytes read must hash to it, or a ValueError names the file (a file replaced after
    the check is never trained on).
    """
    frames = []
    for day in dates:
        batch = named_index_as_columns(
            pd.read_parquet(_read_verified(batch_path(landing, day), passed[day]))
            if passed is not None else pd.read_parquet(batch_path(landing, day)),
            config.read_columns)
        labels = _read_labels(labels_path(landing, day), config)
        id_col = config.data.id_column
        check = check_labels(batch[id_col] if id_col else None, len(batch), labels, config,
                             str(labels_path(landing, day)))
        if check.problem is not None:
            raise ValueError(check.problem)
        batch[config.data.target] = labels[config.data.target].to_numpy()
        if check.keep is not None:
            log.warning("%s", check.note)
            batch = batch[check.keep].reset_index(drop=True)
        time = config.data.time_column
        if time in batch.columns:
            batch[time] = local_times(batch[time], config.data.timezone)
        batch[BATCH_KEY] = day.isoformat()
        frames.append(batch)
    if not frames:
        raise ValueError("no labelled batches to load")
    return pd.concat(frames, ignore_index=True)


def _read_verified(path: Path, passed: str | None) -> io.BytesIO:
    """The file's bytes, once they hash to ``passed`` (the sha256 that passed validation)."""
    if passed is None:
        raise ValueError(f"{path}: has not passed the current validation rules; not trained "
                         "on (the next retrain validates it first)")
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != passed:
        raise ValueError(f"{path}: changed since it passed validation (sha256 {passed[:12]} "
                         f"then, {found[:12]} now); not trained on (the next retrain "
                         "validates it again)")
    return io.BytesIO(data)
