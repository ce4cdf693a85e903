"""Where one use case's state lives: production, or a replay that must not touch production."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ctpipe import settings
from ctpipe.config import UseCaseConfig, load_config, resolve_config_path
from ctpipe.store import LandingZoneStore

if TYPE_CHECKING:
    from ctpipe.registry import ModelRegistry


@dataclass(frozen=True)
class Workspace:
    config: UseCaseConfig
    backtest: bool = False
    ref: str = ""  # how the config was named (use-case name or YAML path), for flow parameters

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def root(self) -> Path:
        base = settings.home()
        return base / "backtests" / self.name if self.backtest else base

    @property
    def landing(self) -> Path:
        if self.backtest:
            return self.root / "landing"
        return settings.landing_dir(self.name, self.config.data.landing)

    @property
    def model_name(self) -> str:
        # A replay registers under its own name so production's aliases never move.
        suffix = "-backtest" if self.backtest else ""
        return f"{self.config.registered_model}{suffix}"

    @property
    def experiment(self) -> str:
        return f"ctpipe-{self.name}{'-backtest' if self.backtest else ''}"

    @property
    def records_dir(self) -> Path:
        return (self.root / "cycles") if self.backtest else self.root / "cycles" / self.name

    @property
    def quarantine(self) -> Path:
        return (self.root / "quarantine") if self.backtest else settings.quarantine_dir(self.name)

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.jsonl" if self.backtest else settings.audit_log_path()

    @property
    def event_resource(self) -> str:
        # Replays speak about their own resource so production triggers never fire on them.
        kind = "backtest" if self.backtest else "use-case"
        return f"ctpipe.{kind}.{self.name}"

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions" / self.name

    @property
    def store(self) -> LandingZoneStore:
        return LandingZoneStore(self.config, self.landing, self.records_dir, self.quarantine,
                                self.predictions_dir, self.root / "intents" / self.name)

    @property
    def registry(self) -> ModelRegistry:
        from ctpipe.registry import ModelRegistry  # MLflow loads only when the registry is used

        return ModelRegistry(self.model_name)

    def read_record(self, day: str) -> dict | None:
        """The batch's cycle record as JSON (what `ctpipe cycle` prints)."""
        record = self.store.read_record(dt.date.fromisoformat(day))
        return None if record is None else record.to_dict()

    def last_record(self) -> dict | None:
        record = self.store.last_record()
        return None if record is None else record.to_dict()


def open_workspace(use_case: str, backtest: bool = False) -> Workspace:
    """``use_case`` is a name under configs/ or a path to a YAML file.

    Raises ConfigError for a config that does not load, whose ``validation.extra``
    expectations GX does not accept (GX is imported only when the config has some), or whose
    ``training.params`` LightGBM would refuse.
    """
    from ctpipe.lightgbm_params import check_training_params
    from ctpipe.validation import check_config_expectations

    path = resolve_config_path(str(use_case))
    config = load_config(path)
    check_config_expectations(config, path)
    check_training_params(config, path)
    return Workspace(config, backtest, ref=str(use_case))
