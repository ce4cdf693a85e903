"""In-memory stand-ins for the core's ports: a store and a model registry held in dicts.

They implement the same methods as ctpipe.store.LandingZoneStore and
ctpipe.registry.ModelRegistry, so the steps run end to end (real validation, drift, LightGBM
training and gate) with no Prefect server, no MLflow and no folder of state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ctpipe.config import UseCaseConfig
from ctpipe.decisions.retraining import promotion_move
from ctpipe.landing import BATCH_KEY
from ctpipe.lineage import Lineage, LoadedVersion, ModelVersionInfo
from ctpipe.records import CycleRecord, PromotionIntent, with_history
from ctpipe.store import PendingSetAside

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class MemoryStore:
    config: UseCaseConfig
    batches: dict[dt.date, pd.DataFrame] = field(default_factory=dict)
    labels: dict[dt.date, pd.DataFrame] = field(default_factory=dict)
    records: dict[str, CycleRecord] = field(default_factory=dict)
    quarantined: dict[dt.date, dict[str, str]] = field(default_factory=dict)
    predictions: dict[dt.date, pd.DataFrame] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)  # statuses in the order they were written
    intents: dict[str, PromotionIntent] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)  # intents whose run is alive; clear() = crash
    # batch -> (fingerprint, validation hash) of what passed
    passed: dict[dt.date, tuple[str, str]] = field(default_factory=dict)
    replaced: dict[dt.date, list[str]] = field(default_factory=dict)  # earlier passes

    def add(self, day: dt.date, frame: pd.DataFrame) -> None:
        """A labelled day, split as the landing zone splits it."""
        target = self.config.data.target
        self.batches[day] = frame.drop(columns=[target]).reset_index(drop=True)
        cols = [c for c in (self.config.data.id_column, target) if c]
        self.labels[day] = frame[cols].reset_index(drop=True)

    def batch_dates(self) -> list[dt.date]:
        return sorted(self.batches)

    def working_on(self, day: dt.date) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def idle(self, day: dt.date) -> contextlib.AbstractContextManager[bool]:
        return contextlib.nullcontext(True)

    def abandoned(self) -> list[CycleRecord]:
        return []  # one process: a run that died took the store with it

    def open_attempt(self, day: dt.date, evidence: dict[str, str]) -> str:
        held = self.quarantined.setdefault(day, {})
        n = 1 + len({k.split("/")[0] for k in held if k.startswith("attempt-")})
        held.update(evidence)
        held.update({f"attempt-{n}/{name}": text for name, text in evidence.items()})
        return f"memory://quarantine/{day}/attempt-{n}"

    def pending_set_asides(self) -> list[PendingSetAside]:
        return []  # one process: a set-aside that died took the store with it

    def finish_set_aside(self, pending: PendingSetAside,
                         before_move: Callable[[], None]) -> str | None:
        if self.batch_fingerprint(pending.day) != pending.intent["batch_sha256"]:
            return "the batch was replaced before it moved"
        before_move()
        self.batches.pop(pending.day)
        return None

    def void_set_aside(self, pending: PendingSetAside, why: str) -> None:
        self.quarantined[pending.day]["not_moved.md"] = why

    def batch_source(self, day: dt.date) -> str:
        return f"memory://batches/{day}"

    def read_batch(self, day: dt.date) -> pd.DataFrame:
        return self.batches[day].copy()

    def row_counts(self, days: list[dt.date]) -> list[int]:
        return [len(self.batches[d]) for d in days]

    def labelled_dates(self, as_of: dt.date) -> list[dt.date]:
        return self.labels_arrived(as_of)

    def labels_arrived(self, as_of: dt.date) -> list[dt.date]:
        # A quarantined batch still came: it counts towards the delay, as in the landing zone.
        dates = sorted(d for d in set(self.batch_dates()) | set(self.quarantined) if d <= as_of)
        cutoff = max(len(dates) - self.config.data.label_delay, 0)
        return [d for d in dates[:cutoff] if d in self.batches and d in self.labels]

    def read_labelled(self, dates: list[dt.date], *,
                      validated: bool = False) -> pd.DataFrame:
        frames = []
        for day in dates:
            if validated and not self.validated_as_is(day):
                raise ValueError(f"{self.batch_source(day)}: changed since it passed "
                                 "validation; not trained on")
            batch = self.batches[day].copy()
            batch[self.config.data.target] = self.labels[day][self.config.data.target].to_numpy()
            batch[BATCH_KEY] = day.isoformat()
            frames.append(batch)
        return pd.concat(frames, ignore_index=True)

    def label_rows(self, dates: list[dt.date]) -> int:
        return sum(len(self.labels[d]) for d in dates)

    def quarantine(self, day: dt.date, evidence: dict[str, str], *,
                   before_move: Callable[[str], None] | None = None) -> str:
        """Like LandingZoneStore: every attempt keeps its evidence, under ``attempt-N/``.

        The newest attempt's files are also at the top level (``quarantined[day]["summary.md"]``).
        """
        folder = self.open_attempt(day, evidence)
        if before_move is not None:
            before_move(folder)
        self.batches.pop(day, None)
        return folder

    def batch_fingerprint(self, day: dt.date) -> str:
        if day not in self.batches:
            raise FileNotFoundError(self.batch_source(day))
        frame = self.batches[day]
        return hashlib.sha256(repr((list(frame.columns), [str(t) for t in frame.dtypes],
                                    pd.util.hash_pandas_object(frame).tolist())).encode()
                              ).hexdigest()

    def remember_passed(self, day: dt.date, fingerprint: str, *,
                        on_replaced: Callable[[str, str], None] | None = None) -> None:
        earlier = self.passed.get(day)
        if earlier is not None and earlier[0] != fingerprint:  # kept, as the note keeps it
            if on_replaced is not None:
                on_replaced(earlier[0], f"pass {len(self.replaced.get(day, []))}")
            self.replaced.setdefault(day, []).append(earlier[0])
        self.passed[day] = (fingerprint, self.config.validation_hash)

    def unaudited_labels_set_aside(self) -> list:
        return []  # labelled_dates here never sets labels aside

    def mark_audited(self, aside: object) -> None:
        raise AssertionError("nothing to mark: no labels are set aside in memory")

    def auditing(self, aside: object) -> contextlib.AbstractContextManager[bool]:
        return contextlib.nullcontext(True)

    def validated_as_is(self, day: dt.date) -> bool:
        return day in self.batches and self.passed.get(day) == (
            self.batch_fingerprint(day), self.config.validation_hash)

    def read_record(self, day: dt.date) -> CycleRecord | None:
        record = self.records.get(day.isoformat())
        return record.copy() if record else None

    def write_record(self, record: CycleRecord) -> None:
        self.writes.append(str(record.status))
        self.records[record.batch_date] = with_history(self.records.get(record.batch_date),
                                                       record)

    def last_record(self) -> CycleRecord | None:
        return self.records[max(self.records)].copy() if self.records else None

    def predictions_exist(self, day: dt.date) -> bool:
        return day in self.predictions

    def predictions_location(self, day: dt.date) -> str:
        return f"memory://predictions/{day}"

    def record_intent(self, intent: PromotionIntent) -> None:
        self.intents[intent.id] = intent
        self.live.add(intent.id)

    def clear_intent(self, intent_id: str) -> None:
        self.intents.pop(intent_id, None)
        self.live.discard(intent_id)

    def claim_orphaned_intents(self) -> list[PromotionIntent]:
        orphans = [i for k, i in self.intents.items() if k not in self.live]
        self.live.update(i.id for i in orphans)
        self.claimed = {i.id for i in orphans}
        return orphans

    def release_intents(self) -> None:
        self.live.difference_update(getattr(self, "claimed", set()))

    def write_predictions(self, day: dt.date, frame: pd.DataFrame) -> str:
        self.predictions[day] = frame
        return self.predictions_location(day)


@dataclass
class MemoryRegistry:
    model_name: str
    loaded: dict[int, LoadedVersion] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)

    def _info(self, version: int) -> ModelVersionInfo:
        info = self.loaded[version].info
        aliases = sorted(a for a, v in self.aliases.items() if v == version)
        return ModelVersionInfo(info.name, version, dict(info.tags), aliases, info.run_id)

    def version(self, version: int) -> ModelVersionInfo:
        return self._info(version)

    def champion(self) -> ModelVersionInfo | None:
        return self._info(self.aliases[CHAMPION]) if CHAMPION in self.aliases else None

    def load_champion(self) -> LoadedVersion | None:
        if CHAMPION not in self.aliases:
            return None
        return self.load_version(self.aliases[CHAMPION])

    def load_version(self, version: int) -> LoadedVersion:
        return LoadedVersion(self._info(version), self.loaded[version].model,
                             self.loaded[version].profile, self.loaded[version].outputs)

    def versions(self) -> list[ModelVersionInfo]:
        return [self._info(v) for v in sorted(self.loaded)]

    def versions_for_batch(self, batch_date: str, config_hash: str) -> list[ModelVersionInfo]:
        return [v for v in self.versions() if v.lineage.batch_date == batch_date
                and v.lineage.config_hash == config_hash]

    def register(self, run_id: str, model, profile, outputs, lineage: Lineage,  # noqa: ANN001
                 sample: pd.DataFrame) -> ModelVersionInfo:
        version = max(self.loaded, default=0) + 1
        info = ModelVersionInfo(self.model_name, version, lineage.to_tags(), [], run_id)
        self.loaded[version] = LoadedVersion(info, model, profile, outputs)
        self.aliases[CHALLENGER] = version
        return self._info(version)

    def tag(self, version: int, lineage: Lineage) -> None:
        old = self.loaded[version]
        info = ModelVersionInfo(old.info.name, version, {**old.info.tags, **lineage.to_tags()},
                                [], old.info.run_id)
        self.loaded[version] = LoadedVersion(info, old.model, old.profile, old.outputs)

    def promote(self, version: int, previous: int | None, lineage: Lineage) -> None:
        move = promotion_move(model_name=self.model_name, version=version, expected=previous,
                              current=self.aliases.get(CHAMPION))
        if move == "move":
            self.aliases[CHAMPION] = version
        self.tag(version, lineage)
