"""The daily continuous-training cycle for one batch: Prefect wiring over ctpipe.steps.cycle."""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from ctpipe import settings
from ctpipe.flows.common import (
    batch_day,
    final_state,
    flow_run_name,
    notify_failure,
    runtime,
    tag_flow_run,
)
from ctpipe.flows.retrain import orchestrator_ports
from ctpipe.steps.cycle import run_cycle
from ctpipe.workspace import open_workspace


@flow(name="ctpipe-cycle", flow_run_name=flow_run_name, log_prints=True,
      validate_parameters=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def cycle_flow(use_case: str = "demand", batch_date: str | None = None,
               backtest: bool = False, retrain_inline: bool = True,
               force: bool = False) -> State:
    """Validate → drift → (retrain → evaluate → gate → approve → promote) for one batch.

    With ``retrain_inline=False`` (the scheduled deployment) a retrain is requested by event
    and the retraining deployment does it. ``force`` (the CLI's --force) retrains the batch
    whatever the retraining policy says: without drift, during a cooldown, and when it was
    already retrained under this config; the event passes it on, so the retraining deployment
    it starts is forced too. Validation, the window, the gate and approval still apply.
    """
    settings.configure_environment()  # a deployed run's process: MLflow's limits, logging
    ws = open_workspace(use_case, backtest)
    day = batch_day(ws, batch_date)
    tag_flow_run(ws)
    outcome = run_cycle(runtime(ws, **orchestrator_ports(ws)), day,
                        explicit_date=bool(batch_date), retrain_inline=retrain_inline,
                        force=force)
    return final_state(outcome)
