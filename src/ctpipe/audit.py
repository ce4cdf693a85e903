"""Append-only audit trail: one JSON line per decision (who, when, what, why)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
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
    with target.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return entry


def read(use_case: str | None = None, path: Path | None = None) -> list[dict]:
    target = path or settings.audit_log_path()
    if not target.is_file():
        return []
    entries = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    return [e for e in entries if use_case is None or e["use_case"] == use_case]
