"""The reference scenarios over several seeds: ctpipe's policy against the static model and cron
schedules, per seed and on average.

One seed's replay is one draw: the cold-start fit, the gate's holdout and which cron schedule
comes out best all move with it, and "the best cron" picked after the fact among a few noisy
schedules favours cron. This runs `ctpipe demo USE_CASE --seed N` for each seed (in a fresh
CTPIPE_HOME each, as a user would), prints each replay's table and then the mean of each
policy's mean metric and retrains over the seeds.

    .venv/bin/python benchmarks/reference_seeds.py [--use-case demand] [--seeds 7 8 9]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import mean

from public_data import ROOT, print_table, run_ctpipe, table


def replay(use_case: str, seed: int, out: Path) -> tuple[dict, float]:
    """One `ctpipe demo` of the use case at ``seed``; its result and wall seconds."""
    seconds = run_ctpipe(["demo", use_case, "--seed", str(seed), "--json", str(out),
                          "--png", str(out.with_suffix(".png"))], f"{use_case} seed {seed}")
    result = json.loads(out.read_text())["use_cases"][use_case]
    return {"name": f"{use_case} s{seed}", **result}, seconds


def averages(results: list[dict]) -> dict[str, tuple[float, float]]:
    """Per policy every replay has: (mean of the mean metrics, mean retrains)."""
    tables = [table(r) for r in results]
    common = [p for p in tables[0] if all(p in t and t[p]["mean"] is not None for t in tables)]
    return {p: (mean(t[p]["mean"] for t in tables), mean(t[p]["retrains"] for t in tables))
            for p in common}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--use-case", default="demand", choices=["demand", "fraud"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[7, 8, 9])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "reference-seeds",
                        help="Where each replay's JSON is written.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [replay(args.use_case, seed, args.out / f"{args.use_case}-seed{seed}.json")
            for seed in args.seeds]
    print_table(rows)
    higher = rows[0][0]["higher_is_better"]
    means = averages([result for result, _ in rows])
    if "ctpipe" not in means:
        sys.exit("ctpipe scored no batch in some replay: nothing to average")
    ctpipe_mean, _ = means["ctpipe"]
    print(f"\nover seeds {', '.join(map(str, args.seeds))} "
          f"({'higher' if higher else 'lower'} is better):")
    for policy, (metric, retrains) in means.items():
        change = (ctpipe_mean - metric) / abs(metric) if metric else 0.0  # against it
        versus = "" if policy == "ctpipe" else \
            f"  ctpipe {abs(change):.1%} {'better' if (change > 0) == higher else 'worse'}"
        print(f"  {policy:<8} {metric:.4f}  {retrains:5.1f} retrains{versus}")
    print(f"\nJSON per seed under {args.out}")


if __name__ == "__main__":
    main()
