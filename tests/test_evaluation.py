import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from ctpipe.config import load_config
from ctpipe.evaluation import (
    compare_slices,
    evaluate,
    recall_at_budget,
    wape,
    weighted_rank_metric,
)
from ctpipe.metrics import get_metric
from ctpipe.reports import gate_markdown
from ctpipe.steps.train import gate_challenger


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


# ---------------------------------------------------------------- paired slice comparison

def _demand(min_slice_rows: int = 10):
    cfg = load_config("demand")
    return cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(
        update={"min_slice_rows": min_slice_rows})})


class _Fixed:
    """A model that returns fixed scores for the holdout (the gate calls predict and reads
    how many splits the model made: these scores vary, as a split model's do)."""

    splits = 1

    def __init__(self, pred: np.ndarray) -> None:
        self.pred = pred

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        return self.pred


def _holdout(big_b_worse: bool) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Lane A (2000 rows): the challenger far better. Lane B (500 rows): the challenger
    clearly worse, or as good. Lane C (13 rows): worse on the point estimate only because of
    one row. Lane D (5 rows): much worse, below min_slice_rows."""
    rng = np.random.default_rng(3)
    lanes = ["A"] * 2000 + ["B"] * 500 + ["C"] * 13 + ["D"] * 5
    y = np.full(len(lanes), 100.0)
    err_champ = np.concatenate([rng.normal(0, 25, 2000), rng.normal(0, 10, 500),
                                np.full(13, 10.0), np.full(5, 5.0)])
    err_chall = np.concatenate([rng.normal(0, 5, 2000),
                                rng.normal(0, 20 if big_b_worse else 10, 500),
                                np.r_[np.full(12, 5.0), 100.0], np.full(5, 40.0)])
    frame = pd.DataFrame({"lane": lanes, "commodity": "general", "volume_tonnes": y})
    return frame, y + err_chall, y + err_champ


def test_compare_slices_is_paired_seeded_and_marks_small_slices() -> None:
    cfg = _demand()
    frame, chall, champ = _holdout(big_b_worse=True)
    y = frame["volume_tonnes"].to_numpy()
    first = {s.key: s for s in compare_slices(cfg, y, chall, champ, frame)}
    assert set(first) == {"commodity=general", "lane=A", "lane=B", "lane=C", "lane=D"}
    assert first["lane=A"].gain > 0.5 and first["lane=A"].upper is None  # no interval needed
    assert first["lane=B"].gain < -0.5 and first["lane=B"].upper < 0  # significantly worse
    c = first["lane=C"]
    assert c.gain == pytest.approx(-(160 - 130) / 130) and c.upper > 0  # not significant
    assert first["lane=D"].unjudged == "5 rows < evaluation.min_slice_rows 10"
    # Seeded per slice: the same bounds again, and without the other slices.
    again = {s.key: s for s in compare_slices(cfg, y, chall, champ, frame)}
    assert again == first
    only_c = frame["lane"].eq("C").to_numpy()
    alone = compare_slices(cfg, y[only_c], chall[only_c], champ[only_c], frame[only_c])
    assert [s for s in alone if s.key == "lane=C"] == [c]


def test_clearly_better_model_passes_despite_tiny_noisy_slice() -> None:
    frame, chall, champ = _holdout(big_b_worse=False)
    gated = gate_challenger(_demand(), _Fixed(chall), _Fixed(champ), frame)
    assert gated.decision.passed, gated.decision.reasons
    verdicts = {j.comparison.key: j.verdict for j in gated.decision.slices}
    assert verdicts["lane=C"] == "not significant"
    assert verdicts["lane=D"] == "too small to judge"
    page = gate_markdown("demand", "2024-03-01", gated.decision, gated.challenger,
                         gated.champion, 7, 6)
    assert "Gate PASSED" in page
    assert "| lane=C | 13 |" in page and "| not significant |" in page
    assert "Too small to judge (1): lane=D" in page


def test_a_holdout_without_a_positive_leaves_the_challenger_unjudged() -> None:
    cfg = load_config("fraud")
    n = 400
    frame = pd.DataFrame({cfg.data.target: np.zeros(n, dtype=int),
                          "channel": ["pos", "ecommerce"] * (n // 2),
                          "jurisdiction": ["HK"] * n})
    scores = np.linspace(0.01, 0.3, n)
    gated = gate_challenger(cfg, _Fixed(scores), _Fixed(scores[::-1]), frame)
    assert not gated.decision.passed and gated.decision.unjudged
    assert "pr_auc is undefined on this holdout" in gated.decision.reasons[0]
    page = gate_markdown("fraud", "2024-03-01", gated.decision, gated.challenger,
                         gated.champion, 7, 6)
    assert page.startswith("# Gate UNJUDGED: fraud 2024-03-01")
    frame.loc[::50, cfg.data.target] = 1  # a few frauds: the challenger is judged again
    assert not gate_challenger(cfg, _Fixed(scores), _Fixed(scores[::-1]), frame
                               ).decision.unjudged


def test_large_significantly_worse_slice_still_vetoes() -> None:
    frame, chall, champ = _holdout(big_b_worse=True)
    cfg = _demand()
    # The challenger is far better overall here: with the default slice_override_gain the veto
    # would be overridden (tests/test_gating.py); this test is about the veto itself.
    strict = cfg.model_copy(update={"gate": cfg.gate.model_copy(
        update={"slice_override_gain": None})})
    default = gate_challenger(cfg, _Fixed(chall), _Fixed(champ), frame).decision
    assert default.passed
    assert {j.comparison.key: j.verdict for j in default.slices}["lane=B"] == \
        "overridden by the overall gain"
    gated = gate_challenger(strict, _Fixed(chall), _Fixed(champ), frame)
    assert not gated.decision.passed
    assert next(c for c in gated.decision.checks if c.name == "beats_champion").passed
    (reason,) = gated.decision.reasons
    assert reason.startswith("no_slice_regression: significantly worse by more than 15% at 95% "
                             "confidence: lane=B ")
    assert "lane=C" in reason.split("worse but not significant: ")[1]
    page = gate_markdown("demand", "2024-03-01", gated.decision, gated.challenger,
                         gated.champion, 7, 6)
    assert "| lane=B | 500 |" in page and "**vetoes**" in page


def test_slice_with_metric_undefined_on_resamples_is_too_small() -> None:
    cfg = load_config("fraud")
    cfg = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(
        update={"metric": "roc_auc", "min_slice_rows": 20})})
    # 40 rows, 2 positives: about 13 % of resamples hold no positive (ROC-AUC undefined).
    y = np.zeros(40)
    y[[3, 17]] = 1
    champ = np.where(y == 1, 0.9, np.linspace(0, 0.5, 40))
    chall = np.where(y == 1, 0.1, np.linspace(0, 0.5, 40))  # ranks the positives low
    frame = pd.DataFrame({"channel": "atm", "jurisdiction": "HK"}, index=range(40))
    (channel, _) = compare_slices(cfg, y, chall, champ, frame)
    assert channel.gain < -0.5
    assert channel.unjudged is not None and channel.unjudged.startswith("bootstrap degenerate")


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc"])
def test_rank_metrics_over_resample_counts_equal_the_registered_metric(metric: str) -> None:
    rng = np.random.default_rng(5)
    n = 60
    y = (rng.random(n) < 0.15).astype("float64")
    score = np.round(rng.random(n) + 0.3 * y, 1)  # rounded: many tied scores
    fn = get_metric(metric).fn
    draws = [rng.integers(0, n, n) for _ in range(40)]
    weights = np.array([np.bincount(rows, minlength=n) for rows in draws], dtype="float64")
    fast = weighted_rank_metric(metric, y, score, weights)
    slow = np.array([fn(y[rows], score[rows]) for rows in draws])
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)  # NaN where one class
    assert np.isnan(weighted_rank_metric(metric, y, score, (1 - y)[None, :]))[0]
