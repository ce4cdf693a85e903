"""Score a batch with the champion: validate, score, log every prediction, write, trace.

Every prediction goes to ctpipe's database (the prediction log) before the output file is
written: a run killed in between leaves the log complete and no file, so the next run scores
the batch again and replaces its rows (one transaction), never duplicating them. The previous
champion scores the same rows in shadow, logged beside, so monitoring can compare the two on
the same labels; a binary champion's label-free estimate is stored with its scoring run.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ctpipe import db as production
from ctpipe.db import CHAMPION, INPUT_PREFIX, SHADOW, Database, ScoringRun
from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.decisions.retraining import Unservable, refuse_scoring
from ctpipe.estimate import estimate_binary
from ctpipe.integrity import ArtifactsUnreadable, IntegrityError
from ctpipe.lineage import LoadedVersion
from ctpipe.links import mlflow_version_link
from ctpipe.scoring import score_frame
from ctpipe.steps.ports import Models, Runtime
from ctpipe.trace import Artifact, Decision
from ctpipe.validation import validate_frame

log = logging.getLogger(__name__)


def input_batch(path: Path, sha256: str) -> str:
    """The prediction log's batch key of a file scored with `ctpipe score --input`: its name
    and the start of its bytes' sha256. Not the name alone: today's ``today.parquet`` must
    not replace yesterday's logged predictions; the same bytes scored again replace their
    own log."""
    return f"{INPUT_PREFIX}{path.name[:200]}@{sha256[:16]}"


def write_output(frame: pd.DataFrame, path: Path) -> str:
    """Parquet or CSV by the file's suffix, written to a temporary file and renamed."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"{path}: output must end in .parquet or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return str(path)


def _shadow(rt: Runtime, champion: LoadedVersion) -> LoadedVersion | None:
    """The previous champion, loaded verified; None when there is none or it fails its check."""
    previous = champion.info.lineage.previous
    if previous is None:
        return None
    try:
        return rt.models.load_version(previous)
    except Exception as exc:  # noqa: BLE001 - integrity refused, version gone, registry error:
        # the shadow is evidence for monitoring, never a reason not to serve the champion.
        log.warning("shadow v%s not scored: %s", previous, exc)
        return None


def _logged_run(rt: Runtime, batch: str, role: str, version: LoadedVersion,
                frame: pd.DataFrame, scores: np.ndarray, scored_at: dt.datetime,
                output: str = "") -> tuple[ScoringRun, pd.DataFrame]:
    """A scoring run and its rows as the prediction log takes them."""
    estimate = None
    calibration = getattr(version.model, "calibration", None)
    # The estimate is the champion's: nothing reads a shadow's, and it costs a second.
    if role == CHAMPION and rt.config.data.task == "binary" and calibration is not None:
        estimate = estimate_binary(scores, calibration, rt.config.evaluation.alert_budget,
                                   rt.config.evaluation.metric)
    id_col = rt.config.data.id_column
    rows = pd.DataFrame({
        "row_index": np.arange(len(frame), dtype="int64"),
        "row_id": frame[id_col].astype("str").to_numpy() if id_col else None,
        "score": scores,
    })
    run = ScoringRun(
        model_name=rt.model_name, use_case=rt.use_case, batch=batch, role=role,
        model_version=version.info.version,
        artifact_sha256=version.info.lineage.artifact_sha256 or "", rows=len(frame),
        scored_at=scored_at, output=output,
        estimated_metric=None if estimate is None else estimate.metric,
        estimated_precision=None if estimate is None else estimate.precision,
        estimated_recall=None if estimate is None else estimate.recall)
    return run, rows


def _log(rt: Runtime, db: Database, batch: str, frame: pd.DataFrame,
         champion: LoadedVersion, scores: np.ndarray, output: str,
         shadow: LoadedVersion | None, shadow_scores: np.ndarray | None) -> ScoringRun:
    """The champion's rows and the shadow's, in one transaction: never one without the other.
    Both runs carry the same time stamp, which pairs them (ctpipe.db.scored_batches)."""
    at = dt.datetime.now(dt.UTC)
    run, rows = _logged_run(rt, batch, CHAMPION, champion, frame, scores, at, output)
    beside = [] if shadow is None or shadow_scores is None else [_logged_run(
        rt, batch, SHADOW, shadow, frame, shadow_scores, at)]
    production.log_predictions(db, run, rows, *beside)
    return run


def score_and_log(rt: Runtime, db: Database, batch: str, frame: pd.DataFrame,
                  champion: LoadedVersion, output: str, day: dt.date | None = None
                  ) -> tuple[pd.DataFrame, ScoringRun]:
    """The champion's output frame, its predictions logged, and the shadow's beside them."""
    scored = rt.step("score-batch", score_frame, rt.config, rt.model_name, day, frame, champion)
    # The shadow is loaded and scored before anything is logged: a registry failure then
    # leaves nothing half done.
    shadow = _shadow(rt, champion)
    shadow_scores = None if shadow is None else shadow.model.predict(frame)
    if shadow_scores is not None and not np.isfinite(shadow_scores).all():
        log.warning("shadow v%s gave non-finite scores on %s: not logged",
                    shadow.info.version, batch)
        shadow_scores = None
    run = rt.step("log-predictions", _log, rt, db, batch, frame, champion,
                  scored["score"].to_numpy(), output, shadow, shadow_scores)
    return scored, run


def _refused(rt: Runtime, subject: str, message: str, details: dict) -> Outcome:
    decision = Decision(
        kind="scoring.refused", use_case=rt.use_case, subject=subject, reason=message,
        details=details, artifact=Artifact("scoring", "Scoring refused",
                                           f"# Scoring refused: {rt.use_case} {subject}\n\n"
                                           f"{message}\n\nNo prediction was written."))
    rt.publish(decision)
    return Outcome(CycleStatus.REFUSED, message, (decision,))


def _scored(rt: Runtime, subject: str, scored: pd.DataFrame, run: ScoringRun, where: str,
            details: dict) -> Outcome:
    version = run.model_version
    mean = float(scored["score"].mean()) if len(scored) else float("nan")
    link = mlflow_version_link(rt.model_name, version)
    estimate = "" if run.estimated_metric is None else (
        f"\n- estimated {rt.config.evaluation.metric} (label-free): {run.estimated_metric:.4f}")
    message = f"{len(scored)} rows scored by v{version}"
    decision = Decision(
        kind="batch.scored", use_case=rt.use_case, subject=subject, reason=message,
        details={**details, "model": rt.model_name, "version": version, "predictions": where,
                 "rows": len(scored), "estimated_metric": run.estimated_metric},
        artifact=Artifact("scoring", f"Scored by v{version}", (
            f"# Scored {rt.use_case} {subject}\n\n- rows: {len(scored)}\n- model: "
            f"[{rt.model_name} v{version}]({link})\n- mean score: {mean:.4f}{estimate}\n"
            f"- predictions: `{where}`, and every row in the prediction log")))
    rt.publish(decision)
    return Outcome(CycleStatus.SCORED, message, (decision,), result={
        "use_case": rt.use_case, "rows": len(scored), "model": rt.model_name,
        "version": version, "path": where, "estimated_metric": run.estimated_metric,
        **details})


def servable_champion(models: Models) -> tuple[LoadedVersion | None, Unservable | None]:
    """The champion (None: none yet), or why it may not serve: its stored files no longer
    match their sha256, or could not be read to check them. Returned, not raised: a refusal
    to audit, not a crash to trace back. A store that is only slow to answer raises (a
    transient error): the step retries it."""
    try:
        return models.load_champion(), None
    except IntegrityError as exc:
        return None, Unservable(str(exc), unread=isinstance(exc, ArtifactsUnreadable))


def _load_champion(rt: Runtime) -> tuple[LoadedVersion | None, Unservable | None]:
    with rt.guard():
        return rt.step("load-champion", servable_champion, rt.models, remote=True)


def run_score(rt: Runtime, db: Database, day: dt.date, *, explicit_date: bool) -> Outcome:
    """Score one landed batch; a scheduled run never re-scores a batch already handed out."""
    where = rt.store.predictions_location(day)
    done = refuse_scoring(already_scored=rt.store.predictions_exist(day),
                          explicit_date=explicit_date, where=where, day=day, invalid=None,
                          champion_model=None)
    if not done.go_on:  # nothing read, nothing written
        return Outcome(done.status, done.message)
    batch = rt.step("load-batch", rt.store.read_batch, day)
    # Scoring may run before the day's cycle: bad input must never reach the model.
    result = rt.step("validate-batch", validate_frame, batch, rt.config, batch_date=day)
    champion, why_not = _load_champion(rt)
    details = {"batch_date": day.isoformat()}
    refusal = refuse_scoring(
        already_scored=False, explicit_date=explicit_date, where=where, day=day,
        invalid=None if result.passed else result.message(rt.store.batch_source(day)),
        champion_model=rt.model_name if champion is None else None, unservable=why_not)
    if not refusal.go_on:
        return _refused(rt, f"batch {day}", refusal.message, details)
    scored, run = score_and_log(rt, db, day.isoformat(), batch, champion, where, day)
    rt.store.write_predictions(day, scored)
    return _scored(rt, f"batch {day}", scored, run, where, details)


def run_score_file(rt: Runtime, db: Database, frame: pd.DataFrame, source: Path,
                   output: Path, sha256: str) -> Outcome:
    """Score rows read from ``source`` (whose bytes had ``sha256``) into ``output`` (Parquet
    or CSV by suffix)."""
    result = rt.step("validate-input", validate_frame, frame, rt.config)
    champion, why_not = _load_champion(rt)
    # Absolute: the audit trail is read later, from anywhere.
    details = {"input": str(source.absolute()), "input_sha256": sha256,
               "output": str(output.absolute())}
    refusal = refuse_scoring(
        already_scored=False, explicit_date=True, where=details["output"], day=None,
        invalid=None if result.passed else result.message(str(source)),
        champion_model=rt.model_name if champion is None else None, unservable=why_not)
    if not refusal.go_on:
        return _refused(rt, source.name, refusal.message, details)
    scored, run = score_and_log(rt, db, input_batch(source, sha256), frame, champion,
                                details["output"])
    write_output(scored, output)
    return _scored(rt, source.name, scored, run, details["output"], details)
