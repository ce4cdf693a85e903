"""Score one landed batch with the champion: validate, score, write, trace."""

from __future__ import annotations

import datetime as dt

from ctpipe.decisions.outcome import CycleStatus, Outcome
from ctpipe.links import mlflow_version_link
from ctpipe.scoring import score_frame
from ctpipe.steps.ports import Runtime
from ctpipe.trace import Artifact, Decision
from ctpipe.validation import validate_frame


class NothingToScore(RuntimeError):
    """No champion yet, or the batch failed validation, or it was scored: nothing is written."""


def run_score(rt: Runtime, day: dt.date, *, explicit_date: bool) -> Outcome:
    if not explicit_date and rt.store.predictions_exist(day):
        # A scheduled run passes no date: never rewrite predictions already handed out.
        raise NothingToScore(f"{rt.store.predictions_location(day)}: batch {day} already "
                             "scored; no new batch has landed (pass batch_date to score it "
                             "again)")
    batch = rt.step("load-batch", rt.store.read_batch, day)
    # Scoring may run before the day's cycle: bad input must never reach the model.
    result = rt.step("validate-batch", validate_frame, batch, rt.config, batch_date=day)
    if not result.passed:
        raise NothingToScore(result.message(rt.store.batch_source(day)))
    with rt.guard():
        champion = rt.step("load-champion", rt.models.load_champion, remote=True)
    if champion is None:
        raise NothingToScore(f"{rt.model_name}: no champion yet; run a cycle first")
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
