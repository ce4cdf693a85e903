"""Reading batch and source files: Parquet or CSV, one set of rules for the whole project.

- A file starting with the Parquet magic bytes is Parquet (whatever its name); its footer must
  be there too, or the file is reported truncated. A ``.parquet``/``.pq`` file without them is
  not Parquet. Anything else is read as CSV.
- CSV: UTF-8 (a byte-order mark is fine), delimiter ``data.csv_delimiter``, decimal mark
  ``data.csv_decimal``; categorical
  features stay text, as they are in Parquet ("01" must not become the integer 1). A file that
  splits into one column was most likely written with another delimiter: the error says which.
- A file whose text starts like JSON (``{"`` or ``[{``, after blanks) is reported as JSON
  before the CSV reader turns it into one column, a tokenizing error or a missing column.
- Every failure is a BatchReadError whose message names the file and the problem.

Used for batches (validation, the cycle, ``ctpipe validate``/``drift``) and for a labelled
history (``labelled_history.read_source``). No Great Expectations here.

``local_times`` is the one rule for time zones: validation, the labelled rows training reads,
and feature derivation (training and scoring) all see the time column through it.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Collection, Iterable
from decimal import Decimal
from pathlib import Path

import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.wording import count_of, first_few


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
# The files a folder of them is read from (labelled_history.read_source); a file named on its
# own is read whatever its name. pandas reads a compressed CSV by its suffix, as it does a file
# named alone.
DATA_SUFFIXES = (*_PARQUET_SUFFIXES, ".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip")


def is_data_file(path: Path) -> bool:
    """Whether a folder's file is one of its data files (DATA_SUFFIXES; not .gz alone)."""
    return path.is_file() and path.name.lower().endswith(DATA_SUFFIXES)


_DELIMITERS = (",", ";", "\t", "|")
# JSON's first tokens: an object ({"key" or {}) or an array of values ([{, [[, [", [1, []).
# A bracket followed by a letter ("[ms],value") is a CSV header, not JSON.
_JSON_START = re.compile(rb'\A\s*(?:\{\s*(?:"|\}|\Z)|\[\s*(?:[{\["\]\-0-9]|\Z))')
_SNIFF_BYTES = 512  # enough for the blank lines and indentation before JSON's first token
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_NOT_READ = "JSON, not CSV or Parquet"  # one wording for a JSON file and a folder of them
_JSON_SHOWN = 5  # skipped JSON files a message names; more are counted
# Formats people export tables in that ctpipe does not read, by their first bytes.
_OTHER_FORMATS = ((b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
                  (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one)"),
                  (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls workbook"),
                  (b"ARROW1", "an Arrow IPC (Feather) file"),
                  (b"SQLite format 3\x00", "an SQLite database"))


def _starts_like_json(start: bytes) -> bool:
    return bool(_JSON_START.match(start.removeprefix(b"\xef\xbb\xbf")))


def looks_like_json(path: Path) -> bool:
    """Whether a file is JSON by its name (.json, .jsonl, .ndjson) or its first bytes."""
    if path.name.lower().endswith(_JSON_SUFFIXES):
        return True
    try:
        with path.open("rb") as handle:
            return _starts_like_json(handle.read(_SNIFF_BYTES))
    except OSError:
        return False


def starts_like_parquet(path: Path) -> bool:
    """Parquet by content (its first bytes), whatever the file's name says."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC
    except OSError:
        return False


def skipped_json(files: Iterable[Path]) -> str | None:
    """Which of a folder's files were skipped as JSON, and what to do (None: none were).

    A folder is read for its DATA_SUFFIXES files only; "no files found" alone hides that the
    user's data is there, in a format ctpipe does not read.
    """
    found = sorted(p for p in files if p.is_file() and not is_data_file(p)
                   and looks_like_json(p))
    if not found:
        return None
    names = first_few([p.name for p in found], _JSON_SHOWN)
    files_look, them = ("files that look", "them") if len(found) != 1 else \
        ("file that looks", "it")
    return (f"skipped {len(found)} {files_look} like {_NOT_READ} ({names}): export {them} "
            "as CSV or Parquet")


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
            start = handle.read(_SNIFF_BYTES)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as exc:
        raise _read_error(path, f"cannot open: {exc.strerror or exc}") from exc

    head = start[:4]
    if head == _PARQUET_MAGIC:
        if tail != _PARQUET_MAGIC or size < 12:
            raise _read_error(
                path, f"truncated Parquet file ({size:,} bytes): it starts like Parquet but "
                "the footer is missing; the writer probably did not finish")
        return _read_parquet(path, config)
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        raise _read_error(
            path, f"not a Parquet file (it starts with {head!r}, not {_PARQUET_MAGIC!r})")
    binary = next((kind for magic, kind in _OTHER_FORMATS if start.startswith(magic)), None)
    if binary is not None and not path.name.lower().endswith(".zip"):  # a zipped CSV reads
        # Read as CSV these fail as "not UTF-8 text", which suggests the wrong fix.
        raise _read_error(path, f"{binary}, not CSV or Parquet: export it as CSV or Parquet")
    if _starts_like_json(start):
        # Read as CSV, JSON gives "wrong delimiter?", a tokenizing error or a missing target
        # column, depending on the delimiter and indentation: none says what to do.
        raise _read_error(path, f"looks like {_NOT_READ}: export it as CSV or Parquet")
    return _read_csv(path, config)


def _read_parquet(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    import pyarrow as pa

    try:
        return named_index_as_columns(pd.read_parquet(path), config.read_columns)
    except (OSError, ValueError, NotImplementedError, pa.ArrowException) as exc:
        # Arrow's messages can span lines; the quarantine message is one line.
        raise _read_error(path, f"unreadable Parquet file: {' '.join(str(exc).split())}") \
            from exc


def named_index_as_columns(frame: pd.DataFrame, wanted: Collection[str]) -> pd.DataFrame:
    """A frame written with ``df.set_index("date").to_parquet()`` keeps its time column as
    the index: pandas restores it there, where every rule would call the column missing (and a
    concatenated history would drop it). Named index levels come back as columns. A range
    index (pandas stores only its start, stop and step, also for ids 5, 6, 7) comes back only
    when ``wanted`` names it: a ``rename_axis("row")`` of pandas' positions is no column."""
    if isinstance(frame.index, pd.RangeIndex):
        name = frame.index.name
        return frame.reset_index() if name in wanted and name not in frame.columns else frame
    named = [n for n in frame.index.names if n is not None and n not in frame.columns]
    if not named:
        return frame
    return frame.reset_index(level=named if len(named) < frame.index.nlevels else None)


def _read_csv(path: Path, config: UseCaseConfig) -> pd.DataFrame:
    delimiter = config.data.csv_delimiter
    # Categoricals stay text, as they are in Parquet: "01" must not become the integer 1. So do
    # ids: "00042" keeps its zeros in the scores handed back, and 18-digit ids stay exact (one
    # empty id would otherwise turn the column into float64 and round neighbours together).
    text_columns = {c: "str" for c in config.features.categorical}
    if config.data.id_column:
        text_columns[config.data.id_column] = "str"
    try:
        # A column of mixed types makes pandas warn over several lines; the checks after the
        # read name the column that matters (a numeric feature of words) in one.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            frame = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", dtype=text_columns,
                                na_values=config.data.na_values or None,
                                decimal=config.data.csv_decimal)
    except UnicodeDecodeError as exc:
        raise _read_error(
            path, f"not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "export the file as UTF-8") from exc
    except pd.errors.EmptyDataError as exc:
        raise _read_error(path, "CSV file has no header line and no data") from exc
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise _read_error(
            path, f"malformed CSV (delimiter {delimiter!r}): {exc}".strip()) from exc
    if frame.shape[1] == 1 and len(config.batch_columns) > 1:
        raise _read_error(path, _one_column_problem(frame.columns[0], delimiter))
    twice = _repeated_header(path, frame, delimiter)
    if twice is not None:
        raise _read_error(path, twice)
    _keep_category_markers(path, frame, config)  # row for row: before any row is dropped
    # A line of delimiters only (",,,", what a spreadsheet leaves below its data) holds no
    # value: skipped as a blank line is, not a row of nulls that breaks every null rule.
    empty = frame.isna().all(axis=1)
    if empty.any():
        frame = frame[~empty].reset_index(drop=True)
    target = config.data.target
    if target in frame.columns and frame[target].dtype == object:
        present = frame[target].dropna()
        # True/False with an empty label among them: pandas keeps Python bools in an object
        # column, which no numeric rule takes. Without the gap it reads them as bool (0/1).
        if len(present) and present.map(lambda v: isinstance(v, bool)).all():
            frame[target] = frame[target].astype("float64")
    return frame


def _keep_category_markers(path: Path, frame: pd.DataFrame, config: UseCaseConfig) -> None:
    """Read the categorical columns again where pandas turned a value into a null: in a
    category only an empty field (and data.na_values) is missing. pandas also reads "NA"
    (Namibia's country code), "None" or "null" as missing, which would make a real category
    a null without a word; a marker meant as missing is then reported as a category, by
    name, and data.na_values lists it."""
    nulled = [c for c in config.features.categorical
              if c in frame.columns and frame[c].isna().any()]
    if not nulled:
        return  # the common case: one read
    try:
        again = pd.read_csv(path, sep=config.data.csv_delimiter, encoding="utf-8-sig",
                            usecols=nulled, dtype="str", keep_default_na=False,
                            na_values=["", *config.data.na_values])
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise _read_error(path, f"changed while it was read: {exc}") from exc
    if len(again) != len(frame):  # replaced between the two reads: never misalign rows
        raise _read_error(path, "changed while it was read (a different row count on the "
                          "second read of its categorical columns)")
    for column in nulled:
        frame[column] = again[column]


def _repeated_header(path: Path, frame: pd.DataFrame, delimiter: str) -> str | None:
    """A column name the header repeats (None: none). pandas renames the copies x.1, x.2, so
    the file would fail as having an unexpected column 'x.1', or, with unexpected columns
    ignored, lose a copy without a word."""
    names = {str(c) for c in frame.columns}
    if not any((m := _COPY.fullmatch(n)) and m[1] in names for n in names):
        return None  # the common case: no name looks like a renamed copy
    header = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", header=None, nrows=1,
                         dtype="str").iloc[0].tolist()
    repeated = [n for n in dict.fromkeys(header) if header.count(n) > 1]
    if not repeated:
        return None
    return (f"column {repeated[0]!r} appears {header.count(repeated[0])} times in the header: "
            "rename or drop the copies")


_COPY = re.compile(r"(.+)\.(\d+)")


def _one_column_problem(header: object, delimiter: str) -> str:
    text = str(header)
    counts = {d: text.count(d) for d in _DELIMITERS if d != delimiter}
    likely = max(counts, key=lambda d: counts[d])
    hint = (f"; the header looks {likely!r}-delimited" if counts[likely] else "")
    return (f"only one column found ({text[:80]!r}) with delimiter {delimiter!r} "
            f"(config data.csv_delimiter): wrong delimiter?{hint}")


def local_times(values: pd.Series, zone: str) -> pd.Series:
    """The time column as naive wall-clock time in ``zone`` (config ``data.timezone``).

    - tz-aware timestamps are converted to ``zone``, then the zone is dropped;
    - naive timestamps are taken as already in ``zone`` and kept;
    - an object column mixing zones, or aware and naive values (batches from different
      writers concatenated), is converted value by value the same way;
    - anything else (text, numbers) is returned unchanged: parsing is the caller's job, and
      validation's dtype rule reports a column that is not a timestamp.

    Naive and one zone for every batch, so a day means the same thing to the period rule, to
    the calendar features and to training, and batches concatenate into one datetime64 column.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(zone).dt.tz_localize(None)
    if values.dtype != object:
        return values
    present = values.dropna()
    if present.empty or not present.map(lambda v: isinstance(v, dt.datetime)).all():
        return values
    if not present.map(lambda v: v.tzinfo is not None).any():
        return pd.to_datetime(values)

    def naive(value: dt.datetime) -> pd.Timestamp:
        stamp = pd.Timestamp(value)
        return stamp if stamp.tzinfo is None else stamp.tz_convert(zone).tz_localize(None)

    return pd.to_datetime(values.map(naive, na_action="ignore"))


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _date_example(first: float) -> str:
    """A date the user's first number may stand for: a year (1952) or YYYYMMDD (19580329)."""
    if float(first).is_integer():
        whole = int(first)
        if 1000 <= whole <= 2999:
            return f"{whole}-01-01"
        text = str(whole)
        if len(text) == 8:
            stamp = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
            if not pd.isna(stamp):
                return stamp.date().isoformat()
    return "2024-01-31"


def numeric_times(values: pd.Series) -> str | None:
    """What is wrong with a time column holding numbers, e.g. "numbers (1952..2007), not dates
    or times: write them as dates (e.g. 1952-01-01)"; None: it holds no numbers.

    pd.to_datetime reads numbers as nanoseconds since 1970: a year column (1952..2007) or
    dates written as YYYYMMDD would all land on 1970-01-01, one batch of the whole history,
    with no error. Nothing says which unit numbers are in, so they are never guessed.
    """
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.dropna()
    elif values.dtype == object:
        present = values.dropna()
        is_number = present.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
        if present.empty or not is_number.all():
            return None
        numbers = present.astype("float64")
    else:
        return None
    if numbers.empty:
        return None
    lo, hi = numbers.min(), numbers.max()
    return (f"numbers ({_number_text(lo)}..{_number_text(hi)}), not dates or times: write "
            f"them as dates (e.g. {_date_example(lo)})")


def numeric_times_problem(values: pd.Series) -> str | None:
    """``numeric_times`` as a config problem naming the column (None: no numbers)."""
    text = numeric_times(values)
    return None if text is None else f"data.time_column: column {values.name!r} holds {text}"


def parse_local_times(values: pd.Series, zone: str, *, errors: str = "raise") -> pd.Series:
    """``local_times`` of a column that may still be text (a CSV file): parsed first.

    Text with mixed UTC offsets (a day across a DST change) parses only through UTC, as in
    validation. ``errors="coerce"`` turns unparseable values into NaT instead of raising.
    Numbers raise a ValueError whatever ``errors`` says (numeric_times_problem): they would
    "parse" into 1970, not fail.
    """
    problem = numeric_times_problem(values)
    if problem is not None:
        raise ValueError(problem)
    times = local_times(values, zone)
    if pd.api.types.is_datetime64_dtype(times):
        return times
    # Text that is not dates makes pandas warn that it guesses per value before it fails (or
    # coerces): the caller's one-line error says which column, the warning only adds noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not infer format", category=UserWarning)
        # 13/01/2020 first: pandas reads the column day-first and says so over two lines.
        warnings.filterwarnings("ignore", message="Parsing dates in", category=UserWarning)
        try:
            parsed = pd.to_datetime(times, errors=errors)
        except ValueError:
            parsed = None
        # Naive and offset times mixed fail, or coerce one kind to NaT: read each by its rule
        # (only then, so that a column of one kind pays nothing for it).
        if parsed is None or (errors == "coerce" and (parsed.isna() & times.notna()).any()):
            mixed = naive_and_aware(times, zone, errors=errors)
            if mixed is not None:
                return mixed
        if parsed is None:
            parsed = pd.to_datetime(times, errors=errors, utc=True)
    return local_times(parsed, zone)


# An offset after a time of day: Z, +05:30, +0530 or -05 (PostgreSQL's text); a date such
# as 15-01-2026 has no time of day before its "-2026".
_OFFSET = re.compile(r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$")


def naive_and_aware(values: pd.Series, zone: str, *, errors: str = "coerce") -> pd.Series | None:
    """Text times where some carry a UTC offset (or Z) and others none, as naive wall-clock
    times in ``zone``; None when they do not mix (pandas reads those alone).

    Batches concatenated from two writers mix them. Parsed together, pandas either fails on
    the second kind or, through UTC, takes the naive ones as UTC: 00:14 in New York would
    become 19:14 the day before. Each kind is read by its own rule instead: an offset is
    converted to ``zone``, a naive time is already in it.
    """
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return None
    present = values.notna()
    aware = present & values.astype("str").str.contains(_OFFSET)
    if not aware.any() or not (present & ~aware).any():
        return None
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    naive = present & ~aware
    try:
        out[aware] = pd.to_datetime(values[aware], utc=True, errors=errors, format="ISO8601") \
            .dt.tz_convert(zone).dt.tz_localize(None).astype("datetime64[ns]")
        out[naive] = pd.to_datetime(values[naive], errors=errors, format="ISO8601") \
            .astype("datetime64[ns]")
    except (ValueError, TypeError, OverflowError):
        if errors == "raise":
            raise ValueError("times with and without a UTC offset, and some of either kind "
                             "not ISO 8601") from None
        return None  # the caller's own parsing names what it cannot read
    return out


def not_dates_problem(column: str, values: pd.Series, bad: pd.Series) -> str:
    """Which values are not dates (empty ones counted apart), and, when the column is not
    ISO dates, why a column of dates can still fail: pandas reads every value in the format
    it took from the first (month first for 01/02/2020)."""
    empty = int((bad & values.isna()).sum())
    unread = values[bad & values.notna()]
    parts = [f"{count_of(empty, 'empty value')}"] if empty else []
    if len(unread):
        examples = ", ".join(repr(str(v)) for v in unread.head(3))
        parts.append(f"{count_of(len(unread), 'value')} that "
                     f"{'are' if len(unread) != 1 else 'is'} not a date (e.g. {examples})")
    text = f"time column {column!r}: {' and '.join(parts)}"
    first = values[~bad]
    if len(unread) and len(first) and isinstance(first.iloc[0], str) \
            and not _ISO_DATE.match(first.iloc[0].strip()):
        text += (f"; every value is read in the format of the first, {first.iloc[0]!r}: write "
                 "dates as YYYY-MM-DD")
    return text


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


_SHORT_DATE = re.compile(r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{2}|\d{4})(?!\d)")


def ambiguous_dates_problem(column: str, values: pd.Series) -> str | None:
    """What is wrong with a text time column whose dates read more than one way (None:
    nothing), judged on the values written as two numbers and a year (01/03/2020, 1.3.20).

    - A two-digit year (03-01-20, 20-01-03): pandas guesses which field is the year, and a
      year-first file is read day first (20-01-03 as 20 January 2003) without an error.
    - A four-digit year last, and no value with a day above 12 (a monthly series dated on the
      1st, a file of under two weeks): nothing says which field is the day, and pandas reads
      01/03/2020 as 3 January, so a day-first file lands in the wrong months.
    A file where some value settles it (13/03/2020 or 03/13/2020) is read, or refused, by the
    format of its first value (not_dates_problem).
    """
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return None
    present = values.dropna().astype(str)
    fields = present.str.extract(_SHORT_DATE.pattern).dropna()
    if fields.empty:
        return None
    examples = present[fields.index]
    two_digit = fields[3].str.len() == 2
    if two_digit.any():
        return (f"time column {column!r}: dates such as {examples[two_digit].iloc[0].strip()!r} "
                "have a two-digit year, and nothing says which field it is: write dates as "
                "YYYY-MM-DD")
    first, second = fields[0].astype(int), fields[2].astype(int)
    both = pd.concat([first, second])
    if both.min() < 1 or both.max() > 12 or (first == second).all():
        return None
    differ = first != second
    a, b = int(first[differ].iloc[0]), int(second[differ].iloc[0])
    month_first, day_first = dt.date(2000, a, b), dt.date(2000, b, a)
    return (f"time column {column!r}: dates such as {examples[differ].iloc[0].strip()!r} read "
            f"as {month_first.day} {month_first:%B} (month first) or as {day_first.day} "
            f"{day_first:%B} (day first), and no value has a day above 12 to tell which: write "
            "dates as YYYY-MM-DD")


def columns_found(frame: pd.DataFrame) -> str:
    """The source's columns (quoted where a blank starts or ends one), and a hint when its
    header reads like data: a file whose first line is something else (a station's name and
    coordinates) gets that line as its header."""
    names = [str(c) for c in frame.columns]
    # A blank around a name (" humidity ") is what makes it differ from the config's: shown.
    shown = [repr(n) if n != n.strip() else n for n in names]
    text = f"columns: {first_few(shown, 12)}"
    data_like = sum(bool(_NUMBER.fullmatch(n.strip())) or n.startswith("Unnamed: ")
                    for n in names)
    if data_like * 2 > len(names):
        text += "; the first line reads like data, not a header: is the header on line 1?"
    return text


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def as_numbers(values: pd.Series) -> pd.Series | None:
    """A numeric feature's values as float64, as features.py turns them into model input, when
    the column holds numbers in any form pandas or Parquet gives them: numpy or nullable
    (Int64, Float64) numbers, booleans (0/1), or Python Decimals (a database's DECIMAL). None
    when it holds anything else (text)."""
    if pd.api.types.is_numeric_dtype(values):  # booleans included
        return values.astype("float64")
    if values.dtype == object:
        present = values.dropna()
        if len(present) and present.map(lambda v: isinstance(v, (int, float, Decimal))).all():
            return pd.to_numeric(values, errors="coerce").astype("float64")  # bools too
    return None
