"""`ctpipe doctor` names a batch whose labels were set aside until a corrected file lands."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from ctpipe import audit, landing
from ctpipe.cli import app
from tests.helpers import day, simulated_workspace, small_config


def test_doctor_names_labels_set_aside_until_they_are_replaced(ctpipe_home: Path,
                                                               tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    bad_day = dt.date.fromisoformat(day(3))
    path = landing.labels_path(ws.landing, bad_day)
    good = tmp_path / "good.parquet"
    shutil.copy(path, good)
    target = ws.config.data.target
    pd.read_parquet(path).rename(columns={target: "tonnes"}).to_parquet(path)
    # A cycle's training window judges the labels: this one is set aside.
    assert bad_day not in ws.store.labelled_dates(dt.date.fromisoformat(day(8)))
    assert not path.exists()

    doctor = CliRunner().invoke(app, ["doctor", ws.ref])
    assert doctor.exit_code == 1
    [line] = [x for x in doctor.output.splitlines() if x.startswith("labels-set-aside: ")]
    assert line.startswith(f"labels-set-aside: batch {day(3)}: its labels were set aside (")
    assert f"column {target!r} is missing" in line
    # The fix's command names the use case as the operator did (here its config's path).
    assert line.endswith(f"(fix: put a corrected labels file at {path}, or, if none will "
                         f"come, ctpipe accept-unlabelled {ws.ref} --date {day(3)} --reason "
                         "TEXT)")

    shutil.copy(good, path)
    assert "labels-set-aside" not in CliRunner().invoke(app, ["doctor", ws.ref]).output


def test_an_operator_accepts_that_a_batch_stays_unlabelled(ctpipe_home: Path,
                                                          tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    bad_day = dt.date.fromisoformat(day(3))
    path = landing.labels_path(ws.landing, bad_day)
    target = ws.config.data.target
    good = pd.read_parquet(path)
    good.rename(columns={target: "tonnes"}).to_parquet(path)
    ws.store.labelled_dates(dt.date.fromisoformat(day(8)))  # sets the file aside
    runner = CliRunner()

    # Nothing set aside for that batch, or no reason: refused, nothing written.
    other = runner.invoke(app, ["accept-unlabelled", ws.ref, "--date", day(4), "--reason", "x"])
    assert other.exit_code == 2 and f"--date {day(4)}: no labels of that batch are set " \
        "aside" in other.output
    blank = runner.invoke(app, ["accept-unlabelled", ws.ref, "--date", day(3), "--reason", " "])
    assert blank.exit_code == 2 and "--reason" in blank.output
    assert not ws.audit_path.exists() or "labels.accepted" not in ws.audit_path.read_text()

    accepted = runner.invoke(app, ["accept-unlabelled", ws.ref, "--date", day(3), "--reason",
                                   "INC-9: the label feed of that day is lost",
                                   "--operator", "oncall"])
    assert accepted.exit_code == 0, accepted.output
    assert accepted.output.startswith(f"batch {day(3)}: stays unlabelled (its labels were "
                                      "set aside: ")
    [entry] = [e for e in audit.read(ws.name, ws.audit_path)
               if e["action"] == "labels.accepted_unlabelled"]
    assert entry["who"] == "oncall" and entry["why"].startswith("INC-9")
    assert entry["details"]["batch_date"] == day(3)
    doctor = runner.invoke(app, ["doctor", ws.ref])
    assert "labels-set-aside" not in doctor.output, doctor.output
    # The rejected file stays where it was, as evidence.
    assert (Path(entry["details"]["set_aside"]) / path.name).is_file()

    # A corrected file is used as ever; a new bad one is named again.
    good.to_parquet(path)
    assert bad_day in ws.store.labelled_dates(dt.date.fromisoformat(day(8)))
    good.rename(columns={target: "t"}).to_parquet(path)
    assert bad_day not in ws.store.labelled_dates(dt.date.fromisoformat(day(8)))
    again = runner.invoke(app, ["doctor", ws.ref]).output
    assert f"labels-set-aside: batch {day(3)}: its labels were set aside" in again


def test_doctor_names_labels_no_cycle_sees(ctpipe_home: Path, tmp_path: Path) -> None:
    ws = simulated_workspace(small_config(tmp_path), days=9)
    path = landing.labels_path(ws.landing, dt.date.fromisoformat(day(4)))
    # An export in another format: the batch would stay unlabelled without a word.
    pd.read_parquet(path).to_csv(path.with_suffix(".csv"), index=False)
    path.unlink()
    (ws.landing / "batches" / "notes.parquet").write_bytes(b"PAR1")

    doctor = CliRunner().invoke(app, ["doctor", ws.ref])
    assert doctor.exit_code == 1
    lines = [x for x in doctor.output.splitlines() if x.startswith("files-not-landed: ")]
    assert lines == [
        f"files-not-landed: {ws.landing / 'batches'}: found notes.parquet, but landed batches "
        "are Parquet files named YYYY-MM-DD.parquet (rename it after its batch date) (fix: "
        "convert or rename them as said, or move them out of the landing zone)",
        f"files-not-landed: {ws.landing / 'labels'}: found {day(4)}.csv, but labels are "
        "Parquet files named like their batch, YYYY-MM-DD.parquet (convert it, e.g. with "
        "pandas' to_parquet) (fix: convert or rename them as said, or move them out of the "
        "landing zone)"]

    pd.read_csv(path.with_suffix(".csv")).to_parquet(path, index=False)
    path.with_suffix(".csv").unlink()
    (ws.landing / "batches" / "notes.parquet").unlink()
    assert "files-not-landed" not in CliRunner().invoke(app, ["doctor", ws.ref]).output


def test_a_weekly_batch_named_by_another_day_of_its_week_is_not_a_second_batch(
        ctpipe_home: Path, tmp_path: Path) -> None:
    # Before: 2026-03-08.parquet (a Sunday) beside 2026-03-02.parquet (its week's Monday)
    # counted as two batches, and a challenger was gated on a copy of the rows it served.
    import yaml

    from ctpipe.workspace import open_workspace

    path = small_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["batch_frequency"] = "weekly"
    path.write_text(yaml.safe_dump(raw))
    ws = open_workspace(str(path))
    folder = ws.landing / "batches"
    folder.mkdir(parents=True)
    for name in ("2026-03-02", "2026-03-08", "2026-03-09"):
        pd.DataFrame({"a": [1]}).to_parquet(folder / f"{name}.parquet")

    assert ws.store.batch_dates() == [dt.date(2026, 3, 2), dt.date(2026, 3, 9)]
    said = ("found 2026-03-08.parquet, but a weekly batch is named by the first day of its "
            "week (Monday, data.week_start): 2026-03-08 is in the week of 2026-03-02 (rename "
            "it to 2026-03-02.parquet, or remove it if that file holds the same rows)")
    doctor = CliRunner().invoke(app, ["doctor", ws.ref])
    assert doctor.exit_code == 1
    assert f"files-not-landed: {folder}: {said} (fix: " in doctor.output
    cycle = CliRunner().invoke(app, ["cycle", ws.ref, "--date", "2026-03-08"])
    assert cycle.exit_code == 2
    assert cycle.output.strip() == (f"--date 2026-03-08: no batch for that date in {folder}: "
                                    f"{said}")

    (folder / "2026-03-08.parquet").unlink()
    assert "files-not-landed" not in CliRunner().invoke(app, ["doctor", ws.ref]).output
    monthly = ws.config.model_copy(update={"data": ws.config.data.model_copy(
        update={"batch_frequency": "monthly"})})
    assert landing.misnamed_batches(ws.landing, monthly) == (
        "found 2026-03-02.parquet, 2026-03-09.parquet, but a monthly batch is named by the "
        "first day of its month (the 1st): 2026-03-02 is in the month of 2026-03-01 (rename "
        "each to its month's first day, keeping one file per month)")
    # A cycle with no --date names them when no batch is left.
    (folder / "2026-03-02.parquet").rename(folder / "2026-03-03.parquet")
    (folder / "2026-03-09.parquet").unlink()
    cycle = CliRunner().invoke(app, ["cycle", ws.ref])
    assert cycle.exit_code == 2
    assert cycle.output.strip() == (
        f"no batches in {folder}: found 2026-03-03.parquet, but a weekly batch is named by the "
        "first day of its week (Monday, data.week_start): 2026-03-03 is in the week of "
        "2026-03-02 (rename it to 2026-03-02.parquet, or remove it if that file holds the "
        "same rows)")


def test_labels_a_run_set_aside_are_audited_once(ctpipe_home: Path, tmp_path: Path) -> None:
    from ctpipe.flows.cycle import cycle_flow

    ws = simulated_workspace(small_config(tmp_path), days=9)
    bad_day = dt.date.fromisoformat(day(3))
    path = landing.labels_path(ws.landing, bad_day)
    target = ws.config.data.target
    pd.read_parquet(path).rename(columns={target: "tonnes"}).to_parquet(path)

    cycle_flow(use_case=ws.ref, batch_date=day(7))  # its training window reads the labels

    [entry] = [e for e in audit.read(ws.name, ws.audit_path) if e["action"] == "labels.set_aside"]
    folder = ws.quarantine / day(3) / "labels-attempt-1"
    assert entry["why"].startswith(f"labels of batch {day(3)} were set aside: ")
    assert f"column {target!r} is missing" in entry["why"]
    assert entry["details"]["folder"] == str(folder) and not path.exists()
    assert (folder / landing.LABELS_AUDITED).is_file()
    cycle_flow(use_case=ws.ref, batch_date=day(8))  # nothing new set aside: nothing again
    assert [e["action"] for e in audit.read(ws.name, ws.audit_path)].count(
        "labels.set_aside") == 1


def test_a_set_aside_killed_before_its_audit_is_audited_by_the_next_run(
        ctpipe_home: Path, tmp_path: Path) -> None:
    from ctpipe.steps.labels_set_aside import audit_labels_set_aside
    from ctpipe.steps.ports import Runtime
    from ctpipe.trace import TraceSink
    from tests.fakes import MemoryRegistry

    ws = simulated_workspace(small_config(tmp_path), days=9)
    path = landing.labels_path(ws.landing, dt.date.fromisoformat(day(3)))
    pd.read_parquet(path).iloc[:-1].to_parquet(path)  # a row short
    ws.store.labelled_dates(dt.date.fromisoformat(day(8)))  # moved; the run dies here
    sink = TraceSink(ws.audit_path)
    rt = Runtime(config=ws.config, model_name=ws.model_name, store=ws.store,
                 models=MemoryRegistry(ws.model_name), publish=sink.publish, traced=sink.traced)

    first = audit_labels_set_aside(rt)
    (ws.quarantine / day(3) / "labels-attempt-1" / landing.LABELS_AUDITED).unlink()  # killed
    again = audit_labels_set_aside(rt)  # before its mark: the trail has it, not written twice

    assert [d.subject for d in first] == [f"batch {day(3)}"] and again == []
    assert [e["action"] for e in audit.read(ws.name, ws.audit_path)] == ["labels.set_aside"]
    assert audit_labels_set_aside(rt) == [] and ws.store.unaudited_labels_set_aside() == []
