"""Retraining rules that only know the past, replayed on the fits hindsight_schedules.py saved:
could any of them meet the issue's target (at least as good as the best cron schedule with at
most half its retrains) where ctpipe misses it?

Every rule here retrains with the cron baselines' trainer (the fit as of a batch, saved by
``hindsight_schedules.py --save``) behind the same gate, and serves a fit from its batch on, as
baselines.replay_cron does. A rule decides from what it could know by then: the gate's verdicts
so far, and each model's score on batches whose labels have arrived (``data.label_delay``
batches later). It does not see ctpipe's drift tests; on the data sets this is for, drift is
flagged on nearly every batch, so "drift on every batch" stands in for them. The rules:

- ``cron-N``: every N batches from the cold start (a check: the same figures as the backtest's
  phase-0 schedules, up to quarantined batches).
- ``cooldown B-L``: drift on every batch, so retrain every batch, except while cooling down
  after consecutive rejections (decisions.retraining.cooldown_batches with base B, longest L):
  ctpipe's default pace on data where drift never stops (B 3, L 12).
- ``..., shadow ends it H``: the same, but a rejected challenger is scored in shadow on its
  next H labelled batches; if it beat the champion there, the rejection was wrong and the
  cooldown ends at once.
- ``..., shadow promotes H``: a rejected challenger whose first H labelled batches in
  shadow beat the champion it was gated against (still serving) is promoted then: champion
  and challenger testing on live data, the gate's verdict overturned by what followed.
- ``..., decline D ends it`` / ``caps it``: the same, but when the champion did worse on its
  batches labelled since the newest rejection than on those it served before it, by more than
  D, the cooldown ends at once (or stays at its base length B instead of growing): the level
  it served at when it won the gate is stale, much as performance drift says in ctpipe.
- ``cooldown B-B``, ``cooldown 1-L``: the cooldown without its doubling, or shorter.
- ``track record I..J, H``: a schedule whose interval halves (down to I) each time a promoted
  challenger beat the champion it replaced on its next H labelled batches, and doubles (up to
  J) each time it lost; it starts at J.

Before the rules, a line says whether the past can tell at all: for every pair of fits (the
earlier as champion), does the challenger's record over its first H labelled batches in
shadow predict which of the two does better over the 6 batches after those labels arrive?
Where it does not (correlation near 0), no rule that learns from live scores can pick the
fits hindsight picks.

    .venv/bin/python benchmarks/hindsight_schedules.py benchmarks/other-data/stocks-volume.yaml \\
        --save out/stocks-volume.npz
    .venv/bin/python benchmarks/causal_schedules.py out/stocks-volume.npz [more.npz ...]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctpipe.decisions.retraining import cooldown_batches


@dataclass(frozen=True)
class Fits:
    """What hindsight_schedules.py saved: ``serve[t, s]`` the metric on batch s of the fit as
    of batch t (nan: no fit, or nothing scored); ``passed[i, t]`` the gate's verdict on fit t
    against champion i (1 passed, 0 rejected, -1 no such pair)."""

    name: str
    metric: str
    serve: np.ndarray
    passed: np.ndarray
    cold: int
    higher: bool
    label_delay: int

    @classmethod
    def load(cls, path: Path) -> Fits:
        saved = np.load(path)
        return cls(str(saved["name"]), str(saved["metric"]), saved["serve"], saved["passed"],
                   int(saved["cold"]), bool(saved["higher"]), int(saved["label_delay"]))

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher else a < b


@dataclass
class Attempt:
    batch: int
    champion: int  # the fit serving when this one was gated
    promoted: bool
    shadowed: bool = False  # its shadow record was judged (promote_in_shadow)


@dataclass
class Replay:
    champion: int | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def turned_out(self, fits: Fits, attempt: Attempt, now: int, horizon: int) -> bool | None:
        """Whether ``attempt``'s fit beat the champion it was gated against on its next
        ``horizon`` batches labelled by ``now`` (None: not yet known)."""
        pair = [attempt.batch, attempt.champion]
        seen = [s for s in range(attempt.batch, now - fits.label_delay + 1)
                if not np.isnan(fits.serve[pair, s]).any()][:horizon]
        if len(seen) < horizon:
            return None
        return fits.better(float(np.mean(fits.serve[attempt.batch, seen])),
                           float(np.mean(fits.serve[attempt.champion, seen])))


Rule = Callable[[Fits, Replay, int], bool]  # retrain on this batch?


def shadow_predicts(fits: Fits, shadow: int, horizon: int = 6) -> tuple[float, float, float]:
    """For every gated pair of fits: the challenger's relative gain over its first ``shadow``
    batches scored beside the champion, against its gain over the ``horizon`` batches from
    the one after their labels arrive. Their correlation, and how often the challenger was
    better then when its shadow record was better and when it was not (nan: no such pair)."""
    from ctpipe.evaluation import relative_gain

    n = fits.serve.shape[0]
    record, later = [], []
    for i, t in zip(*np.nonzero(fits.passed >= 0), strict=True):
        both = [s for s in range(t, n) if not np.isnan(fits.serve[[i, t], s]).any()]
        start = shadow + fits.label_delay
        if len(both) < start + horizon:
            continue
        seen, ahead = both[:shadow], both[start:start + horizon]
        record.append(relative_gain(float(np.mean(fits.serve[t, seen])),
                                    float(np.mean(fits.serve[i, seen])), fits.higher))
        later.append(relative_gain(float(np.mean(fits.serve[t, ahead])),
                                   float(np.mean(fits.serve[i, ahead])), fits.higher))
    if len(record) < 3:
        return math.nan, math.nan, math.nan
    x, y = np.array(record), np.array(later)

    def better_then(mask: np.ndarray) -> float:
        return float(np.mean(y[mask] > 0)) if mask.any() else math.nan

    return float(np.corrcoef(x, y)[0, 1]), better_then(x > 0), better_then(x <= 0)


def replay(fits: Fits, rule: Rule, promote_in_shadow: int = 0) -> tuple[float, int]:
    """The mean metric over the batches served and scored, and the retrains (the cold start
    included). ``promote_in_shadow`` H: a rejected challenger that beat the champion it was
    gated against (still serving) over its first H labelled batches in shadow is promoted
    then, before the rule is asked."""
    state, served, retrains = Replay(), [], 0
    for t in range(fits.serve.shape[0]):
        if t >= fits.cold and not np.isnan(fits.serve[t]).all():
            if state.champion is not None and promote_in_shadow:
                _promote_in_shadow(fits, state, t, promote_in_shadow)
            if state.champion is None:
                state.champion, retrains = t, retrains + 1
            elif rule(fits, state, t):
                retrains += 1
                promoted = fits.passed[state.champion, t] == 1
                state.attempts.append(Attempt(t, state.champion, bool(promoted)))
                if promoted:
                    state.champion = t
        served.append(state.champion)
    scores = [fits.serve[c, s] for s, c in enumerate(served) if c is not None]
    return float(np.nanmean(scores)), retrains


def _promote_in_shadow(fits: Fits, state: Replay, t: int, horizon: int) -> None:
    for attempt in reversed(state.attempts):
        if attempt.promoted or attempt.shadowed or attempt.champion != state.champion:
            continue
        won = state.turned_out(fits, attempt, t, horizon)
        if won is None:
            continue
        attempt.shadowed = True
        if won:
            state.champion = attempt.batch
            return


def cron(every: int) -> Rule:
    return lambda fits, state, t: (t - fits.cold) % every == 0


def declined(fits: Fits, state: Replay, rejected: int, t: int, tolerance: float) -> bool:
    """Whether the champion, on its batches labelled since the rejection at ``rejected``, did
    worse than on the batches it served before it, by more than ``tolerance`` (relative):
    the level it served at when it won the gate is no longer what it delivers."""
    from ctpipe.evaluation import relative_gain

    c, labelled = state.champion, t - fits.label_delay
    scores = fits.serve[c]
    before = [scores[s] for s in range(c, min(rejected, labelled + 1)) if np.isfinite(scores[s])]
    after = [scores[s] for s in range(rejected, labelled + 1) if np.isfinite(scores[s])]
    if not before or not after:
        return False
    return relative_gain(float(np.mean(after)), float(np.mean(before)), fits.higher) < -tolerance


def cooldown(base: int, longest: int, shadow: int = 0, decline: float | None = None,
             decline_caps: bool = False) -> Rule:
    """``decline`` D: a champion that declined by more than D since the newest rejection
    (``declined``) ends the cooldown, or with ``decline_caps`` keeps it at ``base``."""
    def rule(fits: Fits, state: Replay, t: int) -> bool:
        rejected = []
        for attempt in reversed(state.attempts):
            if attempt.promoted:
                break
            rejected.append(attempt)
        if not rejected:
            return True
        if shadow and state.turned_out(fits, rejected[0], t, shadow):
            return True  # the newest rejection was wrong: no reason to wait
        wait = cooldown_batches(len(rejected), base=base, longest=longest)
        if decline is not None and declined(fits, state, rejected[0].batch, t, decline):
            if not decline_caps:
                return True
            wait = min(wait, base)
        return t - rejected[0].batch > wait
    return rule


def track_record(shortest: int, longest: int, horizon: int) -> Rule:
    def rule(fits: Fits, state: Replay, t: int) -> bool:
        interval = longest
        for attempt in state.attempts:
            if not attempt.promoted:
                continue
            won = state.turned_out(fits, attempt, t, horizon)
            if won is not None:
                interval = max(shortest, interval // 2) if won else min(longest, interval * 2)
        last = state.attempts[-1].batch if state.attempts else fits.cold
        return t - last >= interval
    return rule


RULES: dict[str, Rule | tuple[Rule, int]] = {
    "cron-1": cron(1), "cron-2": cron(2), "cron-4": cron(4), "cron-12": cron(12),
    "cooldown 3-12": cooldown(3, 12),
    "cooldown 3-12, shadow ends it 2": cooldown(3, 12, shadow=2),
    "cooldown 3-12, shadow ends it 3": cooldown(3, 12, shadow=3),
    "cooldown 3-12, decline 10% ends it": cooldown(3, 12, decline=0.10),
    "cooldown 3-12, decline 20% ends it": cooldown(3, 12, decline=0.20),
    "cooldown 3-12, decline 10% caps it": cooldown(3, 12, decline=0.10, decline_caps=True),
    "cooldown 3-3": cooldown(3, 3),
    "cooldown 1-12": cooldown(1, 12),
    "track record 1..12, 3": track_record(1, 12, 3),
    "track record 2..12, 3": track_record(2, 12, 3),
    "cooldown 3-12, shadow promotes 1": (cooldown(3, 12), 1),
    "cooldown 3-12, shadow promotes 3": (cooldown(3, 12), 3),
}
BASELINES = ("cron-1", "cron-4", "cron-12")  # the backtest's schedules: the target's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saved", nargs="+", type=Path, help="hindsight_schedules.py --save files")
    for path in parser.parse_args().saved:
        fits = Fits.load(path)
        results = {name: replay(fits, *(rule if isinstance(rule, tuple) else (rule,)))
                   for name, rule in RULES.items()}
        sign = 1 if fits.higher else -1
        best = max(BASELINES, key=lambda name: sign * results[name][0])
        target, allowed = results[best][0], results[best][1] // 2
        print(f"{fits.name} ({fits.metric}): the target is {target:.4f} ({best}) with at most "
              f"{allowed} retrains")
        for shadow in (1, 3):
            corr, if_better, if_not = shadow_predicts(fits, shadow)
            print(f"  a challenger's first {shadow} batch{'es' if shadow > 1 else ''} in shadow "
                  f"against the 6 after their labels: correlation {corr:+.2f}; better then "
                  f"in {if_better:.0%} of pairs where its record was better, {if_not:.0%} "
                  "where it was not")
        for name, (mean, retrains) in results.items():
            meets = sign * mean >= sign * target and retrains <= allowed
            print(f"  {name:<32} {mean:.4f} with {retrains:>3} retrains"
                  f"{'  meets it' if meets else ''}")


if __name__ == "__main__":
    main()
