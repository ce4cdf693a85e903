"""Load a batch and validate it; quarantine it with its evidence when it fails."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from ctpipe.batch_reader import BatchReadError
from ctpipe.lineage import LoadedVersion
from ctpipe.steps.ports import Models, Runtime
from ctpipe.trace import Artifact, Decision
from ctpipe.validation import (
    NONE_LEARNED,
    LearnedSchema,
    ValidationResult,
    batch_period,
    validate_frame,
    write_data_docs,
)
from ctpipe.validation.learned import checked_columns


@dataclass(frozen=True)
class ValidationStep:
    batch: pd.DataFrame | None
    result: ValidationResult | None
    read_error: str | None = None
    # The champion loaded for its training categories (None: none yet, or not needed because
    # the config ignores rule seen_in_training), for the steps after validation to reuse.
    champion: LoadedVersion | None = None
    champion_loaded: bool = False  # tells "no champion yet" from "not loaded"
    fingerprint: str | None = None  # the batch file's, taken before it was read

    def remember_if_passed(self, rt: Runtime, day: dt.date) -> None:
        """A pass is remembered, so a training window holding the batch need not check it
        again while its file stays the same."""
        if self.passed and self.fingerprint is not None:
            rt.store.remember_passed(day, self.fingerprint)

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.passed

    def failures(self) -> list[str]:
        if self.result is None:
            return [self.read_error or "unreadable"]
        return [f.line() for f in self.result.failures]


def learned_schema(champion: LoadedVersion | None) -> LearnedSchema:
    """The categories the champion saw in training (NONE_LEARNED without a champion)."""
    if champion is None:
        return NONE_LEARNED
    return LearnedSchema.from_profile(champion.profile, f"champion v{champion.info.version}")


def learned_from_registry(models: Models) -> LearnedSchema:
    """For a one-off check (`ctpipe validate`): the champion's categories, or why there are none.

    A registry that cannot be read skips the rule with the reason in the report instead of
    failing the check: the other rules need no registry.
    """
    try:
        return learned_schema(models.load_champion())
    except Exception as exc:  # MLflow unreachable, a champion failing its hash check, ...
        return not_loaded(exc)


def not_loaded(exc: Exception) -> LearnedSchema:
    """The rule skipped, saying why the champion could not be read."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return LearnedSchema(None, absent="categories not compared with training: the "
                         f"champion could not be loaded ({reason})")


def validate_batch(rt: Runtime, day: dt.date, batch: pd.DataFrame,
                   training: LearnedSchema | None = None) -> ValidationResult:
    """The batch's rules, with the recent row counts and training categories it is compared
    with."""
    rules = rt.config.validation
    previous = [d for d in rt.store.batch_dates() if d < day][-rules.row_count_window:]
    now = None
    if rt.replay:  # a replay validates as if just after the batch's period closed, there
        now = dt.datetime.combine(batch_period(day, rt.config.data.batch_frequency)[1],
                                  dt.time(), tzinfo=ZoneInfo(rt.config.data.timezone))
    return validate_frame(batch, rt.config, batch_date=day,
                          recent_rows=rt.store.row_counts(previous), now=now, training=training)


def load_and_validate(rt: Runtime, day: dt.date) -> ValidationStep:
    """Read the batch, load the champion when its training categories are checked, validate."""
    try:
        fingerprint = rt.store.batch_fingerprint(day)
    except OSError:  # missing, a folder, unreadable: reading it names the problem
        fingerprint = None
    try:
        batch = rt.step("load-batch", rt.store.read_batch, day)
    except BatchReadError as exc:
        # The problem only: the quarantine message names the batch's source in front of it.
        return ValidationStep(None, None, exc.problem)
    champion, training, loaded = None, None, False
    if checked_columns(rt.config):  # loaded first: rule seen_in_training compares with it
        try:
            champion = rt.step("load-champion", rt.models.load_champion, remote=True)
            training, loaded = learned_schema(champion), True
        except Exception as exc:  # noqa: BLE001  (MLflow down, a champion failing its hash)
            # Validation and quarantine need no registry: a bad batch is still set aside; the
            # cycle loads the champion again (and fails there) only for a batch that passed.
            training = not_loaded(exc)
    result = rt.step("validate-batch", validate_batch, rt, day, batch, training)
    return ValidationStep(batch, result, champion=champion, champion_loaded=loaded,
                          fingerprint=fingerprint)


def check_training_window(rt: Runtime, day: dt.date) -> list[Decision]:
    """Validate the batches a retrain as of ``day`` would train on that never passed as they
    are now (landed in bulk, a backlog no cycle ran on, or replaced since they passed), and
    quarantine those that fail, as a cycle would have. The window then reaches further back,
    so the batches that move into it are checked too. Returns the quarantine decisions.

    Rule seen_in_training is not applied: a category the champion never saw is what a
    training batch brings it to learn, not a reason to keep the batch out of training.
    """
    checked: set[dt.date] = set()
    set_aside: list[Decision] = []
    while True:
        window = sorted(rt.store.labelled_dates(day))[-rt.config.training.window:]
        unchecked = [d for d in window if d not in checked and not rt.store.validated_as_is(d)]
        if not unchecked:
            return set_aside
        for batch_day in unchecked:
            checked.add(batch_day)
            step = _validated_for_training(rt, batch_day)
            if step is None:  # moved aside meanwhile, by another run
                continue
            if step.passed:
                step.remember_if_passed(rt, batch_day)
            else:
                set_aside.append(quarantine(rt, batch_day, step, before_training=day))


def _validated_for_training(rt: Runtime, day: dt.date) -> ValidationStep | None:
    try:
        fingerprint = rt.store.batch_fingerprint(day)
        batch = rt.store.read_batch(day)
    except FileNotFoundError:
        return None
    except BatchReadError as exc:
        return ValidationStep(None, None, exc.problem)
    return ValidationStep(batch, validate_batch(rt, day, batch), fingerprint=fingerprint)


def passed_decision(rt: Runtime, day: dt.date, result: ValidationResult) -> Decision:
    warned = f" with {len(result.warnings)} warnings" if result.warnings else ""
    return Decision(
        kind="validation.passed", use_case=rt.use_case, subject=f"batch {day}",
        reason=f"{result.rows} rows, {result.evaluated} expectations{warned}",
        details={"batch_date": day.isoformat(), "warnings": [w.line() for w in result.warnings]},
        artifact=Artifact("validation", f"Validation: passed{warned}",
                          result.summary_markdown(rt.store.batch_source(day))))


def quarantine(rt: Runtime, day: dt.date, step: ValidationStep, *,
               before_training: dt.date | None = None) -> Decision:
    """Move the batch aside with its GX result and summary; the decision says why.
    ``before_training``: the batch was checked because a retrain as of that date would have
    trained on it, not by a cycle of its own."""
    source = rt.store.batch_source(day)
    result = step.result
    if result is None:
        message = f"{source}: batch could not be read: {step.read_error}"
        summary, gx_result = f"# Validation FAILED: {source}\n\n{step.read_error}\n", {}
    else:
        message, summary, gx_result = result.message(source), result.summary_markdown(source), \
            result.gx_result
    if before_training is not None:
        why = (f"checked before batch {before_training}'s retrain trained on it: this file had "
               "not passed validation under the current config")
        message = f"{message} [{why}]"
        summary = f"{summary}\n\n{why[0].upper()}{why[1:]}.\n"
    folder = rt.store.quarantine(day, {
        "gx_result.json": json.dumps(gx_result, indent=2, default=str), "summary.md": summary})
    docs, link = "", None
    if result is not None and rt.data_docs is not None:
        page = write_data_docs(result, rt.config, rt.data_docs, batch_name=day.isoformat())
        docs = f"\n\nGX Data Docs: [{page.name}]({page.as_uri()})"
        link = (page.as_uri(), "GX Data Docs")
    return Decision(
        kind="validation.failed", use_case=rt.use_case, subject=f"batch {day}", reason=message,
        details={"batch_date": day.isoformat(), "quarantine": folder},
        artifact=Artifact("validation", "Validation: FAILED",
                          summary + f"\n\nQuarantined to `{folder}`.{docs}",
                          link=link, link_key="data-docs"),
        event="ctpipe.validation.failed",
        event_payload={"batch_date": day.isoformat(), "message": message,
                       "quarantine": folder})
