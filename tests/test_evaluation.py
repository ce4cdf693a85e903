import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from ctpipe.config import load_config
from ctpipe.evaluation import evaluate, recall_at_budget, wape


def test_wape() -> None:
    assert wape(np.array([10.0, 10.0]), np.array([12.0, 7.0])) == pytest.approx(0.25)


def test_recall_at_budget_counts_top_alerts() -> None:
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 1])
    score = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.3, 0.1, 0.0, 0.05, 0.01])
    # budget 30 % = 3 alerts: rows 0, 1, 3 -> 2 of 3 frauds caught
    assert recall_at_budget(y, score, 0.3) == pytest.approx(2 / 3)


def test_binary_evaluation_with_slices() -> None:
    cfg = load_config("fraud")
    rng = np.random.default_rng(0)
    n = 2000
    y = (rng.random(n) < 0.05).astype(int)
    score = np.clip(y * 0.5 + rng.random(n) * 0.6, 0, 1)
    frame = pd.DataFrame({"channel": np.where(np.arange(n) % 2 == 0, "pos", "ecommerce"),
                          "jurisdiction": ["HK"] * (n - 100) + ["SG"] * 100})
    ev = evaluate(cfg, y, score, frame)
    assert ev.metric == "pr_auc"
    assert ev.value == pytest.approx(average_precision_score(y, score))
    assert set(ev.slices) == {"channel=pos", "channel=ecommerce", "jurisdiction=HK"}
    assert "recall_at_budget" in ev.extra


def test_slice_without_positives_is_skipped() -> None:
    cfg = load_config("fraud")
    y = np.array([0] * 300 + [1, 0] * 150)
    frame = pd.DataFrame({"channel": ["atm"] * 300 + ["pos"] * 300,
                          "jurisdiction": ["HK"] * 600})
    ev = evaluate(cfg, y, np.linspace(0, 1, 600), frame)
    assert "channel=atm" not in ev.slices
    assert "channel=pos" in ev.slices
