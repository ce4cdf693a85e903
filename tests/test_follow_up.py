"""After a drift-triggered promotion the champion has learned the change from one batch; the
cycle retrains it again as the labelled batches from the drift's onset grow (follow-ups),
weighing up the same onset, and stops once an attempt has seen training.follow_up_until (by
default the whole training part of the window).

The real cycle (validation, drift, LightGBM, gate) over in-memory ports, on the demand stream
with its abrupt shift."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from ctpipe.config import UseCaseConfig, repo_configs_dir
from ctpipe.decisions.outcome import CycleStatus
from ctpipe.simulate import generate_day
from ctpipe.steps.cycle import run_cycle
from ctpipe.steps.drift import RETRAIN_LABEL
from ctpipe.steps.ports import Runtime
from ctpipe.steps.retrain import run_retrain
from ctpipe.trace import Decision
from tests.fakes import MemoryRegistry, MemoryStore

START = dt.date(2026, 3, 2)
SHIFT = 12
DAYS = 24


def day(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def _config(follow_up_until: int | None, drift_emphasis: float,
            retrain_every: int | None, growth: float | None,
            row_holdout: float | None, holdout: int) -> UseCaseConfig:
    raw = yaml.safe_load((repo_configs_dir() / "demand.yaml").read_text())
    # growth None: the code's default, not demand.yaml's own setting.
    raw["training"].pop("follow_up_growth", None)
    raw["training"].update({"window": 8, "holdout": holdout, "min_train_rows": 200,
                            "follow_up_until": follow_up_until,
                            "row_holdout_after_drift": row_holdout,
                            "drift_emphasis": drift_emphasis,
                            "retrain_every": retrain_every,
                            **({"follow_up_growth": growth} if growth else {}),
                            "params": {"n_estimators": 60, "learning_rate": 0.1,
                                       "num_leaves": 15, "min_child_samples": 20}})
    return UseCaseConfig.model_validate(raw)


def _replay(follow_up_until: int | None, drift_emphasis: float = 4.0,
            retrain_every: int | None = None, by_event: bool = False,
            growth: float | None = 2.0,
            row_holdout: float | None = None, holdout: int = 1, shift: int | None = SHIFT,
            odd_day: int | None = None) -> tuple[MemoryStore, MemoryRegistry]:
    """Cycles from day 8 on; ``by_event``: the cycle does not retrain, its event starts the
    retrain at once, as the retraining deployment would at its fastest (inside the publish,
    before the cycle has returned). Whole batches are held out unless ``row_holdout`` says
    otherwise, so the first drift retrain comes two batches after the shift. ``odd_day``:
    that batch's volumes are five times the usual (one odd day, not a new regime)."""
    config = _config(follow_up_until, drift_emphasis, retrain_every, growth, row_holdout,
                     holdout)
    store = MemoryStore(config)
    for i in range(DAYS):
        batch = generate_day("demand", i, day(i), rows=None, shift_day=shift, seed=7)
        if i == odd_day:
            batch["volume_tonnes"] *= 5
        store.add(day(i), batch)
    models = MemoryRegistry(config.registered_model)

    def publish(decision: Decision) -> None:
        payload = decision.event_payload or {}
        if decision.event and decision.event_labels.get(RETRAIN_LABEL) == "by-event" \
                and payload.get("reason"):
            run_retrain(rt, dt.date.fromisoformat(payload["batch_date"]), payload["reason"])

    rt = Runtime(config=config, model_name=config.registered_model, store=store,
                 models=models, publish=publish, replay=True,
                 ask_approval=lambda request: None)
    for i in range(8, DAYS):
        run_cycle(rt, day(i), explicit_date=True, retrain_inline=not by_event)
    return store, models


def _retrains(store: MemoryStore) -> dict[int, tuple[str, str | None]]:
    """Day index -> (retrain reason, the change's onset it learns), after the cold start."""
    out = {}
    for i in range(9, DAYS):
        record = store.read_record(day(i))
        if record is not None and record.retrained:
            out[i] = (record.retrain_reason or "", record.change_onset)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("by_event", [False, True], ids=["inline", "by-event"])
def test_follow_ups_retrain_as_the_new_batches_double_then_stop(by_event: bool) -> None:
    store, models = _replay(follow_up_until=4, by_event=by_event)
    retrains = _retrains(store)
    onset = day(SHIFT).isoformat()
    # label_delay 1 and holdout 1: the training part first holds the shift's batch two
    # batches after it. Then follow-ups when 2 and 4 batches from the onset are trainable.
    assert sorted(retrains) == [SHIFT + 2, SHIFT + 3, SHIFT + 5], retrains
    first_reason, first_onset = retrains[SHIFT + 2]
    assert "drift" in first_reason and not first_reason.startswith("follow-up"), first_reason
    assert first_onset == onset
    # The drift was first seen in the shift batch's labels (or its data): its onset, recorded.
    seen = [store.read_record(day(i)) for i in range(SHIFT, SHIFT + 2)]
    assert {r.drift_onset for r in seen if r.drift_detected} == {onset}
    for i, learned in ((SHIFT + 3, 1), (SHIFT + 5, 2)):
        reason, emphasis = retrains[i]
        assert reason.startswith("follow-up after drift: the newest challenger learned the "
                                 f"change since {onset} from {learned} labelled batch"), reason
        assert emphasis == onset
    assert store.read_record(day(SHIFT + 2)).status is CycleStatus.PROMOTED
    # Every version trained from the shift on learned it and weighed it up, as its lineage says.
    after = [v for v in models.versions() if v.lineage.batch_date >= day(SHIFT).isoformat()]
    assert len(after) == 3
    assert {(v.lineage.change_onset, v.lineage.emphasis_from) for v in after} == {(onset, onset)}


@pytest.mark.slow
def test_a_row_holdout_learns_the_change_from_its_first_labelled_batches() -> None:
    store, models = _replay(follow_up_until=4, row_holdout=0.5, holdout=2)
    retrains = _retrains(store)
    onset = day(SHIFT).isoformat()
    # label_delay 1, holdout 2: whole held-out batches would first train on the shift's batch
    # 3 batches after it. Once its labels are in (one batch after it) and the change outlasts
    # it (that next batch's inputs drift too), the shift's batch is shared: half its rows
    # train, half are the holdout. The drift retrain comes 1 batch after the shift and is
    # promoted.
    # Follow-ups (growth 2) share rows too while the holdout still holds every batch of the
    # change: at 2 batches; at 4, the training part holds some, and whole batches are held
    # out again.
    assert sorted(retrains) == [SHIFT + 1, SHIFT + 2, SHIFT + 6], retrains
    assert not retrains[SHIFT + 1][0].startswith("follow-up")
    assert all(retrains[i][0].startswith("follow-up after drift:") for i in (SHIFT + 2, SHIFT + 6))
    assert {learns for _, learns in retrains.values()} == {onset}
    record = store.read_record(day(SHIFT + 1))
    assert record.status is CycleStatus.PROMOTED and record.drifted_features, record
    versions = sorted((v for v in models.versions() if v.lineage.batch_date >= onset),
                      key=lambda v: v.version)
    splits = [(v.lineage.train_end, v.lineage.holdout_start, v.lineage.holdout_end,
               v.lineage.holdout_share) for v in versions]
    after = day(SHIFT + 1).isoformat()
    assert splits[:2] == [(onset, onset, onset, "0.5"), (after, onset, after, "0.5")]
    assert splits[2][3] is None and splits[2][1] > splits[2][0]
    # 8 batches of 240 rows: 7 whole, and the other half of the one shared.
    assert 7 * 240 + 100 < int(versions[0].lineage.train_rows) < 7 * 240 + 140


@pytest.mark.slow
def test_one_odd_batch_is_not_learned_from_its_own_rows() -> None:
    store, _ = _replay(follow_up_until=4, row_holdout=0.5, holdout=2, shift=None,
                       odd_day=14)
    # Its labels (one batch later) show performance drift, but neither the cycle before nor
    # the new batch's inputs show any: no row holdout, so the drift waits for whole batches
    # of it, and by the next batch the pooled labels are ordinary again. Sharing the odd
    # batch's rows would have trained on half of it and judged on the other half, which looks
    # like it.
    assert _retrains(store) == {}
    seen = store.read_record(day(15))
    assert seen.drift_detected and seen.status is CycleStatus.COOLING_DOWN, seen
    assert "waiting for the new data" in (seen.message or ""), seen.message
    assert not store.read_record(day(16)).drift_detected


@pytest.mark.slow
def test_by_default_follow_ups_triple_until_the_training_part_is_all_new() -> None:
    store, models = _replay(follow_up_until=None, growth=None)
    retrains = _retrains(store)
    # Window 8, holdout 1: the training part is 7 batches. After the drift retrain (1 batch
    # of the change), follow-ups at 3 and at 7 (9 capped): the last one trains on the new
    # regime only.
    assert sorted(retrains) == [SHIFT + 2, SHIFT + 4, SHIFT + 8], retrains
    assert retrains[SHIFT + 8][0].endswith("one trained now sees 7 (follow-ups until 7)")
    newest = max(models.versions(), key=lambda v: v.version)
    assert newest.lineage.train_start >= day(SHIFT).isoformat(), newest.lineage


@pytest.mark.slow
def test_follow_ups_do_not_need_the_emphasis() -> None:
    store, models = _replay(follow_up_until=4, drift_emphasis=1.0)
    assert sorted(_retrains(store)) == [SHIFT + 2, SHIFT + 3, SHIFT + 5]
    after = [v for v in models.versions() if v.lineage.batch_date >= day(SHIFT).isoformat()]
    onset = day(SHIFT).isoformat()
    assert {(v.lineage.change_onset, v.lineage.emphasis_from) for v in after} == {(onset, None)}


@pytest.mark.slow
def test_no_follow_ups_when_turned_off() -> None:
    store, _ = _replay(follow_up_until=0)
    assert sorted(_retrains(store)) == [SHIFT + 2]


@pytest.mark.slow
def test_a_due_schedule_keeps_learning_the_change_until_the_follow_ups_are_done() -> None:
    store, _ = _replay(follow_up_until=4, retrain_every=1)
    retrains = _retrains(store)
    onset = day(SHIFT).isoformat()
    # Every batch retrains on the schedule (its reason wins over drift and follow-ups). From
    # the first whose window holds the shift's batch, they learn the change while the newest
    # attempt saw fewer than 4 batches from it, then none: the follow-ups are done.
    assert all(why.startswith("scheduled") for why, _ in retrains.values())
    assert [retrains[i][1] for i in range(SHIFT, SHIFT + 7)] == [None] * 2 + [onset] * 4 + [None]
