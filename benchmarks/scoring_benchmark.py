"""Benchmark of batch scoring end to end against bare ``Booster.predict``.

One run, on one seeded synthetic fraud batch (default 2,000,000 rows, the reference bank's daily
volume) landed as Parquet the way ``ctpipe simulate`` lands it, measures and prints:

1. the floor: ``Booster.predict`` of the champion's booster on the prepared feature matrix
   (``model.spec.transform(batch)`` computed once beforehand, not timed);
2. scoring end to end, on SQLite (a file in a temporary folder) and on PostgreSQL (a fresh
   database on 127.0.0.1:5432, dropped at the end), in the order ``ctpipe score`` runs it:
   read the batch (``read_batch_file``), validate it (``validate_frame`` with ``batch_date``),
   features + predict (``ctpipe.scoring.score_frame``), the label-free estimate
   (``estimate_binary``), log every prediction (``ctpipe.db.log_predictions`` with a
   ``ScoringRun``, the rows frame built as ``steps.score`` builds it), write the output
   Parquet (``steps.score.write_output``);
3. per backend: total seconds, rows/s, the ratio of end-to-end throughput to bare predict's
   and PASS/FAIL against the target (>= 0.5), and the per-stage breakdown of the best run;
4. the process's peak RSS.

Each figure is the best of ``--repeat`` runs; the floor is measured before every end-to-end run
(interleaved), so both see the same machine. Every run logs a new batch key, as a day's scoring
does (the rows accumulate in the table, as they do in production). The champion is a real
``ScoringModel`` (``train_model`` on five simulated days, calibrated on a sixth) wrapped in a
``LoadedVersion`` whose tags carry the booster's sha256; no registry or Prefect is involved.

    .venv/bin/python benchmarks/scoring_benchmark.py [--rows N] [--repeat K] [--json PATH]
                                                     [--strict] [--skip-postgres]

Exit code 0 unless ``--strict`` and a target fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctpipe import landing
from ctpipe.batch_reader import read_batch_file
from ctpipe.config import UseCaseConfig, load_config
from ctpipe.db import Database, ScoringRun, dispose_databases, log_predictions, open_database
from ctpipe.drift import build_profile
from ctpipe.estimate import estimate_binary, fit_calibration
from ctpipe.lineage import Lineage, LoadedVersion, ModelVersionInfo
from ctpipe.scoring import score_frame
from ctpipe.simulate import generate_day
from ctpipe.steps.drift import outputs_profile
from ctpipe.steps.score import write_output
from ctpipe.training import train_model
from ctpipe.validation import ValidationResult, validate_frame

TARGET_RATIO = 0.5
DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)  # fixed: the batch is in the past, reproducibly
TRAIN_DAYS = 5  # x 20,000 rows: enough for LightGBM's two threads (train_model's 100k cut-off)
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"
STAGES = ("read", "validate", "features+predict", "estimate", "log", "write output")


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _champion(config: UseCaseConfig) -> LoadedVersion:
    """A real ScoringModel, calibrated as the gate calibrates it, in a LoadedVersion."""
    days = [DAY - dt.timedelta(days=TRAIN_DAYS + 1 - i) for i in range(TRAIN_DAYS + 1)]
    frames = [generate_day("fraud", i, d).assign(**{landing.BATCH_KEY: d.isoformat()})
              for i, d in enumerate(days)]
    train, holdout = pd.concat(frames[:-1], ignore_index=True), frames[-1]
    model = train_model(config, train)
    target = config.data.target
    model.calibration = fit_calibration(model.predict(holdout), holdout[target].to_numpy())
    sha = hashlib.sha256(model.booster.model_to_string().encode()).hexdigest()
    info = ModelVersionInfo(
        name=config.model_name, version=1, aliases=["champion"], run_id=None,
        tags=Lineage(use_case=config.name, artifact_sha256=sha,
                     metric_name=config.evaluation.metric).to_tags())
    profile = build_profile(train, config.features.numeric, config.features.categorical)
    outputs = outputs_profile(config.data.task, model.predict(train), train[target])
    return LoadedVersion(info=info, model=model, profile=profile, outputs=outputs)


def score_end_to_end(config: UseCaseConfig, db: Database, champion: LoadedVersion,
                     batch_file: Path, output: Path, batch: str) -> dict[str, float]:
    """One scoring of the landed batch, stage by stage, as steps.score runs it; seconds."""
    times: dict[str, float] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        cpu = time.process_time()
        times[name], value = _timed(fn)
        times[f"{name} cpu"] = time.process_time() - cpu
        return value

    frame = stage("read", lambda: read_batch_file(batch_file, config))
    result = stage("validate", lambda: validate(frame, config))
    if not result.passed:
        raise SystemExit(f"the batch failed validation: {result.message(str(batch_file))}")
    scored = stage("features+predict",
                   lambda: score_frame(config, config.model_name, DAY, frame, champion))
    scores = scored["score"].to_numpy()
    estimate = stage("estimate", lambda: estimate_binary(
        scores, champion.model.calibration, config.evaluation.alert_budget,
        config.evaluation.metric))

    def log() -> int:
        # The rows frame and the run exactly as steps.score._log builds them.
        id_col = config.data.id_column
        rows = pd.DataFrame({
            "row_index": np.arange(len(frame), dtype="int64"),
            "row_id": frame[id_col].astype("str").to_numpy() if id_col else None,
            "score": scores,
        })
        run = ScoringRun(
            model_name=config.model_name, use_case=config.name, batch=batch, role="champion",
            model_version=champion.info.version,
            artifact_sha256=champion.info.lineage.artifact_sha256 or "", rows=len(frame),
            scored_at=dt.datetime.now(dt.UTC), output=str(output),
            estimated_metric=estimate.metric, estimated_precision=estimate.precision,
            estimated_recall=estimate.recall)
        return log_predictions(db, run, rows)

    logged = stage("log", log)
    if logged != len(frame):
        raise SystemExit(f"logged {logged} predictions for {len(frame)} rows")
    stage("write output", lambda: write_output(scored, output))
    times["total"] = sum(times[name] for name in STAGES)
    times["total cpu"] = sum(times[f"{name} cpu"] for name in STAGES)
    return times


def validate(frame: pd.DataFrame, config: UseCaseConfig) -> ValidationResult:
    """As ``ctpipe score`` validates a landed batch (``now`` fixed, which costs nothing)."""
    return validate_frame(frame, config, batch_date=DAY, now=NOW)


def _prepare(config: UseCaseConfig, champion: LoadedVersion,
             batch_file: Path) -> tuple[pd.DataFrame | None, float]:
    """Not timed: the prepared matrix the floor predicts on, and the first (cold) validation."""
    frame = read_batch_file(batch_file, config)
    print(f"batch in memory: {frame.memory_usage(deep=True).sum() / 2**20:,.0f} MiB")
    matrix = champion.model.spec.transform(frame)
    first_s, first = _timed(lambda: validate(frame, config))
    if not first.passed:
        print("the batch failed validation:", first.message(str(batch_file)), file=sys.stderr)
        return None, first_s
    print(f"first validate_frame (imports GX and builds its objects, paid once per process): "
          f"{first_s:.2f} s; not counted below")
    return matrix, first_s


def _postgres_database() -> tuple[str | None, str]:
    """A fresh database's name and URL, or (None, the reason it cannot be had)."""
    try:
        import psycopg

        name = f"ctpipe_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001  (any failure means: no PostgreSQL to measure)
        return None, " ".join(str(exc).split()) or type(exc).__name__
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop_postgres(name: str) -> None:
    import psycopg

    dispose_databases()  # our pooled connections first; FORCE ends any left
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure; best is kept")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--skip-postgres", action="store_true",
                        help="measure SQLite only")
    args = parser.parse_args(argv)

    config = load_config("fraud")
    load_start = os.getloadavg()[0]
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, rows {args.rows:,}, "
          f"repeat {args.repeat}, load average {load_start:.1f}")
    train_s, champion = _timed(lambda: _champion(config))
    booster = champion.model.booster
    print(f"champion: train_model on {TRAIN_DAYS} x 20,000 simulated rows in {train_s:.1f} s, "
          f"{booster.num_trees()} trees, booster num_threads "
          f"{booster.params.get('num_threads', booster.params.get('n_jobs', '?'))}")

    with tempfile.TemporaryDirectory(prefix="ctpipe-bench-score-") as tmp_dir:
        tmp = Path(tmp_dir)
        gen_s, labelled = _timed(lambda: generate_day("fraud", 20, DAY, rows=args.rows))
        landing.write_batch(tmp / "landing", config, DAY, labelled)
        batch_file = landing.batch_path(tmp / "landing", DAY)
        del labelled
        print(f"landed the batch in {gen_s:.1f} s: "
              f"{batch_file.stat().st_size / 2**20:,.0f} MiB Parquet")
        matrix, first_validate_s = _prepare(config, champion, batch_file)
        if matrix is None:
            return 2
        booster.predict(matrix)  # warm-up: the first call sets up LightGBM's thread pool

        backends: dict[str, dict[str, Any]] = {}
        databases: dict[str, Database] = {}
        pg_name = None
        try:
            open_s, databases["sqlite"] = _timed(
                lambda: open_database(f"sqlite:///{tmp / 'ctpipe.db'}"))
            print(f"sqlite: opened and migrated in {open_s:.2f} s")
            if args.skip_postgres:
                print("postgresql: skipped (--skip-postgres)")
            else:
                pg_name, url = _postgres_database()
                if pg_name is None:
                    print(f"postgresql: skipped, 127.0.0.1:5432 is unreachable: {url}")
                else:
                    open_s, databases["postgresql"] = _timed(lambda: open_database(url))
                    print(f"postgresql: created {pg_name}, migrated in {open_s:.2f} s")
            floor_runs: list[float] = []
            floor_cpu: list[float] = []
            for r in range(args.repeat):
                for name, db in databases.items():
                    cpu = time.process_time()
                    floor_runs.append(_timed(lambda: booster.predict(matrix))[0])
                    floor_cpu.append(time.process_time() - cpu)
                    run = score_end_to_end(config, db, champion, batch_file,
                                           tmp / f"scores-{name}.parquet", f"{DAY}-run{r}")
                    backends.setdefault(name, {"runs": []})["runs"].append(run)
                    print(f"  run {r + 1} {name}: {run['total']:.2f} s "
                          f"(floor before it {floor_runs[-1]:.2f} s)", flush=True)
        finally:
            if pg_name is not None:
                _drop_postgres(pg_name)
                print(f"postgresql: dropped {pg_name}")

    floor_s = min(floor_runs)
    floor_rate = args.rows / floor_s
    print(f"\nfloor, bare Booster.predict on the prepared matrix: best {floor_s:.2f} s, "
          f"{floor_rate:,.0f} rows/s, cpu {min(floor_cpu):.2f} s")
    verdicts = []
    for name, figures in backends.items():
        best = min(figures["runs"], key=lambda run: run["total"])
        rate = args.rows / best["total"]
        ratio = rate / floor_rate
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        verdicts.append(verdict)
        figures.update(best=best, rows_per_s=rate, ratio=ratio, verdict=verdict)
        print(f"\n{name}: end to end best {best['total']:.2f} s, {rate:,.0f} rows/s, "
              f"ratio to bare predict {ratio:.3f} (target >= {TARGET_RATIO}): {verdict}")
        print(f"    {'stage':<17} {'wall s':>7}  {'share':>6}  {'cpu s':>6}  best of runs")
        for stage in (*STAGES, "total"):
            share = best[stage] / best["total"]
            print(f"    {stage:<17} {best[stage]:7.2f}  {share:6.1%}  {best[f'{stage} cpu']:6.2f}  "
                  f"{min(run[stage] for run in figures['runs']):7.2f}")
    peak = _peak_rss_mib()
    load_end = os.getloadavg()[0]
    print(f"\npeak RSS: {peak:,.0f} MiB; load average {load_start:.1f} at the start, "
          f"{load_end:.1f} at the end")
    if max(load_start, load_end) > (os.cpu_count() or 1):
        print("note: the machine was busy with other work; absolute times are inflated, the "
              "ratios (taken side by side) less so")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "rows": args.rows, "repeat": args.repeat, "cpus": os.cpu_count(),
            "target": TARGET_RATIO, "floor_s": floor_s, "floor_runs_s": floor_runs,
            "floor_cpu_s": floor_cpu,
            "floor_rows_per_s": floor_rate, "first_validate_s": first_validate_s,
            "backends": backends, "peak_rss_mib": peak,
            "load_average": [load_start, load_end],
        }, indent=2), encoding="utf-8")
    return 1 if args.strict and "FAIL" in verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
