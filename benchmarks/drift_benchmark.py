"""Acceptance benchmark of the drift engine: exact, fast, explained.

One run, on seeded synthetic data (default 2,000,000 reference vs 2,000,000 current rows, 16
numeric and 4 categorical columns, 5 numeric and 1 categorical column shifted around the 0.1
threshold, a few missing values and infinities), measures and prints:

1. ctpipe's daily check, ``detect_drift(profile, current, DriftConfig())`` with the profile built
   beforehand (``build_profile`` is timed too, once, but belongs to training time);
2. the floor: ``np.sort`` of the same 16 current numeric columns;
3. a loop of ``scipy.stats.ks_2samp`` over the 16 numeric column pairs (raw, unsorted);
4. Evidently's ``DataDriftPreset`` (evidently 0.7.x, which needs pandas < 3) in a separate venv
   that this script creates on first use (``.ctpipe/bench/evidently-venv``, then reused) and runs
   ``_evidently_runner.py`` in, on the same frames written to Parquet;
5. the peak memory of ctpipe's check relative to the current frame's size;
6. per-column verdicts, ctpipe's against Evidently's;

and PASS/FAIL against the targets. Exit code 0 unless ``--strict`` and a target fails.

    .venv/bin/python benchmarks/drift_benchmark.py [--rows N] [--skip-evidently] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # not POSIX
    resource = None  # type: ignore[assignment]

import numpy as np
import pandas as pd
import scipy
from scipy import stats

from ctpipe.config import DriftConfig
from ctpipe.drift import DriftReport, ReferenceProfile, build_profile, detect_drift

REPO = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().with_name("_evidently_runner.py")
DEFAULT_EVIDENTLY_VENV = REPO / ".ctpipe" / "bench" / "evidently-venv"
EVIDENTLY_REQUIREMENTS = ["evidently>=0.7,<0.8", "pandas<3", "pyarrow"]
# Evidently 0.7 reads DO_NOT_TRACK (any value), its legacy code EVIDENTLY_DISABLE_TELEMETRY=1,
# and the iterative-telemetry library it uses ITERATIVE_DO_NOT_TRACK.
TELEMETRY_OFF = {"DO_NOT_TRACK": "true", "EVIDENTLY_DISABLE_TELEMETRY": "1",
                 "ITERATIVE_DO_NOT_TRACK": "1"}

TARGETS = {  # name: (description, limit)
    "floor": ("ctpipe check <= 2x the np.sort floor", 2.0),
    "scipy": ("ctpipe check >= 4x faster than the scipy ks_2samp loop", 4.0),
    "evidently": ("ctpipe check >= 20x faster than Evidently DataDriftPreset", 20.0),
    "verdicts": ("same verdict as Evidently on every column", 0),
    "memory": ("ctpipe check peak extra memory <= 2x the input size", 2.0),
}
EVIDENTLY_METHOD = {"wasserstein": "Wasserstein distance (normed)",
                    "jensenshannon": "Jensen-Shannon distance", "ks": "K-S p_value",
                    "chisquare": "chi-square p_value", "psi": "PSI"}


# --------------------------------------------------------------------------- synthetic data

Gen = Callable[[np.random.Generator, int, bool], np.ndarray]


def _normal(mean: float, sd: float, mean_cur: float | None = None,
            sd_cur: float | None = None) -> Gen:
    def gen(rng: np.random.Generator, n: int, cur: bool) -> np.ndarray:
        m = mean_cur if cur and mean_cur is not None else mean
        s = sd_cur if cur and sd_cur is not None else sd
        return rng.normal(m, s, n)
    return gen


def _bimodal(rng: np.random.Generator, n: int, cur: bool) -> np.ndarray:
    left = rng.random(n) < 0.3
    return np.where(left, rng.normal(-2.0, 0.5, n), rng.normal(3.0, 1.0, n))


# (name, design, generator, share of NaN, number of +-inf). Expected normalised Wasserstein
# distance of the shifted ones: mean shift / sd, or |sd ratio - 1| * sqrt(2 / pi) for a normal.
NUMERIC: list[tuple[str, str, Gen, float, int]] = [
    ("num_00", "normal, unchanged", _normal(0, 1), 0.0, 0),
    ("num_01", "normal(50,10), mean +0.05 sd", _normal(50, 10, mean_cur=50.5), 0.0, 0),
    ("num_02", "normal, mean +0.09 sd, NaN", _normal(0, 1, mean_cur=0.09), 0.001, 0),
    ("num_03", "normal, mean +0.11 sd", _normal(0, 1, mean_cur=0.11), 0.0, 0),
    ("num_04", "normal, sd x1.15 (W~0.12)", _normal(0, 1, sd_cur=1.15), 0.0, 0),
    ("num_05", "lognormal, x1.25 (W~0.26), NaN",
     lambda r, n, c: r.lognormal(3.0, 0.8, n) * (1.25 if c else 1.0), 0.0005, 0),
    ("num_06", "uniform(0,100), unchanged", lambda r, n, c: r.uniform(0, 100, n), 0.0, 0),
    ("num_07", "exponential, unchanged", lambda r, n, c: r.exponential(2.0, n), 0.0, 0),
    ("num_08", "poisson(20) counts, NaN, unchanged",
     lambda r, n, c: r.poisson(20, n).astype(np.float64), 0.0001, 0),
    ("num_09", "student t(3), unchanged", lambda r, n, c: r.standard_t(3, n), 0.0, 0),
    ("num_10", "bimodal mixture, unchanged", _bimodal, 0.0, 0),
    ("num_11", "amounts rounded to cents, unchanged",
     lambda r, n, c: np.round(r.lognormal(4.0, 1.0, n), 2), 0.0, 0),
    ("num_12", "integers 0..999, unchanged",
     lambda r, n, c: r.integers(0, 1000, n).astype(np.float64), 0.0, 0),
    ("num_13", "normal(-5,2), 1% NaN, unchanged", _normal(-5, 2), 0.01, 0),
    ("num_14", "beta(2,5), unchanged", lambda r, n, c: r.beta(2.0, 5.0, n), 0.0, 0),
    ("num_15", "gamma(2,3), +-inf, unchanged", lambda r, n, c: r.gamma(2.0, 3.0, n), 0.0, 5),
]

_P_REGION = np.array([12, 11, 10, 10, 9, 9, 8, 8, 7, 6, 5, 5], dtype=np.float64)
_P_REGION_CUR = _P_REGION * np.array([0.6] * 3 + [1.0] * 5 + [1.9] * 4)
_P_PRODUCT = 1.0 / np.arange(1, 61) ** 0.8  # Zipf-like

# (name, design, levels, reference weights, current weights, share missing)
CATEGORICAL: list[tuple[str, str, list[str], np.ndarray, np.ndarray, float]] = [
    ("cat_00", "5 levels, unchanged", list("ABCDE"),
     np.array([30, 25, 20, 15, 10.0]), np.array([30, 25, 20, 15, 10.0]), 0.0),
    ("cat_01", "12 regions, frequencies changed (JS~0.15)",
     [f"region_{i:02d}" for i in range(12)], _P_REGION, _P_REGION_CUR, 0.0),
    ("cat_02", "60 product codes (Zipf), unchanged",
     [f"P{i:04d}" for i in range(60)], _P_PRODUCT, _P_PRODUCT, 0.0),
    ("cat_03", "3 channels, 0.5% missing, unchanged", ["web", "store", "app"],
     np.array([0.5, 0.3, 0.2]), np.array([0.5, 0.3, 0.2]), 0.005),
]


def make_frames(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Reference and current frames (float64 and pandas' default string columns)."""
    frames: list[dict[str, Any]] = [{}, {}]
    design: dict[str, str] = {}
    for i, (name, what, gen, nan_share, n_inf) in enumerate(NUMERIC):
        design[name] = what
        for side in (0, 1):
            rng = np.random.default_rng([seed, i, side])
            values = gen(rng, rows, side == 1)
            if nan_share:  # a random number on each side, so the sizes differ as in real data
                values[rng.random(rows) < nan_share] = np.nan
            if n_inf:
                where = rng.integers(0, rows, n_inf)
                values[where] = np.where(np.arange(n_inf) % 2 == 0, np.inf, -np.inf)
            frames[side][name] = values
    for i, (name, what, levels, p_ref, p_cur, missing) in enumerate(CATEGORICAL, 100):
        design[name] = what
        for side, weights in ((0, p_ref), (1, p_cur)):
            rng = np.random.default_rng([seed, i, side])
            codes = rng.choice(len(levels), size=rows, p=weights / weights.sum())
            if missing:
                codes[rng.random(rows) < missing] = -1
            values = pd.Categorical.from_codes(codes, categories=levels)
            frames[side][name] = pd.Series(values).astype("str")  # as read_parquet gives
    return pd.DataFrame(frames[0]), pd.DataFrame(frames[1]), design


# --------------------------------------------------------------------------- measurement


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def _sampled(fn: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """Wall and CPU seconds and minor page faults of one call (faults: fresh memory touched)."""
    gc.collect()
    faults, cpu, start = _minor_faults(), time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - start
    return {"wall": wall, "cpu": time.process_time() - cpu,
            "page_faults": _minor_faults() - faults}, out


def _sort_floor(columns: list[np.ndarray]) -> None:
    for values in columns:
        np.sort(values)


def _scipy_loop(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    return [float(stats.ks_2samp(ref, cur).pvalue) for ref, cur in pairs]


def _trim_heap() -> None:
    """Return freed heap memory to the OS, so an RSS baseline is not inflated by old garbage."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"no {field} in /proc/self/status")
    return int(match.group(1))


@contextlib.contextmanager
def _rss_peak() -> Iterator[dict[str, Any]]:
    """Peak RSS growth over the block: the kernel's high-water mark (VmHWM, reset through
    /proc/self/clear_refs), or a 1 ms sampling thread where that reset is not allowed."""
    out: dict[str, Any] = {"bytes": None, "method": None}
    _trim_heap()
    try:
        base = _status_kib("VmRSS")
    except OSError:
        yield out  # not Linux: no RSS figure
        return
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        yield out
        out["bytes"] = (_status_kib("VmHWM") - base) * 1024
        out["method"] = "kernel high-water mark (VmHWM)"
    except OSError:
        peak = [base]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _status_kib("VmRSS"))
                time.sleep(0.001)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield out
        finally:
            stop.set()
            thread.join()
        out["bytes"] = (peak[0] - base) * 1024
        out["method"] = "RSS sampled every 1 ms"


def measure_memory(profile: ReferenceProfile, current: pd.DataFrame,
                   config: DriftConfig) -> dict[str, Any]:
    _trim_heap()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    detect_drift(profile, current, config)
    traced = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    with _rss_peak() as rss:
        detect_drift(profile, current, config)
    return {"tracemalloc_peak_bytes": traced, "rss_peak_bytes": rss["bytes"],
            "rss_method": rss["method"]}


# --------------------------------------------------------------------------- Evidently


def _evidently_versions(python: Path) -> str | None:
    """'evidently X, pandas Y' when the venv has an Evidently 0.7 with pandas < 3, else None."""
    code = ("import evidently, pandas, pyarrow\n"
            "e = tuple(int(x) for x in evidently.__version__.split('.')[:2])\n"
            "p = int(pandas.__version__.split('.')[0])\n"
            "assert e == (0, 7) and p < 3, (evidently.__version__, pandas.__version__)\n"
            "print(f'evidently {evidently.__version__}, pandas {pandas.__version__}')")
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                            env=_child_env(), check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TELEMETRY_OFF)
    env.pop("PYTHONPATH", None)  # nothing of ctpipe's venv leaks into the Evidently venv
    env.pop("VIRTUAL_ENV", None)
    return env


def ensure_evidently_venv(venv: Path) -> tuple[Path, str]:
    """The venv's python and its versions; creates the venv and installs Evidently if needed."""
    python = venv / "bin" / "python"
    if python.exists():
        versions = _evidently_versions(python)
        if versions:
            return python, versions
    print(f"  setting up the Evidently venv in {venv} (first run; needs PyPI) ...", flush=True)
    if not python.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True, text=True)
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", *EVIDENTLY_REQUIREMENTS],
                            capture_output=True, text=True, env=_child_env(), check=False)
    versions = _evidently_versions(python)
    if result.returncode != 0 or not versions:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"could not install {' '.join(EVIDENTLY_REQUIREMENTS)} into "
                           f"{venv} (pip exit {result.returncode}):\n{tail}")
    return python, versions


def run_evidently(python: Path, reference: pd.DataFrame, current: pd.DataFrame,
                  numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ctpipe-drift-bench-") as tmp:
        folder = Path(tmp)
        ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
        spec_path, out_path = folder / "spec.json", folder / "evidently.json"
        reference.to_parquet(ref_path, index=False)
        current.to_parquet(cur_path, index=False)
        spec_path.write_text(json.dumps({"numeric": numeric, "categorical": categorical}),
                             encoding="utf-8")
        start = time.perf_counter()
        result = subprocess.run([str(python), str(RUNNER), str(ref_path), str(cur_path),
                                 str(spec_path), str(out_path)],
                                capture_output=True, text=True, env=_child_env(), check=False)
        wall = time.perf_counter() - start
        if result.returncode != 0 or not out_path.exists():
            tail = "\n".join(result.stderr.strip().splitlines()[-20:])
            raise RuntimeError(f"Evidently runner failed (exit {result.returncode}):\n{tail}")
        out = json.loads(out_path.read_text(encoding="utf-8"))
    out["seconds_subprocess_wall"] = wall
    return out


# --------------------------------------------------------------------------- report


def _mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.1f} MiB"


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a" if x is None else str(x)
    return f"{x:.{digits}g}"


def _ctpipe_score(f: Any) -> float:
    """What Evidently reports as its score: the p-value for p-value tests, else the statistic."""
    return f.p_value if f.test in ("ks", "chisquare") else f.statistic


def verdict_rows(report: DriftReport, evidently: dict[str, Any] | None,
                 design: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for f in report.features:
        row: dict[str, Any] = {"column": f.feature, "kind": f.kind, "design": design[f.feature],
                               "ctpipe_test": f.test, "ctpipe_statistic": f.statistic,
                               "ctpipe_p_value": f.p_value, "ctpipe_drifted": f.drifted}
        if evidently is not None:
            ev = evidently["columns"].get(f.feature, {})
            score = ev.get("score")
            ours = _ctpipe_score(f)
            row.update(evidently_method=ev.get("method"), evidently_score=score,
                       evidently_drifted=ev.get("drifted"),
                       evidently_type=evidently["column_types"].get(f.feature),
                       same_method=ev.get("method") == EVIDENTLY_METHOD.get(f.test),
                       rel_diff=(abs(ours - score) / max(abs(score), 1e-300)
                                 if score is not None and math.isfinite(ours) else None))
            row["agree"] = row["evidently_drifted"] == f.drifted
        rows.append(row)
    return rows


def print_verdicts(rows: list[dict[str, Any]], with_evidently: bool) -> int:
    head = f"  {'column':<8} {'kind':<4} {'design':<41} {'ctpipe test':<13} {'ctpipe':>10}"
    if with_evidently:
        head += f" {'Evidently method':<30} {'Evidently':>10} {'rel diff':>8}"
    head += " ctpipe"
    if with_evidently:
        head += "   Evidently agree"
    print(head)
    disagreements = 0
    for r in rows:
        stat = (f"p={_num(r['ctpipe_p_value'], 3)}" if r["ctpipe_test"] in ("ks", "chisquare")
                else _num(r["ctpipe_statistic"], 5))
        line = (f"  {r['column']:<8} {r['kind'][:3]:<4} {r['design']:<41} "
                f"{r['ctpipe_test']:<13} {stat:>10}")
        if with_evidently:
            rel = "n/a" if r["rel_diff"] is None else f"{r['rel_diff']:.0e}"
            line += (f" {str(r['evidently_method']):<30} {_num(r['evidently_score'], 5):>10}"
                     f" {rel:>8}")
        line += f" {'DRIFT' if r['ctpipe_drifted'] else 'ok':<6}"
        if with_evidently:
            ev = {True: "DRIFT", False: "ok", None: "?"}[r["evidently_drifted"]]
            agree = "yes" if r["agree"] else "NO"
            disagreements += not r["agree"]
            line += f"   {ev:<9} {agree}"
        print(line)
    return disagreements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000,
                        help="rows in each of reference and current (default 2,000,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-evidently", action="store_true",
                        help="do not set up or run Evidently (machines without PyPI access)")
    parser.add_argument("--evidently-venv", type=Path, default=DEFAULT_EVIDENTLY_VENV,
                        help=f"venv for Evidently (default {DEFAULT_EVIDENTLY_VENV})")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of the ctpipe check and of np.sort, best taken (default 3)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--strict", action="store_true",
                        help="exit non-zero when a target fails")
    args = parser.parse_args(argv)
    if args.rows < 2 or args.repeats < 1:
        parser.error("--rows must be at least 2 and --repeats at least 1")

    config = DriftConfig()
    numeric = [c[0] for c in NUMERIC]
    categorical = [c[0] for c in CATEGORICAL]
    print(f"ctpipe drift benchmark: {args.rows:,} reference vs {args.rows:,} current rows, "
          f"{len(numeric)} numeric + {len(categorical)} categorical columns (seed {args.seed})")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    print(f"  python {platform.python_version()}, numpy {np.__version__}, scipy "
          f"{scipy.__version__}, pandas {pd.__version__}; {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} at start (other jobs skew absolute times; ratios are measured side "
          f"by side)")

    t_data, (reference, current, design) = _timed(lambda: make_frames(args.rows, args.seed))
    input_bytes = int(current.memory_usage(deep=True).sum())
    print(f"  data generated in {t_data:.1f} s; current frame {_mib(input_bytes)} "
          f"(memory_usage(deep=True), {len(current.columns)} feature columns)")

    # 1. training time: the profile, once.
    t_profile, profile = _timed(lambda: build_profile(reference, numeric, categorical))

    # 2. + 1. the floor and the daily check, interleaved so that other load hits both alike;
    # the per-kind runs (numeric-only / categorical-only profiles) say where the time goes.
    cur_numeric = [current[c].to_numpy() for c in numeric]
    numeric_only = ReferenceProfile(n_rows=profile.n_rows, numeric=profile.numeric,
                                    numeric_nan=profile.numeric_nan, categorical={})
    categorical_only = ReferenceProfile(n_rows=profile.n_rows, numeric={}, numeric_nan={},
                                        categorical=profile.categorical)
    samples: dict[str, list[dict[str, float]]] = {
        "floor": [], "ctpipe": [], "ctpipe_numeric": [], "ctpipe_categorical": []}
    report: DriftReport | None = None
    for _ in range(args.repeats):
        samples["floor"].append(_sampled(lambda: _sort_floor(cur_numeric))[0])
        sample, report = _sampled(lambda: detect_drift(profile, current, config))
        samples["ctpipe"].append(sample)
        samples["ctpipe_numeric"].append(
            _sampled(lambda: detect_drift(numeric_only, current, config))[0])
        samples["ctpipe_categorical"].append(
            _sampled(lambda: detect_drift(categorical_only, current, config))[0])
    assert report is not None
    fastest = {k: min(v, key=lambda x: x["wall"]) for k, v in samples.items()}
    best = {k: v["wall"] for k, v in fastest.items()}
    unequal = [f.feature for f in report.features
               if f.kind == "numeric" and f.n_reference != f.n_current]

    # 3. scipy's ks_2samp on the raw (unsorted) columns; missing values dropped beforehand,
    # outside the timing (ks_2samp would return NaN for them).
    pairs = []
    for name in numeric:
        ref_col, cur_col = reference[name].to_numpy(), current[name].to_numpy()
        pairs.append((ref_col[np.isfinite(ref_col)], cur_col[np.isfinite(cur_col)]))
    t_scipy, _ = _timed(lambda: _scipy_loop(pairs))
    pairs.clear()

    # 5. memory of the daily check.
    memory = measure_memory(profile, current, config)
    peaks = [b for b in (memory["tracemalloc_peak_bytes"], memory["rss_peak_bytes"])
             if b is not None]
    peak_bytes = max(peaks)

    # 4. Evidently, in its own venv.
    evidently: dict[str, Any] | None = None
    evidently_error = None
    if not args.skip_evidently:
        print("  running Evidently DataDriftPreset in a separate venv ...", flush=True)
        try:
            python, versions = ensure_evidently_venv(args.evidently_venv)
            evidently = run_evidently(python, reference, current, numeric, categorical)
            evidently["versions"] = versions
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            evidently_error = str(exc)
            print(f"  Evidently FAILED: {exc}")

    # ------------------------------------------------------------------ print
    def reps(key: str) -> str:
        runs = " ".join(f"{x['wall']:.4f}" for x in samples[key])
        return (f"runs: {runs}; best run: cpu {fastest[key]['cpu']:.4f} s, "
                f"{fastest[key]['page_faults']:,} page faults")

    def timing(label: str, seconds: float, extra: str = "") -> None:
        print(f"  {label:<64}{seconds:9.4f} s   {extra}".rstrip())

    print()
    print(f"Timings (wall clock; best of {args.repeats} interleaved runs for the ctpipe check "
          f"and np.sort, a single run for the scipy loop and Evidently)")
    timing("build_profile (training time, once; not in the daily check)", t_profile)
    timing("ctpipe daily check: detect_drift(profile, current, DriftConfig())",
           best["ctpipe"], reps("ctpipe"))
    timing("  numeric columns only (informational)", best["ctpipe_numeric"],
           reps("ctpipe_numeric"))
    timing("  categorical columns only (informational)", best["ctpipe_categorical"],
           reps("ctpipe_categorical"))
    timing(f"floor: np.sort of the {len(numeric)} current numeric columns", best["floor"],
           reps("floor"))
    timing(f"scipy.stats.ks_2samp loop over the {len(numeric)} numeric column pairs", t_scipy)
    if evidently is not None:
        timing(f"Evidently DataDriftPreset, Report.run ({evidently['versions']})",
               evidently["seconds_run"])
        timing("  + Dataset.from_pandas of both frames (not counted)",
               evidently["seconds_dataset"],
               f"(subprocess wall incl. imports and Parquet reads "
               f"{evidently['seconds_subprocess_wall']:.1f} s, max RSS "
               f"{_mib(evidently['max_rss_bytes'])})")
    elif args.skip_evidently:
        print("  Evidently: skipped (--skip-evidently)")
    print(f"  numeric columns with n_reference != n_current (the Wasserstein distance's general "
          f"path; equal sizes take a one-pass shortcut): {len(unequal)} of {len(numeric)}"
          f"{' (' + ', '.join(unequal) + ')' if unequal else ''}")

    print()
    print("Memory of the ctpipe daily check")
    memory_lines = [
        ("input: current frame, memory_usage(deep=True)", _mib(input_bytes), ""),
        ("peak extra, tracemalloc (numpy + Python heap)",
         _mib(memory["tracemalloc_peak_bytes"]), ""),
        ("peak extra, RSS", _mib(memory["rss_peak_bytes"]),
         f"({memory['rss_method'] or 'unavailable'})"),
        ("peak extra (the larger of the two) / input", f"{peak_bytes / input_bytes:.3f}x", ""),
    ]
    for label, value, extra in memory_lines:
        print(f"  {label:<64}{value:>11}   {extra}".rstrip())

    print()
    print(f"Verdicts ({report.n_tested} columns; ctpipe drift share {report.drift_share:.0%}, "
          f"dataset drift: {report.dataset_drift})")
    rows = verdict_rows(report, evidently, design)
    disagreements = print_verdicts(rows, evidently is not None)
    if evidently is not None:
        declared = {**{c: "num" for c in numeric}, **{c: "cat" for c in categorical}}
        mistyped = [c for c, t in evidently["column_types"].items() if t != declared[c]]
        methods = [r["column"] for r in rows if not r["same_method"]]
        print(f"  disagreements: {disagreements}; Evidently typed every column as declared: "
              f"{'yes' if not mistyped else 'NO ' + str(mistyped)}; same test chosen on every "
              f"column: {'yes' if not methods else 'NO ' + str(methods)}")
        print("  rel diff = |ctpipe - Evidently| / |Evidently| on the score Evidently reports "
              "(the p-value for KS / chi-square, else the distance)")

    # ------------------------------------------------------------------ targets
    ratios: dict[str, float | None] = {
        "floor": best["ctpipe"] / best["floor"],
        "scipy": t_scipy / best["ctpipe"],
        "evidently": None if evidently is None else evidently["seconds_run"] / best["ctpipe"],
        "verdicts": None if evidently is None else float(disagreements),
        "memory": peak_bytes / input_bytes,
    }
    results: dict[str, str] = {}
    print()
    print("Targets")
    for key, (text, limit) in TARGETS.items():
        value = ratios[key]
        if value is None:
            status = "ERROR" if evidently_error else "SKIP"
            shown = "not measured"
        elif key in ("floor", "memory"):
            status, shown = ("PASS" if value <= limit else "FAIL"), f"{value:.2f}x"
            if key == "floor":
                shown += f" (numeric columns only: {best['ctpipe_numeric'] / best['floor']:.2f}x)"
        elif key == "verdicts":
            status = "PASS" if value <= limit else "FAIL"
            shown = f"{int(value)} disagreement(s) of {len(rows)}"
        else:
            status, shown = ("PASS" if value >= limit else "FAIL"), f"{value:.1f}x faster"
        results[key] = status
        print(f"  [{status:<5}] {text:<62} {shown}")
    failed = [k for k, s in results.items() if s in ("FAIL", "ERROR")]
    print(f"  {len(failed)} target(s) failed" + (f": {', '.join(failed)}" if failed else ""))

    if args.json:
        figures = {
            "rows": args.rows, "seed": args.seed, "input_bytes": input_bytes,
            "load_average_at_start": list(load),
            "versions": {"python": platform.python_version(), "numpy": np.__version__,
                         "scipy": scipy.__version__, "pandas": pd.__version__},
            "seconds": {"build_profile": t_profile, "scipy_ks_loop": t_scipy,
                        **{f"{k}_best": v for k, v in best.items()}},
            "runs": samples, "unequal_size_numeric_columns": unequal,
            "memory": {**memory, "peak_extra_bytes": peak_bytes},
            "evidently": evidently, "evidently_error": evidently_error,
            "verdicts": rows, "disagreements": disagreements if evidently else None,
            "ratios": ratios, "targets": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_finite(figures), indent=2, default=_json_default)
                             + "\n",
                             encoding="utf-8")
        print(f"  figures written to {args.json}")
    return 1 if args.strict and failed else 0


def _finite(value: Any) -> Any:
    """Non-finite floats become None, so the file is strict JSON."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
