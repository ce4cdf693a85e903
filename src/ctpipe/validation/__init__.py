"""Batch validation: a Great Expectations suite generated from the use-case config.

A batch arrives WITHOUT its target (labels land later in a separate file); it carries the time
column, the id column (if configured) and every feature. The suite checks, in this order
(the names in brackets are the rule names `validation.warn` / `validation.ignore` accept):

- the row count is within ``validation.min_rows`` .. ``validation.max_rows`` [row_count];
  an empty batch always fails, whatever the config says;
- the row count is within ``validation.row_count_tolerance`` of the median of the recent
  batches' row counts, when the caller passes at least ``row_count_min_history`` of them
  [row_count_recent];
- the time column, the id column and every feature column exist [column_exists];
- no other columns than those and the target (``validation.unexpected_columns``);
- numeric features have a numeric dtype (a column of strings or mixed values fails here) and
  the time column a timestamp dtype [dtype];
- at most ``validation.max_null_fraction`` nulls per column (``validation.null_fraction``
  overrides it per column) [nulls];
- every numeric feature is finite, within ``validation.ranges`` where it has one (an
  infinity is a number training learns nothing from) [range];
- ``validation.domains`` [domain] hold; a domain tolerates
  ``unseen_category_share`` (or its per-column override) of values outside it (GX ``mostly``);
- the id column is unique [unique];
- every timestamp lies inside the batch's period [period], when the caller passes the batch
  date (see ``batch_period``), and none is after ``now`` [future], when it passes the batch
  date or ``now`` (`ctpipe validate` without ``--date`` passes the current time);
- every categorical feature's values are categories the champion saw in training
  [seen_in_training], when the caller passes the schema learned from its reference profile
  (``LearnedSchema``); severity ``validation.unseen_in_training`` (default warn);
- every expectation listed under ``validation.extra``, with its own severity.

Each rule is an error (the batch fails and is quarantined) unless the config marks it a warning
(reported under its own heading; ``ValidationResult.passed`` stays True) or ignores it. The
severity is also set on the GX expectation itself (GX ``severity`` critical / warning), so the
GX result and its Data Docs tell the same story.

Modules, one job each (none imports great_expectations until it is used):

- ``spec``: rule kinds, severities and the Spec record the others share;
- ``suite``: the suite built from the config; ``check_config_expectations`` checks
  ``validation.extra`` against GX when a workspace opens;
- ``rules``: the per-call rules (batch period, future timestamps, row count vs recent batches);
- ``learned``: the schema learned from the champion's training data (rule seen_in_training);
- ``runtime``: the GX context and per-config plans; ``validate_frame`` and ``validate_file``;
- ``messages``: Failure and ValidationResult, GX results described for people, markdown;
- ``docs``: GX Data Docs rendered from a stored result.

Files are read by ``ctpipe.batch_reader`` (re-exported here: ``read_batch_file``,
``BatchReadError``).
"""

from ctpipe.batch_reader import BatchReadError, read_batch_file
from ctpipe.validation.docs import write_data_docs
from ctpipe.validation.learned import NONE_LEARNED, LearnedSchema
from ctpipe.validation.messages import EXAMPLES, Failure, ValidationResult
from ctpipe.validation.rules import batch_period
from ctpipe.validation.runtime import validate_file, validate_frame
from ctpipe.validation.spec import ERROR, WARNING
from ctpipe.validation.suite import (
    build_suite,
    check_config_expectations,
    check_extra_expectation,
    expectation_class,
)

__all__ = [
    "ERROR",
    "EXAMPLES",
    "NONE_LEARNED",
    "WARNING",
    "BatchReadError",
    "Failure",
    "LearnedSchema",
    "ValidationResult",
    "batch_period",
    "build_suite",
    "check_config_expectations",
    "check_extra_expectation",
    "expectation_class",
    "read_batch_file",
    "validate_file",
    "validate_frame",
    "write_data_docs",
]
