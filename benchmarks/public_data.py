"""Real public data, replayed in full: ctpipe's policy against the static model and cron schedules.

Each configs/public/*.yaml names a file an installed package ships (data.source
``package:...``; `pip install -e '.[public-data]'`), so nothing is downloaded. Every config runs
through `ctpipe backtest` exactly as a user would run it, in a fresh CTPIPE_HOME, and this script
prints one table: per data set and policy, the mean metric, retrains and promotions, and the
replay's wall time.

    .venv/bin/python benchmarks/public_data.py [--configs configs/public/seattle-rain.yaml ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CTPIPE = Path(sys.executable).with_name("ctpipe")


def run_ctpipe(args: list[str], what: str) -> float:
    """``ctpipe ARGS`` in a fresh CTPIPE_HOME, as a user runs it; its wall seconds. A failure
    ends the benchmark with the command's last output."""
    print(f"replaying {what} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="ctpipe-replay-") as home:
        env = {**os.environ, "CTPIPE_HOME": home}
        started = time.perf_counter()
        done = subprocess.run([str(CTPIPE), *args], env=env, cwd=ROOT, capture_output=True,
                              text=True)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{what}: ctpipe {args[0]} failed ({done.returncode}):\n"
                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def replay(config: Path, out: Path) -> tuple[dict, float]:
    """One `ctpipe backtest` of the config's own data.source; its result and wall seconds."""
    seconds = run_ctpipe(["backtest", str(config), "--json", str(out)], config.name)
    (name, result), = json.loads(out.read_text())["use_cases"].items()
    return {"name": name, **result}, seconds


def table(result: dict) -> dict[str, dict]:
    """Per policy: mean metric, retrains, promotions (the backtest's own summary)."""
    if "policies" in result:
        return result["policies"]
    from ctpipe.backtest import summarize

    return summarize(result)["policies"]


def starts(result: dict) -> dict[str, dict]:
    """Per cron schedule, its mean over every start of its period (backtest.cron_starts)."""
    from ctpipe.backtest import cron_starts

    return cron_starts(result)


def print_table(rows: list[tuple[dict, float]]) -> None:
    """Per replay (its result and wall seconds) and policy: mean metric, retrains, promotions,
    and for a cron schedule its median and range over every start of its period."""
    header = (f"{'data set':<14} {'metric':<8} {'batches':>7} {'policy':<8} {'mean':>9} "
              f"{'retrains':>8} {'promos':>6} {'wall s':>7}  median start (range)")
    print(header)
    print("-" * len(header))
    for result, seconds in rows:
        better = "higher" if result["higher_is_better"] else "lower"
        spread = starts(result)
        for i, (policy, figures) in enumerate(table(result).items()):
            mean = "-" if figures["mean"] is None else f"{figures['mean']:.4f}"
            first = i == 0
            s = spread.get(policy)
            started = "" if s is None or s["starts"] < 2 else (
                f"  {s['median']:.4f} ({s['min']:.4f}-{s['max']:.4f}, {s['starts']} starts)")
            print(f"{result['name'] if first else '':<14} "
                  f"{result['metric_name'] if first else '':<8} "
                  f"{len(result['days']) if first else '':>7} {policy:<8} {mean:>9} "
                  f"{figures['retrains']:>8} {figures['promotions']:>6} "
                  f"{f'{seconds:.0f}' if first else '':>7}{started}")
        print(f"{'':<14} ({better} is better)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", type=Path,
                        default=sorted((ROOT / "configs" / "public").glob("*.yaml")))
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "public-data",
                        help="Where each replay's JSON is written.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [replay(config.resolve(), args.out / f"{config.stem}.json")
            for config in args.configs]
    print_table(rows)
    print(f"\nJSON per data set under {args.out}")


if __name__ == "__main__":
    main()
