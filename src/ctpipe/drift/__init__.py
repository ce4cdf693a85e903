"""Drift statistics: a champion's reference profile against a new batch, feature by feature.

Pure numpy/scipy/pandas (no orchestration). Every statistic equals its scipy counterpart on the
same non-missing values (``ks_2samp``, ``chisquare``, ``wasserstein_distance``,
``jensenshannon``); the expensive ones are computed from sorted arrays so that a daily check costs
about one sort of each current numeric column plus linear passes.

Modules, by job:

* :mod:`~ctpipe.drift.profile`: the reference profile kept from the training data, and its file.
* :mod:`~ctpipe.drift.stattests`: the drift-test registry (adding a test = one entry there) and
  the ``auto`` policy.
* :mod:`~ctpipe.drift.stats`: the statistics themselves, from sorted arrays or counts.
* :mod:`~ctpipe.drift.report`: ``detect_drift`` (weights, windows, the seasonal check) and
  ``performance_drift``.
* :mod:`~ctpipe.drift.results`: ``FeatureDrift`` and ``DriftReport`` (records, markdown).
* :mod:`~ctpipe.drift.window`: features constant within a batch, judged over a window of
  batches with one value per batch.
* :mod:`~ctpipe.drift.columns`: column helpers (sorted finite values, category counts).
* :mod:`~ctpipe.drift.performance`: a seeded bootstrap interval of a metric on labelled rows
  (the performance check's evidence).

Test policy (``DriftConfig``), as Evidently's default:

* ``auto`` with at most ``small_reference_rows`` non-missing reference values: numeric columns get
  the two-sample Kolmogorov-Smirnov test, categorical columns the chi-square goodness-of-fit test
  of the current counts against the reference shares; drifted when ``p < p_value``.
* ``auto`` above that: numeric columns get the Wasserstein distance normalised by the reference
  standard deviation, categorical columns the Jensen-Shannon distance (natural log, scipy's
  default, as Evidently); drifted when ``statistic >= distance_threshold``.
* ``psi``: population stability index, drifted when ``statistic >= psi_threshold``.
* Any registered test by name, for every column of a kind (``numeric_test``,
  ``categorical_test``) or for one column (``per_feature``).

Semantics worth knowing:

* Missing values (NaN/None/NA, and +-inf for numeric columns, as Evidently drops them) are left
  out of every statistic and reported in ``nan_reference``/``nan_current``. Null-rate changes are
  the validation step's job (``validation.max_null_fraction``).
* A column with no values left on either side is not tested: ``statistic`` is NaN (``None`` in
  :meth:`DriftReport.to_records`), ``drifted`` is False, ``note`` says why, and the feature is
  left out of the drift share's denominator.
* Categories are the union of both sides; categories unseen in the reference are drift evidence
  (chi-square: zero expected count, so an infinite statistic and p = 0, as scipy/Evidently give).
  Numeric columns given chi-square are compared per distinct value; given PSI or Jensen-Shannon,
  per reference-decile bin.
* The drift share is the weighted share of drifted among tested features with a positive
  weight (``exclude``, ``weights``). Given the earlier batches (``history``), a feature with one
  distinct value in the batch is judged over ``constant_window`` batches, and with
  ``seasonal_period`` a feature counts only if it also drifted against one cycle earlier
  (docs/retraining-policy.md, "What the drift share counts").
* A constant reference column has no scale for the normalised Wasserstein distance: the raw
  distance is reported, with threshold 0, and the column drifts iff the current values differ
  from the constant at all (Evidently would divide by 0.001 instead, which depends on units).
"""

from ctpipe.drift.columns import NULL_KEY
from ctpipe.drift.performance import MetricInterval, bootstrap_metric
from ctpipe.drift.profile import ReferenceProfile, build_profile
from ctpipe.drift.report import DriftReport, FeatureDrift, detect_drift, performance_drift
from ctpipe.drift.stats import PSI_BINS, ks_2samp_sorted, ks_statistic, wasserstein_sorted
from ctpipe.drift.stattests import (
    STATTESTS,
    Outcome,
    StatTest,
    get_stattest,
    register_stattest,
    stattest_names,
)

__all__ = [
    "NULL_KEY",
    "PSI_BINS",
    "STATTESTS",
    "DriftReport",
    "FeatureDrift",
    "MetricInterval",
    "Outcome",
    "ReferenceProfile",
    "StatTest",
    "bootstrap_metric",
    "build_profile",
    "detect_drift",
    "get_stattest",
    "ks_2samp_sorted",
    "ks_statistic",
    "performance_drift",
    "register_stattest",
    "stattest_names",
    "wasserstein_sorted",
]
