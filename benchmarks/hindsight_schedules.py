"""What any retraining schedule could reach on a data set, knowing the future: is the issue's
target (ctpipe at least as good as the best cron schedule, with at most half its retrains)
reachable at all on this data?

For every batch from the cold start on, the script fits the model the cron baselines would fit
as of that batch (steps.train.train_candidate: same window, holdout and seed) and scores it on
every later labelled batch (backtest.model_metric). The cron schedules are replayed beside it
by the backtest's own code (baselines.replay_cron, same gate), each from every batch of its
period. For every pair of fits it compares the gate's verdict on the later fit's holdout with
what serving it brought afterwards. Then, for a budget of K retrains (the cold start
included), it finds by dynamic programming the K retrain batches whose models, each serving
until the next, give the best mean metric over the same batches: the best any policy
retraining K times with this trainer could do with hindsight and no gate.

It keeps every fit (model and holdout) in memory until the end: fine for monthly or daily
batches over a few years, not for a bank's full history.

Every batch counts as validated (no cycle runs, so nothing is quarantined); on data whose
replay quarantines batches the cron figures can differ from `ctpipe backtest`'s.

    .venv/bin/python benchmarks/hindsight_schedules.py configs/public/seattle-temp.yaml \
        [--source FILE] [--cron 1 4 12] [--budget 5 ...] [--backtest-json out/backtest.json]

``--backtest-json`` (a `ctpipe backtest --json` of the same config) adds ctpipe's own mean and
retrains, and the hindsight best with as many retrains. ``--save FILE.npz`` keeps the fits'
scores and the gate's verdict on every pair of fits, which benchmarks/causal_schedules.py
replays retraining rules on without fitting again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a use case's YAML config (or its name)")
    parser.add_argument("--source", help="the labelled history (default: data.source)")
    parser.add_argument("--cron", nargs="+", type=int, default=[1, 4, 12])
    parser.add_argument("--budget", nargs="*", type=_at_least_one, default=[],
                        help="more budgets (retrains, cold start included) to report")
    parser.add_argument("--horizon", type=int, default=6,
                        help="batches after a retrain over which its gain is measured")
    parser.add_argument("--backtest-json", type=Path,
                        help="a `ctpipe backtest --json` of the same config: ctpipe's figures")
    parser.add_argument("--save", type=Path,
                        help="write the fits' scores and the gate's verdicts to this .npz")
    args = parser.parse_args()
    # A throwaway home: the script replaces the replay workspace it writes to.
    with tempfile.TemporaryDirectory(prefix="ctpipe-hindsight-") as home:
        os.environ["CTPIPE_HOME"] = home
        report(args)


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"a budget counts the cold start: 1 or more, not {value}")
    return value


def report(args: argparse.Namespace) -> None:
    from ctpipe import backtest as bt
    from ctpipe import settings
    from ctpipe.baselines import replay_cron
    from ctpipe.config import resolve_config_path
    from ctpipe.labelled_history import configured_source, normal_source
    from ctpipe.workspace import open_workspace

    settings.configure_environment()
    ws = open_workspace(args.config, backtest=True)
    source = normal_source(args.source) if args.source else configured_source(
        ws.config.data.source, resolve_config_path(ws.ref))
    batches = bt.cut_source(ws, source)
    bt.reset(ws)
    dates = bt.write_batches(ws, batches)
    frames = [bt.labelled_batch(ws, day) for day in dates]
    started = time.perf_counter()
    serve, cold, candidates = served_metrics(ws, dates, frames)
    fitted = time.perf_counter() - started
    crons = replay_cron(ws.config, ws.store, dates, [True] * len(dates), tuple(args.cron),
                        lambda day: frames[dates.index(day)])
    higher = ws.config.higher_is_better
    # A batch no model can be scored on (one class only, for ROC-AUC) counts for nobody.
    scored = [s for s in range(cold, len(dates)) if not np.isnan(serve[:, s]).all()]
    print(f"{ws.name}: {len(dates)} batches, cold start {dates[cold]}, {len(scored)} scored "
          f"batches, {ws.config.evaluation.metric} ({'higher' if higher else 'lower'} is "
          f"better); {len(dates) - cold} fits and their scores in {fitted:.0f} s")
    rows: list[tuple[str, float | None, int]] = [
        (f"cron-{n}", crons.mean(n), len(crons.retrain_days[n])) for n in args.cron]
    ctpipe = ctpipe_figures(args.backtest_json)
    if ctpipe is not None:
        rows.append(("ctpipe", *ctpipe))
    for name, mean, retrains in rows:
        print(f"  {name:<8} mean {fmt(mean)} with {retrains} retrains")
    print("each schedule started on every batch of its period (the cold start always first; "
          "baselines.replay_cron's phases):")
    for n in args.cron:
        runs = [r for r in crons.phases[n] if r.mean is not None]
        if not runs:
            print(f"  cron-{n:<3} no start scored a batch")
            continue
        means = sorted(r.mean for r in runs)
        print(f"  cron-{n:<3} {len(runs)} start{'' if len(runs) == 1 else 's'}: mean "
              f"{fmt(means[0])} .. {fmt(float(np.median(means)))} (median) .. "
              f"{fmt(means[-1])}, {min(r.retrains for r in runs)}-"
              f"{max(r.retrains for r in runs)} retrains")
    best_n = crons.best(higher)
    passed, held = gate_matrix(ws.config, candidates, len(dates))
    gate_against_future(serve, passed, held, higher, args.horizon)
    if args.save is not None:
        np.savez(args.save, serve=serve, cold=cold, passed=passed, higher=higher,
                 label_delay=ws.config.data.label_delay, dates=[str(d) for d in dates],
                 name=ws.name, metric=ws.config.evaluation.metric)
        print(f"fits' scores and gate verdicts saved to {args.save}")
    if best_n is None or not scored:
        sys.exit(f"{ws.name}: no cron schedule scored a batch: nothing to compare with")
    budgets = sorted(k for k in {max(1, len(crons.retrain_days[best_n]) // 2),
                                 *(len(crons.retrain_days[n]) for n in args.cron),
                                 *([ctpipe[1]] if ctpipe else []), *args.budget} if k >= 1)
    best_mean = crons.mean(best_n)
    print(f"hindsight best with K retrains (the best cron, cron-{best_n}: {fmt(best_mean)} with "
          f"{len(crons.retrain_days[best_n])}; the target allows "
          f"{max(1, len(crons.retrain_days[best_n]) // 2)}):")
    for k in budgets:
        value, days = hindsight_best(serve, cold, scored, k, higher)
        verdict = "" if best_mean is None else (
            "  reaches the best cron" if (value >= best_mean if higher else value <= best_mean)
            else "  short of the best cron")
        print(f"  K={k:<4} {fmt(value)}{verdict}   retrains on "
              f"{', '.join(str(dates[d]) for d in days[:8])}{' ...' if len(days) > 8 else ''}")


def served_metrics(ws, dates: list, frames: list) -> tuple[np.ndarray, int, dict]:  # noqa: ANN001
    """``serve[t, s]``: the metric on batch ``s`` of the model fitted as of batch ``t`` (nan:
    no fit, or nothing to score); the cold start, the first batch with a fit; and the fits
    (steps.train.Candidate) by batch."""
    from ctpipe.backtest import model_metric
    from ctpipe.steps.train import train_candidate, window_problem
    from ctpipe.training import NotEnoughData

    n = len(dates)
    serve = np.full((n, n), np.nan)
    cold = None
    candidates = {}
    for t, day in enumerate(dates):
        if cold is None and window_problem(ws, day) is not None:
            continue
        try:
            candidates[t] = train_candidate(ws, day)
        except NotEnoughData:
            continue
        model = candidates[t].model
        cold = t if cold is None else cold
        for s in range(t, n):
            if frames[s] is not None:
                value = model_metric(ws.config, frames[s], model)
                serve[t, s] = np.nan if value is None else value
        if sys.stderr.isatty():
            print(f"  fitted as of {day} ({t + 1}/{n})", file=sys.stderr, end="\r", flush=True)
    if cold is None:
        sys.exit(f"{ws.name}: no batch has the history a first fit needs")
    return serve, cold, candidates


def gate_matrix(config, candidates: dict, n: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """The gate's verdict on every pair of fits, the earlier one as champion:
    ``passed[i, t]`` 1 when fit t passes against champion i on t's holdout, 0 when rejected,
    -1 for no such pair (or nothing to score); ``held[i, t]`` the challenger's relative gain
    on that holdout (what the gate judges)."""
    from ctpipe.backtest import model_metric
    from ctpipe.evaluation import relative_gain
    from ctpipe.steps.train import gate_challenger

    passed = np.full((n, n), -1, dtype=np.int8)
    held = np.full((n, n), np.nan)
    fits = sorted(candidates)
    for t in fits:
        challenger = model_metric(config, candidates[t].holdout, candidates[t].model)
        for i in (f for f in fits if f < t):
            champion = model_metric(config, candidates[t].holdout, candidates[i].model)
            if champion is None or challenger is None:
                continue
            held[i, t] = relative_gain(challenger, champion, config.higher_is_better)
            passed[i, t] = gate_challenger(config, candidates[t].model, candidates[i].model,
                                           candidates[t].holdout).decision.passed
    return passed, held


def gate_against_future(serve: np.ndarray, passed: np.ndarray, held: np.ndarray,
                        higher: bool, horizon: int) -> None:
    """Does the gate's verdict on the holdout predict what follows? For every pair of fits
    (gate_matrix): the challenger's relative gain on its holdout against its gain over the
    next ``horizon`` batches both scored (what serving it would have brought). Prints their
    correlation and how often the challenger was better afterwards when the gate passed it
    and when it rejected it."""
    from ctpipe.evaluation import relative_gain

    n = serve.shape[0]
    gains, after, verdicts = [], [], []
    for i, t in zip(*np.nonzero(passed >= 0), strict=True):
        ahead = [s for s in range(t, n) if not np.isnan(serve[[i, t], s]).any()][:horizon]
        if len(ahead) < horizon:
            continue
        gains.append(held[i, t])
        after.append(relative_gain(float(np.mean(serve[t, ahead])),
                                   float(np.mean(serve[i, ahead])), higher))
        verdicts.append(bool(passed[i, t]))
    if len(gains) < 3:
        print(f"the gate against the next {horizon} batches: too few pairs to judge")
        return
    held_a, after_a, passed_a = np.array(gains), np.array(after), np.array(verdicts)

    def better_after(mask: np.ndarray) -> str:
        return "-" if not mask.any() else f"{np.mean(after_a[mask] > 0):.0%}"

    print(f"the gate against the next {horizon} batches ({len(gains)} challenger/champion "
          f"pairs): correlation of the holdout gain with the gain that followed "
          f"{np.corrcoef(held_a, after_a)[0, 1]:+.2f}; the challenger was better afterwards "
          f"in {better_after(passed_a)} of the pairs the gate passed "
          f"({int(passed_a.sum())}) and {better_after(~passed_a)} of those it rejected "
          f"({int((~passed_a).sum())})")


def hindsight_best(serve: np.ndarray, cold: int, scored: list[int], budget: int,
                   higher: bool) -> tuple[float, list[int]]:
    """The best mean metric over ``scored`` batches when at most ``budget`` fits serve, the
    first at ``cold``, each until the next; and the batches fitted on.

    ``best[j][t]``: the best total from batch t on when t's model serves from t and j more
    fits may follow. A batch without a fit (nan row) cannot start a model's service; a fit
    scoring nan on a batch counts as the worst the metric can be there (it served nothing).
    """
    n = serve.shape[0]
    sign = 1.0 if higher else -1.0
    worst = np.nanmin(sign * serve[:, scored]) - 1.0
    gain = np.where(np.isnan(serve), worst, sign * serve)
    is_scored = np.zeros(n, dtype=bool)
    is_scored[scored] = True
    fitted = [t for t in range(cold, n) if not np.isnan(serve[t]).all()]
    if cold not in fitted:
        sys.exit("the cold start's fit scored no batch: no schedule to search")
    budget = min(budget, len(fitted))  # more fits than there are would repeat the last layer
    # run[t][u]: total of t's model over scored batches t..u-1
    run = {t: np.concatenate([[0.0], np.cumsum(np.where(is_scored[t:], gain[t, t:], 0.0))])
           for t in fitted}
    best = {t: (run[t][-1], n) for t in fitted}  # j = 0: serve to the end
    layers = [best]
    for _ in range(budget - 1):
        previous, best = best, {}
        for t in fitted:
            options = [(run[t][u - t] + previous[u][0], u) for u in fitted if u > t]
            options.append((run[t][-1], n))
            best[t] = max(options)
        layers.append(best)
    days, t, j = [cold], cold, budget - 1
    while j >= 0 and layers[j][t][1] < n:
        t = layers[j][t][1]
        days.append(t)
        j -= 1
    return sign * layers[budget - 1][cold][0] / len(scored), days


def ctpipe_figures(path: Path | None) -> tuple[float | None, int] | None:
    if path is None:
        return None
    (result,) = json.loads(path.read_text())["use_cases"].values()
    days = result["days"]
    kept = [d["champion_metric"] for d in days if d["champion_metric"] is not None]
    return (float(np.mean(kept)) if kept else None), sum(bool(d["retrained"]) for d in days)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    main()
