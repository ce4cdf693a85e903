"""Score one landed batch with the champion: validate, score, write, trace."""

from __future__ import annotations

import datetime as dt

from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.decisions.retraining import refuse_scoring
from ctpipe.links import mlflow_version_link
from ctpipe.scoring import score_frame
from ctpipe.steps.ports import Runtime
from ctpipe.trace import Artifact, Decision
from ctpipe.validation import validate_frame


def run_score(rt: Runtime, day: dt.date, *, explicit_date: bool) -> Outcome:
    where = rt.store.predictions_location(day)
    done = refuse_scoring(already_scored=rt.store.predictions_exist(day),
                          explicit_date=explicit_date, where=where, day=day, invalid=None,
                          champion_model=None)
    if not done.go_on:  # nothing read, nothing written
        return Outcome(done.status, done.message)
    batch = rt.step("load-batch", rt.store.read_batch, day)
    # Scoring may run before the day's cycle: bad input must never reach the model.
    result = rt.step("validate-batch", validate_frame, batch, rt.config, batch_date=day)
    with rt.guard():
        champion = rt.step("load-champion", rt.models.load_champion, remote=True)
    refusal = refuse_scoring(
        already_scored=False, explicit_date=explicit_date, where=where, day=day,
        invalid=None if result.passed else result.message(rt.store.batch_source(day)),
        champion_model=rt.model_name if champion is None else None)
    if not refusal.go_on:
        decision = Decision(
            kind="scoring.refused", use_case=rt.use_case, subject=f"batch {day}",
            reason=refusal.message, details={"batch_date": day.isoformat()},
            artifact=Artifact("scoring", "Scoring refused",
                              f"# Scoring refused: {rt.use_case} {day}\n\n{refusal.message}\n"
                              "\nNo prediction was written."))
        rt.publish(decision)
        return Outcome(refusal.status, refusal.message, (decision,))
    scored = rt.step("score-batch", score_frame, rt.config, rt.model_name, day, batch, champion)
    path = rt.store.write_predictions(day, scored)
    version = champion.info.version
    mean = float(scored["prediction"].mean()) if len(scored) else float("nan")
    link = mlflow_version_link(rt.model_name, version)
    message = f"{len(scored)} rows scored by v{version}"
    decision = Decision(
        kind="batch.scored", use_case=rt.use_case, subject=f"batch {day}", reason=message,
        details={"batch_date": day.isoformat(), "model": rt.model_name, "version": version,
                 "predictions": path},
        artifact=Artifact("scoring", f"Scored by v{version}", (
            f"# Scored {rt.use_case} {day}\n\n- rows: {len(scored)}\n- model: "
            f"[{rt.model_name} v{version}]({link})\n- mean prediction: {mean:.4f}\n"
            f"- predictions: `{path}`")))
    rt.publish(decision)
    return Outcome(CycleStatus.SCORED, message, (decision,), result={
        "use_case": rt.use_case, "batch_date": day.isoformat(), "rows": len(scored),
        "model": rt.model_name, "version": version, "path": path})
