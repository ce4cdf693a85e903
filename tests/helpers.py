"""Builders shared by the flow tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from ctpipe.backtest import simulate_to_landing
from ctpipe.config import repo_configs_dir
from ctpipe.workspace import Workspace, open_workspace

START = dt.date(2026, 3, 2)


def small_config(tmp_path: Path, use_case: str = "demand", **training: object) -> Path:
    """The reference config with a short window and few trees, so a flow test stays fast."""
    raw = yaml.safe_load((repo_configs_dir() / f"{use_case}.yaml").read_text())
    raw["training"].update({"window": 6, "holdout": 2, "min_train_rows": 200,
                            "params": {"n_estimators": 60, "learning_rate": 0.1,
                                       "num_leaves": 15, "min_child_samples": 20}})
    raw["training"].update(training)
    path = tmp_path / f"{use_case}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def simulated_workspace(config_path: Path, days: int, *, shift_day: int | None = None,
                        rows: int | None = None, backtest: bool = False,
                        simulator: str | None = None) -> Workspace:
    ws = open_workspace(str(config_path), backtest)
    simulate_to_landing(ws, ws.landing, days=days, shift_day=shift_day, rows=rows,
                        simulator=simulator)
    return ws


def day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()
