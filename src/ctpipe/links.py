"""Links an operator follows from an artifact, a notification or the CLI into the MLflow UI."""

from __future__ import annotations

from ctpipe import settings


def mlflow_run_link(experiment_id: str, run_id: str) -> str:
    return f"{settings.mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_version_link(model_name: str, version: int) -> str:
    return f"{settings.mlflow_ui_url()}/#/models/{model_name}/versions/{version}"
