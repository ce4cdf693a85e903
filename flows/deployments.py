"""Every ctpipe deployment, served from this machine by `ctpipe serve` (no work pool).

deployments/prefect.yaml describes the same topology for `prefect deploy` and a process work
pool; tests/test_deployments.py checks that the two agree.
"""

from __future__ import annotations

from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron

from ctpipe.flows.common import use_case_label
from ctpipe.flows.cycle import cycle_flow
from ctpipe.flows.monitor import monitor_flow
from ctpipe.flows.retrain import retrain_flow
from ctpipe.flows.rollback import rollback_flow
from ctpipe.flows.score import score_flow
from ctpipe.steps.drift import RETRAIN_LABEL

TIMEZONE = "Asia/Hong_Kong"
CYCLE_CRON = "0 6 * * *"   # after the previous day's batch has landed
SCORE_CRON = "30 6 * * *"  # the champion scores the day's batch once the cycle is done
MONITOR_CRON = "0 7 * * *"  # then labels that arrived are joined and the champion judged
RETRAIN_EVENTS = ("ctpipe.drift.detected", "ctpipe.retrain.requested")
# Template values come from the event (payload written by flows.common.emit).
# A missing key must not break the template (Prefect renders it through tojson): an empty
# batch date means the newest batch.
RETRAIN_PARAMETERS = {"use_case": "{{ event.payload.use_case }}",
                      "batch_date": "{{ event.payload.batch_date | default('') }}",
                      "reason": "{{ event.payload.reason | default('requested') }}",
                     # A single expression keeps its type (Prefect renders it through tojson);
                     # default(false, true) also covers an explicit null.
                     "force": "{{ event.payload.force | default(false, true) }}"}


def retrain_trigger(resource: str = "ctpipe.use-case.*") -> DeploymentEventTrigger:
    # Replays emit about ctpipe.backtest.<name>: they never match, so never retrain production;
    # a cycle that retrains inline labels its drift event "inline": no second retraining.
    return DeploymentEventTrigger(name="retrain-on-drift", expect=set(RETRAIN_EVENTS),
                                  match={"prefect.resource.id": resource,
                                         RETRAIN_LABEL: "by-event"},
                                  parameters=RETRAIN_PARAMETERS)


def build_deployments(use_cases: list[str], *,
                      trigger_resource: str = "ctpipe.use-case.*") -> list[RunnerDeployment]:
    """Daily cycle, scoring and monitoring per use case; drift-triggered retraining; rollback."""
    module = {"entrypoint_type": EntrypointType.MODULE_PATH}
    deployments: list[RunnerDeployment] = []
    for name in use_cases:
        label = use_case_label(name)
        deployments.append(cycle_flow.to_deployment(
            name=f"cycle-{label}", schedules=[Cron(CYCLE_CRON, timezone=TIMEZONE)],
            parameters={"use_case": name, "retrain_inline": False}, concurrency_limit=1,
            tags=["ctpipe", label], description=f"Daily cycle for {label}", **module))
        deployments.append(score_flow.to_deployment(
            name=f"score-{label}", schedules=[Cron(SCORE_CRON, timezone=TIMEZONE)],
            parameters={"use_case": name}, tags=["ctpipe", label],
            description=f"Daily batch scoring for {label}", **module))
        deployments.append(monitor_flow.to_deployment(
            name=f"monitor-{label}", schedules=[Cron(MONITOR_CRON, timezone=TIMEZONE)],
            parameters={"use_case": name}, tags=["ctpipe", label],
            description=f"Daily live monitoring for {label}", **module))
    deployments.append(retrain_flow.to_deployment(
        name="retrain-on-drift", triggers=[retrain_trigger(trigger_resource)],
        tags=["ctpipe", "retrain"], description="Retraining triggered by drift events; one "
        "at a time per use case (global concurrency limit ctpipe-retrain-<use case>)", **module))
    deployments.append(rollback_flow.to_deployment(
        name="rollback", tags=["ctpipe", "rollback"],
        description="Move champion back to the previous (or a named) version", **module))
    return deployments
