"""Load a batch and validate it; quarantine it with its evidence when it fails."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import pandas as pd

from ctpipe.batch_reader import BatchReadError
from ctpipe.decisions.retraining import window_check_refusal
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
        again while its file stays the same. A pass of other bytes than the last one that
        passed for that date is audited first (``batch.replaced``): what was scored or
        trained on before may no longer exist anywhere else."""
        if not self.passed or self.fingerprint is None:
            return
        fingerprint = self.fingerprint

        def audit(previous: str, when: str) -> None:
            replaced = batch_replaced(rt.use_case, day, (previous, when), fingerprint)
            if not rt.traced(replaced.id):  # a run killed before the note audits it once
                rt.publish(replaced)

        rt.store.remember_passed(day, fingerprint, on_replaced=audit)

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.passed

    def failures(self) -> list[str]:
        if self.result is None:
            return [self.read_error or "unreadable"]
        return [f.line() for f in self.result.failures]


def batch_replaced(use_case: str, day: dt.date, previous: tuple[str, str],
                   fingerprint: str) -> Decision:
    """The audit of a batch file that passed validation after other bytes had passed for the
    same date: a supplier's resend, or a file changed by hand."""
    old, when = previous
    return Decision(
        kind="batch.replaced", use_case=use_case, subject=f"batch {day}",
        reason=f"batch {day} was replaced after it passed validation{f' ({when})' if when else ''}"
               f": sha256 {old[:12]} -> {fingerprint[:12]}; the new file passed and is used "
               "from now on (the earlier passes stay in the validated note)",
        details={"batch_date": day.isoformat(), "previous_sha256": old, "sha256": fingerprint,
                 "previous_passed_at": when},
        # The earlier pass's time too: A -> B -> A -> B is two replacements to B, not one.
        id=hashlib.sha256(f"{use_case}|{day}|{old}|{when}|{fingerprint}".encode()
                          ).hexdigest()[:32])


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
        data = rt.config.data
        now = dt.datetime.combine(batch_period(day, data.batch_frequency, data.week_start)[1],
                                  dt.time(), tzinfo=ZoneInfo(rt.config.data.timezone))
    return validate_frame(batch, rt.config, batch_date=day,
                          recent_rows=rt.store.row_counts(previous), now=now, training=training)


def load_and_validate(rt: Runtime, day: dt.date) -> ValidationStep:
    """Read the batch, load the champion when its training categories are checked, validate."""
    fingerprint = _fingerprint(rt, day)
    batch = rt.step("load-batch", _read_or_problem, rt, day)
    if isinstance(batch, str):
        # The problem only: the quarantine message names the batch's source in front of it.
        return ValidationStep(None, None, batch)
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


def _fingerprint(rt: Runtime, day: dt.date) -> str | None:
    """The batch file's sha256, taken before it is read (None: missing, a folder, unreadable;
    reading it names the problem)."""
    try:
        return rt.store.batch_fingerprint(day)
    except OSError:
        return None


def _read_or_problem(rt: Runtime, day: dt.date) -> pd.DataFrame | str:
    """The batch, or why it cannot be read: returned, not raised, so that the orchestrator
    does not log a bad file as a failed step with a traceback (validation quarantines it)."""
    try:
        return rt.store.read_batch(day)
    except BatchReadError as exc:
        return exc.problem


def check_training_window(rt: Runtime, day: dt.date,
                          set_aside: Callable[[Decision], None]) -> str | None:
    """Validate the batches a retrain as of ``day`` would train on that never passed as they
    are now (landed in bulk, a backlog no cycle ran on, replaced since they passed, or
    passed under other validation rules). Those that fail leave the window, which reaches
    further back, so the batches that move into it are checked too. Then the failures are
    quarantined as a cycle would have, each handed to ``set_aside`` just before it moves.

    Unless too many fail (decisions.retraining.window_check_refusal): then nothing is moved
    and the refusal is returned. A rule tightened in the config, or a backlog in the wrong
    shape, must not empty the landing zone in one run.

    Rule seen_in_training is not applied: a category the champion never saw is what a
    training batch brings it to learn, not a reason to keep the batch out of training.
    """
    size = rt.config.training.window
    checked: set[dt.date] = set()
    failing: dict[dt.date, ValidationStep] = {}
    while True:
        # The window training will use (labelled_dates sets broken labels aside first) ...
        labelled = [d for d in rt.store.labelled_dates(day) if d not in failing]
        window = labelled[-size:]
        # ... and, within its span, batches whose labels arrived but that cannot be read
        # (labelled_dates leaves them out with a log line; here they are quarantined).
        usable = set(labelled)
        unreadable = [d for d in rt.store.labels_arrived(day) if window and d >= window[0]
                      and d not in failing and d not in usable]
        fresh = [d for d in sorted(window + unreadable) if d not in checked]
        if not fresh:
            break
        for batch_day in fresh:
            checked.add(batch_day)
            if rt.store.validated_as_is(batch_day):
                continue
            step = validated_for_training(rt, batch_day)
            if step is None:  # moved aside meanwhile, by another run
                continue
            if step.passed:
                step.remember_if_passed(rt, batch_day)
            else:
                failing[batch_day] = step
        refusal = window_check_refusal(day=day, window=size, checked=len(checked), failing=[
            _failure_message(rt, d, s) for d, s in sorted(failing.items())])
        if refusal is not None:
            return refusal
    for batch_day, step in sorted(failing.items()):
        quarantine(rt, batch_day, step, before_training=day, announce=set_aside)
    return None


def passes_as_it_is(rt: Runtime, day: dt.date) -> bool:
    """Whether the batch file, as it is now, passes the current rules: remembered from an
    earlier pass of the same bytes, or checked now (and remembered). A batch that fails is
    left where it is: the next retrain's window check quarantines it with its evidence."""
    if rt.store.validated_as_is(day):
        return True
    step = validated_for_training(rt, day)
    if step is None or not step.passed:
        return False
    step.remember_if_passed(rt, day)
    return True


def validated_for_training(rt: Runtime, day: dt.date) -> ValidationStep | None:
    """The batch checked as a training batch; None when it left the landing zone meanwhile."""
    fingerprint = _fingerprint(rt, day)
    batch = _read_or_problem(rt, day)
    if isinstance(batch, str):
        return None if day not in rt.store.batch_dates() else ValidationStep(None, None, batch)
    return ValidationStep(batch, validate_batch(rt, day, batch, NOT_FOR_TRAINING),
                          fingerprint=fingerprint)


# A training batch's categories are not compared with the champion's: see check_training_window.
NOT_FOR_TRAINING = LearnedSchema(None, absent="categories not compared with the champion's "
                                 "training data: a training batch brings the categories a "
                                 "retrain learns")


def _failure_message(rt: Runtime, day: dt.date, step: ValidationStep) -> str:
    source = rt.store.batch_source(day)
    if step.result is None:
        return f"{source}: batch could not be read: {step.read_error}"
    return step.result.message(source)


def passed_decision(rt: Runtime, day: dt.date, result: ValidationResult) -> Decision:
    warned = f" with {len(result.warnings)} warnings" if result.warnings else ""
    return Decision(
        kind="validation.passed", use_case=rt.use_case, subject=f"batch {day}",
        reason=f"{result.rows} rows, {result.evaluated} expectations{warned}",
        details={"batch_date": day.isoformat(), "warnings": [w.line() for w in result.warnings]},
        artifact=Artifact("validation", f"Validation: passed{warned}",
                          result.summary_markdown(rt.store.batch_source(day))))


@dataclass(frozen=True)
class Evidence:
    """What a batch set aside leaves beside it: the validation summary and GX result, and the
    GX Data Docs page (markdown line and link) when one was written."""

    summary: str
    gx_result: dict
    docs: str = ""
    link: tuple[str, str] | None = None

    def files(self) -> dict[str, str]:
        return {"gx_result.json": json.dumps(self.gx_result, indent=2, default=str),
                "summary.md": self.summary}


def evidence(rt: Runtime, day: dt.date, step: ValidationStep) -> Evidence:
    """The step's result as evidence; an unreadable file's is its read error."""
    source = rt.store.batch_source(day)
    result = step.result
    if result is None:
        return Evidence(f"# Validation FAILED: {source}\n\n{step.read_error}\n", {})
    if rt.data_docs is None or result.passed:
        return Evidence(result.summary_markdown(source), result.gx_result)
    page = write_data_docs(result, rt.config, rt.data_docs, batch_name=day.isoformat())
    return Evidence(result.summary_markdown(source), result.gx_result,
                    f"\n\nGX Data Docs: [{page.name}]({page.as_uri()})",
                    (page.as_uri(), "GX Data Docs"))


def quarantine(rt: Runtime, day: dt.date, step: ValidationStep, *,
               before_training: dt.date | None = None,
               announce: Callable[[Decision], None] | None = None) -> Decision:
    """Move the batch aside with its GX result and summary; the decision says why.
    ``before_training``: the batch was checked because a retrain as of that date would have
    trained on it, not by a cycle of its own. ``announce`` gets the decision once the
    evidence is written and before the batch moves (a run killed in between leaves the batch
    where it was, traced, and the next run judges it again)."""
    message = _failure_message(rt, day, step)
    found = evidence(rt, day, step)
    if before_training is not None:
        why = (f"checked before batch {before_training}'s retrain would train on it: this "
               "file, as it is now, had not passed the current validation rules (no cycle ran "
               "on it, it changed since it passed, or the rules did)")
        message = f"{message} [{why}]"
        found = replace(found, summary=f"{found.summary}\n\n{why[0].upper()}{why[1:]}.\n")

    def decision(folder: str) -> Decision:
        return Decision(
            kind="validation.failed", use_case=rt.use_case, subject=f"batch {day}",
            reason=message, details={"batch_date": day.isoformat(), "quarantine": folder},
            artifact=Artifact("validation", "Validation: FAILED",
                              found.summary + f"\n\nQuarantined to `{folder}`.{found.docs}",
                              link=found.link, link_key="data-docs"),
            event="ctpipe.validation.failed",
            event_payload={"batch_date": day.isoformat(), "message": message,
                           "quarantine": folder})

    folder = rt.store.quarantine(day, found.files(), before_move=None if announce is None
                                 else lambda f: announce(decision(f)))
    return decision(folder)
