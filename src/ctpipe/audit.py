"""Append-only audit trail: one JSON line per decision (who, when, what, why).

Each line carries ``prev_sha256``, the sha256 of the line before it: a line changed or
deleted in the middle of the trail breaks the chain at the next line (chain_breaks), which
`ctpipe doctor` names. Appends hold an exclusive lock on the file, so two processes never
chain to the same line. A break whose cause is known (lines an older ctpipe wrote during an
upgrade) is accepted by a later record (`ctpipe accept-audit-break`), itself in the chain; it
names both lines' hashes, so the break shows again if either changes afterwards. Doctor still
lists an accepted break, as a note, so the trail's reader sees it was there.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ctpipe import settings


def actor() -> str:
    try:
        return f"{getpass.getuser()}@ctpipe"
    except (KeyError, OSError):
        return "unknown@ctpipe"


def record(action: str, use_case: str, why: str, *, who: str | None = None,
           details: dict | None = None, path: Path | None = None) -> dict:
    """Append one record; fsync so a crash right after a decision cannot lose its trace."""
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "who": who or actor(),
        "action": action,
        "use_case": use_case,
        "why": why,
        "details": details or {},
    }
    target = path or settings.audit_log_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes
        last, torn = _last_line(fh)
        entry["prev_sha256"] = line_sha256(last)
        # A line torn by a crash is ended first: the new record must not run into it.
        fh.write((b"\n" if torn else b"") + json.dumps(entry, default=str).encode("utf-8")
                 + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    return entry


GENESIS = ""  # the prev_sha256 of the first line of a trail


def line_sha256(line: bytes) -> str:
    """The chain's hash of one line: its bytes without the newline (GENESIS for none).
    Lines are split at newlines only; blank ones are no lines of the trail."""
    body = line.rstrip(b"\n")
    return hashlib.sha256(body).hexdigest() if body.strip() else GENESIS


def _last_line(fh) -> tuple[bytes, bool]:  # noqa: ANN001 - a binary file open for appending
    """The file's last non-blank line, read backwards from its end (the trail grows for
    years), and whether the file ends without a newline (a line torn by a crash)."""
    position = fh.seek(0, os.SEEK_END)
    if position == 0:
        return b"", False
    fh.seek(position - 1)
    torn = fh.read(1) != b"\n"
    tail = b""
    while position > 0:
        step = min(4096, position)
        position -= step
        fh.seek(position)
        tail = fh.read(step) + tail
        lines = tail.split(b"\n")
        filled = [i for i, line in enumerate(lines) if line.strip()]
        # The last non-blank line is whole once a newline precedes it, or the file starts.
        if filled and (filled[-1] > 0 or position == 0):
            return lines[filled[-1]], torn
    return b"", torn


BREAK_ACCEPTED = "audit.break_accepted"


@dataclass(frozen=True)
class ChainBreak:
    """One break: the line whose ``prev_sha256`` is wrong or missing, what doctor says of
    it, and ``key``, the hashes of the line before it and of itself (what an acceptance
    names)."""

    line: int
    text: str
    key: str


def chain_breaks(path: Path) -> list[str]:
    """Where the trail's hash chain breaks and no later record accepts the break: a line
    whose ``prev_sha256`` is not the hash of the line before it (that line was changed, or
    lines were deleted or inserted between). Lines written before the chain existed carry no
    ``prev_sha256`` and are not judged; one without it after a chained line is a break
    (stripped, inserted by hand, or written by an older ctpipe)."""
    return [b.text for b in open_breaks(path)]


def open_breaks(path: Path) -> list[ChainBreak]:
    """chain_breaks, with each break's line and key. An acceptance counts only where the
    chain vouches for it (its own ``prev_sha256`` matches the line before it) and only for a
    break above it with the same line and key: one inserted among unchained lines, or ahead
    of the break, accepts nothing."""
    return scan_chain(path).breaks


@dataclass(frozen=True)
class AcceptedBreak:
    """A break an acceptance counted for (open_breaks' rules): the break, and the line, time,
    operator and reason of the record that accepted it."""

    found: ChainBreak
    line: int
    at: str
    who: str
    why: str


@dataclass(frozen=True)
class ChainScan:
    breaks: list[ChainBreak]  # open: no acceptance counts for them
    accepted: list[AcceptedBreak]


def scan_chain(path: Path) -> ChainScan:
    """The trail's breaks, open and accepted, from one read: doctor names the open ones as
    problems and the accepted ones as notes, and one read keeps the two lists consistent
    while the trail grows."""
    if not path.is_file():
        return ChainScan([], [])
    breaks: dict[int, ChainBreak] = {}
    accepted: list[AcceptedBreak] = []
    previous, previous_n, chained = b"", 0, False
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            line = raw.rstrip(b"\n")
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                claimed = entry.get("prev_sha256")
            except (ValueError, AttributeError):  # named apart (doctor: unreadable); the
                previous, previous_n = line, n    # next line's hash still covers it
                continue
            key = f"{line_sha256(previous)}:{line_sha256(line)}"
            if claimed is None:
                if chained:
                    breaks[n] = ChainBreak(n, f"{path}: line {n} has no prev_sha256 after "
                                              "chained lines", key)
            elif claimed != line_sha256(previous):
                chained = True
                before = f"line {previous_n}" if previous_n else "the start of the trail"
                breaks[n] = ChainBreak(n, f"{path}: line {n}'s prev_sha256 does not match "
                                          f"{before}: a line was changed, deleted or inserted "
                                          "there", key)
            else:
                chained = True
                if entry.get("action") == BREAK_ACCEPTED:
                    found = _accept(breaks, entry.get("details") or {})
                    if found is not None:
                        accepted.append(AcceptedBreak(
                            found, n, str(entry.get("at", "")), str(entry.get("who", "")),
                            str(entry.get("why", ""))))
            previous, previous_n = line, n
    return ChainScan(list(breaks.values()), accepted)


def _accept(breaks: dict[int, ChainBreak], details: dict) -> ChainBreak | None:
    """The break ``details`` accepts, taken out of ``breaks`` (None: it accepts nothing)."""
    found = breaks.get(details.get("line"))
    if found is not None and found.key == details.get("key"):
        return breaks.pop(found.line)
    return None


def accept_break(path: Path, found: ChainBreak, use_case: str, why: str, *,
                 who: str | None = None) -> dict:
    """Record that ``found`` has a known cause: chain_breaks no longer names it (scan_chain
    lists it as accepted)."""
    return record(BREAK_ACCEPTED, use_case, why, who=who, path=path,
                  details={"line": found.line, "key": found.key, "break": found.text})


def vouched_for(line: bytes, following: bytes) -> bool:
    """Whether ``following`` chains over ``line``: a line that is not JSON but that the next
    record's prev_sha256 covers was torn by a crash while it was written, not altered after."""
    try:
        return json.loads(following).get("prev_sha256") == line_sha256(line)
    except (ValueError, AttributeError):
        return False


def read(use_case: str | None = None, path: Path | None = None) -> list[dict]:
    target = path or settings.audit_log_path()
    if not target.is_file():
        return []
    entries = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    return [e for e in entries if use_case is None or e["use_case"] == use_case]
