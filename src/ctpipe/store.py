"""What ctpipe reads and writes besides the registry, behind one interface.

``Store`` is what the steps ask for batches, labels, quarantine, cycle records and
predictions. ``LandingZoneStore`` is today's implementation on disk (the landing zone and the
folders beside it); a database-backed store implements the same methods. Tests of the core use
an in-memory one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa

from ctpipe import landing
from ctpipe.batch_reader import read_batch_file
from ctpipe.config import UseCaseConfig
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.integrity import file_sha256
from ctpipe.locks import held
from ctpipe.records import CycleRecord, PromotionIntent, with_history

# Intent files this process writes, each held open with an exclusive flock until cleared: the
# kernel drops the lock when the process dies, which is how another run tells an intent whose
# run died (lock free) from one still being carried out (lock held).
_HELD: dict[Path, int] = {}


def _readable(path: Path) -> CycleRecord | None:
    """The record, or None when it is unreadable (doctor lists those apart) or gone."""
    try:
        return CycleRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


SET_ASIDE_INTENT = "set_aside.json"  # in a quarantine attempt folder: an operator's set-aside
SET_ASIDE_DONE = "set_aside.done"  # beside it once the batch moved: a file put back stays
NOT_MOVED = "not_moved.md"  # beside it: why the batch never moved (it changed or left first)


@dataclass(frozen=True)
class PendingSetAside:
    """An operator's set-aside written down (its evidence folder and intent) but not moved."""

    day: dt.date
    folder: str
    intent: dict  # operator, reason, verdict, batch_sha256, decision_id, at


class Store(Protocol):
    def batch_dates(self) -> list[dt.date]: ...
    def batch_source(self, day: dt.date) -> str: ...
    def read_batch(self, day: dt.date) -> pd.DataFrame: ...
    def row_counts(self, days: list[dt.date]) -> list[int]: ...
    def labelled_dates(self, as_of: dt.date) -> list[dt.date]: ...
    def labels_arrived(self, as_of: dt.date) -> list[dt.date]: ...
    def read_labelled(self, dates: list[dt.date], *,
                      validated: bool = False) -> pd.DataFrame: ...
    def label_rows(self, dates: list[dt.date]) -> int: ...
    def quarantine(self, day: dt.date, evidence: dict[str, str], *,
                   before_move: Callable[[str], None] | None = None) -> str: ...
    def batch_fingerprint(self, day: dt.date) -> str: ...
    def remember_passed(self, day: dt.date, fingerprint: str, *,
                        on_replaced: Callable[[str, str], None] | None = None) -> None: ...
    def unaudited_labels_set_aside(self) -> list[landing.SetAsideLabels]: ...
    def mark_audited(self, aside: landing.SetAsideLabels) -> None: ...
    def auditing(self, aside: landing.SetAsideLabels
                 ) -> contextlib.AbstractContextManager[bool]: ...
    def validated_as_is(self, day: dt.date) -> bool: ...
    def read_record(self, day: dt.date) -> CycleRecord | None: ...
    def write_record(self, record: CycleRecord) -> None: ...
    def last_record(self) -> CycleRecord | None: ...
    def predictions_exist(self, day: dt.date) -> bool: ...
    def predictions_location(self, day: dt.date) -> str: ...
    def record_intent(self, intent: PromotionIntent) -> None: ...
    def clear_intent(self, intent_id: str) -> None: ...
    def claim_orphaned_intents(self) -> list[PromotionIntent]: ...
    def release_intents(self) -> None: ...
    def write_predictions(self, day: dt.date, frame: pd.DataFrame) -> str: ...
    def working_on(self, day: dt.date) -> contextlib.AbstractContextManager[None]: ...
    def idle(self, day: dt.date) -> contextlib.AbstractContextManager[bool]: ...
    def abandoned(self) -> list[CycleRecord]: ...
    def open_attempt(self, day: dt.date, evidence: dict[str, str]) -> str: ...
    def pending_set_asides(self) -> list[PendingSetAside]: ...
    def finish_set_aside(self, pending: PendingSetAside,
                         before_move: Callable[[], None]) -> str | None: ...
    def void_set_aside(self, pending: PendingSetAside, why: str) -> None: ...


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class LandingZoneStore:
    """Batches and labels as Parquet files in a landing zone; records as JSON beside them."""

    config: UseCaseConfig
    landing: Path
    records: Path
    quarantine_root: Path
    predictions: Path
    intents: Path

    def batch_dates(self) -> list[dt.date]:
        return landing.batch_dates(self.landing, self.config)

    def batch_source(self, day: dt.date) -> str:
        return str(landing.batch_path(self.landing, day))

    def read_batch(self, day: dt.date) -> pd.DataFrame:
        return read_batch_file(landing.batch_path(self.landing, day), self.config)

    def row_counts(self, days: list[dt.date]) -> list[int]:
        """The row counts of those days' batches whose footer can be read. A truncated or
        empty file among the recent batches is left out of the comparison, never fatal to
        another batch's validation: its own validation sets it aside."""
        counts = []
        for day in days:
            try:
                counts.append(landing.row_count(landing.batch_path(self.landing, day)))
            except (OSError, pa.ArrowException):
                continue
        return counts

    def labelled_dates(self, as_of: dt.date) -> list[dt.date]:
        return landing.labelled_dates(self.landing, self.config, as_of,
                                      quarantine=self.quarantine_root)

    def unaudited_labels_set_aside(self) -> list[landing.SetAsideLabels]:
        return landing.unaudited_labels_set_aside(self.quarantine_root)

    def mark_audited(self, aside: landing.SetAsideLabels) -> None:
        with contextlib.suppress(FileNotFoundError):  # moved away by hand meanwhile
            landing.write_text_atomic(aside.folder / landing.LABELS_AUDITED,
                                      "in the audit trail\n")

    @contextlib.contextmanager
    def auditing(self, aside: landing.SetAsideLabels) -> Iterator[bool]:
        """Held while a run audits and marks the set-aside, so two runs never both audit it;
        True while it is still to audit (another run may have, meanwhile)."""
        with held(aside.folder.parent / ".labels-audit.lock"):
            yield not (aside.folder / landing.LABELS_AUDITED).exists()

    def labels_arrived(self, as_of: dt.date) -> list[dt.date]:
        return landing.arrived_dates(self.landing, self.config, as_of,
                                     quarantine=self.quarantine_root)

    def read_labelled(self, dates: list[dt.date], *,
                      validated: bool = False) -> pd.DataFrame:
        """The batches with their labels. ``validated``: each file must be, byte for byte, the
        one that passed validation (for training: nothing changed since the window's check)."""
        return landing.load_labelled(self.landing, self.config, dates, passed={
            d: self._passed_fingerprint(d) for d in dates} if validated else None)

    def label_rows(self, dates: list[dt.date]) -> int:
        return sum(landing.row_count(landing.labels_path(self.landing, d)) for d in dates)

    def quarantine(self, day: dt.date, evidence: dict[str, str], *,
                   before_move: Callable[[str], None] | None = None) -> str:
        """Move the batch out of the landing zone into a new ``<date>/attempt-N/`` folder.

        Each attempt gets its own folder, so re-running a batch never overwrites an earlier
        attempt's evidence. The evidence is written (whole, through a rename) before the batch
        moves: a quarantined batch always has its reasons beside it. ``before_move(folder)``
        runs between the two (to trace the move before it happens: a run killed in between
        leaves the batch in place, and the next run judges it again).
        """
        source = landing.batch_path(self.landing, day)
        folder = self.open_attempt(day, evidence)
        if before_move is not None:
            before_move(folder)
        # Gone already (another run moved it first): this attempt keeps its evidence only.
        with contextlib.suppress(FileNotFoundError):
            shutil.move(str(source), Path(folder) / source.name)
        return folder

    def open_attempt(self, day: dt.date, evidence: dict[str, str]) -> str:
        """A new ``<date>/attempt-N/`` quarantine folder holding ``evidence`` (each file whole,
        through a rename); the batch stays where it is."""
        folder = landing.new_attempt_folder(self.quarantine_root / day.isoformat())
        for name, text in evidence.items():
            landing.write_text_atomic(folder / name, text)
        return str(folder)

    def pending_set_asides(self) -> list[PendingSetAside]:
        """Set-asides whose intent was written but that neither moved their batch nor said
        why not (the run died in between), oldest first."""
        root = self.quarantine_root
        found = []
        for marker in sorted(root.glob(f"*/attempt-*/{SET_ASIDE_INTENT}")) \
                if root.is_dir() else []:
            folder = marker.parent
            if (folder / SET_ASIDE_DONE).exists() or (folder / NOT_MOVED).exists():
                continue
            try:
                day = dt.date.fromisoformat(folder.parent.name)
                intent = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found.append(PendingSetAside(day, str(folder), intent))
        return found

    def finish_set_aside(self, pending: PendingSetAside,
                         before_move: Callable[[], None]) -> str | None:
        """Move the batch into the set-aside's folder if it is still the file the operator set
        aside (same sha256), calling ``before_move`` first (the audit); else why not (None:
        moved, now or by another run already)."""
        source = landing.batch_path(self.landing, pending.day)
        folder = Path(pending.folder)
        if (folder / source.name).exists():  # moved by another run; its marker may be missing
            landing.write_text_atomic(folder / SET_ASIDE_DONE, "moved\n")
            return None
        meant = str(pending.intent.get("batch_sha256", ""))
        try:
            found: str | None = file_sha256(source)
        except FileNotFoundError:
            found = None
        if found != meant:
            return ("the batch left the landing zone before it moved" if found is None else
                    f"the batch was replaced before it moved (sha256 {found[:12]}, set aside "
                    f"as {meant[:12]})")
        before_move()
        shutil.move(str(source), folder / source.name)
        landing.write_text_atomic(folder / SET_ASIDE_DONE, "moved\n")
        return None

    def void_set_aside(self, pending: PendingSetAside, why: str) -> None:
        """Say in the set-aside's folder why its batch never moved: it is done with."""
        landing.write_text_atomic(Path(pending.folder) / NOT_MOVED, f"Not moved: {why}.\n")

    def batch_fingerprint(self, day: dt.date) -> str:
        """The sha256 of the batch file's bytes. Taken before the batch is read for
        validation: a file replaced after the hash no longer matches what passed."""
        return file_sha256(landing.batch_path(self.landing, day))

    def _passed_path(self, day: dt.date) -> Path:
        return self.records / "validated" / f"{day.isoformat()}.json"

    def remember_passed(self, day: dt.date, fingerprint: str, *,
                        on_replaced: Callable[[str, str], None] | None = None) -> None:
        """Note that the batch with this fingerprint passed this config's validation rules.

        When other bytes passed last for that date, ``on_replaced(their sha256, when)`` runs
        first (the audit), and their pass stays in the note (``earlier``): a replaced batch's
        evidence is kept, not overwritten. Read, decide and write hold the note's lock, so two
        runs never both take the same note for the last word; a note that cannot be read is
        kept beside it, not written over.
        """
        path = self._passed_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        with held(path.with_name(f".{path.name}.lock")):
            note = self._passed_note(day)
            if note is None and path.exists():  # not JSON: kept beside, never written over
                path.replace(path.with_name(
                    f"{path.name}.unreadable-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"))
            earlier = list(note.pop("earlier", [])) if note else []
            previous = note.get("batch_sha256") if note else None
            if note and previous != fingerprint:
                if on_replaced is not None and previous:
                    on_replaced(str(previous), str(note.get("at", "")))
                earlier.append(note)
            landing.write_text_atomic(path, json.dumps({
                "batch_sha256": fingerprint, "validation_hash": self.config.validation_hash,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                **({"earlier": earlier} if earlier else {})}))

    def _passed_note(self, day: dt.date) -> dict | None:
        """The validated note (None: none, or not JSON). A file that cannot be opened raises:
        a note that cannot be read must not pass for an absent one and be written over."""
        try:
            note = json.loads(self._passed_path(day).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return note if isinstance(note, dict) else None

    def _passed_fingerprint(self, day: dt.date) -> str | None:
        """The sha256 of the file that passed this config's validation rules (None: none did,
        or the note cannot be read)."""
        try:
            passed = self._passed_note(day)
            return str(passed["batch_sha256"]) \
                if passed and passed["validation_hash"] == self.config.validation_hash else None
        except (OSError, KeyError, TypeError):
            return None

    def validated_as_is(self, day: dt.date) -> bool:
        """Whether the batch passed this config's validation rules (UseCaseConfig.
        validation_hash), and its file is still the one that passed (same sha256). An
        unreadable or missing note means no."""
        passed = self._passed_fingerprint(day)
        try:
            return passed is not None and passed == self.batch_fingerprint(day)
        except OSError:
            return False

    def _record_path(self, day: str) -> Path:
        return self.records / f"{day}.json"

    def read_record(self, day: dt.date) -> CycleRecord | None:
        path = self._record_path(day.isoformat())
        if not path.is_file():
            return None
        return CycleRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def write_record(self, record: CycleRecord) -> None:
        """Keep every attempt: read, merge and replace under a lock, so concurrent runs of the
        same batch each leave their outcome."""
        path = self._record_path(record.batch_date)
        path.parent.mkdir(parents=True, exist_ok=True)
        with held(path.with_name(f".{path.name}.lock")):
            existing = self.read_record(dt.date.fromisoformat(record.batch_date))
            merged = with_history(existing, record)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(merged.to_json(), encoding="utf-8")
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

    def _run_lock(self, day: str) -> Path:
        return self.records / f".{day}.run"

    def working_on(self, day: dt.date) -> contextlib.AbstractContextManager[None]:
        """Held (shared: runs of one batch may overlap) while a run works on the batch. The
        kernel drops it when the run dies, which is how ``abandoned`` tells a record left
        "running" by a dead run from one a live run is still writing."""
        return held(self._run_lock(day.isoformat()), shared=True)

    def idle(self, day: dt.date) -> contextlib.AbstractContextManager[bool]:
        """True while no run works on the batch (and none can start on it until the block
        ends); False when one does. The lock file is made if no run made it yet."""
        return self._unless_worked_on(day.isoformat(), create=True)

    def abandoned(self) -> list[CycleRecord]:
        """Records still "running" that no live run works on: their run died before deciding.
        Unreadable records are skipped (doctor lists them apart)."""
        found = []
        for path in sorted(self.records.glob("*.json")) if self.records.is_dir() else []:
            record = _readable(path)
            if record is None or record.status is not CycleStatus.RUNNING:
                continue
            with self._unless_worked_on(path.stem) as free:
                # Read again under the lock: a run that decided between the first read and
                # the lock has written its outcome.
                record = _readable(path) if free else None
                if record is not None and record.status is CycleStatus.RUNNING:
                    found.append(record)
        return found

    @contextlib.contextmanager
    def _unless_worked_on(self, day: str, *, create: bool = False) -> Iterator[bool]:
        """True (and no run can start on the batch until the block ends) when no run holds
        it; False when one does. ``create``: make the lock file when no run made it yet (else
        nobody holds one, and nothing is locked)."""
        path = self._run_lock(day)
        if create:
            self.records.mkdir(parents=True, exist_ok=True)
        elif not path.exists():  # written before runs took the lock: nobody holds one
            yield True
            return
        fd = os.open(path, os.O_RDONLY | (os.O_CREAT if create else 0), 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def record_intent(self, intent: PromotionIntent) -> None:
        """Write the intent durably, locked from before it is visible under its name."""
        self.intents.mkdir(parents=True, exist_ok=True)
        path = self.intents / f"{intent.id}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, intent.to_json().encode())
        os.fsync(fd)
        os.replace(tmp, path)
        _fsync_dir(self.intents)
        _HELD[path] = fd

    def clear_intent(self, intent_id: str) -> None:
        path = self.intents / f"{intent_id}.json"
        path.unlink(missing_ok=True)
        fd = _HELD.pop(path, None)
        if fd is not None:
            os.close(fd)

    def claim_orphaned_intents(self) -> list[PromotionIntent]:
        """Intents whose run is gone (nobody held their lock), oldest first, now locked by
        this process until it clears them: two runs never reconcile the same intent."""
        found = []
        files = sorted(self.intents.glob("*.json"), key=lambda p: p.stat().st_mtime) \
            if self.intents.is_dir() else []
        for path in files:
            if path in _HELD:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # cleared meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # its run is alive and carrying it out, or another run claimed it
            if not path.exists():  # cleared between the glob and the lock
                os.close(fd)
                continue
            _HELD[path] = fd
            found.append(PromotionIntent.from_json(path.read_text(encoding="utf-8")))
        return found

    def release_intents(self) -> None:
        """Let go of the intents this process claimed without resolving them."""
        for path in [p for p in _HELD if p.parent == self.intents]:
            os.close(_HELD.pop(path))

    def write_predictions(self, day: dt.date, frame: pd.DataFrame) -> str:
        path = self.predictions_path(day)
        landing.write_parquet_atomic(frame, path)
        return str(path)
