"""Watch production: measure logged predictions as labels arrive, and roll back on evidence.

Each run measures every batch whose labels have arrived (as of its date, after the label
delay) and that the champion's scoring run has no figures for yet; the previous champion's
shadow run of the same batch is measured beside it. Then the rule in
ctpipe.decisions.monitoring judges the champion's measured batches, and a confirmed degradation
rolls back through the same compare-and-swap path as `ctpipe rollback`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from ctpipe import db as production
from ctpipe.db import CHAMPION, Database, LiveMetric, MonitoringDecision, ScoringRun
from ctpipe.decisions.monitoring import LabelledBatch, LiveVerdict, judge_live
from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.decisions.rollback import never_served
from ctpipe.live import BatchFigures, Figures, JoinError, join_labels, measure
from ctpipe.steps.labels_set_aside import audit_labels_set_aside
from ctpipe.steps.ports import Runtime
from ctpipe.trace import Artifact, Decision

log = logging.getLogger(__name__)

# (reason, target version, the champion judged) -> the rollback's outcome
RollBack = Callable[[str, int, int], Outcome]


def _rows(run: ScoringRun, figures: BatchFigures, metric: str) -> list[LiveMetric]:
    def row(slice_: str, f: Figures, with_distribution: bool) -> LiveMetric:
        dist = figures.distribution if with_distribution else {}
        return LiveMetric(
            model_name=run.model_name, use_case=run.use_case, batch=run.batch, role=run.role,
            model_version=run.model_version, slice=slice_, metric=metric, value=f.value,
            rows_labelled=f.rows, rows_scored=figures.rows_scored,
            realized_precision=f.precision, realized_recall=f.recall,
            prediction_mean=dist.get("mean"), prediction_p50=dist.get("p50"),
            prediction_p90=dist.get("p90"), prediction_p99=dist.get("p99"))

    return [row("", figures.overall, True)] + [row(name, f, False)
                                               for name, f in figures.slices.items()]


def measure_new(rt: Runtime, db: Database, as_of: dt.date) -> tuple[list[LiveMetric], list[str]]:
    """Figures of every newly labelled, not yet measured scoring run; and what was skipped."""
    labelled = {d.isoformat() for d in rt.store.labelled_dates(as_of)}
    measured = {(m.batch, m.role, m.model_version)
                for m in production.live_metrics(db, rt.model_name)}
    rows: list[LiveMetric] = []
    notes: list[str] = []
    scored = production.scored_batches(production.scoring_runs(db, rt.model_name))
    for batch, pair in scored.items():
        run = pair.champion
        if batch not in labelled or (batch, CHAMPION, run.model_version) in measured:
            continue
        try:
            frame = rt.store.read_labelled([dt.date.fromisoformat(batch)])
        except (OSError, ValueError) as exc:  # broken labels: the cycle sets them aside
            notes.append(f"{batch}: not measured: {exc}")
            continue
        for each in filter(None, (run, pair.shadow)):
            logged = production.read_predictions(db, rt.model_name, batch, each.role,
                                                 each.model_version)
            try:
                joined = join_labels(logged, frame, rt.config)
            except JoinError as exc:
                notes.append(f"{batch} v{each.model_version} {each.role}: {exc}")
                continue
            figures = measure(rt.config, joined, logged["score"].to_numpy())
            rows += _rows(each, figures, rt.config.evaluation.metric)
    production.save_live_metrics(db, rows)
    return rows, notes


def history(db: Database, model_name: str) -> list[LabelledBatch]:
    """Each measured batch's champion figure beside its own shadow run's figure."""
    by_key = {(m.batch, m.role, m.model_version): m
              for m in production.live_metrics(db, model_name)}
    out = []
    for batch, pair in production.scored_batches(
            production.scoring_runs(db, model_name)).items():
        champ = by_key.get((batch, CHAMPION, pair.champion.model_version))
        if champ is None:
            continue
        shadow = None if pair.shadow is None else \
            by_key.get((batch, pair.shadow.role, pair.shadow.model_version))
        out.append(LabelledBatch(batch, pair.champion.model_version, champ.value,
                                 None if shadow is None else shadow.model_version,
                                 None if shadow is None else shadow.value))
    return out


def run_monitor(rt: Runtime, db: Database, as_of: dt.date, *,
                roll_back: RollBack | None = None) -> Outcome:
    """Measure what newly has labels, judge the champion, and roll back when confirmed."""
    rows, notes = measure_new(rt, db, as_of)
    audit_labels_set_aside(rt)  # those the join's labelled read set aside
    for note in notes:
        log.warning("%s", note)
    champion = rt.models.champion()
    if champion is None:
        return Outcome(CycleStatus.MONITORED, f"{rt.model_name}: no champion to watch",
                       result={"measured": 0})
    cfg = rt.config.monitoring
    past = history(db, rt.model_name)
    verdict = _judge(rt, past, champion.version, None)
    if verdict.rollback:  # judged again with the reason the target may not serve, if any
        verdict = _judge(rt, past, champion.version,
                         _why_not_serve(rt, champion.lineage.previous, verdict.target))
    measured = sorted({m.batch for m in rows if m.role == CHAMPION and not m.slice})
    result = {"as_of": as_of.isoformat(), "champion_version": champion.version,
              "measured": measured, "verdict": verdict.reason, "rolled_back": False,
              "notes": notes}
    decisions: list[Decision] = []
    if measured:
        decisions.append(_measured_decision(rt, champion.version, measured, rows, verdict))
        rt.publish(decisions[-1])
    outcome_status, message = CycleStatus.MONITORED, verdict.reason
    if verdict.rollback and not cfg.automatic_rollback:
        message = f"{verdict.reason} (automatic_rollback is off: not rolled back)"
    elif verdict.rollback and roll_back is not None:
        # Also without new evidence: a rollback an outage stopped is tried again next run.
        rolled = _roll_back(roll_back, verdict, champion.version)
        decisions += rolled.decisions
        if rolled.status is CycleStatus.ROLLED_BACK:
            outcome_status, message = CycleStatus.ROLLED_BACK, f"{rolled.message}: {verdict.reason}"
            result.update(rolled_back=True, champion_version=verdict.target)
        else:
            message = rolled.message
    kind = verdict.decision_kind(result["rolled_back"])
    if measured or verdict.rollback:
        production.record_decision(db, MonitoringDecision(
            model_name=rt.model_name, use_case=rt.use_case,
            batch=measured[-1] if measured else verdict.bad_batches[-1], kind=kind,
            champion_version=champion.version, target_version=verdict.target,
            reason=message, details={"measured": measured, "notes": notes,
                                     "bad_batches": list(verdict.bad_batches)}))
    return Outcome(outcome_status, message, tuple(decisions), result=result)


def _judge(rt: Runtime, past: list[LabelledBatch], champion: int,
           refusal: str | None) -> LiveVerdict:
    cfg = rt.config.monitoring
    return judge_live(past, champion, metric=rt.config.evaluation.metric,
                      floor=rt.config.gate.floor, higher_is_better=rt.config.higher_is_better,
                      margin=cfg.rollback_margin, after=cfg.rollback_after,
                      target_refusal=refusal)


def _why_not_serve(rt: Runtime, previous: int | None, target: int | None) -> str | None:
    """Why the shadow the champion lost to may not serve again, or None when it may."""
    if target is None or previous != target:
        return (f"v{target} is not the previous champion recorded on the champion "
                f"(v{previous})")
    try:
        return never_served(rt.models.version(target))
    except Exception as exc:  # noqa: BLE001 - a deleted version cannot serve, whatever the error
        return f"v{target} cannot be read from the registry ({type(exc).__name__}: {exc})"


def _roll_back(roll_back: RollBack, verdict: LiveVerdict, judged: int) -> Outcome:
    assert verdict.target is not None
    try:
        return roll_back(verdict.reason, verdict.target, judged)
    except ValueError as exc:  # refused (RollbackRefused) or the target failed its integrity
        return Outcome(CycleStatus.MONITORED,
                       f"degraded, rollback to v{verdict.target} refused: {exc}")


def _measured_decision(rt: Runtime, version: int, batches: list[str], rows: list[LiveMetric],
                       verdict: LiveVerdict) -> Decision:
    overall = [m for m in rows if not m.slice]
    table = [{"batch": m.batch, "role": m.role, "version": m.model_version,
              "labelled": m.rows_labelled, rt.config.evaluation.metric: m.value}
             for m in overall]
    lines = "\n".join(f"| {m.batch} | {m.role} | v{m.model_version} | {m.rows_labelled} | "
                      f"{'n/a' if m.value is None else f'{m.value:.4f}'} |" for m in overall)
    return Decision(
        kind="monitoring.measured", use_case=rt.use_case, subject=f"{rt.model_name} v{version}",
        reason=verdict.reason, details={"batches": batches, "figures": table},
        artifact=Artifact("monitoring", f"Live {rt.config.evaluation.metric}", (
            f"# Live performance of {rt.model_name}\n\n{verdict.reason}\n\n"
            f"| batch | role | version | labelled rows | {rt.config.evaluation.metric} |\n"
            f"|---|---|---|---|---|\n{lines}\n")))
