"""The audit trail's hash chain: each line names the sha256 of the line before it, so a
decision changed or deleted after it was written is found (ctpipe doctor: audit-chain-broken).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ctpipe import audit


def _write(path: Path, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        audit.record("model.promoted", "demand", f"decision {i}", who="ops", path=path,
                     details={"version": i})


def _old_worker_writes(trail: Path, use_case: str) -> int:
    """A line from a worker still on an older ctpipe, during an upgrade (no prev_sha256); its
    line number."""
    with trail.open("ab") as fh:
        fh.write(json.dumps({"at": "2026-12-07T10:00:00+00:00", "who": "old@ctpipe",
                             "action": "cycle.completed", "use_case": use_case, "why": "old",
                             "details": {}}).encode() + b"\n")
    return len(trail.read_bytes().splitlines())


def test_each_line_names_the_hash_of_the_line_before(tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    _write(trail, 3)
    lines = trail.read_bytes().splitlines()
    claimed = [json.loads(line)["prev_sha256"] for line in lines]
    assert claimed == [audit.GENESIS, audit.line_sha256(lines[0]), audit.line_sha256(lines[1])]
    assert audit.chain_breaks(trail) == []
    assert [e["why"] for e in audit.read("demand", trail)] == [f"decision {i}" for i in range(3)]


def test_a_changed_or_deleted_line_breaks_the_chain_at_the_next(tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    _write(trail, 4)
    lines = trail.read_text(encoding="utf-8").splitlines(keepends=True)

    trail.write_text("".join(lines[:1] + lines[2:]), encoding="utf-8")  # line 2 deleted
    assert audit.chain_breaks(trail) == [
        f"{trail}: line 2's prev_sha256 does not match line 1: a line was changed, deleted or "
        "inserted there"]

    edited = lines[1].replace("decision 1", "decision one")
    trail.write_text("".join([lines[0], edited, *lines[2:]]), encoding="utf-8")
    assert [b.split(": ", 1)[1][:7] for b in audit.chain_breaks(trail)] == ["line 3'"]

    stripped = json.dumps({k: v for k, v in json.loads(lines[2]).items()
                           if k != "prev_sha256"}) + "\n"
    trail.write_text("".join([lines[0], lines[1], stripped, lines[3]]), encoding="utf-8")
    breaks = audit.chain_breaks(trail)
    assert breaks[0] == f"{trail}: line 3 has no prev_sha256 after chained lines"
    assert len(breaks) == 2  # and line 4 no longer follows the line it was chained to


def test_lines_from_before_the_chain_and_a_torn_line_are_no_break(tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    old = [json.dumps({"at": "2026-01-01T00:00:00+00:00", "who": "ops", "action": "x",
                       "use_case": "demand", "why": f"old {i}", "details": {}}) for i in range(2)]
    trail.write_text("\n".join(old) + "\n" + '{"at": "2026-', encoding="utf-8")  # killed
    _write(trail, 2)
    lines = trail.read_bytes().splitlines()
    assert lines[2] == b'{"at": "2026-'  # the torn line stays, ended; doctor names it apart
    assert json.loads(lines[3])["prev_sha256"] == audit.line_sha256(lines[2])
    assert audit.chain_breaks(trail) == []


def test_writers_at_once_never_chain_to_the_same_line(tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    writers = [threading.Thread(target=_write, args=(trail, 60, 100 * w)) for w in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert len(trail.read_bytes().splitlines()) == 180
    assert audit.chain_breaks(trail) == []


def test_blank_and_crlf_lines_chain_as_the_check_reads_them(tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    _write(trail, 1)
    with trail.open("ab") as fh:
        fh.write(b"   \n\n")  # blank lines, e.g. an editor's
    _write(trail, 1, start=1)
    line = trail.read_bytes().rstrip(b"\n") + b"\r\n"  # a Windows editor's line end
    trail.write_bytes(line)
    _write(trail, 1, start=2)
    assert audit.chain_breaks(trail) == []


def test_the_first_lines_deleted_are_named(tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    _write(trail, 3)
    trail.write_bytes(b"\n".join(trail.read_bytes().split(b"\n")[1:]))
    assert audit.chain_breaks(trail) == [
        f"{trail}: line 1's prev_sha256 does not match the start of the trail: a line was "
        "changed, deleted or inserted there"]


def test_doctor_names_an_altered_line_but_not_one_torn_by_a_crash(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from ctpipe.doctor import _audit_entries

    trail = tmp_path / "audit.jsonl"
    _write(trail, 1)
    with trail.open("ab") as fh:
        fh.write(b'{"at": "2026-')  # killed mid-line; the next record chains over it
    _write(trail, 1, start=1)
    ws = SimpleNamespace(audit_path=trail, name="demand")
    entries, bad = _audit_entries(ws)
    assert [e["why"] for e in entries] == ["decision 0", "decision 1"] and bad == []

    lines = trail.read_bytes().split(b"\n")
    lines[1] = b'{"at": "2027-'  # the torn line changed afterwards: no longer vouched for
    trail.write_bytes(b"\n".join(lines))
    assert _audit_entries(ws)[1] == [f"{trail}: line 2 is not JSON"]


def test_a_break_with_a_known_cause_is_accepted_and_named_again_if_changed(
        ctpipe_home: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ctpipe.cli import app
    from tests.helpers import simulated_workspace, small_config

    ws = simulated_workspace(small_config(tmp_path), days=2)
    trail = ws.audit_path
    _write(trail, 2)
    old = _old_worker_writes(trail, ws.name)
    _write(trail, 1, start=2)
    runner = CliRunner()
    doctor = runner.invoke(app, ["doctor", ws.ref])
    assert f"line {old} has no prev_sha256 after chained lines" in doctor.output

    wrong = runner.invoke(app, ["accept-audit-break", ws.ref, "--line", str(old - 1),
                                "--reason", "upgrade"])
    assert wrong.exit_code == 2 and wrong.output == (
        f"--line {old - 1}: the audit trail {trail} has no break there to accept (lines with "
        f"one: {old})\n")
    blank = runner.invoke(app, ["accept-audit-break", ws.ref, "--line", str(old),
                                "--reason", " "])
    assert blank.exit_code == 2 and audit.read(path=trail)[-1]["why"] == "decision 2"
    accepted = runner.invoke(app, ["accept-audit-break", ws.ref, "--line", str(old), "--reason",
                                   "a worker on the old version during the upgrade",
                                   "--operator", "ops-lead"])
    assert accepted.exit_code == 0, accepted.output
    assert accepted.output.startswith(f"accepted: {trail}: line {old} has no prev_sha256")
    entry = audit.read(path=trail)[-1]
    assert (entry["action"], entry["who"], entry["details"]["line"]) == (
        audit.BREAK_ACCEPTED, "ops-lead", old)
    assert audit.chain_breaks(trail) == []
    assert "audit-chain-broken" not in runner.invoke(app, ["doctor", ws.ref]).output

    # The accepted line changed afterwards: named again, and so is the line after it.
    lines = trail.read_bytes().split(b"\n")
    lines[old - 1] = lines[old - 1].replace(b'"why": "old"', b'"why": "edited"')
    trail.write_bytes(b"\n".join(lines))
    assert [b.line for b in audit.open_breaks(trail)] == [old, old + 1]
    assert audit.scan_chain(trail).accepted == []  # the acceptance names the old hashes


def test_doctor_lists_an_accepted_break_as_a_note_not_a_problem(
        ctpipe_home: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ctpipe.cli import app
    from tests.helpers import simulated_workspace, small_config

    ws = simulated_workspace(small_config(tmp_path), days=2)
    trail = ws.audit_path
    _write(trail, 1)
    assert _old_worker_writes(trail, ws.name) == 2
    runner = CliRunner()
    broken = runner.invoke(app, ["doctor", ws.ref])
    assert broken.exit_code == 1 and "note:" not in broken.output
    accepted = runner.invoke(app, ["accept-audit-break", ws.ref, "--line", "2", "--reason",
                                   "worker on 0.x during the upgrade", "--operator", "ops-lead"])
    assert accepted.exit_code == 0, accepted.output
    at = audit.read(path=trail)[-1]["at"]

    doctor = runner.invoke(app, ["doctor", ws.ref])
    # Still healthy, exit 0: the note only keeps the break in view of whoever reads doctor.
    assert doctor.exit_code == 0, doctor.output
    assert doctor.output.splitlines() == [
        f"note: audit-break-accepted: {trail}: line 2 has no prev_sha256 after chained lines; "
        f"accepted on line 3 by ops-lead at {at} (reason: worker on 0.x during the upgrade)",
        f"{ws.name}: healthy"]
    as_json = json.loads(runner.invoke(app, ["doctor", ws.ref, "--json"]).output)
    assert as_json["healthy"] is True and as_json["problems"] == []
    assert [n["code"] for n in as_json["notes"]] == ["audit-break-accepted"]
    assert "ops-lead" in as_json["notes"][0]["message"]


def test_an_acceptance_counts_only_chained_and_after_the_break_it_names(tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    legacy = {"at": "2025-01-01T00:00:00+00:00", "who": "ops", "action": "model.promoted",
              "use_case": "demand", "details": {}}
    trail.write_bytes(json.dumps({**legacy, "why": "before the chain"}).encode() + b"\n")
    _write(trail, 3)
    lines = trail.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"decision 1", b"decision one")  # an edit: line 4 breaks
    trail.write_bytes(b"\n".join(lines))
    (edit,) = audit.open_breaks(trail)
    assert edit.line == 4
    forged = {**legacy, "why": "hide it", "action": audit.BREAK_ACCEPTED,
              "details": {"line": 4, "key": edit.key}}
    # Inserted among the lines from before the chain, where nothing is judged: ignored.
    lines = trail.read_bytes().split(b"\n")
    trail.write_bytes(b"\n".join([json.dumps(forged).encode(), *lines]))
    assert [b.line for b in audit.open_breaks(trail)] == [5]
    # Appended without the chain's hash: a break of its own, and accepts nothing.
    trail.write_bytes(b"\n".join(lines))
    with trail.open("ab") as fh:
        fh.write(json.dumps(forged).encode() + b"\n")
    assert [b.line for b in audit.open_breaks(trail)] == [4, 5]
    # Chained, but naming another line, or the right line with another key: nothing.
    trail.write_bytes(b"\n".join(lines))
    audit.accept_break(trail, audit.ChainBreak(3, "x", edit.key), "demand", "wrong line")
    audit.accept_break(trail, audit.ChainBreak(4, "x", "0:0"), "demand", "wrong key")
    assert [b.line for b in audit.open_breaks(trail)] == [4]
    assert audit.scan_chain(trail).accepted == []  # none of those counted: none listed
    audit.accept_break(trail, edit, "demand", "the edit is explained", who="ops-lead")
    assert audit.open_breaks(trail) == []
    (done,) = audit.scan_chain(trail).accepted
    assert (done.found, done.line, done.who, done.why) == (
        edit, 7, "ops-lead", "the edit is explained")
    # Accepted twice: the second finds no open break, and the break is listed once.
    audit.accept_break(trail, edit, "demand", "again")
    assert audit.scan_chain(trail).accepted == [done]
