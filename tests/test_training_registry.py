"""Training split and the registry adapter against a real (temporary SQLite) MLflow store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from ctpipe import registry
from ctpipe.config import load_config
from ctpipe.decisions.gate import Check
from ctpipe.decisions.retraining import ChampionChanged
from ctpipe.drift import build_profile
from ctpipe.features import lightgbm_names
from ctpipe.landing import BATCH_KEY
from ctpipe.lineage import Lineage
from ctpipe.simulate import generate_day
from ctpipe.steps.train import gate_challenger
from ctpipe.training import (
    NotEnoughData,
    ScoringModel,
    recency_weights,
    split_for_change,
    split_window,
    train_model,
)

DAYS = [dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(8)]


def test_split_window_takes_newest_batches_in_time_order() -> None:
    cfg = load_config("demand").model_copy(update={"training": load_config(
        "demand").training.model_copy(update={"window": 5, "holdout": 2})})
    split = split_window(list(reversed(DAYS)), cfg)
    assert split.train == DAYS[3:6] and split.holdout == DAYS[6:8]
    with pytest.raises(NotEnoughData, match="4 labelled batches, the training window needs 5"):
        split_window(DAYS[:4], cfg)
    with pytest.raises(NotEnoughData, match="^1 labelled batch, the training window needs 5$"):
        split_window(DAYS[:1], cfg)


def _window(**training: object):
    cfg = load_config("demand")
    return cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"window": 5, "holdout": 2, **training})})


def _rows(days: list[dt.date]) -> int:
    """The store's label_rows: 240 labelled rows a batch, as demand's."""
    return 240 * len(days)


def test_the_change_s_first_batches_are_shared_by_row_until_the_training_part_holds_one() -> None:
    cfg = _window()
    onset = DAYS[6]
    # One labelled batch of the change (DAYS[6]): whole batches would hold it out, so it is
    # shared, and the older batch the holdout had (DAYS[5]) trains.
    split = split_for_change(DAYS[:7], cfg, onset, label_rows=_rows)
    assert split.train == DAYS[2:7] and split.holdout == [DAYS[6]]
    assert split.shared == (DAYS[6],) and split.share == 0.5
    # Two of them: both shared; three: the training part holds one, whole batches again.
    assert split_for_change(DAYS[:8], cfg, DAYS[6], label_rows=_rows).shared == (DAYS[6], DAYS[7])
    assert split_for_change(DAYS[:8], cfg, DAYS[5], label_rows=_rows) == split_window(DAYS[:8], cfg)
    # No change, none labelled yet, or the rule switched off: whole batches.
    assert split_for_change(DAYS[:7], cfg, None, label_rows=_rows) == split_window(DAYS[:7], cfg)
    assert split_for_change(DAYS[:7], cfg, DAYS[7], label_rows=_rows) == split_window(DAYS[:7], cfg)
    off = _window(row_holdout_after_drift=None)
    assert split_for_change(DAYS[:7], off, onset, label_rows=_rows) == split_window(DAYS[:7], off)
    # min_batches_after_drift 2: shared until the training part holds two.
    two = _window(min_batches_after_drift=2)
    assert split_for_change(DAYS[:8], two, DAYS[5], label_rows=_rows).shared == (
        DAYS[5], DAYS[6], DAYS[7])


def test_no_rows_are_shared_when_their_holdout_is_too_small_to_judge() -> None:
    # drift.min_performance_rows (default 50) labelled rows must be held out: half of one
    # 80-row batch is 40, too few; half of two is 80.
    cfg = _window()
    assert cfg.drift.min_performance_rows == 50

    def rows(days: list[dt.date]) -> int:
        return 80 * len(days)

    assert split_for_change(DAYS[:7], cfg, DAYS[6], label_rows=rows) == split_window(
        DAYS[:7], cfg)
    assert split_for_change(DAYS[:8], cfg, DAYS[6], label_rows=rows).shared == (DAYS[6],
                                                                                DAYS[7])


def test_a_shared_batch_holds_out_its_latest_rows_or_a_seeded_share() -> None:
    split = split_for_change(DAYS[:8], _window(row_holdout_after_drift=0.3), DAYS[6],
                             label_rows=_rows)
    days = [d for d in DAYS[3:8] for _ in range(1000)]
    keys = [d.isoformat() for d in days]
    # Stamped with the batch's date only: a seeded random 30 % of each shared batch.
    dated = pd.DataFrame({BATCH_KEY: keys, "t": days})
    held = split.held_out(dated, "t", seed=7)
    share = {d: held[dated[BATCH_KEY] == d.isoformat()].mean() for d in DAYS[3:8]}
    assert share[DAYS[3]] == share[DAYS[4]] == share[DAYS[5]] == 0.0
    assert share[DAYS[6]] == share[DAYS[7]] == 0.3
    within = held[dated[BATCH_KEY] == DAYS[6].isoformat()]
    assert 0 < within[:500].sum() < 300  # spread over the batch, not its tail
    np.testing.assert_array_equal(held, split.held_out(dated, "t", seed=7))
    assert not np.array_equal(held, split.held_out(dated, "t", seed=8))
    # With times that differ, its latest 30 % by time, wherever they are in the file.
    stamps = pd.Series([pd.Timestamp(d) + pd.Timedelta(minutes=(i * 7919) % 1000)
                        for d in DAYS[3:8] for i in range(1000)])
    timed = pd.DataFrame({BATCH_KEY: keys, "t": stamps})
    held = split.held_out(timed, "t", seed=7)
    for d in DAYS[6:8]:
        rows = (timed[BATCH_KEY] == d.isoformat()).to_numpy()
        assert held[rows].sum() == 300
        assert timed["t"][rows & held].min() > timed["t"][rows & ~held].max()
    whole = split_window(DAYS[:8], _window())
    assert whole.held_out(timed, "t", seed=7).tolist() == timed[BATCH_KEY].isin(
        [DAYS[6].isoformat(), DAYS[7].isoformat()]).tolist()


def test_recency_weights_halve_per_half_life() -> None:
    keys = pd.Series(["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-04"])
    np.testing.assert_allclose(recency_weights(keys, 1.0), [0.25, 0.5, 1.0, 1.0])
    assert recency_weights(keys, None) is None


def _trained(rows: int = 240):
    cfg = load_config("demand")
    frame = pd.concat([generate_day("demand", i, d).assign(**{BATCH_KEY: d.isoformat()})
                       for i, d in enumerate(DAYS[:5])], ignore_index=True)
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"params": {"n_estimators": 30}})})
    model = train_model(cfg, frame)
    return cfg, frame, model


def test_model_learns_and_refuses_tiny_windows() -> None:
    cfg, frame, model = _trained()
    holdout = generate_day("demand", 6, DAYS[6])
    pred = model.predict(holdout)
    y = holdout["volume_tonnes"].to_numpy()
    naive = np.abs(y - frame["volume_tonnes"].mean()).sum()
    assert np.abs(y - pred).sum() < 0.6 * naive
    with pytest.raises(NotEnoughData, match="min_train_rows"):
        train_model(cfg, frame.head(100))


def test_a_window_too_small_for_min_child_samples_gives_a_model_without_a_split() -> None:
    cfg, frame, model = _trained()
    assert model.splits > 0
    # 30 rows with LightGBM's default min_child_samples (20): no leaf can be split.
    tiny = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"min_train_rows": 10})})
    constant = train_model(tiny, frame.head(30))
    assert constant.splits == 0
    assert np.unique(constant.predict(frame)).size == 1
    # The gate every policy shares refuses it, even at a cold start with no champion to beat.
    holdout = generate_day("demand", 6, DAYS[6])

    def sanity(candidate: ScoringModel) -> Check:
        decision = gate_challenger(cfg, candidate, None, holdout).decision
        return next(c for c in decision.checks if c.name == "sanity")

    assert sanity(model).passed
    assert not sanity(constant).passed and "made no split" in sanity(constant).detail


def test_failed_registration_leaves_no_version(ctpipe_home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, frame, model = _trained()
    profile = build_profile(frame, cfg.features.numeric, cfg.features.categorical)
    experiment = registry.ensure_experiment("ctpipe-test")
    with mlflow.start_run(experiment_id=experiment):
        ok = registry.register_candidate("m-test", model, profile, profile,
                                         Lineage(holdout_metric="0.2"),
                                         sample=frame)
    assert ok.version == 1 and ok.aliases == ["challenger"]
    assert ok.tags["holdout_metric"] == "0.2" and len(ok.tags["artifact_sha256"]) == 64

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("registry went away")

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "set_registered_model_alias", unreachable)
        with mlflow.start_run(experiment_id=experiment), pytest.raises(ConnectionError):
            registry.register_candidate("m-test", model, profile, profile, Lineage(), sample=frame)
    assert [v.version for v in registry.list_versions("m-test")] == [1]
    assert registry.get_alias("m-test", "challenger").version == 1


def test_failed_promotion_moves_the_alias_back(ctpipe_home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, frame, model = _trained()
    profile = build_profile(frame, cfg.features.numeric, cfg.features.categorical)
    with mlflow.start_run(experiment_id=registry.ensure_experiment("ctpipe-test")):
        for _ in range(2):
            registry.register_candidate("m-promo", model, profile, profile, Lineage(), sample=frame)
    registry.promote("m-promo", 1, None, Lineage(approver="test"))
    assert registry.get_alias("m-promo", "champion").version == 1

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("registry went away")

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "set_model_version_tag", unreachable)
        with pytest.raises(ConnectionError):
            registry.promote("m-promo", 2, 1, Lineage(approver="test"))
    assert registry.get_alias("m-promo", "champion").version == 1
    assert "approver" not in registry.get_version("m-promo", 2).tags
    # A repeat after the move only writes the tags; a stale ``previous`` refuses to move.
    registry.promote("m-promo", 2, 1, Lineage(approver="test"))
    registry.promote("m-promo", 2, 1, Lineage(approver="retried"))
    assert registry.get_version("m-promo", 2).tags["approver"] == "retried"
    with pytest.raises(ChampionChanged, match="champion is v2 now, not v1"):
        registry.promote("m-promo", 1, 1, Lineage(approver="stale"))
    assert registry.get_alias("m-promo", "champion").version == 2


def test_features_named_with_characters_lightgbm_refuses_train_register_and_serve(
        ctpipe_home: Path) -> None:
    # Real columns carry units in brackets ("Water flow [l/s]"); LightGBM aborts on " , : [ ] { }
    # in a feature name, so the booster knows them by lightgbm_names and scores by position.
    cfg, frame, model = _trained()
    renamed = {"advance_bookings": "bookings [t]", "rainfall_mm": "rain {mm}",
               "commodity": "commodity: kind"}
    features = cfg.features.model_copy(update={
        "numeric": [renamed.get(c, c) for c in cfg.features.numeric],
        "categorical": [renamed.get(c, c) for c in cfg.features.categorical]})
    odd_cfg = cfg.model_copy(update={"features": features, "validation": cfg.validation.model_copy(
        update={"ranges": {renamed.get(k, k): v for k, v in cfg.validation.ranges.items()},
                "domains": {renamed.get(k, k): v for k, v in cfg.validation.domains.items()}})})
    odd = train_model(odd_cfg, frame.rename(columns=renamed))
    holdout = generate_day("demand", 6, DAYS[6])
    # Same rows, same seed: the same trees, whatever the features are called.
    np.testing.assert_allclose(odd.predict(holdout.rename(columns=renamed)),
                               model.predict(holdout))
    assert "bookings__t_" in odd.booster.feature_name()
    profile = build_profile(frame.rename(columns=renamed), odd_cfg.features.numeric,
                            odd_cfg.features.categorical)
    with mlflow.start_run(experiment_id=registry.ensure_experiment("ctpipe-test")):
        registry.register_candidate("m-odd", odd, profile, profile, Lineage(),
                                    sample=frame.rename(columns=renamed))
    served = registry.load_pyfunc("m-odd", 1).predict(holdout.rename(columns=renamed))
    np.testing.assert_allclose(np.asarray(served), model.predict(holdout))


def test_lightgbm_names_replace_refused_characters_and_stay_distinct() -> None:
    assert lightgbm_names(["a", "Water flow [l/s]", "t: x", "q_b_", "q[b]", "q{b}"]) == [
        "a", "Water flow _l/s_", "t_ x", "q_b_", "q_b__2", "q_b__3"]
