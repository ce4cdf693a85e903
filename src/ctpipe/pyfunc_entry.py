"""MLflow model-from-code entry point; executed by MLflow when it loads a ctpipe model."""

from mlflow.models import set_model

from ctpipe.serving import ScoringPyfunc

set_model(ScoringPyfunc())
