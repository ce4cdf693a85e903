"""Every rule that decides an outcome: plain values in, immutable values out.

Importing this package loads none of Prefect, MLflow, Great Expectations or LightGBM; each
outcome branch is unit-tested in tests/test_decisions.py and tests/test_core_outcomes.py.
"""

from ctpipe.decisions.outcome import STATE_NAMES, CycleStatus, Outcome

__all__ = ["STATE_NAMES", "CycleStatus", "Outcome"]
