"""What a run needs from the outside world, handed in by the shell (flows/) or by a test.

The steps in this package decide through ctpipe.decisions and reach state only through these
ports: the store, the model registry, the trace sink, the tracking run, and the three things
only an orchestrator provides (running a named step with retries, the retraining slot, and the
approval pause). A test of the core passes in-memory objects and plain callables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ctpipe.config import UseCaseConfig
from ctpipe.decisions.retraining import ApprovalAnswer
from ctpipe.lineage import Lineage, LoadedVersion, ModelVersionInfo
from ctpipe.store import Store
from ctpipe.trace import Decision

if TYPE_CHECKING:
    import pandas as pd

    from ctpipe.drift import ReferenceProfile
    from ctpipe.training import ScoringModel


class Models(Protocol):
    """The model registry, bound to one registered model (ctpipe.registry.ModelRegistry)."""

    model_name: str

    def champion(self) -> ModelVersionInfo | None: ...
    def version(self, version: int) -> ModelVersionInfo: ...
    def load_champion(self) -> LoadedVersion | None: ...
    def load_version(self, version: int) -> LoadedVersion: ...
    def versions_for_batch(self, batch_date: str,
                           config_hash: str) -> list[ModelVersionInfo]: ...
    def register(self, run_id: str, model: ScoringModel, profile: ReferenceProfile,
                 outputs: ReferenceProfile, lineage: Lineage,
                 sample: pd.DataFrame) -> ModelVersionInfo: ...
    def tag(self, version: int, lineage: Lineage) -> None: ...
    def promote(self, version: int, previous: int | None, lineage: Lineage) -> None: ...


@dataclass
class TrackingRun:
    """The tracking run of one flow run: tags and metrics, written once when it closes."""

    run_id: str
    link: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    status: str = "FINISHED"  # FAILED when the run's outcome is a failure
    attach: Callable[[Path, str], None] = lambda path, folder: None  # a file into the run


def _direct(name: str, fn: Callable[..., Any], *args: Any, remote: bool = False,
            **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


@contextmanager
def _memory_run(day: dt.date, kind: str) -> Iterator[TrackingRun]:
    yield TrackingRun(run_id=f"{kind}-{day}")


@dataclass(frozen=True)
class ApprovalRequest:
    use_case: str
    model_name: str
    version: int
    champion_version: int | None
    jurisdiction: str | None
    timeout_seconds: int
    hold: str | None = None  # an operator's rollback asks for the approval, not the jurisdiction


@dataclass(frozen=True)
class ApprovalRoute:
    """Where an approver answers: a paused run's id (for `ctpipe approve`) and its UI page."""

    run_id: str
    link: str | None = None


@dataclass(frozen=True)
class Runtime:
    """Everything a step touches outside its arguments."""

    config: UseCaseConfig
    model_name: str
    store: Store
    models: Models
    publish: Callable[[Decision], None]
    replay: bool = False
    # Run a named step: the shell makes it a Prefect task (retries when remote=True).
    step: Callable[..., Any] = _direct
    tracking: Callable[[dt.date, str], AbstractContextManager[TrackingRun]] = _memory_run
    # At most one retraining per use case at a time.
    slot: Callable[[], AbstractContextManager[Any]] = nullcontext
    # Ask a human; None when nobody answered within the timeout.
    ask_approval: Callable[[ApprovalRequest], ApprovalAnswer | None] | None = None
    approval_route: Callable[[], ApprovalRoute] = lambda: ApprovalRoute("this run")
    # Turn an outage that outlived its retries into one line naming the service.
    guard: Callable[[], AbstractContextManager[Any]] = nullcontext
    progress: Callable[[float], None] | None = None  # training progress, percent
    data_docs: Path | None = None  # where failed validations leave GX Data Docs
    # Whether a decision with this id is in the audit trail already (a run that died after
    # publishing it must not publish it twice).
    traced: Callable[[str], bool] = lambda decision_id: False

    @property
    def use_case(self) -> str:
        return self.config.name
