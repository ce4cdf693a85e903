"""Benchmark of batch validation against the model fit it guards.

One run, on one seeded synthetic fraud batch (default 2,000,000 rows, the reference case's
upper volume), measures and prints:

1. ``validate_frame`` on the clean batch with every rule on: the fraud config plus the
   row-count-vs-recent rule, with ``batch_date`` (period and future rules) and ``recent_rows``;
   the first call (which builds the GX objects) is timed apart, then best of ``--repeat``;
2. the same on a copy with a few failing rules (nulls, out-of-range values, unseen categories,
   duplicate ids, timestamps outside the period, an unexpected column), best of ``--repeat``;
3. ``ctpipe.training.train_model`` on the same rows with the target, i.e. the fraud config's
   LightGBM parameters (200 trees, 2 threads at this size), once;
4. the ratio validation / fit for both, and PASS/FAIL against the target (<= 0.10);
5. ``write_data_docs`` for the broken batch's result (rendered from the stored result, so its
   cost does not depend on the row count): into a new folder, then once more into the same one.

    .venv/bin/python benchmarks/validation_benchmark.py [--rows N] [--repeat K] [--json PATH]

Exit code 0 unless ``--strict`` and the target fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctpipe.config import UseCaseConfig, load_config
from ctpipe.landing import BATCH_KEY
from ctpipe.simulate import generate_day
from ctpipe.training import train_model
from ctpipe.validation import ValidationResult, validate_frame, write_data_docs

TARGET_RATIO = 0.10
DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)  # fixed: the batch is in the past, reproducibly


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    runs = [_timed(fn) for _ in range(repeat)]
    return min(t for t, _ in runs), runs[-1][1]


def _break(batch: pd.DataFrame, config: UseCaseConfig) -> pd.DataFrame:
    """A copy with a handful of broken rules, each touching a few hundred rows."""
    bad = batch.copy()
    n = len(bad)
    rng = np.random.default_rng(1)
    rows = rng.choice(n, size=min(600, n), replace=False)
    a, b, c, d, e = np.array_split(rows, 5)
    bad.loc[a, "amount"] = np.nan
    bad.loc[b, "hour"] = 31
    bad.loc[c, "channel"] = "fax"
    bad.loc[d, config.data.id_column] = bad[config.data.id_column].iloc[0]
    bad.loc[e, config.data.time_column] = pd.Timestamp(DAY) + pd.Timedelta(days=2)
    bad["debug_flag"] = 1
    return bad


def _best_broken(batch: pd.DataFrame, config: UseCaseConfig, kwargs: dict[str, Any],
                 repeat: int) -> tuple[float, ValidationResult]:
    broken = _break(batch, config)  # local, so the copy is freed before the fit
    return _best(lambda: validate_frame(broken, config, **kwargs), repeat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="validation runs; best is kept")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target fails")
    args = parser.parse_args(argv)

    base = load_config("fraud")
    # Every rule on: the row-count-vs-recent rule is off in the reference config.
    config = base.model_copy(update={"validation": base.validation.model_copy(
        update={"row_count_tolerance": 0.5})})
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, rows {args.rows:,}")

    gen_s, labelled = _timed(lambda: generate_day("fraud", 0, DAY, rows=args.rows))
    batch = labelled.drop(columns=[config.data.target])
    print(f"generated the batch in {gen_s:.1f} s "
          f"({batch.memory_usage(deep=True).sum() / 2**20:,.0f} MiB without the target)")
    kwargs: dict[str, Any] = {"batch_date": DAY, "recent_rows": [args.rows] * 7, "now": NOW}

    first_s, first = _timed(lambda: validate_frame(batch, config, **kwargs))
    if not first.passed:
        print("the clean batch failed validation:", first.message("batch"), file=sys.stderr)
        return 2
    clean_s, clean = _best(lambda: validate_frame(batch, config, **kwargs), args.repeat)
    bad_s, bad = _best_broken(batch, config, kwargs, args.repeat)
    _report_validation("clean", clean, clean_s, first_s)
    _report_validation("broken", bad, bad_s)
    if bad.passed or len(bad.failures) < 6:
        print("expected 6 failures on the broken batch:", bad.message("batch"), file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="ctpipe-docs-") as tmp:
        docs_first_s, page = _timed(lambda: write_data_docs(bad, config, Path(tmp), batch_name="a"))
        docs_next_s, _ = _timed(lambda: write_data_docs(bad, config, Path(tmp), batch_name="b"))
        print(f"data docs: {docs_first_s:.2f} s into a new folder, {docs_next_s:.2f} s into the "
              f"same folder ({page.stat().st_size / 1024:,.0f} KiB page)")

    train = labelled.assign(**{BATCH_KEY: DAY.isoformat()})
    print(f"fitting LightGBM on {len(train):,} rows ({base.training.params}) ...", flush=True)
    fit_s, _ = _timed(lambda: train_model(config, train))
    print(f"fit: {fit_s:.1f} s")

    ratio, bad_ratio = clean_s / fit_s, bad_s / fit_s
    verdict = "PASS" if max(ratio, bad_ratio) <= TARGET_RATIO else "FAIL"
    print(f"\nvalidation / fit: clean {ratio:.3f}, broken {bad_ratio:.3f} "
          f"(target <= {TARGET_RATIO:.2f}): {verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "rows": args.rows, "validate_first_s": first_s, "validate_clean_s": clean_s,
            "validate_broken_s": bad_s, "fit_s": fit_s, "ratio_clean": ratio,
            "ratio_broken": bad_ratio, "target": TARGET_RATIO, "verdict": verdict,
            "data_docs_first_s": docs_first_s, "data_docs_next_s": docs_next_s,
            "expectations": clean.evaluated, "broken_failures": [f.line() for f in bad.failures],
        }, indent=2), encoding="utf-8")
    return 1 if args.strict and verdict == "FAIL" else 0


def _report_validation(name: str, result: ValidationResult, best_s: float,
                       first_s: float | None = None) -> None:
    first = (f" (first call, importing GX and building its objects: {first_s:.2f} s)"
             if first_s else "")
    print(f"validate {name}: best {best_s:.2f} s, {result.evaluated} expectations, "
          f"{len(result.failures)} failed{first}")
    for f in result.failures:
        print(f"    {f.line()}")


if __name__ == "__main__":
    sys.exit(main())
