"""`ctpipe backtest --source` refusing a file it cannot use, before any flow runs: no server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ctpipe.cli import app
from ctpipe.config import parse_config
from tests.test_backtest_cli import BIKES_CONFIG, _bike_history


@pytest.mark.parametrize("delimiter", [";", ","])
@pytest.mark.parametrize("indent", [None, 2])
def test_backtest_names_a_json_source_as_json(ctpipe_home: Path, tmp_path: Path,
                                              delimiter: str, indent: int | None) -> None:
    # Before: "wrong delimiter?" with ";", a tokenizing error or "target column missing"
    # with ",", depending on the indentation.
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG.replace('csv_delimiter: ";"',
                                           f"csv_delimiter: {json.dumps(delimiter)}"))
    source = tmp_path / "history.json"
    source.write_text(_bike_history(days=1).to_json(orient="records", indent=indent,
                                                     date_format="iso"))

    assert _refusal(config, source) == [
        f"cannot use {source} as the backtest source: looks like JSON, not CSV or "
        "Parquet: export it as CSV or Parquet"]


def test_a_folder_source_reads_compressed_csv_and_skips_other_files(tmp_path: Path) -> None:
    from ctpipe import labelled_history

    config = parse_config(BIKES_CONFIG, Path("bikes.yaml"))
    history = _bike_history(days=3)
    folder = tmp_path / "history"
    folder.mkdir()
    first, second, third = (history[history["hour_start"].dt.day == d] for d in (2, 3, 4))
    first.to_csv(folder / "a.csv", sep=";", index=False)
    second.to_csv(folder / "b.csv.gz", sep=";", index=False)
    third.to_csv(folder / "c.CSV.BZ2", sep=";", index=False)
    (folder / "notes.txt").write_text("not data")
    (folder / "d.gz").write_bytes(b"")  # compressed, but not a CSV by name
    frame = labelled_history.read_source(folder, config)
    assert len(frame) == len(history)
    assert frame["rentals"].sum() == pytest.approx(history["rentals"].sum())


def test_a_csv_with_decimal_commas_reads_as_numbers_once_the_config_says_so(
        tmp_path: Path) -> None:
    from ctpipe import labelled_history

    history = _bike_history(days=2)
    source = tmp_path / "history.csv"
    history.to_csv(source, sep=";", decimal=",", index=False)  # as a German spreadsheet does
    assert "," in source.read_text().splitlines()[1]  # the ";" file's commas are decimal ones
    config = parse_config(BIKES_CONFIG.replace('csv_delimiter: ";"',
                                               'csv_delimiter: ";"\n  csv_decimal: ","'),
                          Path("bikes.yaml"))
    frame = labelled_history.read_source(source, config)
    for column in ("temperature_c", "humidity", "wind_kmh", "rentals"):
        assert frame[column].dtype == "float64"
        np.testing.assert_allclose(frame[column], history[column])

    # Without the setting, the backtest refuses in one line naming the column and the setting.
    plain = tmp_path / "bikes.yaml"
    plain.write_text(BIKES_CONFIG, encoding="utf-8")
    [line] = _refusal(plain, source)
    assert "column 'temperature_c' holds numbers with a decimal comma" in line
    assert "set data.csv_decimal: ','" in line


def _refusal(config: Path, source: Path) -> list[str]:
    """The lines of a `ctpipe backtest` refused up front (exit 2)."""
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source)])
    assert result.exit_code == 2, result.output
    return result.output.splitlines()


def test_a_folder_whose_files_overlap_or_rename_a_column_is_refused_naming_the_file(
        ctpipe_home: Path, tmp_path: Path) -> None:
    # Before: an overlapping export made batches of doubled rows that trained, gated and
    # scored twice, without a word; a column renamed in one file was "an unexpected column
    # of every batch", naming neither the file nor the column it replaced.
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG)
    history = _bike_history(days=3)
    folder = tmp_path / "history"
    folder.mkdir()
    days = [history[history["hour_start"].dt.day == d] for d in (2, 3, 4)]
    days[0].to_csv(folder / "a.csv", sep=";", index=False)
    pd.concat([days[1], days[2]]).to_csv(folder / "b.csv", sep=";", index=False)
    days[2].to_csv(folder / "b (1).csv", sep=";", index=False)  # a second download

    assert _refusal(config, folder) == [
        f"cannot use {folder} as the backtest source: b.csv: {len(days[2]):,} "
        "of its rows are also in b (1).csv, value for value: the files of a folder source "
        "must not overlap (remove the copy, or cut the overlapping period from one of them)"]

    (folder / "b (1).csv").unlink()
    renamed = days[2].rename(columns={"temperature_c": "Temperature_C"})
    renamed.to_csv(folder / "c.csv", sep=";", index=False)
    days[1].to_csv(folder / "b.csv", sep=";", index=False)
    assert _refusal(config, folder) == [
        f"cannot use {folder} as the backtest source: c.csv: its columns differ "
        "from a.csv's (missing 'temperature_c'; extra 'Temperature_C'): every file of a "
        "folder source must have the same columns"]
    # The same rows twice within one file are left alone: only files repeating each other.
    pd.concat([days[0], days[0].head(2)]).to_csv(folder / "a.csv", sep=";", index=False)
    (folder / "c.csv").unlink()
    from ctpipe import labelled_history
    assert len(labelled_history.read_source(folder, parse_config(BIKES_CONFIG, config))) == \
        len(days[0]) + 2 + len(days[1])


def test_a_folder_names_the_file_whose_dates_are_written_another_way(tmp_path: Path) -> None:
    from ctpipe import labelled_history

    config = parse_config(BIKES_CONFIG, Path("bikes.yaml"))
    history = _bike_history(days=14)
    folder = tmp_path / "history"
    folder.mkdir()
    early = history[history["hour_start"].dt.day < 10]
    late = history[history["hour_start"].dt.day >= 10]
    early.to_csv(folder / "a.csv", sep=";", index=False)
    late.assign(hour_start=late["hour_start"].dt.strftime("%d/%m/%Y %H:%M")).to_csv(
        folder / "b.csv", sep=";", index=False)  # one export written day first
    with pytest.raises(ValueError) as err:
        labelled_history.read_source(folder, config)
    assert str(err.value).startswith(f"b.csv: time column 'hour_start': {len(late)} values "
                                     "that are not a date (e.g. ")
    # The odd file first: pandas reads the rest in its format, yet it is the one named.
    day = late["hour_start"].dt.day
    late[day < 12].to_csv(folder / "b.csv", sep=";", index=False)
    late[day >= 12].to_csv(folder / "c.csv", sep=";", index=False)
    early.assign(hour_start=early["hour_start"].dt.strftime("%d/%m/%Y %H:%M")).to_csv(
        folder / "a.csv", sep=";", index=False)
    with pytest.raises(ValueError, match=r"^a\.csv: time column 'hour_start': "):
        labelled_history.read_source(folder, config)
    early.to_csv(folder / "a.csv", sep=";", index=False)
    assert len(labelled_history.read_source(folder, config)) == len(history)


def test_a_folder_without_data_files_names_the_json_it_skipped(tmp_path: Path) -> None:
    from ctpipe import labelled_history

    config = parse_config(BIKES_CONFIG, Path("bikes.yaml"))
    folder = tmp_path / "history"
    folder.mkdir()
    records = _bike_history(days=1).to_json(orient="records", date_format="iso")
    for name in ("a.json", "b.JSON", "c.jsonl", "d.ndjson", "e.json", "f.json"):
        (folder / name).write_text(records)
    (folder / "export.txt").write_text("  \n" + records)  # JSON by its first bytes
    (folder / "notes.txt").write_text("not data")  # skipped, but not JSON: not named
    with pytest.raises(ValueError) as err:
        labelled_history.read_source(folder, config)
    assert str(err.value) == (
        f"{folder}: no .parquet, .pq or .csv (.csv.gz, ...) files found; skipped 7 files that "
        "look like JSON, not CSV or Parquet (a.json, b.JSON, c.jsonl, d.ndjson, e.json and 2 "
        "more): export them as CSV or Parquet")
    for path in folder.iterdir():
        if path.name != "a.json":
            path.unlink()
    with pytest.raises(ValueError, match=r"found; skipped 1 file that looks like JSON, not CSV "
                       r"or Parquet \(a\.json\): export it as CSV or Parquet$"):
        labelled_history.read_source(folder, config)


def test_a_relative_data_source_is_read_from_the_configs_folder(
        ctpipe_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    config = folder / "bikes.yaml"
    config.write_text(BIKES_CONFIG.replace("  csv_delimiter", "  source: data/history.csv\n"
                                           "  csv_delimiter"), encoding="utf-8")
    (folder / "data").mkdir()
    # Four days make too few batches for the window: refused up front, naming the file read.
    _bike_history(days=4).to_csv(folder / "data" / "history.csv", sep=";", index=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(app, ["backtest", str(config)])
    assert result.exit_code == 2, result.output
    source = folder / "data" / "history.csv"
    assert result.output.strip() == (
        f"cannot use {source} as the backtest source: training.window 5 needs 5 labelled "
        "batches; the source makes 4 daily batches")


@pytest.mark.parametrize(("files", "problem"), [
    ({"history.csv": "days4"}, "training.window 5 needs 5 labelled batches; the source makes 4 "
     "daily batches"),
    ({"a.csv": '[{"hour_start": "2025-06-02"}]'}, "a.csv: looks like JSON, not CSV or Parquet: "
     "export it as CSV or Parquet"),
    ({}, "no .parquet, .pq or .csv (.csv.gz, ...) files found"),
    # Before: only "no ... files found", silent about the JSON the user's data is in.
    ({"a.json": "[]", "b.json": "{}", "c.json": "[]"}, "no .parquet, .pq or .csv (.csv.gz, "
     "...) files found; skipped 3 files that look like JSON, not CSV or Parquet (a.json, "
     "b.json, c.json): export them as CSV or Parquet"),
], ids=["too-few-batches", "bad-file-in-it", "empty", "only-json"])
def test_a_relative_source_folder_is_named_once_and_resolved(
        ctpipe_home: Path, tmp_path: Path, files: dict[str, str], problem: str) -> None:
    # Before: "cannot use <dir>/configs/../data as the backtest source: <dir>/configs/../data:
    # ...": the path twice, with its "..".
    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "bikes.yaml"
    config.write_text(BIKES_CONFIG.replace("  csv_delimiter", "  source: ../data\n"
                                           "  csv_delimiter"), encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    for name, text in files.items():
        if text == "days4":
            _bike_history(days=4).to_csv(data / name, sep=";", index=False)
        else:
            (data / name).write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["backtest", str(config)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"cannot use {data.resolve()} as the backtest source: {problem}"]


def _refused(tmp_path: Path, *options: str) -> str:
    """The one line `ctpipe backtest` refuses 8 days of bike history with (exit 2)."""
    config = tmp_path / "bikes.yaml"
    config.write_text(BIKES_CONFIG, encoding="utf-8")
    source = tmp_path / "history.csv"
    _bike_history(days=8).to_csv(source, sep=";", index=False)
    result = CliRunner().invoke(app, ["backtest", str(config), "--source", str(source),
                                      *options])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].count(str(source)) <= 1, result.output  # named once
    return lines[0].replace(str(source), "<file>")


@pytest.mark.parametrize(("options", "message"), [
    # 2025-06-04..06-09 leaves 6 daily batches: the checks judge those, not the whole file.
    (("--start", "2025-06-04"), "cannot use <file> as the backtest source: training.window 5 "
     "needs 5 labelled batches; the source, from 2025-06-04 to its last batch, makes 6 daily "
     "batches, 4 of them labelled by the last one (data.label_delay 2)"),
    (("--start", "2025-06-03", "--end", "2025-06-06"), "cannot use <file> as the backtest "
     "source: training.window 5 needs 5 labelled batches; the source, from 2025-06-03 to "
     "2025-06-06, makes 4 daily batches"),
    (("--start", "2030-01-01"), "cannot use <file> as the backtest source: no batch "
     "dated from 2030-01-01 to its last; its batches run from 2025-06-02 to 2025-06-09"),
    (("--end", "2025-05-31"), "cannot use <file> as the backtest source: no batch "
     "dated from its first to 2025-05-31; its batches run from 2025-06-02 to 2025-06-09"),
    (("--start", "2025-06-08", "--end", "2025-06-03"),
     "--start 2025-06-08 is after --end 2025-06-03: no batch lies between"),
    (("--end", "june"),
     "--end 'june': not a valid date YYYY-MM-DD (Invalid isoformat string: 'june')"),
])
def test_start_and_end_keep_part_of_the_source(ctpipe_home: Path, tmp_path: Path,
                                               options: tuple[str, ...], message: str) -> None:
    assert _refused(tmp_path, *options) == message
